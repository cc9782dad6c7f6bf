//! `sse-gateway`: the binary. Wiring only; the logic lives in `crates/`.

fn main() -> std::process::ExitCode {
    // The serving commands land with the gateway itself (see README.md).
    std::process::ExitCode::SUCCESS
}
