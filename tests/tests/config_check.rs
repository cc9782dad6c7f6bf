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

/// Exit status, stdout and stderr.
fn outcome(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn shipped_configs_are_ok() {
    for config in ["configs/reference.yaml", "configs/gateway.yaml"] {
        let got = outcome(&check(config));
        let want = (Some(0), "ok\n".to_owned(), String::new());
        assert_eq!(got, want, "check {config}");
    }
}

/// Every example passes `check`; the only warning (on stderr) is the one
/// examples/auth.yaml documents for its presence-only cookie.
#[test]
fn every_example_is_ok() {
    let (_, names) = yaml_files("configs/examples");
    assert!(names.len() >= 5, "the examples are there: {names:?}");
    for name in &names {
        let (code, stdout, stderr) = outcome(&check(&format!("configs/examples/{name}")));
        assert_eq!(
            (code, stdout.as_str()),
            (Some(0), "ok\n"),
            "{name}: {stderr}"
        );
        let warnings: Vec<&str> = stderr.lines().collect();
        match name.as_str() {
            "auth.yaml" => {
                assert_eq!(warnings.len(), 1, "{name}: {stderr}");
                assert!(
                    warnings[0].starts_with("configs/examples/auth.yaml:")
                        && warnings[0].contains(
                            "routes[1].auth.cookie: warning: the cookie's value is not verified"
                        ),
                    "{name}: {stderr}"
                );
            }
            _ => assert_eq!(stderr, "", "{name}"),
        }
    }
}

/// A capture any client can vary, with no `params` and no `auth`: `check`
/// passes, says `ok` on stdout and warns on stderr, one line.
#[test]
fn a_warning_goes_to_stderr_and_check_still_passes() {
    let dir = std::env::temp_dir().join(format!("sse-gw-config-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("open-capture.yaml");
    std::fs::write(
        &path,
        "routes:\n  - name: feeds\n    path: /feeds/{feed}\n    upstream:\n      \
         url: \"http://127.0.0.1:9000/f/{feed}\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = outcome(&check(path.to_str().unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!((code, stdout.as_str()), (Some(0), "ok\n"), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "{}:3:11: routes[0].path: warning: capture `{{feed}}` has no `params` regex and the \
             route has no `auth`: any client can open a topic, and an upstream connection, per \
             distinct value; add a `params` regex or `auth`, and consider `max_topics`\n",
            path.display()
        )
    );
}

#[test]
fn invalid_configs_print_their_expected_errors() {
    let (dir, names) = yaml_files("configs/invalid");
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

/// The `.yaml` files in `dir` (relative to the workspace), sorted by name.
fn yaml_files(dir: &str) -> (std::path::PathBuf, Vec<String>) {
    let dir = workspace_root().join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    (dir, names)
}
