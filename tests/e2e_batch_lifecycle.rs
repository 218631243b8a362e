//! MigrationBatch lifecycle end to end: the completion gates, the steps after completion
//! (licences, delegates, reports), suspend/resume, deletion policies and metrics.

mod common;

use std::time::Duration;

use common::*;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use t2t_operator::api::conditions::{find, is_true, types};
use t2t_operator::api::*;

async fn create(batches: &Api<MigrationBatch>, name: &str, spec: MigrationBatchSpec) {
    batches
        .create(&PostParams::default(), &MigrationBatch::new(name, spec))
        .await
        .expect("create batch");
}

async fn patch(batches: &Api<MigrationBatch>, name: &str, v: serde_json::Value) {
    batches
        .patch(name, &PatchParams::default(), &Patch::Merge(v))
        .await
        .expect("patch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_waits_for_manual_approval_and_the_schedule_immediate_goes_through() {
    let mut fx = fixture();
    for n in ["mia", "sid", "ike"] {
        add_source_user(&mut fx, n, mailbox(400), true);
    }
    let (env, tenants) = start_with(fx, 7200.0).await;
    prepared(&env, &tenants).await;
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    let at = chrono::Utc::now() + chrono::Duration::seconds(25);
    create(
        &batches,
        "manual",
        batch_spec(vec![u("mia")], CompletionSpec::default()),
    )
    .await;
    create(
        &batches,
        "scheduled",
        batch_spec(
            vec![u("sid")],
            CompletionSpec {
                mode: CompletionMode::Scheduled,
                approved: None,
                at: Some(at),
            },
        ),
    )
    .await;
    create(
        &batches,
        "immediate",
        batch_spec(vec![u("ike")], immediate()),
    )
    .await;

    wait_final(&batches, "immediate", Duration::from_secs(60)).await;
    assert_eq!(
        user_state(
            &batch_status(&batches, "immediate").await,
            "ike@contoso.com"
        )
        .0,
        UserState::Completed
    );
    for name in ["manual", "scheduled"] {
        wait_for(
            &format!("{name} synced and waiting"),
            Duration::from_secs(60),
            || async {
                let s = batch_status(&batches, name).await;
                Ok(s.counts.synced == 1
                    && find(&s.conditions, types::READY)
                        .is_some_and(|c| c.reason == "AwaitingApproval"))
            },
        )
        .await;
    }
    // Many simulated days pass; nothing completes while the gates are closed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        chrono::Utc::now() < at,
        "the test is too slow for its schedule"
    );
    for name in ["manual", "scheduled"] {
        let s = batch_status(&batches, name).await;
        assert_eq!(s.counts.completed, 0, "{name}");
        assert!(s.completion_started_at.is_none(), "{name}");
        assert!(
            !is_true(&s.conditions, types::COMPLETION_APPROVED),
            "{name}"
        );
    }
    let target = dump(&env, &tenants[1].0).await;
    assert_eq!(
        recipient(&target, "mia@fabrikam.com").expect("mia")["recipientTypeDetails"],
        "MailUser"
    );
    // The schedule passes: completion without any change to the spec.
    wait_final(&batches, "scheduled", Duration::from_secs(60)).await;
    let s = batch_status(&batches, "scheduled").await;
    assert_eq!(s.counts.completed, 1);
    assert!(s.completion_started_at.is_some_and(|t| t >= at));
    // Still waiting for approval.
    assert_eq!(batch_status(&batches, "manual").await.counts.completed, 0);
    patch(
        &batches,
        "manual",
        json!({"spec": {"completion": {"approved": true}}}),
    )
    .await;
    wait_final(&batches, "manual", Duration::from_secs(60)).await;
    assert_eq!(batch_status(&batches, "manual").await.counts.completed, 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_completion_licences_delegates_and_reports() {
    let mut fx = fixture();
    // pat delegates to carol, who moves in no batch.
    let mut mb = mailbox(300);
    mb.grant_send_on_behalf_to = vec!["carol@contoso.com".into()];
    add_source_user(&mut fx, "pat", mb, true);
    let (env, tenants) = start_with(fx, 7200.0).await;
    prepared(&env, &tenants).await;
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    let mut spec = batch_spec(vec![u("alice"), u("frank"), u("pat")], immediate());
    spec.provisioning.licenses = vec![LicenseRef {
        sku_part_number: Some("ENTERPRISEPACK".into()),
        sku_id: None,
    }];
    spec.provisioning.usage_location = Some("US".into());
    create(&batches, "wave", spec).await;
    wait_final(&batches, "wave", Duration::from_secs(90)).await;
    let s = batch_status(&batches, "wave").await;
    assert_eq!(s.counts.completed, 3, "{:?}", s.users);
    assert!(is_true(&s.conditions, types::READY), "{:?}", s.conditions);

    let (src_t, tgt_t) = (tenants[0].0.clone(), tenants[1].0.clone());
    let source = dump(&env, &src_t).await;
    let target = dump(&env, &tgt_t).await;
    for n in ["alice", "frank", "pat"] {
        // Both conversions.
        let src = recipient(&source, &format!("{n}@contoso.com")).expect("src");
        assert_eq!(src["recipientTypeDetails"], "MailUser", "{n}");
        assert!(
            src["externalEmailAddress"]
                .as_str()
                .is_some_and(|e| e.to_lowercase().ends_with("@fabrikam.onmicrosoft.com")),
            "{src}"
        );
        let tgt = recipient(&target, &format!("{n}@fabrikam.com")).expect("tgt");
        assert_eq!(tgt["recipientTypeDetails"], "UserMailbox", "{n}");
        // Licensed after completion, with a usage location.
        let gu = target["users"]
            .as_array()
            .expect("users")
            .iter()
            .find(|x| x["userPrincipalName"] == format!("{n}@fabrikam.com"))
            .cloned()
            .expect("target user");
        assert_eq!(gu["usageLocation"], "US", "{gu}");
        assert!(gu["assignedLicenses"].to_string().contains(E3_SKU), "{gu}");
    }
    // GrantSendOnBehalfTo re-stamped on frank in the target (alice moved in this batch).
    let frank = invoke(
        &env,
        &tgt_t,
        "Get-Mailbox",
        json!({"Identity": "frank@fabrikam.com"}),
    )
    .await;
    let text = frank.to_string().to_lowercase();
    assert!(
        text.contains("\"grantsendonbehalfto\":[\"alice"),
        "frank's delegates: {text}"
    );
    // The delegates were kept in a ConfigMap owned by the batch.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(env.client.clone(), NS);
    let cm = cms
        .get("wave-delegates")
        .await
        .expect("delegates ConfigMap");
    assert!(
        cm.metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o[0].kind == "MigrationBatch")
    );
    // Reports: the new external addresses, and the delegate left behind.
    let events = events_for(&env, "wave").await;
    assert!(
        events.iter().any(|(_, r, n)| r == "MailboxesMoved"
            && n.contains("frank@contoso.com")
            && n.contains("@fabrikam.onmicrosoft.com")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(t, r, n)| t == "Warning"
            && r == "DelegatesNotMoving"
            && n.contains("carol@contoso.com")),
        "{events:?}"
    );
    // Metrics.
    assert_eq!(mailboxes_metric(&env, "completed"), Some(3));
    assert_eq!(mailboxes_metric(&env, "total"), Some(3));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_and_resume_starts_deletion_policies_are_honoured() {
    let mut fx = fixture();
    add_source_user(&mut fx, "big", mailbox(40 * 1024), true);
    for n in ["del", "orph"] {
        add_source_user(&mut fx, n, mailbox(200), true);
    }
    let (env, tenants) = start_with(fx, 3600.0).await;
    prepared(&env, &tenants).await;
    let tgt_t = tenants[1].0.clone();
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    create(&batches, "long", batch_spec(vec![u("big")], immediate())).await;
    let mut spec = batch_spec(vec![u("del")], immediate());
    spec.deletion_policy = DeletionPolicy::Delete;
    create(&batches, "del", spec).await;
    create(&batches, "orph", batch_spec(vec![u("orph")], immediate())).await;

    let exo_batch = |d: &serde_json::Value, name: &str| {
        d["migrationBatches"].as_array().and_then(|a| {
            a.iter()
                .find(|b| b["name"] == name || b["identity"] == name || b["Identity"] == name)
                .cloned()
        })
    };
    wait_for("big syncing", Duration::from_secs(60), || async {
        Ok(batch_status(&batches, "long").await.counts.syncing == 1)
    })
    .await;
    patch(&batches, "long", json!({"spec": {"suspend": true}})).await;
    wait_for(
        "the Exchange batch stopped",
        Duration::from_secs(30),
        || async {
            let d = dump(&env, &tgt_t).await;
            let b = exo_batch(&d, &format!("{NS}-long"));
            let s = batch_status(&batches, "long").await;
            Ok(b.as_ref()
                .is_some_and(|b| b.to_string().contains("Stopped"))
                && user_state(&s, "big@contoso.com").0 == UserState::Stopped
                && find(&s.conditions, types::READY).is_some_and(|c| c.reason == "Suspended"))
            .map_err(|_: ()| String::new())
            .and_then(|ok| {
                if ok {
                    Ok(true)
                } else {
                    Err(format!("{b:?} {:?}", s.users))
                }
            })
        },
    )
    .await;
    patch(&batches, "long", json!({"spec": {"suspend": false}})).await;
    wait_for("resumed", Duration::from_secs(30), || async {
        let s = batch_status(&batches, "long").await;
        Ok(matches!(
            user_state(&s, "big@contoso.com").0,
            UserState::Syncing | UserState::Synced | UserState::Completing | UserState::Completed
        ))
    })
    .await;

    // Deletion: Delete removes the Exchange batch, Orphan leaves it.
    wait_final(&batches, "del", Duration::from_secs(60)).await;
    wait_final(&batches, "orph", Duration::from_secs(60)).await;
    let d = dump(&env, &tgt_t).await;
    assert!(
        exo_batch(&d, &format!("{NS}-del")).is_some(),
        "{}",
        d["migrationBatches"]
    );
    batches
        .delete("del", &DeleteParams::default())
        .await
        .expect("delete");
    batches
        .delete("orph", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("both deleted", Duration::from_secs(30), || async {
        Ok(batches
            .get_opt("del")
            .await
            .map_err(|e| e.to_string())?
            .is_none()
            && batches
                .get_opt("orph")
                .await
                .map_err(|e| e.to_string())?
                .is_none())
    })
    .await;
    let d = dump(&env, &tgt_t).await;
    assert!(
        exo_batch(&d, &format!("{NS}-del")).is_none(),
        "Delete removes it"
    );
    assert!(
        exo_batch(&d, &format!("{NS}-orph")).is_some(),
        "Orphan leaves it"
    );
    // The resumed move finishes.
    wait_final(&batches, "long", Duration::from_secs(90)).await;
    assert_eq!(batch_status(&batches, "long").await.counts.completed, 1);
    env.shutdown().await;
}
