//! Whitespace and Unicode format characters in captures: refused (no match,
//! so 404) on fan-out routes, accepted with `lenient_captures` and on proxy
//! routes.

use http::Method;

use super::{check, fan, Want};

#[test]
fn fan_out_captures_refuse_whitespace_and_format_characters() {
    let get = || Method::GET;
    let refused = [
        "a%20b",
        "a%C2%A0b",
        "%E2%80%AE",
        "evil%E2%80%AEgpj.exe",
        "a%E2%80%8Bb",
        "\u{202e}x",
        "x\u{200b}",
        "%EF%BB%BFa",
        "a%E3%80%80",
        "%F3%A0%80%81",
    ];
    let mut cases = Vec::new();
    for capture in refused {
        cases.push((get(), format!("/feeds/{capture}"), Want::NotFound));
        cases.push((get(), format!("/feeds/ok/{capture}"), Want::NotFound));
        cases.push((get(), format!("/any/{capture}/x/ok"), Want::NotFound));
    }
    let cases: Vec<(Method, &str, Want)> = cases
        .iter()
        .map(|(m, p, w)| (m.clone(), p.as_str(), w.clone()))
        .collect();
    check(&cases);
}

#[test]
fn lenient_and_proxy_routes_accept_them() {
    let get = || Method::GET;
    check(&[
        (
            get(),
            "/lenient/a%20b",
            fan("lenient", "/lenient/a b", "http://127.0.0.1:9000/l/a%20b"),
        ),
        (
            get(),
            "/lenient/a%C2%A0b",
            fan(
                "lenient",
                "/lenient/a\u{a0}b",
                "http://127.0.0.1:9000/l/a%C2%A0b",
            ),
        ),
        (
            get(),
            "/lenient/%E2%80%AE",
            fan(
                "lenient",
                "/lenient/\u{202e}",
                "http://127.0.0.1:9000/l/%E2%80%AE",
            ),
        ),
        // Lenient is not careless: the checks every route makes still hold.
        (get(), "/lenient/a%0Ab", Want::NotFound),
        (get(), "/lenient/a%2Fb", Want::NotFound),
        (
            get(),
            "/api/a%20b",
            Want::Proxy("api", "http://127.0.0.1:9000/"),
        ),
        (
            Method::POST,
            "/api/x/a%E2%80%8Bb",
            Want::Proxy("api", "http://127.0.0.1:9000/"),
        ),
        (get(), "/api/a%00b", Want::NotFound),
    ]);
}
