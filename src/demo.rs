//! `t2t-operator demo`: a full cross-tenant migration on the embedded emulated cluster and
//! simulated tenants, unattended, with live progress. Applies `examples/` plus a generated batch,
//! opens the completion gate once everything is synced, and exits 0 only when every mailbox moved.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::api::conditions::{find, is_true, types};
use crate::api::{MigrationBatch, UserState};
use crate::dev::{DevEnv, DevError, DevOptions};
use crate::sim::Fixture;

/// Settings of the demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub examples: PathBuf,
    /// Generated mailboxes added in a second batch.
    pub generate: usize,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    pub timeout: Duration,
}

const NS: &str = "t2t-demo";
const MANAGER: &str = "t2t-demo";

/// Applies every Kubernetes object in the YAML files of `dir`, as `kubectl apply -f dir` would,
/// pointing TenantPairs at `cloud`.
pub async fn apply_examples(
    client: &Client,
    dir: &Path,
    cloud: &Value,
) -> Result<Vec<String>, DevError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DevError::Other(format!("reading {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                && p.file_name().is_some_and(|n| n != "tenants.yaml")
        })
        .collect();
    files.sort();
    let mut applied = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| DevError::Other(format!("{}: {e}", f.display())))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let mut v: Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| DevError::Other(format!("{}: {e}", f.display())))?;
            if v.is_null() {
                continue;
            }
            if v["kind"] == "TenantPair" {
                v["spec"]["cloud"] = cloud.clone();
            }
            let (group, version) = match v["apiVersion"].as_str().unwrap_or("").split_once('/') {
                Some((g, ver)) => (g.to_string(), ver.to_string()),
                None => (
                    String::new(),
                    v["apiVersion"].as_str().unwrap_or("").to_string(),
                ),
            };
            let gvk = GroupVersionKind::gvk(&group, &version, v["kind"].as_str().unwrap_or(""));
            let (ar, caps): (ApiResource, _) = kube::discovery::pinned_kind(client, &gvk).await?;
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_string();
            let api: Api<DynamicObject> = match caps.scope {
                Scope::Namespaced => Api::namespaced_with(
                    client.clone(),
                    v["metadata"]["namespace"].as_str().unwrap_or(NS),
                    &ar,
                ),
                Scope::Cluster => Api::all_with(client.clone(), &ar),
            };
            api.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&v),
            )
            .await?;
            applied.push(format!("{}/{}", gvk.kind, name));
        }
    }
    Ok(applied)
}

/// The generated wave: users listed in a ConfigMap in Exchange's CSV form.
async fn generated_batch(client: &Client, n: usize) -> Result<(), DevError> {
    let mut csv = String::from("EmailAddress,SourceEmailAddress\n");
    for i in 0..n {
        csv.push_str(&format!("gen{i:05}@fabrikam.com,gen{i:05}@contoso.com\n"));
    }
    let pp = PatchParams::apply(MANAGER).force();
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), NS);
    cms.patch("wave-2-users", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "wave-2-users"}, "data": {"users.csv": csv}}))).await?;
    let mbs: Api<MigrationBatch> = Api::namespaced(client.clone(), NS);
    let body = json!({
        "apiVersion": "t2t.dev/v1alpha1", "kind": "MigrationBatch", "metadata": {"name": "wave-2"},
        "spec": {
            "endpointRef": {"name": "contoso"},
            "usersFrom": {"name": "wave-2-users", "key": "users.csv"},
            "targetDeliveryDomain": "fabrikam.onmicrosoft.com",
            "provisioning": {"migrationLicense": "Source", "usageLocation": "US"},
            "completion": {"mode": "Manual"}
        }
    });
    mbs.patch("wave-2", &pp, &Patch::Apply(body)).await?;
    Ok(())
}

fn progress_of(mb: &MigrationBatch) -> (u64, u64, String) {
    let Some(s) = &mb.status else {
        return (0, 1, "waiting for the operator".into());
    };
    let c = &s.counts;
    // Progress: each user contributes its state's share (prepared 10 %, synced 80 %, completed 100 %).
    let mut done = 0u64;
    for u in &s.users {
        done += match u.state {
            UserState::Pending | UserState::HeldBack => 0,
            UserState::Validated => 5,
            UserState::Provisioned | UserState::Queued => 10,
            UserState::Syncing => 10 + u64::from(u.percent.unwrap_or(0)) * 70 / 100,
            UserState::Synced => 80,
            UserState::Completing => 90,
            UserState::Completed | UserState::Failed | UserState::Stopped => 100,
        };
    }
    let reason = find(&s.conditions, types::READY)
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    let msg = format!(
        "{reason}: {} synced, {} completed, {} failed, {} held back of {}",
        c.synced, c.completed, c.failed, c.held_back, c.total
    );
    (done, (c.total.max(1) as u64) * 100, msg)
}

/// Runs the demo; returns (completed, total).
pub async fn run(opts: DemoOptions) -> Result<(usize, usize), DevError> {
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    let mut fixture = Fixture::load(&opts.examples.join("tenants.yaml"))
        .map_err(|e| DevError::Other(format!("fixture: {e}")))?;
    fixture.add_generated(opts.generate);
    // One Cross Tenant User Data Migration seat per generated mailbox.
    if let Some(t) = fixture.tenants.first_mut() {
        for sku in t.skus.iter_mut().filter(|s| {
            s.sku_id
                .to_string()
                .eq_ignore_ascii_case(crate::tenant::graph::MIGRATION_SKU_ID)
        }) {
            sku.seats += opts.generate as u32;
        }
    }
    let mut dev_opts = DevOptions::new(fixture);
    dev_opts.time_scale = opts.time_scale;
    dev_opts.operator.active_poll = Duration::from_millis(500);
    let mut env = DevEnv::start(dev_opts).await?;
    println!("emulated cluster:   {}", env.emu.url());
    println!(
        "simulated tenants:  {} (one simulated hour every {:.1} s)",
        env.sim.base_url(),
        3600.0 / opts.time_scale
    );
    env.seed_namespace(NS).await?;
    let cloud = serde_json::to_value(env.cloud()).map_err(|e| DevError::Other(e.to_string()))?;
    let applied = apply_examples(&env.client, &opts.examples, &cloud).await?;
    println!("applied {}", applied.join(", "));
    generated_batch(&env.client, opts.generate).await?;
    println!(
        "applied MigrationBatch/wave-2 ({} generated mailboxes from ConfigMap wave-2-users)",
        opts.generate
    );
    env.start_operator();

    let mbs: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:40}] {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let mut last_line = Instant::now() - Duration::from_secs(10);
    let mut approved: Vec<String> = Vec::new();
    let outcome = loop {
        let list = mbs.list(&Default::default()).await?.items;
        let mut all_done = !list.is_empty();
        for mb in &list {
            let name = mb.name_any();
            let (pos, len, msg) = progress_of(mb);
            if tty {
                let bar = bars.entry(name.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(len));
                    b.set_style(style.clone());
                    b.set_prefix(name.clone());
                    b
                });
                bar.set_length(len);
                bar.set_position(pos);
                bar.set_message(msg.clone());
            } else if last_line.elapsed() >= Duration::from_secs(5) {
                println!("[{:>5.1}s] {name}: {msg}", started.elapsed().as_secs_f64());
            }
            let s = mb.status.clone().unwrap_or_default();
            let c = &s.counts;
            // Open the gate once every user that can move is synced.
            let waiting = c.total > 0
                && c.synced > 0
                && c.synced + c.completed + c.failed + c.held_back == c.total
                && c.syncing == 0;
            if waiting && mb.spec.completion.approved != Some(true) && !approved.contains(&name) {
                mbs.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"completion": {"approved": true}}})),
                )
                .await?;
                approved.push(name.clone());
                let line = format!(
                    "{name}: all users synced; completion approved (spec.completion.approved=true)"
                );
                if tty {
                    multi.println(line).ok();
                } else {
                    println!("{line}");
                }
            }
            let stalled = is_true(&s.conditions, types::STALLED);
            let finished = is_true(&s.conditions, types::READY)
                || (c.total > 0
                    && c.completed + c.failed + c.held_back == c.total
                    && c.completed + c.failed + c.held_back > 0
                    && c.syncing == 0
                    && c.synced == 0);
            all_done &= finished || stalled;
        }
        if !tty && last_line.elapsed() >= Duration::from_secs(5) {
            last_line = Instant::now();
        }
        if all_done {
            break list;
        }
        if started.elapsed() > opts.timeout {
            eprintln!("demo: timed out after {:?}", opts.timeout);
            break list;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for b in bars.values() {
        b.finish();
    }

    // Summary.
    println!();
    println!(
        "{:<10} {:>6} {:>10} {:>7} {:>10}  STATUS",
        "BATCH", "TOTAL", "COMPLETED", "FAILED", "HELD BACK"
    );
    let (mut done, mut total) = (0usize, 0usize);
    for mb in &outcome {
        let s = mb.status.clone().unwrap_or_default();
        let c = &s.counts;
        let ready = find(&s.conditions, types::READY)
            .map(|c| format!("{}: {}", c.reason, c.message))
            .unwrap_or_default();
        println!(
            "{:<10} {:>6} {:>10} {:>7} {:>10}  {}",
            mb.name_any(),
            c.total,
            c.completed,
            c.failed,
            c.held_back,
            ready
        );
        for f in &s.sample_failures {
            println!("           {} {}: {}", f.source, f.reason, f.message);
        }
        done += c.completed as usize;
        total += c.total as usize;
    }
    println!("elapsed {:.1}s", started.elapsed().as_secs_f64());
    println!("completed {done}/{total} mailboxes");
    env.shutdown().await;
    Ok((done, total))
}
