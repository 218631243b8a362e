//! `TenantPair`: the two tenants, how to reach them, and the one-time setup between them
//! (migration app and consent, organization relationships, scope group).

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::*;

/// Desired state of a pair of Microsoft 365 tenants between which mailboxes move.
///
/// Automates "Preparing source and target tenants" of Microsoft's cross-tenant mailbox migration
/// procedure: the migration application and its consent, organization customization,
/// organization relationships and the scope group.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "t2t.dev",
    version = "v1alpha1",
    kind = "TenantPair",
    namespaced,
    status = "TenantPairStatus",
    shortname = "tp",
    category = "t2t",
    derive = "PartialEq",
    cel,
    doc = "A source and a target Microsoft 365 tenant prepared for cross-tenant mailbox migration.",
    printcolumn(name = "Source", type_ = "string", json_path = ".spec.source.initialDomain"),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.target.initialDomain"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Seats", type_ = "integer", json_path = ".status.licenses.available", description = "Cross Tenant User Data Migration licences still available"),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.spec.source.tenantId != self.spec.target.tenantId").message("spec.source.tenantId and spec.target.tenantId must be different tenants"),
    validation = Rule::new("self.spec.direction != 'Bidirectional' || (has(self.spec.reverse) && has(self.spec.source.credentials))").message("direction Bidirectional needs spec.reverse and spec.source.credentials: the operator prepares both tenants as source and target"),
)]
#[serde(rename_all = "camelCase")]
pub struct TenantPairSpec {
    /// The tenant the mailboxes move out of.
    pub source: TenantSpec,
    /// The tenant the mailboxes move into; migrations run from here and the migration app lives here.
    #[x_kube(validation = Rule::new("has(self.credentials)").message("spec.target.credentials is required: the operator works from the target tenant"))]
    pub target: TenantSpec,
    /// The multi-tenant migration application (Exchange `Mailbox.Migration`) used by the endpoint.
    #[serde(default)]
    pub migration_app: MigrationAppSpec,
    /// The mail-enabled security group in the source tenant whose members may move.
    #[serde(default)]
    pub scope_group: ScopeGroupSpec,
    /// Names of the organization relationships the operator creates when none exists yet.
    /// An existing relationship whose DomainNames holds the partner tenant id is always reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_relationship: Option<OrganizationRelationshipSpec>,
    /// `OneWay` (source to target), or `Bidirectional` so mailboxes can later move back.
    #[serde(default)]
    pub direction: Direction,
    /// For `Bidirectional`: the application and scope group used when the source tenant is the
    /// destination (the app is created in the source tenant, the scope group in the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse: Option<ReverseSpec>,
    /// Which Microsoft cloud the tenants live in, and base URL overrides.
    #[serde(default)]
    pub cloud: CloudSpec,
    /// `Orphan` (default) leaves everything in the tenants on deletion; `Delete` removes what the
    /// operator created (app, relationships, scope group it created), never mailbox content.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Stop all tenant writes; observation and status continue.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// One tenant of the pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Tenant id (a GUID; Entra ID > Overview > Tenant ID). Immutable.
    #[x_kube(validation = Rule::new(GUID_RULE).message("tenantId must be a GUID such as 00000000-0000-0000-0000-000000000000"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("tenantId is immutable: create a new TenantPair to migrate between other tenants"))]
    #[schemars(length(max = 36))]
    pub tenant_id: String,
    /// The tenant's initial domain, for example `contoso.onmicrosoft.com`.
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9][A-Za-z0-9-]*\\\\.(onmicrosoft\\\\.com|onmicrosoft\\\\.us|partner\\\\.onmschina\\\\.cn)$')").message("initialDomain must be the tenant's initial domain, for example contoso.onmicrosoft.com"))]
    #[schemars(length(max = 253))]
    pub initial_domain: String,
    /// App-only credentials of an administrative app registration in this tenant. Optional for the
    /// source: without it the pair runs target-side only and publishes the source-side steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsSpec>,
}

/// App-only credentials; exactly one of `clientSecret`, `certificate` or `workloadIdentity`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.clientSecret), has(self.certificate), has(self.workloadIdentity)].filter(x, x).size() == 1").message("credentials need exactly one of clientSecret, certificate or workloadIdentity"))]
pub struct CredentialsSpec {
    /// Application (client) id of the admin app registration (a GUID).
    #[x_kube(validation = Rule::new(GUID_RULE).message("clientId must be a GUID"))]
    #[schemars(length(max = 36))]
    pub client_id: String,
    /// A client secret held in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretKeyReference>,
    /// A certificate credential held in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateCredential>,
    /// Azure AD workload identity federation: the projected service-account token is exchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<WorkloadIdentityCredential>,
}

/// A certificate credential: PEM (`tls.crt` + `tls.key`, as in a `kubernetes.io/tls` Secret) or PKCS#12.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateCredential {
    /// Name of the Secret in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of the PEM certificate (default `tls.crt`), or of the PKCS#12 file when `format` is `Pfx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_key: Option<String>,
    /// Key of the PEM private key (default `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_key: Option<String>,
    /// Key of the PKCS#12 password, when `format` is `Pfx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
    /// `Pem` (default) or `Pfx`.
    #[serde(default)]
    pub format: CertificateFormat,
}

/// Encoding of a certificate credential.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum CertificateFormat {
    #[default]
    Pem,
    Pfx,
}

/// Workload identity federation (the projected token file is read afresh for every request).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentityCredential {
    /// Path of the projected token; defaults to `$AZURE_FEDERATED_TOKEN_FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
}

/// The migration application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'Adopt' || (has(self.applicationId) && has(self.clientSecret))").message("migrationApp.mode Adopt needs applicationId and clientSecret"))]
#[x_kube(validation = Rule::new("self.mode != 'Create' || !has(self.applicationId)").message("migrationApp.applicationId is only for mode Adopt; with mode Create the operator records the id it creates in status"))]
#[x_kube(validation = Rule::new("(has(self.rotateBeforeDays) ? self.rotateBeforeDays : 30) < (has(self.secretLifetimeDays) ? self.secretLifetimeDays : 180)").message("migrationApp.rotateBeforeDays (default 30) must be less than secretLifetimeDays (default 180), or every new secret would be due for rotation at once"))]
pub struct MigrationAppSpec {
    /// `Create` (default): the operator registers the app in the target tenant, grants consent there
    /// and keeps its secret in a Secret it owns. `Adopt`: use an existing app.
    #[serde(default)]
    pub mode: MigrationAppMode,
    /// Display name of a created app (default `t2t-operator migration (<namespace>/<name>)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 120))]
    pub display_name: Option<String>,
    /// Application (client) id of an adopted app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(GUID_RULE).message("applicationId must be a GUID"))]
    #[schemars(length(max = 36))]
    pub application_id: Option<String>,
    /// Secret key holding an adopted app's client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretKeyReference>,
    /// Lifetime of secrets the operator creates, in days (default 180).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 7, max = 730))]
    pub secret_lifetime_days: Option<u32>,
    /// Rotate a created secret this many days before it expires (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 365))]
    pub rotate_before_days: Option<u32>,
}

/// How the migration app is obtained.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum MigrationAppMode {
    #[default]
    Create,
    Adopt,
}

/// The source scope group (`MailboxMovePublishedScopes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeGroupSpec {
    /// Name of the mail-enabled security group (default `T2T-Migration-Scope`).
    #[serde(default = "default_scope_group")]
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Create the group when missing (needs source credentials). Default true.
    #[serde(default = "default_true")]
    pub create: bool,
}

impl Default for ScopeGroupSpec {
    fn default() -> Self {
        Self {
            name: default_scope_group(),
            create: true,
        }
    }
}

fn default_scope_group() -> String {
    "T2T-Migration-Scope".to_string()
}

fn default_true() -> bool {
    true
}

/// Names for organization relationships the operator creates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationRelationshipSpec {
    /// Name of the relationship created in the source tenant (default `t2t-<target initial domain>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub source_name: Option<String>,
    /// Name of the relationship created in the target tenant (default `t2t-<source initial domain>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub target_name: Option<String>,
}

/// Direction of the moves the pair allows.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Direction {
    /// Source to target only (target `Inbound`, source `RemoteOutbound`).
    #[default]
    OneWay,
    /// Both ways (`Inbound, RemoteOutbound` on both sides).
    Bidirectional,
}

/// The reverse direction of a bidirectional pair.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReverseSpec {
    /// The migration app registered in the source tenant (the destination of reverse moves).
    #[serde(default)]
    pub migration_app: MigrationAppSpec,
    /// The scope group in the target tenant (whose members may move back).
    #[serde(default)]
    pub scope_group: ScopeGroupSpec,
}

/// The Microsoft cloud and its endpoints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.environment != 'Custom' || (has(self.loginUrl) && has(self.graphUrl) && has(self.exchangeUrl))").message("cloud.environment Custom needs loginUrl, graphUrl and exchangeUrl"))]
pub struct CloudSpec {
    /// `Global` (default), `USGovGCCHigh`, `USGovDoD`, `China`, or `Custom` (all URLs given).
    #[serde(default)]
    pub environment: CloudEnvironment,
    /// Identity platform base URL (default for Global: `https://login.microsoftonline.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("loginUrl must be an https:// URL"))]
    pub login_url: Option<String>,
    /// Microsoft Graph base URL (default for Global: `https://graph.microsoft.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("graphUrl must be an https:// URL"))]
    pub graph_url: Option<String>,
    /// Exchange Online admin API base URL (default for Global: `https://outlook.office365.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("exchangeUrl must be an https:// URL"))]
    pub exchange_url: Option<String>,
    /// A ConfigMap key with extra PEM CA certificates to trust (private clouds, the simulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<ConfigMapKeyReference>,
}

/// A Microsoft cloud instance.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum CloudEnvironment {
    #[default]
    Global,
    USGovGCCHigh,
    USGovDoD,
    China,
    Custom,
}

/// Observed state of a TenantPair.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantPairStatus {
    /// Conditions: Ready, Reconciling, Stalled, CredentialsValid, MigrationAppReady,
    /// OrganizationRelationshipReady, ScopeGroupReady.
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
    /// Observed source tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<TenantObservation>,
    /// Observed target tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TenantObservation>,
    /// The migration application in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_app: Option<MigrationAppStatus>,
    /// The reverse migration app (bidirectional pairs; registered in the source tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_migration_app: Option<MigrationAppStatus>,
    /// Cross Tenant User Data Migration licence seats (source and target pools together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licenses: Option<LicenseStatus>,
    /// Split administration: the steps the source admin must perform, with the consent URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_admin_steps: Option<SourceAdminSteps>,
}

/// What the operator observed about one tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantObservation {
    /// Display name of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Initial domain as the tenant reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_domain: Option<String>,
    /// Whether Enable-OrganizationCustomization has run (IsDehydrated false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customization_enabled: Option<bool>,
    /// Identity of the organization relationship the operator manages or adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_relationship: Option<String>,
    /// Whether the operator created that relationship (only then does `Delete` remove it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub organization_relationship_created: bool,
    /// Identity of the scope group (source tenant; target tenant for bidirectional pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_group: Option<String>,
    /// Whether the operator created that group.
    #[serde(default, skip_serializing_if = "is_false")]
    pub scope_group_created: bool,
    /// Whether the migration app is consented in this tenant (service principal with Mailbox.Migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented: Option<bool>,
    /// `resourceVersion` of the credentials Secret last validated (never its content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_version: Option<String>,
}

/// The migration app as observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationAppStatus {
    /// Application (client) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// Object id of the application in the target tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Whether the operator created the app.
    #[serde(default, skip_serializing_if = "is_false")]
    pub created: bool,
    /// Set before the create call and cleared after the id is recorded (crash-safe creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_pending_since: Option<DateTime<Utc>>,
    /// The Secret (owned by the operator) holding the app's current client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// keyId of the current client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_id: Option<String>,
    /// Expiry of the current client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_expires_at: Option<DateTime<Utc>>,
}

/// Licence seats for Cross Tenant User Data Migration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseStatus {
    /// Seats purchased (enabled units) in both tenants.
    pub total: i64,
    /// Seats assigned.
    pub consumed: i64,
    /// Seats still available.
    pub available: i64,
}

/// The exact steps a source-tenant administrator must perform (split administration).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceAdminSteps {
    /// The admin-consent URL for the migration app in the source tenant.
    pub consent_url: String,
    /// The scope group to create (mail-enabled security group) and fill with the users to move.
    pub scope_group: String,
    /// The Exchange Online PowerShell commands to run in the source tenant.
    #[schemars(length(max = 8))]
    pub commands: Vec<String>,
}
