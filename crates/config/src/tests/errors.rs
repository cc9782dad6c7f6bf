//! One case per kind of error, each asserting the exact
//! `FILE:LINE:COL: key.path: message` lines.

use super::support::{errors, ROUTE};

/// A route whose mapping starts at line 2, column 5 after `routes:\n  - `.
const R: &str = "routes:\n  - name: r\n    path: /p/{s}\n";

pub(super) fn check(cases: &[(&str, &str, &[&str])]) {
    let mut failures = Vec::new();
    for (what, text, want) in cases {
        let got = errors(text);
        if got != *want {
            failures.push(format!("{what}:\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn yaml_level_errors() {
    check(&[
        (
            "syntax",
            "listen: [a\nadmin: b\n",
            &["test.yaml:2:6: listen[0]: invalid YAML: illegal placement of ':' indicator"],
        ),
        (
            "duplicate key",
            "admin: a\nadmin: b\n",
            &["test.yaml:2:1: admin: duplicate key `admin` (first set at line 1)"],
        ),
        (
            "alias",
            "admin: &a x\nlisten: *a\n",
            &["test.yaml:2:9: listen: YAML aliases (*name) are not supported"],
        ),
        (
            "tag",
            "admin: !!str x\n",
            &["test.yaml:1:8: admin: YAML tags (!tag) are not supported"],
        ),
        (
            "empty",
            "# nothing\n",
            &["test.yaml:1:1: <root>: the file is empty: at least `routes` is needed"],
        ),
        (
            "not a mapping",
            "- a\n",
            &["test.yaml:1:1: <root>: expected a mapping, found a list"],
        ),
        (
            "two documents",
            "admin: a\n---\nadmin: b\n",
            &["test.yaml:2:1: <root>: only one YAML document is allowed"],
        ),
    ]);
}

#[test]
fn shape_errors() {
    check(&[
        ("missing routes", "admin: 127.0.0.1:1\n", &["test.yaml:1:1: routes: required key is missing"]),
        ("empty routes", "routes: []\n", &["test.yaml:1:9: routes: at least one route is needed"]),
        (
            "unknown key with a suggestion",
            &format!("{ROUTE}    heartbeet: 1s\n"),
            &["test.yaml:5:5: routes[0].heartbeet: unknown key; did you mean `heartbeat`?"],
        ),
        (
            "unknown key with the list",
            &format!("limits: {{zzz: 1}}\n{ROUTE}"),
            &["test.yaml:1:10: limits.zzz: unknown key; expected one of: max_clients, max_clients_per_topic, max_topics, max_connections, max_streams_per_address, request_header_timeout, new_topics_per_address, replay_memory"],
        ),
        (
            "the keys of a route, in the order they are read",
            &format!("{ROUTE}    zzzzzzzz: 1\n"),
            &["test.yaml:5:5: routes[0].zzzzzzzz: unknown key; expected one of: name, path, params, topic, upstream, proxy, cors, auth, lenient_captures, heartbeat, client_retry, replay, client_queue, max_event_size, linger, upstream_backoff, upstream_idle_timeout, stop_holdoff, gap_event, write_window, coalesce_window, upstream_connect_timeout, direct_write, max_topics, upstream_answer_timeout, resume_from_client, event_filter, slow_client, coalesce_by"],
        ),
        (
            "an unknown key before a missing one at the same position",
            "routes:\n  - nme: r\n    path: /p\n    proxy: \"http://h\"\n",
            &[
                "test.yaml:2:5: routes[0].nme: unknown key; did you mean `name`?",
                "test.yaml:2:5: routes[0].name: required key is missing",
            ],
        ),
        (
            "string expected",
            &format!("admin: [a]\n{ROUTE}"),
            &["test.yaml:1:8: admin: expected a string, found a list"],
        ),
        (
            "number expected",
            &format!("threads: \"2\"\n{ROUTE}"),
            &["test.yaml:1:10: threads: expected a whole number, found the quoted string \"2\""],
        ),
        (
            "boolean expected",
            &format!("h2c: yes\n{ROUTE}"),
            &["test.yaml:1:6: h2c: expected true or false, found `yes`"],
        ),
        (
            "mapping expected",
            &format!("defaults: 5s\n{ROUTE}"),
            &["test.yaml:1:11: defaults: expected a mapping, found a scalar"],
        ),
        (
            "empty value",
            &format!("{ROUTE}    topic:\n"),
            &["test.yaml:5:10: routes[0].topic: expected a string, found an empty value"],
        ),
        (
            "missing route keys",
            "routes:\n  - upstream: {headers: {}}\n",
            &[
                "test.yaml:2:5: routes[0].name: required key is missing",
                "test.yaml:2:5: routes[0].path: required key is missing",
                "test.yaml:2:15: routes[0].upstream.url: required key is missing",
            ],
        ),
    ]);
}

#[test]
fn value_errors() {
    check(&[
        (
            "duration without unit",
            &format!("defaults:\n  heartbeat: 15\n{ROUTE}"),
            &["test.yaml:2:14: defaults.heartbeat: `15` has no unit: write ms, s, m or h (for example 15s)"],
        ),
        (
            "nested duration",
            &format!("defaults:\n  replay: {{max_age: 5 min}}\n{ROUTE}"),
            &["test.yaml:2:21: defaults.replay.max_age: unknown duration unit ` min` in `5 min`: use ms, s, m or h"],
        ),
        (
            "size",
            &format!("{ROUTE}    client_queue: 1MB\n"),
            &["test.yaml:5:19: routes[0].client_queue: unknown size unit `MB` in `1MB`: use B, KiB, MiB or GiB"],
        ),
        (
            "address",
            &format!("listen: [\"127.0.0.1:80\", localhost:80]\n{ROUTE}"),
            &["test.yaml:1:26: listen[1]: `localhost:80` is not a socket address: write IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"],
        ),
        (
            "zero limit and threads",
            &format!("threads: 0\nlimits: {{max_topics: 0}}\n{ROUTE}"),
            &[
                "test.yaml:1:10: threads: must be greater than 0",
                "test.yaml:2:22: limits.max_topics: must be greater than 0",
            ],
        ),
        (
            "gap event and log format",
            &format!("log: {{format: xml}}\ndefaults: {{gap_event: \"a\\nb\"}}\n{ROUTE}"),
            &[
                "test.yaml:1:15: log.format: unknown log format `xml`; expected text or json",
                "test.yaml:2:23: defaults.gap_event: an event type must be non-empty and have no control characters",
            ],
        ),
        (
            "missing tls files",
            &format!("tls: {{listen: \"0.0.0.0:443\", cert: nope.pem, key: /nope/key.pem}}\n{ROUTE}"),
            &[
                "test.yaml:1:36: tls.cert: cannot read certificate file `nope.pem`: no such file",
                "test.yaml:1:51: tls.key: cannot read key file `/nope/key.pem`: no such file",
            ],
        ),
        (
            "tls files that are not PEM",
            &format!("tls: {{listen: \"0.0.0.0:443\", cert: Cargo.toml, key: ../../configs/dev/localhost-cert.pem}}\n{ROUTE}"),
            &[
                "test.yaml:1:36: tls.cert: invalid certificate file `Cargo.toml`: no PEM `CERTIFICATE` block found",
                "test.yaml:1:53: tls.key: invalid key file `../../configs/dev/localhost-cert.pem`: no PEM private key block found (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            ],
        ),
        (
            "tls h2 streams zero",
            &format!("tls: {{listen: \"0.0.0.0:443\", cert: ../../configs/dev/localhost-cert.pem, key: ../../configs/dev/localhost-key.pem, h2_max_concurrent_streams: 0}}\n{ROUTE}"),
            &["test.yaml:1:143: tls.h2_max_concurrent_streams: must be greater than 0"],
        ),
        (
            "upstream ca_file missing, not PEM, and a non-boolean insecure_skip_verify",
            "routes:\n  - name: r\n    path: /p/{s}\n    upstream: {url: \"https://h/{s}\", ca_file: nope.pem}\n  - name: q\n    path: /q/{s}\n    upstream: {url: \"https://h/{s}\", ca_file: Cargo.toml, insecure_skip_verify: maybe}\n",
            &[
                "test.yaml:4:47: routes[0].upstream.ca_file: cannot read CA file `nope.pem`: no such file",
                "test.yaml:7:47: routes[1].upstream.ca_file: invalid CA file `Cargo.toml`: no PEM `CERTIFICATE` block found",
                "test.yaml:7:81: routes[1].upstream.insecure_skip_verify: expected true or false, found `maybe`",
            ],
        ),
        (
            "tls missing keys",
            &format!("tls: {{listen: \"0.0.0.0:443\"}}\n{ROUTE}"),
            &[
                "test.yaml:1:6: tls.cert: required key is missing",
                "test.yaml:1:6: tls.key: required key is missing",
            ],
        ),
    ]);
}

#[test]
fn pattern_and_template_errors() {
    check(&[
        (
            "path pattern",
            "routes:\n  - name: r\n    path: /p/x{s}\n    upstream: {url: \"http://h/\"}\n",
            &["test.yaml:3:11: routes[0].path: `{` and `}` must enclose a whole path segment, as in /prices/{symbol}; found `x{s}`"],
        ),
        (
            "catch-all not last",
            "routes:\n  - name: r\n    path: /{*a}/b\n    upstream: {url: \"http://h/\"}\n",
            &["test.yaml:3:11: routes[0].path: catch-all `{*a}` must be the last segment"],
        ),
        (
            "bad regex and unknown param",
            &format!("{ROUTE}    params: {{s: \"[A-Z\", t: x}}\n"),
            &[
                "test.yaml:5:17: routes[0].params.s: invalid regex: unclosed character class",
                "test.yaml:5:25: routes[0].params.t: `t` is not a capture of the path `/p/{s}`",
            ],
        ),
        (
            "topic references an unknown capture",
            &format!("{ROUTE}    topic: \"t/{{x}}\"\n"),
            &["test.yaml:5:12: routes[0].topic: `{x}` is not a capture of the path `/p/{s}`"],
        ),
        (
            "topic template syntax",
            &format!("{ROUTE}    topic: \"t/{{s\"\n"),
            &["test.yaml:5:12: routes[0].topic: unclosed `{` in `t/{s`"],
        ),
        (
            "url references an unknown capture",
            &format!("{R}    upstream: {{url: \"http://h/{{x}}\"}}\n"),
            &["test.yaml:4:21: routes[0].upstream.url: `{x}` is not a capture of the path `/p/{s}`"],
        ),
        (
            "url reference in the host",
            &format!("{R}    upstream: {{url: \"http://{{s}}.h/\"}}\n"),
            &["test.yaml:4:21: routes[0].upstream.url: the URL's scheme, host and port must be written out: `{name}` references may only appear in its path or query"],
        ),
        (
            "url scheme",
            &format!("{R}    upstream: {{url: \"ftp://h/{{s}}\"}}\n"),
            &["test.yaml:4:21: routes[0].upstream.url: URL scheme must be http or https, not `ftp`"],
        ),
        (
            "url relative",
            &format!("{R}    upstream: {{url: \"/x/\"}}\n"),
            &["test.yaml:4:21: routes[0].upstream.url: invalid URL `/x/`: relative URL without a base"],
        ),
        (
            "header name and value",
            &format!("{R}    upstream:\n      url: \"http://h/{{s}}\"\n      headers: {{\"Bad Name\": x, X-Ok: \"a\\r\\nb\"}}\n"),
            &[
                "test.yaml:6:17: routes[0].upstream.headers.Bad Name: `Bad Name` is not a valid header name",
                "test.yaml:6:38: routes[0].upstream.headers.X-Ok: a header value must not contain control characters (CR, LF, NUL)",
            ],
        ),
    ]);
}

#[test]
fn env_errors() {
    check(&[
        (
            "header variable",
            &format!("{R}    upstream:\n      url: \"http://h/{{s}}\"\n      headers: {{Authorization: \"Bearer ${{NOPE}}\"}}\n"),
            &["test.yaml:6:32: routes[0].upstream.headers.Authorization: environment variable `NOPE` is not set (use ${NOPE:-default} for a fallback)"],
        ),
        (
            "url variable",
            &format!("{R}    upstream: {{url: \"http://${{NOPE}}/{{s}}\"}}\n"),
            &["test.yaml:4:21: routes[0].upstream.url: environment variable `NOPE` is not set (use ${NOPE:-default} for a fallback)"],
        ),
        (
            "proxy variable",
            "routes:\n  - {name: a, path: /a, proxy: \"http://${X\"}\n",
            &["test.yaml:2:32: routes[0].proxy: unterminated `${`: write ${NAME}, or $$ for a literal `$`"],
        ),
        (
            "jwt secret variable",
            &format!("{ROUTE}    auth: {{cookie: c, jwt: {{algorithm: HS256, secret_env: NOPE}}}}\n"),
            &["test.yaml:5:59: routes[0].auth.jwt.secret_env: environment variable `NOPE` is not set or empty"],
        ),
    ]);
}

#[test]
fn cross_field_errors() {
    check(&[
        (
            "upstream and proxy",
            &format!("{ROUTE}    proxy: \"http://h\"\n"),
            &["test.yaml:5:12: routes[0].proxy: a route has either `upstream` (fan-out) or `proxy` (pass-through), never both"],
        ),
        (
            "neither upstream nor proxy",
            R,
            &["test.yaml:2:5: routes[0]: a route needs `upstream` (fan-out) or `proxy` (pass-through)"],
        ),
        (
            "fan-out keys on a proxy route",
            "routes:\n  - {name: a, path: /a, proxy: \"http://h\", heartbeat: 1s, topic: t, replay: {events: 1}, direct_write: false}\n",
            &[
                "test.yaml:2:55: routes[0].heartbeat: applies only to fan-out routes (routes with `upstream`)",
                "test.yaml:2:66: routes[0].topic: applies only to fan-out routes (routes with `upstream`)",
                "test.yaml:2:86: routes[0].replay.events: applies only to fan-out routes (routes with `upstream`)",
                "test.yaml:2:104: routes[0].direct_write: applies only to fan-out routes (routes with `upstream`)",
            ],
        ),
        (
            "proxy url query",
            "routes:\n  - {name: a, path: /a, proxy: \"http://h/?q=1\"}\n",
            &["test.yaml:2:32: routes[0].proxy: a proxy URL must not have a query"],
        ),
        (
            "duplicate route names",
            &format!("{ROUTE}  - {{name: r, path: /b, proxy: \"http://h\"}}\n"),
            &["test.yaml:5:12: routes[1].name: route name `r` is already used by routes[0]"],
        ),
        (
            "star with credentials",
            &format!("{ROUTE}    cors: {{origins: [\"*\"], credentials: true}}\n"),
            &["test.yaml:5:22: routes[0].cors.origins[0]: `*` cannot be combined with credentials: true (browsers refuse it); list the origins instead"],
        ),
        (
            "bad origins",
            &format!("{ROUTE}    cors: {{origins: [\"https://a.com/\", \"a.com\"]}}\n"),
            &[
                "test.yaml:5:22: routes[0].cors.origins[0]: an origin has no path, query or fragment: drop `/`",
                "test.yaml:5:40: routes[0].cors.origins[1]: `a.com` is not an origin: write scheme://host[:port], e.g. https://app.example.com",
            ],
        ),
        (
            "backoff initial above max, in defaults",
            &format!("defaults:\n  upstream_backoff: {{initial: 5s, max: 1s}}\n{ROUTE}"),
            &["test.yaml:2:40: defaults.upstream_backoff.max: upstream_backoff.initial (5s) must not be larger than upstream_backoff.max (1s)"],
        ),
        (
            "backoff initial above max, route against defaults",
            &format!("{ROUTE}    upstream_backoff: {{initial: 1m}}\n"),
            &["test.yaml:5:33: routes[0].upstream_backoff.initial: upstream_backoff.initial (60s) must not be larger than upstream_backoff.max (30s)"],
        ),
        (
            "backoff max zero",
            &format!("defaults:\n  upstream_backoff: {{initial: 0s, max: 0s}}\n{ROUTE}"),
            &["test.yaml:2:40: defaults.upstream_backoff.max: must be greater than 0s"],
        ),
        (
            "client queue below max event size",
            &format!("{ROUTE}    client_queue: 64KiB\n"),
            &["test.yaml:5:19: routes[0].client_queue: client_queue (65536B) must be at least max_event_size (1048576B), or every large event disconnects its clients"],
        ),
        (
            "explicit address used twice",
            &format!("admin: \"[::1]:1\"\nlisten: [\"[::1]:1\", \"[::1]:2\"]\ntls: {{listen: \"[::1]:2\", cert: ../../configs/dev/localhost-cert.pem, key: ../../configs/dev/localhost-key.pem}}\n{ROUTE}"),
            &[
                "test.yaml:2:10: listen[0]: address [::1]:1 is already used by `admin`",
                "test.yaml:3:15: tls.listen: address [::1]:2 is already used by `listen[1]`",
            ],
        ),
        (
            "address used twice",
            &format!("listen: [\"127.0.0.1:9090\"]\n{ROUTE}"),
            &["test.yaml:1:10: listen[0]: address 127.0.0.1:9090 is already used by `admin` (its default)"],
        ),
    ]);
}

#[test]
fn auth_errors() {
    let jwt = |body: &str| format!("{ROUTE}    auth:\n      cookie: sid\n      jwt: {{{body}}}\n");
    check(&[
        (
            "missing cookie",
            &format!("{ROUTE}    auth: {{}}\n"),
            &["test.yaml:5:11: routes[0].auth.cookie: required key is missing"],
        ),
        (
            "bad cookie name",
            &format!("{ROUTE}    auth: {{cookie: \"a b\"}}\n"),
            &["test.yaml:5:20: routes[0].auth.cookie: `a b` is not a valid cookie name"],
        ),
        (
            "both keys",
            &jwt("algorithm: HS256, secret_env: SESSION_SECRET, key_file: k.pem"),
            &["test.yaml:7:69: routes[0].auth.jwt.key_file: set exactly one of `secret_env` and `key_file`, not both"],
        ),
        (
            "no key",
            &jwt("algorithm: HS256"),
            &["test.yaml:7:12: routes[0].auth.jwt: set `secret_env` (HS256/384/512) or `key_file` (RS*, PS*, ES*, EdDSA)"],
        ),
        (
            "unknown algorithm",
            &jwt("algorithm: none, secret_env: SESSION_SECRET"),
            &["test.yaml:7:24: routes[0].auth.jwt.algorithm: unknown algorithm `none`; expected one of: HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"],
        ),
        (
            "secret with a public-key algorithm",
            &jwt("algorithm: RS256, secret_env: SESSION_SECRET"),
            &["test.yaml:7:43: routes[0].auth.jwt.secret_env: this algorithm verifies with a public key: use `key_file`, not `secret_env`"],
        ),
        (
            "key file with HMAC",
            &jwt("algorithm: HS512, key_file: k.pem"),
            &["test.yaml:7:41: routes[0].auth.jwt.key_file: HS* algorithms verify with a shared secret: use `secret_env`, not `key_file`"],
        ),
        (
            "key file missing",
            &jwt("algorithm: ES256, key_file: k.pem"),
            &["test.yaml:7:41: routes[0].auth.jwt.key_file: cannot read key file `k.pem`: no such file"],
        ),
        (
            "expired event with a line break",
            &jwt("algorithm: HS256, secret_env: SESSION_SECRET, expired_event: \"a\\nb\""),
            &["test.yaml:7:74: routes[0].auth.jwt.expired_event: an event type must be non-empty and have no control characters"],
        ),
    ]);
}

#[test]
fn every_error_is_reported_at_once() {
    let text = "\
listen: nowhere
threads: many
defaults:
  heartbeat: 15
  client_queue: 1MB
limits: {max_clients: 0}
routes:
  - name: a
    path: /a/{x}
    params: {y: \"(\"}
    upstream: {url: \"http://h/{z}\"}
    heartbeet: 1s
  - name: a
    path: b
    proxy: \"http://h\"
    cors: {origins: [\"*\"], credentials: true}
";
    let got = errors(text);
    let want = [
        "test.yaml:1:9: listen: `nowhere` is not a socket address: write IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080",
        "test.yaml:2:10: threads: expected a whole number, found `many`",
        "test.yaml:4:14: defaults.heartbeat: `15` has no unit: write ms, s, m or h (for example 15s)",
        "test.yaml:5:17: defaults.client_queue: unknown size unit `MB` in `1MB`: use B, KiB, MiB or GiB",
        "test.yaml:6:23: limits.max_clients: must be greater than 0",
        "test.yaml:10:14: routes[0].params.y: `y` is not a capture of the path `/a/{x}`",
        "test.yaml:10:17: routes[0].params.y: invalid regex: unclosed group",
        "test.yaml:11:21: routes[0].upstream.url: `{z}` is not a capture of the path `/a/{x}`",
        "test.yaml:12:5: routes[0].heartbeet: unknown key; did you mean `heartbeat`?",
        "test.yaml:13:11: routes[1].name: route name `a` is already used by routes[0]",
        "test.yaml:14:11: routes[1].path: a path must start with `/`",
        "test.yaml:16:22: routes[1].cors.origins[0]: `*` cannot be combined with credentials: true (browsers refuse it); list the origins instead",
    ];
    assert_eq!(got, want);
}

#[test]
fn display_is_one_line_per_error() {
    let err = super::support::load("routes: []\nadmin: x\n").unwrap_err();
    assert_eq!(err.len(), 2);
    assert_eq!(
        err.to_string(),
        "test.yaml:1:9: routes: at least one route is needed\n\
         test.yaml:2:8: admin: `x` is not a socket address: write IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"
    );
}
