//! Ordinary requests: literals, captures, catch-alls, methods, order.

use http::Method;

use super::{check, fan, table, Want};
use crate::RouteMatch;

#[test]
fn matching_table() {
    let get = || Method::GET;
    check(&[
        (
            get(),
            "/prices/AAPL",
            fan("prices", "prices/AAPL", "http://127.0.0.1:9000/stream/AAPL"),
        ),
        (
            Method::HEAD,
            "/prices/AAPL",
            fan("prices", "prices/AAPL", "http://127.0.0.1:9000/stream/AAPL"),
        ),
        (
            Method::OPTIONS,
            "/prices/AAPL",
            fan("prices", "prices/AAPL", "http://127.0.0.1:9000/stream/AAPL"),
        ),
        (
            get(),
            "/prices/AAPL?since=1&x=/y",
            fan("prices", "prices/AAPL", "http://127.0.0.1:9000/stream/AAPL"),
        ),
        // The params regex fails for the first route, so the second one is tried.
        (
            get(),
            "/prices/42",
            fan("numbered", "/prices/42", "http://127.0.0.1:9000/n/42"),
        ),
        (get(), "/prices/aapl", Want::NotFound),
        (get(), "/prices/TOOLONGSYM", Want::NotFound),
        (get(), "/prices", Want::NotFound),
        (get(), "/prices/", Want::NotFound),
        (get(), "/prices/AAPL/", Want::NotFound),
        (get(), "/prices/AAPL/x", Want::NotFound),
        (get(), "/Prices/AAPL", Want::NotFound),
        (get(), "/%70rices/AAPL", Want::NotFound),
        (
            get(),
            "/status",
            fan("status", "/status", "http://127.0.0.1:9000/status"),
        ),
        (get(), "/status/", Want::NotFound),
        (
            get(),
            "/status?x",
            fan("status", "/status", "http://127.0.0.1:9000/status"),
        ),
        (
            get(),
            "/feeds/a",
            fan("feeds", "/feeds/a", "http://127.0.0.1:9000/f/a?src=gw"),
        ),
        (
            get(),
            "/feeds/a/b%2Cc/d",
            fan(
                "feeds",
                "/feeds/a/b,c/d",
                "http://127.0.0.1:9000/f/a/b%2Cc/d?src=gw",
            ),
        ),
        (get(), "/feeds", Want::NotFound),
        (get(), "/feeds/", Want::NotFound),
        (get(), "/feeds/a/", Want::NotFound),
        (get(), "/feeds/a//b", Want::NotFound),
        (
            get(),
            "/any/caf%C3%A9/x/a%3Fb%26c",
            fan(
                "any",
                "t/café/a?b&c",
                "https://up.example/a/caf%C3%A9?o=a%3Fb%26c",
            ),
        ),
        (get(), "/any/a/y/b", Want::NotFound),
        (Method::POST, "/prices/AAPL", Want::NotAllowed("prices")),
        (Method::DELETE, "/feeds/x", Want::NotAllowed("feeds")),
        (Method::PUT, "/status", Want::NotAllowed("status")),
        // A path that matches no fan-out route is 404 whatever the method.
        (Method::POST, "/nothing", Want::NotFound),
        (
            get(),
            "/api/v1/users?id=3",
            Want::Proxy("api", "http://127.0.0.1:9000/"),
        ),
        (
            Method::POST,
            "/api/v1/users",
            Want::Proxy("api", "http://127.0.0.1:9000/"),
        ),
        (
            Method::PATCH,
            "/api/x",
            Want::Proxy("api", "http://127.0.0.1:9000/"),
        ),
        (get(), "/api", Want::NotFound),
        (
            get(),
            "/",
            Want::Proxy("root", "http://127.0.0.1:9001/base"),
        ),
        (
            get(),
            "/?x=1",
            Want::Proxy("root", "http://127.0.0.1:9001/base"),
        ),
        (get(), "", Want::NotFound),
        (get(), "prices/AAPL", Want::NotFound),
    ]);
}

#[test]
fn matched_accessors() {
    let table = table();
    let m = table
        .match_request(&Method::OPTIONS, "/any/n/x/o")
        .matched()
        .unwrap();
    assert!(m.is_preflight());
    assert_eq!(m.index, 4);
    assert_eq!(m.topic(), Some("t/n/o"));
    assert_eq!(m.upstream_url(), "https://up.example/a/n?o=o");
    assert_eq!(m.captures.get("name"), Some("n"));
    assert_eq!(m.captures.get("nope"), None);
    assert_eq!(
        m.captures.iter().collect::<Vec<_>>(),
        [("name", "n"), ("other", "o")]
    );
    assert_eq!(m.captures.len(), 2);

    let m = table
        .match_request(&Method::GET, "/api/a")
        .matched()
        .unwrap();
    assert!(!m.is_preflight());
    assert_eq!(m.topic(), None);
    assert_eq!(m.upstream_url(), "http://127.0.0.1:9000/");
    assert_eq!(m.captures.get("rest"), Some("a"));

    let m = table
        .match_request(&Method::GET, "/status")
        .matched()
        .unwrap();
    assert!(m.captures.is_empty());
    assert!(matches!(
        table.match_request(&Method::GET, "/nope"),
        RouteMatch::NotFound
    ));
    assert!(table
        .match_request(&Method::POST, "/status")
        .matched()
        .is_none());
}

#[test]
fn params_apply_to_the_whole_catch_all() {
    let yaml = r#"
routes:
  - name: deep
    path: /d/{*rest}
    params: { rest: "[a-z]+(/[a-z]+)*" }
    upstream: { url: "http://h/{rest}" }
"#;
    let empty: &[(&str, &str)] = &[];
    let table =
        crate::RouteTable::new(&sse_gateway_config::from_str("t.yaml", yaml, &empty).unwrap());
    let m = table
        .match_request(&Method::GET, "/d/a/b")
        .matched()
        .unwrap();
    assert_eq!(m.topic(), Some("/d/a/b"));
    assert_eq!(m.upstream_url(), "http://h/a/b");
    assert!(table
        .match_request(&Method::GET, "/d/a/B")
        .matched()
        .is_none());
    assert!(table
        .match_request(&Method::GET, "/d/a%20b")
        .matched()
        .is_none());
}
