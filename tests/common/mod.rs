//! Shared end-to-end helpers: an emulated cluster, simulated tenants, the operator, and a prepared
//! TenantPair + MigrationEndpoint.
#![allow(dead_code)]

use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use serde_json::Value;
use t2t_operator::api::conditions::{is_true, types};
use t2t_operator::api::*;
use t2t_operator::dev::{DevEnv, DevOptions, example_pair};
use t2t_operator::sim::Fixture;

pub const NS: &str = "migration";
pub const PAIR: &str = "contoso-to-fabrikam";
pub const ENDPOINT: &str = "contoso";

pub fn fixture() -> Fixture {
    Fixture::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tenants.yaml"
    )))
    .expect("fixture")
}

/// Starts the environment with a fast simulated clock (`time_scale` simulated seconds per second).
pub async fn start(time_scale: f64) -> (DevEnv, Vec<(String, String, String, String)>) {
    let mut opts = DevOptions::new(fixture());
    opts.time_scale = time_scale;
    let mut env = DevEnv::start(opts).await.expect("dev env");
    env.operator_config_mut().active_poll = Duration::from_millis(500);
    let tenants = env.seed_namespace(NS).await.expect("seed");
    env.start_operator();
    (env, tenants)
}

/// Creates the pair and the endpoint and waits until both are Ready.
pub async fn prepared(env: &DevEnv, tenants: &[(String, String, String, String)]) {
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    pairs
        .create(
            &PostParams::default(),
            &TenantPair::new(PAIR, example_pair(env, tenants)),
        )
        .await
        .expect("pair");
    let eps: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    let ep = MigrationEndpoint::new(
        ENDPOINT,
        MigrationEndpointSpec {
            tenant_pair_ref: LocalObjectReference { name: PAIR.into() },
            exchange_name: None,
            remote_server: "outlook.office.com".into(),
            max_concurrent_migrations: None,
            max_concurrent_incremental_syncs: None,
            direction: EndpointDirection::Forward,
            deletion_policy: DeletionPolicy::Orphan,
            suspend: false,
        },
    );
    eps.create(&PostParams::default(), &ep)
        .await
        .expect("endpoint");
    wait_for(
        "pair and endpoint Ready",
        Duration::from_secs(90),
        || async {
            let p = pairs.get(PAIR).await.map_err(|e| e.to_string())?;
            let e = eps.get(ENDPOINT).await.map_err(|e| e.to_string())?;
            Ok(p.status
                .is_some_and(|s| is_true(&s.conditions, types::READY))
                && e.status
                    .is_some_and(|s| is_true(&s.conditions, types::READY)))
        },
    )
    .await;
}

pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let start = std::time::Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        match f().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}: {last}");
}

/// `GET /_sim/tenants/{tenant}`.
pub async fn dump(env: &DevEnv, tenant: &str) -> Value {
    let c = env.sim.http_client().expect("client");
    c.get(format!("{}/_sim/tenants/{tenant}", env.sim.base_url()))
        .send()
        .await
        .expect("dump")
        .json()
        .await
        .expect("json")
}

pub fn user(source: &str, target: &str) -> BatchUser {
    BatchUser {
        source: source.into(),
        target: target.into(),
        ..Default::default()
    }
}

pub fn batch_spec(users: Vec<BatchUser>, completion: CompletionSpec) -> MigrationBatchSpec {
    MigrationBatchSpec {
        endpoint_ref: LocalObjectReference {
            name: ENDPOINT.into(),
        },
        exchange_batch_name: None,
        users,
        users_from: None,
        target_delivery_domain: "fabrikam.onmicrosoft.com".into(),
        provisioning: ProvisioningSpec::default(),
        preflight: PreflightSpec::default(),
        start_after: None,
        completion,
        notification_emails: vec![],
        deletion_policy: DeletionPolicy::Orphan,
        suspend: false,
    }
}

/// Starts the environment with a custom fixture; `short` polls for fast tests.
pub async fn start_with(
    fixture: t2t_operator::sim::Fixture,
    time_scale: f64,
) -> (DevEnv, Vec<(String, String, String, String)>) {
    let mut opts = DevOptions::new(fixture);
    opts.time_scale = time_scale;
    let mut env = DevEnv::start(opts).await.expect("dev env");
    env.operator_config_mut().active_poll = Duration::from_millis(500);
    env.operator_config_mut().idle_resync = Duration::from_secs(5);
    let tenants = env.seed_namespace(NS).await.expect("seed");
    env.start_operator();
    (env, tenants)
}

/// Cross Tenant User Data Migration SKU of the example fixture.
pub const T2T_SKU: &str = "946ce899-873d-44bb-9d8b-671870cbfdbf";
pub const E3_SKU: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";

/// Adds a licensed source user `<name>@contoso.com` with a mailbox; `in_scope` adds it to the
/// scope group. Gives the source T2T SKU enough seats.
pub fn add_source_user(
    fx: &mut Fixture,
    name: &str,
    mailbox: t2t_operator::sim::fixture::MailboxFixture,
    in_scope: bool,
) {
    let t = &mut fx.tenants[0];
    for s in &mut t.skus {
        s.seats = s.seats.max(100);
    }
    let upn = format!("{name}@contoso.com");
    t.users.push(t2t_operator::sim::fixture::UserFixture {
        user_principal_name: upn.clone(),
        display_name: name.to_string(),
        alias: None,
        usage_location: Some("US".into()),
        licenses: vec![
            E3_SKU.parse().expect("uuid"),
            T2T_SKU.parse().expect("uuid"),
        ],
        mailbox: Some(mailbox),
        mail_user: None,
    });
    if in_scope {
        t.groups[0].members.push(upn);
    }
}

pub fn mailbox(size_mb: u64) -> t2t_operator::sim::fixture::MailboxFixture {
    t2t_operator::sim::fixture::MailboxFixture {
        size_mb,
        ..Default::default()
    }
}

/// Runs a cmdlet in a tenant with its admin app, through the wire; panics on failure.
pub async fn invoke(env: &DevEnv, tenant: &str, cmdlet: &str, params: Value) -> Value {
    let token = env
        .sim
        .admin_token(tenant, t2t_operator::sim::testkit::EXCHANGE_SCOPE)
        .await
        .expect("token");
    let (status, body) = env
        .sim
        .invoke(&token, tenant, cmdlet, params.clone())
        .await
        .expect("invoke");
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(status < 300, "{cmdlet} {params}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A recipient from a tenant dump by primary address.
pub fn recipient(dump: &Value, primary: &str) -> Option<Value> {
    dump["recipients"]
        .as_array()?
        .iter()
        .find(|r| {
            r["primarySmtpAddress"]
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case(primary))
        })
        .cloned()
}

/// A batch's status (default when absent).
pub async fn batch_status(batches: &Api<MigrationBatch>, name: &str) -> MigrationBatchStatus {
    batches
        .get(name)
        .await
        .ok()
        .and_then(|b| b.status)
        .unwrap_or_default()
}

pub fn user_state(s: &MigrationBatchStatus, source: &str) -> (UserState, Option<String>) {
    s.users
        .iter()
        .find(|u| u.source == source)
        .map(|u| (u.state, u.reason.clone()))
        .unwrap_or((UserState::Pending, None))
}

/// Waits until every user of the batch reached a final state (Completed, Failed, HeldBack) and the
/// steps after completion ran (Ready or finished).
pub async fn wait_final(batches: &Api<MigrationBatch>, name: &str, timeout: Duration) {
    wait_for(&format!("batch {name} to finish"), timeout, || async {
        let s = batch_status(batches, name).await;
        let c = &s.counts;
        let r = t2t_operator::api::conditions::find(&s.conditions, types::READY);
        let settled = c.total > 0
            && c.completed + c.failed + c.held_back == c.total
            && r.is_some_and(|r| r.reason != "Completing");
        if settled {
            Ok(true)
        } else {
            Err(format!("{c:?} {r:?} {:?}", s.users))
        }
    })
    .await;
}

/// Events about an object: (type, reason, note), from events.k8s.io/v1 and core/v1.
pub async fn events_for(env: &DevEnv, name: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let ev: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), NS);
    if let Ok(list) = ev.list(&Default::default()).await {
        for e in list.items {
            if e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name) {
                out.push((
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                ));
            }
        }
    }
    let ev: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(env.client.clone(), NS);
    if let Ok(list) = ev.list(&Default::default()).await {
        for e in list.items {
            if e.involved_object.name.as_deref() == Some(name) {
                out.push((
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                ));
            }
        }
    }
    out
}

/// Completion gate helpers.
pub fn immediate() -> CompletionSpec {
    CompletionSpec {
        mode: CompletionMode::Immediate,
        ..Default::default()
    }
}

pub fn u(name: &str) -> BatchUser {
    user(
        &format!("{name}@contoso.com"),
        &format!("{name}@fabrikam.com"),
    )
}

/// The value of `t2t_mailboxes{state}`.
pub fn mailboxes_metric(env: &DevEnv, state: &str) -> Option<i64> {
    let text = env.metrics.encode();
    let key = format!("t2t_mailboxes{{state=\"{state}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key).and_then(|v| v.trim().parse().ok()))
}
