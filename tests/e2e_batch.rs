//! MigrationBatch end to end: preflight holds back the users Microsoft's checklist would fail,
//! the rest are prepared, synced and, only once the gate opens, completed.

mod common;

use std::time::Duration;

use common::*;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use t2t_operator::api::conditions::{find, is_true, types};
use t2t_operator::api::*;

fn state_of(mb: &MigrationBatch, source: &str) -> (UserState, Option<String>) {
    let u = mb
        .status
        .as_ref()
        .and_then(|s| s.users.iter().find(|u| u.source == source))
        .cloned()
        .expect("user status");
    (u.state, u.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_users_move_blocked_users_are_held_back_and_completion_waits_for_approval() {
    // One simulated hour per real second: multi-GB mailboxes sync in seconds.
    let (env, tenants) = start(3600.0).await;
    prepared(&env, &tenants).await;
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    let users = vec![
        user("alice@contoso.com", "alice@fabrikam.com"),
        user("bob@contoso.com", "bob@fabrikam.com"),
        user("frank@contoso.com", "frank@fabrikam.com"),
        user("dave@contoso.com", "dave@fabrikam.com"), // litigation hold
        user("grace@contoso.com", "grace@fabrikam.com"), // in-place hold
        user("heidi@contoso.com", "heidi@fabrikam.com"), // 13 auxiliary archives
        user("erin@contoso.com", "erin@fabrikam.com"), // no Cross Tenant User Data Migration licence
        user("ivan@contoso.com", "ivan@fabrikam.com"), // dumpster over the target quota
    ];
    batches
        .create(
            &PostParams::default(),
            &MigrationBatch::new("wave-1", batch_spec(users, CompletionSpec::default())),
        )
        .await
        .expect("batch");

    wait_for(
        "the clean users to sync and wait for approval",
        Duration::from_secs(120),
        || async {
            let b = batches.get("wave-1").await.map_err(|e| e.to_string())?;
            let s = b.status.clone().unwrap_or_default();
            Ok(s.counts.synced == 3
                && find(&s.conditions, types::READY)
                    .is_some_and(|c| c.reason == "AwaitingApproval"))
            .map_err(|_: ()| String::new())
            .and_then(|ok| {
                if ok {
                    Ok(true)
                } else {
                    Err(format!(
                        "{:?} {:?}",
                        s.counts,
                        find(&s.conditions, types::READY)
                    ))
                }
            })
        },
    )
    .await;

    let b = batches.get("wave-1").await.expect("batch");
    let st = b.status.clone().expect("status");
    assert_eq!(st.counts.held_back, 5, "{:?}", st.users);
    assert_eq!(
        state_of(&b, "ivan@contoso.com"),
        (
            UserState::HeldBack,
            Some("RecoverableItemsOverQuota".into())
        )
    );
    assert_eq!(
        state_of(&b, "dave@contoso.com"),
        (UserState::HeldBack, Some("LitigationHold".into()))
    );
    assert_eq!(
        state_of(&b, "grace@contoso.com"),
        (UserState::HeldBack, Some("InPlaceHold".into()))
    );
    assert_eq!(
        state_of(&b, "heidi@contoso.com"),
        (UserState::HeldBack, Some("TooManyAuxArchives".into()))
    );
    assert_eq!(
        state_of(&b, "erin@contoso.com"),
        (UserState::HeldBack, Some("NoMigrationLicense".into()))
    );
    assert!(st.sample_failures.iter().any(|f| {
        f.source == "erin@contoso.com"
            && f.message
                .contains("CrossTenantMigrationWithoutLicensePermanentException")
    }));
    assert!(!is_true(&st.conditions, types::COMPLETION_APPROVED));
    assert_eq!(
        st.counts.completed, 0,
        "nothing completes before the gate opens"
    );

    // The target MailUsers carry what the move needs.
    let target = dump(&env, &tenants[1].0).await;
    let source = dump(&env, &tenants[0].0).await;
    let alice_src = source["recipients"]
        .as_array()
        .expect("r")
        .iter()
        .find(|r| r["primarySmtpAddress"] == "alice@contoso.com")
        .cloned()
        .expect("alice");
    let alice_tgt = target["recipients"]
        .as_array()
        .expect("r")
        .iter()
        .find(|r| r["primarySmtpAddress"] == "alice@fabrikam.com")
        .cloned()
        .expect("target alice");
    assert_eq!(alice_tgt["recipientTypeDetails"], "MailUser");
    assert_eq!(alice_tgt["exchangeGuid"], alice_src["exchangeGuid"]);
    assert_eq!(
        alice_tgt["archiveGuid"], alice_src["archiveGuid"],
        "alice has an archive"
    );
    let dn = alice_src["legacyExchangeDN"].as_str().expect("dn");
    assert!(
        alice_tgt["emailAddresses"]
            .to_string()
            .to_lowercase()
            .contains(&format!("x500:{dn}").to_lowercase())
    );
    // Held-back users get no target object.
    assert!(
        !target["recipients"]
            .to_string()
            .contains("dave@fabrikam.com")
    );

    // Approve: the synced users complete; the source mailboxes become MailUsers.
    batches
        .patch(
            "wave-1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"completion": {"approved": true}}})),
        )
        .await
        .expect("approve");
    wait_for("completion", Duration::from_secs(120), || async {
        let b = batches.get("wave-1").await.map_err(|e| e.to_string())?;
        let s = b.status.clone().unwrap_or_default();
        if s.counts.completed == 3 {
            Ok(true)
        } else {
            Err(format!("{:?}", s.counts))
        }
    })
    .await;
    let source = dump(&env, &tenants[0].0).await;
    let alice_src = source["recipients"]
        .as_array()
        .expect("r")
        .iter()
        .find(|r| r["primarySmtpAddress"] == "alice@contoso.com")
        .cloned()
        .expect("alice");
    assert_eq!(
        alice_src["recipientTypeDetails"], "MailUser",
        "the source mailbox was converted"
    );
    assert!(
        alice_src["externalEmailAddress"]
            .as_str()
            .is_some_and(|e| e.to_lowercase().ends_with("@fabrikam.onmicrosoft.com")),
        "{alice_src}"
    );
    let target = dump(&env, &tenants[1].0).await;
    let alice_tgt = target["recipients"]
        .as_array()
        .expect("r")
        .iter()
        .find(|r| r["primarySmtpAddress"] == "alice@fabrikam.com")
        .cloned()
        .expect("alice");
    assert_eq!(alice_tgt["recipientTypeDetails"], "UserMailbox");
    std::fs::write(
        "/tmp/e2e_target_dump.json",
        serde_json::to_string_pretty(&target).unwrap(),
    )
    .ok();
    let b = batches.get("wave-1").await.expect("batch");
    assert!(
        !is_true(&b.status.as_ref().expect("s").conditions, types::READY),
        "held-back users keep the batch from Ready"
    );
    env.shutdown().await;
}
