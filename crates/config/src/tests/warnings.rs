//! Warnings: where they are reported, what they say, and that they never
//! fail the load.

use super::support::{load, ROUTE};

/// The warning lines for `text`, which must load.
fn warnings(text: &str) -> Vec<String> {
    match load(text) {
        Ok(config) => config.warnings.iter().map(ToString::to_string).collect(),
        Err(errors) => panic!("expected no errors for:\n{text}\n{errors}"),
    }
}

fn capture_warning(at: &str, capture: &str) -> String {
    format!(
        "test.yaml:{at}: warning: capture `{capture}` has no `params` regex and the route has \
         no `auth`: any client can open a topic, and an upstream connection, per distinct \
         value; add a `params` regex or `auth`, and consider `max_topics`"
    )
}

#[test]
fn open_captures_are_warned_about_once_each() {
    let text =
        "routes:\n  - name: r\n    path: /a/{x}/b/{y}/{*rest}\n    params: {y: \"[0-9]+\"}\n    \
                upstream: {url: \"http://h/{x}\"}\n";
    assert_eq!(
        warnings(text),
        [
            capture_warning("3:11: routes[0].path", "{x}"),
            capture_warning("3:11: routes[0].path", "{*rest}"),
        ]
    );
}

#[test]
fn no_capture_warning_with_params_auth_a_proxy_or_an_unused_capture() {
    let jwt = "auth: {cookie: c, jwt: {algorithm: HS256, secret_env: SESSION_SECRET}}";
    for text in [
        format!("{ROUTE}    params: {{s: \"[a-z]+\"}}\n"),
        format!("{ROUTE}    {jwt}\n"),
        "routes:\n  - {name: a, path: \"/api/{*rest}\", proxy: \"http://h\"}\n".to_owned(),
        "routes:\n  - {name: a, path: \"/a/{x}\", topic: fixed, upstream: {url: \"http://h/\"}}\n"
            .to_owned(),
        "routes:\n  - {name: a, path: /status, upstream: {url: \"http://h/\"}}\n".to_owned(),
    ] {
        assert_eq!(warnings(&text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn a_cookie_without_jwt_and_skipped_verification_are_warned_about() {
    let text = "routes:\n  - name: r\n    path: /p/{s}\n    params: {s: \"[a-z]+\"}\n    \
                upstream: {url: \"https://h/{s}\", insecure_skip_verify: true}\n    \
                auth: {cookie: member}\n  - {name: a, path: /a, proxy: \"http://h\", auth: {cookie: sid}}\n";
    assert_eq!(
        warnings(text),
        [
            "test.yaml:5:60: routes[0].upstream.insecure_skip_verify: warning: the upstream's TLS \
             certificate and host name are NOT verified: anyone on the network path can \
             impersonate the upstream and read or forge its stream; use `ca_file` for a private CA",
            "test.yaml:6:20: routes[0].auth.cookie: warning: the cookie's value is not verified \
             (no auth.jwt): any request carrying a `member` cookie is admitted",
            "test.yaml:7:59: routes[1].auth.cookie: warning: the cookie's value is not verified \
             (no auth.jwt): any request carrying a `sid` cookie is admitted",
        ]
    );
}

#[test]
fn warnings_are_kept_beside_errors() {
    let text = format!("threads: 0\n{ROUTE}");
    let errors = load(&text).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "test.yaml:1:10: threads: must be greater than 0",
        "the display holds only the errors"
    );
    let warnings: Vec<String> = errors.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings, [capture_warning("4:11: routes[0].path", "{s}")]);
    let w = &errors.warnings()[0];
    assert_eq!((w.file.as_str(), w.line, w.col), ("test.yaml", 4, 11));
    assert_eq!(w.key_path, "routes[0].path");
}
