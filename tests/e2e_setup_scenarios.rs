//! End to end scenarios of tenant setup, through the real protocols (emulated cluster, simulated
//! tenants, the operator's controllers): adoption of half-prepared tenants, split administration,
//! drift repair, bad credentials, deletion policies, crashes at every step, faults, suspend and
//! on-demand reconciles. Each asserts what a user would look at: conditions, events and the
//! objects in the tenants.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use t2t_operator::api::conditions::{find, is_true, reasons, types};
use t2t_operator::api::*;
use t2t_operator::dev::{DevEnv, DevOptions, example_pair};
use t2t_operator::sim::Fixture;
use t2t_operator::sim::testkit::EXCHANGE_SCOPE;

const NS: &str = "migration";
const PAIR: &str = "contoso-to-fabrikam";
const EP: &str = "contoso";
const SCOPE: &str = "T2T-Migration-Scope";

type Tenants = Vec<(String, String, String, String)>;

/// An environment with short intervals so a scenario takes seconds.
async fn env_with(idle_resync: Duration) -> DevEnv {
    let fixture = Fixture::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tenants.yaml"
    )))
    .expect("fixture");
    let mut opts = DevOptions::new(fixture);
    opts.operator.active_poll = Duration::from_millis(500);
    opts.operator.idle_resync = idle_resync;
    opts.operator.retry_base = Duration::from_millis(300);
    opts.operator.create_grace = Duration::from_secs(3);
    DevEnv::start(opts).await.expect("dev env")
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

async fn sim_post(env: &DevEnv, path: &str, body: Value) -> Value {
    let c = env.sim.http_client().expect("client");
    let r = c
        .request(
            if path == "/_sim/faults" {
                reqwest::Method::PUT
            } else {
                reqwest::Method::POST
            },
            format!("{}{path}", env.sim.base_url()),
        )
        .json(&body)
        .send()
        .await
        .expect("sim control");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

/// Runs a cmdlet as the tenant's admin (a person at the console); returns the parsed body.
async fn admin(env: &DevEnv, tenant: &str, cmdlet: &str, params: Value) -> Value {
    let token = env
        .sim
        .admin_token(tenant, EXCHANGE_SCOPE)
        .await
        .expect("admin token");
    let (status, body) = env
        .sim
        .invoke(&token, tenant, cmdlet, params)
        .await
        .expect("invoke");
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(
        (200..300).contains(&status),
        "{cmdlet} answered {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}: {last}");
}

fn conditions_of(p: &TenantPair) -> Vec<Condition> {
    p.status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default()
}

fn ready_of(c: &[Condition]) -> String {
    find(c, types::READY)
        .map(|c| format!("{:?}/{}: {}", c.status, c.reason, c.message))
        .unwrap_or_else(|| "no Ready".into())
}

async fn wait_pair(
    pairs: &Api<TenantPair>,
    name: &str,
    what: &str,
    f: impl Fn(&TenantPair) -> bool,
) {
    wait_for(what, Duration::from_secs(60), || async {
        let p = pairs.get(name).await.map_err(|e| e.to_string())?;
        if f(&p) {
            Ok(true)
        } else {
            Err(format!(
                "Ready: {} conditions: {:?}",
                ready_of(&conditions_of(&p)),
                conditions_of(&p)
                    .iter()
                    .map(|c| format!("{}={:?}/{}", c.type_, c.status, c.reason))
                    .collect::<Vec<_>>()
            ))
        }
    })
    .await;
}

async fn wait_ready(env: &DevEnv, with_endpoint: bool) {
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    wait_for(
        "the pair (and the endpoint) to be Ready",
        Duration::from_secs(90),
        || async {
            let p = pairs.get(PAIR).await.map_err(|e| e.to_string())?;
            let pc = conditions_of(&p);
            let ec = if with_endpoint {
                endpoints
                    .get(EP)
                    .await
                    .map_err(|e| e.to_string())?
                    .status
                    .map(|s| s.conditions)
                    .unwrap_or_default()
            } else {
                vec![]
            };
            if is_true(&pc, types::READY) && (!with_endpoint || is_true(&ec, types::READY)) {
                Ok(true)
            } else {
                Err(format!("pair {} endpoint {}", ready_of(&pc), ready_of(&ec)))
            }
        },
    )
    .await;
}

fn endpoint_spec(policy: DeletionPolicy) -> MigrationEndpointSpec {
    MigrationEndpointSpec {
        tenant_pair_ref: LocalObjectReference { name: PAIR.into() },
        exchange_name: None,
        remote_server: "outlook.office.com".into(),
        max_concurrent_migrations: Some(50),
        max_concurrent_incremental_syncs: Some(20),
        direction: EndpointDirection::Forward,
        deletion_policy: policy,
        suspend: false,
    }
}

async fn create_pair(env: &DevEnv, spec: TenantPairSpec) {
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    pairs
        .create(&PostParams::default(), &TenantPair::new(PAIR, spec))
        .await
        .expect("create pair");
}

async fn create_endpoint(env: &DevEnv, policy: DeletionPolicy) {
    let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    endpoints
        .create(
            &PostParams::default(),
            &MigrationEndpoint::new(EP, endpoint_spec(policy)),
        )
        .await
        .expect("create endpoint");
}

/// Tenant writes the operator sent so far (every API call that is not a read), from its metrics.
fn tenant_writes(env: &DevEnv) -> u64 {
    writes_matching(env, |_| true)
}

/// Writes the tenants accepted (a refused write changes nothing).
fn accepted_writes(env: &DevEnv) -> u64 {
    writes_matching(env, |l| l.contains("code=\"200\""))
}

fn writes_matching(env: &DevEnv, keep: impl Fn(&str) -> bool) -> u64 {
    env.metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("t2t_tenant_requests_total{") && keep(l))
        .filter(|l| !l.contains("api=\"token\""))
        .filter(|l| {
            let method = l
                .split("method=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("");
            !(method == "GET" || method.starts_with("Get") || method.starts_with("Test"))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

async fn events(env: &DevEnv, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(env.client.clone(), NS);
    let mut out: Vec<(String, String, String)> = api
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .and_then(|r| r.name.as_deref())
                .is_some_and(|n| n == name)
        })
        .map(|e| {
            (
                e.metadata
                    .creation_timestamp
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, r, n)| (r, n)).collect()
}

async fn wait_event(env: &DevEnv, name: &str, reason: &str, note_has: &str) -> String {
    let mut found = String::new();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some((_, n)) = events(env, name)
            .await
            .into_iter()
            .find(|(r, n)| r == reason && n.contains(note_has))
        {
            found = n;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !found.is_empty(),
        "no {reason} event mentioning {note_has:?} on {name}: {:#?}",
        events(env, name).await
    );
    found
}

/// How many of each thing the tenants hold (exactly-once checks).
#[derive(Debug, PartialEq)]
struct Counts {
    apps: usize,
    target_relationships: usize,
    source_relationships: usize,
    scope_groups: usize,
    endpoints: usize,
}

async fn counts(env: &DevEnv, tenants: &Tenants) -> Counts {
    let (src, tgt) = (&tenants[0].0, &tenants[1].0);
    let target = dump(env, tgt).await;
    let source = dump(env, src).await;
    let n = |v: &Value, key: &str, f: &dyn Fn(&Value) -> bool| {
        v[key]
            .as_array()
            .map(|a| a.iter().filter(|x| f(x)).count())
            .unwrap_or(0)
    };
    Counts {
        apps: n(&target, "applications", &|a| {
            a["displayName"]
                .as_str()
                .is_some_and(|d| d.starts_with("t2t-operator migration"))
        }) + n(&source, "applications", &|a| {
            a["displayName"]
                .as_str()
                .is_some_and(|d| d.starts_with("t2t-operator migration"))
        }),
        target_relationships: n(&target, "organizationRelationships", &|r| {
            r["domainNames"].to_string().contains(src.as_str())
        }),
        source_relationships: n(&source, "organizationRelationships", &|r| {
            r["domainNames"].to_string().contains(tgt.as_str())
        }),
        scope_groups: n(&source, "groups", &|g| g["name"] == SCOPE),
        endpoints: n(&target, "migrationEndpoints", &|_| true),
    }
}

/// Service principals of the pair's migration app in (source, target): consent exactly once.
async fn app_service_principals(env: &DevEnv, tenants: &Tenants) -> (usize, usize) {
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    let app = pairs
        .get(PAIR)
        .await
        .expect("pair")
        .status
        .and_then(|s| s.migration_app)
        .and_then(|a| a.application_id)
        .expect("app id")
        .to_lowercase();
    let mut out = [0usize; 2];
    for (i, t) in [&tenants[0].0, &tenants[1].0].into_iter().enumerate() {
        out[i] = dump(env, t).await["servicePrincipals"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|s| s["appId"].as_str().map(str::to_lowercase) == Some(app.clone()))
                    .count()
            })
            .unwrap_or(0);
    }
    (out[0], out[1])
}

const ONCE: Counts = Counts {
    apps: 1,
    target_relationships: 1,
    source_relationships: 1,
    scope_groups: 1,
    endpoints: 1,
};

fn rel<'a>(dump: &'a Value, partner: &str) -> &'a Value {
    dump["organizationRelationships"]
        .as_array()
        .expect("rels")
        .iter()
        .find(|r| r["domainNames"].to_string().contains(partner))
        .expect("relationship with the partner")
}

/// 1. A target that already has a relationship naming the source (another name, `Outbound`) and
/// a source that already has the scope group: both are adopted, nothing is duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partially_configured_tenants_are_adopted_not_duplicated() {
    let mut env = env_with(Duration::from_secs(60)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let (src, tgt) = (tenants[0].0.clone(), tenants[1].0.clone());
    // The target admin prepared part of it by hand.
    admin(&env, &tgt, "Enable-OrganizationCustomization", json!({})).await;
    admin(
        &env,
        &tgt,
        "New-OrganizationRelationship",
        json!({"Name": "Contoso partnership", "DomainNames": [src], "Enabled": true,
               "MailboxMoveEnabled": true, "MailboxMoveCapability": "Outbound"}),
    )
    .await;
    let group_before = dump(&env, &src).await["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == SCOPE)
        .cloned()
        .expect("the source already has the scope group");

    env.start_operator();
    create_pair(&env, example_pair(&env, &tenants)).await;
    create_endpoint(&env, DeletionPolicy::Orphan).await;
    wait_ready(&env, true).await;

    assert_eq!(counts(&env, &tenants).await, ONCE);
    let target = dump(&env, &tgt).await;
    let r = rel(&target, &src);
    assert_eq!(
        r["name"], "Contoso partnership",
        "the existing one was updated"
    );
    assert!(
        r["mailboxMoveCapability"].to_string().contains("Inbound"),
        "{r}"
    );
    assert!(
        !r["mailboxMoveCapability"]
            .to_string()
            .contains("Outbound\""),
        "{r}"
    );
    let group_after = dump(&env, &src).await["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == SCOPE)
        .cloned()
        .expect("group");
    assert_eq!(
        group_after["guid"], group_before["guid"],
        "the group was reused"
    );
    assert_eq!(group_after["members"], group_before["members"]);

    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    let st = pairs.get(PAIR).await.expect("pair").status.expect("status");
    let t = st.target.expect("target observation");
    assert!(
        !t.organization_relationship_created,
        "adopted, not created: Delete must leave it"
    );
    assert_eq!(
        t.organization_relationship.as_deref(),
        Some("Contoso partnership")
    );
    assert!(!st.source.expect("source").scope_group_created);
    let note = wait_event(
        &env,
        PAIR,
        "OrganizationRelationshipUpdated",
        "Contoso partnership",
    )
    .await;
    assert!(
        note.contains("MailboxMoveCapability Outbound -> Inbound"),
        "{note}"
    );
    env.shutdown().await;
}

/// 2. Without source credentials the pair publishes the source admin's steps, never writes to the
/// source, and turns Ready once the admin has done them (proved by the endpoint's test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_administration_publishes_the_source_steps_and_completes_when_done() {
    let mut env = env_with(Duration::from_secs(60)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let (src, tgt) = (tenants[0].0.clone(), tenants[1].0.clone());
    env.start_operator();
    let mut spec = example_pair(&env, &tenants);
    spec.source.credentials = None;
    spec.scope_group.name = "Movers".into();
    let source_before = dump(&env, &src).await;
    create_pair(&env, spec).await;
    create_endpoint(&env, DeletionPolicy::Orphan).await;

    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    wait_pair(&pairs, PAIR, "AwaitingSourceAdmin", |p| {
        find(&conditions_of(p), types::READY).is_some_and(|c| {
            c.reason == reasons::AWAITING_SOURCE_ADMIN && c.status == ConditionStatus::False
        }) && p
            .status
            .as_ref()
            .and_then(|s| s.migration_app.as_ref())
            .is_some_and(|a| a.application_id.is_some())
    })
    .await;
    let st = pairs.get(PAIR).await.expect("pair").status.expect("status");
    let app = st
        .migration_app
        .and_then(|a| a.application_id)
        .expect("app id");
    let steps = st.source_admin_steps.expect("sourceAdminSteps");
    assert!(
        steps.consent_url.contains(&format!("client_id={app}"))
            && steps.consent_url.contains("contoso.onmicrosoft.com")
            && steps.consent_url.contains("adminconsent"),
        "{}",
        steps.consent_url
    );
    assert_eq!(steps.scope_group, "Movers");
    let all = steps.commands.join("\n");
    assert!(
        all.contains("New-DistributionGroup -Type Security -Name 'Movers'"),
        "{all}"
    );
    assert!(
        steps
            .commands
            .iter()
            .any(|c| c.contains("New-OrganizationRelationship")
                && c.contains("-MailboxMoveCapability RemoteOutbound")
                && c.contains(&format!("-DomainNames {tgt}"))
                && c.contains(&format!("-OAuthApplicationId {app}"))
                && c.contains("-MailboxMovePublishedScopes 'Movers'")),
        "{all}"
    );
    // The endpoint waits for consent instead of stalling.
    let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    let e = endpoints.get(EP).await.expect("ep");
    let ec = e.status.map(|s| s.conditions).unwrap_or_default();
    assert!(find(&ec, types::STALLED).is_none(), "{ec:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        dump(&env, &src).await,
        source_before,
        "no write in the source tenant"
    );

    // The source admin follows the steps.
    sim_post(
        &env,
        "/_sim/consent",
        json!({"tenant": src, "clientId": app}),
    )
    .await;
    admin(&env, &src, "Enable-OrganizationCustomization", json!({})).await;
    admin(
        &env,
        &src,
        "New-DistributionGroup",
        json!({"Type": "Security", "Name": "Movers"}),
    )
    .await;
    admin(
        &env,
        &src,
        "Add-DistributionGroupMember",
        json!({"Identity": "Movers", "Member": "alice@contoso.com"}),
    )
    .await;
    admin(
        &env,
        &src,
        "New-OrganizationRelationship",
        json!({"Name": "to fabrikam", "DomainNames": [tgt], "Enabled": true, "MailboxMoveEnabled": true,
               "MailboxMoveCapability": "RemoteOutbound", "OAuthApplicationId": app,
               "MailboxMovePublishedScopes": ["Movers"]}),
    )
    .await;
    wait_ready(&env, true).await;
    let e = endpoints.get(EP).await.expect("ep");
    assert!(is_true(&e.status.expect("st").conditions, types::AVAILABLE));
    let p = pairs.get(PAIR).await.expect("pair");
    assert!(p.status.as_ref().and_then(|s| s.source.as_ref()).is_none());
    let c = counts(&env, &tenants).await;
    assert_eq!(
        (
            c.apps,
            c.target_relationships,
            c.source_relationships,
            c.endpoints
        ),
        (1, 1, 1, 1)
    );
    env.shutdown().await;
}

/// 3. After Ready, an admin changes the source relationship, deletes the scope group and removes
/// the endpoint: each is restored and an event says what had drifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_with_an_event_naming_what_changed() {
    let mut env = env_with(Duration::from_secs(1)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let (src, tgt) = (tenants[0].0.clone(), tenants[1].0.clone());
    env.start_operator();
    create_pair(&env, example_pair(&env, &tenants)).await;
    create_endpoint(&env, DeletionPolicy::Orphan).await;
    wait_ready(&env, true).await;

    // The source relationship loses RemoteOutbound.
    let identity = rel(&dump(&env, &src).await, &tgt)["name"]
        .as_str()
        .expect("name")
        .to_string();
    admin(
        &env,
        &src,
        "Set-OrganizationRelationship",
        json!({"Identity": identity, "MailboxMoveCapability": "Inbound"}),
    )
    .await;
    wait_for(
        "the capability to be restored",
        Duration::from_secs(30),
        || async {
            let c = rel(&dump(&env, &src).await, &tgt)["mailboxMoveCapability"].to_string();
            Ok(c.contains("RemoteOutbound")).and_then(|ok| if ok { Ok(true) } else { Err(c) })
        },
    )
    .await;
    let note = wait_event(&env, PAIR, "DriftRepaired", "MailboxMoveCapability").await;
    assert!(note.contains("Inbound -> RemoteOutbound"), "{note}");
    wait_ready(&env, true).await;

    // The scope group is deleted: recreated, and the relationship publishes the new group.
    admin(
        &env,
        &src,
        "Remove-DistributionGroup",
        json!({"Identity": SCOPE}),
    )
    .await;
    wait_for(
        "the scope group to be recreated",
        Duration::from_secs(30),
        || async { Ok(counts(&env, &tenants).await.scope_groups == 1) },
    )
    .await;
    let note = wait_event(&env, PAIR, "DriftRepaired", SCOPE).await;
    assert!(note.contains("was missing in the source tenant"), "{note}");
    wait_ready(&env, true).await;
    let source = dump(&env, &src).await;
    let group = source["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == SCOPE))
        .expect("group")
        .clone();
    // The simulator keeps published scopes as group guids (as Exchange links the object).
    assert_eq!(
        rel(&source, &tgt)["mailboxMovePublishedScopes"],
        json!([group["guid"]]),
        "the relationship publishes the recreated group only: {group}"
    );

    // The endpoint is removed.
    admin(
        &env,
        &tgt,
        "Remove-MigrationEndpoint",
        json!({"Identity": EP, "Confirm": false}),
    )
    .await;
    wait_for(
        "the endpoint to be recreated",
        Duration::from_secs(30),
        || async { Ok(counts(&env, &tenants).await.endpoints == 1) },
    )
    .await;
    wait_event(&env, EP, "DriftRepaired", "was missing in Exchange").await;
    wait_ready(&env, true).await;
    assert_eq!(counts(&env, &tenants).await, ONCE);
    env.shutdown().await;
}

/// 3b. Secret rotation: a created secret nearing expiry is replaced, the endpoint's credential is
/// updated to the new one, and only then is the old secret removed from the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_nearing_expiry_is_rotated_and_the_old_one_removed_after_the_endpoint_switched() {
    let mut env = env_with(Duration::from_secs(1)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let tgt = tenants[1].0.clone();
    env.start_operator();
    create_pair(&env, example_pair(&env, &tenants)).await;
    create_endpoint(&env, DeletionPolicy::Orphan).await;
    wait_ready(&env, true).await;

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let secret_name = format!("{PAIR}-migration-app");
    let key_of = |s: &Secret| {
        s.data
            .as_ref()
            .and_then(|d| d.get("keyId"))
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
            .unwrap_or_default()
    };
    let passwords = |dump: &Value| -> Vec<String> {
        dump["applications"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                a["displayName"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("t2t-operator migration"))
            })
            .flat_map(|a| {
                a["passwordCredentials"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|p| p["keyId"].as_str().map(str::to_lowercase))
            .collect()
    };
    let old_key = key_of(&secrets.get(&secret_name).await.expect("secret")).to_lowercase();
    assert_eq!(passwords(&dump(&env, &tgt).await), vec![old_key.clone()]);

    // The stored secret now expires tomorrow (inside the 30-day rotation window).
    let soon = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    secrets
        .patch(
            &secret_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"expiresAt": soon}})),
        )
        .await
        .expect("expiresAt");
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    pairs
        .patch(
            PAIR,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: "rotate"}}}),
            ),
        )
        .await
        .expect("annotate");

    wait_for(
        "a new secret stored, the endpoint on it, and the old one removed",
        Duration::from_secs(60),
        || async {
            let new_key = key_of(&secrets.get(&secret_name).await.expect("secret")).to_lowercase();
            let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
            let ep_key = endpoints
                .get(EP)
                .await
                .ok()
                .and_then(|e| e.status?.credential_key_id)
                .unwrap_or_default()
                .to_lowercase();
            let keys = passwords(&dump(&env, &tgt).await);
            let done = new_key != old_key && ep_key == new_key && keys == vec![new_key.clone()];
            if done {
                Ok(true)
            } else {
                Err(format!("stored {new_key}, endpoint {ep_key}, app {keys:?}"))
            }
        },
    )
    .await;
    wait_event(&env, PAIR, "AppSecretRotated", "").await;
    wait_event(&env, EP, "CredentialRotated", "").await;
    let note = wait_event(&env, PAIR, "OldAppSecretRemoved", &old_key).await;
    assert!(note.contains("every endpoint uses the new one"), "{note}");
    // The endpoint still authenticates (Exchange checks the secret against the app).
    let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    endpoints
        .patch(
            EP,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: "retest"}}}),
            ),
        )
        .await
        .expect("annotate endpoint");
    wait_for(
        "the endpoint re-tested Available",
        Duration::from_secs(30),
        || async {
            let e = endpoints.get(EP).await.expect("endpoint");
            let s = e.status.unwrap_or_default();
            Ok(s.last_handled_reconcile_at.as_deref() == Some("retest")
                && is_true(&s.conditions, types::AVAILABLE))
        },
    )
    .await;
    wait_ready(&env, true).await;
    assert_eq!(counts(&env, &tenants).await, ONCE);
    env.shutdown().await;
}

/// Calls Graph as the tenant's admin (a person in the portal); returns the parsed body.
async fn graph_admin(env: &DevEnv, tenant: &str, path: &str, body: Value) -> Value {
    let token = env
        .sim
        .admin_token(tenant, t2t_operator::sim::testkit::GRAPH_SCOPE)
        .await
        .expect("admin token");
    let c = env.sim.http_client().expect("client");
    let r = c
        .post(format!("{}/v1.0{path}", env.sim.base_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("graph");
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// 3c. An adopted app whose client secret expires within the window: the pair stays Ready, says
/// which Secret to replace and by when (condition + one Warning event), and writes nothing; a
/// fresh secret in the Secret clears the warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_adopted_secret_is_reported_with_the_fix() {
    let mut env = env_with(Duration::from_secs(1)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let tgt = tenants[1].0.clone();
    env.start_operator();
    // The admin registered the app and a secret that expires in 10 days.
    let app = graph_admin(
        &env,
        &tgt,
        "/applications",
        json!({"displayName": "Contoso migration (admin)", "signInAudience": "AzureADMultipleOrgs",
               "web": {"redirectUris": ["https://office.com"]}}),
    )
    .await;
    let (object_id, app_id) = (
        app["id"].as_str().expect("id").to_string(),
        app["appId"].as_str().expect("appId").to_string(),
    );
    let add = |days: i64| {
        let env = &env;
        let (tgt, object_id) = (tgt.clone(), object_id.clone());
        async move {
            let end = (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
            graph_admin(
                env,
                &tgt,
                &format!("/applications/{object_id}/addPassword"),
                json!({"passwordCredential": {"displayName": "admin", "endDateTime": end}}),
            )
            .await["secretText"]
                .as_str()
                .expect("secretText")
                .to_string()
        }
    };
    let first = add(10).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let put = |text: String| {
        let secrets = secrets.clone();
        async move {
            secrets
                .patch(
                    "adopted-app",
                    &PatchParams::apply("test").force(),
                    &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "adopted-app"}, "stringData": {"clientSecret": text}})),
                )
                .await
                .expect("secret");
        }
    };
    put(first).await;
    let mut spec = example_pair(&env, &tenants);
    spec.migration_app = MigrationAppSpec {
        mode: MigrationAppMode::Adopt,
        application_id: Some(app_id.clone()),
        client_secret: Some(SecretKeyReference {
            name: "adopted-app".into(),
            key: "clientSecret".into(),
        }),
        ..Default::default()
    };
    create_pair(&env, spec).await;
    create_endpoint(&env, DeletionPolicy::Orphan).await;
    wait_ready(&env, true).await;
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    let app_cond = |p: &TenantPair| find(&conditions_of(p), types::MIGRATION_APP_READY).cloned();
    wait_pair(&pairs, PAIR, "MigrationAppReady SecretExpiring", |p| {
        app_cond(p).is_some_and(|c| c.reason == reasons::SECRET_EXPIRING)
    })
    .await;
    let p = pairs.get(PAIR).await.expect("pair");
    let c = app_cond(&p).expect("condition");
    assert_eq!(c.status, ConditionStatus::True, "the app still works");
    assert!(
        c.message
            .contains("(Secret adopted-app key clientSecret) expires")
            && c.message
                .contains("add a new client secret to the app registration"),
        "{}",
        c.message
    );
    let expires = p
        .status
        .as_ref()
        .and_then(|s| s.migration_app.as_ref())
        .and_then(|a| a.secret_expires_at)
        .expect("secretExpiresAt");
    let days = (expires - chrono::Utc::now()).num_days();
    assert!((9..=10).contains(&days), "{expires}");
    wait_event(&env, PAIR, "AppSecretExpiring", "adopted-app").await;
    let writes = tenant_writes(&env);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        tenant_writes(&env),
        writes,
        "an adopted app is never touched"
    );
    assert_eq!(
        events(&env, PAIR)
            .await
            .iter()
            .filter(|(r, _)| r == "AppSecretExpiring")
            .count(),
        1,
        "one warning, not one per pass"
    );

    // The admin adds a secret valid for a year and updates the Secret: the warning clears.
    let second = add(365).await;
    put(second).await;
    wait_pair(&pairs, PAIR, "MigrationAppReady Succeeded", |p| {
        app_cond(p).is_some_and(|c| c.reason == reasons::SUCCEEDED)
    })
    .await;
    env.shutdown().await;
}

/// 4. A wrong client secret stalls the pair with a message naming the Secret and the fix, an
/// event, and no tenant write; updating the Secret recovers without a restart. A missing
/// Secret stalls with SecretNotFound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_stall_without_tenant_writes_and_a_fixed_secret_recovers() {
    let mut env = env_with(Duration::from_secs(60)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let (src, tgt) = (tenants[0].0.clone(), tenants[1].0.clone());
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let target_secret = tenants[1].3.clone();
    let good = env
        .sim
        .tenants()
        .into_iter()
        .find(|t| t.id.to_string() == tgt)
        .and_then(|t| t.client_secret)
        .expect("secret");
    let set_secret = |value: String| {
        let secrets = secrets.clone();
        let name = target_secret.clone();
        async move {
            secrets
                .patch(
                    &name,
                    &PatchParams::apply("test").force(),
                    &Patch::Apply(
                        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                        "stringData": {"clientSecret": value}}),
                    ),
                )
                .await
                .expect("secret");
        }
    };
    set_secret("not-the-secret".into()).await;
    let (s0, t0) = (dump(&env, &src).await, dump(&env, &tgt).await);
    env.start_operator();
    create_pair(&env, example_pair(&env, &tenants)).await;

    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    wait_pair(&pairs, PAIR, "Stalled CredentialsRejected", |p| {
        find(&conditions_of(p), types::STALLED)
            .is_some_and(|c| c.reason == reasons::CREDENTIALS_REJECTED)
    })
    .await;
    let p = pairs.get(PAIR).await.expect("pair");
    let c = conditions_of(&p);
    let stalled = find(&c, types::STALLED).expect("stalled");
    assert!(
        stalled
            .message
            .contains(&format!("Secret {NS}/{target_secret}"))
            && stalled.message.contains("To fix"),
        "{}",
        stalled.message
    );
    assert_eq!(
        find(&c, types::READY).expect("ready").reason,
        reasons::CREDENTIALS_REJECTED
    );
    assert!(!is_true(&c, types::CREDENTIALS_VALID));
    wait_event(&env, PAIR, "CredentialsRejected", &target_secret).await;
    assert_eq!(tenant_writes(&env), 0);
    assert_eq!(dump(&env, &src).await, s0);
    assert_eq!(dump(&env, &tgt).await, t0);
    // Repeated passes do not churn the status.
    let rv = p.resource_version();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pairs.get(PAIR).await.expect("pair").resource_version(), rv);

    // The admin fixes the Secret: no restart needed.
    set_secret(good).await;
    wait_ready(&env, false).await;
    let p = pairs.get(PAIR).await.expect("pair");
    assert!(find(&conditions_of(&p), types::STALLED).is_none());
    assert_eq!(
        p.status.expect("st").retry.failed_attempts,
        0,
        "backoff reset on success"
    );

    // A missing Secret.
    let mut spec = example_pair(&env, &tenants);
    spec.target
        .credentials
        .as_mut()
        .expect("creds")
        .client_secret = Some(SecretKeyReference {
        name: "does-not-exist".into(),
        key: "clientSecret".into(),
    });
    pairs
        .create(&PostParams::default(), &TenantPair::new("missing", spec))
        .await
        .expect("create");
    wait_pair(&pairs, "missing", "Stalled SecretNotFound", |p| {
        find(&conditions_of(p), types::STALLED).is_some_and(|c| {
            c.reason == reasons::SECRET_NOT_FOUND && c.message.contains("does-not-exist")
        })
    })
    .await;
    env.shutdown().await;
}

/// 5. Deletion: Orphan leaves the tenants alone; Delete removes only what the operator created;
/// a suspended object is finalized without tenant writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_follows_the_policy() {
    // Delete: fresh tenants, everything the operator created goes, nothing else.
    let mut env = env_with(Duration::from_secs(60)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let (src, tgt) = (tenants[0].0.clone(), tenants[1].0.clone());
    env.start_operator();
    let mut spec = example_pair(&env, &tenants);
    spec.deletion_policy = DeletionPolicy::Delete;
    create_pair(&env, spec).await;
    create_endpoint(&env, DeletionPolicy::Delete).await;
    wait_ready(&env, true).await;
    let (s0, t0) = (dump(&env, &src).await, dump(&env, &tgt).await);
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    // The pair deleted first waits for its endpoint (which authenticates with the pair's app),
    // touching nothing in the tenants meanwhile.
    let writes = tenant_writes(&env);
    pairs
        .delete(PAIR, &DeleteParams::default())
        .await
        .expect("delete pair first");
    let note = wait_event(&env, PAIR, "WaitingForDependents", EP).await;
    assert!(note.contains("deletionPolicy: Orphan"), "{note}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(pairs.get_opt(PAIR).await.expect("get").is_some());
    assert_eq!(tenant_writes(&env), writes, "no tenant write while waiting");
    endpoints
        .delete(EP, &DeleteParams::default())
        .await
        .expect("delete ep");
    wait_for(
        "the endpoint to be finalized",
        Duration::from_secs(30),
        || async {
            Ok(endpoints
                .get_opt(EP)
                .await
                .map_err(|e| e.to_string())?
                .is_none())
        },
    )
    .await;
    // Everything the operator created goes: relationships, the migration app, the endpoint.
    wait_for(
        "the pair to be finalized",
        Duration::from_secs(60),
        || async {
            Ok(pairs
                .get_opt(PAIR)
                .await
                .map_err(|e| e.to_string())?
                .is_none())
        },
    )
    .await;
    let c = counts(&env, &tenants).await;
    assert_eq!(
        (
            c.target_relationships,
            c.source_relationships,
            c.scope_groups,
            c.endpoints
        ),
        (0, 0, 1, 0),
        "created relationships and the endpoint are removed; the pre-existing scope group stays"
    );
    let t_after = dump(&env, &tgt).await;
    assert!(
        !t_after["applications"]
            .to_string()
            .contains("t2t-operator migration"),
        "the migration app the operator created is deleted: {}",
        t_after["applications"]
    );
    let (s1, t1) = (dump(&env, &src).await, dump(&env, &tgt).await);
    for key in ["users", "recipients", "groups"] {
        assert_eq!(s1[key], s0[key], "source {key} untouched");
        assert_eq!(t1[key], t0[key], "target {key} untouched");
    }
    wait_event(&env, PAIR, "CleanedUp", "migration app").await;
    wait_event(&env, EP, "EndpointRemoved", EP).await;
    env.shutdown().await;

    // Orphan (the default) and suspended Delete: the finalizer goes, the tenants stay as they are.
    let mut env = env_with(Duration::from_secs(60)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let (src, tgt) = (tenants[0].0.clone(), tenants[1].0.clone());
    env.start_operator();
    create_pair(&env, example_pair(&env, &tenants)).await;
    create_endpoint(&env, DeletionPolicy::Orphan).await;
    wait_ready(&env, true).await;
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    let (s0, t0) = (dump(&env, &src).await, dump(&env, &tgt).await);
    let writes = tenant_writes(&env);
    endpoints
        .delete(EP, &DeleteParams::default())
        .await
        .expect("delete ep");
    pairs
        .delete(PAIR, &DeleteParams::default())
        .await
        .expect("delete pair");
    wait_for("both to be finalized", Duration::from_secs(30), || async {
        Ok(pairs
            .get_opt(PAIR)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
            && endpoints
                .get_opt(EP)
                .await
                .map_err(|e| e.to_string())?
                .is_none())
    })
    .await;
    assert_eq!(counts(&env, &tenants).await, ONCE);
    assert_eq!(tenant_writes(&env), writes);
    assert_eq!(dump(&env, &src).await, s0);
    assert_eq!(dump(&env, &tgt).await, t0);
    wait_event(&env, PAIR, "Orphaned", "left").await;

    // A suspended pair with deletionPolicy Delete.
    let mut spec = example_pair(&env, &tenants);
    spec.deletion_policy = DeletionPolicy::Delete;
    spec.suspend = true;
    pairs
        .create(&PostParams::default(), &TenantPair::new("paused", spec))
        .await
        .expect("create");
    wait_pair(&pairs, "paused", "Suspended", |p| {
        find(&conditions_of(p), types::READY).is_some_and(|c| c.reason == reasons::SUSPENDED)
    })
    .await;
    pairs
        .delete("paused", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(
        "the suspended pair to be finalized",
        Duration::from_secs(30),
        || async {
            Ok(pairs
                .get_opt("paused")
                .await
                .map_err(|e| e.to_string())?
                .is_none())
        },
    )
    .await;
    assert_eq!(tenant_writes(&env), writes, "no tenant write");
    assert_eq!(dump(&env, &src).await, s0);
    assert_eq!(dump(&env, &tgt).await, t0);
    wait_event(&env, "paused", "DeletedWithoutCleanup", "suspended").await;
    env.shutdown().await;
}

/// 6a. The operator is killed right after each tenant write of the setup and restarted: it
/// converges with exactly one of everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_every_tenant_write_still_creates_everything_exactly_once() {
    let mut env = env_with(Duration::from_secs(60)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    create_pair(&env, example_pair(&env, &tenants)).await;
    create_endpoint(&env, DeletionPolicy::Orphan).await;
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    let endpoints: Api<MigrationEndpoint> = Api::namespaced(env.client.clone(), NS);
    let ready = || async {
        let p = pairs.get(PAIR).await.expect("pair");
        let e = endpoints.get(EP).await.expect("ep");
        is_true(&conditions_of(&p), types::READY)
            && is_true(
                &e.status.map(|s| s.conditions).unwrap_or_default(),
                types::READY,
            )
    };
    let mut kills = 0;
    loop {
        assert!(
            kills < 40,
            "no convergence after {kills} kills: {}\n{:#?}",
            env.metrics
                .encode()
                .lines()
                .filter(|l| l.starts_with("t2t_tenant_requests_total{"))
                .collect::<Vec<_>>()
                .join("\n"),
            pairs.get(PAIR).await.expect("pair").status
        );
        let before = accepted_writes(&env);
        env.start_operator();
        // Kill as soon as one more write went out.
        let mut done = false;
        let t = std::time::Instant::now();
        while accepted_writes(&env) == before {
            if t.elapsed() > Duration::from_secs(5) {
                done = ready().await;
                if done {
                    break;
                }
            }
            if t.elapsed() > Duration::from_secs(20) {
                let p = pairs.get(PAIR).await.expect("pair");
                panic!(
                    "stuck after {kills} kills ({before} writes): {:#?}\napps: {:#}",
                    p.status,
                    dump(&env, &tenants[1].0).await["applications"]
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        env.kill_operator();
        if done {
            break;
        }
        kills += 1;
        eprintln!("killed after write {}", accepted_writes(&env));
    }
    assert!(
        kills >= 8,
        "the setup has at least 8 writes, killed after each: {kills}"
    );
    env.start_operator();
    wait_ready(&env, true).await;
    assert_eq!(counts(&env, &tenants).await, ONCE);
    assert_eq!(app_service_principals(&env, &tenants).await, (1, 1));
    let st = pairs.get(PAIR).await.expect("pair").status.expect("st");
    assert!(
        st.migration_app
            .as_ref()
            .is_some_and(|a| a.created && a.create_pending_since.is_none())
    );
    assert!(
        st.target
            .as_ref()
            .is_some_and(|t| t.organization_relationship_created)
    );
    assert!(
        st.source
            .as_ref()
            .is_some_and(|t| t.organization_relationship_created)
    );
    let e = endpoints.get(EP).await.expect("ep");
    assert!(
        e.status.is_some_and(|s| s.created),
        "the endpoint is known to be ours"
    );
    env.shutdown().await;
}

/// 6b. Throttling, 503s and connection resets on every API during setup: still exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_during_setup_still_create_everything_exactly_once() {
    let mut env = env_with(Duration::from_secs(60)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    sim_post(
        &env,
        "/_sim/faults",
        json!({"seed": 7, "rules": [{"api": "any", "throttleRate": 0.10, "retryAfterSeconds": 1,
            "errorRate": 0.05, "errorStatus": 503, "resetRate": 0.02}]}),
    )
    .await;
    env.start_operator();
    create_pair(&env, example_pair(&env, &tenants)).await;
    create_endpoint(&env, DeletionPolicy::Orphan).await;
    wait_ready(&env, true).await;
    let c = env.sim.http_client().expect("client");
    c.delete(format!("{}/_sim/faults", env.sim.base_url()))
        .send()
        .await
        .expect("clear faults");
    assert_eq!(counts(&env, &tenants).await, ONCE);
    assert_eq!(app_service_principals(&env, &tenants).await, (1, 1));
    assert!(
        env.metrics.encode().contains("t2t_tenant_throttled_total"),
        "faults were injected"
    );
    env.shutdown().await;
}

/// 7 + 8. Suspended: no tenant write while the status is observed (Ready reason Suspended);
/// resume proceeds. Then `t2t.dev/requested-at` triggers a pass and is echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_blocks_writes_resume_proceeds_and_requested_at_is_echoed() {
    let mut env = env_with(Duration::from_secs(300)).await;
    let tenants = env.seed_namespace(NS).await.expect("seed");
    let (src, tgt) = (tenants[0].0.clone(), tenants[1].0.clone());
    let (s0, t0) = (dump(&env, &src).await, dump(&env, &tgt).await);
    env.start_operator();
    let mut spec = example_pair(&env, &tenants);
    spec.suspend = true;
    create_pair(&env, spec).await;
    let pairs: Api<TenantPair> = Api::namespaced(env.client.clone(), NS);
    wait_pair(
        &pairs,
        PAIR,
        "Ready reason Suspended with observations",
        |p| {
            find(&conditions_of(p), types::READY).is_some_and(|c| c.reason == reasons::SUSPENDED)
                && p.status
                    .as_ref()
                    .is_some_and(|s| s.licenses.is_some() && s.target.is_some())
        },
    )
    .await;
    let p = pairs.get(PAIR).await.expect("pair");
    let ready = find(&conditions_of(&p), types::READY)
        .cloned()
        .expect("ready");
    assert_eq!(ready.status, ConditionStatus::False);
    assert!(ready.message.contains("pending"), "{}", ready.message);
    wait_event(&env, PAIR, "Suspended", "no tenant writes").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tenant_writes(&env), 0);
    assert_eq!(dump(&env, &src).await, s0);
    assert_eq!(dump(&env, &tgt).await, t0);

    pairs
        .patch(
            PAIR,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .expect("resume");
    wait_ready(&env, false).await;
    wait_event(&env, PAIR, "Resumed", "resume").await;
    let c = counts(&env, &tenants).await;
    assert_eq!(
        (c.apps, c.target_relationships, c.source_relationships),
        (1, 1, 1)
    );

    // Suspending a Ready pair keeps Ready True with reason Suspended.
    pairs
        .patch(
            PAIR,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .expect("suspend");
    wait_pair(&pairs, PAIR, "Ready True reason Suspended", |p| {
        find(&conditions_of(p), types::READY)
            .is_some_and(|c| c.reason == reasons::SUSPENDED && c.status == ConditionStatus::True)
    })
    .await;
    pairs
        .patch(
            PAIR,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .expect("resume");
    wait_pair(&pairs, PAIR, "Ready Succeeded", |p| {
        find(&conditions_of(p), types::READY).is_some_and(|c| c.reason == reasons::SUCCEEDED)
    })
    .await;

    // requested-at: the resync is 5 minutes, so only the annotation can trigger this pass.
    for token in ["2026-11-23T03:00:00Z", "second"] {
        pairs
            .patch(
                PAIR,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: token}}}),
                ),
            )
            .await
            .expect("annotate");
        wait_pair(&pairs, PAIR, "lastHandledReconcileAt", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(token)
        })
        .await;
    }
    env.shutdown().await;
}
