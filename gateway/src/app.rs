//! [`GatewayConfig`] → a pingora [`Server`]: the public proxy service on
//! every listener, the admin app, the hub's background service (and the
//! demo upstream for `sse-gateway demo`), then the start-up summary.
//!
//! Signals ([`GatewayServer::run_forever`]): SIGTERM and SIGINT drain (stop
//! accepting, a final jittered `retry:` to every client, streams and
//! upstreams closed) and exit after `shutdown_grace`; SIGQUIT hands the
//! listening sockets to a new process started with `run --upgrade`, then
//! drains the same way.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use anyhow::Context as _;
use pingora::apps::http_app::HttpServer;
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::proxy::http_proxy;
use pingora::server::configuration::Opt;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use sse_gateway_config::{GatewayConfig, RouteKind};

use crate::demo::{self, DemoUpstream};
use crate::runtime_dir;
use crate::services::admin::Admin;
use crate::services::connections::GatedProxy;
use crate::services::hub_service::HubService;
use crate::services::proxy::GatewayProxy;
use crate::settings;
use crate::state::AppState;

/// h2 streams per connection when there is no `tls:` section (pingora's
/// default; only h2c uses it then).
const DEFAULT_H2_STREAMS: u32 = 100;

/// How to start.
#[derive(Default)]
pub(crate) struct StartOptions {
    /// `--upgrade`: take the listening sockets over from a running gateway.
    pub(crate) upgrade: bool,
    /// `--daemon`: run in the background.
    pub(crate) daemon: bool,
    /// The demo: serve the demo page and run this upstream in-process.
    pub(crate) demo: Option<DemoUpstream>,
}

/// The built server, ready to run.
pub(crate) struct GatewayServer {
    server: Server,
}

/// Pingora's Unix signal watch, except that SIGINT drains like SIGTERM
/// (pingora's own SIGINT drops every stream without a final `retry:`).
struct DrainingSignals;

/// Builds the server. Fails on a pingora configuration pingora refuses, a
/// TLS setting that cannot load, or (unless upgrading) a listener address
/// that is taken.
pub(crate) fn build(
    config: &GatewayConfig,
    options: StartOptions,
) -> anyhow::Result<GatewayServer> {
    if let Some(tls) = &config.tls {
        settings::check_tls_files(tls)?;
    }
    if !options.upgrade {
        probe_listeners(config)?;
    }
    let run_dir = runtime_dir::resolve(config);
    runtime_dir::prepare(&run_dir)?;
    let conf = settings::server_conf(config, &run_dir, options.daemon);
    runtime_dir::check_socket_path(std::path::Path::new(&conf.upgrade_sock))?;
    let conf = conf
        .validate()
        .map_err(|e| anyhow::anyhow!("pingora refused the server configuration: {e}"))?;
    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let state = Arc::new(
        AppState::new(
            config,
            options.demo.as_ref().map(|_| demo::page(config.admin)),
        )
        .context("building the metrics registry")?,
    );
    let mut hub = background_service("hub", HubService::new(state.clone()));
    hub.threads = Some(config.threads.max(1));

    let mut server_options = HttpServerOptions::default();
    server_options.h2c = config.h2c;
    let mut app = http_proxy(&server.configuration, GatewayProxy::new(state.clone()));
    app.server_options = Some(server_options);
    let mut h2 = pingora::protocols::http::v2::server::default_h2_options();
    h2.max_concurrent_streams(
        config
            .tls
            .as_ref()
            .map_or(DEFAULT_H2_STREAMS, |t| t.h2_max_concurrent_streams),
    );
    app.h2_options = Some(h2);
    // Every connection passes the gate first: the connection cap and the
    // request-header deadline (services/connections.rs).
    let gated = GatedProxy::new(app, state.connections.clone());
    let mut proxy = Service::new("sse-gateway".to_owned(), gated);
    for addr in &config.listen {
        proxy.add_listener(ListenerConfig::tcp(addr.to_string()).l4_buffer(l4_buffer()));
    }
    if let Some(tls) = &config.tls {
        for addr in &tls.listen {
            let (cert, key) = (
                tls.cert.display().to_string(),
                tls.key.display().to_string(),
            );
            let mut settings = TlsSettings::intermediate(&cert, &key)
                .map_err(|e| anyhow::anyhow!("TLS settings for {addr}: {e}"))?;
            settings.enable_h2();
            proxy.add_listener(
                ListenerConfig::tcp(addr.to_string())
                    .tls(settings)
                    .l4_buffer(l4_buffer()),
            );
        }
    }

    let mut admin = Service::new("admin".to_owned(), HttpServer::new_app(Admin::new(state)));
    admin.add_tcp(&config.admin.to_string());
    admin.threads = Some(1);

    server.add_service(hub);
    server.add_service(proxy);
    server.add_service(admin);
    if let Some(demo) = options.demo {
        server.add_service(background_service("demo upstream", demo));
    }
    Ok(GatewayServer { server })
}

// === impl GatewayServer ===

impl GatewayServer {
    /// Runs until a signal ends the process, then exits it.
    pub(crate) fn run_forever(self) -> ! {
        self.server.run(RunArgs {
            shutdown_signal: Box::new(DrainingSignals),
        });
        std::process::exit(0)
    }
}

// === impl DrainingSignals ===

#[async_trait::async_trait]
impl ShutdownSignalWatch for DrainingSignals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; only SIGKILL stops this process");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = quit.recv() => {
                tracing::info!(signal = "SIGQUIT", "upgrade: handing the listeners over, then draining");
                ShutdownSignal::GracefulUpgrade
            }
            _ = term.recv() => {
                tracing::info!(signal = "SIGTERM", "graceful shutdown");
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => {
                tracing::info!(signal = "SIGINT", "graceful shutdown");
                ShutdownSignal::GracefulTerminate
            }
        }
    }
}

/// Pingora's per-connection L4 read buffer (64 KiB, about 8.5 KiB of it
/// resident) is off: requests are small, and an SSE connection on the
/// session path would keep it for its whole life. Writes keep pingora's
/// default buffering (flushed after every body write).
fn l4_buffer() -> L4BufferSettings {
    L4BufferSettings::default().read(0)
}

/// Logs how the direct path makes a round's sends.
fn log_direct_sends() {
    use crate::services::client_stream::{batched_sends_wanted, IO_URING_ENV};
    if !batched_sends_wanted() {
        tracing::info!("direct sends: one send each ({IO_URING_ENV} is off)");
        return;
    }
    match sse_gateway_sinks::batched_sends() {
        Ok(()) => tracing::info!("direct sends: batched per offer round (io_uring)"),
        Err(e) => tracing::info!("direct sends: one send each (no io_uring here: {e})"),
    }
}

/// Warns when the kernel's open-file limit would refuse connections before
/// `limits.max_connections` does (each connection is a descriptor; a few
/// hundred more go to listeners, upstreams and the runtime).
fn warn_if_files_run_out(max_connections: usize) {
    use nix::sys::resource::{getrlimit, Resource};
    const RESERVE: u64 = 256;
    let Ok((soft, _hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let wanted = u64::try_from(max_connections).unwrap_or(u64::MAX);
    if wanted.saturating_add(RESERVE) > soft {
        tracing::warn!(
            max_connections,
            open_file_limit = soft,
            "limits.max_connections ({max_connections}) is above what the open-file limit \
             ({soft}) allows: accept() will fail first; raise the limit (ulimit -n, or LimitNOFILE in a systemd unit) \
             or lower max_connections"
        );
    }
}

/// Logs the one-screen start-up summary: listeners, admin, every route,
/// and the settings an operator asks about first.
pub(crate) fn log_summary(config: &GatewayConfig) {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        routes = config.routes.len(),
        threads = config.threads,
        shutdown_grace_ms = u64::try_from(config.shutdown_grace.as_millis()).unwrap_or(u64::MAX),
        max_clients = config.limits.max_clients,
        max_topics = config.limits.max_topics,
        "sse-gateway starting"
    );
    for addr in &config.listen {
        tracing::info!(listener = %addr, "listening on http://{addr}");
    }
    if let Some(tls) = &config.tls {
        for addr in &tls.listen {
            tracing::info!(listener = %addr, "listening on https://{addr} (HTTP/2 and HTTP/1.1)");
        }
    }
    log_direct_sends();
    warn_if_files_run_out(config.limits.max_connections);
    let run_dir = runtime_dir::resolve(config);
    tracing::info!(
        runtime_dir = %run_dir.display(),
        "upgrade socket and pid file in {}",
        run_dir.display()
    );
    tracing::info!(
        admin = %config.admin,
        "admin on http://{} (/metrics /healthz /readyz /topics)",
        config.admin
    );
    for route in &config.routes {
        let path = route.path.as_str();
        match &route.kind {
            RouteKind::FanOut(f) => {
                tracing::info!(
                    route = %route.name,
                    path,
                    kind = "fan-out",
                    upstream = f.upstream.url.as_str(),
                    "route {}: {path} fan-out, upstream {}",
                    route.name,
                    f.upstream.url.as_str()
                );
                if f.upstream.insecure_skip_verify {
                    tracing::warn!(
                        route = %route.name,
                        "route {}: upstream.insecure_skip_verify is on: the upstream's TLS \
                         certificate is NOT verified; anyone on the path can read and forge \
                         its events",
                        route.name
                    );
                }
            }
            RouteKind::Proxy(p) => tracing::info!(
                route = %route.name,
                path,
                kind = "proxy",
                upstream = %p.url,
                "route {}: {path} proxy to {}",
                route.name,
                p.url
            ),
        }
    }
}

/// Fails early, with the address in the message, when a listener address
/// is taken (pingora would panic inside its service and keep running).
fn probe_listeners(config: &GatewayConfig) -> anyhow::Result<()> {
    let tls = config.tls.iter().flat_map(|t| t.listen.iter());
    let all: Vec<&SocketAddr> = config
        .listen
        .iter()
        .chain(tls)
        .chain([&config.admin])
        .collect();
    for addr in all {
        TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    }
    Ok(())
}
