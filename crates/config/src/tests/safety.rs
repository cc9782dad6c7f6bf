//! Settings that would let a client reach what the file did not mean to
//! expose: captures in an upstream URL's authority, topics shared by
//! different upstream URLs, regexes that escape their anchors, HMAC
//! secrets short enough to guess, and files that are not regular files.

use super::errors::check;
use super::support::{errors, load};

/// A route header whose `path` has two captures, `s` and `t`.
const R2: &str = "routes:\n  - name: r\n    path: /p/{s}/{t}\n";

const AUTHORITY: &str = "the URL's scheme, host and port must be written out: `{name}` references may only appear in its path or query";

#[test]
fn upstream_url_captures_stay_out_of_the_authority() {
    let refused = [
        "{s}://h/x",
        "http:/{s}/x",
        "http:{s}/x",
        "http://h:{s}/",
        "http://{s}@h/",
        "http://u:{s}@h/",
        "http://{s}.h/",
        "http://h{s}/",
        "http:///{s}",
        "http://{s}",
        "http://h#{s}",
        "{s}",
        "/x/{s}",
        "http://[::1]:{s}/",
    ];
    let want = [format!(
        "test.yaml:4:21: routes[0].upstream.url: {AUTHORITY}"
    )];
    let failures: Vec<String> = refused
        .iter()
        .filter_map(|url| {
            let got = errors(&format!("{R2}    upstream: {{url: \"{url}\"}}\n"));
            (got != want).then(|| format!("{url}: {got:#?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn upstream_url_captures_in_path_and_query_are_fine() {
    for url in [
        "http://h/{s}",
        "http://h/x/{s}/{t}",
        "https://h:8443/{s}",
        "http://h?q={s}",
        "http://h/?q={s}&r={t}",
        "http://[::1]:9000/{s}",
        "http://u:p@h/{s}",
        "http://h/{s}{t}",
    ] {
        let text = format!("{R2}    topic: \"{{s}}/{{t}}\"\n    upstream: {{url: \"{url}\"}}\n");
        if let Err(e) = load(&text) {
            panic!("{url}: {e}");
        }
    }
}

#[test]
fn a_topic_must_use_every_capture_the_upstream_url_uses() {
    check(&[
        (
            "one capture left out",
            &format!("{R2}    topic: \"t/{{s}}\"\n    upstream: {{url: \"http://h/{{s}}/{{t}}\"}}\n"),
            &["test.yaml:4:12: routes[0].topic: the topic leaves out `{t}`, which upstream.url uses: requests with different upstream URLs would share one topic"],
        ),
        (
            "two left out, one of them twice in the URL",
            &format!("{R2}    topic: \"fixed\"\n    upstream: {{url: \"http://h/{{t}}?a={{s}}&b={{t}}\"}}\n"),
            &["test.yaml:4:12: routes[0].topic: the topic leaves out `{t}` and `{s}`, which upstream.url uses: requests with different upstream URLs would share one topic"],
        ),
    ]);
    // A topic may use more captures than the URL, and the default topic
    // (the request path) uses them all.
    let more =
        format!("{R2}    topic: \"{{t}}-{{s}}\"\n    upstream: {{url: \"http://h/{{s}}\"}}\n");
    assert!(load(&more).is_ok());
    let default = format!("{R2}    upstream: {{url: \"http://h/{{s}}/{{t}}\"}}\n");
    assert!(load(&default).is_ok());
}

#[test]
fn a_topic_names_one_set_of_capture_values() {
    let url = "    upstream: {url: \"http://h/{s}/{t}\"}\n";
    check(&[(
        "two captures glued with a dash",
        &format!("{R2}    topic: \"{{s}}-{{t}}\"\n{url}"),
        &["test.yaml:4:12: routes[0].topic: put a `/` between `{s}` and `{t}`: without one, different values of the two can make the same topic (`a-b` + `c` and `a` + `b-c`), and such requests would share one upstream's stream"],
    )]);
    for topic in ["{s}/{t}", "x/{t}/y/{s}", "{s}:/{t}", "p/{s}/{t}/{s}"] {
        let text = format!("{R2}    topic: \"{topic}\"\n{url}");
        if let Err(e) = load(&text) {
            panic!("{topic}: {e}");
        }
    }
    let catch_all = "routes:\n  - name: r\n    path: /p/{s}/{*rest}\n";
    let url = "    upstream: {url: \"http://h/{s}/{rest}\"}\n";
    check(&[(
        "a catch-all before another capture",
        &format!("{catch_all}    topic: \"{{rest}}/{{s}}\"\n{url}"),
        &["test.yaml:4:12: routes[0].topic: `{*rest}` may hold `/`, so it must be the topic's last reference"],
    )]);
    assert!(load(&format!("{catch_all}    topic: \"{{s}}/{{rest}}\"\n{url}")).is_ok());
}

#[test]
fn params_regexes_cannot_escape_their_anchors() {
    let route = "routes:\n  - name: r\n    path: /p/{s}\n    upstream: {url: \"http://h/{s}\"}\n";
    check(&[
        (
            "closing the wrapper group",
            &format!("{route}    params: {{s: \"a)|(.*\"}}\n"),
            &["test.yaml:5:17: routes[0].params.s: invalid regex: unopened group"],
        ),
        (
            "closing it and opening another",
            &format!("{route}    params: {{s: \"x)$|^(?:.*\"}}\n"),
            &["test.yaml:5:17: routes[0].params.s: invalid regex: unopened group"],
        ),
    ]);
    let c = load(&format!(
        "{route}    params: {{s: \"[A-Z]{{1,8}}|[0-9]+\"}}\n"
    ))
    .unwrap();
    let regex = &c.routes[0].params["s"];
    assert!(regex.is_match("AAPL") && regex.is_match("42"));
    assert!(!regex.is_match("AAPL42") && !regex.is_match("x") && !regex.is_match(""));
    let alternation = crate::ParamRegex::new("a|b").unwrap();
    assert!(
        !alternation.is_match("ab"),
        "anchored around the whole alternation"
    );
    assert!(crate::ParamRegex::new("a)|(.*").is_err());
}

#[test]
fn hmac_secrets_are_at_least_as_long_as_the_hash() {
    let jwt = |alg: &str, var: &str| {
        format!(
            "routes:\n  - name: r\n    path: /p/{{s}}\n    upstream: {{url: \"http://h/{{s}}\"}}\n    \
             auth: {{cookie: c, jwt: {{algorithm: {alg}, secret_env: {var}}}}}\n"
        )
    };
    check(&[
        (
            "HS256 with 6 bytes",
            &jwt("HS256", "SHORT_SECRET"),
            &["test.yaml:5:59: routes[0].auth.jwt.secret_env: the secret in `SHORT_SECRET` is 6 bytes; HS256 needs at least 32"],
        ),
        (
            "HS512 with 48 bytes",
            &jwt("HS512", "SESSION_SECRET"),
            &["test.yaml:5:59: routes[0].auth.jwt.secret_env: the secret in `SESSION_SECRET` is 48 bytes; HS512 needs at least 64"],
        ),
    ]);
    assert!(load(&jwt("HS256", "SESSION_SECRET")).is_ok());
    assert!(
        load(&jwt("HS384", "SESSION_SECRET")).is_ok(),
        "48 bytes is enough"
    );
    let exact = [("S", "0123456789abcdef0123456789abcdef")];
    assert!(crate::from_str("t.yaml", &jwt("HS256", "S"), &exact).is_ok());
    let one_short = [("S", "0123456789abcdef0123456789abcde")];
    assert!(crate::from_str("t.yaml", &jwt("HS256", "S"), &one_short).is_err());
}

/// A FIFO blocks whoever opens it and a device such as `/dev/zero` never
/// ends: `check` must refuse both from their metadata, without opening them.
#[test]
fn files_the_config_reads_must_be_regular_files() {
    let dir = std::env::temp_dir().join(format!("sse-gw-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("cert.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "mkfifo");
    let key = "../../configs/dev/localhost-key.pem";
    let text = format!(
        "tls: {{listen: \"127.0.0.1:0\", cert: \"{}\", key: {key}}}\n\
         routes:\n  - name: r\n    path: /p/{{s}}\n    \
         upstream: {{url: \"https://h/{{s}}\", ca_file: /dev/zero}}\n    \
         auth: {{cookie: c, jwt: {{algorithm: ES256, key_file: \"{}\"}}}}\n",
        fifo.display(),
        dir.display(),
    );
    let got = errors(&text);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        got,
        [
            format!(
                "test.yaml:1:36: tls.cert: cannot read certificate file `{}`: is a FIFO, not a regular file",
                fifo.display()
            ),
            "test.yaml:5:47: routes[0].upstream.ca_file: cannot read CA file `/dev/zero`: is a character device, not a regular file".to_owned(),
            format!(
                "test.yaml:6:57: routes[0].auth.jwt.key_file: cannot read key file `{}`: is a directory",
                dir.display()
            ),
        ]
    );
}

#[test]
fn the_config_file_itself_must_be_a_regular_file() {
    for (path, reason) in [
        ("/dev/zero", "is a character device, not a regular file"),
        ("/", "is a directory"),
    ] {
        let errors = crate::load(std::path::Path::new(path)).unwrap_err();
        assert_eq!(
            errors.to_string(),
            format!("{path}:1:1: <root>: cannot read the configuration file: {reason}")
        );
    }
}
