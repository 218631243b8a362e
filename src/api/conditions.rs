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
    /// MigrationAppReady stays True, but an adopted app's client secret expires soon and only
    /// the admin can replace it.
    pub const SECRET_EXPIRING: &str = "SecretExpiring";
}

use chrono::{DateTime, Utc};

use super::common::{Condition, ConditionStatus};

/// Longest condition message written (the rest is cut at a character boundary).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Cuts `s` to at most `max` bytes without splitting a character, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A condition as a controller computes it in one pass (no timestamps yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: &'static str,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status: if status {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            reason,
            message: message.into(),
        }
    }

    pub fn unknown(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: ConditionStatus::Unknown,
            reason,
            message: message.into(),
        }
    }
}

/// Merges this pass's conditions into the stored ones:
/// - `lastTransitionTime` changes only when `status` changes (so unchanged passes write nothing new);
/// - `Reconciling` and `Stalled` are dropped unless true (kstatus: abnormal-true conditions);
/// - types not computed this pass are kept as they were;
/// - the result is sorted by type so the written list is stable.
pub fn merge(
    stored: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = stored
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .filter(|c| !(is_abnormal_true(&c.type_) && c.status != ConditionStatus::True))
        .cloned()
        .collect();
    for d in desired {
        if is_abnormal_true(d.type_) && d.status != ConditionStatus::True {
            continue;
        }
        let previous = stored.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == d.status => p.last_transition_time,
            _ => now,
        };
        out.push(Condition {
            type_: d.type_.to_string(),
            status: d.status,
            reason: d.reason.to_string(),
            message: truncate(&d.message, MAX_MESSAGE_BYTES),
            last_transition_time,
            observed_generation: generation,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

fn is_abnormal_true(t: &str) -> bool {
    t == types::RECONCILING || t == types::STALLED
}

/// Finds a condition by type.
pub fn find<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// True when the condition is present with status True.
pub fn is_true(conds: &[Condition], type_: &str) -> bool {
    find(conds, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn transition_time_moves_only_with_status() {
        let first = merge(
            &[],
            &[Desired::new(types::READY, false, reasons::PROGRESSING, "a")],
            Some(1),
            t(1),
        );
        assert_eq!(first[0].last_transition_time, t(1));
        let same = merge(
            &first,
            &[Desired::new(
                types::READY,
                false,
                reasons::WAITING_FOR_TENANT,
                "b",
            )],
            Some(1),
            t(2),
        );
        assert_eq!(
            same[0].last_transition_time,
            t(1),
            "reason/message changes keep the time"
        );
        assert_eq!(same[0].reason, reasons::WAITING_FOR_TENANT);
        let flipped = merge(
            &same,
            &[Desired::new(types::READY, true, reasons::SUCCEEDED, "ok")],
            Some(2),
            t(3),
        );
        assert_eq!(flipped[0].last_transition_time, t(3));
        assert_eq!(flipped[0].observed_generation, Some(2));
    }

    #[test]
    fn reconciling_and_stalled_exist_only_while_true() {
        let c = merge(
            &[],
            &[
                Desired::new(types::READY, false, reasons::PROGRESSING, ""),
                Desired::new(types::RECONCILING, true, reasons::PROGRESSING, "working"),
                Desired::new(types::STALLED, false, reasons::SUCCEEDED, ""),
            ],
            None,
            t(1),
        );
        let types: Vec<&str> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, vec!["Ready", "Reconciling"]);
        let done = merge(
            &c,
            &[
                Desired::new(types::READY, true, reasons::SUCCEEDED, ""),
                Desired::new(types::RECONCILING, false, reasons::SUCCEEDED, ""),
            ],
            None,
            t(2),
        );
        assert_eq!(
            done.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            vec!["Ready"]
        );
    }

    #[test]
    fn untouched_types_are_kept_and_order_is_stable() {
        let a = merge(
            &[],
            &[Desired::new(
                types::CREDENTIALS_VALID,
                true,
                reasons::SUCCEEDED,
                "",
            )],
            None,
            t(1),
        );
        let b = merge(
            &a,
            &[Desired::new(types::READY, true, reasons::SUCCEEDED, "")],
            None,
            t(2),
        );
        assert_eq!(
            b.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            vec!["CredentialsValid", "Ready"]
        );
        assert!(is_true(&b, types::CREDENTIALS_VALID));
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let msg = "é".repeat(1000);
        let c = merge(
            &[],
            &[Desired::new(types::READY, false, reasons::PROGRESSING, msg)],
            None,
            t(1),
        );
        assert!(c[0].message.len() <= MAX_MESSAGE_BYTES);
        assert!(c[0].message.ends_with("..."));
        assert_eq!(truncate("short", 10), "short");
    }
}
