//! The deployment files in `deploy/`, checked where this machine can: the systemd unit by
//! `systemd-analyze verify` (with the built binary in place of the installed one); the
//! Kubernetes manifests by their structure and by agreeing with each other and with the
//! gateway configuration they ship (which `sse-gateway check` accepts); the Dockerfile
//! by its shape (no Docker engine runs here); the nginx front by `nginx -t`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sse_gateway_tests::gateway::{gateway_binary, run_binary, workspace_root};
use sse_gateway_tests::yaml::load_all;

fn deploy(path: &str) -> PathBuf {
    workspace_root().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root()
        .join("target/e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_systemd_unit_verifies_and_reloads_in_place() {
    let unit = read(&deploy("systemd/sse-gateway.service"));
    let binary = gateway_binary().unwrap();
    // `verify` wants the executables to exist: the built binary stands in.
    let local = unit.replace("/usr/local/bin/sse-gateway", &binary.display().to_string());
    let dir = scratch("systemd");
    let path = dir.join("sse-gateway.service");
    std::fs::write(&path, local).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/test installs systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // A value systemd cannot parse is only a warning: there must be none.
    assert_eq!(stderr.trim(), "", "systemd-analyze warned");

    let lines: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    let values = |key: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    };
    assert_eq!(values("Type"), ["forking"]);
    // pingora names the pid file after the admin port, in runtime_dir.
    assert_eq!(values("PIDFile"), ["/run/sse-gateway/sse-gateway-9090.pid"]);
    assert_eq!(values("RuntimeDirectory"), ["sse-gateway"]);
    assert_eq!(values("RuntimeDirectoryMode"), ["0700"]);
    let config = "--config /etc/sse-gateway/gateway.yaml";
    assert_eq!(
        values("ExecStart"),
        [format!("/usr/local/bin/sse-gateway run --daemon {config}")]
    );
    // Check, hand the sockets over, start the new process: in this order.
    assert_eq!(
        values("ExecReload"),
        [
            format!("/usr/local/bin/sse-gateway check {config}"),
            "/bin/kill -QUIT $MAINPID".to_owned(),
            format!("/usr/local/bin/sse-gateway run --upgrade --daemon {config}"),
        ]
    );
}

/// Every manifest, by kind.
fn manifests() -> Vec<Value> {
    let dir = deploy("kubernetes");
    let mut docs = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("gateway.yaml"))
        .collect();
    names.sort();
    for path in names {
        for doc in load_all(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            for key in ["apiVersion", "kind"] {
                assert!(doc[key].is_string(), "{}: no {key}", path.display());
            }
            assert!(doc["metadata"]["name"].is_string(), "{}", path.display());
            docs.push(doc);
        }
    }
    docs
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// A `host:port` string's port.
fn port_of(addr: &Value) -> i64 {
    let text = addr.as_str().unwrap();
    text.rsplit(':').next().unwrap().parse().unwrap()
}

fn seconds(duration: &Value) -> i64 {
    duration
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap()
}

#[test]
fn the_kubernetes_manifests_agree_with_each_other_and_the_config() {
    let docs = manifests();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for kind in [
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }

    // The ConfigMap carries deploy/kubernetes/gateway.yaml (after its two comment lines),
    // which `check` accepts.
    let shipped = read(&deploy("kubernetes/gateway.yaml"));
    let body: String = shipped.splitn(3, '\n').nth(2).unwrap().to_owned();
    let config_map = of_kind(&docs, "ConfigMap");
    assert_eq!(config_map["data"]["gateway.yaml"].as_str().unwrap(), body);
    let checked = run_binary(
        &["check", "--config", "deploy/kubernetes/gateway.yaml"],
        &workspace_root(),
    )
    .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    let config = &load_all(&shipped).unwrap()[0];

    let deployment = of_kind(&docs, "Deployment");
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    let container = &pod["spec"]["containers"][0];
    let ports = container["ports"].as_array().unwrap();
    let port = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no port {name}"))["containerPort"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(port("http"), port_of(&config["listen"][0]));
    assert_eq!(port("admin"), port_of(&config["admin"]));
    assert!(
        config["admin"].as_str().unwrap().starts_with("0.0.0.0:"),
        "probes reach admin"
    );
    let readiness = &container["readinessProbe"]["httpGet"];
    assert_eq!(
        (&readiness["path"], &readiness["port"]),
        (&Value::from("/readyz"), &Value::from("admin"))
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    // The drain fits in the grace period, after the preStop pause.
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap();
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap();
    let drain = seconds(&config["shutdown_grace"]);
    assert!(pre_stop >= 5, "endpoints need time to drop the pod");
    assert!(
        grace >= pre_stop + drain + 5,
        "grace {grace} < {pre_stop} + {drain} + 5"
    );
    // Non-root, read-only root, the runtime directory and the config mounted.
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(
        mounts.contains(&config["runtime_dir"].as_str().unwrap()),
        "{mounts:?}"
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[..2], ["run", "--config"]);
    assert!(mounts.iter().any(|m| args[2].starts_with(m)), "{args:?}");

    let service = of_kind(&docs, "Service");
    assert_eq!(&service["spec"]["selector"], labels);
    let service_ports: Vec<&str> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["targetPort"].as_str().unwrap())
        .collect();
    assert_eq!(service_ports, ["http", "admin"]);
    let pdb = of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    let monitor = of_kind(&docs, "ServiceMonitor");
    assert_eq!(
        &monitor["spec"]["selector"]["matchLabels"],
        &service["metadata"]["labels"]
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(
        (&endpoint["port"], &endpoint["path"]),
        (&Value::from("admin"), &Value::from("/metrics"))
    );
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let text = read(&deploy("Dockerfile"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].ends_with(" AS build"), "{froms:?}");
    assert!(
        froms[1].contains("distroless"),
        "a small runtime image: {froms:?}"
    );
    let runtime: Vec<&str> = lines
        .iter()
        .skip_while(|l| **l != froms[1])
        .copied()
        .collect();
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the runtime stage");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "{user}"
    );
    assert!(runtime.iter().any(|l| l.starts_with("COPY --from=build ")));
    assert!(text.contains("cmake"), "pingora's build needs cmake");
    assert!(text.contains("--locked"));
    assert!(runtime.contains(&r#"ENTRYPOINT ["/usr/local/bin/sse-gateway"]"#));
    // The config the image carries is the one the Kubernetes manifests ship, and the
    // ports it exposes are that config's.
    assert!(runtime.contains(&"COPY deploy/kubernetes/gateway.yaml /etc/sse-gateway/gateway.yaml"));
    assert!(runtime.contains(&r#"CMD ["run", "--config", "/etc/sse-gateway/gateway.yaml"]"#));
    let config = &load_all(&read(&deploy("kubernetes/gateway.yaml"))).unwrap()[0];
    let exposed = format!(
        "EXPOSE {} {}",
        port_of(&config["listen"][0]),
        port_of(&config["admin"])
    );
    assert!(runtime.contains(&exposed.as_str()), "{exposed}");
}

#[test]
fn the_nginx_front_passes_nginx_t() {
    let nginx = Path::new("/usr/sbin/nginx");
    assert!(nginx.exists(), "scripts/test installs nginx");
    let dir = scratch("nginx-t");
    let snippet = read(&deploy("nginx/sse-gateway.conf"));
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  \
             fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n{snippet}\n}}\n"
        ),
    )
    .unwrap();
    let out = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("syntax is ok"), "{stderr}");
    assert!(!stderr.contains("[warn]"), "{stderr}");
}
