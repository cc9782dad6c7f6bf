//! Hostile and odd paths: encoded separators, traversal, control
//! characters, bad escapes, huge inputs. None may panic or reach a topic or
//! upstream URL.

use http::Method;

use super::{check, fan, outcome, table, Want};
use crate::MAX_PATH_LEN;

#[test]
fn hostile_table() {
    let get = || Method::GET;
    check(&[
        (get(), "/prices/A%2FB", Want::NotFound),
        (get(), "/feeds/a%2Fb", Want::NotFound),
        (get(), "/feeds/a%2fb/c", Want::NotFound),
        (get(), "/feeds/..", Want::NotFound),
        (get(), "/feeds/a/../b", Want::NotFound),
        (get(), "/feeds/%2e%2e/etc", Want::NotFound),
        (get(), "/feeds/%2E%2E%2Fetc", Want::NotFound),
        (get(), "/feeds/./a", Want::NotFound),
        (get(), "/feeds/%2e", Want::NotFound),
        (get(), "/feeds/a..b", Want::NotFound),
        (get(), "/feeds/a%00b", Want::NotFound),
        (get(), "/feeds/%00", Want::NotFound),
        (get(), "/feeds/a%0d%0aSet-Cookie:%20x", Want::NotFound),
        (get(), "/feeds/a%0Ab", Want::NotFound),
        (get(), "/feeds/a%0D", Want::NotFound),
        (get(), "/feeds/%09", Want::NotFound),
        (get(), "/feeds/%", Want::NotFound),
        (get(), "/feeds/%4", Want::NotFound),
        (get(), "/feeds/%zz", Want::NotFound),
        (get(), "/feeds/%C3%28", Want::NotFound),
        (get(), "/feeds/%FF", Want::NotFound),
        (get(), "//feeds/a", Want::NotFound),
        (get(), "/feeds//a", Want::NotFound),
        // The api proxy route applies the same capture checks to its catch-all.
        (get(), "/api/%2e%2e/admin", Want::NotFound),
        (Method::POST, "/api/a%2Fb", Want::NotFound),
        // Encoded characters that are safe are decoded into the topic and
        // re-encoded into the upstream URL.
        (
            get(),
            "/feeds/a%3Fb%23c",
            fan(
                "feeds",
                "/feeds/a?b#c",
                "http://127.0.0.1:9000/f/a%3Fb%23c?src=gw",
            ),
        ),
        (
            get(),
            "/feeds/%40%3A%25",
            fan(
                "feeds",
                "/feeds/@:%",
                "http://127.0.0.1:9000/f/%40%3A%25?src=gw",
            ),
        ),
        (
            get(),
            "/feeds/a%5Cb",
            fan(
                "feeds",
                "/feeds/a\\b",
                "http://127.0.0.1:9000/f/a%5Cb?src=gw",
            ),
        ),
        (get(), "/feeds/...a", Want::NotFound),
        (
            get(),
            "/feeds/a#/../../x",
            fan("feeds", "/feeds/a", "http://127.0.0.1:9000/f/a?src=gw"),
        ),
    ]);
}

#[test]
fn very_long_paths() {
    let table = table();
    let at_limit = format!("/feeds/{}", "a".repeat(MAX_PATH_LEN - "/feeds/".len()));
    assert!(matches!(
        outcome(&table, &Method::GET, &at_limit),
        Want::FanOut(..)
    ));
    let over = format!("{at_limit}a");
    assert_eq!(outcome(&table, &Method::GET, &over), Want::NotFound);
    let many_segments = format!("/feeds{}", "/a".repeat(4000));
    assert!(matches!(
        outcome(&table, &Method::GET, &many_segments),
        Want::FanOut(..)
    ));
    let huge = format!("/feeds/{}", "%2F".repeat(1_000_000));
    assert_eq!(outcome(&table, &Method::GET, &huge), Want::NotFound);
    let many_slashes = "/".repeat(100_000);
    assert_eq!(outcome(&table, &Method::GET, &many_slashes), Want::NotFound);
}

#[test]
fn no_input_panics() {
    let table = table();
    let bytes: Vec<char> = "/%.a?#\u{0}\r\n\u{e9}2Ffe".chars().collect();
    // Every path of up to four of these characters, after each route prefix.
    for prefix in ["/feeds/", "/prices/", "/api/", "/", ""] {
        let mut stack = vec![String::new()];
        while let Some(tail) = stack.pop() {
            let _ = table.match_request(&Method::GET, &format!("{prefix}{tail}"));
            if tail.chars().count() < 4 {
                stack.extend(bytes.iter().map(|c| format!("{tail}{c}")));
            }
        }
    }
}
