//! Migration batches end to end over InvokeCommand, driven by the simulated clock: validation
//! failures with their published exceptions, sync to 95 %, endpoint concurrency, completion
//! effects in both tenants.
#![cfg(feature = "dev")]

use serde_json::{Value, json};
use t2t_operator::sim::fixture::AppFixture;
use t2t_operator::sim::testkit::{EXCHANGE_SCOPE, encrypt_secure_string};
use t2t_operator::sim::{Fixture, RunningSimulator, SimConfig, Simulator};

const CONTOSO: &str = "3f2b6c1a-8d4e-4b7a-9c11-5a0e2d7f4b01";
const FABRIKAM: &str = "9c4e7d2b-1a5f-4c8e-b3d6-7e0f1a2b3c02";
const MIG_APP: &str = "0b7e4f52-3c1d-4a6b-9e8f-2d3c4b5a6f03";
const MIG_SECRET: &str = "migration-app-secret-W1n~q4";

struct Env {
    sim: RunningSimulator,
    /// (source, target) Exchange tokens; refreshed after every clock jump, since tokens expire
    /// in simulated time.
    tokens: std::sync::Mutex<(String, String)>,
}

impl Env {
    async fn call(&self, tenant: &str, cmdlet: &str, params: Value) -> (u16, Value) {
        let token = {
            let t = self.tokens.lock().expect("lock");
            if tenant == CONTOSO {
                t.0.clone()
            } else {
                t.1.clone()
            }
        };
        let (s, b) = self
            .sim
            .invoke(&token, tenant, cmdlet, params)
            .await
            .expect("invoke");
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn ok(&self, tenant: &str, cmdlet: &str, params: Value) -> Value {
        let (s, b) = self.call(tenant, cmdlet, params).await;
        assert_eq!(s, 200, "{cmdlet}: {b}");
        b["value"].clone()
    }

    async fn advance(&self, minutes: i64) {
        let c = self.sim.http_client().expect("client");
        let r = c
            .post(format!("{}/_sim/clock/advance", self.sim.base_url()))
            .json(&json!({"minutes": minutes}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
        let src = self
            .sim
            .admin_token(CONTOSO, EXCHANGE_SCOPE)
            .await
            .expect("src");
        let tgt = self
            .sim
            .admin_token(FABRIKAM, EXCHANGE_SCOPE)
            .await
            .expect("tgt");
        *self.tokens.lock().expect("lock") = (src, tgt);
    }

    async fn user(&self, email: &str) -> Value {
        let v = self
            .ok(FABRIKAM, "Get-MigrationUser", json!({"Identity": email}))
            .await;
        assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
        v[0].clone()
    }

    async fn batch(&self, name: &str) -> Value {
        self.ok(FABRIKAM, "Get-MigrationBatch", json!({"Identity": name}))
            .await[0]
            .clone()
    }

    /// New-MailUser + ExchangeGuid/ArchiveGuid + x500, as the article prescribes.
    async fn prepare(&self, alias: &str) {
        let src = self
            .ok(
                CONTOSO,
                "Get-Mailbox",
                json!({"Identity": format!("{alias}@contoso.com")}),
            )
            .await;
        let src = &src[0];
        self.ok(
            FABRIKAM,
            "New-MailUser",
            json!({"Name": alias,
            "ExternalEmailAddress": src["PrimarySmtpAddress"],
            "PrimarySmtpAddress": format!("{alias}@fabrikam.com")}),
        )
        .await;
        let mut set = json!({"Identity": alias, "ExchangeGuid": src["ExchangeGuid"],
            "EmailAddresses": {"@odata.type": "#Exchange.GenericHashTable",
                "Add": [format!("X500:{}", src["LegacyExchangeDN"].as_str().expect("dn"))]}});
        if src["ArchiveGuid"] != "00000000-0000-0000-0000-000000000000" {
            set["ArchiveGuid"] = src["ArchiveGuid"].clone();
        }
        self.ok(FABRIKAM, "Set-MailUser", set).await;
    }
}

fn fixture() -> Fixture {
    let mut fx =
        Fixture::load(std::path::Path::new("examples/tenants.yaml")).expect("example fixture");
    fx.tenants[1].apps.push(AppFixture {
        client_id: MIG_APP.parse().expect("guid"),
        display_name: "fabrikam_Friends_contoso".into(),
        client_secret: Some(MIG_SECRET.into()),
        certificate_pem: None,
        graph_roles: vec![],
        exchange_roles: vec!["Mailbox.Migration".into()],
        directory_roles: vec![],
        sign_in_audience: Some("AzureADMultipleOrgs".into()),
        redirect_uris: vec!["https://office.com".into()],
        federated_credentials: vec![],
    });
    fx
}

async fn setup() -> Env {
    let mut cfg = SimConfig::new(fixture());
    // Frozen clock: only /_sim/clock/advance moves time.
    cfg.time_scale = 0.0;
    let sim = Simulator::start(cfg).await.expect("start");
    let src = sim.admin_token(CONTOSO, EXCHANGE_SCOPE).await.expect("src");
    let tgt = sim
        .admin_token(FABRIKAM, EXCHANGE_SCOPE)
        .await
        .expect("tgt");
    let e = Env {
        sim,
        tokens: std::sync::Mutex::new((src, tgt)),
    };
    let c = e.sim.http_client().expect("client");
    let r = c
        .post(format!("{}/_sim/consent", e.sim.base_url()))
        .json(&json!({"tenant": CONTOSO, "clientId": MIG_APP}))
        .send()
        .await
        .expect("consent");
    assert_eq!(r.status().as_u16(), 200);
    for (t, rel) in [
        (
            FABRIKAM,
            json!({"Name": "contoso", "DomainNames": [CONTOSO], "MailboxMoveEnabled": true, "MailboxMoveCapability": "Inbound"}),
        ),
        (
            CONTOSO,
            json!({"Name": "fabrikam", "DomainNames": [FABRIKAM], "MailboxMoveEnabled": true,
            "MailboxMoveCapability": "RemoteOutbound", "OAuthApplicationId": MIG_APP,
            "MailboxMovePublishedScopes": ["T2T-Migration-Scope"]}),
        ),
    ] {
        e.ok(t, "Enable-OrganizationCustomization", json!({})).await;
        e.ok(t, "New-OrganizationRelationship", rel).await;
    }
    let key = e.sim.securestring_key().await.expect("key");
    e.ok(FABRIKAM, "New-MigrationEndpoint", json!({"Name": "contoso-ep", "ExchangeRemoteMove": true,
        "RemoteServer": "outlook.office.com", "RemoteTenant": "contoso.onmicrosoft.com",
        "ApplicationId": MIG_APP,
        "Credentials": {"UserName": MIG_APP, "Password": encrypt_secure_string(&key, MIG_SECRET).expect("enc")}})).await;
    e
}

fn csv(emails: &[&str]) -> Value {
    use base64::Engine;
    let text = format!("EmailAddress\r\n{}\r\n", emails.join("\r\n"));
    json!({"@odata.type": "#Exchange.ByteArrayType",
           "Data": base64::engine::general_purpose::STANDARD.encode(text)})
}

#[tokio::test]
async fn batch_lifecycle_with_validation_failures_and_completion() {
    let e = setup().await;
    for a in ["alice", "bob", "dave", "erin", "grace", "info", "frank"] {
        e.prepare(a).await;
    }
    // One initial sync at a time on this endpoint.
    e.ok(
        FABRIKAM,
        "Set-MigrationEndpoint",
        json!({"Identity": "contoso-ep", "MaxConcurrentMigrations": 1}),
    )
    .await;
    let emails = [
        "alice@fabrikam.com",
        "bob@fabrikam.com",
        "dave@fabrikam.com",
        "erin@fabrikam.com",
        "grace@fabrikam.com",
        "info@fabrikam.com",
        "nobody@fabrikam.com",
    ];
    let b = e.ok(FABRIKAM, "New-MigrationBatch", json!({"Name": "wave1", "SourceEndpoint": "contoso-ep",
        "CSVData": csv(&emails), "TargetDeliveryDomain": "fabrikam.onmicrosoft.com", "AutoStart": true})).await;
    assert_eq!(b[0]["TotalCount"], 7);
    assert_eq!(b[0]["Status"], "Syncing");

    let fails = [
        ("dave@fabrikam.com", "SourceMailboxOnHoldPermanentException"),
        (
            "erin@fabrikam.com",
            "CrossTenantMigrationWithoutLicensePermanentException",
        ),
        (
            "grace@fabrikam.com",
            "SourceMailboxOnHoldPermanentException",
        ),
        ("nobody@fabrikam.com", "MigrationRecipientNotFoundException"),
    ];
    for (who, why) in fails {
        let u = e.user(who).await;
        assert_eq!(u["Status"], "Failed", "{who}: {u}");
        assert_eq!(u["StatusSummary"], "Failed");
        assert!(
            u["ErrorSummary"]
                .as_str()
                .is_some_and(|s| s.starts_with(why)),
            "{who}: {u}"
        );
    }
    let erin = e.user("erin@fabrikam.com").await;
    assert!(erin["ErrorSummary"].as_str().is_some_and(|s| s.contains(
        "A Cross-tenant User Data Migration license is required to move a mailbox between tenants."
    )));
    assert_eq!(e.user("alice@fabrikam.com").await["Status"], "Queued");

    // A user may be in one batch only.
    e.ok(FABRIKAM, "New-MigrationBatch", json!({"Name": "wave2", "SourceEndpoint": "contoso-ep",
        "CSVData": csv(&["bob@fabrikam.com"]), "TargetDeliveryDomain": "fabrikam.onmicrosoft.com", "AutoStart": true})).await;
    let w2 = e
        .ok(FABRIKAM, "Get-MigrationUser", json!({"BatchId": "wave2"}))
        .await;
    assert!(
        w2[0]["ErrorSummary"]
            .as_str()
            .is_some_and(|s| s.starts_with("UserDuplicateInOtherBatchException")),
        "{w2}"
    );
    assert_eq!(e.batch("wave2").await["Status"], "Failed");
    e.ok(
        FABRIKAM,
        "Remove-MigrationBatch",
        json!({"Identity": "wave2"}),
    )
    .await;

    // After the queue delay exactly one user syncs (MaxConcurrentMigrations = 1).
    e.advance(10).await;
    let users = e
        .ok(FABRIKAM, "Get-MigrationUser", json!({"BatchId": "wave1"}))
        .await;
    let syncing = users
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["Status"] == "Syncing")
        .count();
    assert_eq!(syncing, 1, "{users}");
    let st = e
        .ok(
            FABRIKAM,
            "Get-MigrationUserStatistics",
            json!({"Identity": "alice@fabrikam.com"}),
        )
        .await;
    let pct = st[0]["PercentageComplete"].as_u64().expect("pct");
    assert!(pct > 0 && pct < 95, "{st}");

    // A day later every valid user is synced and parked at 95 %.
    e.advance(24 * 60).await;
    let b = e.batch("wave1").await;
    assert_eq!(b["Status"], "SyncedWithErrors", "{b}");
    assert_eq!(b["SyncedCount"], 3);
    assert_eq!(b["FailedCount"], 4);
    let st = e
        .ok(
            FABRIKAM,
            "Get-MigrationUserStatistics",
            json!({"Identity": "bob@fabrikam.com"}),
        )
        .await;
    assert_eq!(st[0]["PercentageComplete"], 95);
    let mr = e
        .ok(
            FABRIKAM,
            "Get-MoveRequestStatistics",
            json!({"Identity": "alice"}),
        )
        .await;
    assert_eq!(mr[0]["Status"], "AutoSuspended");
    assert_eq!(mr[0]["PercentComplete"], 95);
    // Only a synced batch can be completed; a created one cannot.
    let (s, body) = e
        .call(
            FABRIKAM,
            "Complete-MigrationBatch",
            json!({"Identity": "nope"}),
        )
        .await;
    assert_eq!(s, 400, "{body}");

    e.ok(
        FABRIKAM,
        "Complete-MigrationBatch",
        json!({"Identity": "wave1"}),
    )
    .await;
    e.advance(1).await;
    assert_eq!(e.batch("wave1").await["Status"], "Completing");
    e.advance(30).await;
    let b = e.batch("wave1").await;
    assert_eq!(b["Status"], "CompletedWithErrors", "{b}");
    assert_eq!(b["FinalizedCount"], 3);

    // Source: the mailbox became a MailUser pointing at the target delivery domain.
    let (s, _) = e
        .call(
            CONTOSO,
            "Get-Mailbox",
            json!({"Identity": "alice@contoso.com"}),
        )
        .await;
    assert_eq!(s, 400);
    let mu = e
        .ok(
            CONTOSO,
            "Get-MailUser",
            json!({"Identity": "alice@contoso.com"}),
        )
        .await;
    assert_eq!(
        mu[0]["ExternalEmailAddress"],
        "SMTP:alice@fabrikam.onmicrosoft.com"
    );
    let u = e
        .ok(CONTOSO, "Get-User", json!({"Identity": "alice"}))
        .await;
    assert_eq!(u[0]["PreviousRecipientTypeDetails"], "UserMailbox");
    // Target: the MailUser became the mailbox; shared stays shared; delegates are not moved.
    let mbx = e
        .ok(
            FABRIKAM,
            "Get-Mailbox",
            json!({"Identity": "alice@fabrikam.com"}),
        )
        .await;
    assert_eq!(mbx[0]["RecipientTypeDetails"], "UserMailbox");
    let info = e
        .ok(
            FABRIKAM,
            "Get-Mailbox",
            json!({"Identity": "info@fabrikam.com"}),
        )
        .await;
    assert_eq!(info[0]["RecipientTypeDetails"], "SharedMailbox");
    assert_eq!(info[0]["GrantSendOnBehalfTo"], json!([]));
    let stats = e
        .ok(
            FABRIKAM,
            "Get-MailboxStatistics",
            json!({"Identity": "bob@fabrikam.com"}),
        )
        .await;
    assert_eq!(stats[0]["TotalItemSize"], "5 GB (5,368,709,120 bytes)");

    // Retrying failed users after fixing the hold.
    e.ok(
        CONTOSO,
        "Set-Mailbox",
        json!({"Identity": "dave", "LitigationHoldEnabled": false}),
    )
    .await;
    e.ok(
        FABRIKAM,
        "Start-MigrationBatch",
        json!({"Identity": "wave1"}),
    )
    .await;
    assert_eq!(e.user("dave@fabrikam.com").await["Status"], "Queued");
    assert_eq!(e.user("erin@fabrikam.com").await["Status"], "Failed");
}

#[tokio::test]
async fn schedules_scope_and_stop() {
    let e = setup().await;
    e.prepare("alice").await;
    e.prepare("heidi").await;
    e.prepare("frank").await;
    // StartAfter holds users in Queued; CompleteAfter completes them without a Complete call.
    let now = e.sim.now();
    let start_after = (now + chrono::Duration::hours(2)).to_rfc3339();
    let complete_after = (now + chrono::Duration::hours(30)).to_rfc3339();
    e.ok(
        FABRIKAM,
        "New-MigrationBatch",
        json!({"Name": "sched", "SourceEndpoint": "contoso-ep",
        "CSVData": csv(&["alice@fabrikam.com", "heidi@fabrikam.com"]),
        "TargetDeliveryDomain": "fabrikam.onmicrosoft.com", "StartAfter": start_after,
        "CompleteAfter": complete_after}),
    )
    .await;
    assert_eq!(e.batch("sched").await["Status"], "Created");
    e.ok(
        FABRIKAM,
        "Start-MigrationBatch",
        json!({"Identity": "sched"}),
    )
    .await;
    let heidi = e.user("heidi@fabrikam.com").await;
    assert!(
        heidi["ErrorSummary"]
            .as_str()
            .is_some_and(|s| s.starts_with("TooManyAuxArchivesPermanentException")),
        "{heidi}"
    );
    e.advance(60).await;
    assert_eq!(e.user("alice@fabrikam.com").await["Status"], "Queued");
    e.advance(2 * 60).await;
    assert_eq!(e.user("alice@fabrikam.com").await["Status"], "Syncing");
    e.advance(24 * 60).await;
    assert_eq!(e.user("alice@fabrikam.com").await["Status"], "Synced");
    e.advance(6 * 60).await;
    assert_eq!(e.user("alice@fabrikam.com").await["Status"], "Completed");

    // Stop parks users, Start resumes them.
    e.ok(FABRIKAM, "New-MigrationBatch", json!({"Name": "stoppable", "SourceEndpoint": "contoso-ep",
        "CSVData": csv(&["frank@fabrikam.com"]), "TargetDeliveryDomain": "fabrikam.onmicrosoft.com", "AutoStart": true})).await;
    e.advance(10).await;
    e.ok(
        FABRIKAM,
        "Stop-MigrationBatch",
        json!({"Identity": "stoppable"}),
    )
    .await;
    assert_eq!(e.batch("stoppable").await["Status"], "Stopped");
    assert_eq!(e.user("frank@fabrikam.com").await["Status"], "Stopped");
    let (s, _) = e
        .call(
            FABRIKAM,
            "Stop-MigrationBatch",
            json!({"Identity": "stoppable"}),
        )
        .await;
    assert_eq!(s, 400);
    e.ok(
        FABRIKAM,
        "Start-MigrationBatch",
        json!({"Identity": "stoppable"}),
    )
    .await;
    assert_eq!(e.user("frank@fabrikam.com").await["Status"], "Queued");
    // Invalid status filter names every valid value.
    let (s, b) = e
        .call(FABRIKAM, "Get-MigrationBatch", json!({"Status": "Running"}))
        .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["details"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("SyncedWithErrors"))
    );
}

#[tokio::test]
async fn migration_user_remediation_and_per_user_complete_after() {
    let e = setup().await;
    e.prepare("bob").await;
    e.prepare("frank").await;
    e.ok(FABRIKAM, "New-MigrationBatch", json!({"Name": "one", "SourceEndpoint": "contoso-ep",
        "CSVData": csv(&["bob@fabrikam.com", "frank@fabrikam.com"]), "TargetDeliveryDomain": "fabrikam.onmicrosoft.com", "AutoStart": true})).await;
    e.ok(FABRIKAM, "New-MigrationBatch", json!({"Name": "two", "SourceEndpoint": "contoso-ep",
        "CSVData": csv(&["bob@fabrikam.com"]), "TargetDeliveryDomain": "fabrikam.onmicrosoft.com", "AutoStart": true})).await;
    let two = e
        .ok(FABRIKAM, "Get-MigrationUser", json!({"BatchId": "two"}))
        .await;
    assert_eq!(two[0]["Status"], "Failed");
    // Remediation: remove the user from the first batch, then retry the second.
    e.ok(
        FABRIKAM,
        "Remove-MigrationUser",
        json!({"Identity": "bob@fabrikam.com", "Confirm": false}),
    )
    .await;
    assert_eq!(
        e.ok(FABRIKAM, "Get-MigrationBatch", json!({"Identity": "one"}))
            .await[0]["TotalCount"],
        1
    );
    e.ok(FABRIKAM, "Start-MigrationBatch", json!({"Identity": "two"}))
        .await;
    let two = e
        .ok(FABRIKAM, "Get-MigrationUser", json!({"BatchId": "two"}))
        .await;
    assert_eq!(two[0]["Status"], "Queued", "{two}");
    // Per-user CompleteAfter completes frank although batch "one" has none.
    e.advance(24 * 60).await;
    assert_eq!(e.user("frank@fabrikam.com").await["Status"], "Synced");
    let at = (e.sim.now() + chrono::Duration::hours(1)).to_rfc3339();
    e.ok(
        FABRIKAM,
        "Set-MigrationUser",
        json!({"Identity": "frank@fabrikam.com", "CompleteAfter": at}),
    )
    .await;
    e.advance(30).await;
    assert_eq!(e.user("frank@fabrikam.com").await["Status"], "Synced");
    e.advance(60).await;
    assert_eq!(e.user("frank@fabrikam.com").await["Status"], "Completed");
    assert_eq!(e.batch("one").await["Status"], "Completed");
    // Stop / start one user.
    e.ok(
        FABRIKAM,
        "Stop-MigrationUser",
        json!({"Identity": "bob@fabrikam.com"}),
    )
    .await;
    assert_eq!(e.user("bob@fabrikam.com").await["Status"], "Stopped");
    e.ok(
        FABRIKAM,
        "Start-MigrationUser",
        json!({"Identity": "bob@fabrikam.com"}),
    )
    .await;
    assert_eq!(e.user("bob@fabrikam.com").await["Status"], "Synced");
    let (s, _) = e
        .call(
            FABRIKAM,
            "Start-MigrationUser",
            json!({"Identity": "bob@fabrikam.com"}),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn changes_in_the_source_during_the_move_block_completion() {
    let e = setup().await;
    e.prepare("alice").await;
    e.prepare("bob").await;
    e.ok(FABRIKAM, "New-MigrationBatch", json!({"Name": "mid", "SourceEndpoint": "contoso-ep",
        "CSVData": csv(&["alice@fabrikam.com", "bob@fabrikam.com"]), "TargetDeliveryDomain": "fabrikam.onmicrosoft.com", "AutoStart": true})).await;
    e.advance(24 * 60).await;
    let c = e.sim.http_client().expect("client");
    let patch = |who: &str, body: Value| {
        c.patch(format!(
            "{}/_sim/tenants/contoso.onmicrosoft.com/mailboxes/{who}",
            e.sim.base_url()
        ))
        .json(&body)
        .send()
    };
    assert_eq!(
        patch("alice", json!({"auxArchives": 1}))
            .await
            .expect("patch")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        patch("bob", json!({"holds": {"litigationHold": true}}))
            .await
            .expect("patch")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        patch("nobody", json!({}))
            .await
            .expect("patch")
            .status()
            .as_u16(),
        404
    );
    e.ok(
        FABRIKAM,
        "Complete-MigrationBatch",
        json!({"Identity": "mid"}),
    )
    .await;
    e.advance(30).await;
    let a = e.user("alice@fabrikam.com").await;
    assert!(
        a["ErrorSummary"].as_str().is_some_and(|s| s
            .starts_with("SourceAuxArchiveIsProvisionedDuringCrossTenantMovePermanentException")),
        "{a}"
    );
    let b = e.user("bob@fabrikam.com").await;
    assert!(
        b["ErrorSummary"]
            .as_str()
            .is_some_and(|s| s.starts_with("SourceMailboxOnHoldPermanentException")),
        "{b}"
    );
    assert_eq!(e.batch("mid").await["Status"], "Failed");
}

#[tokio::test]
async fn set_migration_batch_add_users_appends_only_new_rows() {
    let e = setup().await;
    e.prepare("bob").await;
    e.prepare("frank").await;
    e.ok(FABRIKAM, "New-MigrationBatch", json!({"Name": "grow", "SourceEndpoint": "contoso-ep",
        "CSVData": csv(&["bob@fabrikam.com"]), "TargetDeliveryDomain": "fabrikam.onmicrosoft.com", "AutoStart": true})).await;
    // -AddUsers needs -CSVData; -CSVData without -AddUsers cannot add.
    let (s, b) = e
        .call(
            FABRIKAM,
            "Set-MigrationBatch",
            json!({"Identity": "grow", "AddUsers": true}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = e
        .call(
            FABRIKAM,
            "Set-MigrationBatch",
            json!({"Identity": "grow", "CSVData": csv(&["bob@fabrikam.com", "frank@fabrikam.com"])}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.to_string().contains("AddUsers"), "{b}");
    // The whole CSV again plus frank: only frank is new, and the running batch queues him.
    for _ in 0..2 {
        e.ok(
            FABRIKAM,
            "Set-MigrationBatch",
            json!({"Identity": "grow", "AddUsers": true,
                "CSVData": csv(&["bob@fabrikam.com", "frank@fabrikam.com"])}),
        )
        .await;
    }
    assert_eq!(e.batch("grow").await["TotalCount"], 2);
    assert_eq!(e.user("frank@fabrikam.com").await["Status"], "Queued");
    e.advance(24 * 60).await;
    assert_eq!(e.user("frank@fabrikam.com").await["Status"], "Synced");
    assert_eq!(e.batch("grow").await["Status"], "Synced");
    e.ok(
        FABRIKAM,
        "Complete-MigrationBatch",
        json!({"Identity": "grow"}),
    )
    .await;
    e.advance(60).await;
    assert_eq!(e.batch("grow").await["Status"], "Completed");
    assert_eq!(e.user("frank@fabrikam.com").await["Status"], "Completed");
}
