//! The mailbox-move engine: a deterministic state machine advanced by the simulated clock.
//!
//! Batches live in the target tenant. [`advance`] moves every active batch from the engine's
//! last cursor to `now`, event by event (queue delay, initial-sync finish, completion finish,
//! 24-hour incremental syncs, StartAfter / CompleteAfter), so a clock jump of days gives the
//! same result as many small steps. Progress is linear in bytes at a configurable throughput;
//! an endpoint's `MaxConcurrentMigrations` caps simultaneous initial syncs.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::rules::{self, Violation};
use super::state::{RecipientKind, World};

/// Engine knobs (all in simulated time).
#[derive(Debug, Clone)]
pub struct MoveSettings {
    /// Initial-sync throughput per mailbox.
    pub bytes_per_hour: u64,
    /// Time a user waits in Queued before syncing starts (when a slot is free).
    pub queue_delay: Duration,
    /// Duration of the final sync + conversion.
    pub completion_duration: Duration,
    pub incremental_interval: Duration,
    /// Largest batch.
    pub max_users_per_batch: usize,
}

impl Default for MoveSettings {
    fn default() -> Self {
        Self {
            bytes_per_hour: 2 * 1024 * 1024 * 1024,
            queue_delay: Duration::minutes(5),
            completion_duration: Duration::minutes(15),
            incremental_interval: Duration::hours(24),
            max_users_per_batch: 2000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Queued,
    Syncing,
    Synced,
    /// A 24-hourly incremental sync is running (counts as synced for the batch).
    IncrementalSyncing,
    Completing,
    Completed,
    Failed,
    Stopped,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Queued => "Queued",
            UserStatus::Syncing => "Syncing",
            UserStatus::Synced => "Synced",
            UserStatus::IncrementalSyncing => "IncrementalSyncing",
            UserStatus::Completing => "Completing",
            UserStatus::Completed => "Completed",
            UserStatus::Failed => "Failed",
            UserStatus::Stopped => "Stopped",
        }
    }

    /// MigrationUserStatusSummary (reference §2.10).
    pub fn summary(self) -> &'static str {
        match self {
            UserStatus::Queued | UserStatus::Syncing | UserStatus::Completing => "Active",
            UserStatus::Synced | UserStatus::IncrementalSyncing => "Synced",
            UserStatus::Completed => "Completed",
            UserStatus::Failed => "Failed",
            UserStatus::Stopped => "Stopped",
        }
    }

    /// Move-request view of the same state (Get-MoveRequest -Status values).
    pub fn move_status(self) -> &'static str {
        match self {
            UserStatus::Queued => "Queued",
            UserStatus::Syncing => "InProgress",
            UserStatus::Synced => "AutoSuspended",
            UserStatus::IncrementalSyncing => "InProgress",
            UserStatus::Completing => "CompletionInProgress",
            UserStatus::Completed => "Completed",
            UserStatus::Failed => "Failed",
            UserStatus::Stopped => "Suspended",
        }
    }

    fn active(self) -> bool {
        matches!(
            self,
            UserStatus::Queued
                | UserStatus::Syncing
                | UserStatus::Synced
                | UserStatus::IncrementalSyncing
                | UserStatus::Completing
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    Created,
    Syncing,
    Synced,
    SyncedWithErrors,
    Completing,
    Completed,
    CompletedWithErrors,
    Failed,
    Stopped,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Created => "Created",
            BatchStatus::Syncing => "Syncing",
            BatchStatus::Synced => "Synced",
            BatchStatus::SyncedWithErrors => "SyncedWithErrors",
            BatchStatus::Completing => "Completing",
            BatchStatus::Completed => "Completed",
            BatchStatus::CompletedWithErrors => "CompletedWithErrors",
            BatchStatus::Failed => "Failed",
            BatchStatus::Stopped => "Stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            BatchStatus::Created,
            BatchStatus::Syncing,
            BatchStatus::Synced,
            BatchStatus::SyncedWithErrors,
            BatchStatus::Completing,
            BatchStatus::Completed,
            BatchStatus::CompletedWithErrors,
            BatchStatus::Failed,
            BatchStatus::Stopped,
        ]
        .into_iter()
        .find(|b| b.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone)]
pub struct MoveUser {
    pub guid: Uuid,
    /// The CSV EmailAddress (the target MailUser).
    pub email: String,
    /// Target recipient guid, if the address resolved.
    pub target: Option<Uuid>,
    /// Source tenant id and recipient guid, once validated.
    pub source: Option<(Uuid, Uuid)>,
    pub status: UserStatus,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub items_total: u64,
    pub error: Option<Violation>,
    /// When the current phase (queue, sync, completion) began.
    pub phase_since: DateTime<Utc>,
    pub initial_sync_done: Option<DateTime<Utc>>,
    pub last_sync: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Per-user CompleteAfter (Set-MigrationUser); overrides the batch's.
    pub complete_after: Option<DateTime<Utc>>,
    /// Auxiliary archives of the source when the move was validated.
    pub aux_archives_at_start: u32,
    /// Bytes left in the running incremental sync.
    pub inc_left: u64,
}

impl MoveUser {
    /// Items copied so far (proportional to bytes).
    pub fn items_done(&self) -> u64 {
        (self.items_total * self.bytes_done)
            .checked_div(self.bytes_total)
            .unwrap_or(0)
    }

    pub fn percent(&self) -> u8 {
        if self.status == UserStatus::Completed {
            return 100;
        }
        if self.bytes_total == 0 {
            return if self.initial_sync_done.is_some() {
                95
            } else {
                0
            };
        }
        // Without completion a move stays at 95% (reference §4.1).
        ((self.bytes_done as f64 / self.bytes_total as f64) * 95.0).floor() as u8
    }
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub guid: Uuid,
    pub name: String,
    pub endpoint: Uuid,
    pub target_delivery_domain: String,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub start_after: Option<DateTime<Utc>>,
    pub complete_after: Option<DateTime<Utc>>,
    pub auto_complete: bool,
    pub stopped: bool,
    pub notification_emails: Vec<String>,
    pub users: Vec<MoveUser>,
    pub last_synced: Option<DateTime<Utc>>,
    pub finalized: Option<DateTime<Utc>>,
}

impl Batch {
    /// The batch status is derived from its users (EAC semantics, reference §2.10).
    pub fn status(&self) -> BatchStatus {
        if self.started.is_none() {
            return BatchStatus::Created;
        }
        if self.stopped {
            return BatchStatus::Stopped;
        }
        let count = |s: UserStatus| self.users.iter().filter(|u| u.status == s).count();
        let total = self.users.len();
        let failed = count(UserStatus::Failed);
        let completed = count(UserStatus::Completed);
        if total == 0 || failed == total {
            return BatchStatus::Failed;
        }
        if count(UserStatus::Completing) > 0 {
            return BatchStatus::Completing;
        }
        if count(UserStatus::Queued) + count(UserStatus::Syncing) > 0 {
            return BatchStatus::Syncing;
        }
        if completed > 0 && completed + failed == total {
            return if failed > 0 {
                BatchStatus::CompletedWithErrors
            } else {
                BatchStatus::Completed
            };
        }
        if failed > 0 {
            BatchStatus::SyncedWithErrors
        } else {
            BatchStatus::Synced
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status(),
            BatchStatus::Completed | BatchStatus::CompletedWithErrors | BatchStatus::Failed
        )
    }
}

/// Is the user (by target recipient) in another batch that still holds it?
pub fn in_other_batch(w: &World, target_tenant: Uuid, recipient: Uuid, except: Uuid) -> bool {
    w.tenant_by_id(target_tenant).is_some_and(|t| {
        t.batches.iter().any(|b| {
            b.guid != except
                && b.users
                    .iter()
                    .any(|u| u.target == Some(recipient) && u.status != UserStatus::Failed)
        })
    })
}

fn fail(u: &mut MoveUser, v: Violation, now: DateTime<Utc>) {
    u.status = UserStatus::Failed;
    u.error = Some(v);
    u.phase_since = now;
}

/// Validates one user for (re)start and queues it, or fails it with the first violation.
pub fn validate_and_queue(
    w: &World,
    ti: usize,
    bi: usize,
    ui: usize,
    now: DateTime<Utc>,
) -> MoveUser {
    let t = &w.tenants[ti];
    let b = &t.batches[bi];
    let mut u = b.users[ui].clone();
    u.error = None;
    let email = u.email.clone();
    let Some(target) = u.target.and_then(|g| t.recipients.by_guid(g)) else {
        fail(
            &mut u,
            Violation {
                exception: "Microsoft.Exchange.Migration.MigrationRecipientNotFoundException",
                message: format!(
                    "A recipient with the email address '{}' couldn't be found in the target organization.",
                    email
                ),
            },
            now,
        );
        return u;
    };
    if in_other_batch(w, t.id, target.guid, b.guid) {
        fail(
            &mut u,
            Violation {
                exception: "Microsoft.Exchange.Migration.UserDuplicateInOtherBatchException",
                message: format!(
                    "The user '{}' already exists in another migration batch.",
                    email
                ),
            },
            now,
        );
        return u;
    }
    let Some(ep) = t.endpoints.iter().find(|e| e.guid == b.endpoint) else {
        fail(
            &mut u,
            Violation {
                exception: "Microsoft.Exchange.Migration.MigrationEndpointNotFoundException",
                message: "The migration endpoint of the batch no longer exists.".into(),
            },
            now,
        );
        return u;
    };
    if let Some(v) = rules::org_checks(w, t, ep).into_iter().next() {
        fail(&mut u, v, now);
        return u;
    }
    match rules::user_checks(w, t, ep, target) {
        Err(vs) => {
            if let Some(v) = vs.into_iter().next() {
                fail(&mut u, v, now);
            }
        }
        Ok((si, ri)) => {
            let s = &w.tenants[si];
            let r = &s.recipients[ri];
            let tdd = &b.target_delivery_domain;
            let has_tdd_proxy = target.email_addresses.iter().any(|a| {
                a.split_once(':').is_some_and(|(p, x)| {
                    p.eq_ignore_ascii_case("smtp")
                        && x.rsplit('@')
                            .next()
                            .is_some_and(|d| d.eq_ignore_ascii_case(tdd))
                })
            });
            if !has_tdd_proxy {
                fail(
                    &mut u,
                    Violation {
                        exception: "Microsoft.Exchange.Migration.TargetDeliveryDomainMismatchPermanentException",
                        message: format!(
                            "The target recipient '{}' has no proxy address in the target delivery domain '{tdd}'.",
                            target.name
                        ),
                    },
                    now,
                );
                return u;
            }
            u.source = Some((s.id, r.guid));
            let aux = r.archive_size_bytes; // aux archives are part of the archive size here
            u.bytes_total = r.size_bytes + aux;
            u.aux_archives_at_start = r.aux_archives;
            u.items_total = r.item_count;
            if u.status != UserStatus::Stopped || u.initial_sync_done.is_none() {
                u.status = UserStatus::Queued;
            } else {
                u.status = UserStatus::Synced;
            }
            if u.status == UserStatus::Queued {
                u.phase_since = now;
            }
        }
    }
    u
}

/// Starts (or resumes / retries) a batch: validates each waiting user and queues it.
pub fn start_batch(w: &mut World, ti: usize, bi: usize, now: DateTime<Utc>) {
    let t = &w.tenants[ti];
    let b = &t.batches[bi];
    let mut updated = Vec::new();
    for (ui, u) in b.users.iter().enumerate() {
        if matches!(u.status, UserStatus::Stopped | UserStatus::Failed) {
            updated.push((ui, validate_and_queue(w, ti, bi, ui, now)));
        }
    }
    let b = &mut w.tenants[ti].batches[bi];
    for (ui, u) in updated {
        b.users[ui] = u;
    }
    b.stopped = false;
    if b.started.is_none() {
        b.started = Some(now);
    }
    if w.tenants[ti].moves_cursor.is_none() {
        w.tenants[ti].moves_cursor = Some(now);
    }
}

/// Advances every batch of every tenant to `now`.
pub fn advance(w: &mut World, now: DateTime<Utc>, s: &MoveSettings) {
    for ti in 0..w.tenants.len() {
        if w.tenants[ti].batches.is_empty() {
            continue;
        }
        let mut cursor = w.tenants[ti].moves_cursor.unwrap_or(now).min(now);
        // Events already due at the cursor (a Complete-MigrationBatch or a start issued at
        // this instant) happen now, not at the next event.
        fire_events(w, ti, cursor, s);
        // Event loop: never step past the next discrete event.
        for _ in 0..100_000 {
            let next = next_event(w, ti, cursor, s)
                .map_or(now, |e| e.min(now))
                .max(cursor);
            progress(w, ti, cursor, next, s);
            cursor = next;
            fire_events(w, ti, cursor, s);
            if cursor >= now {
                break;
            }
        }
        w.tenants[ti].moves_cursor = Some(now);
    }
}

fn rate_per_sec(s: &MoveSettings) -> f64 {
    s.bytes_per_hour as f64 / 3600.0
}

fn next_event(
    w: &World,
    ti: usize,
    cursor: DateTime<Utc>,
    s: &MoveSettings,
) -> Option<DateTime<Utc>> {
    let t = &w.tenants[ti];
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |d: DateTime<Utc>| {
        if d > cursor {
            best = Some(best.map_or(d, |b| b.min(d)));
        }
    };
    for b in &t.batches {
        if b.started.is_none() || b.stopped {
            continue;
        }
        if let Some(sa) = b.start_after {
            consider(sa);
        }
        if let Some(ca) = b.complete_after {
            consider(ca);
        }
        for u in &b.users {
            match u.status {
                UserStatus::Queued => consider(u.phase_since + s.queue_delay),
                UserStatus::Syncing => {
                    let left = u.bytes_total.saturating_sub(u.bytes_done) as f64;
                    let secs = (left / rate_per_sec(s)).ceil() as i64;
                    consider(cursor + Duration::seconds(secs.max(1)));
                }
                UserStatus::Synced => {
                    if let Some(l) = u.last_sync {
                        consider(l + s.incremental_interval);
                    }
                    if let Some(c) = u.complete_after {
                        consider(c);
                    }
                }
                UserStatus::IncrementalSyncing => {
                    let secs = (u.inc_left as f64 / rate_per_sec(s)).ceil() as i64;
                    consider(cursor + Duration::seconds(secs.max(1)));
                }
                UserStatus::Completing => consider(u.phase_since + s.completion_duration),
                _ => {}
            }
        }
    }
    best
}

fn progress(w: &mut World, ti: usize, from: DateTime<Utc>, to: DateTime<Utc>, s: &MoveSettings) {
    let secs = (to - from).num_milliseconds() as f64 / 1000.0;
    if secs <= 0.0 {
        return;
    }
    let add = (secs * rate_per_sec(s)) as u64;
    for b in &mut w.tenants[ti].batches {
        if b.stopped {
            continue;
        }
        for u in &mut b.users {
            if u.status == UserStatus::Syncing {
                u.bytes_done = (u.bytes_done + add).min(u.bytes_total);
            }
            if u.status == UserStatus::IncrementalSyncing {
                u.inc_left = u.inc_left.saturating_sub(add);
            }
        }
    }
}

fn fire_events(w: &mut World, ti: usize, now: DateTime<Utc>, s: &MoveSettings) {
    // 1. Finish initial syncs, completions and incremental syncs.
    let mut to_complete: Vec<(usize, usize)> = Vec::new();
    {
        let t = &mut w.tenants[ti];
        for (bi, b) in t.batches.iter_mut().enumerate() {
            if b.started.is_none() || b.stopped {
                continue;
            }
            let batch_due = b.auto_complete || b.complete_after.is_some_and(|c| c <= now);
            for (ui, u) in b.users.iter_mut().enumerate() {
                match u.status {
                    UserStatus::Syncing if u.bytes_done >= u.bytes_total => {
                        u.status = UserStatus::Synced;
                        u.initial_sync_done = Some(now);
                        u.last_sync = Some(now);
                        u.phase_since = now;
                        b.last_synced = Some(now);
                    }
                    UserStatus::IncrementalSyncing if u.inc_left == 0 => {
                        u.status = UserStatus::Synced;
                        u.last_sync = Some(now);
                        u.phase_since = now;
                        b.last_synced = Some(now);
                    }
                    UserStatus::Completing if u.phase_since + s.completion_duration <= now => {
                        to_complete.push((bi, ui));
                    }
                    _ => {}
                }
                // User-level settings override batch-level ones (reference §2.7).
                let complete_due = match u.complete_after {
                    Some(c) => c <= now,
                    None => batch_due,
                };
                if u.status == UserStatus::Synced && complete_due {
                    u.status = UserStatus::Completing;
                    u.phase_since = now;
                }
            }
        }
    }
    for (bi, ui) in to_complete {
        complete_user(w, ti, bi, ui, now);
    }
    // 2. Start queued users while the endpoint has free slots (oldest first).
    let t = &mut w.tenants[ti];
    let mut active_per_endpoint: Vec<(Uuid, u32)> = Vec::new();
    for b in &t.batches {
        let n = b
            .users
            .iter()
            .filter(|u| u.status == UserStatus::Syncing)
            .count() as u32;
        match active_per_endpoint
            .iter_mut()
            .find(|(e, _)| *e == b.endpoint)
        {
            Some((_, c)) => *c += n,
            None => active_per_endpoint.push((b.endpoint, n)),
        }
    }
    let limits: Vec<(Uuid, u32)> = t
        .endpoints
        .iter()
        .map(|e| (e.guid, e.max_concurrent_migrations))
        .collect();
    let mut order: Vec<(DateTime<Utc>, usize, usize)> = Vec::new();
    for (bi, b) in t.batches.iter().enumerate() {
        if b.started.is_none() || b.stopped || b.start_after.is_some_and(|sa| sa > now) {
            continue;
        }
        for (ui, u) in b.users.iter().enumerate() {
            if u.status == UserStatus::Queued && u.phase_since + s.queue_delay <= now {
                order.push((u.phase_since, bi, ui));
            }
        }
    }
    order.sort();
    for (_, bi, ui) in order {
        let ep = t.batches[bi].endpoint;
        let limit = limits.iter().find(|(e, _)| *e == ep).map_or(0, |(_, l)| *l);
        let Some(slot) = active_per_endpoint.iter_mut().find(|(e, _)| *e == ep) else {
            continue;
        };
        if slot.1 >= limit {
            continue;
        }
        slot.1 += 1;
        let u = &mut t.batches[bi].users[ui];
        u.status = UserStatus::Syncing;
        u.phase_since = now;
    }
    // 3. Start due incremental syncs within MaxConcurrentIncrementalSyncs (oldest first).
    let mut inc_per_endpoint: Vec<(Uuid, u32)> = Vec::new();
    for b in &t.batches {
        let n = b
            .users
            .iter()
            .filter(|u| u.status == UserStatus::IncrementalSyncing)
            .count() as u32;
        match inc_per_endpoint.iter_mut().find(|(e, _)| *e == b.endpoint) {
            Some((_, c)) => *c += n,
            None => inc_per_endpoint.push((b.endpoint, n)),
        }
    }
    let inc_limits: Vec<(Uuid, u32)> = t
        .endpoints
        .iter()
        .map(|e| (e.guid, e.max_concurrent_incremental_syncs))
        .collect();
    let mut due: Vec<(DateTime<Utc>, usize, usize)> = Vec::new();
    for (bi, b) in t.batches.iter().enumerate() {
        if b.started.is_none() || b.stopped {
            continue;
        }
        for (ui, u) in b.users.iter().enumerate() {
            if u.status == UserStatus::Synced
                && let Some(l) = u.last_sync
                && l + s.incremental_interval <= now
            {
                due.push((l, bi, ui));
            }
        }
    }
    due.sort();
    for (_, bi, ui) in due {
        let ep = t.batches[bi].endpoint;
        let limit = inc_limits
            .iter()
            .find(|(e, _)| *e == ep)
            .map_or(0, |(_, l)| *l);
        let Some(slot) = inc_per_endpoint.iter_mut().find(|(e, _)| *e == ep) else {
            continue;
        };
        if slot.1 >= limit {
            continue;
        }
        slot.1 += 1;
        let u = &mut t.batches[bi].users[ui];
        // An incremental copies the day's changes: 1 % of the mailbox, at least 1 MiB.
        u.inc_left = (u.bytes_total / 100).max(1024 * 1024);
        u.status = UserStatus::IncrementalSyncing;
        u.phase_since = now;
    }
}

/// A hold placed or an auxiliary archive provisioned while the move ran blocks completion.
fn source_changed_mid_move(
    w: &World,
    src_tid: Uuid,
    src_guid: Uuid,
    u: &MoveUser,
) -> Option<Violation> {
    let s = w.tenants.iter().find(|t| t.id == src_tid)?;
    let r = s.recipients.by_guid(src_guid)?;
    if r.aux_archives > u.aux_archives_at_start {
        return Some(Violation {
            exception: "Microsoft.Exchange.Migration.SourceAuxArchiveIsProvisionedDuringCrossTenantMovePermanentException",
            message: format!(
                "An auxiliary archive was provisioned for '{}' during the cross-tenant move. Remove the user from the batch and submit it in a new batch.",
                r.name
            ),
        });
    }
    let h = &r.holds;
    if h.litigation_hold
        || h.delay_hold
        || h.delay_release_hold
        || h.compliance_tag_hold
        || h.org_wide_hold
        || !h.in_place_holds.is_empty()
    {
        return Some(Violation {
            exception: "Microsoft.Exchange.Migration.SourceMailboxOnHoldPermanentException",
            message: format!(
                "The source mailbox '{}' is on hold. Mailboxes that are on any type of hold aren't migrated, and the move for those mailboxes is blocked.",
                r.name
            ),
        });
    }
    None
}

/// Completion effects (reference §4): the source mailbox becomes a MailUser pointing at the
/// target proxy in the TargetDeliveryDomain; the target MailUser becomes the mailbox. Send-on-
/// behalf delegates are not carried over. A foreign SMTP proxy on the target blocks conversion.
fn complete_user(w: &mut World, ti: usize, bi: usize, ui: usize, now: DateTime<Utc>) {
    let (src_tid, src_guid) = match w.tenants[ti].batches[bi].users[ui].source {
        Some(s) => s,
        None => return,
    };
    let tdd = w.tenants[ti].batches[bi].target_delivery_domain.clone();
    let Some(tgt_guid) = w.tenants[ti].batches[bi].users[ui].target else {
        return;
    };
    let Some(tri) = w.tenants[ti]
        .recipients
        .iter()
        .position(|r| r.guid == tgt_guid)
    else {
        return;
    };
    // Re-check what can change in the source during the sync window (reference X §5).
    if let Some(v) =
        source_changed_mid_move(w, src_tid, src_guid, &w.tenants[ti].batches[bi].users[ui])
    {
        fail(&mut w.tenants[ti].batches[bi].users[ui], v, now);
        return;
    }
    // Re-check what can change in the target during the sync window.
    let foreign = {
        let t = &w.tenants[ti];
        t.recipients[tri]
            .email_addresses
            .iter()
            .find(|a| {
                a.split_once(':').is_some_and(|(p, x)| {
                    p.eq_ignore_ascii_case("smtp")
                        && !t.is_accepted_domain(x.rsplit('@').next().unwrap_or(""))
                })
            })
            .cloned()
    };
    if let Some(a) = foreign {
        let u = &mut w.tenants[ti].batches[bi].users[ui];
        fail(
            u,
            Violation {
                exception: "Microsoft.Exchange.Migration.NotAcceptedDomainException",
                message: format!(
                    "The proxy address '{a}' isn't in an accepted domain of the target organization; the MailUser can't be converted to a mailbox."
                ),
            },
            now,
        );
        return;
    }
    let target_proxy = w.tenants[ti].recipients[tri]
        .email_addresses
        .iter()
        .find_map(|a| {
            a.split_once(':').and_then(|(p, x)| {
                (p.eq_ignore_ascii_case("smtp")
                    && x.rsplit('@')
                        .next()
                        .is_some_and(|d| d.eq_ignore_ascii_case(&tdd)))
                .then(|| x.to_string())
            })
        })
        .unwrap_or_default();
    let Some(si) = w.tenants.iter().position(|t| t.id == src_tid) else {
        return;
    };
    let Some(sri) = w.tenants[si].recipients.position_by_guid(src_guid) else {
        return;
    };
    let src = w.tenants[si].recipients[sri].clone();
    {
        let mut r = w.tenants[si].recipients.get_mut(sri);
        let kind = r.recipient_type_details().to_string();
        r.kind = RecipientKind::MailUser;
        r.external_email_address = Some(format!("SMTP:{target_proxy}"));
        r.previous_recipient_type_details = Some(kind);
        r.size_bytes = 0;
        r.item_count = 0;
        r.archive_size_bytes = 0;
        r.aux_archives = 0;
        r.total_deleted_item_bytes = 0;
        r.grant_send_on_behalf_to.clear();
    }
    // Delegations pointing at the moved mailbox stay in the source.
    {
        let mut r = w.tenants[ti].recipients.get_mut(tri);
        r.kind = src.kind.clone();
        r.external_email_address = None;
        r.size_bytes = src.size_bytes;
        r.item_count = src.item_count;
        r.archive_size_bytes = src.archive_size_bytes;
        r.aux_archives = src.aux_archives;
        r.total_deleted_item_bytes = src.total_deleted_item_bytes;
        r.grant_send_on_behalf_to.clear();
    }
    let b = &mut w.tenants[ti].batches[bi];
    let u = &mut b.users[ui];
    u.status = UserStatus::Completed;
    u.completed_at = Some(now);
    u.bytes_done = u.bytes_total;
    u.phase_since = now;
    if b.users.iter().all(|u| !u.status.active()) {
        b.finalized = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::fixture::Fixture;
    use crate::sim::state::MigrationEndpoint;

    const GB: u64 = 1 << 30;

    fn user(bytes: u64, now: DateTime<Utc>) -> MoveUser {
        MoveUser {
            guid: Uuid::new_v4(),
            email: "u@x".into(),
            target: Some(Uuid::new_v4()),
            source: Some((Uuid::new_v4(), Uuid::new_v4())),
            status: UserStatus::Queued,
            bytes_total: bytes,
            bytes_done: 0,
            items_total: 100,
            error: None,
            phase_since: now,
            initial_sync_done: None,
            last_sync: None,
            completed_at: None,
            complete_after: None,
            aux_archives_at_start: 0,
            inc_left: 0,
        }
    }

    fn world(now: DateTime<Utc>, limit: u32, sizes: &[u64]) -> World {
        let fx = Fixture::parse(
            "tenants:\n  - id: 9c4e7d2b-1a5f-4c8e-b3d6-7e0f1a2b3c02\n    displayName: T\n    initialDomain: t.onmicrosoft.com\n    adminApp: {clientId: 5d8f2a10-6c3b-4e9a-8f70-1b2c3d4e5f02, displayName: a}\n",
        )
        .expect("fixture");
        let mut w = World::from_fixture(&fx, now).expect("world");
        let ep = Uuid::new_v4();
        let t = &mut w.tenants[0];
        t.endpoints.push(MigrationEndpoint {
            guid: ep,
            name: "ep".into(),
            remote_server: "outlook.office.com".into(),
            remote_tenant: None,
            application_id: None,
            username: None,
            max_concurrent_migrations: limit,
            max_concurrent_incremental_syncs: 20,
        });
        t.batches.push(Batch {
            guid: Uuid::new_v4(),
            name: "b".into(),
            endpoint: ep,
            target_delivery_domain: "t.onmicrosoft.com".into(),
            created: now,
            started: Some(now),
            start_after: None,
            complete_after: None,
            auto_complete: false,
            stopped: false,
            notification_emails: vec![],
            users: sizes.iter().map(|s| user(*s, now)).collect(),
            last_synced: None,
            finalized: None,
        });
        t.moves_cursor = Some(now);
        w
    }

    fn statuses(w: &World) -> Vec<(UserStatus, u64)> {
        w.tenants[0].batches[0]
            .users
            .iter()
            .map(|u| (u.status, u.bytes_done))
            .collect()
    }

    #[test]
    fn concurrency_cap_limits_simultaneous_initial_syncs() {
        let now = Utc::now();
        let s = MoveSettings::default();
        let mut w = world(now, 2, &[GB, GB, GB]);
        advance(&mut w, now + Duration::minutes(6), &s);
        let st = statuses(&w);
        assert_eq!(
            st.iter().filter(|(s, _)| *s == UserStatus::Syncing).count(),
            2
        );
        assert_eq!(st[2].0, UserStatus::Queued);
        // 1 GB at 2 GB/h: the first two finish after 30 min, then the third starts.
        advance(&mut w, now + Duration::minutes(40), &s);
        let st = statuses(&w);
        assert_eq!(
            (st[0].0, st[1].0, st[2].0),
            (UserStatus::Synced, UserStatus::Synced, UserStatus::Syncing)
        );
        assert_eq!(w.tenants[0].batches[0].status(), BatchStatus::Syncing);
        advance(&mut w, now + Duration::hours(2), &s);
        assert_eq!(w.tenants[0].batches[0].status(), BatchStatus::Synced);
        assert!(
            w.tenants[0].batches[0]
                .users
                .iter()
                .all(|u| u.percent() == 95)
        );
    }

    #[test]
    fn one_big_jump_equals_many_small_steps() {
        let now = Utc::now();
        let s = MoveSettings::default();
        let sizes = [3 * GB, GB / 2, 5 * GB, 7 * GB / 3];
        let mut a = world(now, 2, &sizes);
        let mut b = world(now, 2, &sizes);
        advance(&mut a, now + Duration::hours(7), &s);
        for m in 1..=(7 * 60) {
            advance(&mut b, now + Duration::minutes(m), &s);
        }
        let (sa, sb) = (statuses(&a), statuses(&b));
        for (x, y) in sa.iter().zip(&sb) {
            assert_eq!(x.0, y.0);
            // Rounding per step may differ by a few bytes per minute stepped.
            assert!(x.1.abs_diff(y.1) < 1024 * 1024, "{x:?} vs {y:?}");
        }
    }

    #[test]
    fn incremental_syncs_every_day_within_their_own_limit() {
        let now = Utc::now();
        let s = MoveSettings::default();
        let mut w = world(now, 10, &[GB, GB, GB]);
        w.tenants[0].endpoints[0].max_concurrent_incremental_syncs = 1;
        advance(&mut w, now + Duration::hours(1), &s);
        assert!(
            w.tenants[0].batches[0]
                .users
                .iter()
                .all(|u| u.status == UserStatus::Synced)
        );
        let synced_at = w.tenants[0].batches[0].users[0].last_sync.expect("synced");
        // One day later: one incremental runs, the others wait for the slot.
        advance(&mut w, synced_at + Duration::hours(24), &s);
        let st = statuses(&w);
        let running = st
            .iter()
            .filter(|(s, _)| *s == UserStatus::IncrementalSyncing)
            .count();
        assert_eq!(running, 1, "{st:?}");
        assert_eq!(w.tenants[0].batches[0].status(), BatchStatus::Synced);
        // 1 % of 1 GB at 2 GB/h takes ~18 s each; all done a minute later.
        advance(
            &mut w,
            synced_at + Duration::hours(24) + Duration::minutes(1),
            &s,
        );
        let users = &w.tenants[0].batches[0].users;
        assert!(users.iter().all(|u| u.status == UserStatus::Synced));
        assert!(users.iter().all(|u| {
            u.last_sync
                .is_some_and(|l| l >= synced_at + Duration::hours(24))
        }));
    }

    #[test]
    fn batch_status_is_derived_from_users() {
        let now = Utc::now();
        let mut w = world(now, 10, &[GB, GB]);
        let b = &mut w.tenants[0].batches[0];
        b.users[0].status = UserStatus::Synced;
        b.users[1].status = UserStatus::Failed;
        assert_eq!(b.status(), BatchStatus::SyncedWithErrors);
        b.users[0].status = UserStatus::Completed;
        assert_eq!(b.status(), BatchStatus::CompletedWithErrors);
        b.users[1].status = UserStatus::Completed;
        assert_eq!(b.status(), BatchStatus::Completed);
        b.users[0].status = UserStatus::Failed;
        b.users[1].status = UserStatus::Failed;
        assert_eq!(b.status(), BatchStatus::Failed);
        b.started = None;
        assert_eq!(b.status(), BatchStatus::Created);
    }
}
