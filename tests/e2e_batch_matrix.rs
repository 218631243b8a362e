//! The failure matrix end to end: one mailbox per documented failure ends held back (or failed)
//! with its specific reason while every other mailbox completes.

mod common;

use std::time::Duration;

use common::*;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use t2t_operator::api::*;
use t2t_operator::sim::fixture::{HoldsFixture, MailboxFixture};

fn held(mb: MailboxFixture, holds: HoldsFixture) -> MailboxFixture {
    MailboxFixture { holds, ..mb }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_holds_back_its_user_with_its_reason_and_the_rest_complete() {
    let mut fx = fixture();
    add_source_user(
        &mut fx,
        "dolly",
        held(
            mailbox(300),
            HoldsFixture {
                delay_hold: true,
                ..Default::default()
            },
        ),
        true,
    );
    add_source_user(
        &mut fx,
        "cora",
        held(
            mailbox(300),
            HoldsFixture {
                compliance_tag_hold: true,
                ..Default::default()
            },
        ),
        true,
    );
    add_source_user(&mut fx, "oscar", mailbox(300), false); // not in the scope group
    add_source_user(&mut fx, "judy", mailbox(300), true); // target is already a mailbox
    for n in ["gus", "xena", "fred", "sam", "fern"] {
        add_source_user(&mut fx, n, mailbox(300), true);
    }
    // Judy's target was licensed before its ExchangeGuid was stamped: it is a mailbox already.
    fx.tenants[1]
        .users
        .push(t2t_operator::sim::fixture::UserFixture {
            user_principal_name: "judy@fabrikam.com".into(),
            display_name: "Judy".into(),
            alias: None,
            usage_location: Some("US".into()),
            licenses: vec![E3_SKU.parse().expect("uuid")],
            mailbox: Some(mailbox(10)),
            mail_user: None,
        });
    let (env, tenants) = start_with(fx, 7200.0).await;
    let (src_t, tgt_t) = (tenants[0].0.clone(), tenants[1].0.clone());

    // Broken target MailUsers, created through the wire with the target admin token.
    let source = dump(&env, &src_t).await;
    let guid = |n: &str| {
        recipient(&source, &format!("{n}@contoso.com")).expect("src")["exchangeGuid"]
            .as_str()
            .expect("guid")
            .to_string()
    };
    let dn = |n: &str| {
        recipient(&source, &format!("{n}@contoso.com")).expect("src")["legacyExchangeDN"]
            .as_str()
            .expect("dn")
            .to_string()
    };
    let add = |xs: Vec<String>| json!({"@odata.type": "#Exchange.GenericHashTable", "Add": xs});
    for n in ["gus", "xena", "fred", "sam", "fern"] {
        invoke(
            &env,
            &tgt_t,
            "New-MailUser",
            json!({"Name": n, "ExternalEmailAddress": format!("SMTP:{n}@contoso.com"), "PrimarySmtpAddress": format!("{n}@fabrikam.com")}),
        )
        .await;
    }
    // gus: no ExchangeGuid. xena: GUID but no x500. fred/fern: correct, plus a foreign SMTP proxy.
    // sam: correct.
    invoke(
        &env,
        &tgt_t,
        "Set-MailUser",
        json!({"Identity": "xena@fabrikam.com", "ExchangeGuid": guid("xena"), "EmailAddresses": add(vec!["smtp:xena@fabrikam.onmicrosoft.com".into()])}),
    )
    .await;
    for n in ["fred", "fern"] {
        invoke(&env, &tgt_t, "Set-MailUser", json!({"Identity": format!("{n}@fabrikam.com"), "ExchangeGuid": guid(n), "EmailAddresses": add(vec![format!("x500:{}", dn(n)), format!("smtp:{n}@fabrikam.onmicrosoft.com"), format!("smtp:{n}@foreign.example")])})).await;
    }
    invoke(&env, &tgt_t, "Set-MailUser", json!({"Identity": "sam@fabrikam.com", "ExchangeGuid": guid("sam"), "EmailAddresses": add(vec![format!("x500:{}", dn("sam")), "smtp:sam@fabrikam.onmicrosoft.com".into()])})).await;

    prepared(&env, &tenants).await;
    let batches: Api<MigrationBatch> = Api::namespaced(env.client.clone(), NS);
    let immediate = CompletionSpec {
        mode: CompletionMode::Immediate,
        ..Default::default()
    };
    let u = |n: &str| user(&format!("{n}@contoso.com"), &format!("{n}@fabrikam.com"));
    // Operator-managed MailUsers; scope membership checked only.
    let mut spec = batch_spec(
        [
            "alice", "bob", "dave", "grace", "dolly", "cora", "erin", "oscar", "heidi", "ivan",
            "judy", "fern",
        ]
        .iter()
        .map(|n| u(n))
        .collect(),
        immediate.clone(),
    );
    spec.provisioning.scope_group_membership = ScopeMembership::Skip;
    batches
        .create(&PostParams::default(), &MigrationBatch::new("matrix", spec))
        .await
        .expect("matrix");
    // Pre-created MailUsers are only checked.
    let mut spec = batch_spec(
        ["gus", "xena", "fred", "sam"]
            .iter()
            .map(|n| u(n))
            .collect(),
        immediate.clone(),
    );
    spec.provisioning.mail_users = MailUserProvisioning::Skip;
    spec.provisioning.scope_group_membership = ScopeMembership::Skip;
    batches
        .create(&PostParams::default(), &MigrationBatch::new("skip", spec))
        .await
        .expect("skip");
    // A newer batch listing bob again holds him back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    batches
        .create(
            &PostParams::default(),
            &MigrationBatch::new("dup", batch_spec(vec![u("bob")], immediate)),
        )
        .await
        .expect("dup");

    wait_final(&batches, "matrix", Duration::from_secs(150)).await;
    wait_final(&batches, "skip", Duration::from_secs(60)).await;
    wait_for("dup holds bob back", Duration::from_secs(30), || async {
        let s = batch_status(&batches, "dup").await;
        Ok(user_state(&s, "bob@contoso.com")
            == (UserState::HeldBack, Some("InAnotherBatch".into())))
    })
    .await;

    let m = batch_status(&batches, "matrix").await;
    let expect = [
        ("dave", "LitigationHold"),
        ("grace", "InPlaceHold"),
        ("dolly", "DelayHold"),
        ("cora", "ComplianceTagHold"),
        ("erin", "NoMigrationLicense"),
        ("oscar", "NotInScopeGroup"),
        ("heidi", "TooManyAuxArchives"),
        ("ivan", "RecoverableItemsOverQuota"),
        ("judy", "TargetIsMailbox"),
    ];
    for (n, reason) in expect {
        assert_eq!(
            user_state(&m, &format!("{n}@contoso.com")),
            (UserState::HeldBack, Some(reason.to_string())),
            "{n}: {:?}",
            m.sample_failures
        );
        assert!(
            m.sample_failures
                .iter()
                .any(|f| f.source == format!("{n}@contoso.com") && f.reason == reason),
            "{n} has a sample failure with the fix"
        );
    }
    for n in ["alice", "bob", "fern"] {
        assert_eq!(
            user_state(&m, &format!("{n}@contoso.com")).0,
            UserState::Completed,
            "{n}"
        );
    }
    let s = batch_status(&batches, "skip").await;
    for (n, reason) in [
        ("gus", "ExchangeGuidMismatch"),
        ("xena", "MissingX500"),
        ("fred", "ForeignSmtpProxy"),
    ] {
        assert_eq!(
            user_state(&s, &format!("{n}@contoso.com")),
            (UserState::HeldBack, Some(reason.to_string())),
            "{n}"
        );
    }
    assert_eq!(
        user_state(&s, "sam@contoso.com").0,
        UserState::Completed,
        "a correct pre-created MailUser moves with mailUsers: Skip"
    );

    // CreateOrRepair removed fern's foreign proxy; Skip left fred's and xena's objects alone.
    let target = dump(&env, &tgt_t).await;
    let fern = recipient(&target, "fern@fabrikam.com").expect("fern");
    assert_eq!(fern["recipientTypeDetails"], "UserMailbox");
    assert!(
        !fern["emailAddresses"]
            .to_string()
            .contains("foreign.example")
    );
    let fred = recipient(&target, "fred@fabrikam.com").expect("fred");
    assert!(
        fred["emailAddresses"]
            .to_string()
            .contains("foreign.example")
    );
    assert_eq!(fred["recipientTypeDetails"], "MailUser");
    let judy = recipient(&target, "judy@fabrikam.com").expect("judy");
    assert_eq!(judy["recipientTypeDetails"], "UserMailbox");
    // Nothing was created for held-back users.
    for n in [
        "dave", "grace", "dolly", "cora", "erin", "oscar", "heidi", "ivan",
    ] {
        assert!(
            recipient(&target, &format!("{n}@fabrikam.com")).is_none(),
            "{n}"
        );
    }
    env.shutdown().await;
}
