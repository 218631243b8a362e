//! MigrationBatch end to end: the spec changes after the Exchange batch exists. A user appended
//! to the spec is prepared and added to the running Exchange batch (`Set-MigrationBatch
//! -AddUsers -CSVData`) and ends Completed; a user taken out before Exchange started it leaves
//! the scope group. Nothing is created twice.

mod common;

use std::time::Duration;

use common::*;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use t2t_operator::api::*;

fn scope_members(env_dump: &Value) -> String {
    env_dump["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g.to_string().contains("T2T-Migration-Scope"))
        .map(|g| g["members"].to_string())
        .expect("scope group")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_appended_to_a_running_batch_moves_and_a_removed_one_leaves_the_scope_group() {
    let mut fx = fixture();
    // zoe is a clean, licensed source user the operator has not seen yet (not in scope: the
    // operator adds her when she is appended).
    add_source_user(&mut fx, "zoe", mailbox(300), false);
    let (env, tenants) = start_with(fx, 3600.0).await;
    prepared(&env, &tenants).await;
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    // dave has a litigation hold: held back, never started in Exchange.
    batches
        .create(
            &PostParams::default(),
            &MigrationBatch::new(
                "grow",
                batch_spec(
                    vec![u("alice"), u("bob"), u("dave")],
                    CompletionSpec::default(),
                ),
            ),
        )
        .await
        .expect("batch");
    wait_for(
        "alice and bob synced in the Exchange batch",
        Duration::from_secs(120),
        || async {
            let s = batch_status(&batches, "grow").await;
            if s.exchange_batch.is_some()
                && s.counts.synced == 2
                && user_state(&s, "dave@contoso.com").0 == UserState::HeldBack
            {
                Ok(true)
            } else {
                Err(format!("{:?} {:?}", s.counts, s.users))
            }
        },
    )
    .await;
    let source_id = tenants[0].0.clone();
    let dave_id =
        recipient(&dump(&env, &source_id).await, "dave@contoso.com").expect("dave")["guid"].clone();
    assert!(
        scope_members(&dump(&env, &source_id).await).contains(dave_id.as_str().unwrap_or("-")),
        "dave starts in the scope group (fixture)"
    );

    // Append zoe, take dave out.
    let pp = PatchParams::default();
    batches
        .patch(
            "grow",
            &pp,
            &Patch::Merge(json!({"spec": {"users": [
                {"source": "alice@contoso.com", "target": "alice@fabrikam.com"},
                {"source": "bob@contoso.com", "target": "bob@fabrikam.com"},
                {"source": "zoe@contoso.com", "target": "zoe@fabrikam.com"},
            ]}})),
        )
        .await
        .expect("patch users");
    wait_for(
        "zoe in the Exchange batch and synced, dave gone",
        Duration::from_secs(120),
        || async {
            let s = batch_status(&batches, "grow").await;
            let dave_gone = !s.users.iter().any(|u| u.source == "dave@contoso.com");
            if dave_gone && s.counts.synced == 3 {
                Ok(true)
            } else {
                Err(format!("{:?} {:?}", s.counts, s.users))
            }
        },
    )
    .await;
    let source = dump(&env, &source_id).await;
    let members = scope_members(&source);
    assert!(
        !members.contains(dave_id.as_str().unwrap_or("-")),
        "dave left the scope group: {members}"
    );
    let zoe_id = recipient(&source, "zoe@contoso.com").expect("zoe")["guid"].clone();
    assert!(
        members.contains(zoe_id.as_str().unwrap_or("-")),
        "zoe was added to the scope group: {members}"
    );
    // Nothing completes before the gate opens, the appended user included.
    let s = batch_status(&batches, "grow").await;
    assert_eq!(s.counts.completed, 0, "{:?}", s.users);

    // bob is in Exchange: taking him out is refused (he would keep moving, unfollowed) until he
    // is back in the list.
    let users = |with_bob: bool| {
        let mut v = vec![json!({"source": "alice@contoso.com", "target": "alice@fabrikam.com"})];
        if with_bob {
            v.push(json!({"source": "bob@contoso.com", "target": "bob@fabrikam.com"}));
        }
        v.push(json!({"source": "zoe@contoso.com", "target": "zoe@fabrikam.com"}));
        json!({"spec": {"users": v}})
    };
    batches
        .patch("grow", &pp, &Patch::Merge(users(false)))
        .await
        .expect("drop bob");
    wait_for("Stalled naming bob", Duration::from_secs(60), || async {
        let s = batch_status(&batches, "grow").await;
        let stalled = t2t_operator::api::conditions::find(&s.conditions, "Stalled")
            .filter(|c| c.status == ConditionStatus::True && c.message.contains("bob@contoso.com"));
        match stalled {
            Some(_) => Ok(true),
            None => Err(format!("{:?}", s.conditions)),
        }
    })
    .await;
    batches
        .patch("grow", &pp, &Patch::Merge(users(true)))
        .await
        .expect("bob back");

    batches
        .patch(
            "grow",
            &pp,
            &Patch::Merge(json!({"spec": {"completion": {"approved": true}}})),
        )
        .await
        .expect("approve");
    wait_final(&batches, "grow", Duration::from_secs(120)).await;
    let s = batch_status(&batches, "grow").await;
    assert_eq!(s.counts.completed, 3, "{:?}", s.users);
    assert_eq!(
        user_state(&s, "zoe@contoso.com").0,
        UserState::Completed,
        "{:?}",
        s.users
    );

    // One Exchange batch, each user in it once, zoe's source converted.
    let target = dump(&env, &tenants[1].0).await;
    let exo = target["migrationBatches"].as_array().expect("batches");
    assert_eq!(exo.len(), 1, "{exo:?}");
    let text = exo[0].to_string().to_ascii_lowercase();
    for who in ["alice@fabrikam.com", "bob@fabrikam.com", "zoe@fabrikam.com"] {
        assert_eq!(
            text.matches(&format!("\"{who}\"")).count(),
            1,
            "{who} once in the Exchange batch: {}",
            exo[0]
        );
    }
    assert!(!text.contains("dave@fabrikam.com"), "{}", exo[0]);
    let zoe = recipient(&dump(&env, &source_id).await, "zoe@contoso.com").expect("zoe");
    assert_eq!(zoe["recipientTypeDetails"], "MailUser", "{zoe}");
    env.shutdown().await;
}
