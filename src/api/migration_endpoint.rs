//! `MigrationEndpoint`: the Exchange Online cross-tenant migration endpoint in the target tenant.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::*;

/// Desired state of an Exchange Online migration endpoint (`New-MigrationEndpoint
/// -ExchangeRemoteMove`) created with the pair's migration app credentials.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "t2t.dev",
    version = "v1alpha1",
    kind = "MigrationEndpoint",
    namespaced,
    status = "MigrationEndpointStatus",
    shortname = "mep",
    category = "t2t",
    derive = "PartialEq",
    cel,
    selectable = ".spec.tenantPairRef.name",
    doc = "An Exchange Online cross-tenant migration endpoint in the target tenant of a TenantPair.",
    printcolumn(name = "Pair", type_ = "string", json_path = ".spec.tenantPairRef.name"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Available", type_ = "string", json_path = ".status.conditions[?(@.type==\"Available\")].status"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(self.spec.exchangeName) == has(oldSelf.spec.exchangeName)").message("spec.exchangeName cannot be added or removed after creation: the Exchange endpoint keeps its name"),
    validation = Rule::new("!has(self.spec.maxConcurrentMigrations) || !has(self.spec.maxConcurrentIncrementalSyncs) || self.spec.maxConcurrentIncrementalSyncs <= self.spec.maxConcurrentMigrations").message("spec.maxConcurrentIncrementalSyncs cannot exceed spec.maxConcurrentMigrations"),
)]
#[serde(rename_all = "camelCase")]
pub struct MigrationEndpointSpec {
    /// The TenantPair whose target tenant hosts the endpoint. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("tenantPairRef is immutable: create a new MigrationEndpoint for another pair"))]
    pub tenant_pair_ref: LocalObjectReference,
    /// Name of the endpoint in Exchange (`-Name`); defaults to the object's name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("exchangeName is immutable: Exchange cannot rename an endpoint"))]
    #[x_kube(validation = Rule::new("self.matches('^[^\\\\\\\\/:*?\"<>|]{1,64}$')").message("exchangeName must be 1-64 characters without \\ / : * ? \" < > |"))]
    #[schemars(length(max = 64))]
    pub exchange_name: Option<String>,
    /// `-RemoteServer` (default `outlook.office.com`; GCC High `outlook.office365.us`).
    #[serde(default = "default_remote_server")]
    #[x_kube(validation = Rule::new(DOMAIN_RULE).message("remoteServer must be a host name such as outlook.office.com"))]
    #[schemars(length(max = 253))]
    pub remote_server: String,
    /// `-MaxConcurrentMigrations` (Exchange's default is 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrent_migrations: Option<i32>,
    /// `-MaxConcurrentIncrementalSyncs` (Exchange's default is 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrent_incremental_syncs: Option<i32>,
    /// `Forward` (default): the endpoint lives in the pair's target tenant. `Reverse` (bidirectional
    /// pairs): it lives in the source tenant, for moving mailboxes back.
    #[serde(default)]
    pub direction: EndpointDirection,
    /// `Orphan` (default) leaves the Exchange endpoint on deletion; `Delete` removes it if the
    /// operator created it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Stop all tenant writes; observation and status continue.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

fn default_remote_server() -> String {
    "outlook.office.com".to_string()
}

/// Which side of the pair hosts the endpoint.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum EndpointDirection {
    #[default]
    Forward,
    Reverse,
}

/// Observed state of a MigrationEndpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationEndpointStatus {
    /// Conditions: Ready, Reconciling, Stalled, Available.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[schemars(length(max = 16))]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe once fully processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Echo of the last handled `t2t.dev/requested-at` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Persisted backoff.
    #[serde(default, flatten)]
    pub retry: RetryStatus,
    /// Exchange `Identity` of the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_identity: Option<String>,
    /// Exchange `Guid` of the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_guid: Option<String>,
    /// Whether the operator created the endpoint (only then does `Delete` remove it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub created: bool,
    /// Application id the endpoint authenticates with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// keyId of the app secret last written to the endpoint (never the secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_key_id: Option<String>,
    /// Last Test-MigrationServerAvailability result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_test: Option<AvailabilityTest>,
}

/// One Test-MigrationServerAvailability outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityTest {
    /// `Success`, `Failed` or `Warning`.
    pub result: String,
    /// The tenant's message (truncated to 1 KiB).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub message: String,
    /// When the result last changed.
    pub time: DateTime<Utc>,
}
