//! The tenant API clients (`src/tenant/`) against the Microsoft 365 simulator over HTTPS: every
//! Graph and Exchange client method, error mapping, paging, `$batch`, token expiry and refresh,
//! secret rotation, certificate credentials, Retry-After, and a fault storm in which every logical
//! operation lands exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use t2t_operator::metrics::{RequestLabels, TenantMetrics};
use t2t_operator::sim::fixture::AppFixture;
use t2t_operator::sim::{Fixture, RunningSimulator, SimConfig, Simulator};
use t2t_operator::tenant::exchange::types::MailUser;
use t2t_operator::tenant::exchange::{
    MailUserChanges, NewBatch, NewEndpoint, NewMailUser, RelationshipSettings, SecureStringKey,
};
use t2t_operator::tenant::graph::{
    AssignedLicense, BatchRequest, CrossTenantMigrationJob, EXCHANGE_APP_ID, GRAPH_APP_ID,
    MAILBOX_MIGRATION_ROLE, MAX_BATCH, MIGRATION_SKU_ID,
};
use t2t_operator::tenant::identity::CertificateKey;
use t2t_operator::tenant::{
    AppCredential, Credential, Endpoints, ErrorClass, ExchangeClient, ExchangeErrorKind,
    GraphClient, HttpConfig, Redacted, TenantError, TokenProvider, Transport,
};

const CONTOSO: &str = "3f2b6c1a-8d4e-4b7a-9c11-5a0e2d7f4b01";
const FABRIKAM: &str = "9c4e7d2b-1a5f-4c8e-b3d6-7e0f1a2b3c02";
const CONTOSO_SECRET: &str = "contoso-admin-secret-Q8x~v2";
/// A migration app registered in Fabrikam by the fixture (for endpoint tests).
const MIG_APP: &str = "0b7e4f52-3c1d-4a6b-9e8f-2d3c4b5a6f03";
const MIG_SECRET: &str = "migration-app-secret-W1n~q4";
/// An app in Fabrikam with Graph roles but no Exchange permission.
const NO_EXO_APP: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e05";
/// An app in Fabrikam with Exchange.ManageAsApp but no directory role.
const NO_ROLE_APP: &str = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f06";
/// An app in Contoso that signs in with tests/fixtures/app-cert.pem.
const CERT_APP: &str = "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a07";
const APP_SECRET: &str = "extra-app-secret-P4s~s7";
const SCOPE_GROUP: &str = "T2T-Migration-Scope";

fn app(client_id: &str, name: &str) -> AppFixture {
    AppFixture {
        client_id: client_id.parse().expect("guid"),
        display_name: name.into(),
        client_secret: Some(APP_SECRET.into()),
        certificate_pem: None,
        graph_roles: vec![],
        exchange_roles: vec![],
        directory_roles: vec![],
        sign_in_audience: None,
        redirect_uris: vec![],
        federated_credentials: vec![],
    }
}

fn fixture() -> Fixture {
    let mut fx = Fixture::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tenants.yaml"
    )))
    .expect("fixture");
    let mut mig = app(MIG_APP, "fabrikam_Friends_contoso");
    mig.client_secret = Some(MIG_SECRET.into());
    mig.exchange_roles = vec!["Mailbox.Migration".into()];
    mig.sign_in_audience = Some("AzureADMultipleOrgs".into());
    mig.redirect_uris = vec!["https://office.com".into()];
    fx.tenants[1].apps.push(mig);
    let mut no_exo = app(NO_EXO_APP, "graph-only");
    no_exo.graph_roles = vec!["Organization.Read.All".into()];
    fx.tenants[1].apps.push(no_exo);
    let mut no_role = app(NO_ROLE_APP, "exchange-without-role");
    no_role.exchange_roles = vec!["Exchange.ManageAsApp".into()];
    fx.tenants[1].apps.push(no_role);
    let mut cert = app(CERT_APP, "certificate-app");
    cert.client_secret = None;
    cert.certificate_pem = Some(include_str!("fixtures/app-cert.pem").into());
    cert.graph_roles = vec!["Organization.Read.All".into()];
    cert.exchange_roles = vec!["Exchange.ManageAsApp".into()];
    cert.directory_roles = vec!["Exchange Administrator".into()];
    fx.tenants[0].apps.push(cert);
    fx
}

struct Env {
    sim: RunningSimulator,
    http: reqwest::Client,
    transport: Transport,
    tokens: TokenProvider,
    metrics: Arc<TenantMetrics>,
    key: SecureStringKey,
}

fn test_http() -> HttpConfig {
    HttpConfig {
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(5),
        max_attempts: 8,
        ..Default::default()
    }
}

async fn start_with(fx: Fixture, sim_cfg: impl FnOnce(&mut SimConfig), http: HttpConfig) -> Env {
    let mut cfg = SimConfig::new(fx);
    cfg.time_scale = 0.0;
    sim_cfg(&mut cfg);
    let sim = Simulator::start(cfg).await.expect("simulator");
    let metrics = Arc::new(TenantMetrics::unregistered());
    let transport = Transport::new(
        HttpConfig {
            ca_pem: Some(sim.ca_pem().as_bytes().to_vec()),
            ..http
        },
        metrics.clone(),
    )
    .expect("transport");
    let endpoints = Endpoints::from_spec(&t2t_operator::api::CloudSpec {
        environment: t2t_operator::api::CloudEnvironment::Custom,
        login_url: Some(sim.base_url().into()),
        graph_url: Some(sim.base_url().into()),
        exchange_url: Some(sim.base_url().into()),
        ca_bundle: None,
    });
    let tokens = TokenProvider::new(transport.clone(), endpoints);
    let key = SecureStringKey::from_pem(&sim.securestring_key().await.expect("key")).expect("pem");
    let http = sim.http_client().expect("client");
    Env {
        sim,
        http,
        transport,
        tokens,
        metrics,
        key,
    }
}

async fn start() -> Env {
    start_with(fixture(), |_| {}, test_http()).await
}

impl Env {
    fn admin(&self, tenant: &str) -> AppCredential {
        let info = self
            .sim
            .tenants()
            .into_iter()
            .find(|t| t.id.to_string() == tenant)
            .expect("tenant");
        AppCredential {
            tenant: tenant.into(),
            client_id: info.client_id.to_string(),
            credential: Credential::ClientSecret(Redacted::new(
                info.client_secret.expect("secret"),
            )),
            version: "1".into(),
        }
    }

    fn secret_cred(tenant: &str, client_id: &str, secret: &str, version: &str) -> AppCredential {
        AppCredential {
            tenant: tenant.into(),
            client_id: client_id.into(),
            credential: Credential::ClientSecret(Redacted::new(secret.to_string())),
            version: version.into(),
        }
    }

    fn graph_as(&self, cred: AppCredential) -> GraphClient {
        let t = cred.tenant.clone();
        GraphClient::new(self.transport.clone(), self.tokens.clone(), cred, t)
    }

    fn exo_as(&self, cred: AppCredential) -> ExchangeClient {
        let t = cred.tenant.clone();
        ExchangeClient::new(self.transport.clone(), self.tokens.clone(), cred, t)
            .with_secure_string_key(self.key.clone())
    }

    fn graph(&self, tenant: &str) -> GraphClient {
        self.graph_as(self.admin(tenant))
    }

    fn exo(&self, tenant: &str) -> ExchangeClient {
        self.exo_as(self.admin(tenant))
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}/_sim/{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("control");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    async fn faults(&self, rules: Value) {
        self.control(
            reqwest::Method::PUT,
            "faults",
            json!({"rules": rules, "seed": 7}),
        )
        .await;
    }

    async fn dump(&self, tenant: &str) -> Value {
        self.control(
            reqwest::Method::GET,
            &format!("tenants/{tenant}"),
            Value::Null,
        )
        .await
    }

    async fn advance(&self, minutes: i64) {
        self.control(
            reqwest::Method::POST,
            "clock/advance",
            json!({"minutes": minutes}),
        )
        .await;
    }

    async fn consent(&self, tenant: &str, client_id: &str) {
        self.control(
            reqwest::Method::POST,
            "consent",
            json!({"tenant": tenant, "clientId": client_id}),
        )
        .await;
    }

    /// Successful token requests so far.
    fn tokens_issued(&self) -> u64 {
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                api: "token",
                method: "POST".into(),
                code: "200".into(),
            })
            .get()
    }
}

// ---------------------------------------------------------------- Graph

#[tokio::test]
async fn graph_organization_skus_and_users() {
    let env = start().await;
    let g = env.graph(CONTOSO);
    let org = g.organization().await.expect("organization");
    assert_eq!(org.id, CONTOSO);
    assert_eq!(org.initial_domain(), Some("contoso.onmicrosoft.com"));
    assert!(org.verified_domains.iter().any(|d| d.name == "contoso.com"));

    let skus = g.subscribed_skus().await.expect("skus");
    let mig = skus.iter().find(|s| s.is_migration_sku()).expect("T2T sku");
    assert_eq!(mig.prepaid_units.enabled, 10);
    let consumed = mig.consumed_units;
    assert_eq!(mig.available(), 10 - consumed);

    // get_user: by UPN and by id; absent → None.
    let alice = g
        .get_user("alice@contoso.com")
        .await
        .expect("get")
        .expect("alice");
    assert_eq!(
        alice.user_principal_name.as_deref(),
        Some("alice@contoso.com")
    );
    assert_eq!(alice.usage_location.as_deref(), Some("US"));
    let by_id = g.get_user(&alice.id).await.expect("get").expect("by id");
    assert_eq!(by_id.id, alice.id);
    assert!(
        g.get_user("nobody@contoso.com")
            .await
            .expect("get")
            .is_none()
    );

    // set_usage_location + assign_license (repeat converges) on erin.
    g.set_usage_location("erin@contoso.com", "GB")
        .await
        .expect("usage location");
    let add = [AssignedLicense {
        sku_id: MIGRATION_SKU_ID.into(),
        disabled_plans: vec![],
    }];
    let erin = g
        .assign_license("erin@contoso.com", &add, &[])
        .await
        .expect("assign");
    assert!(
        erin.assigned_licenses
            .iter()
            .any(|l| l.sku_id == MIGRATION_SKU_ID)
    );
    g.assign_license("erin@contoso.com", &add, &[])
        .await
        .expect("assigning the same licence again converges");
    let erin = g
        .get_user("erin@contoso.com")
        .await
        .expect("get")
        .expect("erin");
    assert_eq!(erin.usage_location.as_deref(), Some("GB"));
    assert_eq!(
        erin.assigned_licenses
            .iter()
            .filter(|l| l.sku_id == MIGRATION_SKU_ID)
            .count(),
        1
    );
    let skus = g.subscribed_skus().await.expect("skus");
    let mig = skus.iter().find(|s| s.is_migration_sku()).expect("T2T sku");
    assert_eq!(mig.consumed_units, consumed + 1, "one seat taken, once");
    // Remove it again.
    let erin = g
        .assign_license("erin@contoso.com", &[], &[MIGRATION_SKU_ID.to_string()])
        .await
        .expect("remove");
    assert!(
        !erin
            .assigned_licenses
            .iter()
            .any(|l| l.sku_id == MIGRATION_SKU_ID)
    );
    // An unknown SKU is a terminal 400.
    let err = g
        .assign_license(
            "erin@contoso.com",
            &[AssignedLicense {
                sku_id: "00000000-1111-2222-3333-444444444444".into(),
                disabled_plans: vec![],
            }],
            &[],
        )
        .await
        .expect_err("unknown sku");
    assert_eq!(err.class(), ErrorClass::Terminal, "{err}");
}

#[tokio::test]
async fn graph_batch_get_users_limits_and_per_item_status() {
    let mut fx = fixture();
    fx.add_generated(60);
    let env = start_with(fx, |_| {}, test_http()).await;
    let g = env.graph(CONTOSO);

    // get_users: 45 UPNs (3 round trips of ≤ 20), order kept, absent users are None.
    let mut upns: Vec<String> = (0..44).map(|i| format!("gen{i:05}@contoso.com")).collect();
    upns.insert(17, "ghost@contoso.com".into());
    let before = env
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            api: "graph",
            method: "POST".into(),
            code: "200".into(),
        })
        .get();
    let users = g.get_users(&upns).await.expect("get_users");
    let after = env
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            api: "graph",
            method: "POST".into(),
            code: "200".into(),
        })
        .get();
    assert_eq!(after - before, 3, "45 users = 3 $batch calls");
    assert_eq!(users.len(), 45);
    assert!(users[17].is_none());
    for (upn, u) in upns.iter().zip(&users) {
        if upn.starts_with("ghost") {
            continue;
        }
        assert_eq!(
            u.as_ref().expect("user").user_principal_name.as_deref(),
            Some(upn.as_str())
        );
    }

    // More than 20 requests are refused locally, before anything is sent.
    let too_many: Vec<BatchRequest> = (0..=MAX_BATCH)
        .map(|i| BatchRequest {
            id: i.to_string(),
            method: "GET".into(),
            url: "/organization".into(),
            body: None,
            headers: None,
        })
        .collect();
    let err = g.batch(&too_many).await.expect_err("21 requests");
    assert!(matches!(err, TenantError::Config(_)), "{err}");
    assert_eq!(
        g.batch(&too_many[..MAX_BATCH]).await.expect("20").len(),
        MAX_BATCH
    );

    // Mixed per-item answers come back as statuses, not errors.
    let reqs = vec![
        BatchRequest {
            id: "1".into(),
            method: "GET".into(),
            url: "/users/alice@contoso.com?$select=id".into(),
            body: None,
            headers: None,
        },
        BatchRequest {
            id: "2".into(),
            method: "GET".into(),
            url: "/users/nobody@contoso.com".into(),
            body: None,
            headers: None,
        },
        BatchRequest {
            id: "3".into(),
            method: "PATCH".into(),
            url: "/users/bob@contoso.com".into(),
            body: Some(json!({"usageLocation": "FR"})),
            headers: Some(json!({"Content-Type": "application/json"})),
        },
    ];
    let mut out = g.batch(&reqs).await.expect("batch");
    out.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(out[0].status, 200);
    assert_eq!(out[1].status, 404);
    assert_eq!(out[1].body["error"]["code"], "Request_ResourceNotFound");
    assert!((200..300).contains(&out[2].status), "{:?}", out[2]);
    let bob = g
        .get_user("bob@contoso.com")
        .await
        .expect("get")
        .expect("bob");
    assert_eq!(bob.usage_location.as_deref(), Some("FR"));
}

#[tokio::test]
async fn graph_paging_follows_next_link() {
    let mut fx = fixture();
    fx.add_generated(25);
    let env = start_with(fx, |_| {}, test_http()).await;
    let g = env.graph(CONTOSO);
    let all: Vec<t2t_operator::tenant::graph::GraphUser> = g
        .list("v1.0", "/users?$select=id,userPrincipalName")
        .await
        .expect("all");
    let paged: Vec<t2t_operator::tenant::graph::GraphUser> = g
        .list("v1.0", "/users?$select=id,userPrincipalName&$top=4")
        .await
        .expect("paged");
    assert!(all.len() >= 36, "{}", all.len());
    assert_eq!(paged.len(), all.len());
    let mut ids: Vec<&str> = paged.iter().map(|u| u.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "no page repeated or skipped");
    let pages = env
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            api: "graph",
            method: "GET".into(),
            code: "200".into(),
        })
        .get();
    assert!(pages > all.len().div_ceil(4) as u64, "{pages} GETs");
}

#[tokio::test]
async fn graph_applications_service_principals_and_grants() {
    let env = start().await;
    let g = env.graph(FABRIKAM);
    let exo_sp = g
        .get_service_principal(EXCHANGE_APP_ID)
        .await
        .expect("sp")
        .expect("Exchange SP exists");
    let role = exo_sp
        .role_id(MAILBOX_MIGRATION_ROLE)
        .expect("Mailbox.Migration")
        .to_string();
    assert!(
        g.get_service_principal(GRAPH_APP_ID)
            .await
            .expect("sp")
            .is_some()
    );
    assert!(
        g.get_service_principal("00000000-0000-0000-0000-00000000dead")
            .await
            .expect("sp")
            .is_none()
    );

    let name = "T2T migration (contoso-to-fabrikam)";
    assert!(
        g.find_applications_by_name(name)
            .await
            .expect("find")
            .is_empty()
    );
    let app = g
        .ensure_migration_app(name, &role, "t2t:pair-1")
        .await
        .expect("create");
    assert_eq!(app.display_name.as_deref(), Some(name));
    assert_eq!(app.sign_in_audience.as_deref(), Some("AzureADMultipleOrgs"));
    let again = g
        .ensure_migration_app(name, &role, "t2t:pair-1")
        .await
        .expect("ensure again");
    assert_eq!(again.id, app.id, "found, not created twice");
    let found = g.find_applications_by_name(name).await.expect("find");
    assert_eq!(found.len(), 1);
    let by_app_id = g
        .get_application_by_app_id(&app.app_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(by_app_id.id, app.id);
    assert!(
        g.get_application_by_app_id("00000000-0000-0000-0000-00000000beef")
            .await
            .expect("get")
            .is_none()
    );

    // Secrets: text only in the answer, never in Debug.
    let end = chrono::Utc::now() + chrono::Duration::days(180);
    let pw = g
        .add_password(&app.id, "rotation-1", end)
        .await
        .expect("addPassword");
    let text = pw.secret_text.clone().expect("secret text");
    assert!(!format!("{pw:?}").contains(&text));
    let listed = g
        .get_application_by_app_id(&app.app_id)
        .await
        .expect("get")
        .expect("app");
    assert_eq!(listed.password_credentials.len(), 1);
    assert!(listed.password_credentials[0].secret_text.is_none());
    // replace_password: removes the old credential of the same name, adds one.
    let pw2 = g
        .replace_password(&app.id, "rotation-1", end)
        .await
        .expect("replace");
    assert_ne!(pw2.key_id, pw.key_id);
    let listed = g
        .get_application_by_app_id(&app.app_id)
        .await
        .expect("get")
        .expect("app");
    assert_eq!(listed.password_credentials.len(), 1);
    assert_eq!(listed.password_credentials[0].key_id, pw2.key_id);
    g.remove_password(&app.id, &pw2.key_id)
        .await
        .expect("removePassword");
    g.remove_password(&app.id, &pw2.key_id)
        .await
        .expect("removing an absent key is success");

    // Service principal + app role assignment (admin consent without UI), both idempotent.
    let sp = g.ensure_service_principal(&app.app_id).await.expect("sp");
    let sp2 = g
        .ensure_service_principal(&app.app_id)
        .await
        .expect("sp again");
    assert_eq!(sp.id, sp2.id);
    let a1 = g
        .ensure_app_role_assignment(&sp.id, &exo_sp.id, &role)
        .await
        .expect("grant");
    let a2 = g
        .ensure_app_role_assignment(&sp.id, &exo_sp.id, &role)
        .await
        .expect("grant again");
    assert_eq!(a1.id, a2.id);
    let assignments = g.app_role_assignments(&sp.id).await.expect("list");
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].app_role_id, role);
    let dump = env.dump(FABRIKAM).await;
    let sp_dump = dump["servicePrincipals"]
        .as_array()
        .expect("sps")
        .iter()
        .find(|s| s["appId"] == app.app_id.as_str())
        .expect("sp in dump")
        .clone();
    assert_eq!(sp_dump["roles"]["exchange"], json!(["Mailbox.Migration"]));

    // Raw POST of a duplicate grant maps to "already exists".
    let dup = g
        .send(
            reqwest::Method::POST,
            &format!(
                "{}/v1.0/servicePrincipals/{}/appRoleAssignedTo",
                env.sim.base_url(),
                exo_sp.id
            ),
            Some(&json!({"principalId": sp.id, "resourceId": exo_sp.id, "appRoleId": role})),
            t2t_operator::tenant::http::Idempotency::Safe,
        )
        .await
        .expect_err("duplicate");
    assert!(dup.is_already_exists(), "{dup}");

    // DELETE /applications/{id}: gone afterwards; deleting again counts as done.
    g.delete_application(&app.id).await.expect("delete");
    assert!(
        g.get_application_by_app_id(&app.app_id)
            .await
            .expect("get")
            .is_none()
    );
    g.delete_application(&app.id)
        .await
        .expect("delete again is a no-op");
}

#[tokio::test]
async fn graph_migration_jobs() {
    let env = start().await;
    let (g, x, s) = (env.graph(FABRIKAM), env.exo(FABRIKAM), env.exo(CONTOSO));
    // Prepare alice's target MailUser (the job's resource is its Graph id).
    let src = s.get_mailbox("alice").await.expect("get").expect("alice");
    let mu = x
        .new_mail_user(&new_mail_user("alice", "alice@contoso.com"))
        .await
        .expect("mailuser");
    x.set_mail_user(&mu.identity, &stamp(&src))
        .await
        .expect("stamp");
    let target = g
        .get_user("alice@fabrikam.com")
        .await
        .expect("get")
        .expect("target user");

    let now = env.sim.now();
    let job = CrossTenantMigrationJob {
        display_name: "wave-01".into(),
        source_tenant_id: CONTOSO.into(),
        complete_after_date_time: Some(now + chrono::Duration::days(2)),
        exchange_settings: Some(json!({"sourceEndpoint": "EXOHandler",
            "targetDeliveryDomain": "fabrikam.onmicrosoft.com"})),
        workloads: vec!["Exchange".into()],
        resource_type: "Users".into(),
        resources: vec![target.id.clone()],
        ..Default::default()
    };
    let created = g.create_migration_job(&job).await.expect("create");
    assert_eq!(created.status.as_deref(), Some("submitted"));
    let repeat = g.create_migration_job(&job).await.expect("repeat");
    assert_eq!(repeat.id, created.id, "a repeat returns the existing job");
    assert_eq!(g.list_migration_jobs().await.expect("list").len(), 1);
    let got = g
        .get_migration_job(&created.id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(got.display_name, "wave-01");
    assert!(
        g.get_migration_job("00000000-0000-0000-0000-000000000000")
            .await
            .expect("get")
            .is_none()
    );
    let later = now + chrono::Duration::days(3);
    g.update_migration_job_complete_after(&created.id, later)
        .await
        .expect("patch");
    let got = g
        .get_migration_job(&created.id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(
        got.complete_after_date_time.map(|t| t.timestamp()),
        Some(later.timestamp())
    );
    let v = g
        .validate_migration_job(&created.id)
        .await
        .expect("validate");
    assert_eq!(v.status.as_deref(), Some("validateSubmitted"));
    let users = g.migration_job_users(&created.id).await.expect("users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, target.id);
    env.advance(5).await;
    let got = g
        .get_migration_job(&created.id)
        .await
        .expect("get")
        .expect("job");
    assert!(
        got.status
            .as_deref()
            .is_some_and(|s| s.starts_with("validate"))
    );
    // Not migratable without an endpoint → validation failed; migrate is a 409 conflict.
    if got.status.as_deref() != Some("validatePassed") {
        let err = g
            .migrate_migration_job(&created.id)
            .await
            .expect_err("migrate");
        assert_eq!(err.class(), ErrorClass::Conflict, "{err}");
    }
    // Delete from a non-final state: 409; cancel then delete.
    let err = g
        .delete_migration_job(&created.id)
        .await
        .expect_err("delete");
    assert_eq!(err.class(), ErrorClass::Conflict, "{err}");
    g.cancel_migration_job(&created.id).await.expect("cancel");
    env.advance(2).await;
    g.delete_migration_job(&created.id).await.expect("delete");
    env.advance(2).await;
    g.delete_migration_job(&created.id)
        .await
        .expect("deleting an absent job is success");

    // The source admin lacks CrossTenantContentMigration.*: 403 with a category.
    let err = env
        .graph(CONTOSO)
        .list_migration_jobs()
        .await
        .expect_err("403");
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.category(), "PermissionMissing");
}

// ---------------------------------------------------------------- Exchange

fn new_mail_user(alias: &str, external: &str) -> NewMailUser {
    NewMailUser {
        name: alias.into(),
        alias: alias.into(),
        display_name: format!("{alias} (migrated)"),
        first_name: None,
        last_name: None,
        microsoft_online_services_id: format!("{alias}@fabrikam.com"),
        primary_smtp_address: format!("{alias}@fabrikam.com"),
        external_email_address: external.into(),
        password: "Initial-P@ssw0rd-1234".into(),
    }
}

fn stamp(src: &t2t_operator::tenant::exchange::types::Mailbox) -> MailUserChanges {
    let mut add = vec![format!(
        "X500:{}",
        src.legacy_exchange_dn.clone().expect("legacyExchangeDN")
    )];
    add.extend(
        src.email_addresses
            .iter()
            .filter(|a| a.to_ascii_lowercase().starts_with("x500:"))
            .cloned(),
    );
    MailUserChanges {
        exchange_guid: src.exchange_guid.clone(),
        archive_guid: src
            .archive_guid
            .clone()
            .filter(|g| !t2t_operator::tenant::exchange::types::is_zero_guid(g)),
        add_addresses: add,
        ..Default::default()
    }
}

#[tokio::test]
async fn exchange_every_cmdlet_wrapper() {
    let env = start().await;
    let (t, s) = (env.exo(FABRIKAM), env.exo(CONTOSO));
    env.consent(CONTOSO, MIG_APP).await;

    // Organization.
    assert!(
        t.get_organization_config()
            .await
            .expect("org")
            .is_dehydrated
    );
    t.enable_organization_customization().await.expect("enable");
    t.enable_organization_customization()
        .await
        .expect("enabling twice is success");
    assert!(
        !t.get_organization_config()
            .await
            .expect("org")
            .is_dehydrated
    );
    s.enable_organization_customization().await.expect("enable");
    let domains = t.get_accepted_domains().await.expect("domains");
    assert!(
        domains
            .iter()
            .any(|d| d.domain_name.eq_ignore_ascii_case("fabrikam.com"))
    );
    assert!(domains.iter().any(|d| {
        d.domain_name
            .eq_ignore_ascii_case("fabrikam.onmicrosoft.com")
    }));

    // Groups: create (twice), add (twice), list, remove (twice), delete (twice).
    assert!(
        s.get_distribution_group(SCOPE_GROUP)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        s.get_distribution_group("No-Such-Group")
            .await
            .expect("get")
            .is_none()
    );
    let g1 = s.new_security_group("Wave-2-Scope").await.expect("group");
    let g2 = s
        .new_security_group("Wave-2-Scope")
        .await
        .expect("group again");
    assert_eq!(g1.guid, g2.guid);
    s.add_group_member("Wave-2-Scope", "erin@contoso.com")
        .await
        .expect("add");
    s.add_group_member("Wave-2-Scope", "erin@contoso.com")
        .await
        .expect("adding a member twice is success");
    let members = s.get_group_members("Wave-2-Scope").await.expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(
        members[0].primary_smtp_address.as_deref(),
        Some("erin@contoso.com")
    );
    s.remove_group_member("Wave-2-Scope", "erin@contoso.com")
        .await
        .expect("remove");
    s.remove_group_member("Wave-2-Scope", "erin@contoso.com")
        .await
        .expect("removing a non-member is success");
    assert!(
        s.get_group_members("Wave-2-Scope")
            .await
            .expect("members")
            .is_empty()
    );
    // Remove-DistributionGroup: gone afterwards; removing again counts as done.
    s.remove_distribution_group("Wave-2-Scope")
        .await
        .expect("remove group");
    assert!(
        s.get_distribution_group("Wave-2-Scope")
            .await
            .expect("get")
            .is_none()
    );
    s.remove_distribution_group("Wave-2-Scope")
        .await
        .expect("remove again is a no-op");

    // Organization relationships (both sides).
    let inbound = RelationshipSettings {
        capability: vec!["Inbound".into()],
        oauth_application_id: None,
        published_scopes: vec![],
    };
    let r1 = t
        .new_organization_relationship("contoso", CONTOSO, &inbound)
        .await
        .expect("orgrel");
    let r2 = t
        .new_organization_relationship("contoso", CONTOSO, &inbound)
        .await
        .expect("orgrel again");
    assert_eq!(r1.identity, r2.identity);
    assert_eq!(r1.mailbox_move_capability, vec!["Inbound".to_string()]);
    let outbound = RelationshipSettings {
        capability: vec!["RemoteOutbound".into()],
        oauth_application_id: Some(MIG_APP.into()),
        published_scopes: vec![SCOPE_GROUP.into()],
    };
    let sr = s
        .new_organization_relationship("fabrikam", FABRIKAM, &outbound)
        .await
        .expect("source orgrel");
    assert_eq!(sr.oauth_application_id.as_deref(), Some(MIG_APP));
    assert_eq!(
        s.find_organization_relationship(FABRIKAM)
            .await
            .expect("find")
            .expect("found")
            .identity,
        sr.identity
    );
    assert!(
        s.find_organization_relationship(CONTOSO)
            .await
            .expect("find")
            .is_none()
    );
    assert_eq!(
        s.get_organization_relationships()
            .await
            .expect("list")
            .len(),
        1
    );
    let mut both = outbound.clone();
    both.capability = vec!["RemoteOutbound".into(), "Inbound".into()];
    s.set_organization_relationship(&sr.identity, &both)
        .await
        .expect("set");
    let sr2 = s
        .find_organization_relationship(FABRIKAM)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(sr2.mailbox_move_capability.len(), 2, "{sr2:?}");
    assert_eq!(sr2.mailbox_move_published_scopes.len(), 1);

    // Migration endpoint.
    assert!(
        t.get_migration_endpoint("EXOHandler")
            .await
            .expect("get")
            .is_none()
    );
    let ne = NewEndpoint {
        name: "EXOHandler".into(),
        remote_server: "outlook.office.com".into(),
        remote_tenant: "contoso.onmicrosoft.com".into(),
        application_id: MIG_APP.into(),
        max_concurrent_migrations: Some(20),
        max_concurrent_incremental_syncs: None,
    };
    let e1 = t
        .new_migration_endpoint(&ne, MIG_SECRET)
        .await
        .expect("endpoint");
    let e2 = t
        .new_migration_endpoint(&ne, MIG_SECRET)
        .await
        .expect("endpoint again");
    assert_eq!(e1.identity, e2.identity);
    assert_eq!(e1.max_concurrent_migrations, Some(20));
    assert_eq!(t.list_migration_endpoints().await.expect("list").len(), 1);
    t.set_migration_endpoint(
        "EXOHandler",
        Some(MIG_APP),
        Some(MIG_SECRET),
        Some(50),
        Some(10),
    )
    .await
    .expect("set endpoint");
    let e3 = t
        .get_migration_endpoint("EXOHandler")
        .await
        .expect("get")
        .expect("endpoint");
    assert_eq!(e3.max_concurrent_migrations, Some(50));
    assert_eq!(e3.max_concurrent_incremental_syncs, Some(10));
    let avail = t
        .test_migration_server_availability("EXOHandler", None)
        .await
        .expect("test");
    assert_eq!(avail.result, "Success", "{avail:?}");

    // Source recipients.
    let alice = s
        .get_mailbox("alice@contoso.com")
        .await
        .expect("get")
        .expect("alice");
    assert!(alice.exchange_guid.is_some());
    assert!(alice.has_archive());
    assert!(
        s.get_mailbox("nobody@contoso.com")
            .await
            .expect("get")
            .is_none()
    );
    let stats = s
        .get_mailbox_statistics("alice@contoso.com")
        .await
        .expect("stats")
        .expect("alice stats");
    assert!(stats.total_item_size.is_some(), "{stats:?}");
    assert!(
        s.get_mailbox_statistics("nobody@contoso.com")
            .await
            .expect("stats")
            .is_none()
    );
    assert!(
        !s.get_mailbox_permissions("alice@contoso.com")
            .await
            .expect("perm")
            .is_empty()
    );
    assert!(
        s.get_mailbox_permissions("nobody@contoso.com")
            .await
            .expect("perm")
            .is_empty()
    );
    s.add_send_on_behalf("alice@contoso.com", &["bob@contoso.com".into()])
        .await
        .expect("send on behalf");
    let alice2 = s.get_mailbox("alice").await.expect("get").expect("alice");
    assert_eq!(alice2.grant_send_on_behalf_to.len(), 1);
    let suser = s
        .get_user("alice@contoso.com")
        .await
        .expect("user")
        .expect("alice");
    assert_eq!(suser.recipient_type_details.as_deref(), Some("UserMailbox"));
    assert!(
        s.get_user("nobody@contoso.com")
            .await
            .expect("user")
            .is_none()
    );

    // Target MailUsers: create (twice), stamp, read back.
    assert!(
        t.get_mail_user("alice@fabrikam.com")
            .await
            .expect("get")
            .is_none()
    );
    let m1 = t
        .new_mail_user(&new_mail_user("alice", "alice@contoso.com"))
        .await
        .expect("mailuser");
    let m2 = t
        .new_mail_user(&new_mail_user("alice", "alice@contoso.com"))
        .await
        .expect("mailuser again");
    assert_eq!(m1.identity, m2.identity);
    t.set_mail_user(&m1.identity, &stamp(&alice))
        .await
        .expect("stamp");
    t.set_mail_user(&m1.identity, &MailUserChanges::default())
        .await
        .expect("nothing to change");
    let mu: MailUser = t
        .get_mail_user("alice@fabrikam.com")
        .await
        .expect("get")
        .expect("alice");
    assert_eq!(mu.exchange_guid, alice.exchange_guid);
    assert_eq!(mu.archive_guid, alice.archive_guid);
    assert!(
        mu.email_addresses
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&format!(
                "x500:{}",
                alice.legacy_exchange_dn.as_deref().expect("dn")
            )))
    );
    assert_eq!(
        mu.external_email_address
            .as_deref()
            .map(|a| a.to_ascii_lowercase()),
        Some("smtp:alice@contoso.com".to_string())
    );
    let tuser = t
        .get_user("alice@fabrikam.com")
        .await
        .expect("user")
        .expect("alice");
    assert_eq!(tuser.recipient_type_details.as_deref(), Some("MailUser"));
    t.clear_previous_mailbox_info("alice@fabrikam.com")
        .await
        .expect("clear previous mailbox info");

    // frank: stamped, plus a proxy in a domain Fabrikam does not own → NotAcceptedDomain.
    let frank = s
        .get_mailbox("frank@contoso.com")
        .await
        .expect("get")
        .expect("frank");
    let fm = t
        .new_mail_user(&new_mail_user("frank", "frank@contoso.com"))
        .await
        .expect("frank");
    let mut c = stamp(&frank);
    c.add_addresses
        .push("smtp:frank@contoso.onmicrosoft.com".into());
    t.set_mail_user(&fm.identity, &c)
        .await
        .expect("stamp frank");

    // Migration batch.
    assert!(
        t.get_migration_batch("wave-1")
            .await
            .expect("get")
            .is_none()
    );
    let nb = NewBatch {
        name: "wave-1".into(),
        source_endpoint: "EXOHandler".into(),
        users: vec!["alice@fabrikam.com".into(), "frank@fabrikam.com".into()],
        target_delivery_domain: "fabrikam.onmicrosoft.com".into(),
        auto_start: true,
        start_after: None,
        notification_emails: vec!["admin@fabrikam.com".into()],
    };
    let b1 = t.new_migration_batch(&nb).await.expect("batch");
    let b2 = t.new_migration_batch(&nb).await.expect("batch again");
    assert_eq!(b1.identity, b2.identity);
    assert_eq!(b1.total_count, Some(2));
    env.advance(10).await;
    let users = t.get_migration_users("wave-1").await.expect("users");
    assert_eq!(users.len(), 2);
    let frank_u = users
        .iter()
        .find(|u| u.identity.to_ascii_lowercase().starts_with("frank"))
        .expect("frank");
    assert_eq!(frank_u.status, "Failed", "{frank_u:?}");
    assert_eq!(
        frank_u.error_kind(),
        Some(ExchangeErrorKind::NotAcceptedDomain)
    );
    let alice_u = users
        .iter()
        .find(|u| u.identity.to_ascii_lowercase().starts_with("alice"))
        .expect("alice");
    assert!(alice_u.error_kind().is_none(), "{alice_u:?}");
    let st = t
        .get_migration_user_statistics("frank@fabrikam.com")
        .await
        .expect("stats")
        .expect("frank stats");
    assert_eq!(st.error_kind(), Some(ExchangeErrorKind::NotAcceptedDomain));
    assert!(
        t.get_migration_users("no-such-batch")
            .await
            .expect("users")
            .is_empty()
    );

    t.stop_migration_batch("wave-1").await.expect("stop");
    t.stop_migration_batch("wave-1")
        .await
        .expect("stopping a stopped batch is success");
    t.start_migration_batch("wave-1").await.expect("start");
    t.remove_migration_user("frank@fabrikam.com")
        .await
        .expect("rm user");
    t.remove_migration_user("frank@fabrikam.com")
        .await
        .expect("removing an absent migration user is success");
    env.advance(24 * 60).await;
    let b = t
        .get_migration_batch("wave-1")
        .await
        .expect("get")
        .expect("batch");
    assert_eq!(b.status, "Synced", "{b:?}");
    t.complete_migration_batch("wave-1")
        .await
        .expect("complete");
    let mut b = t
        .get_migration_batch("wave-1")
        .await
        .expect("get")
        .expect("batch");
    for _ in 0..48 {
        if b.status == "Completed" {
            break;
        }
        env.advance(30).await;
        b = t
            .get_migration_batch("wave-1")
            .await
            .expect("get")
            .expect("batch");
    }
    assert_eq!(b.status, "Completed", "{b:?}");
    t.complete_migration_batch("wave-1")
        .await
        .expect("completing a completed batch is success");
    t.remove_migration_batch("wave-1").await.expect("rm batch");
    t.remove_migration_batch("wave-1")
        .await
        .expect("removing an absent batch is success");
    assert!(
        t.get_migration_batch("wave-1")
            .await
            .expect("get")
            .is_none()
    );

    // Tear down the endpoint and relationships (each twice).
    t.remove_migration_endpoint("EXOHandler")
        .await
        .expect("rm ep");
    t.remove_migration_endpoint("EXOHandler")
        .await
        .expect("removing an absent endpoint is success");
    t.remove_organization_relationship(&r1.identity)
        .await
        .expect("rm orgrel");
    t.remove_organization_relationship(&r1.identity)
        .await
        .expect("removing an absent relationship is success");
    assert!(
        t.get_organization_relationships()
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn exchange_paging_and_result_size() {
    let mut fx = fixture();
    fx.add_generated(1500);
    let env = start_with(fx, |_| {}, test_http()).await;
    let s = env.exo(CONTOSO);
    // Default ResultSize (1000): capped.
    let capped = s
        .invoke("Get-Mailbox", Default::default())
        .await
        .expect("get-mailbox");
    assert_eq!(capped.len(), 1000);
    // Unlimited: every mailbox, over more than one page (maxpagesize 1000 → nextLink).
    let all = s
        .invoke(
            "Get-Mailbox",
            t2t_operator::tenant::exchange::params([("ResultSize", json!("Unlimited"))]),
        )
        .await
        .expect("get-mailbox unlimited");
    assert_eq!(all.len(), 1511);
    let mut ids: Vec<&str> = all.iter().filter_map(|m| m["Guid"].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1511, "no duplicates across pages");
    let pages = env
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            api: "exchange",
            method: "Get-Mailbox".into(),
            code: "200".into(),
        })
        .get();
    assert_eq!(pages, 3, "1 page capped + 2 pages unlimited");
    // A large group through get_group_members (ResultSize Unlimited, paged).
    s.new_security_group("Big-Scope").await.expect("group");
    for i in 0..1100 {
        // Adding through the raw invoke keeps the test fast enough; the wrapper is covered elsewhere.
        s.invoke(
            "Add-DistributionGroupMember",
            t2t_operator::tenant::exchange::params([
                ("Identity", json!("Big-Scope")),
                ("Member", json!(format!("gen{i:05}@contoso.com"))),
            ]),
        )
        .await
        .expect("add");
    }
    assert_eq!(
        s.get_group_members("Big-Scope")
            .await
            .expect("members")
            .len(),
        1100
    );
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn error_mapping_401_403_and_typed_kinds() {
    let env = start().await;
    let t = env.exo(FABRIKAM);

    // A bad parameter is a typed, terminal error.
    let err = t
        .invoke(
            "Get-Mailbox",
            t2t_operator::tenant::exchange::params([("NoSuchParameter", json!(1))]),
        )
        .await
        .expect_err("bad parameter");
    assert_eq!(
        err.exchange_kind(),
        Some(&ExchangeErrorKind::InvalidParameter),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Terminal);
    assert_eq!(err.category(), "TenantRejected");

    // An address outside the accepted domains.
    let mut m = new_mail_user("zed", "zed@contoso.com");
    m.primary_smtp_address = "zed@not-ours.example".into();
    m.microsoft_online_services_id = "zed@not-ours.example".into();
    let err = t.new_mail_user(&m).await.expect_err("foreign domain");
    assert!(err.exchange_kind().is_some(), "{err}");
    assert!(err.to_string().contains("accepted domain"), "{err}");
    assert_eq!(err.class(), ErrorClass::Terminal);

    // The same name again with another address → AlreadyExists (Conflict), not a new object.
    t.new_mail_user(&new_mail_user("yan", "yan@contoso.com"))
        .await
        .expect("yan");
    let raw = t
        .invoke(
            "New-MailUser",
            t2t_operator::tenant::exchange::params([
                ("Name", json!("yan")),
                ("ExternalEmailAddress", json!("yan2@contoso.com")),
                ("PrimarySmtpAddress", json!("yan2@fabrikam.com")),
            ]),
        )
        .await
        .expect_err("duplicate name");
    assert!(raw.is_already_exists(), "{raw}");
    assert_eq!(raw.class(), ErrorClass::Conflict);

    // 401: an app without Exchange.ManageAsApp.
    let no_exo = env.exo_as(Env::secret_cred(FABRIKAM, NO_EXO_APP, APP_SECRET, "1"));
    let err = no_exo.get_organization_config().await.expect_err("401");
    assert_eq!(err.status(), Some(401), "{err}");
    assert_eq!(err.category(), "PermissionMissing");
    assert!(err.to_string().contains("Exchange.ManageAsApp"), "{err}");
    // 403: ManageAsApp without a directory role.
    let no_role = env.exo_as(Env::secret_cred(FABRIKAM, NO_ROLE_APP, APP_SECRET, "1"));
    let err = no_role.get_organization_config().await.expect_err("403");
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(err.category(), "PermissionMissing");
    assert!(err.to_string().contains("Exchange Administrator"), "{err}");
    // Graph 403 for an app lacking the permission.
    let g = env.graph_as(Env::secret_cred(FABRIKAM, NO_EXO_APP, APP_SECRET, "1"));
    g.organization()
        .await
        .expect("Organization.Read.All is granted");
    let err = g.get_user("admin@fabrikam.com").await.expect_err("403");
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(err.category(), "PermissionMissing");
    assert!(
        matches!(&err, TenantError::Graph { code, .. } if code == "Authorization_RequestDenied"),
        "{err:?}"
    );
}

#[tokio::test]
async fn token_expiry_refreshes_once() {
    let env = start_with(
        fixture(),
        |c| c.token_lifetime = Duration::from_secs(3599),
        test_http(),
    )
    .await;
    let (g, x) = (env.graph(CONTOSO), env.exo(CONTOSO));
    g.organization().await.expect("graph");
    x.get_organization_config().await.expect("exchange");
    assert_eq!(env.tokens_issued(), 2, "one token per resource");
    g.organization().await.expect("graph");
    x.get_organization_config().await.expect("exchange");
    assert_eq!(env.tokens_issued(), 2, "cached");
    // Two simulated hours later both tokens are expired at the service: the 401 drops the
    // cached token and the call succeeds with a fresh one.
    env.advance(120).await;
    g.organization().await.expect("graph after expiry");
    x.get_organization_config()
        .await
        .expect("exchange after expiry");
    assert_eq!(env.tokens_issued(), 4, "refreshed once per resource");
    let unauthorized: u64 = ["graph", "exchange"]
        .iter()
        .map(|api| {
            env.metrics
                .requests
                .get_or_create(&RequestLabels {
                    api,
                    method: if *api == "graph" {
                        "GET"
                    } else {
                        "Get-OrganizationConfig"
                    }
                    .into(),
                    code: "401".into(),
                })
                .get()
        })
        .sum();
    assert_eq!(unauthorized, 2, "one rejected call per resource");

    // A lifetime shorter than the refresh margin: never served from cache, always valid.
    let env = start_with(
        fixture(),
        |c| c.token_lifetime = Duration::from_secs(120),
        test_http(),
    )
    .await;
    let g = env.graph(CONTOSO);
    for _ in 0..3 {
        g.organization().await.expect("graph");
        env.advance(3).await;
    }
    assert_eq!(env.tokens_issued(), 3);
}

#[tokio::test]
async fn secret_rotation_and_rejected_secrets() {
    let env = start().await;
    let good = Env::secret_cred(
        CONTOSO,
        &env.admin(CONTOSO).client_id,
        CONTOSO_SECRET,
        "100",
    );
    let g = env.graph_as(good.clone());
    g.organization().await.expect("v100");
    // A new version with a wrong secret is used at once (no cached token hides it).
    let wrong_secret = "wrong-secret-K2j~x0";
    let bad = Env::secret_cred(CONTOSO, &good.client_id, wrong_secret, "101");
    let err = env
        .graph_as(bad.clone())
        .organization()
        .await
        .expect_err("rejected");
    match &err {
        TenantError::Token { code, error, .. } => {
            assert_eq!(*code, 7000215, "{err}");
            assert_eq!(error, "invalid_client");
        }
        other => panic!("expected a token error, got {other:?}"),
    }
    assert_eq!(err.category(), "CredentialsRejected");
    assert_eq!(err.class(), ErrorClass::Terminal);
    for shown in [format!("{err}"), format!("{err:?}"), format!("{bad:?}")] {
        assert!(!shown.contains(wrong_secret), "secret leaked: {shown}");
        assert!(!shown.contains(CONTOSO_SECRET), "secret leaked: {shown}");
        assert!(!shown.contains("Trace ID"), "trace ids trimmed: {shown}");
    }
    // Same for Exchange.
    let err = env
        .exo_as(bad)
        .get_organization_config()
        .await
        .expect_err("rejected");
    assert_eq!(err.category(), "CredentialsRejected");
    // Rotating back to a good secret (next version) works immediately.
    let fixed = Env::secret_cred(CONTOSO, &good.client_id, CONTOSO_SECRET, "102");
    env.graph_as(fixed).organization().await.expect("v102");
    // Tokens never appear in Debug output.
    let tok = env
        .tokens
        .token(&good, &env.tokens.endpoints().graph_resource)
        .await
        .expect("token");
    assert!(!format!("{tok:?}").contains(tok.token.expose().as_str()));
    // A secret from a newly added password works at once, and is rejected after removal.
    let fg = env.graph(FABRIKAM);
    let app = fg
        .get_application_by_app_id(MIG_APP)
        .await
        .expect("get")
        .expect("mig app");
    let pw = fg
        .add_password(
            &app.id,
            "rotation",
            chrono::Utc::now() + chrono::Duration::days(30),
        )
        .await
        .expect("add");
    let new_secret = pw.secret_text.clone().expect("text");
    let c1 = Env::secret_cred(FABRIKAM, MIG_APP, &new_secret, "a");
    env.tokens
        .token(&c1, &env.tokens.endpoints().exchange_resource)
        .await
        .expect("new secret accepted");
    fg.remove_password(&app.id, &pw.key_id)
        .await
        .expect("remove");
    let c2 = Env::secret_cred(FABRIKAM, MIG_APP, &new_secret, "b");
    let err = env
        .tokens
        .token(&c2, &env.tokens.endpoints().exchange_resource)
        .await
        .expect_err("removed secret rejected");
    assert_eq!(err.category(), "CredentialsRejected", "{err}");
    assert!(!format!("{err:?}").contains(&new_secret));
}

#[tokio::test]
async fn certificate_credentials_sign_in() {
    let env = start().await;
    let key = CertificateKey::from_pem(
        include_bytes!("fixtures/app-cert.pem"),
        include_bytes!("fixtures/app-key.pem"),
    )
    .expect("cert");
    let cred = AppCredential {
        tenant: CONTOSO.into(),
        client_id: CERT_APP.into(),
        credential: Credential::Certificate(Arc::new(key)),
        version: "1".into(),
    };
    assert!(!format!("{cred:?}").contains("PRIVATE KEY"));
    let org = env
        .graph_as(cred.clone())
        .organization()
        .await
        .expect("graph");
    assert_eq!(org.id, CONTOSO);
    let cfg = env
        .exo_as(cred.clone())
        .get_organization_config()
        .await
        .expect("exchange");
    assert!(cfg.is_dehydrated);
    // The same certificate is not registered for another app.
    let other = AppCredential {
        client_id: NO_EXO_APP.into(),
        tenant: FABRIKAM.into(),
        ..cred
    };
    let err = env
        .graph_as(other)
        .organization()
        .await
        .expect_err("unknown cert");
    assert_eq!(err.category(), "CredentialsRejected", "{err}");
}

/// Graph throttles `$batch` items one by one (the batch answers 200, items 429 with their own
/// Retry-After): only those items are sent again, after their Retry-After.
#[tokio::test]
async fn graph_batch_retries_only_throttled_items() {
    let mut fx = fixture();
    fx.add_generated(20);
    let env = start_with(fx, |_| {}, test_http()).await;
    let g = env.graph(CONTOSO);
    g.organization().await.expect("warm the token");
    let batch_posts = || {
        env.metrics
            .requests
            .get_or_create(&RequestLabels {
                api: "graph",
                method: "POST".into(),
                code: "200".into(),
            })
            .get()
    };
    // The next 3 items addressed to /users/gen… are throttled with Retry-After: 2.
    env.faults(json!([
        {"api": "graph", "route": "/users/gen", "throttleRate": 1.0, "retryAfterSeconds": 2, "times": 3}
    ]))
    .await;
    let upns: Vec<String> = (0..20).map(|i| format!("gen{i:05}@contoso.com")).collect();
    let before = batch_posts();
    let started = Instant::now();
    let users = g
        .get_users(&upns)
        .await
        .expect("get_users through item throttling");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2), "waited {waited:?}");
    assert_eq!(
        batch_posts() - before,
        2,
        "one batch, then one with the throttled items"
    );
    for (upn, u) in upns.iter().zip(&users) {
        assert_eq!(
            u.as_ref().expect("user").user_principal_name.as_deref(),
            Some(upn.as_str())
        );
    }

    // Writes: a throttled PATCH was not applied, so it is sent again; the others are not.
    env.faults(json!([
        {"api": "graph", "route": "/users/gen00001", "throttleRate": 1.0, "retryAfterSeconds": 1, "times": 1}
    ]))
    .await;
    let reqs: Vec<BatchRequest> = (0..3)
        .map(|i| BatchRequest {
            id: format!("w{i}"),
            method: "PATCH".into(),
            url: format!("/users/gen{i:05}@contoso.com"),
            body: Some(json!({"usageLocation": "CH"})),
            headers: Some(json!({"Content-Type": "application/json"})),
        })
        .collect();
    let before = batch_posts();
    let out = g.batch(&reqs).await.expect("batch");
    assert_eq!(batch_posts() - before, 2);
    assert_eq!(
        out.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["w0", "w1", "w2"],
        "answers in request order"
    );
    assert!(
        out.iter().all(|r| (200..300).contains(&r.status)),
        "{out:?}"
    );
    for i in 0..3 {
        let u = g
            .get_user(&format!("gen{i:05}@contoso.com"))
            .await
            .expect("get")
            .expect("user");
        assert_eq!(u.usage_location.as_deref(), Some("CH"));
    }

    // Throttled on every attempt: the item keeps its last answer (429 with Retry-After).
    env.faults(json!([
        {"api": "graph", "route": "/users/gen00002", "throttleRate": 1.0, "retryAfterSeconds": 0}
    ]))
    .await;
    let out = g.batch(&reqs[2..]).await.expect("batch");
    assert_eq!(out[0].status, 429, "{out:?}");
}

/// The same app certificate delivered as a PKCS#12 archive (OpenSSL 3 default: PBES2
/// AES-256-CBC, HMAC-SHA-256) signs in to the simulator for Graph and Exchange.
#[tokio::test]
async fn pfx_certificate_credentials_sign_in() {
    let env = start().await;
    let key = CertificateKey::from_pkcs12(include_bytes!("fixtures/app.pfx"), Some("fixture-pass"))
        .expect("pfx");
    let cred = AppCredential {
        tenant: CONTOSO.into(),
        client_id: CERT_APP.into(),
        credential: Credential::Certificate(Arc::new(key)),
        version: "pfx-1".into(),
    };
    let token = env
        .tokens
        .token(&cred, &env.tokens.endpoints().exchange_resource)
        .await
        .expect("token from a PFX credential");
    assert!(!format!("{token:?}").is_empty());
    let org = env
        .graph_as(cred.clone())
        .organization()
        .await
        .expect("graph");
    assert_eq!(org.id, CONTOSO);
    env.exo_as(cred)
        .get_organization_config()
        .await
        .expect("exchange");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let env = start().await;
    let (g, x) = (env.graph(CONTOSO), env.exo(CONTOSO));
    // Warm the token cache so only the API calls are throttled.
    g.organization().await.expect("warm");
    x.get_organization_config().await.expect("warm");
    env.faults(json!([
        {"api": "graph", "route": "organization", "throttleRate": 1.0, "retryAfterSeconds": 2, "times": 1},
        {"api": "exchange", "route": "Get-OrganizationConfig", "throttleRate": 1.0, "retryAfterSeconds": 2, "times": 1}
    ]))
    .await;
    let started = Instant::now();
    g.organization().await.expect("graph after Retry-After");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2), "graph waited {waited:?}");
    assert!(waited < Duration::from_secs(4), "graph waited {waited:?}");
    let started = Instant::now();
    x.get_organization_config()
        .await
        .expect("exchange after Retry-After");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "exchange waited {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "exchange waited {waited:?}"
    );
    // The Exchange per-tenant concurrency refusal is throttling too (retried, then success).
    env.faults(json!([{"api": "exchange", "maxConcurrentPerTenant": 2}]))
        .await;
    let results: Vec<_> = futures::stream::iter(0..12)
        .map(|_| x.get_mailbox("alice"))
        .buffer_unordered(12)
        .collect()
        .await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(Some(_)))),
        "{results:?}"
    );
}

#[tokio::test]
async fn unsafe_writes_are_not_repeated_after_a_reset() {
    let env = start().await;
    let g = env.graph(FABRIKAM);
    let app = g
        .get_application_by_app_id(MIG_APP)
        .await
        .expect("get")
        .expect("app");
    let before = app.password_credentials.len();
    env.faults(json!([{"api": "graph", "route": "addPassword", "resetRate": 1.0, "times": 1}]))
        .await;
    let end = chrono::Utc::now() + chrono::Duration::days(30);
    let err = g
        .add_password(&app.id, "lost-answer", end)
        .await
        .expect_err("reset");
    assert!(matches!(err, TenantError::Transport { .. }), "{err:?}");
    assert!(err.may_have_applied());
    let posts = env
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            api: "graph",
            method: "POST".into(),
            code: "error".into(),
        })
        .get();
    assert_eq!(posts, 1, "sent once, not retried");
    // Recovery: replace_password cleans up and adds exactly one credential of that name.
    env.faults(json!([{"api": "graph", "route": "addPassword", "resetRate": 1.0, "times": 1}]))
        .await;
    let pw = g
        .replace_password(&app.id, "lost-answer", end)
        .await
        .expect("replace");
    let app = g
        .get_application_by_app_id(MIG_APP)
        .await
        .expect("get")
        .expect("app");
    let named: Vec<_> = app
        .password_credentials
        .iter()
        .filter(|p| p.display_name.as_deref() == Some("lost-answer"))
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].key_id, pw.key_id);
    assert_eq!(app.password_credentials.len(), before + 1);
}

// ---------------------------------------------------------------- fault storm

#[tokio::test]
async fn fault_storm_every_operation_lands_exactly_once() {
    let env = start_with(
        fixture(),
        |_| {},
        HttpConfig {
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(2),
            max_attempts: 12,
            ..Default::default()
        },
    )
    .await;
    let (t, s, g) = (env.exo(FABRIKAM), env.exo(CONTOSO), env.graph(FABRIKAM));
    let sources: Vec<_> = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "ivan",
    ]
    .iter()
    .map(|a| format!("{a}@contoso.com"))
    .collect();
    // Read the source mailboxes before the storm (the workload's input).
    let mut mailboxes = Vec::new();
    for a in &sources {
        mailboxes.push(s.get_mailbox(a).await.expect("get").expect("mailbox"));
    }
    env.faults(
        json!([{"api": "any", "throttleRate": 0.10, "retryAfterSeconds": 1,
        "errorRate": 0.05, "errorStatus": 503}, {"api": "any", "resetRate": 0.02}]),
    )
    .await;

    // 30 target MailUsers (external address cycles over the 8 source mailboxes; names unique),
    // stamped and their sources added to a new scope group.
    s.new_security_group("Storm-Scope").await.expect("group");
    let results: Vec<Result<(), TenantError>> = futures::stream::iter(0..30)
        .map(|i| {
            let (t, s) = (t.clone(), s.clone());
            let src = &mailboxes[i % mailboxes.len()];
            async move {
                let alias = format!("storm{i:02}");
                let mu = t
                    .new_mail_user(&NewMailUser {
                        external_email_address: format!("{alias}-ext@contoso.com"),
                        ..new_mail_user(&alias, "x@contoso.com")
                    })
                    .await?;
                let changes = MailUserChanges {
                    add_addresses: vec![format!("X500:/o=Storm/cn=Recipients/cn={alias}")],
                    exchange_guid: custom_exchange_guid(i),
                    ..Default::default()
                };
                t.set_mail_user(&mu.identity, &changes).await?;
                s.add_group_member(
                    "Storm-Scope",
                    src.primary_smtp_address.as_deref().unwrap_or_default(),
                )
                .await?;
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }

    // App + secret + SP + grant, each ensure-style (the caller recovery for unsafe creates).
    let exo_sp = g
        .get_service_principal(EXCHANGE_APP_ID)
        .await
        .expect("sp")
        .expect("exists");
    let role = exo_sp
        .role_id(MAILBOX_MIGRATION_ROLE)
        .expect("role")
        .to_string();
    let mut app = None;
    for _ in 0..5 {
        match g
            .ensure_migration_app("Storm app", &role, "t2t:storm")
            .await
        {
            Ok(a) => {
                app = Some(a);
                break;
            }
            Err(e) if e.may_have_applied() || matches!(e.class(), ErrorClass::Transient) => {
                continue;
            }
            Err(e) => panic!("create app: {e}"),
        }
    }
    let app = app.expect("app created");
    let end = chrono::Utc::now() + chrono::Duration::days(30);
    let pw = g
        .replace_password(&app.id, "storm", end)
        .await
        .expect("secret");
    let sp = g.ensure_service_principal(&app.app_id).await.expect("sp");
    g.ensure_app_role_assignment(&sp.id, &exo_sp.id, &role)
        .await
        .expect("grant");
    env.faults(json!([])).await;

    // Count in the simulator.
    let fab = env.dump(FABRIKAM).await;
    let storm: Vec<&Value> = fab["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with("storm")))
        .collect();
    assert_eq!(storm.len(), 30, "every MailUser exactly once");
    for r in &storm {
        let x500 = r["emailAddresses"]
            .as_array()
            .expect("addrs")
            .iter()
            .filter(|a| {
                a.as_str()
                    .is_some_and(|a| a.to_ascii_lowercase().starts_with("x500:"))
            })
            .count();
        assert_eq!(x500, 1, "{r}");
        assert!(
            r["exchangeGuid"]
                .as_str()
                .is_some_and(|g| g.starts_with("5")),
            "{r}"
        );
    }
    let apps: Vec<&Value> = fab["applications"]
        .as_array()
        .expect("apps")
        .iter()
        .filter(|a| a["displayName"] == "Storm app")
        .collect();
    assert_eq!(apps.len(), 1, "one application");
    let sps: Vec<&Value> = fab["servicePrincipals"]
        .as_array()
        .expect("sps")
        .iter()
        .filter(|s| s["appId"] == app.app_id.as_str())
        .collect();
    assert_eq!(sps.len(), 1, "one service principal");
    assert_eq!(sps[0]["roles"]["exchange"], json!(["Mailbox.Migration"]));
    let app_now = g
        .get_application_by_app_id(&app.app_id)
        .await
        .expect("get")
        .expect("app");
    assert_eq!(app_now.password_credentials.len(), 1, "one secret");
    assert_eq!(app_now.password_credentials[0].key_id, pw.key_id);
    let con = env.dump(CONTOSO).await;
    let group = con["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "Storm-Scope")
        .expect("group")
        .clone();
    assert_eq!(
        group["members"].as_array().expect("members").len(),
        sources.len()
    );
    let groups = con["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|g| g["name"] == "Storm-Scope")
        .count();
    assert_eq!(groups, 1);
    let retries: u64 = ["token", "graph", "exchange"]
        .iter()
        .map(|api| {
            env.metrics
                .retries
                .get_or_create(&t2t_operator::metrics::ApiLabels { api })
                .get()
        })
        .sum();
    assert!(retries > 10, "the storm caused retries ({retries})");
}

/// A distinct ExchangeGuid per storm user (the field init shorthand keeps the struct literal short).
fn custom_exchange_guid(i: usize) -> Option<String> {
    Some(format!("5{i:07}-0000-4000-8000-000000000000"))
}
