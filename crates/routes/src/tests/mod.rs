//! Table-driven tests of the route table, including hostile paths.

mod captures;
mod hostile;
mod matching;
mod segments;

use http::Method;
use sse_gateway_config::from_str;

use crate::{RouteMatch, RouteTable, Target};

const CONFIG: &str = r#"
routes:
  - name: prices
    path: /prices/{symbol}
    params: { symbol: "[A-Z]{1,8}" }
    topic: "prices/{symbol}"
    upstream: { url: "http://127.0.0.1:9000/stream/{symbol}" }
  - name: numbered
    path: /prices/{id}
    params: { id: "[0-9]+" }
    upstream: { url: "http://127.0.0.1:9000/n/{id}" }
  - name: feeds
    path: /feeds/{*rest}
    upstream: { url: "http://127.0.0.1:9000/f/{rest}?src=gw" }
  - name: status
    path: /status
    upstream: { url: "http://127.0.0.1:9000/status" }
  - name: any
    path: /any/{name}/x/{other}
    topic: "t/{name}/{other}"
    upstream: { url: "https://up.example/a/{name}?o={other}" }
  - name: lenient
    path: /lenient/{name}
    lenient_captures: true
    upstream: { url: "http://127.0.0.1:9000/l/{name}" }
  - name: api
    path: /api/{*rest}
    proxy: "http://127.0.0.1:9000"
  - name: root
    path: /
    proxy: "http://127.0.0.1:9001/base"
"#;

/// What a request should give, in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    FanOut(&'static str, String, String),
    Proxy(&'static str, &'static str),
    NotFound,
    NotAllowed(&'static str),
}

fn table() -> RouteTable {
    let empty: &[(&str, &str)] = &[];
    RouteTable::new(&from_str("routes.yaml", CONFIG, &empty).unwrap())
}

fn fan(route: &'static str, topic: &str, url: &str) -> Want {
    Want::FanOut(route, topic.to_owned(), url.to_owned())
}

fn outcome(table: &RouteTable, method: &Method, path: &str) -> Want {
    match table.match_request(method, path) {
        RouteMatch::NotFound => Want::NotFound,
        RouteMatch::MethodNotAllowed { route, allow, .. } => {
            assert_eq!(allow, "GET, HEAD, OPTIONS");
            Want::NotAllowed(leak(&route.name))
        }
        RouteMatch::Matched(m) => {
            assert_eq!(&m.route.name, &table.routes()[m.index].name);
            assert_eq!(&m.method, method);
            match m.target {
                Target::FanOut {
                    topic,
                    upstream_url,
                    ..
                } => Want::FanOut(leak(&m.route.name), topic, upstream_url),
                Target::Proxy { base_url, .. } => {
                    Want::Proxy(leak(&m.route.name), leak(base_url.as_str()))
                }
            }
        }
    }
}

/// Test-only: route names and URLs as `'static` for easy comparison.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn check(cases: &[(Method, &str, Want)]) {
    let table = table();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(method, path, want)| {
            let got = outcome(&table, method, path);
            (got != *want).then(|| format!("{method} {path:?}: want {want:?}, got {got:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_match_hands_back_its_own_routes_plan() {
    let empty: &[(&str, &str)] = &[];
    let config = from_str("routes.yaml", CONFIG, &empty).unwrap();
    let table: RouteTable<String> = RouteTable::with_plans(&config, |route| {
        Ok::<_, ()>(format!("plan of {}", route.name))
    })
    .unwrap();
    let planned = |method: &Method, path: &str| match table.match_request(method, path) {
        RouteMatch::Matched(m) => Some((m.plan.clone(), m.route.name.clone())),
        RouteMatch::MethodNotAllowed { plan, route, .. } => {
            Some((plan.clone(), route.name.clone()))
        }
        RouteMatch::NotFound => None,
    };
    let mut seen = 0;
    for path in ["/prices/AAPL", "/api/a", "/nope"] {
        for method in [Method::GET, Method::POST] {
            if let Some((plan, name)) = planned(&method, path) {
                assert_eq!(plan, format!("plan of {name}"), "{method} {path}");
                seen += 1;
            }
        }
    }
    assert!(seen >= 3, "matched {seen}");
    let refused: Result<RouteTable<()>, &str> = RouteTable::with_plans(&config, |_| Err("no"));
    assert_eq!(refused.err(), Some("no"));
}
