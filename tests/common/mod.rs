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
