//! Emulator benchmark (run with `cargo bench --bench kubeemu_bench`): list of 10,000 objects
//! (target < 200 ms), watch fan-out to 10 watchers, and memory per stored object.
//! Prints results; exits non-zero when the list target is missed. Under `cargo test
//! --all-targets` (no `--bench` argument, debug build) it runs a small smoke version instead
//! and checks no timing.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use t2t_operator::kubeemu::{KubeEmu, KubeEmuConfig};

const WATCHERS: usize = 10;

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "bench", "tier": "x"}},
        "data": {"key": "value", "other": "a somewhat longer value to look like real data"}}),
    )
    .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bench = std::env::args().any(|a| a == "--bench");
    let (objects, fanout_events) = if bench { (10_000, 1_000) } else { (200, 20) };
    let emu = KubeEmu::start(KubeEmuConfig::default()).await?;
    let client = emu.client().await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let rss_before = rss_bytes();
    let t = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &cm(&format!("cm-{i:05}")))
                    .await
            }
        })
        .buffer_unordered(16)
        .for_each(|r| async {
            if let Err(e) = r {
                eprintln!("create failed: {e}");
            }
        })
        .await;
    let create_time = t.elapsed();
    let rss_after = rss_bytes();
    println!(
        "create: {objects} objects in {:?} ({:.0}/s)",
        create_time,
        objects as f64 / create_time.as_secs_f64()
    );
    if let (Some(a), Some(b)) = (rss_before, rss_after) {
        println!(
            "memory: ~{} bytes per object (process RSS delta, includes allocator slack)",
            b.saturating_sub(a) / objects as u64
        );
    }

    // List: best of 5, raw (server + transfer) and typed (plus kube-rs decoding).
    let mut best_raw = Duration::MAX;
    let mut best_typed = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let req =
            axum::http::Request::get("/api/v1/namespaces/default/configmaps").body(Vec::new())?;
        let text = client.request_text(req).await?;
        best_raw = best_raw.min(t.elapsed());
        assert!(text.len() > objects * 100);
        let t = Instant::now();
        let list = api.list(&ListParams::default()).await?;
        best_typed = best_typed.min(t.elapsed());
        assert_eq!(list.items.len(), objects);
    }
    println!("list {objects}: raw {best_raw:?}, typed {best_typed:?} (target < 200ms)");

    // Watch fan-out.
    let rv = emu.resource_version().to_string();
    let mut streams = Vec::new();
    for _ in 0..WATCHERS {
        streams.push(
            api.watch(&WatchParams::default().timeout(120), &rv)
                .await?
                .boxed(),
        );
    }
    let t = Instant::now();
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 0..fanout_events {
                let _ = api
                    .create(&PostParams::default(), &cm(&format!("fan-{i:05}")))
                    .await;
            }
        })
    };
    let mut handles = Vec::new();
    for mut s in streams {
        handles.push(tokio::spawn(async move {
            let mut n = 0;
            while n < fanout_events {
                match s.next().await {
                    Some(Ok(WatchEvent::Added(_))) => n += 1,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => panic!("watch error: {e}"),
                    None => break,
                }
            }
            n
        }));
    }
    writer.await?;
    let mut total = 0;
    for h in handles {
        total += h.await?;
    }
    let fan = t.elapsed();
    println!(
        "watch fan-out: {fanout_events} writes x {WATCHERS} watchers = {total} events delivered in {fan:?}"
    );
    emu.shutdown().await;
    if bench && best_raw > Duration::from_millis(200) {
        eprintln!("FAIL: list of {objects} took {best_raw:?} (> 200 ms)");
        std::process::exit(1);
    }
    Ok(())
}
