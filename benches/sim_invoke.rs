//! InvokeCommand throughput on loopback (issue 3 asks for ≥ 5,000 calls/s).
//!
//! `cargo bench --bench sim_invoke` (release). Starts the simulator in-process, then keeps
//! `CONCURRENCY` requests in flight over HTTPS keep-alive connections for `SECONDS` and
//! reports calls per second. Environment: SIM_BENCH_SECONDS, SIM_BENCH_CONCURRENCY,
//! SIM_BENCH_CMDLET (Get-Mailbox with -Identity alice by default).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use t2t_operator::sim::testkit::EXCHANGE_SCOPE;
use t2t_operator::sim::{Fixture, SimConfig, Simulator};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is a 1 s smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let seconds = env_or("SIM_BENCH_SECONDS", if benching { 5 } else { 1 });
    let concurrency = env_or("SIM_BENCH_CONCURRENCY", 64) as usize;
    let cmdlet = std::env::var("SIM_BENCH_CMDLET").unwrap_or_else(|_| "Get-Mailbox".into());
    let params = if cmdlet == "Get-Mailbox" {
        json!({"Identity": "alice@contoso.com"})
    } else {
        json!({})
    };
    let fixture = Fixture::load(std::path::Path::new("examples/tenants.yaml"))?;
    let sim = Simulator::start(SimConfig::new(fixture)).await?;
    let tenant = "contoso.onmicrosoft.com";
    let token = sim.admin_token(tenant, EXCHANGE_SCOPE).await?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem().as_bytes())?)
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("{}/adminapi/beta/{tenant}/InvokeCommand", sim.base_url());
    let body =
        serde_json::to_vec(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}}))?;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // Warm-up: open the connections.
    for _ in 0..concurrency.min(8) {
        client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token, body, ok, failed) = (
            client.clone(),
            url.clone(),
            token.clone(),
            body.clone(),
            ok.clone(),
            failed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = ok.load(Ordering::Relaxed);
    println!(
        "InvokeCommand {cmdlet}: {n} calls in {elapsed:.2} s = {:.0} calls/s ({} failed, concurrency {concurrency}, {} cores)",
        n as f64 / elapsed,
        failed.load(Ordering::Relaxed),
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1)
    );
    sim.shutdown().await;
    Ok(())
}
