//! Replicas behind a real nginx, configured with `deploy/nginx/sse-gateway.conf` (only
//! the addresses replaced): two gateways share nothing, each opens its own upstream per
//! topic, and a client moved from one replica to the other (its replica killed)
//! reconnects through nginx with `Last-Event-ID` and misses nothing:
//!
//! * from the other replica's replay ring, when it has the topic already;
//! * from the upstream, opened at the client's id (`resume_from_client`), when it does
//!   not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sse_gateway_tests::browser::PinnedGateway;
use sse_gateway_tests::client::http_get;
use sse_gateway_tests::gateway::workspace_root;
use sse_gateway_tests::ports::free_addr;
use sse_gateway_tests::{
    deadline, GatewayConfig, Response, Route, Settings, SseClient, Upstream, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(20);
const NGINX: &str = "/usr/sbin/nginx";

/// An nginx process running the documented front for two replicas.
struct Nginx {
    child: Child,
    listen: SocketAddr,
    dir: PathBuf,
}

impl Nginx {
    async fn start(replicas: [SocketAddr; 2]) -> Self {
        let listen = free_addr().unwrap();
        let dir = workspace_root()
            .join("target/e2e")
            .join(format!("nginx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let snippet =
            std::fs::read_to_string(workspace_root().join("deploy/nginx/sse-gateway.conf"))
                .unwrap()
                .replace("127.0.0.1:8081", &replicas[0].to_string())
                .replace("127.0.0.1:8082", &replicas[1].to_string())
                .replace("127.0.0.1:8080", &listen.to_string());
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  \
             fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n{snippet}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{NGINX}: {e} (scripts/test installs nginx)"));
        let nginx = Self { child, listen, dir };
        let end = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(listen).await.is_err() {
            assert!(
                Instant::now() < end,
                "nginx did not start:\n{}",
                nginx.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        nginx
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replica_config(upstream: &Upstream) -> String {
    GatewayConfig::quiet()
        .trusted_proxies(&["127.0.0.1"])
        .linger("30s")
        .replay(10_000, "5m")
        .resume_from_client(true)
        .route(
            Route::fan_out(
                "prices",
                "/prices/{symbol}",
                &upstream.url("/live/{symbol}"),
            )
            .topic("prices/{symbol}"),
        )
        .to_yaml()
}

/// Whether `gateway` has `topic` open.
async fn has_topic(gateway: &PinnedGateway, topic: &str) -> bool {
    let topics = http_get(gateway.admin_addr(), "/topics", &[])
        .await
        .unwrap();
    topics.text().contains(&format!("\"{topic}\""))
}

/// Reads `n` events continuing `last` (`None`: from wherever the stream starts);
/// returns the new last id.
async fn read_on(client: &mut SseClient, last: Option<u64>, n: usize, what: &str) -> u64 {
    let events = client
        .events_until(n, deadline(WAIT))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let first = last.map_or_else(|| events[0].id_num().unwrap(), |last| last + 1);
    for (i, event) in events.iter().enumerate() {
        let want = first + i as u64;
        assert_eq!(event.id_num(), Some(want), "{what}: event #{i}");
        assert_eq!(event.data, want.to_string(), "{what}");
    }
    first + n as u64 - 1
}

/// Reads what is left of a stream whose replica went away.
async fn drain_cut(client: &mut SseClient) -> u64 {
    let _ = client.read_to_end(deadline(Duration::from_secs(5))).await;
    let mut last = None;
    while let Some(event) = client
        .next_event(deadline(Duration::ZERO))
        .await
        .ok()
        .flatten()
    {
        last = event.id_num();
    }
    last.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moved_between_replicas_resumes_with_last_event_id() {
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} missing: scripts/test installs nginx"
    );
    let upstream = UpstreamServer::new()
        // One id sequence for every connection, as a real origin has.
        .default_response(Response::clocked(40))
        .run()
        .await
        .unwrap();
    let config = replica_config(&upstream);
    let mut replicas = [
        PinnedGateway::start(&config, &[]).await.unwrap(),
        PinnedGateway::start(&config, &[]).await.unwrap(),
    ];
    let nginx = Nginx::start([replicas[0].addr(), replicas[1].addr()]).await;

    // 1. The other replica has the topic: the moved client resumes from its ring.
    let mut client = SseClient::get(nginx.listen, "/prices/AAA").await.unwrap();
    assert_eq!(client.status(), 200, "{}", nginx.log());
    let mut last = read_on(&mut client, None, 10, "through nginx").await;
    let on = if has_topic(&replicas[0], "prices/AAA").await {
        0
    } else {
        1
    };
    let other = 1 - on;
    assert!(!has_topic(&replicas[other], "prices/AAA").await);
    let mut direct = SseClient::get(replicas[other].addr(), "/prices/AAA")
        .await
        .unwrap();
    direct.events_until(1, deadline(WAIT)).await.unwrap();
    last = read_on(&mut client, Some(last), 10, "through nginx").await;
    replicas[on].kill().await;
    last = last.max(drain_cut(&mut client).await);
    // A browser waits its retry before it comes back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut client = SseClient::resume(nginx.listen, "/prices/AAA", &last.to_string())
        .await
        .unwrap();
    assert_eq!(client.status(), 200, "{}", nginx.log());
    read_on(
        &mut client,
        Some(last),
        40,
        "on the other replica, from its ring",
    )
    .await;
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2, "one upstream per replica: {requests:?}");
    assert!(requests.iter().all(|r| r.last_event_id().is_none()));

    // 2. The replica it moves to does not have the topic: it opens the upstream at the
    // client's id.
    replicas[on].restart().await.unwrap();
    let mut client = SseClient::get(nginx.listen, "/prices/BBB").await.unwrap();
    let mut last = read_on(&mut client, None, 10, "BBB through nginx").await;
    let on = if has_topic(&replicas[0], "prices/BBB").await {
        0
    } else {
        1
    };
    assert!(!has_topic(&replicas[1 - on], "prices/BBB").await);
    replicas[on].kill().await;
    last = last.max(drain_cut(&mut client).await);
    let mut client = SseClient::resume(nginx.listen, "/prices/BBB", &last.to_string())
        .await
        .unwrap();
    let what = "BBB on the other replica, from the upstream";
    read_on(&mut client, Some(last), 20, what).await;
    let requests = upstream.requests();
    let resumed = requests
        .iter()
        .filter_map(|r| r.last_event_id())
        .collect::<Vec<_>>();
    assert_eq!(resumed, [last.to_string()], "{requests:?}");
    drop(direct);
}
