//! The command line: `run`, `check`, `demo` and `doctor`.
//!
//! Usage errors exit with [`EX_USAGE`] (64); `--help` and `--version` exit 0.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// `EX_USAGE` from sysexits.h: bad command line or invalid configuration.
pub(crate) const EX_USAGE: u8 = 64;

/// The config file `run` uses when `--config` is not given.
pub(crate) const DEFAULT_CONFIG: &str = "configs/gateway.yaml";

/// A reverse proxy for Server-Sent Events: one upstream connection per topic,
/// shared by every subscriber.
#[derive(Debug, Parser)]
#[command(name = "sse-gateway", version)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve with the given configuration.
    Run(RunArgs),
    /// Validate a configuration file: prints `ok`, or every error as
    /// `FILE:LINE:COL: key.path: message` (exit status 1).
    Check(CheckArgs),
    /// Start a built-in demo upstream, the gateway in front of it and a demo
    /// page at `/`.
    Demo(DemoArgs),
    /// Probe an upstream SSE URL as the gateway would and report what would
    /// break behind it (exit status 1 on a problem).
    Doctor(DoctorArgs),
}

/// Options of `run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The configuration file.
    #[arg(long, short = 'c', value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub(crate) config: PathBuf,
    /// Take over the listening sockets of a running gateway (zero-downtime
    /// upgrade; then send SIGQUIT to the old process).
    #[arg(long, short = 'u')]
    pub(crate) upgrade: bool,
    /// Run in the background.
    #[arg(long, short = 'd')]
    pub(crate) daemon: bool,
}

/// Options of `check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The configuration file.
    #[arg(long, short = 'c', value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub(crate) config: PathBuf,
}

/// Options of `demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// The public listener (demo page and streams).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`, `/topics`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub(crate) admin: SocketAddr,
}

/// Options of `doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// The upstream's event-stream URL (http or https).
    #[arg(value_name = "URL")]
    pub(crate) url: String,
    /// A request header to send, as `Name: value` (repeatable), as a route's
    /// `upstream.headers` would.
    #[arg(long = "header", short = 'H', value_name = "HEADER")]
    pub(crate) headers: Vec<String>,
    /// How long to listen on each connection at most (duration).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub(crate) listen: String,
    /// Close the first connection after this many events.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) events: usize,
    /// PEM CA certificates to verify an https upstream against.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Do not verify an https upstream's certificate.
    #[arg(long)]
    pub(crate) insecure_skip_verify: bool,
}

// === impl Cli ===

impl Cli {
    /// Parses `args` (the first being the program name). `Err` carries clap's
    /// error, which knows whether it is a usage error or `--help`.
    pub(crate) fn parse_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_defaults_and_flags() {
        let cli = Cli::parse_from_args(["sse-gateway", "run"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.config, PathBuf::from(DEFAULT_CONFIG));
        assert!(!run.upgrade && !run.daemon);

        let cli = Cli::parse_from_args(["sse-gateway", "run", "--config", "x.yaml", "--upgrade"])
            .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.config, PathBuf::from("x.yaml"));
        assert!(run.upgrade);
    }

    #[test]
    fn doctor_url_and_options() {
        let cli = Cli::parse_from_args([
            "sse-gateway",
            "doctor",
            "http://127.0.0.1:9000/s",
            "-H",
            "Authorization: Bearer x",
            "--listen",
            "3s",
        ])
        .unwrap();
        let Command::Doctor(doctor) = cli.command else {
            panic!("not doctor")
        };
        assert_eq!(doctor.url, "http://127.0.0.1:9000/s");
        assert_eq!(doctor.headers, ["Authorization: Bearer x"]);
        assert_eq!((doctor.listen.as_str(), doctor.events), ("3s", 5));
        assert!(
            Cli::parse_from_args(["sse-gateway", "doctor"]).is_err(),
            "URL required"
        );
    }

    #[test]
    fn demo_defaults() {
        let cli = Cli::parse_from_args(["sse-gateway", "demo"]).unwrap();
        let Command::Demo(demo) = cli.command else {
            panic!("not demo")
        };
        assert_eq!(demo.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(demo.admin.to_string(), "127.0.0.1:9090");
    }

    #[test]
    fn usage_errors_are_errors() {
        assert!(Cli::parse_from_args(["sse-gateway"]).is_err());
        assert!(Cli::parse_from_args(["sse-gateway", "serve"]).is_err());
        assert!(Cli::parse_from_args(["sse-gateway", "demo", "--listen", "nope"]).is_err());
    }
}
