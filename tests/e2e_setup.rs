//! End to end through the real protocols: the emulated cluster, the simulated tenants and the
//! operator's controllers. A user applies a TenantPair and a MigrationEndpoint; the tenants end up
//! prepared exactly once, and the objects report Ready.

use std::time::Duration;

use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::Value;
use t2t_operator::api::conditions::{find, is_true, types};
use t2t_operator::api::*;
use t2t_operator::dev::{DevEnv, DevOptions, example_pair};
use t2t_operator::sim::Fixture;

const NS: &str = "migration";

async fn env() -> DevEnv {
    let fixture = Fixture::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tenants.yaml"
    )))
    .expect("fixture");
    DevEnv::start(DevOptions::new(fixture))
        .await
        .expect("dev env")
}

async fn dump(env: &DevEnv, tenant: &str) -> Value {
    let c = env.sim.http_client().expect("client");
    c.get(format!("{}/_sim/tenants/{tenant}", env.sim.base_url()))
        .send()
        .await
        .expect("dump")
        .json()
        .await
        .expect("json")
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}: {last}");
}

/// Tenant writes sent so far (API calls that are not reads), from the operator's metrics.
fn tenant_writes(env: &DevEnv) -> u64 {
    sum_metric(env, "t2t_tenant_requests_total{", |l| {
        let method = l
            .split("method=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        !(l.contains("api=\"token\"")
            || method == "GET"
            || method.starts_with("Get")
            || method.starts_with("Test"))
    })
}

/// Reconcile passes run so far.
fn reconciles(env: &DevEnv) -> u64 {
    sum_metric(env, "t2t_reconcile_total{", |_| true)
}

fn sum_metric(env: &DevEnv, prefix: &str, keep: impl Fn(&str) -> bool) -> u64 {
    env.metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with(prefix) && keep(l))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn describe<T: std::fmt::Debug>(v: &Option<T>) -> String {
    format!("{v:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_tenants_become_ready_with_every_object_exactly_once() {
    let mut env = env().await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    // Resync every second so the quiet-resync check below sees several passes.
    env.operator_config_mut().idle_resync = Duration::from_secs(1);
    env.start_operator();

    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    let pair = TenantPair::new("contoso-to-fabrikam", example_pair(&env, &tenants));
    pairs
        .create(&PostParams::default(), &pair)
        .await
        .expect("create pair");
    let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    let ep = MigrationEndpoint::new(
        "contoso",
        MigrationEndpointSpec {
            tenant_pair_ref: LocalObjectReference {
                name: "contoso-to-fabrikam".into(),
            },
            exchange_name: None,
            remote_server: "outlook.office.com".into(),
            max_concurrent_migrations: Some(50),
            max_concurrent_incremental_syncs: Some(20),
            direction: EndpointDirection::Forward,
            deletion_policy: DeletionPolicy::Orphan,
            suspend: false,
        },
    );
    endpoints
        .create(&PostParams::default(), &ep)
        .await
        .expect("create endpoint");

    wait_for(
        "the pair and the endpoint to be Ready",
        Duration::from_secs(90),
        || async {
            let p = pairs
                .get("contoso-to-fabrikam")
                .await
                .map_err(|e| e.to_string())?;
            let e = endpoints.get("contoso").await.map_err(|e| e.to_string())?;
            let pc = p
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            let ec = e
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            let ok = is_true(&pc, types::READY) && is_true(&ec, types::READY);
            if ok {
                Ok(true)
            } else {
                Err(format!(
                    "pair: {} endpoint: {}",
                    describe(&find(&pc, types::READY)),
                    describe(&find(&ec, types::READY))
                ))
            }
        },
    )
    .await;

    let p = pairs.get("contoso-to-fabrikam").await.expect("pair");
    let st = p.status.clone().expect("status");
    assert!(is_true(&st.conditions, types::CREDENTIALS_VALID));
    assert!(is_true(&st.conditions, types::MIGRATION_APP_READY));
    assert!(is_true(
        &st.conditions,
        types::ORGANIZATION_RELATIONSHIP_READY
    ));
    assert!(
        find(&st.conditions, types::STALLED).is_none(),
        "Stalled is absent while false"
    );
    assert!(
        find(&st.conditions, types::RECONCILING).is_none(),
        "Reconciling is absent while false"
    );
    assert_eq!(st.observed_generation, p.metadata.generation);
    let app_id = st
        .migration_app
        .as_ref()
        .and_then(|a| a.application_id.clone())
        .expect("app id");
    assert!(
        st.licenses.as_ref().is_some_and(|l| l.total > 0),
        "seats are reported: {:?}",
        st.licenses
    );
    assert!(p.finalizers().iter().any(|f| f == "t2t.dev/tenantpair"));

    // Exactly one of everything in the tenants.
    let (src, tgt) = (&tenants[0].0, &tenants[1].0);
    let target = dump(&env, tgt).await;
    let source = dump(&env, src).await;
    let ours: Vec<&Value> = target["applications"]
        .as_array()
        .expect("apps")
        .iter()
        .filter(|a| {
            a["displayName"]
                .as_str()
                .is_some_and(|n| n.starts_with("t2t-operator migration"))
        })
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "one migration app: {:#?}",
        target["applications"]
    );
    assert_eq!(ours[0]["appId"], app_id.as_str());
    let rels_t: Vec<&Value> = target["organizationRelationships"]
        .as_array()
        .expect("rels")
        .iter()
        .filter(|r| r["domainNames"].to_string().contains(src.as_str()))
        .collect();
    assert_eq!(
        rels_t.len(),
        1,
        "{:#?}",
        target["organizationRelationships"]
    );
    assert!(
        rels_t[0]["mailboxMoveCapability"]
            .to_string()
            .contains("Inbound")
    );
    let rels_s: Vec<&Value> = source["organizationRelationships"]
        .as_array()
        .expect("rels")
        .iter()
        .filter(|r| r["domainNames"].to_string().contains(tgt.as_str()))
        .collect();
    assert_eq!(
        rels_s.len(),
        1,
        "{:#?}",
        source["organizationRelationships"]
    );
    assert!(
        rels_s[0]["mailboxMoveCapability"]
            .to_string()
            .contains("RemoteOutbound")
    );
    assert_eq!(
        rels_s[0]["oauthApplicationId"]
            .as_str()
            .map(str::to_lowercase),
        Some(app_id.to_lowercase())
    );
    let groups: Vec<&Value> = source["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|g| g["name"] == "T2T-Migration-Scope")
        .collect();
    assert_eq!(groups.len(), 1);
    assert_eq!(source["organizationCustomizationEnabled"], true);
    assert_eq!(target["organizationCustomizationEnabled"], true);
    let eps = target["migrationEndpoints"].as_array().expect("eps");
    assert_eq!(eps.len(), 1, "{eps:#?}");
    assert_eq!(
        eps[0]["applicationId"].as_str().map(str::to_lowercase),
        Some(app_id.to_lowercase())
    );
    assert_eq!(eps[0]["remoteTenant"], "contoso.onmicrosoft.com");
    // The consented app in the source has the Mailbox.Migration role on Exchange.
    let sp = source["servicePrincipals"]
        .as_array()
        .expect("sps")
        .iter()
        .find(|s| s["appId"].as_str().map(str::to_lowercase) == Some(app_id.to_lowercase()))
        .cloned()
        .expect("source SP of the app");
    assert!(
        sp["roles"]["exchange"]
            .to_string()
            .contains("Mailbox.Migration"),
        "{sp}"
    );

    // A Ready pair makes no tenant writes on later passes, and unchanged passes write no status.
    let writes_before = tenant_writes(&env);
    let reconciles_before = reconciles(&env);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), NS);
    let events_before = events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .len();
    let pair_rv = p.resource_version();
    let ep_rv = endpoints
        .get("contoso")
        .await
        .expect("ep")
        .resource_version();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        reconciles(&env) >= reconciles_before + 4,
        "resyncs ran: {} -> {}",
        reconciles_before,
        reconciles(&env)
    );
    assert_eq!(
        tenant_writes(&env),
        writes_before,
        "no tenant writes per resync"
    );
    assert_eq!(
        events
            .list(&Default::default())
            .await
            .expect("events")
            .items
            .len(),
        events_before,
        "events only on transitions"
    );
    let e = endpoints.get("contoso").await.expect("ep");
    assert!(is_true(
        &e.status.as_ref().expect("st").conditions,
        types::AVAILABLE
    ));
    assert_eq!(e.resource_version(), ep_rv, "no endpoint status churn");
    assert_eq!(
        pairs
            .get("contoso-to-fabrikam")
            .await
            .expect("pair")
            .resource_version(),
        pair_rv,
        "no pair status churn"
    );
    assert_eq!(dump(&env, tgt).await, target, "target unchanged");
    env.shutdown().await;
}
