//! MigrationBatch at scale (issue 7): tenant API calls per mailbox, polling calls per poll
//! interval (200 vs 2,000 users), operator RSS with 20,000 mailboxes across 10 batches.
//!
//! `cargo bench --bench batch` (release). The Kubernetes API emulator, the tenant simulator and the
//! operator run in this one process; calls are counted from the operator's
//! `t2t_tenant_requests_total` (Exchange: labelled by cmdlet). Environment: BATCH_BENCH_USERS
//! (2000), BATCH_BENCH_SMALL (200), BATCH_BENCH_RSS_USERS (20000, 0 skips), BATCH_BENCH_RSS_SECS
//! (time cap of the RSS run, 240), BATCH_BENCH_ONLY_RSS (skip the call counts).

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

fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let f = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (f("VmRSS:"), f("VmHWM:"))
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

async fn rss_run(total: usize, cap: Duration) {
    let per = total / 10;
    let (mut env, tenants) = start_env(total, 7200.0).await;
    // The emulator keeps a watch history of full objects (10,000 by default); 2,000-user batch
    // statuses make that history dominate the process. Keep it short so the figure is closer to
    // the operator's own use.
    env.emu.set_history_limit(100);
    // Baseline: emulator + simulator (with every mailbox) + the pair and endpoint, operator up
    // only for the setup and then stopped.
    env.start_operator();
    prepared(&env, &tenants).await;
    env.stop_operator().await;
    let (base, _) = rss_kib();
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    for b in 0..10 {
        batches
            .create(
                &PostParams::default(),
                &MigrationBatch::new(&format!("wave-{b:02}"), spec(b * per..(b + 1) * per)),
            )
            .await
            .expect("batch");
    }
    let (with_crs, _) = rss_kib();
    env.start_operator();
    let started = Instant::now();
    let mut peak = 0u64;
    let mut last = (0u32, 0u32);
    while started.elapsed() < cap {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (rss, _) = rss_kib();
        peak = peak.max(rss);
        let mut done = 0;
        let mut queued = 0;
        for b in 0..10 {
            let s = batch_status(&batches, &format!("wave-{b:02}")).await;
            done += s.counts.completed;
            queued += s.counts.provisioned;
        }
        last = (queued, done);
        if done as usize == total {
            break;
        }
    }
    let (end, hwm) = rss_kib();
    println!(
        "RSS, {total} mailboxes in 10 batches (emulator, simulator and operator in one process): \
         baseline without the operator {:.1} MiB, after creating the batches {:.1} MiB, \
         peak while the operator ran {:.1} MiB (process high-water mark {:.1} MiB), at the end {:.1} MiB; \
         operator share ≈ peak − baseline = {:.1} MiB (an upper bound: it includes the emulator's \
         growth from the batches' statuses and events and the simulator's moves). \
         Progress after {:.0} s: {} prepared, {} completed of {total}",
        base as f64 / 1024.0,
        with_crs as f64 / 1024.0,
        peak as f64 / 1024.0,
        hwm as f64 / 1024.0,
        end as f64 / 1024.0,
        (peak.saturating_sub(base)) as f64 / 1024.0,
        started.elapsed().as_secs_f64(),
        last.0,
        last.1
    );
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
                Duration::from_secs(env_or("BATCH_BENCH_RSS_SECS", 240) as u64),
            )
            .await;
        }
    });
}
