//! The published API: CRDs in `crds/` match the types, every field is documented, printer
//! columns point at real fields, and every CEL rule accepts what it should and rejects what it
//! should, with its readable message.

use kube::CustomResourceExt;
use kube::core::cel::Validator;
use serde_json::{Value, json};
use t2t_operator::api::{MigrationBatch, MigrationEndpoint, TenantPair};
use t2t_operator::crdgen;

fn schema_of<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .expect("json")
}

/// Runs the CEL rules of `K`'s CRD on raw JSON, as the API server does on create (`old` None) or
/// update. Returns every violation's message.
fn cel<K: CustomResourceExt>(obj: &Value, old: Option<&Value>) -> Vec<String> {
    match Validator::new().validate(&schema_of::<K>(), obj, old) {
        Ok(()) => vec![],
        Err(errs) => errs
            .as_slice()
            .iter()
            .map(|e| format!("{}: {} [{:?}]", e.field_path, e.message, e.kind))
            .collect(),
    }
}

fn assert_rejects(errs: &[String], needle: &str) {
    assert!(
        errs.iter().any(|e| e.contains(needle)),
        "expected an error containing {needle:?}, got {errs:#?}"
    );
}

const SRC: &str = "11111111-1111-1111-1111-111111111111";
const TGT: &str = "22222222-2222-2222-2222-222222222222";
const APP: &str = "33333333-3333-3333-3333-333333333333";

fn tenant_pair() -> Value {
    json!({
        "apiVersion": "t2t.dev/v1alpha1", "kind": "TenantPair",
        "metadata": {"name": "contoso-to-fabrikam", "namespace": "migration"},
        "spec": {
            "source": {"tenantId": SRC, "initialDomain": "contoso.onmicrosoft.com",
                       "credentials": {"clientId": APP, "clientSecret": {"name": "contoso-admin", "key": "clientSecret"}}},
            "target": {"tenantId": TGT, "initialDomain": "fabrikam.onmicrosoft.com",
                       "credentials": {"clientId": APP, "clientSecret": {"name": "fabrikam-admin", "key": "clientSecret"}}}
        }
    })
}

fn endpoint() -> Value {
    json!({
        "apiVersion": "t2t.dev/v1alpha1", "kind": "MigrationEndpoint",
        "metadata": {"name": "contoso", "namespace": "migration"},
        "spec": {"tenantPairRef": {"name": "contoso-to-fabrikam"}, "remoteServer": "outlook.office.com"}
    })
}

fn batch(users: usize) -> Value {
    let users: Vec<Value> = (0..users)
        .map(|i| json!({"source": format!("user{i}@contoso.com"), "target": format!("user{i}@fabrikam.com")}))
        .collect();
    json!({
        "apiVersion": "t2t.dev/v1alpha1", "kind": "MigrationBatch",
        "metadata": {"name": "wave-1", "namespace": "migration"},
        "spec": {"endpointRef": {"name": "contoso"}, "users": users,
                 "targetDeliveryDomain": "fabrikam.onmicrosoft.com"}
    })
}

fn set(v: &mut Value, path: &[&str], value: Value) {
    let mut cur = v;
    for p in &path[..path.len() - 1] {
        cur = cur
            .as_object_mut()
            .expect("object")
            .entry(p.to_string())
            .or_insert(json!({}));
    }
    cur.as_object_mut()
        .expect("object")
        .insert(path[path.len() - 1].to_string(), value);
}

fn remove(v: &mut Value, path: &[&str]) {
    let mut cur = v;
    for p in &path[..path.len() - 1] {
        cur = cur.get_mut(*p).expect("path");
    }
    cur.as_object_mut()
        .expect("object")
        .remove(path[path.len() - 1]);
}

// ---------- crds/ and documentation ----------

#[test]
fn crds_directory_matches_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut expected: Vec<String> = Vec::new();
    for crd in crdgen::all() {
        let name = crdgen::file_name(&crd);
        let want = crdgen::to_yaml(&crd).expect("yaml");
        let have = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            have == want,
            "crds/{name} differs from the types: run `cargo run -- crdgen --out-dir crds` and commit"
        );
        expected.push(name);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    present.sort();
    expected.sort();
    assert_eq!(present, expected, "crds/ holds exactly one file per kind");
    let kustomization =
        std::fs::read_to_string(dir.join("kustomization.yaml")).expect("crds/kustomization.yaml");
    for name in &expected {
        assert!(
            kustomization.contains(name.as_str()),
            "crds/kustomization.yaml lists {name}"
        );
    }
}

/// Every property under `spec` (and `status`) carries a description, so `kubectl explain` teaches the API.
#[test]
fn every_field_has_a_description() {
    fn walk(path: &str, schema: &Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let p = format!("{path}.{name}");
                let desc = sub.get("description").and_then(Value::as_str).unwrap_or("");
                if desc.trim().is_empty() {
                    missing.push(p.clone());
                }
                walk(&p, sub, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
        if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            walk(&format!("{path}{{}}"), extra, missing);
        }
    }
    for crd in crdgen::all() {
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .expect("json");
        let mut missing = Vec::new();
        for top in ["spec", "status"] {
            walk(top, &schema["properties"][top], &mut missing);
        }
        assert!(
            missing.is_empty(),
            "{}: fields without description: {missing:#?}",
            crd.spec.names.kind
        );
    }
}

#[test]
fn names_categories_and_scope() {
    let want = [
        ("TenantPair", "tp"),
        ("MigrationEndpoint", "mep"),
        ("MigrationBatch", "mb"),
    ];
    for (crd, (kind, short)) in crdgen::all().iter().zip(want) {
        assert_eq!(crd.spec.group, "t2t.dev");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&[short.to_string()][..])
        );
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["t2t".to_string()][..])
        );
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind} has a status subresource"
        );
    }
}

/// Printer columns: the conventions' set, and each JSONPath resolves to a field of the schema.
#[test]
fn printer_columns_point_at_schema_fields() {
    for crd in crdgen::all() {
        let kind = crd.spec.names.kind.clone();
        let v = &crd.spec.versions[0];
        let schema = serde_json::to_value(
            v.schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref()),
        )
        .expect("json");
        let cols = v.additional_printer_columns.clone().unwrap_or_default();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        for needed in ["Ready", "Reason", "Suspended", "Message", "Age"] {
            assert!(
                names.contains(&needed),
                "{kind} lacks printer column {needed}"
            );
        }
        let message = cols.iter().find(|c| c.name == "Message").expect("Message");
        assert_eq!(
            message.priority,
            Some(1),
            "{kind}: Message shows only with -o wide"
        );
        for col in &cols {
            if col.json_path == ".metadata.creationTimestamp" {
                continue;
            }
            // Strip filters like [?(@.type=="Ready")] and walk the schema.
            let path = col.json_path.split("[?").next().expect("path").to_string();
            let mut node = &schema;
            for seg in path.trim_start_matches('.').split('.') {
                node = if node.get("type").and_then(Value::as_str) == Some("array") {
                    &node["items"]["properties"][seg]
                } else {
                    &node["properties"][seg]
                };
                assert!(
                    !node.is_null(),
                    "{kind}: printer column {} path {} is not in the schema",
                    col.name,
                    col.json_path
                );
            }
        }
    }
    let mb = MigrationBatch::crd();
    let cols: Vec<String> = mb.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    for counter in ["Total", "Syncing", "Synced", "Completed", "Failed"] {
        assert!(
            cols.contains(&counter.to_string()),
            "MigrationBatch shows {counter}"
        );
    }
}

#[test]
fn conditions_merge_by_type_and_users_by_source() {
    let mb = schema_of::<MigrationBatch>();
    let conds = &mb["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conds["x-kubernetes-list-type"], "map");
    assert_eq!(conds["x-kubernetes-list-map-keys"], json!(["type"]));
    let users = &mb["properties"]["spec"]["properties"]["users"];
    assert_eq!(users["x-kubernetes-list-type"], "map");
    assert_eq!(users["x-kubernetes-list-map-keys"], json!(["source"]));
    assert_eq!(users["maxItems"], 2000);
}

// ---------- TenantPair rules ----------

#[test]
fn tenant_pair_valid_example_passes() {
    assert_eq!(
        cel::<TenantPair>(&tenant_pair(), None),
        Vec::<String>::new()
    );
}

#[test]
fn tenant_pair_rejects_a_bad_guid() {
    let mut tp = tenant_pair();
    set(&mut tp, &["spec", "source", "tenantId"], json!("contoso"));
    assert_rejects(&cel::<TenantPair>(&tp, None), "tenantId must be a GUID");
    let mut tp = tenant_pair();
    set(
        &mut tp,
        &["spec", "target", "credentials", "clientId"],
        json!("not-a-guid"),
    );
    assert_rejects(&cel::<TenantPair>(&tp, None), "clientId must be a GUID");
}

#[test]
fn tenant_ids_are_immutable() {
    let old = tenant_pair();
    let mut new = old.clone();
    set(
        &mut new,
        &["spec", "target", "tenantId"],
        json!("44444444-4444-4444-4444-444444444444"),
    );
    assert_rejects(
        &cel::<TenantPair>(&new, Some(&old)),
        "tenantId is immutable",
    );
    // An unrelated change is fine.
    let mut new = old.clone();
    set(&mut new, &["spec", "suspend"], json!(true));
    assert_eq!(cel::<TenantPair>(&new, Some(&old)), Vec::<String>::new());
}

#[test]
fn tenant_pair_needs_two_different_tenants() {
    let mut tp = tenant_pair();
    set(&mut tp, &["spec", "target", "tenantId"], json!(SRC));
    assert_rejects(&cel::<TenantPair>(&tp, None), "must be different tenants");
}

#[test]
fn initial_domain_must_be_the_onmicrosoft_domain() {
    let mut tp = tenant_pair();
    set(
        &mut tp,
        &["spec", "source", "initialDomain"],
        json!("contoso.com"),
    );
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "initialDomain must be the tenant's initial domain",
    );
}

#[test]
fn target_credentials_are_required_source_ones_optional() {
    let mut tp = tenant_pair();
    remove(&mut tp, &["spec", "target", "credentials"]);
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "spec.target.credentials is required",
    );
    // Split administration: no source credentials is valid.
    let mut tp = tenant_pair();
    remove(&mut tp, &["spec", "source", "credentials"]);
    assert_eq!(cel::<TenantPair>(&tp, None), Vec::<String>::new());
}

#[test]
fn credentials_need_exactly_one_kind() {
    let mut tp = tenant_pair();
    set(
        &mut tp,
        &["spec", "target", "credentials", "certificate"],
        json!({"secretName": "fabrikam-cert"}),
    );
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "exactly one of clientSecret, certificate or workloadIdentity",
    );
    let mut tp = tenant_pair();
    remove(&mut tp, &["spec", "target", "credentials", "clientSecret"]);
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "exactly one of clientSecret, certificate or workloadIdentity",
    );
    let mut tp = tenant_pair();
    remove(&mut tp, &["spec", "target", "credentials", "clientSecret"]);
    set(
        &mut tp,
        &["spec", "target", "credentials", "workloadIdentity"],
        json!({}),
    );
    assert_eq!(cel::<TenantPair>(&tp, None), Vec::<String>::new());
}

#[test]
fn migration_app_modes_are_exclusive() {
    let mut tp = tenant_pair();
    set(&mut tp, &["spec", "migrationApp"], json!({"mode": "Adopt"}));
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "mode Adopt needs applicationId and clientSecret",
    );
    set(
        &mut tp,
        &["spec", "migrationApp"],
        json!({"mode": "Adopt", "applicationId": APP, "clientSecret": {"name": "app", "key": "secret"}}),
    );
    assert_eq!(cel::<TenantPair>(&tp, None), Vec::<String>::new());
    set(
        &mut tp,
        &["spec", "migrationApp"],
        json!({"mode": "Create", "applicationId": APP}),
    );
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "applicationId is only for mode Adopt",
    );
}

#[test]
fn secret_rotation_window_is_shorter_than_the_lifetime() {
    let mut tp = tenant_pair();
    for (app, ok) in [
        (json!({"secretLifetimeDays": 7}), false),
        (
            json!({"secretLifetimeDays": 7, "rotateBeforeDays": 3}),
            true,
        ),
        (json!({"rotateBeforeDays": 180}), false),
        (json!({"rotateBeforeDays": 179}), true),
        (
            json!({"secretLifetimeDays": 60, "rotateBeforeDays": 60}),
            false,
        ),
    ] {
        set(&mut tp, &["spec", "migrationApp"], app.clone());
        let errs = cel::<TenantPair>(&tp, None);
        if ok {
            assert_eq!(errs, Vec::<String>::new(), "{app}");
        } else {
            assert_rejects(
                &errs,
                "rotateBeforeDays (default 30) must be less than secretLifetimeDays",
            );
        }
    }
}

#[test]
fn bidirectional_needs_reverse_side_and_source_credentials() {
    let mut tp = tenant_pair();
    set(&mut tp, &["spec", "direction"], json!("Bidirectional"));
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "direction Bidirectional needs spec.reverse",
    );
    set(
        &mut tp,
        &["spec", "reverse"],
        json!({"scopeGroup": {"name": "Move-Back"}}),
    );
    assert_eq!(cel::<TenantPair>(&tp, None), Vec::<String>::new());
    remove(&mut tp, &["spec", "source", "credentials"]);
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "direction Bidirectional needs spec.reverse",
    );
}

#[test]
fn custom_cloud_needs_every_url() {
    let mut tp = tenant_pair();
    set(
        &mut tp,
        &["spec", "cloud"],
        json!({"environment": "Custom", "loginUrl": "https://127.0.0.1:8443"}),
    );
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "Custom needs loginUrl, graphUrl and exchangeUrl",
    );
    set(
        &mut tp,
        &["spec", "cloud"],
        json!({"environment": "Custom", "loginUrl": "https://a", "graphUrl": "https://a", "exchangeUrl": "https://a"}),
    );
    assert_eq!(cel::<TenantPair>(&tp, None), Vec::<String>::new());
    set(
        &mut tp,
        &["spec", "cloud"],
        json!({"graphUrl": "http://plain"}),
    );
    assert_rejects(
        &cel::<TenantPair>(&tp, None),
        "graphUrl must be an https:// URL",
    );
}

// ---------- MigrationEndpoint rules ----------

#[test]
fn endpoint_valid_example_passes() {
    assert_eq!(
        cel::<MigrationEndpoint>(&endpoint(), None),
        Vec::<String>::new()
    );
}

#[test]
fn endpoint_identity_is_immutable() {
    let mut old = endpoint();
    set(
        &mut old,
        &["spec", "exchangeName"],
        json!("contoso-endpoint"),
    );
    let mut new = old.clone();
    set(&mut new, &["spec", "tenantPairRef", "name"], json!("other"));
    assert_rejects(
        &cel::<MigrationEndpoint>(&new, Some(&old)),
        "tenantPairRef is immutable",
    );
    let mut new = old.clone();
    set(&mut new, &["spec", "exchangeName"], json!("renamed"));
    assert_rejects(
        &cel::<MigrationEndpoint>(&new, Some(&old)),
        "exchangeName is immutable",
    );
    let mut new = old.clone();
    set(&mut new, &["spec", "maxConcurrentMigrations"], json!(50));
    assert_eq!(
        cel::<MigrationEndpoint>(&new, Some(&old)),
        Vec::<String>::new()
    );
}

#[test]
fn endpoint_concurrency_and_names() {
    let mut ep = endpoint();
    set(&mut ep, &["spec", "maxConcurrentMigrations"], json!(10));
    set(
        &mut ep,
        &["spec", "maxConcurrentIncrementalSyncs"],
        json!(20),
    );
    assert_rejects(
        &cel::<MigrationEndpoint>(&ep, None),
        "cannot exceed spec.maxConcurrentMigrations",
    );
    set(
        &mut ep,
        &["spec", "maxConcurrentIncrementalSyncs"],
        json!(10),
    );
    assert_eq!(cel::<MigrationEndpoint>(&ep, None), Vec::<String>::new());
    let mut ep = endpoint();
    set(&mut ep, &["spec", "exchangeName"], json!("bad/name"));
    assert_rejects(
        &cel::<MigrationEndpoint>(&ep, None),
        "exchangeName must be 1-64 characters",
    );
    let mut ep = endpoint();
    set(&mut ep, &["spec", "remoteServer"], json!("not a host"));
    assert_rejects(
        &cel::<MigrationEndpoint>(&ep, None),
        "remoteServer must be a host name",
    );
}

// ---------- MigrationBatch rules ----------

#[test]
fn batch_valid_example_passes() {
    assert_eq!(cel::<MigrationBatch>(&batch(3), None), Vec::<String>::new());
}

#[test]
fn batch_of_2000_passes_and_2001_is_rejected() {
    assert_eq!(
        cel::<MigrationBatch>(&batch(2000), None),
        Vec::<String>::new()
    );
    assert_rejects(
        &cel::<MigrationBatch>(&batch(2001), None),
        "a batch holds at most 2,000 users",
    );
}

#[test]
fn batch_addresses_and_domains_are_checked() {
    let mut mb = batch(1);
    mb["spec"]["users"][0]["source"] = json!("not-an-address");
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "source must be an SMTP address",
    );
    let mut mb = batch(1);
    mb["spec"]["users"][0]["target"] = json!("lara@");
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "target must be an SMTP address",
    );
    let mut mb = batch(1);
    set(
        &mut mb,
        &["spec", "targetDeliveryDomain"],
        json!("fabrikam"),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "targetDeliveryDomain must be a domain name",
    );
    let mut mb = batch(1);
    set(
        &mut mb,
        &["spec", "notificationEmails"],
        json!(["ops@fabrikam.com", "nope"]),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "notificationEmails must be SMTP addresses",
    );
    let mut mb = batch(1);
    mb["spec"]["users"][0]["alias"] = json!("has space");
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "alias must be 1-64 characters",
    );
}

#[test]
fn batch_users_inline_or_from_configmap_exactly_one() {
    let mut mb = batch(2);
    set(
        &mut mb,
        &["spec", "usersFrom"],
        json!({"name": "wave-1-users", "key": "users.csv"}),
    );
    assert_rejects(&cel::<MigrationBatch>(&mb, None), "exactly one of the two");
    remove(&mut mb, &["spec", "users"]);
    assert_eq!(cel::<MigrationBatch>(&mb, None), Vec::<String>::new());
    remove(&mut mb, &["spec", "usersFrom"]);
    assert_rejects(&cel::<MigrationBatch>(&mb, None), "exactly one of the two");
}

#[test]
fn started_batch_user_list_can_grow_but_its_source_is_fixed() {
    let old = batch(3);
    let mut new = batch(4);
    // Before the Exchange batch exists, users may change.
    assert_eq!(
        cel::<MigrationBatch>(&new, Some(&old)),
        Vec::<String>::new()
    );
    let mut started = old.clone();
    set(
        &mut started,
        &["status"],
        json!({"exchangeBatch": {"name": "migration-wave-1"}}),
    );
    set(
        &mut new,
        &["status"],
        json!({"exchangeBatch": {"name": "migration-wave-1"}}),
    );
    // Appending users to a started batch is allowed (Set-MigrationBatch -AddUsers).
    assert_eq!(
        cel::<MigrationBatch>(&new, Some(&started)),
        Vec::<String>::new()
    );
    // Switching to a ConfigMap is not.
    remove(&mut new, &["spec", "users"]);
    set(
        &mut new,
        &["spec", "usersFrom"],
        json!({"name": "wave-1-users", "key": "users.csv"}),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&new, Some(&started)),
        "user source of a started batch is fixed",
    );
    // Other spec changes on a started batch are fine.
    let mut new = started.clone();
    set(&mut new, &["spec", "suspend"], json!(true));
    assert_eq!(
        cel::<MigrationBatch>(&new, Some(&started)),
        Vec::<String>::new()
    );
}

#[test]
fn endpoint_ref_and_batch_name_are_immutable() {
    let mut old = batch(1);
    set(&mut old, &["spec", "exchangeBatchName"], json!("wave-1"));
    let mut new = old.clone();
    set(&mut new, &["spec", "endpointRef", "name"], json!("other"));
    assert_rejects(
        &cel::<MigrationBatch>(&new, Some(&old)),
        "endpointRef is immutable",
    );
    let mut new = old.clone();
    set(&mut new, &["spec", "exchangeBatchName"], json!("wave-2"));
    assert_rejects(
        &cel::<MigrationBatch>(&new, Some(&old)),
        "exchangeBatchName is immutable",
    );
}

#[test]
fn completion_gate_rules() {
    let mut mb = batch(1);
    set(
        &mut mb,
        &["spec", "completion"],
        json!({"mode": "Scheduled"}),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "completion.at is required when completion.mode is Scheduled",
    );
    set(
        &mut mb,
        &["spec", "completion"],
        json!({"mode": "Scheduled", "at": "2026-12-01T22:00:00Z"}),
    );
    assert_eq!(cel::<MigrationBatch>(&mb, None), Vec::<String>::new());
    set(
        &mut mb,
        &["spec", "completion"],
        json!({"mode": "Manual", "at": "2026-12-01T22:00:00Z"}),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "completion.at is only used with completion.mode Scheduled",
    );
    set(
        &mut mb,
        &["spec", "completion"],
        json!({"mode": "Immediate", "approved": true}),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "completion.approved is only used with completion.mode Manual",
    );
    set(
        &mut mb,
        &["spec", "completion"],
        json!({"mode": "Manual", "approved": true}),
    );
    assert_eq!(cel::<MigrationBatch>(&mb, None), Vec::<String>::new());
}

#[test]
fn completion_gate_cannot_change_once_completion_started() {
    let mut old = batch(1);
    set(
        &mut old,
        &["spec", "completion"],
        json!({"mode": "Manual", "approved": true}),
    );
    set(
        &mut old,
        &["status"],
        json!({"exchangeBatch": {"name": "b"}, "completionStartedAt": "2026-11-23T10:00:00Z"}),
    );
    let mut new = old.clone();
    set(
        &mut new,
        &["spec", "completion"],
        json!({"mode": "Manual", "approved": false}),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&new, Some(&old)),
        "spec.completion cannot change once completion has started",
    );
}

#[test]
fn licences_need_exactly_one_identifier() {
    let mut mb = batch(1);
    set(
        &mut mb,
        &["spec", "provisioning"],
        json!({"licenses": [{}]}),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "exactly one of skuPartNumber or skuId",
    );
    set(
        &mut mb,
        &["spec", "provisioning"],
        json!({"licenses": [{"skuPartNumber": "ENTERPRISEPACK"}], "usageLocation": "US"}),
    );
    assert_eq!(cel::<MigrationBatch>(&mb, None), Vec::<String>::new());
    set(
        &mut mb,
        &["spec", "provisioning"],
        json!({"usageLocation": "usa"}),
    );
    assert_rejects(
        &cel::<MigrationBatch>(&mb, None),
        "usageLocation must be a two-letter country code",
    );
}

/// The typed `validate_cel` the derive generates agrees with the raw-JSON checks above.
#[test]
fn typed_validation_matches() {
    let tp: TenantPair = serde_json::from_value(tenant_pair()).expect("parse");
    assert!(tp.validate_cel().is_ok());
    let mut bad = tp.clone();
    bad.spec.source.tenant_id = "nope".into();
    assert!(bad.validate_cel().is_err());
    let mut moved = tp.clone();
    moved.spec.source.tenant_id = "44444444-4444-4444-4444-444444444444".into();
    assert!(moved.validate_cel_update(&tp).is_err());
}
