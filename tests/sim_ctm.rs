//! Graph crossTenantMigrationJob (beta and v1.0) over HTTPS: create rules, the validate /
//! migrate / cancel / delete state machine on the simulated clock, per-user tasks.
#![cfg(feature = "dev")]

use serde_json::{Value, json};
use t2t_operator::sim::fixture::AppFixture;
use t2t_operator::sim::testkit::{EXCHANGE_SCOPE, GRAPH_SCOPE, encrypt_secure_string};
use t2t_operator::sim::{Fixture, RunningSimulator, SimConfig, Simulator};

const CONTOSO: &str = "3f2b6c1a-8d4e-4b7a-9c11-5a0e2d7f4b01";
const FABRIKAM: &str = "9c4e7d2b-1a5f-4c8e-b3d6-7e0f1a2b3c02";
const MIG_APP: &str = "0b7e4f52-3c1d-4a6b-9e8f-2d3c4b5a6f03";
const MIG_SECRET: &str = "migration-app-secret-W1n~q4";
const JOBS: &str = "beta/solutions/migrations/crossTenantMigrationJobs";

struct Env {
    sim: RunningSimulator,
    c: reqwest::Client,
}

impl Env {
    async fn exo(&self, tenant: &str, cmdlet: &str, params: Value) -> Value {
        let t = self
            .sim
            .admin_token(tenant, EXCHANGE_SCOPE)
            .await
            .expect("t");
        let (s, b) = self
            .sim
            .invoke(&t, tenant, cmdlet, params)
            .await
            .expect("invoke");
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        assert_eq!(s, 200, "{cmdlet}: {v}");
        v["value"].clone()
    }

    async fn graph(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let t = self.sim.admin_token(tenant, GRAPH_SCOPE).await.expect("t");
        let url = format!("{}/{path}", self.sim.base_url());
        let mut r = self
            .c
            .request(method.parse().expect("m"), url)
            .bearer_auth(t);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("send");
        let s = resp.status().as_u16();
        let text = resp.text().await.expect("text");
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn advance(&self, minutes: i64) {
        let r = self
            .c
            .post(format!("{}/_sim/clock/advance", self.sim.base_url()))
            .json(&json!({"minutes": minutes}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
    }

    async fn prepare(&self, alias: &str) -> String {
        let src = self
            .exo(
                CONTOSO,
                "Get-Mailbox",
                json!({"Identity": format!("{alias}@contoso.com")}),
            )
            .await;
        let src = &src[0];
        self.exo(
            FABRIKAM,
            "New-MailUser",
            json!({"Name": alias, "ExternalEmailAddress": src["PrimarySmtpAddress"],
            "PrimarySmtpAddress": format!("{alias}@fabrikam.com")}),
        )
        .await;
        let mut set = json!({"Identity": alias, "ExchangeGuid": src["ExchangeGuid"],
            "EmailAddresses": {"Add": [format!("X500:{}", src["LegacyExchangeDN"].as_str().expect("dn"))]}});
        if src["ArchiveGuid"] != "00000000-0000-0000-0000-000000000000" {
            set["ArchiveGuid"] = src["ArchiveGuid"].clone();
        }
        self.exo(FABRIKAM, "Set-MailUser", set).await;
        let (_, u) = self
            .graph(
                FABRIKAM,
                "GET",
                &format!("v1.0/users?$filter=mail eq '{alias}@fabrikam.com'&$select=id"),
                None,
            )
            .await;
        u["value"][0]["id"].as_str().expect("id").to_string()
    }
}

async fn setup() -> Env {
    let mut fx = Fixture::load(std::path::Path::new("examples/tenants.yaml")).expect("fixture");
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
    let mut cfg = SimConfig::new(fx);
    cfg.time_scale = 0.0;
    let sim = Simulator::start(cfg).await.expect("start");
    let c = sim.http_client().expect("client");
    let e = Env { sim, c };
    let r =
        e.c.post(format!("{}/_sim/consent", e.sim.base_url()))
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
        e.exo(t, "Enable-OrganizationCustomization", json!({}))
            .await;
        e.exo(t, "New-OrganizationRelationship", rel).await;
    }
    let key = e.sim.securestring_key().await.expect("key");
    e.exo(FABRIKAM, "New-MigrationEndpoint", json!({"Name": "EXOHandler", "ExchangeRemoteMove": true,
        "RemoteServer": "outlook.office.com", "RemoteTenant": "contoso.onmicrosoft.com", "ApplicationId": MIG_APP,
        "Credentials": {"UserName": MIG_APP, "Password": encrypt_secure_string(&key, MIG_SECRET).expect("enc")}})).await;
    e
}

fn job(name: &str, complete_after: chrono::DateTime<chrono::Utc>, users: &[&str]) -> Value {
    json!({"displayName": name, "completeAfterDateTime": complete_after.to_rfc3339(),
           "sourceTenantId": CONTOSO, "resourceType": "Users", "resources": users, "workloads": ["Exchange"],
           "exchangeSettings": {"sourceEndpoint": "EXOHandler", "targetDeliveryDomain": "fabrikam.onmicrosoft.com"}})
}

#[tokio::test]
async fn job_lifecycle_validate_migrate_delete() {
    let e = setup().await;
    let alice = e.prepare("alice").await;
    let dave = e.prepare("dave").await;
    let now = e.sim.now();

    // Create rules.
    let (s, b) = e
        .graph(
            FABRIKAM,
            "POST",
            JOBS,
            Some(job("wave-00", now - chrono::Duration::hours(1), &[&alice])),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "BadArgument");
    assert_eq!(b["error"]["innerError"]["code"], "minThresholdFailed");
    let (s, b) = e
        .graph(
            CONTOSO,
            "POST",
            JOBS,
            Some(job("wave-00", now + chrono::Duration::days(2), &[&alice])),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, j1) = e
        .graph(
            FABRIKAM,
            "POST",
            JOBS,
            Some(job(
                "wave-01",
                now + chrono::Duration::days(2),
                &[&alice, &dave],
            )),
        )
        .await;
    assert_eq!(s, 201, "{j1}");
    assert_eq!(j1["status"], "submitted");
    assert_eq!(j1["jobType"], "validate");
    assert_eq!(j1["targetTenantId"], FABRIKAM);
    let (s, b) = e
        .graph(
            FABRIKAM,
            "POST",
            JOBS,
            Some(job("wave-01", now + chrono::Duration::days(2), &[&alice])),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(b["error"]["innerError"]["code"], "duplicateDisplayNameJob");
    let id1 = j1["id"].as_str().expect("id").to_string();

    // migrate before validation: 409. validate: async result.
    let (s, _) = e
        .graph(FABRIKAM, "POST", &format!("{JOBS}/{id1}/migrate"), None)
        .await;
    assert_eq!(s, 409);
    let (s, b) = e
        .graph(FABRIKAM, "POST", &format!("{JOBS}/{id1}/validate"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "validateSubmitted");
    assert_eq!(
        b["message"],
        "Validation job has been submitted successfully"
    );
    e.advance(5).await;
    let (_, b) = e
        .graph(FABRIKAM, "GET", &format!("{JOBS}/{id1}"), None)
        .await;
    assert_eq!(b["status"], "validateFailed", "{b}");
    let (_, u) = e
        .graph(FABRIKAM, "GET", &format!("{JOBS}/{id1}/users/{dave}"), None)
        .await;
    assert_eq!(u["currentStatus"][0]["status"], "invalid", "{u}");
    assert!(
        u["currentStatus"][0]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("hold"))
    );
    let (_, u) = e
        .graph(
            FABRIKAM,
            "GET",
            &format!("{JOBS}/{id1}/users/{alice}"),
            None,
        )
        .await;
    assert_eq!(u["currentStatus"][0]["status"], "valid");

    // A clean job: validate → migrate → sync → cutover at completeAfter → completed.
    let (_, j2) = e
        .graph(
            FABRIKAM,
            "POST",
            JOBS,
            Some(job("wave-02", now + chrono::Duration::days(2), &[&alice])),
        )
        .await;
    let id2 = j2["id"].as_str().expect("id").to_string();
    let (s, _) = e
        .graph(FABRIKAM, "POST", &format!("{JOBS}/{id1}/cancel"), None)
        .await;
    assert_eq!(s, 202);
    e.graph(FABRIKAM, "POST", &format!("{JOBS}/{id2}/validate"), None)
        .await;
    e.advance(5).await;
    let (_, b) = e
        .graph(FABRIKAM, "GET", &format!("{JOBS}/{id2}"), None)
        .await;
    assert_eq!(b["status"], "validatePassed", "{b}");
    let (s, b) = e
        .graph(FABRIKAM, "POST", &format!("{JOBS}/{id2}/migrate"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["status"], "processing");
    assert_eq!(b["jobType"], "migrate");
    e.advance(10).await;
    let (_, b) = e
        .graph(
            FABRIKAM,
            "GET",
            &format!("v1.0/solutions/migrations/crossTenantMigrationJobs/{id2}"),
            None,
        )
        .await;
    assert_eq!(b["status"], "inProgress", "{b}");
    e.advance(24 * 60).await;
    let (_, u) = e
        .graph(FABRIKAM, "GET", &format!("{JOBS}/{id2}/users"), None)
        .await;
    assert_eq!(u["value"][0]["currentStatus"][0]["status"], "synced", "{u}");
    // The Exchange view of the same move.
    let mr = e
        .exo(
            FABRIKAM,
            "Get-MigrationBatch",
            json!({"Identity": "wave-02"}),
        )
        .await;
    assert_eq!(mr[0]["Status"], "Synced");
    // Job 1 was cancelled.
    let (_, b) = e
        .graph(FABRIKAM, "GET", &format!("{JOBS}/{id1}"), None)
        .await;
    assert_eq!(b["status"], "cancelled");
    e.advance(24 * 60).await;
    let (_, b) = e
        .graph(FABRIKAM, "GET", &format!("{JOBS}/{id2}"), None)
        .await;
    assert_eq!(b["status"], "completed", "{b}");
    let src = e
        .exo(
            CONTOSO,
            "Get-MailUser",
            json!({"Identity": "alice@contoso.com"}),
        )
        .await;
    assert_eq!(
        src[0]["ExternalEmailAddress"],
        "SMTP:alice@fabrikam.onmicrosoft.com"
    );
    let (s, _) = e
        .graph(FABRIKAM, "POST", &format!("{JOBS}/{id2}/cancel"), None)
        .await;
    assert_eq!(s, 409);
    let (s, _) = e
        .graph(
            FABRIKAM,
            "PATCH",
            &format!("{JOBS}/{id2}"),
            Some(json!({"displayName": "x"})),
        )
        .await;
    assert_eq!(s, 422);

    // Delete: only final jobs; gone after the delete delay.
    let (_, j3) = e
        .graph(
            FABRIKAM,
            "POST",
            JOBS,
            Some(job(
                "wave-03",
                e.sim.now() + chrono::Duration::days(2),
                &[&dave],
            )),
        )
        .await;
    let id3 = j3["id"].as_str().expect("id").to_string();
    let (s, b) = e
        .graph(FABRIKAM, "DELETE", &format!("{JOBS}/{id3}"), None)
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "Conflict");
    let (s, _) = e.graph(FABRIKAM, "PATCH", &format!("{JOBS}/{id3}"), Some(json!({"completeAfterDateTime": (e.sim.now() + chrono::Duration::days(3)).to_rfc3339()}))).await;
    assert_eq!(s, 204);
    let (s, _) = e
        .graph(FABRIKAM, "DELETE", &format!("{JOBS}/{id2}"), None)
        .await;
    assert_eq!(s, 202);
    e.advance(2).await;
    let (s, _) = e
        .graph(FABRIKAM, "GET", &format!("{JOBS}/{id2}"), None)
        .await;
    assert_eq!(s, 404);
    let (_, list) = e.graph(FABRIKAM, "GET", JOBS, None).await;
    let names: Vec<&str> = list["value"]
        .as_array()
        .expect("v")
        .iter()
        .filter_map(|j| j["displayName"].as_str())
        .collect();
    assert_eq!(names, vec!["wave-01", "wave-03"]);
    // By display name.
    let (s, b) = e
        .graph(
            FABRIKAM,
            "GET",
            &format!("{JOBS}(displayName='wave-03')"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["id"], id3);
}
