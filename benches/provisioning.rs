//! Per-user preparation workload through the tenant clients against the simulator, with 20 ms of
//! injected Exchange latency and a per-tenant concurrency cap of 10:
//!
//! 1. `Get-Mailbox` of the source mailbox (source tenant),
//! 2. `New-MailUser` for the target MailUser (target tenant),
//! 3. `Set-MailUser` stamping ExchangeGuid (+ ArchiveGuid) and the x500 addresses (target),
//! 4. `Add-DistributionGroupMember` of the source user to the scope group (source).
//!
//! The concurrent run drives `PROV_USERS` users (default 2,000) with `buffer_unordered`; the
//! sequential baseline does the same one call at a time (the pace of the seed procedure) on a
//! sample of `PROV_SEQ_SAMPLE` users (default 200) and is extrapolated linearly to the full count.
//!
//! Prints `bound_ratio` = wall ÷ (calls × latency ÷ cap) and `speedup_vs_sequential`.
//!
//! `cargo bench --bench provisioning` (env: PROV_USERS, PROV_SEQ_SAMPLE, PROV_IN_FLIGHT).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use t2t_operator::metrics::{RequestLabels, TenantMetrics};
use t2t_operator::sim::{Fixture, SimConfig, Simulator};
use t2t_operator::tenant::exchange::types::{Mailbox, is_zero_guid};
use t2t_operator::tenant::exchange::{MailUserChanges, NewMailUser, SecureStringKey};
use t2t_operator::tenant::{
    AppCredential, Credential, Endpoints, ExchangeClient, HttpConfig, Redacted, TenantError,
    TokenProvider, Transport,
};

const LATENCY_MS: u64 = 20;
const CAP: usize = 10;
const CALLS_PER_USER: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

/// The x500 addresses and GUIDs a target MailUser needs from its source mailbox.
fn stamp(src: &Mailbox) -> MailUserChanges {
    let mut add = Vec::new();
    if let Some(dn) = &src.legacy_exchange_dn {
        add.push(format!("X500:{dn}"));
    }
    add.extend(
        src.email_addresses
            .iter()
            .filter(|a| a.to_ascii_lowercase().starts_with("x500:"))
            .cloned(),
    );
    MailUserChanges {
        exchange_guid: src.exchange_guid.clone(),
        archive_guid: src.archive_guid.clone().filter(|g| !is_zero_guid(g)),
        add_addresses: add,
        ..Default::default()
    }
}

/// One user's preparation: four calls. Returns the duration of each.
async fn prepare(
    source: &ExchangeClient,
    target: &ExchangeClient,
    source_upn: &str,
    alias: &str,
    group: &str,
) -> Result<[Duration; CALLS_PER_USER], TenantError> {
    let mut times = [Duration::ZERO; CALLS_PER_USER];
    let t0 = Instant::now();
    let mailbox = source
        .get_mailbox(source_upn)
        .await?
        .ok_or_else(|| TenantError::Config(format!("no source mailbox {source_upn}")))?;
    times[0] = t0.elapsed();
    let upn = format!("{alias}@fabrikam.com");
    let t0 = Instant::now();
    let mail_user = target
        .new_mail_user(&NewMailUser {
            name: alias.into(),
            alias: alias.into(),
            display_name: mailbox.display_name.clone().unwrap_or_else(|| alias.into()),
            first_name: None,
            last_name: None,
            microsoft_online_services_id: upn.clone(),
            primary_smtp_address: upn,
            external_email_address: mailbox
                .primary_smtp_address
                .clone()
                .unwrap_or_else(|| source_upn.into()),
            password: format!("Bench-{}-P@ss!", uuid::Uuid::new_v4()),
        })
        .await?;
    times[1] = t0.elapsed();
    let t0 = Instant::now();
    target
        .set_mail_user(&mail_user.identity, &stamp(&mailbox))
        .await?;
    times[2] = t0.elapsed();
    let t0 = Instant::now();
    source.add_group_member(group, source_upn).await?;
    times[3] = t0.elapsed();
    Ok(times)
}

fn exchange_requests(m: &TenantMetrics) -> u64 {
    // Exchange requests are labelled by cmdlet.
    [
        "Get-Mailbox",
        "New-MailUser",
        "Set-MailUser",
        "Add-DistributionGroupMember",
    ]
    .iter()
    .flat_map(|verb| {
        ["200", "400", "429", "503", "error"].map(|code| {
            m.requests
                .get_or_create(&RequestLabels {
                    api: "exchange",
                    method: verb.to_string(),
                    code: code.into(),
                })
                .get()
        })
    })
    .sum()
}

async fn run() {
    // `cargo bench` measures 2,000 users; `cargo test --all-targets` runs a smoke-sized workload.
    let benching = std::env::args().any(|a| a == "--bench");
    let users = env_usize("PROV_USERS", if benching { 2000 } else { 100 });
    let sample = env_usize("PROV_SEQ_SAMPLE", if benching { 200 } else { 20 }).min(users);
    let in_flight = env_usize("PROV_IN_FLIGHT", 4 * CAP);

    let mut fx = Fixture::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tenants.yaml"
    )))
    .expect("fixture");
    // gen00000.. for the concurrent run, the next `sample` mailboxes for the sequential one
    // (a target ExchangeGuid must be unique, so the two runs use different sources).
    fx.add_generated(users + sample);
    let mut cfg = SimConfig::new(fx);
    cfg.time_scale = 0.0;
    let sim = Simulator::start(cfg).await.expect("simulator");
    let tenants = sim.tenants();
    let http = sim.http_client().expect("client");

    let metrics = Arc::new(TenantMetrics::unregistered());
    let transport = Transport::new(
        HttpConfig {
            ca_pem: Some(sim.ca_pem().as_bytes().to_vec()),
            // Matches the tenant's cap so the service never has to refuse a request.
            concurrency: CAP,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            ..Default::default()
        },
        metrics.clone(),
    )
    .expect("transport");
    let endpoints = Endpoints {
        login: sim.base_url().into(),
        graph: sim.base_url().into(),
        exchange: sim.base_url().into(),
        ..Endpoints::global()
    };
    let tokens = TokenProvider::new(transport.clone(), endpoints);
    let key = SecureStringKey::from_pem(&sim.securestring_key().await.expect("key")).expect("pem");
    let client = |i: usize| {
        let t = &tenants[i];
        let cred = AppCredential {
            tenant: t.id.to_string(),
            client_id: t.client_id.to_string(),
            credential: Credential::ClientSecret(Redacted::new(
                t.client_secret.clone().expect("secret"),
            )),
            version: "1".into(),
        };
        ExchangeClient::new(transport.clone(), tokens.clone(), cred, t.id.to_string())
            .with_secure_string_key(key.clone())
    };
    let (source, target) = (client(0), client(1));

    // Set-up outside the measurement: tokens, connections, scope groups.
    source
        .new_security_group("Bench-Scope")
        .await
        .expect("group");
    source
        .new_security_group("Bench-Seq-Scope")
        .await
        .expect("group");
    target.get_organization_config().await.expect("warm target");

    let r = http
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(
            &json!({"rules": [{"api": "exchange", "latencyMs": LATENCY_MS,
            "maxConcurrentPerTenant": CAP}]}),
        )
        .send()
        .await
        .expect("faults");
    assert!(r.status().is_success());

    // Sequential baseline: one call at a time, half of the sample before the concurrent run
    // (small target tenant) and half after it (full tenant), so that it sees the same average
    // tenant size as the concurrent run.
    let half = sample / 2;
    let sequential = |range: std::ops::Range<usize>| {
        let (source, target, metrics) = (&source, &target, &metrics);
        async move {
            let before = exchange_requests(metrics);
            let started = Instant::now();
            let mut per_call = [Duration::ZERO; CALLS_PER_USER];
            for i in range {
                let times = prepare(
                    source,
                    target,
                    &format!("gen{i:05}@contoso.com"),
                    &format!("seq{i:05}"),
                    "Bench-Seq-Scope",
                )
                .await
                .expect("sequential prepare");
                for (sum, t) in per_call.iter_mut().zip(times) {
                    *sum += t;
                }
            }
            (
                started.elapsed(),
                exchange_requests(metrics) - before,
                per_call,
            )
        }
    };
    let (seq_wall_1, seq_calls_1, per_call_1) = sequential(users..users + half).await;

    // Concurrent run.
    let before = exchange_requests(&metrics);
    let throttled_before = metrics
        .throttled
        .get_or_create(&t2t_operator::metrics::ApiLabels { api: "exchange" })
        .get();
    let started = Instant::now();
    let failures = futures::stream::iter(0..users)
        .map(|i| {
            let (source, target) = (&source, &target);
            async move {
                prepare(
                    source,
                    target,
                    &format!("gen{i:05}@contoso.com"),
                    &format!("gen{i:05}"),
                    "Bench-Scope",
                )
                .await
            }
        })
        .buffer_unordered(in_flight)
        .map(|r| (r.is_err(), started.elapsed()))
        .collect::<Vec<_>>()
        .await;
    let wall = started.elapsed();
    let done_at: Vec<Duration> = failures.iter().map(|(_, at)| *at).collect();
    let failures = failures.iter().filter(|(failed, _)| *failed).count();
    // Time taken by each quarter of the users: a flat profile means the client keeps the cap
    // busy throughout; a rising one means the service slows down as the tenant fills up.
    let quarters: Vec<String> = (1..=4)
        .map(|q| {
            let end = done_at[(users * q / 4).max(1) - 1];
            let start = if q == 1 {
                Duration::ZERO
            } else {
                done_at[users * (q - 1) / 4 - 1]
            };
            format!("{:.2}s", (end - start).as_secs_f64())
        })
        .collect();
    let calls = exchange_requests(&metrics) - before;
    let throttled = metrics
        .throttled
        .get_or_create(&t2t_operator::metrics::ApiLabels { api: "exchange" })
        .get()
        - throttled_before;

    let (seq_wall_2, seq_calls_2, per_call_2) = sequential(users + half..users + sample).await;
    let seq_wall = seq_wall_1 + seq_wall_2;
    let seq_calls = seq_calls_1 + seq_calls_2;
    let mut per_call = per_call_1;
    for (a, b) in per_call.iter_mut().zip(per_call_2) {
        *a += b;
    }

    // Check the outcome in the simulator.
    let dump = |t: &str| {
        let (http, base) = (http.clone(), sim.base_url().to_string());
        let t = t.to_string();
        async move {
            http.get(format!("{base}/_sim/tenants/{t}"))
                .send()
                .await
                .expect("dump")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let fab = dump(&tenants[1].id.to_string()).await;
    let created = fab["recipients"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|x| {
                    x["name"].as_str().is_some_and(|n| n.starts_with("gen"))
                        && x["exchangeGuid"].as_str().is_some_and(|g| !is_zero_guid(g))
                })
                .count()
        })
        .unwrap_or(0);
    let con = dump(&tenants[0].id.to_string()).await;
    let members = con["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == "Bench-Scope"))
        .and_then(|g| g["members"].as_array().map(Vec::len))
        .unwrap_or(0);

    let latency = Duration::from_millis(LATENCY_MS);
    let nominal_calls = users * CALLS_PER_USER;
    let bound = latency.mul_f64(calls as f64 / CAP as f64);
    // Each tenant has its own cap of 10 and gets half of the calls: the floor is half the bound.
    let tenant_bound = latency.mul_f64((calls as f64 / 2.0) / CAP as f64);
    let seq_extrapolated = seq_wall.mul_f64(users as f64 / sample as f64);
    println!(
        "provisioning workload: Get-Mailbox, New-MailUser, Set-MailUser, Add-DistributionGroupMember per user"
    );
    println!(
        "simulator: latencyMs={LATENCY_MS} maxConcurrentPerTenant={CAP}; client concurrency={CAP} per tenant; users in flight={in_flight}"
    );
    println!(
        "concurrent: users={users} calls={calls} (nominal {nominal_calls}) failures={failures} throttled={throttled} wall={:.2}s",
        wall.as_secs_f64()
    );
    println!(
        "concurrent: time per quarter of the users (tenant growing): {}",
        quarters.join(", ")
    );
    println!(
        "verified in simulator: stamped target MailUsers={created} scope-group members={members}"
    );
    println!(
        "bound = calls x latency / cap = {calls} x {LATENCY_MS}ms / {CAP} = {:.2}s",
        bound.as_secs_f64()
    );
    println!(
        "bound_ratio={:.3}",
        wall.as_secs_f64() / bound.as_secs_f64()
    );
    println!(
        "per-tenant floor (half the calls per tenant, each tenant capped at {CAP}) = {:.2}s, tenant_bound_ratio={:.3}",
        tenant_bound.as_secs_f64(),
        wall.as_secs_f64() / tenant_bound.as_secs_f64()
    );
    println!(
        "sequential: measured on a sample of {sample} users ({seq_calls} calls, one at a time) in {:.2}s = {:.1} ms/call; extrapolated linearly to {users} users: {:.1}s",
        seq_wall.as_secs_f64(),
        seq_wall.as_secs_f64() * 1000.0 / seq_calls.max(1) as f64,
        seq_extrapolated.as_secs_f64()
    );
    let names = [
        "Get-Mailbox",
        "New-MailUser",
        "Set-MailUser",
        "Add-DistributionGroupMember",
    ];
    let per: Vec<String> = names
        .iter()
        .zip(per_call)
        .map(|(n, d)| format!("{n} {:.1}ms", d.as_secs_f64() * 1000.0 / sample as f64))
        .collect();
    println!(
        "sequential mean per call (incl. {LATENCY_MS} ms injected): {}",
        per.join(", ")
    );
    println!(
        "sequential: {half} users before the concurrent run {:.1} ms/call, {} users after it {:.1} ms/call",
        seq_wall_1.as_secs_f64() * 1000.0 / seq_calls_1.max(1) as f64,
        sample - half,
        seq_wall_2.as_secs_f64() * 1000.0 / seq_calls_2.max(1) as f64
    );
    println!(
        "speedup_vs_sequential={:.2}",
        seq_extrapolated.as_secs_f64() / wall.as_secs_f64()
    );
    assert_eq!(failures, 0, "every user prepared");
    assert_eq!(created, users, "every target MailUser created and stamped");
    assert_eq!(members, users, "every source user in the scope group");
    sim.shutdown().await;
}
