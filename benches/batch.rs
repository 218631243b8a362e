//! MigrationBatch at scale (issue 7): tenant API calls per mailbox, polling calls per poll
//! interval (200 vs 2,000 users), operator RSS with 20,000 mailboxes across 10 batches.
//!
//! `cargo bench --bench batch` (release). For the call counts the Kubernetes API emulator, the
//! tenant simulator and the operator run in this one process; calls are counted from the
//! operator's `t2t_tenant_requests_total` (Exchange: labelled by cmdlet). For the RSS figure the
//! operator is the release binary (`t2t-operator run`) in its own process, so its memory is
//! measured alone. Environment: BATCH_BENCH_USERS (2000), BATCH_BENCH_SMALL (200),
//! BATCH_BENCH_RSS_USERS (20000, 0 skips), BATCH_BENCH_RSS_SECS (time cap of the RSS run, 600),
//! BATCH_BENCH_RSS_SETTLE_SECS (polling kept up once every user is in Exchange, 30),
//! BATCH_BENCH_ONLY_RSS (skip the call counts).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use kube::Api;
use kube::api::PostParams;
use t2t_operator::api::*;
use t2t_operator::dev::{DevEnv, DevOptions};

/// Exchange cmdlets that follow progress (excluded from the per-mailbox budget).
const POLLING: [&str; 3] = [
    "Get-MigrationBatch",
    "Get-MigrationUser",
    "Get-MigrationUserStatistics",
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (api, method) → requests, from the metrics text.
fn requests(env: &DevEnv) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in env.metrics.encode().lines() {
        let Some(rest) = line.strip_prefix("t2t_tenant_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let get = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        *out.entry((get("api"), get("method"))).or_insert(0) += v as u64;
    }
    out
}

/// (VmRSS, VmHWM) in KiB of process `pid`.
fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let f = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (f("VmRSS:"), f("VmHWM:"))
}

/// CPU seconds (user + system) used so far by process `pid`.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // rest starts at field 3 (state): utime is field 14 → index 11.
    (ticks(11) + ticks(12)) / 100.0
}

async fn start_env(
    generated: usize,
    time_scale: f64,
) -> (DevEnv, Vec<(String, String, String, String)>) {
    let mut fx = fixture();
    fx.add_generated(generated);
    for s in &mut fx.tenants[0].skus {
        s.seats = (generated as u32) + 100;
    }
    let mut opts = DevOptions::new(fx);
    opts.time_scale = time_scale;
    let mut env = DevEnv::start(opts).await.expect("dev env");
    env.operator_config_mut().active_poll = Duration::from_secs(1);
    env.operator_config_mut().idle_resync = Duration::from_secs(30);
    let tenants = env.seed_namespace(NS).await.expect("seed");
    (env, tenants)
}

fn spec(users: std::ops::Range<usize>) -> MigrationBatchSpec {
    let users = users
        .map(|i| {
            user(
                &format!("gen{i:05}@contoso.com"),
                &format!("gen{i:05}@fabrikam.com"),
            )
        })
        .collect();
    let mut s = batch_spec(users, immediate());
    s.provisioning.migration_license = MigrationLicenseAssignment::Source;
    s.provisioning.usage_location = Some("US".into());
    s
}

struct Run {
    users: usize,
    seconds: f64,
    per_cmdlet: BTreeMap<(String, String), u64>,
}

impl Run {
    fn sum(&self, f: impl Fn(&str, &str) -> bool) -> u64 {
        self.per_cmdlet
            .iter()
            .filter(|((a, m), _)| f(a, m))
            .map(|(_, v)| *v)
            .sum()
    }
    fn polls(&self) -> u64 {
        self.sum(|a, m| a == "exchange" && m == "Get-MigrationBatch")
    }
    fn polling(&self) -> u64 {
        self.sum(|a, m| a == "exchange" && POLLING.contains(&m))
    }
    fn work(&self) -> u64 {
        self.sum(|a, m| a != "token" && !(a == "exchange" && POLLING.contains(&m)))
    }
}

/// One batch of `n` generated users from creation to the end of the steps after completion.
async fn one_batch(n: usize) -> Run {
    let (mut env, tenants) = start_env(n, 7200.0).await;
    env.start_operator();
    prepared(&env, &tenants).await;
    let before = requests(&env);
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    let started = Instant::now();
    batches
        .create(
            &PostParams::default(),
            &MigrationBatch::new("bench", spec(0..n)),
        )
        .await
        .expect("batch");
    wait_final(&batches, "bench", Duration::from_secs(1800)).await;
    let seconds = started.elapsed().as_secs_f64();
    let s = batch_status(&batches, "bench").await;
    assert_eq!(s.counts.completed as usize, n, "{:?}", s.counts);
    let mut per_cmdlet = requests(&env);
    for (k, v) in before {
        if let Some(x) = per_cmdlet.get_mut(&k) {
            *x -= v;
        }
    }
    env.shutdown().await;
    Run {
        users: n,
        seconds,
        per_cmdlet,
    }
}

/// Users of a batch that Exchange has (queued, syncing, synced, completing, completed, failed).
fn in_exchange(s: &MigrationBatchStatus) -> usize {
    s.users
        .iter()
        .filter(|u| {
            !matches!(
                u.state,
                UserState::Pending
                    | UserState::HeldBack
                    | UserState::Validated
                    | UserState::Provisioned
            )
        })
        .count()
}

/// The operator alone: the emulator and the simulator run in this process, the release binary
/// `t2t-operator run` in its own, against the emulator's kubeconfig; its VmRSS/VmHWM are sampled
/// from /proc until every user of the 10 batches is in Exchange (provisioned and syncing), plus
/// `settle` of polling, or `cap`.
async fn rss_run(total: usize, cap: Duration, settle: Duration) {
    let per = total / 10;
    let (env, tenants) = start_env(total, 7200.0).await;
    let dir = std::env::temp_dir().join(format!("t2t-batch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    env.emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let key = dir.join("exchange-key.pem");
    std::fs::write(&key, env.sim.securestring_key().await.expect("key")).expect("key file");
    let log = std::fs::File::create(dir.join("operator.log")).expect("log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_t2t-operator"))
        .args([
            "run",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        .arg("--exchange-public-key")
        .arg(&key)
        .args(["--active-poll-seconds", "2", "--idle-resync-seconds", "60"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn t2t-operator run");
    let pid = child.id();
    prepared(&env, &tenants).await;
    let (base, _) = rss_kib(pid);
    let base_cpu = cpu_secs(pid);
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    let started = Instant::now();
    for b in 0..10 {
        batches
            .create(
                &PostParams::default(),
                &MigrationBatch::new(&format!("wave-{b:02}"), spec(b * per..(b + 1) * per)),
            )
            .await
            .expect("batch");
    }
    let mut peak = 0u64;
    let mut last = (0usize, 0usize, 0u32);
    let mut all_in: Option<f64> = None;
    while started.elapsed() < cap {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Ok(Some(code)) = child.try_wait() {
            panic!("t2t-operator exited with {code}; see {}", dir.display());
        }
        let (rss, _) = rss_kib(pid);
        peak = peak.max(rss);
        let (mut provisioned, mut moving, mut completed) = (0usize, 0usize, 0u32);
        for b in 0..10 {
            let s = batch_status(&batches, &format!("wave-{b:02}")).await;
            provisioned += s.counts.provisioned as usize;
            moving += in_exchange(&s);
            completed += s.counts.completed;
        }
        last = (provisioned, moving, completed);
        match all_in {
            None if moving == total => all_in = Some(started.elapsed().as_secs_f64()),
            Some(t) if started.elapsed().as_secs_f64() > t + settle.as_secs_f64() => break,
            _ => {}
        }
    }
    let (end, hwm) = rss_kib(pid);
    let cpu = cpu_secs(pid) - base_cpu;
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "operator RSS (t2t-operator run in its own process), {total} mailboxes in 10 batches: \
         after the pair and endpoint {:.1} MiB, peak sampled {:.1} MiB, VmHWM {:.1} MiB, at the end {:.1} MiB; \
         CPU {cpu:.1} s over {:.0} s; all users in Exchange after {}; \
         at the end {} provisioned, {} in Exchange, {} completed of {total}",
        base as f64 / 1024.0,
        peak as f64 / 1024.0,
        hwm as f64 / 1024.0,
        end as f64 / 1024.0,
        started.elapsed().as_secs_f64(),
        all_in.map_or("— (time cap)".to_string(), |t| format!("{t:.0} s")),
        last.0,
        last.1,
        last.2,
    );
    println!("operator_rss_peak_mib={:.1}", hwm.max(peak) as f64 / 1024.0);
    let _ = std::fs::remove_dir_all(&dir);
    env.shutdown().await;
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Under `cargo test --all-targets` this is a small smoke run.
    let (big, small, rss) = if benching {
        (
            env_or("BATCH_BENCH_USERS", 2000),
            env_or("BATCH_BENCH_SMALL", 200),
            env_or("BATCH_BENCH_RSS_USERS", 20000),
        )
    } else {
        (20, 10, 0)
    };
    rt.block_on(async {
        let mut runs = Vec::new();
        let sizes = if std::env::var("BATCH_BENCH_ONLY_RSS").is_ok() {
            vec![]
        } else {
            vec![small, big]
        };
        for n in sizes {
            let r = one_batch(n).await;
            println!(
                "{} mailboxes: {:.1} s to complete everything; tenant calls (excluding progress polls and tokens) {} = {:.2} per mailbox; {} polls, {} polling calls = {:.2} per poll interval; token requests {}",
                r.users,
                r.seconds,
                r.work(),
                r.work() as f64 / r.users as f64,
                r.polls(),
                r.polling(),
                r.polling() as f64 / r.polls().max(1) as f64,
                r.sum(|a, _| a == "token"),
            );
            for ((api, m), v) in &r.per_cmdlet {
                if *v > 0 {
                    println!(
                        "    {api:9} {m:32} {v:7}  {:.2}/mailbox",
                        *v as f64 / r.users as f64
                    );
                }
            }
            runs.push(r);
        }
        if rss > 0 {
            rss_run(
                rss,
                Duration::from_secs(env_or("BATCH_BENCH_RSS_SECS", 600) as u64),
                Duration::from_secs(env_or("BATCH_BENCH_RSS_SETTLE_SECS", 30) as u64),
            )
            .await;
        }
    });
}
