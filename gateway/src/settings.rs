//! Configuration → the runtime crates' own settings: [`TopicSettings`],
//! [`HubLimits`], [`UpstreamSettings`] and pingora's [`ServerConf`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pingora::server::configuration::ServerConf;
use sse_gateway_codec::CodecLimits;
use sse_gateway_config::{
    CoalesceKey, GatewayConfig, Limits, SlowClientPolicy, TlsConfig, TopicSettingsConfig,
    UpstreamConfig,
};
use sse_gateway_hub::{HubLimits, TopicSettings};
use sse_gateway_sinks::{Conflation, ConflationKey};
use sse_gateway_upstream::{UpstreamSettings, UpstreamTls};

/// `client_retry` when a route has none: the `retry:` advised on refusals
/// and at shutdown still needs a value.
pub(crate) const FALLBACK_RETRY: Duration = Duration::from_secs(3);

/// How long pingora lets runtimes finish after the grace period.
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 1;

/// A route's topic settings (`None` durations become zero: off).
pub(crate) fn topic_settings(config: &TopicSettingsConfig) -> TopicSettings {
    TopicSettings {
        heartbeat: config.heartbeat.unwrap_or(Duration::ZERO),
        client_retry: config.client_retry.unwrap_or(Duration::ZERO),
        replay_events: config.replay.events,
        replay_max_age: config.replay.max_age,
        client_queue: usize::try_from(config.client_queue).unwrap_or(usize::MAX),
        linger: config.linger,
        stop_holdoff: config.stop_holdoff,
        gap_event: config.gap_event.clone(),
        write_window: config.write_window,
        replay_max_bytes: usize::try_from(config.replay.max_bytes).unwrap_or(usize::MAX),
        max_topics: config.max_topics,
        resume_from_client: config.resume_from_client,
    }
}

/// How long the first subscribers of a new topic wait for the upstream's
/// first answer.
pub(crate) fn answer_timeout(config: &TopicSettingsConfig) -> Duration {
    config.upstream_answer_timeout
}

/// The hub's global limits.
pub(crate) fn hub_limits(limits: &Limits, threads: usize) -> HubLimits {
    HubLimits {
        max_clients: limits.max_clients,
        max_clients_per_topic: limits.max_clients_per_topic,
        max_topics: limits.max_topics,
        shard_threads: threads.max(1),
        replay_memory: limits.replay_memory,
    }
}

/// One topic's upstream settings: the route's upstream and topic settings
/// with the filled URL.
pub(crate) fn upstream_settings(
    settings: &TopicSettingsConfig,
    upstream: &UpstreamConfig,
    url: url::Url,
) -> Arc<UpstreamSettings> {
    let tls = UpstreamTls {
        ca_file: upstream.ca_file.clone(),
        insecure_skip_verify: upstream.insecure_skip_verify,
    };
    Arc::new(connection_settings(
        settings,
        upstream.headers.clone(),
        tls,
        url,
    ))
}

/// The settings of one upstream connection to `url`: `settings`' timeouts,
/// backoff and event size, these headers and TLS options (also what
/// `doctor` probes with).
pub(crate) fn connection_settings(
    settings: &TopicSettingsConfig,
    headers: Vec<(String, String)>,
    tls: UpstreamTls,
    url: url::Url,
) -> UpstreamSettings {
    UpstreamSettings {
        url,
        headers,
        backoff_initial: settings.upstream_backoff.initial,
        backoff_max: settings.upstream_backoff.max,
        idle_timeout: settings.upstream_idle_timeout,
        connect_timeout: settings.upstream_connect_timeout,
        limits: CodecLimits::with_max_event_size(
            usize::try_from(settings.max_event_size).unwrap_or(usize::MAX),
        ),
        tls,
    }
}

/// The route's `slow_client: coalesce` policy, for either path's sinks
/// (`None`: slow clients are cut).
pub(crate) fn conflation(settings: &TopicSettingsConfig) -> Option<Conflation> {
    match settings.slow_client {
        SlowClientPolicy::Disconnect => None,
        SlowClientPolicy::Coalesce => Some(Conflation::new(match &settings.coalesce_by {
            CoalesceKey::EventType => ConflationKey::EventType,
            CoalesceKey::DataField(field) => ConflationKey::DataField(field.as_str().into()),
        })),
    }
}

/// The `retry` advised to clients when refused or drained: the default
/// `client_retry`, or [`FALLBACK_RETRY`] when that is off.
pub(crate) fn advised_retry(settings: &TopicSettingsConfig) -> Duration {
    settings
        .client_retry
        .filter(|d| !d.is_zero())
        .unwrap_or(FALLBACK_RETRY)
}

/// Pingora's server configuration, built from ours (never from pingora's
/// own YAML). The upgrade socket and pid file are absolute paths in the
/// private runtime directory `dir` ([`crate::runtime_dir`]), named after the
/// admin port so that an old and a new process with the same config agree,
/// and gateways sharing the directory do not collide.
pub(crate) fn server_conf(config: &GatewayConfig, dir: &Path, daemon: bool) -> ServerConf {
    let port = config.admin.port();
    ServerConf {
        threads: config.threads.max(1),
        daemon,
        grace_period_seconds: Some(config.shutdown_grace.as_secs_f64().ceil() as u64),
        graceful_shutdown_timeout_seconds: Some(SHUTDOWN_TIMEOUT_SECONDS),
        upgrade_sock: dir
            .join(format!("sse-gateway-{port}.upgrade.sock"))
            .display()
            .to_string(),
        pid_file: dir
            .join(format!("sse-gateway-{port}.pid"))
            .display()
            .to_string(),
        ..ServerConf::default()
    }
}

/// Loads the certificate chain and key the way pingora's TLS listener will
/// when it starts, and builds the rustls server configuration from them, so
/// that an unusable pair (unparsable, or a key that does not match the
/// certificate) is a start-up error naming the files. Pingora itself would
/// panic inside the listener's service while `/healthz` says ok.
pub(crate) fn check_tls_files(tls: &TlsConfig) -> anyhow::Result<()> {
    use pingora::tls::{load_certs_and_key_files, version, ServerConfig};

    let (cert, key) = (tls.cert.display(), tls.key.display());
    let (certs, private_key) = match load_certs_and_key_files(&cert.to_string(), &key.to_string()) {
        Ok(Some(pair)) => pair,
        Ok(None) => anyhow::bail!(
            "tls: no certificate in `{cert}` or no private key in `{key}` (PEM expected)"
        ),
        Err(e) => anyhow::bail!("tls: cannot load `{cert}` / `{key}`: {e}"),
    };
    pingora::tls::install_default_crypto_provider();
    ServerConfig::builder_with_protocol_versions(&[&version::TLS12, &version::TLS13])
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| {
            anyhow::anyhow!("tls: the key `{key}` cannot serve the certificate `{cert}`: {e}")
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sse_gateway_config::ProcessEnv;

    use super::*;

    const YAML: &str = r#"
admin: "127.0.0.1:9191"
threads: 3
shutdown_grace: 2500ms
defaults:
  heartbeat: 0s
  client_retry: 0s
  replay: { events: 7, max_age: 1m, max_bytes: 64KiB }
  resume_from_client: true
  upstream_answer_timeout: 2s
  client_queue: 64KiB
  max_event_size: 32KiB
  linger: 5s
  upstream_backoff: { initial: 100ms, max: 2s }
limits: { max_clients: 10, max_clients_per_topic: 5, max_topics: 3, replay_memory: 1MiB }
routes:
  - name: prices
    path: /prices/{symbol}
    params: { symbol: "[A-Z]+" }
    heartbeat: 4s
    max_topics: 2
    upstream:
      url: "http://127.0.0.1:9000/stream/{symbol}"
      headers: { X-Token: abc }
"#;

    fn config() -> GatewayConfig {
        sse_gateway_config::from_str("t.yaml", YAML, &ProcessEnv).unwrap()
    }

    #[test]
    fn topic_settings_map_every_field() {
        let config = config();
        let route = config.routes[0].fan_out().unwrap();
        let s = topic_settings(&route.settings);
        assert_eq!(s.heartbeat, Duration::from_secs(4));
        assert_eq!(s.client_retry, Duration::ZERO);
        assert_eq!(s.replay_events, 7);
        assert_eq!(s.replay_max_age, Duration::from_secs(60));
        assert_eq!(s.client_queue, 64 * 1024);
        assert_eq!(s.linger, Duration::from_secs(5));
        assert_eq!(s.gap_event, None);
        assert_eq!(s.replay_max_bytes, 64 * 1024);
        assert_eq!(s.max_topics, Some(2));
        assert!(s.resume_from_client);
        assert_eq!(answer_timeout(&route.settings), Duration::from_secs(2));
        let defaults = topic_settings(&config.defaults);
        assert_eq!(defaults.heartbeat, Duration::ZERO, "0s is off");
    }

    #[test]
    fn limits_and_upstream_map() {
        let config = config();
        let limits = hub_limits(&config.limits, 2);
        assert_eq!(
            (
                limits.max_clients,
                limits.max_clients_per_topic,
                limits.max_topics
            ),
            (10, 5, 3)
        );
        assert_eq!(limits.replay_memory, 1 << 20);
        let route = config.routes[0].fan_out().unwrap();
        let url = url::Url::parse("http://127.0.0.1:9000/stream/AAPL").unwrap();
        let up = upstream_settings(&route.settings, &route.upstream, url.clone());
        assert_eq!(up.url, url);
        assert_eq!(up.headers, vec![("X-Token".to_owned(), "abc".to_owned())]);
        assert_eq!(up.backoff_initial, Duration::from_millis(100));
        assert_eq!(up.backoff_max, Duration::from_secs(2));
        assert_eq!(up.limits.max_event_size, 32 * 1024);
        assert_eq!(advised_retry(&route.settings), FALLBACK_RETRY);
    }

    fn dev_tls(cert: &str, key: &str) -> TlsConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/dev");
        TlsConfig {
            listen: Vec::new(),
            cert: dir.join(cert),
            key: dir.join(key),
            h2_max_concurrent_streams: 100,
        }
    }

    #[test]
    fn the_dev_certificate_passes_the_tls_check() {
        check_tls_files(&dev_tls("localhost-cert.pem", "localhost-key.pem")).unwrap();
    }

    #[test]
    fn a_key_that_does_not_match_is_a_start_up_error_naming_both_files() {
        let err = check_tls_files(&dev_tls("localhost-cert.pem", "jwt-es256-private.pem"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwt-es256-private.pem"), "{err}");
        assert!(err.contains("localhost-cert.pem"), "{err}");
    }

    #[test]
    fn server_conf_is_ours() {
        let conf = server_conf(&config(), Path::new("/run/user/7/sse-gateway"), false);
        assert_eq!(conf.threads, 3);
        assert_eq!(
            conf.upgrade_sock,
            "/run/user/7/sse-gateway/sse-gateway-9191.upgrade.sock"
        );
        assert_eq!(conf.grace_period_seconds, Some(3));
        assert!(conf.graceful_shutdown_timeout_seconds.unwrap() <= 5);
        assert!(std::path::Path::new(&conf.upgrade_sock).is_absolute());
        assert!(conf.upgrade_sock.contains("9191"));
        assert!(std::path::Path::new(&conf.pid_file).is_absolute());
        assert!(!conf.daemon);
    }
}
