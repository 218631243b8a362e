//! The operator binary as it runs in a cluster: `/metrics`, `/healthz`, `/readyz`, and leader
//! election between two real processes against one emulated cluster.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kube::Api;
use kube::api::PostParams;
use t2t_operator::api::TenantPair;
use t2t_operator::dev::example_pair;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Operator {
    child: Child,
    port: u16,
}

impl Operator {
    /// With leader election (the Deployment's setting).
    fn spawn(kubeconfig: &std::path::Path, name: &str) -> Self {
        Self::spawn_with(
            kubeconfig,
            name,
            &["--leader-elect", "--lease-namespace", NS],
            Stdio::null(),
        )
    }

    fn spawn_with(
        kubeconfig: &std::path::Path,
        name: &str,
        extra: &[&str],
        stderr: impl Into<Stdio>,
    ) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_t2t-operator"))
            .arg("run")
            .args(extra)
            .args([
                "--log-format",
                "json",
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", name)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn operator");
        Self { child, port }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        body.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .reduce(|a, b| a + b)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_a_standby_takes_over_after_a_crash() {
    let mut opts = t2t_operator::dev::DevOptions::new(fixture());
    opts.time_scale = 60.0;
    let env = t2t_operator::dev::DevEnv::start(opts).await.expect("env");
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let dir = tempfile::tempdir().expect("tmp");
    let kubeconfig = dir.path().join("kubeconfig");
    env.emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");

    let a = Operator::spawn(&kubeconfig, "operator-a");
    let b = Operator::spawn(&kubeconfig, "operator-b");
    wait_until(
        "both processes to serve /healthz and /readyz",
        Duration::from_secs(30),
        async || {
            let ok = |r: Option<(u16, String)>| r.is_some_and(|(s, _)| s == 200);
            ok(a.get("/healthz").await)
                && ok(b.get("/healthz").await)
                && ok(a.get("/readyz").await)
                && ok(b.get("/readyz").await)
        },
    )
    .await;
    wait_until("one leader", Duration::from_secs(30), async || {
        a.metric("t2t_leader").await.unwrap_or(0.0) + b.metric("t2t_leader").await.unwrap_or(0.0)
            == 1.0
    })
    .await;
    let (leader, standby) = if a.metric("t2t_leader").await == Some(1.0) {
        (a, b)
    } else {
        (b, a)
    };

    // Work for the tenants: only the leader calls them.
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    pairs
        .create(
            &PostParams::default(),
            &TenantPair::new(PAIR, example_pair(&env, &tenants)),
        )
        .await
        .expect("pair");
    wait_until(
        "the leader to reconcile (t2t_reconcile and t2t_tenant_requests series)",
        Duration::from_secs(60),
        async || {
            leader.metric("t2t_reconcile_total").await.unwrap_or(0.0) > 0.0
                && leader
                    .metric("t2t_tenant_requests_total")
                    .await
                    .unwrap_or(0.0)
                    > 0.0
        },
    )
    .await;
    let (_, body) = leader.get("/metrics").await.expect("metrics");
    assert!(body.contains("t2t_reconcile_duration_seconds"), "{body}");
    assert!(body.contains("t2t_tenant_request_duration_seconds"));
    assert!(body.contains("controller=\"tenantpair\""));
    assert_eq!(
        standby
            .metric("t2t_tenant_requests_total")
            .await
            .unwrap_or(0.0),
        0.0,
        "the standby never calls a tenant"
    );
    assert_eq!(
        standby.metric("t2t_reconcile_total").await.unwrap_or(0.0),
        0.0,
        "the standby never reconciles"
    );

    // Crash the leader (SIGKILL: the Lease is not released) — the standby takes over within 30 s.
    let mut leader = leader;
    leader.child.kill().expect("kill");
    let _ = leader.child.wait();
    let took = wait_until(
        "the standby to take over",
        Duration::from_secs(30),
        async || standby.metric("t2t_leader").await == Some(1.0),
    )
    .await;
    println!("failover took {took:?}");
    wait_until(
        "the new leader to reconcile",
        Duration::from_secs(30),
        async || standby.metric("t2t_reconcile_total").await.unwrap_or(0.0) > 0.0,
    )
    .await;
    drop(standby);
    env.shutdown().await;
}

/// SIGTERM while a pass is waiting on a slow tenant: `/readyz` turns 503 at once, the pass runs
/// to its end (its status write lands), and the process exits 0 without starting new passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_in_flight_pass_then_exits_cleanly() {
    let mut opts = t2t_operator::dev::DevOptions::new(fixture());
    opts.time_scale = 60.0;
    let env = t2t_operator::dev::DevEnv::start(opts).await.expect("env");
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let dir = tempfile::tempdir().expect("tmp");
    let kubeconfig = dir.path().join("kubeconfig");
    env.emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    // Every Exchange call takes 1.5 s: a TenantPair pass spends many seconds in flight.
    let c = env.sim.http_client().expect("client");
    let r = c
        .put(format!("{}/_sim/faults", env.sim.base_url()))
        .json(&serde_json::json!({"rules": [{"api": "exchange", "latencyMs": 1500}]}))
        .send()
        .await
        .expect("faults");
    assert!(r.status().is_success());

    let log = dir.path().join("operator.log");
    let mut op = Operator::spawn_with(
        &kubeconfig,
        "operator-solo",
        &[],
        std::fs::File::create(&log).expect("log"),
    );
    wait_until(
        "/readyz (every watch cache synced)",
        Duration::from_secs(30),
        async || op.get("/readyz").await.is_some_and(|(s, _)| s == 200),
    )
    .await;
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    pairs
        .create(
            &PostParams::default(),
            &TenantPair::new(PAIR, example_pair(&env, &tenants)),
        )
        .await
        .expect("pair");
    // The working pass has answered at least one Exchange call and not yet written its status.
    wait_until(
        "a pass in its Exchange phase",
        Duration::from_secs(60),
        async || {
            op.get("/metrics")
                .await
                .is_some_and(|(_, b)| b.contains("t2t_tenant_requests_total{api=\"exchange\""))
        },
    )
    .await;
    // Conditions are written only at the end of a pass (mid-pass writes carry create markers).
    let conditions = |p: &TenantPair| p.status.as_ref().map(|s| s.conditions.len()).unwrap_or(0);
    let before = pairs.get(PAIR).await.expect("pair");
    assert_eq!(
        conditions(&before),
        0,
        "the pass must still be in flight when SIGTERM arrives"
    );
    let term = Command::new("kill")
        .args(["-TERM", &op.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let readyz = op.get("/readyz").await;
    assert!(
        readyz.as_ref().is_none_or(|(s, _)| *s == 503),
        "not ready while draining: {readyz:?}"
    );
    let exited = Instant::now();
    let status = loop {
        if let Some(st) = op.child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            exited.elapsed() < Duration::from_secs(90),
            "the operator did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    let text = std::fs::read_to_string(&log).expect("log");
    let after = pairs.get(PAIR).await.expect("pair");
    assert!(
        conditions(&after) > 0,
        "the in-flight pass finished and wrote its status before the process exited:\n{text}"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let msg = |v: &serde_json::Value| {
        v.pointer("/fields/message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        lines
            .iter()
            .any(|v| msg(v).contains("finishing in-flight passes")),
        "{text}"
    );
    assert_eq!(lines.last().map(msg).as_deref(), Some("stopped"), "{text}");
    env.shutdown().await;
}

/// `kubectl apply -k deploy/` (the kustomize install) succeeds against the emulated cluster and
/// creates the operator's Deployment, RBAC and CRDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_deploy_succeeds() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        assert!(std::env::var("CI").is_err(), "kubectl is required in CI");
        eprintln!("SKIPPED: kubectl is not installed");
        return;
    }
    let emu = t2t_operator::kubeemu::KubeEmu::start(Default::default())
        .await
        .expect("emu");
    let dir = tempfile::tempdir().expect("tmp");
    let kc = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kc).expect("kubeconfig");
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .args(["apply", "-k", deploy])
            .env("KUBECONFIG", &kc)
            .output()
    })
    .await
    .expect("join")
    .expect("kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kubectl apply -k deploy/ failed:\n{text}"
    );
    for want in [
        "deployment.apps/t2t-operator created",
        "clusterrole.rbac.authorization.k8s.io/t2t-operator created",
        "customresourcedefinition.apiextensions.k8s.io/migrationbatches.t2t.dev created",
        "networkpolicy.networking.k8s.io/t2t-operator created",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    emu.shutdown().await;
}

/// `t2t-operator dev` then `kubectl apply -f examples/`: the pair and the endpoint become Ready
/// (`kubectl wait`), and `kubectl get t2t` shows the three kinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_command_serves_kubectl_and_the_examples_become_ready() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        assert!(std::env::var("CI").is_err(), "kubectl is required in CI");
        eprintln!("SKIPPED: kubectl is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let kc = dir.path().join("kubeconfig");
    let root = env!("CARGO_MANIFEST_DIR");
    // examples/02-tenantpair.yaml points at the simulator on 127.0.0.1:8443 (dev's default).
    let mut dev = Command::new(env!("CARGO_BIN_EXE_t2t-operator"))
        .current_dir(root)
        .args(["dev", "--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kc)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dev");
    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &kc)
            .current_dir(root)
            .output()
            .expect("kubectl");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let start = Instant::now();
    while !(kc.exists() && kubectl(&["get", "ns", "t2t-demo"]).0) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "dev did not come up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (ok, out) = kubectl(&["apply", "-f", "examples/"]);
    assert!(ok, "kubectl apply -f examples/ failed:\n{out}");
    let (ok, out) = kubectl(&[
        "wait",
        "--for=condition=Ready",
        "-n",
        "t2t-demo",
        "tp/contoso-to-fabrikam",
        "mep/contoso",
        "--timeout=90s",
    ]);
    assert!(ok, "kubectl wait failed:\n{out}");
    let (ok, out) = kubectl(&["get", "t2t", "-n", "t2t-demo"]);
    assert!(
        ok && out.contains("tenantpair.t2t.dev/contoso-to-fabrikam")
            && out.contains("migrationbatch.t2t.dev/wave-1")
            && out.contains("SEATS"),
        "{out}"
    );
    let _ = dev.kill();
    let _ = dev.wait();
}
