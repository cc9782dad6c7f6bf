//! Configurations that load, and what they load into.

use std::path::PathBuf;
use std::time::Duration;

use super::support::{load, ENV, ROUTE, SESSION_SECRET};
use crate::{
    from_str, GatewayConfig, JwtAlgorithm, JwtKey, Limits, LogFormat, MetricsConfig, OriginPattern,
    RouteKind, TemplatePart, TopicSettingsConfig,
};

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn load_shipped(name: &str) -> GatewayConfig {
    let path = configs_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    match from_str(&path.display().to_string(), &text, &ENV) {
        Ok(config) => config,
        Err(errors) => panic!("{name} does not load:\n{errors}"),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn reference_yaml_loads_with_every_key() {
    let c = load_shipped("reference.yaml");
    assert_eq!(c.listen, ["127.0.0.1:8080".parse().unwrap()]);
    assert_eq!(c.admin, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(c.threads, 2);
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.listen, ["127.0.0.1:8443".parse().unwrap()]);
    assert!(tls.cert.ends_with("dev/localhost-cert.pem"));
    assert_eq!(tls.h2_max_concurrent_streams, 100);
    assert!(!c.h2c);
    assert_eq!(c.shutdown_grace, secs(10));
    assert_eq!(c.runtime_dir.as_deref(), Some("/run/sse-gateway".as_ref()));
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.defaults.gap_event.as_deref(), Some("gap"));
    assert_eq!(c.defaults.replay.max_bytes, 8 << 20);
    assert_eq!(c.defaults.upstream_answer_timeout, secs(5));
    assert!(!c.defaults.resume_from_client);
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.metrics, MetricsConfig::default());
    assert_eq!(c.routes.len(), 2);

    let prices = &c.routes[0];
    assert_eq!(prices.name, "prices");
    assert!(prices.params["symbol"].is_match("AAPL"));
    assert!(!prices.params["symbol"].is_match("AAPL1"));
    let fan_out = prices.fan_out().unwrap();
    assert_eq!(fan_out.topic.as_str(), "prices/{symbol}");
    assert_eq!(
        fan_out.upstream.headers,
        [("Authorization".into(), "Bearer t0ken".into())]
    );
    let ca = fan_out.upstream.ca_file.as_ref().unwrap();
    assert!(ca.ends_with("dev/localhost-cert.pem"));
    assert!(!fan_out.upstream.insecure_skip_verify);
    assert_eq!(fan_out.settings.heartbeat, Some(secs(10)));
    assert_eq!(fan_out.settings.replay.events, 500);
    assert_eq!(fan_out.settings.replay.max_age, secs(300));
    assert_eq!(fan_out.settings.max_topics, Some(500));
    assert!(!prices.lenient_captures);
    let cors = prices.cors.as_ref().unwrap();
    assert!(cors.credentials);
    assert!(!cors.allow_null, "Origin: null is refused by default");
    assert_eq!(cors.max_age, Some(secs(600)));
    assert_eq!(
        cors.origins[0],
        OriginPattern::Exact("https://app.example.com".into())
    );
    let jwt = prices.auth.as_ref().unwrap().jwt.as_ref().unwrap();
    assert_eq!(jwt.algorithm, JwtAlgorithm::ES256);
    assert!(matches!(&jwt.key, JwtKey::KeyFile(p) if p.ends_with("dev/jwt-es256-public.pem")));
    assert_eq!(jwt.audience, ["sse-gateway"]);
    assert_eq!(jwt.expired_event, "session_expired");

    let api = &c.routes[1];
    let proxy = api.proxy().unwrap();
    assert_eq!(proxy.url.as_str(), "http://127.0.0.1:9000/");
    assert_eq!(proxy.connect_timeout, secs(2));
}

#[test]
fn reference_yaml_loads_without_any_variable() {
    let path = configs_dir().join("reference.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let empty: &[(&str, &str)] = &[];
    let c = from_str(&path.display().to_string(), &text, &empty).unwrap();
    let headers = &c.routes[0].fan_out().unwrap().upstream.headers;
    assert_eq!(headers[0].1, "Bearer dev-token");
}

#[test]
fn gateway_yaml_loads() {
    let c = load_shipped("gateway.yaml");
    assert_eq!(c.routes.len(), 1);
    let upstream = &c.routes[0].fan_out().unwrap().upstream;
    assert_eq!(
        upstream.url.as_str(),
        "http://127.0.0.1:9000/stream/{symbol}"
    );
}

#[test]
fn minimal_config_gets_every_default() {
    let c = load(ROUTE).unwrap();
    assert_eq!(c.listen, ["127.0.0.1:8080".parse().unwrap()]);
    assert_eq!(c.admin, "127.0.0.1:9090".parse().unwrap());
    assert!(c.threads >= 1);
    assert!(c.tls.is_none());
    assert_eq!(c.shutdown_grace, secs(10));
    assert_eq!(c.log.level, "info");
    let d = TopicSettingsConfig::default();
    assert_eq!(c.defaults, d);
    assert_eq!(d.heartbeat, Some(secs(15)));
    assert_eq!(d.client_retry, Some(secs(3)));
    assert_eq!(d.replay.events, 1000);
    assert_eq!(d.replay.max_age, secs(300));
    assert_eq!(d.client_queue, 1 << 20);
    assert_eq!(d.max_event_size, 1 << 20);
    assert_eq!(d.linger, secs(30));
    assert_eq!(d.upstream_backoff.initial, Duration::from_millis(250));
    assert_eq!(d.upstream_backoff.max, secs(30));
    assert_eq!(d.upstream_idle_timeout, Some(secs(45)));
    assert_eq!(d.stop_holdoff, secs(30));
    assert_eq!(d.gap_event, None);
    assert_eq!(d.write_window, Duration::ZERO);
    assert_eq!(d.coalesce_window, Duration::from_millis(5));
    assert_eq!(d.upstream_connect_timeout, secs(5));
    assert!(d.direct_write, "the direct path is on by default");
    assert_eq!(c.limits.max_clients, 100_000);
    assert_eq!(c.limits.max_clients_per_topic, 50_000);
    assert_eq!(c.limits.max_topics, 10_000);
    assert_eq!(c.metrics.max_topic_series, 1000);
    let route = &c.routes[0];
    assert!(route.cors.is_none() && route.auth.is_none() && route.params.is_empty());
    assert_eq!(route.fan_out().unwrap().settings, d);
}

#[test]
fn defaults_then_route_override_per_key() {
    let text = format!(
        "defaults:\n  heartbeat: 0s\n  replay: {{events: 0, max_age: 1m}}\n  \
         upstream_idle_timeout: 0s\n  direct_write: false\n{ROUTE}    client_retry: 0s\n    \
         replay: {{events: 7}}\n    upstream_backoff: {{max: 1s}}\n"
    );
    let c = load(&text).unwrap();
    assert_eq!(c.defaults.heartbeat, None);
    assert_eq!(c.defaults.replay.events, 0);
    let s = &c.routes[0].fan_out().unwrap().settings;
    assert_eq!(s.heartbeat, None, "inherited from defaults");
    assert_eq!(s.client_retry, None);
    assert_eq!(s.upstream_idle_timeout, None);
    assert_eq!(s.replay.events, 7);
    assert_eq!(s.replay.max_age, secs(60), "max_age kept from defaults");
    assert_eq!(s.upstream_backoff.initial, Duration::from_millis(250));
    assert_eq!(s.upstream_backoff.max, secs(1));
    assert!(!c.defaults.direct_write);
    assert!(!s.direct_write, "direct_write inherited from defaults");
}

#[test]
fn single_string_listen_env_and_default_topic() {
    let text = "listen: 0.0.0.0:80\nh2c: true\nlog: {format: json, level: \"info,hub=debug\"}\n\
        routes:\n  - name: feeds\n    path: /feeds/{*rest}\n    \
        upstream:\n      url: \"http://${HOST}:9000/f/{rest}?x=1\"\n      headers: {X-A: \"$${HOST}\"}\n";
    let c = load(text).unwrap();
    assert_eq!(c.listen, ["0.0.0.0:80".parse().unwrap()]);
    assert!(c.h2c);
    assert_eq!(c.log.format, LogFormat::Json);
    let f = c.routes[0].fan_out().unwrap();
    assert_eq!(
        f.upstream.url.as_str(),
        "http://127.0.0.1:9000/f/{rest}?x=1"
    );
    assert_eq!(f.upstream.headers, [("X-A".into(), "${HOST}".into())]);
    assert_eq!(
        f.topic.parts(),
        [
            TemplatePart::Literal("/feeds/".into()),
            TemplatePart::Ref("rest".into())
        ]
    );
}

#[test]
fn hmac_jwt_reads_the_secret_from_the_env_source() {
    let text = format!(
        "{ROUTE}    auth:\n      cookie: sid\n      jwt: {{algorithm: HS256, secret_env: SESSION_SECRET}}\n"
    );
    let c = load(&text).unwrap();
    let jwt = c.routes[0].auth.as_ref().unwrap().jwt.as_ref().unwrap();
    match &jwt.key {
        JwtKey::Secret { env_var, secret } => {
            assert_eq!(env_var, "SESSION_SECRET");
            assert_eq!(secret.expose(), SESSION_SECRET);
            assert!(!format!("{secret:?}").contains(SESSION_SECRET));
        }
        JwtKey::KeyFile(_) => panic!("expected a secret"),
    }
    assert_eq!(jwt.expired_event, "auth_expired", "the default");
}

#[test]
fn proxy_route_and_root_path() {
    let text = "routes:\n  - {name: root, path: /, proxy: \"https://example.com/base\"}\n";
    let c = load(text).unwrap();
    assert!(matches!(&c.routes[0].kind, RouteKind::Proxy(p) if p.url.path() == "/base"));
    assert_eq!(c.routes[0].path.segments(), []);
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let path = configs_dir().join("gateway.yaml");
    let config = crate::load(&path).unwrap();
    assert_eq!(config.routes[0].name, "prices");

    let missing = configs_dir().join("no-such-file.yaml");
    let errors = crate::load(&missing).unwrap_err();
    let line = errors.to_string();
    let prefix = format!(
        "{}:1:1: <root>: cannot read the configuration file: ",
        missing.display()
    );
    assert!(line.starts_with(&prefix), "{line}");
    assert_eq!(errors.len(), 1);
}

#[test]
fn env_sources() {
    use crate::EnvSource;
    let map: std::collections::HashMap<String, String> =
        [("A".to_owned(), "1".to_owned())].into_iter().collect();
    assert_eq!(map.var("A").as_deref(), Some("1"));
    assert_eq!(map.var("B"), None);
    let text = "routes:\n  - {name: a, path: /a, proxy: \"http://${A}.example\"}\n";
    let c = from_str("x.yaml", text, &map).unwrap();
    assert_eq!(
        c.routes[0].proxy().unwrap().url.host_str(),
        Some("1.example")
    );
}

#[test]
fn cors_allow_null_is_read() {
    let yaml = format!("{ROUTE}    cors: {{origins: [\"https://a.test\"], allow_null: true}}\n");
    let config = load(&yaml).unwrap();
    assert!(config.routes[0].cors.as_ref().unwrap().allow_null);
}

#[test]
fn tls_example_loads_with_its_stream_limit() {
    let c = load_shipped("examples/tls.yaml");
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.h2_max_concurrent_streams, 256);
    assert!(tls.key.ends_with("dev/localhost-key.pem"));
    assert!(c.h2c);
}

/// Every file in configs/examples/ loads; the only warning is the one
/// auth.yaml documents (a presence-only cookie).
#[test]
fn every_example_loads() {
    let mut names: Vec<String> = std::fs::read_dir(configs_dir().join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for name in &names {
        let c = load_shipped(&format!("examples/{name}"));
        let warnings: Vec<String> = c.warnings.iter().map(|w| w.message.clone()).collect();
        let want: &[&str] = match name.as_str() {
            "auth.yaml" => &["the cookie's value is not verified (no auth.jwt): any request carrying a `member_session` cookie is admitted"],
            _ => &[],
        };
        assert_eq!(warnings, want, "examples/{name}");
    }
    for name in ["reference.yaml", "gateway.yaml"] {
        assert_eq!(load_shipped(name).warnings, [], "{name}");
    }
}
