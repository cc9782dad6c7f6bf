//! Settings that would let a client reach what the file did not mean to
//! expose: captures in an upstream URL's authority, and topics shared by
//! different upstream URLs.

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
