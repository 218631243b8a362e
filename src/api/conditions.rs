//! Condition types and reasons. These strings are API: alerting rules, Argo CD health checks and
//! `kubectl wait` depend on them, so they only ever grow.
//!
//! The summary follows kstatus: `Ready` is always present; `Reconciling` and `Stalled` are present
//! only while `True`.

/// Condition types.
pub mod types {
    /// The goal state is reached and verified.
    pub const READY: &str = "Ready";
    /// Work is in progress (present only while true).
    pub const RECONCILING: &str = "Reconciling";
    /// Progress is impossible without a change by someone (present only while true).
    pub const STALLED: &str = "Stalled";
    /// TenantPair: every referenced credential yields a token with the needed roles.
    pub const CREDENTIALS_VALID: &str = "CredentialsValid";
    /// TenantPair: the migration application exists and both tenants consented to it.
    pub const MIGRATION_APP_READY: &str = "MigrationAppReady";
    /// TenantPair: the organization relationships in both tenants allow the moves.
    pub const ORGANIZATION_RELATIONSHIP_READY: &str = "OrganizationRelationshipReady";
    /// TenantPair: the scope group exists in the source tenant.
    pub const SCOPE_GROUP_READY: &str = "ScopeGroupReady";
    /// MigrationEndpoint: Test-MigrationServerAvailability succeeds.
    pub const AVAILABLE: &str = "Available";
    /// MigrationBatch: every listed user passes preflight.
    pub const PREFLIGHT_PASSED: &str = "PreflightPassed";
    /// MigrationBatch: every target MailUser is ready and every user is in the scope group.
    pub const PROVISIONED: &str = "Provisioned";
    /// MigrationBatch: the completion gate is open.
    pub const COMPLETION_APPROVED: &str = "CompletionApproved";
}

/// Condition reasons (PascalCase, matching `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`).
pub mod reasons {
    // Generic progress.
    /// The goal state is reached.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Work is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// Work is under way after a transient failure; the operator retries with backoff.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// Waiting on a tenant's long-running work (a move, propagation of a setting).
    pub const WAITING_FOR_TENANT: &str = "WaitingForTenant";
    /// `spec.suspend` is true: no tenant writes, status still observed.
    pub const SUSPENDED: &str = "Suspended";
    /// The object is being deleted.
    pub const DELETING: &str = "Deleting";
    /// A referenced object (TenantPair, MigrationEndpoint, Secret, ConfigMap) is not Ready or missing.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";

    // Terminal (Stalled) reasons.
    /// The spec is invalid in a way the schema cannot catch (for example a CSV that does not parse).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// A referenced Secret is missing or lacks a key.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// The identity platform rejected a credential (wrong secret, unknown app, expired certificate).
    pub const CREDENTIALS_REJECTED: &str = "CredentialsRejected";
    /// A token was issued but lacks a needed application role or directory role.
    pub const PERMISSION_MISSING: &str = "PermissionMissing";
    /// The source tenant has not consented to the migration application.
    pub const CONSENT_MISSING: &str = "ConsentMissing";
    /// A create call's outcome is unknown after a crash and the object cannot be found by identity.
    pub const CREATE_INCOMPLETE: &str = "CreateIncomplete";
    /// Too many consecutive failures; waiting for a spec change or a requested reconcile.
    pub const RETRY_BUDGET_EXHAUSTED: &str = "RetryBudgetExhausted";
    /// No Cross Tenant User Data Migration licences are available.
    pub const LICENSES_EXHAUSTED: &str = "LicensesExhausted";

    // Domain reasons.
    /// The source admin still has to perform the published steps (split administration).
    pub const AWAITING_SOURCE_ADMIN: &str = "AwaitingSourceAdmin";
    /// The endpoint's availability test failed; the message carries the tenant's text.
    pub const ENDPOINT_UNAVAILABLE: &str = "EndpointUnavailable";
    /// Some users fail preflight and are held back while the rest continue.
    pub const USERS_HELD_BACK: &str = "UsersHeldBack";
    /// Some users failed in Exchange.
    pub const USERS_FAILED: &str = "UsersFailed";
    /// The completion gate is closed (Manual without approval, or Scheduled before its time).
    pub const AWAITING_APPROVAL: &str = "AwaitingApproval";
    /// The completion gate is open.
    pub const COMPLETION_GATE_OPEN: &str = "CompletionGateOpen";
    /// Users are syncing.
    pub const SYNCING: &str = "Syncing";
    /// Every user finished its initial sync and waits for the completion gate.
    pub const SYNCED: &str = "Synced";
    /// Completion is running.
    pub const COMPLETING: &str = "Completing";
    /// Every user completed.
    pub const COMPLETED: &str = "Completed";
    /// The batch waits for `spec.startAfter`.
    pub const WAITING_FOR_START: &str = "WaitingForStart";
}
