//! MigrationBatch decisions (pure): mapping Exchange's statuses, counting, the completion gate and
//! the next step of the batch.

use chrono::{DateTime, Utc};

use crate::api::{BatchCounts, CompletionMode, CompletionSpec, UserState, UserStatus};

/// Maps a MigrationUserStatus (reference §2.10) to the batch's per-user state.
pub fn user_state(exchange_status: &str) -> UserState {
    match exchange_status {
        "Queued" | "Validating" | "Provisioning" | "ProvisionUpdating" | "Starting" => {
            UserState::Queued
        }
        "Syncing" | "IncrementalSyncing" => UserState::Syncing,
        "Synced" | "IncrementalSynced" | "CompletionSynced" => UserState::Synced,
        "Completing" => UserState::Completing,
        "Completed" | "CompletedWithWarnings" => UserState::Completed,
        "Failed" | "IncrementalFailed" | "CompletionFailed" | "Corrupted" => UserState::Failed,
        "Stopped" | "IncrementalStopped" | "Stopping" => UserState::Stopped,
        // Removing and unknown future values: keep the user visible as queued work.
        _ => UserState::Queued,
    }
}

/// Counters from per-user states (each user counted once per applicable counter).
pub fn counts(users: &[UserStatus]) -> BatchCounts {
    let mut c = BatchCounts {
        total: users.len() as u32,
        ..Default::default()
    };
    for u in users {
        use UserState::*;
        let s = u.state;
        if !matches!(s, Pending | HeldBack) {
            c.validated += 1;
        }
        if !matches!(s, Pending | HeldBack | Validated) {
            c.provisioned += 1;
        }
        match s {
            Queued | Syncing => c.syncing += 1,
            Synced => c.synced += 1,
            Completed => c.completed += 1,
            Failed => c.failed += 1,
            HeldBack => c.held_back += 1,
            _ => {}
        }
    }
    c
}

/// Whether the completion gate is open now, with a sentence saying why (not).
pub fn gate(spec: &CompletionSpec, now: DateTime<Utc>) -> (bool, String) {
    match spec.mode {
        CompletionMode::Immediate => (true, "completion mode Immediate".into()),
        CompletionMode::Manual if spec.approved == Some(true) => (true, "completion approved (spec.completion.approved)".into()),
        CompletionMode::Manual => (false, "waiting for approval: set spec.completion.approved to true to complete (this deletes the source mailboxes)".into()),
        CompletionMode::Scheduled => match spec.at {
            Some(at) if at <= now => (true, format!("scheduled completion time {} reached", at.to_rfc3339())),
            Some(at) => (false, format!("completion scheduled for {}", at.to_rfc3339())),
            None => (false, "completion.at is missing".into()),
        },
    }
}

/// What the batch does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Preflight and prepare users that are not yet in Exchange.
    Prepare,
    /// Wait for `startAfter`.
    WaitForStart(DateTime<Utc>),
    /// Nothing can start: every user is held back, or a blocking policy waits for all.
    Blocked(String),
    /// Create the Exchange batch with the prepared users.
    CreateBatch,
    /// Append users prepared after the Exchange batch was created
    /// (`Set-MigrationBatch -AddUsers -CSVData`: Exchange processes only the new rows).
    AddUsers,
    /// Follow progress.
    Poll,
    /// Stop the Exchange batch (suspend).
    Stop,
    /// Start it again (resume, or retry failed users).
    Start,
    /// Complete it (the gate is open and every remaining user is synced).
    Complete,
    /// Every user reached a final state.
    Done,
}

/// Inputs of [`next_step`].
#[derive(Clone, Debug)]
pub struct BatchView<'a> {
    pub users: &'a [UserStatus],
    pub batch_exists: bool,
    /// MigrationBatchStatus of the Exchange batch.
    pub batch_status: Option<&'a str>,
    pub suspend: bool,
    pub block_on_any_failure: bool,
    pub start_after: Option<DateTime<Utc>>,
    pub gate_open: bool,
    /// Completion was requested already (status.completionStartedAt).
    pub completion_requested: bool,
    /// Failed users were retried this many times.
    pub retries: u32,
    pub max_retries: u32,
    pub now: DateTime<Utc>,
}

/// Decides the next step of the batch.
pub fn next_step(v: &BatchView<'_>) -> Step {
    use UserState::*;
    let any = |f: &dyn Fn(UserState) -> bool| v.users.iter().any(|u| f(u.state));
    if !v.batch_exists {
        if any(&|s| matches!(s, Pending | Validated)) {
            return Step::Prepare;
        }
        if v.block_on_any_failure && any(&|s| s == HeldBack) {
            return Step::Blocked(
                "preflight.onFailure is BlockBatch and some users fail preflight".into(),
            );
        }
        if !any(&|s| s == Provisioned) {
            return Step::Blocked("no user passes preflight".into());
        }
        if v.suspend {
            return Step::Blocked("suspended before the batch started".into());
        }
        if let Some(at) = v.start_after
            && at > v.now
        {
            return Step::WaitForStart(at);
        }
        return Step::CreateBatch;
    }
    // Users added to the spec after the Exchange batch exists: prepare them, then append them.
    // Suspended batches take no new users (preparation would only validate, read-only).
    if !v.suspend {
        if any(&|s| matches!(s, Pending | Validated)) {
            return Step::Prepare;
        }
        let blocked = v.block_on_any_failure && any(&|s| s == HeldBack);
        // After Complete-MigrationBatch, Exchange completes appended users right after their
        // initial sync (the batch's CompleteAfter has passed): only while the gate is still open.
        let completion_closed = v.completion_requested && !v.gate_open;
        if any(&|s| s == Provisioned) && !blocked && !completion_closed {
            return Step::AddUsers;
        }
    }
    let in_batch = |s: UserState| !matches!(s, Pending | HeldBack | Validated | Provisioned);
    let moving: Vec<UserState> = v
        .users
        .iter()
        .map(|u| u.state)
        .filter(|s| in_batch(*s))
        .collect();
    if moving.iter().all(|s| matches!(s, Completed | Failed))
        && !moving.is_empty()
        && (v.retries >= v.max_retries || !moving.contains(&Failed))
    {
        return Step::Done;
    }
    let stopped = v
        .batch_status
        .is_some_and(|s| s == "Stopped" || s == "Stopping");
    if v.suspend {
        return if stopped
            || moving
                .iter()
                .all(|s| matches!(s, Completed | Failed | Stopped))
        {
            Step::Poll
        } else {
            Step::Stop
        };
    }
    if stopped && moving.iter().any(|s| matches!(s, Stopped)) {
        return Step::Start;
    }
    let settled = v.batch_status.is_some_and(|s| {
        matches!(
            s,
            "Synced" | "SyncedWithErrors" | "Failed" | "CompletedWithErrors" | "Completed"
        )
    });
    if moving.contains(&Failed) && settled && v.retries < v.max_retries {
        return Step::Start;
    }
    if v.gate_open
        && !v.completion_requested
        && !moving.is_empty()
        && moving
            .iter()
            .all(|s| matches!(s, Synced | Completed | Failed))
        && moving.contains(&Synced)
    {
        return Step::Complete;
    }
    Step::Poll
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn u(s: UserState) -> UserStatus {
        UserStatus {
            source: format!("{s:?}@c.com"),
            state: s,
            percent: None,
            reason: None,
        }
    }

    fn view(users: &[UserStatus]) -> BatchView<'_> {
        BatchView {
            users,
            batch_exists: false,
            batch_status: None,
            suspend: false,
            block_on_any_failure: false,
            start_after: None,
            gate_open: false,
            completion_requested: false,
            retries: 0,
            max_retries: 2,
            now: Utc
                .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
                .single()
                .expect("time"),
        }
    }

    #[test]
    fn exchange_statuses_map() {
        assert_eq!(user_state("Syncing"), UserState::Syncing);
        assert_eq!(user_state("IncrementalSyncing"), UserState::Syncing);
        assert_eq!(user_state("Synced"), UserState::Synced);
        assert_eq!(user_state("Completed"), UserState::Completed);
        assert_eq!(user_state("CompletionFailed"), UserState::Failed);
        assert_eq!(user_state("Stopped"), UserState::Stopped);
        assert_eq!(user_state("SomethingNew"), UserState::Queued);
    }

    #[test]
    fn counters() {
        let users = vec![
            u(UserState::HeldBack),
            u(UserState::Provisioned),
            u(UserState::Syncing),
            u(UserState::Synced),
            u(UserState::Completed),
            u(UserState::Failed),
        ];
        let c = counts(&users);
        assert_eq!(
            (
                c.total,
                c.validated,
                c.provisioned,
                c.syncing,
                c.synced,
                c.completed,
                c.failed,
                c.held_back
            ),
            (6, 5, 5, 1, 1, 1, 1, 1)
        );
    }

    #[test]
    fn gate_modes() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("t");
        assert!(
            gate(
                &CompletionSpec {
                    mode: CompletionMode::Immediate,
                    ..Default::default()
                },
                now
            )
            .0
        );
        assert!(
            !gate(&CompletionSpec::default(), now).0,
            "Manual without approval is closed"
        );
        assert!(
            gate(
                &CompletionSpec {
                    mode: CompletionMode::Manual,
                    approved: Some(true),
                    at: None
                },
                now
            )
            .0
        );
        let at = now + chrono::Duration::hours(1);
        assert!(
            !gate(
                &CompletionSpec {
                    mode: CompletionMode::Scheduled,
                    approved: None,
                    at: Some(at)
                },
                now
            )
            .0
        );
        assert!(
            gate(
                &CompletionSpec {
                    mode: CompletionMode::Scheduled,
                    approved: None,
                    at: Some(at)
                },
                at
            )
            .0
        );
    }

    #[test]
    fn before_the_batch() {
        let users = [u(UserState::Pending), u(UserState::Provisioned)];
        assert_eq!(next_step(&view(&users)), Step::Prepare);
        let users = [u(UserState::HeldBack), u(UserState::Provisioned)];
        assert_eq!(next_step(&view(&users)), Step::CreateBatch);
        let mut v = view(&users);
        v.block_on_any_failure = true;
        assert!(matches!(next_step(&v), Step::Blocked(_)));
        let users = [u(UserState::HeldBack)];
        assert!(matches!(next_step(&view(&users)), Step::Blocked(_)));
        let users = [u(UserState::Provisioned)];
        let mut v = view(&users);
        v.start_after = Some(v.now + chrono::Duration::hours(2));
        assert!(matches!(next_step(&v), Step::WaitForStart(_)));
        v.suspend = true;
        assert!(matches!(next_step(&v), Step::Blocked(_)));
    }

    #[test]
    fn completion_waits_for_the_gate_and_the_sync() {
        let users = [u(UserState::Synced), u(UserState::Syncing)];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Syncing");
        v.gate_open = true;
        assert_eq!(next_step(&v), Step::Poll, "one user still syncing");
        let users = [
            u(UserState::Synced),
            u(UserState::Synced),
            u(UserState::HeldBack),
        ];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Synced");
        assert_eq!(next_step(&v), Step::Poll, "gate closed");
        v.gate_open = true;
        assert_eq!(next_step(&v), Step::Complete);
        v.completion_requested = true;
        assert_eq!(next_step(&v), Step::Poll, "completion is requested once");
    }

    #[test]
    fn failures_are_retried_a_bounded_number_of_times() {
        let users = [u(UserState::Synced), u(UserState::Failed)];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("SyncedWithErrors");
        assert_eq!(next_step(&v), Step::Start);
        v.retries = 2;
        assert_eq!(next_step(&v), Step::Poll);
        v.gate_open = true;
        assert_eq!(
            next_step(&v),
            Step::Complete,
            "the synced users complete; the failed one is reported"
        );
    }

    #[test]
    fn suspend_stops_and_resume_starts() {
        let users = [u(UserState::Syncing)];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Syncing");
        v.suspend = true;
        assert_eq!(next_step(&v), Step::Stop);
        let users = [u(UserState::Stopped)];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Stopped");
        v.suspend = true;
        assert_eq!(next_step(&v), Step::Poll);
        v.suspend = false;
        assert_eq!(next_step(&v), Step::Start);
    }

    #[test]
    fn users_added_to_a_running_batch_are_prepared_then_appended() {
        // Two users completed; one appended to the spec afterwards.
        let users = [
            u(UserState::Completed),
            u(UserState::Completed),
            u(UserState::Pending),
        ];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Completed");
        v.gate_open = true;
        v.completion_requested = true;
        assert_eq!(next_step(&v), Step::Prepare, "not Done: a user waits");
        let users = [
            u(UserState::Completed),
            u(UserState::Syncing),
            u(UserState::Provisioned),
        ];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Syncing");
        assert_eq!(next_step(&v), Step::AddUsers);
        // Once Exchange has it, the user is followed like the others (nothing is added twice).
        let users = [u(UserState::Completed), u(UserState::Queued)];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Syncing");
        assert_eq!(next_step(&v), Step::Poll);
        // Suspended: nothing is prepared or appended; the batch is stopped first.
        let users = [u(UserState::Syncing), u(UserState::Pending)];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Syncing");
        v.suspend = true;
        assert_eq!(next_step(&v), Step::Stop);
        // Completion requested and the gate closed again: Exchange would complete an appended
        // user at once, so it waits.
        let users = [u(UserState::Synced), u(UserState::Provisioned)];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Completing");
        v.completion_requested = true;
        assert_eq!(next_step(&v), Step::Poll);
        v.gate_open = true;
        assert_eq!(next_step(&v), Step::AddUsers);
        // BlockBatch with a held-back user: nothing is appended.
        let users = [
            u(UserState::Syncing),
            u(UserState::HeldBack),
            u(UserState::Provisioned),
        ];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Syncing");
        v.block_on_any_failure = true;
        assert_eq!(next_step(&v), Step::Poll);
    }

    #[test]
    fn done_when_every_user_is_final() {
        let users = [u(UserState::Completed), u(UserState::HeldBack)];
        let mut v = view(&users);
        v.batch_exists = true;
        v.batch_status = Some("Completed");
        assert_eq!(next_step(&v), Step::Done);
    }
}
