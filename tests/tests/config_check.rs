//! `sse-gateway check`: `ok` for the shipped configs, and for each bad config under
//! `configs/invalid/` exit code 1 with exactly the lines of its `.expected` file
//! (`FILE:LINE:COL: key.path: message`, with paths as given on the command line, run
//! from the workspace root).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};

use sse_gateway_tests::gateway::{gateway_binary, workspace_root};

fn check(config: &str) -> Output {
    Command::new(gateway_binary().unwrap())
        .args(["check", "--config", config])
        .current_dir(workspace_root())
        // missing-env.yaml relies on these being unset.
        .env_remove("SSE_GATEWAY_TEST_UNSET_HOST")
        .env_remove("SSE_GATEWAY_TEST_UNSET_TOKEN")
        .env_remove("SSE_GATEWAY_TEST_UNSET_SECRET")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn shipped_configs_are_ok() {
    for config in ["configs/reference.yaml", "configs/gateway.yaml"] {
        let out = check(config);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            (out.status.code(), stdout.trim_end()),
            (Some(0), "ok"),
            "check {config}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn invalid_configs_print_their_expected_errors() {
    let dir = workspace_root().join("configs/invalid");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 10,
        "the invalid configs are there: {names:?}"
    );
    let mut failures = Vec::new();
    for name in &names {
        let expected_path = dir.join(name.replace(".yaml", ".expected"));
        let expected = std::fs::read_to_string(&expected_path).unwrap();
        let out = check(&format!("configs/invalid/{name}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.code() != Some(1) || stdout != expected {
            failures.push(format!(
                "{name}: exit {:?}\n--- expected\n{expected}--- got\n{stdout}--- stderr\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
