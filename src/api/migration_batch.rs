//! `MigrationBatch`: a list of users moved together, from preflight to completed moves.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::*;

/// Exchange's limit on users in one migration batch.
pub const MAX_USERS_PER_BATCH: usize = 2000;
/// Longest SMTP address accepted in a batch (keeps the worst-case status within budget; see
/// `docs/adr/0001-per-user-state-in-status.md`).
pub const MAX_ADDRESS_LEN: usize = 128;
/// Most failures kept with full messages in `status.sampleFailures`.
pub const MAX_SAMPLE_FAILURES: usize = 20;
/// Longest message stored per sampled failure.
pub const MAX_FAILURE_MESSAGE_LEN: usize = 256;

/// Desired state of a cross-tenant migration batch: which users move, how the target is prepared,
/// when the moves start and when (and whether) they complete.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "t2t.dev",
    version = "v1alpha1",
    kind = "MigrationBatch",
    namespaced,
    status = "MigrationBatchStatus",
    shortname = "mb",
    category = "t2t",
    derive = "PartialEq",
    cel,
    selectable = ".spec.endpointRef.name",
    doc = "A batch of mailboxes moved from the source to the target tenant of a TenantPair.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Total", type_ = "integer", json_path = ".status.counts.total"),
    printcolumn(name = "Validated", type_ = "integer", json_path = ".status.counts.validated", priority = 1),
    printcolumn(name = "Provisioned", type_ = "integer", json_path = ".status.counts.provisioned", priority = 1),
    printcolumn(name = "Syncing", type_ = "integer", json_path = ".status.counts.syncing"),
    printcolumn(name = "Synced", type_ = "integer", json_path = ".status.counts.synced"),
    printcolumn(name = "Completed", type_ = "integer", json_path = ".status.counts.completed"),
    printcolumn(name = "Failed", type_ = "integer", json_path = ".status.counts.failed"),
    printcolumn(name = "HeldBack", type_ = "integer", json_path = ".status.counts.heldBack", priority = 1),
    printcolumn(name = "Gate", type_ = "string", json_path = ".spec.completion.mode", priority = 1),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(self.spec.exchangeBatchName) == has(oldSelf.spec.exchangeBatchName)").message("spec.exchangeBatchName cannot be added or removed after creation: the Exchange batch keeps its name"),
    validation = Rule::new("(has(self.spec.users) && size(self.spec.users) > 0) != has(self.spec.usersFrom)").message("list the users either inline in spec.users or in spec.usersFrom, exactly one of the two"),
    validation = Rule::new("!has(oldSelf.status) || !has(oldSelf.status.exchangeBatch) || (has(self.spec.usersFrom) == has(oldSelf.spec.usersFrom) && (!has(self.spec.usersFrom) || self.spec.usersFrom == oldSelf.spec.usersFrom))").message("the user source of a started batch is fixed: spec.usersFrom cannot be added, removed or pointed elsewhere once the Exchange batch exists (edit the list itself instead)"),
    validation = Rule::new("!has(oldSelf.status) || !has(oldSelf.status.completionStartedAt) || self.spec.completion == oldSelf.spec.completion").message("spec.completion cannot change once completion has started"),
)]
#[serde(rename_all = "camelCase")]
pub struct MigrationBatchSpec {
    /// The MigrationEndpoint (and through it the TenantPair) the batch uses. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("endpointRef is immutable"))]
    pub endpoint_ref: LocalObjectReference,
    /// Name of the batch in Exchange (`New-MigrationBatch -Name`, at most 64 characters); defaults to
    /// `<namespace>-<name>`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("exchangeBatchName is immutable"))]
    #[schemars(length(min = 1, max = 64))]
    pub exchange_batch_name: Option<String>,
    /// The users to move (at most 2,000, the Exchange limit per batch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.size() <= 2000").message("a batch holds at most 2,000 users (the Exchange limit): split the list over several MigrationBatches"))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["source".into()]))]
    #[schemars(length(max = 2000))]
    pub users: Vec<BatchUser>,
    /// The users to move, from a ConfigMap holding the CSV form Exchange uses (header
    /// `EmailAddress` = target address, plus `SourceEmailAddress` and optional
    /// `UserPrincipalName`, `Alias`, `DisplayName`, `FirstName`, `LastName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_from: Option<ConfigMapKeyReference>,
    /// `-TargetDeliveryDomain`: the target domain whose address becomes the source MailUser's
    /// ExternalEmailAddress after completion, usually the target's `*.onmicrosoft.com` domain.
    #[x_kube(validation = Rule::new(DOMAIN_RULE).message("targetDeliveryDomain must be a domain name such as fabrikam.onmicrosoft.com"))]
    #[schemars(length(max = 253))]
    pub target_delivery_domain: String,
    /// How the operator prepares the target for each user.
    #[serde(default)]
    pub provisioning: ProvisioningSpec,
    /// What happens to users that fail preflight.
    #[serde(default)]
    pub preflight: PreflightSpec,
    /// Do not start syncing before this time (`-StartAfter`, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after: Option<DateTime<Utc>>,
    /// The completion gate. Completing a move deletes the source mailbox, so it happens only when
    /// this gate opens: `Manual` (default) after `approved: true`, `Scheduled` at `at`, or `Immediate`.
    #[serde(default)]
    pub completion: CompletionSpec,
    /// Addresses that receive Exchange's batch reports (`-NotificationEmails`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(e, e.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$'))").message("notificationEmails must be SMTP addresses such as admin@fabrikam.com"))]
    #[schemars(length(max = 10), inner(length(max = 128)))]
    pub notification_emails: Vec<String>,
    /// `Orphan` (default) leaves the Exchange batch on deletion; `Delete` removes it if no user is completing.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Stop the Exchange batch (Stop-MigrationBatch) and all tenant writes; resume when set back to false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// One user of the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchUser {
    /// The user's primary SMTP address in the source tenant (the mailbox to move).
    #[x_kube(validation = Rule::new(SMTP_RULE).message("source must be an SMTP address such as lara@contoso.com"))]
    #[schemars(length(max = 128))]
    pub source: String,
    /// The primary SMTP address of the user in the target tenant (the address in Exchange's CSV).
    #[x_kube(validation = Rule::new(SMTP_RULE).message("target must be an SMTP address such as lara.newton@fabrikam.com"))]
    #[schemars(length(max = 128))]
    pub target: String,
    /// UPN in the target tenant (default: target alias at the target's initial domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(SMTP_RULE).message("userPrincipalName must look like user@domain"))]
    #[schemars(length(max = 128))]
    pub user_principal_name: Option<String>,
    /// Alias of the target MailUser (default: the source mailbox's alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9!#$%&\\'*+/=?^_`{|}~.-]{1,64}$')").message("alias must be 1-64 characters of letters, digits and !#$%&'*+-/=?^_`{|}~."))]
    #[schemars(length(max = 64))]
    pub alias: Option<String>,
    /// Display name of the target MailUser (default: the source mailbox's display name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
}

/// How the target is prepared.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningSpec {
    /// `CreateOrRepair` (default): create missing target MailUsers and fix their attributes;
    /// `RepairOnly`: only fix existing ones (for directory-synced targets); `Skip`: check only.
    #[serde(default)]
    pub mail_users: MailUserProvisioning,
    /// `Manage` (default): add exactly the listed users to the source scope group (and remove users
    /// taken out before their move started); `Skip`: the source admin manages membership.
    #[serde(default)]
    pub scope_group_membership: ScopeMembership,
    /// Assign a Cross Tenant User Data Migration licence before the move: `None` (default,
    /// licences are managed elsewhere), `Source` or `Target`.
    #[serde(default)]
    pub migration_license: MigrationLicenseAssignment,
    /// Licences assigned to the target user after its move completed (never before its
    /// ExchangeGuid is stamped: that would provision a new, empty mailbox).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub licenses: Vec<LicenseRef>,
    /// Usage location set on target users before licensing (two-letter country code, for example `US`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Z]{2}$')").message("usageLocation must be a two-letter country code such as US"))]
    #[schemars(length(max = 2))]
    pub usage_location: Option<String>,
    /// Run `Set-User -PermanentlyClearPreviousMailboxInfo` on target users with stale
    /// previous-mailbox data. Irreversible (a soft-deleted mailbox can no longer be restored), so off by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear_previous_mailbox_data: bool,
}

/// Target MailUser handling.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum MailUserProvisioning {
    #[default]
    CreateOrRepair,
    RepairOnly,
    Skip,
}

/// Scope-group membership handling.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum ScopeMembership {
    #[default]
    Manage,
    Skip,
}

/// Where a Cross Tenant User Data Migration licence is assigned.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum MigrationLicenseAssignment {
    #[default]
    None,
    Source,
    Target,
}

/// A licence (subscribed SKU) by part number or id; exactly one of the two.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.skuPartNumber) != has(self.skuId)").message("a licence needs exactly one of skuPartNumber or skuId"))]
pub struct LicenseRef {
    /// SKU part number, for example `ENTERPRISEPACK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub sku_part_number: Option<String>,
    /// SKU id (a GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(GUID_RULE).message("skuId must be a GUID"))]
    #[schemars(length(max = 36))]
    pub sku_id: Option<String>,
}

/// Preflight behaviour.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreflightSpec {
    /// `HoldBackUser` (default): users failing a blocking check wait while the rest move;
    /// `BlockBatch`: nothing starts until every user passes.
    #[serde(default)]
    pub on_failure: PreflightFailurePolicy,
}

/// What a blocking preflight failure does.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum PreflightFailurePolicy {
    #[default]
    HoldBackUser,
    BlockBatch,
}

/// The completion gate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'Scheduled' || has(self.at)").message("completion.at is required when completion.mode is Scheduled"))]
#[x_kube(validation = Rule::new("self.mode == 'Scheduled' || !has(self.at)").message("completion.at is only used with completion.mode Scheduled"))]
#[x_kube(validation = Rule::new("self.mode == 'Manual' || !has(self.approved) || !self.approved").message("completion.approved is only used with completion.mode Manual"))]
pub struct CompletionSpec {
    /// `Manual` (default): complete after `approved: true`; `Scheduled`: complete at `at`;
    /// `Immediate`: complete as soon as users are synced.
    #[serde(default)]
    pub mode: CompletionMode,
    /// Manual approval: set to true to complete the synced users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    /// When a `Scheduled` completion opens the gate (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// Completion gate mode.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum CompletionMode {
    #[default]
    Manual,
    Scheduled,
    Immediate,
}

/// Observed state of a MigrationBatch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationBatchStatus {
    /// Conditions: Ready, Reconciling, Stalled, PreflightPassed, Provisioned, CompletionApproved.
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
    /// The Exchange migration batch (the handle of the long-running work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_batch: Option<ExchangeBatchStatus>,
    /// How many times failed users were retried (Start-MigrationBatch).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_of_failed_users: u32,
    /// When the completion gate opened and completion was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_started_at: Option<DateTime<Utc>>,
    /// Users by state.
    #[serde(default)]
    pub counts: BatchCounts,
    /// Bytes transferred over all users, as Exchange reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_transferred: Option<u64>,
    /// Compact per-user state (one entry per listed user). Atomic: only the operator writes it, and
    /// per-key managedFields would double the size of the object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    #[schemars(length(max = 2000))]
    pub users: Vec<UserStatus>,
    /// At most 20 failing users with their full reason and the fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub sample_failures: Vec<UserFailure>,
}

/// The Exchange batch handle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeBatchStatus {
    /// The batch's `Identity` (its name).
    pub name: String,
    /// `BatchGuid`, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    /// Last observed MigrationBatchStatus (`Syncing`, `Synced`, `Completed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When the batch was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// Users by state. Every listed user is counted in `total`; the others count users currently in
/// (`syncing`, `synced`, `failed`, `heldBack`) or past (`validated`, `provisioned`, `completed`) a stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchCounts {
    /// Users listed in the batch.
    pub total: u32,
    /// Users that pass preflight.
    pub validated: u32,
    /// Users whose target MailUser is ready and who are in the scope group.
    pub provisioned: u32,
    /// Users queued or syncing.
    pub syncing: u32,
    /// Users synced and waiting for completion.
    pub synced: u32,
    /// Users whose move completed.
    pub completed: u32,
    /// Users whose move failed in Exchange.
    pub failed: u32,
    /// Users held back by preflight.
    pub held_back: u32,
}

/// Compact state of one user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserStatus {
    /// The user's source address (the key into `spec.users`).
    #[schemars(length(max = 128))]
    pub source: String,
    /// Where the user is.
    pub state: UserState,
    /// Percent complete while syncing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub percent: Option<u8>,
    /// Why the user is held back or failed (a PascalCase code; the message is in sampleFailures and events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 40))]
    pub reason: Option<String>,
}

/// Where one user is in the move.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum UserState {
    /// Not yet checked.
    #[default]
    Pending,
    /// Fails a blocking preflight check; waits while the others move.
    HeldBack,
    /// Passes preflight; target not prepared yet.
    Validated,
    /// Target MailUser ready and user in the scope group.
    Provisioned,
    /// In the Exchange batch, waiting for a move slot.
    Queued,
    /// Initial sync running.
    Syncing,
    /// Initial sync done; incremental syncs until completion.
    Synced,
    /// Final sync and conversion running.
    Completing,
    /// Move completed: the target is a mailbox, the source a MailUser.
    Completed,
    /// The move failed in Exchange.
    Failed,
    /// The move is stopped (batch suspended).
    Stopped,
}

/// A sampled failure with its full message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserFailure {
    /// The user's source address.
    #[schemars(length(max = 128))]
    pub source: String,
    /// The PascalCase reason code.
    #[schemars(length(max = 40))]
    pub reason: String,
    /// What is wrong and how to fix it (at most 256 bytes).
    #[schemars(length(max = 256))]
    pub message: String,
}
