//! Crash/restart: the operator killed mid-pass during provisioning, syncing and completion loses
//! nothing and creates nothing twice.

mod common;

use std::time::Duration;

use common::*;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use t2t_operator::api::conditions::find;
use t2t_operator::api::conditions::types;
use t2t_operator::api::*;

const N: usize = 40;

fn gen_targets(d: &Value) -> Vec<String> {
    d["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .filter_map(|r| r["primarySmtpAddress"].as_str())
        .filter(|p| p.starts_with("gen") && p.ends_with("@fabrikam.com"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_provisioning_syncing_and_completion_nothing_lost_or_doubled() {
    let mut fx = fixture();
    fx.add_generated(N);
    for s in &mut fx.tenants[0].skus {
        s.seats = 200;
    }
    let (mut env, tenants) = start_with(fx, 3600.0).await;
    prepared(&env, &tenants).await;
    let (src_t, tgt_t) = (tenants[0].0.clone(), tenants[1].0.clone());
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    let users: Vec<BatchUser> = (0..N)
        .map(|i| {
            user(
                &format!("gen{i:05}@contoso.com"),
                &format!("gen{i:05}@fabrikam.com"),
            )
        })
        .collect();
    let mut spec = batch_spec(users, CompletionSpec::default());
    spec.provisioning.migration_license = MigrationLicenseAssignment::Source;
    spec.provisioning.usage_location = Some("US".into());
    batches
        .create(&PostParams::default(), &MigrationBatch::new("crash", spec))
        .await
        .expect("batch");

    // 1. Kill while target MailUsers are being created.
    let mut seen = 0;
    for _ in 0..400 {
        seen = gen_targets(&dump(&env, &tgt_t).await).len();
        if seen > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    env.kill_operator();
    let s = batch_status(&batches, "crash").await;
    eprintln!(
        "killed during provisioning: {seen} of {N} target MailUsers existed; status {:?}",
        s.counts
    );
    assert!(seen < N, "the kill came too late to interrupt provisioning");
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.start_operator();

    // 2. Kill while syncing.
    wait_for("syncing", Duration::from_secs(60), || async {
        Ok(batch_status(&batches, "crash").await.counts.syncing > 0)
    })
    .await;
    env.kill_operator();
    eprintln!(
        "killed during syncing: {:?}",
        batch_status(&batches, "crash").await.counts
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.start_operator();

    wait_for(
        "all synced, waiting for approval",
        Duration::from_secs(90),
        || async {
            let s = batch_status(&batches, "crash").await;
            if s.counts.synced as usize == N
                && find(&s.conditions, types::READY).is_some_and(|c| c.reason == "AwaitingApproval")
            {
                Ok(true)
            } else {
                Err(format!("{:?}", s.counts))
            }
        },
    )
    .await;

    // 3. Kill right after completion was requested.
    batches
        .patch(
            "crash",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"completion": {"approved": true}}})),
        )
        .await
        .expect("approve");
    wait_for("completion requested", Duration::from_secs(30), || async {
        Ok(batch_status(&batches, "crash")
            .await
            .completion_started_at
            .is_some())
    })
    .await;
    env.kill_operator();
    eprintln!(
        "killed during completion: {:?}",
        batch_status(&batches, "crash").await.counts
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.start_operator();

    wait_final(&batches, "crash", Duration::from_secs(120)).await;
    let s = batch_status(&batches, "crash").await;
    assert_eq!(s.counts.completed as usize, N, "{:?}", s.users);

    // Nothing twice: one target object per user, one scope-group membership, one Exchange batch.
    let target = dump(&env, &tgt_t).await;
    let mut t = gen_targets(&target);
    t.sort();
    let before = t.len();
    t.dedup();
    assert_eq!((before, t.len()), (N, N), "one target object per user");
    assert_eq!(
        target["migrationBatches"].as_array().map(Vec::len),
        Some(1),
        "{}",
        target["migrationBatches"]
    );
    let source = dump(&env, &src_t).await;
    let group = source["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g.to_string().contains("T2T-Migration-Scope"))
        .cloned()
        .expect("scope group");
    // Members are object ids: the fixture's 9 plus one per generated user, none twice.
    let mut members: Vec<String> = group["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m.to_string())
        .collect();
    members.sort();
    let before = members.len();
    members.dedup();
    assert_eq!(
        (before, members.len()),
        (9 + N, 9 + N),
        "scope group members"
    );
    for i in 0..N {
        let r = recipient(&source, &format!("gen{i:05}@contoso.com")).expect("source");
        assert!(
            r["recipientTypeDetails"]
                .as_str()
                .is_some_and(|t| t.contains("MailUser"))
        );
    }
    env.shutdown().await;
}
