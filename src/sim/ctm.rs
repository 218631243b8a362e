//! Graph `crossTenantMigrationJob` (reference G §1): jobs live in the target tenant and run as
//! a state machine on the simulated clock. Validation reuses the cross-tenant rules; migration
//! drives an Exchange migration batch through the move engine, so both views stay consistent.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::moves::{self, Batch, BatchStatus, MoveUser, UserStatus};
use super::rules::{self, Violation};
use super::state::{RecipientKind, World};

/// Job status values on the wire (`crossTenantMigrationJobStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Submitted,
    ValidateSubmitted,
    ValidateInProgress,
    ValidatePassed,
    ValidateFailed,
    Processing,
    InProgress,
    CuttingOver,
    Completed,
    CompletedWithErrors,
    Failed,
    PendingCancel,
    Cancelled,
    PendingDelete,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Submitted => "submitted",
            JobStatus::ValidateSubmitted => "validateSubmitted",
            JobStatus::ValidateInProgress => "validateInProgress",
            JobStatus::ValidatePassed => "validatePassed",
            JobStatus::ValidateFailed => "validateFailed",
            JobStatus::Processing => "processing",
            JobStatus::InProgress => "inProgress",
            JobStatus::CuttingOver => "cuttingOver",
            JobStatus::Completed => "completed",
            JobStatus::CompletedWithErrors => "completedWithErrors",
            JobStatus::Failed => "failed",
            JobStatus::PendingCancel => "pendingCancel",
            JobStatus::Cancelled => "cancelled",
            JobStatus::PendingDelete => "pendingDelete",
        }
    }

    pub fn can_validate(self) -> bool {
        matches!(self, JobStatus::Submitted | JobStatus::ValidateFailed)
    }

    pub fn can_migrate(self) -> bool {
        matches!(
            self,
            JobStatus::ValidatePassed | JobStatus::Failed | JobStatus::CompletedWithErrors
        )
    }

    pub fn can_cancel(self) -> bool {
        matches!(
            self,
            JobStatus::Submitted
                | JobStatus::ValidateSubmitted
                | JobStatus::ValidateInProgress
                | JobStatus::ValidatePassed
                | JobStatus::ValidateFailed
                | JobStatus::Processing
                | JobStatus::InProgress
        )
    }

    /// "Final state (Completed, Failed, or Cancelled)" (G §1.6); completedWithErrors is treated
    /// as final too (unconfirmed in the reference).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed
                | JobStatus::CompletedWithErrors
                | JobStatus::Failed
                | JobStatus::Cancelled
        )
    }
}

/// One user's validation outcome for the Exchange workload.
#[derive(Debug, Clone)]
pub struct TaskCheck {
    pub user: Uuid,
    pub errors: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub display_name: String,
    pub migrate: bool,
    pub status: JobStatus,
    pub message: String,
    pub source_tenant_id: Uuid,
    pub complete_after: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub created_by: String,
    pub last_updated: DateTime<Utc>,
    pub source_endpoint: String,
    pub target_delivery_domain: String,
    pub workloads: Vec<String>,
    pub resources: Vec<Uuid>,
    pub validated_at: Option<DateTime<Utc>>,
    pub phase_since: DateTime<Utc>,
    pub checks: Vec<TaskCheck>,
    /// Users cancelled individually.
    pub cancelled_users: Vec<Uuid>,
    /// The Exchange batch that carries the moves.
    pub batch: Option<Uuid>,
}

/// Knobs for the job state machine (simulated time).
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub validation_delay: Duration,
    pub validation_duration: Duration,
    pub processing_delay: Duration,
    pub cancel_delay: Duration,
    pub delete_delay: Duration,
    pub validation_expiry: Duration,
    /// Graph doc: 2,000 per job; orchestrator doc: 100 (G §6) — configurable.
    pub max_users_per_job: usize,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            validation_delay: Duration::minutes(1),
            validation_duration: Duration::minutes(2),
            processing_delay: Duration::minutes(2),
            cancel_delay: Duration::minutes(1),
            delete_delay: Duration::minutes(1),
            validation_expiry: Duration::days(7),
            max_users_per_job: 2000,
        }
    }
}

fn code_for(v: &Violation) -> &'static str {
    let e = v.exception;
    if e.ends_with("CrossTenantMigrationWithoutLicensePermanentException") {
        "EXCH-08"
    } else if e.ends_with("UserDuplicateInOtherBatchException") {
        "CTM-002"
    } else if e.ends_with("MissingExchangeGuidException")
        || e.ends_with("ArchiveGuidMismatchPermanentException")
        || e.ends_with("MissingLegacyExchangeDNProxyPermanentException")
        || e.ends_with("MigrationRecipientNotFoundException")
        || e.ends_with("TargetRecipientIsMailboxPermanentException")
    {
        "IM-003"
    } else if e.ends_with("MailboxNotInCrossTenantMigrationScopeException") {
        "MIGR-004"
    } else if e.ends_with("CrossTenantMigrationConfigurationException") {
        "MIGR-001"
    } else {
        "EXCH-15"
    }
}

/// Validates every resource of a job (pure).
pub fn validate(w: &World, ti: usize, job: &Job) -> Vec<TaskCheck> {
    let t = &w.tenants[ti];
    let ep = t
        .endpoints
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(&job.source_endpoint));
    let org = ep.map(|e| rules::org_checks(w, t, e)).unwrap_or_default();
    let source_ok = ep
        .and_then(|e| e.remote_tenant.as_deref())
        .and_then(|d| w.tenant(d))
        .is_some_and(|s| s.id == job.source_tenant_id);
    job.resources
        .iter()
        .map(|u| {
            let mut errors = Vec::new();
            match ep {
                None => errors.push((
                    "EXCH-07".to_string(),
                    format!("Migration endpoint '{}' was not found in the target tenant.", job.source_endpoint),
                )),
                Some(_) if !source_ok => errors.push((
                    "EXCH-07".to_string(),
                    "The migration endpoint's RemoteTenant isn't the job's source tenant.".to_string(),
                )),
                Some(e) => {
                    if let Some(v) = org.first() {
                        errors.push((code_for(v).to_string(), v.message.clone()));
                    } else {
                        match t.recipients.by_user(*u) {
                            None => errors.push((
                                "IM-003".to_string(),
                                format!("Identity mapping failed: target user {u} was not found or isn't mail-enabled."),
                            )),
                            Some(r) => {
                                let busy = t.batches.iter().find(|b| {
                                    Some(b.guid) != job.batch
                                        && b.users.iter().any(|x| {
                                            x.target == Some(r.guid) && x.status != UserStatus::Failed
                                        })
                                });
                                if let Some(b) = busy {
                                    errors.push((
                                        "CTM-002".to_string(),
                                        format!("User migration validation failed. User is already a part of another batch {}", b.name),
                                    ));
                                } else if let Err(vs) = rules::user_checks(w, t, e, r) {
                                    for v in vs {
                                        errors.push((code_for(&v).to_string(), v.message));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            TaskCheck { user: *u, errors }
        })
        .collect()
}

/// Exchange service status of one user, as the `users` endpoint reports it (G §1.6 table).
pub fn exchange_status(
    w: &World,
    ti: usize,
    job: &Job,
    user: Uuid,
) -> (&'static str, Vec<(String, String)>) {
    let check = job.checks.iter().find(|c| c.user == user);
    let errs = check.map(|c| c.errors.clone()).unwrap_or_default();
    if job.cancelled_users.contains(&user) || job.status == JobStatus::Cancelled {
        return ("cancelled", Vec::new());
    }
    if job.status == JobStatus::PendingCancel {
        return ("pendingCancel", Vec::new());
    }
    match job.status {
        JobStatus::Submitted | JobStatus::ValidateSubmitted | JobStatus::ValidateInProgress => {
            return ("notStarted", Vec::new());
        }
        JobStatus::ValidatePassed | JobStatus::ValidateFailed => {
            return if errs.is_empty() {
                ("valid", errs)
            } else {
                ("invalid", errs)
            };
        }
        JobStatus::Processing => return ("notStarted", Vec::new()),
        _ => {}
    }
    let t = &w.tenants[ti];
    let mu = t
        .batches
        .iter()
        .find(|b| Some(b.guid) == job.batch)
        .and_then(|b| {
            let r = t.recipients.by_user(user)?;
            b.users.iter().find(|u| u.target == Some(r.guid))
        });
    match mu {
        None => ("failed", errs),
        Some(u) => {
            let errs = u
                .error
                .as_ref()
                .map(|v| vec![(code_for(v).to_string(), v.message.clone())])
                .unwrap_or_default();
            let s = match u.status {
                UserStatus::Queued | UserStatus::Syncing | UserStatus::Stopped => "syncing",
                UserStatus::Synced | UserStatus::IncrementalSyncing => "synced",
                UserStatus::Completing => "finalizing",
                UserStatus::Completed => "completed",
                UserStatus::Failed => "failed",
            };
            (s, errs)
        }
    }
}

fn batch_name(w: &World, ti: usize, job: &Job) -> String {
    let t = &w.tenants[ti];
    let mut name = job.display_name.clone();
    let mut n = 1;
    while t.batches.iter().any(|b| b.name.eq_ignore_ascii_case(&name)) {
        n += 1;
        name = format!("{}-{n}", job.display_name);
    }
    name
}

/// Creates (or restarts) the Exchange batch of a job.
fn start_moves(w: &mut World, ti: usize, ji: usize, now: DateTime<Utc>) {
    let job = w.tenants[ti].ctm_jobs[ji].clone();
    let existing = job
        .batch
        .and_then(|g| w.tenants[ti].batches.iter().position(|b| b.guid == g));
    let bi = match existing {
        Some(bi) => bi,
        None => {
            let name = batch_name(w, ti, &job);
            let t = &w.tenants[ti];
            let Some(ep) = t
                .endpoints
                .iter()
                .find(|e| e.name.eq_ignore_ascii_case(&job.source_endpoint))
            else {
                return;
            };
            let users: Vec<MoveUser> = job
                .resources
                .iter()
                .filter(|u| !job.cancelled_users.contains(u))
                .filter_map(|u| t.recipients.by_user(*u))
                .filter(|r| r.kind == RecipientKind::MailUser)
                .map(|r| MoveUser {
                    guid: Uuid::new_v4(),
                    email: r.primary_smtp().to_string(),
                    target: Some(r.guid),
                    source: None,
                    status: UserStatus::Stopped,
                    bytes_total: 0,
                    bytes_done: 0,
                    items_total: 0,
                    error: None,
                    phase_since: now,
                    initial_sync_done: None,
                    last_sync: None,
                    completed_at: None,
                    complete_after: None,
                    aux_archives_at_start: 0,
                    inc_left: 0,
                })
                .collect();
            let b = Batch {
                guid: Uuid::new_v4(),
                name,
                endpoint: ep.guid,
                target_delivery_domain: job.target_delivery_domain.clone(),
                created: now,
                started: None,
                start_after: None,
                complete_after: Some(job.complete_after),
                auto_complete: false,
                stopped: false,
                notification_emails: Vec::new(),
                users,
                last_synced: None,
                finalized: None,
            };
            let g = b.guid;
            w.tenants[ti].batches.push(b);
            w.tenants[ti].ctm_jobs[ji].batch = Some(g);
            w.tenants[ti].batches.len() - 1
        }
    };
    moves::start_batch(w, ti, bi, now);
}

/// Advances every job of every tenant to `now`.
pub fn advance(w: &mut World, now: DateTime<Utc>, s: &JobSettings) {
    for ti in 0..w.tenants.len() {
        let mut ji = 0;
        while ji < w.tenants[ti].ctm_jobs.len() {
            let mut removed = false;
            for _ in 0..8 {
                let job = &w.tenants[ti].ctm_jobs[ji];
                let since = job.phase_since;
                let next = match job.status {
                    JobStatus::ValidateSubmitted if now >= since + s.validation_delay => {
                        Some((JobStatus::ValidateInProgress, since + s.validation_delay))
                    }
                    JobStatus::ValidateInProgress if now >= since + s.validation_duration => {
                        let at = since + s.validation_duration;
                        let checks = validate(w, ti, &w.tenants[ti].ctm_jobs[ji]);
                        let ok = checks.iter().all(|c| c.errors.is_empty());
                        let j = &mut w.tenants[ti].ctm_jobs[ji];
                        j.checks = checks;
                        j.validated_at = Some(at);
                        j.message = if ok {
                            "Validation passed.".into()
                        } else {
                            "Validation failed for one or more users.".into()
                        };
                        Some((
                            if ok {
                                JobStatus::ValidatePassed
                            } else {
                                JobStatus::ValidateFailed
                            },
                            at,
                        ))
                    }
                    JobStatus::Processing if now >= since + s.processing_delay => {
                        let at = since + s.processing_delay;
                        start_moves(w, ti, ji, at);
                        Some((JobStatus::InProgress, at))
                    }
                    JobStatus::InProgress | JobStatus::CuttingOver => {
                        let b = job
                            .batch
                            .and_then(|g| w.tenants[ti].batches.iter().find(|b| b.guid == g));
                        match b.map(Batch::status) {
                            Some(BatchStatus::Completed) => Some((JobStatus::Completed, now)),
                            Some(BatchStatus::CompletedWithErrors) => {
                                Some((JobStatus::CompletedWithErrors, now))
                            }
                            Some(BatchStatus::Failed) | None => Some((JobStatus::Failed, now)),
                            Some(BatchStatus::Completing)
                                if job.status == JobStatus::InProgress =>
                            {
                                Some((JobStatus::CuttingOver, now))
                            }
                            _ => None,
                        }
                    }
                    JobStatus::PendingCancel if now >= since + s.cancel_delay => {
                        let at = since + s.cancel_delay;
                        if let Some(g) = job.batch {
                            w.tenants[ti].batches.retain(|b| b.guid != g);
                        }
                        w.tenants[ti].ctm_jobs[ji].batch = None;
                        Some((JobStatus::Cancelled, at))
                    }
                    JobStatus::PendingDelete if now >= since + s.delete_delay => {
                        w.tenants[ti].ctm_jobs.remove(ji);
                        removed = true;
                        None
                    }
                    _ => None,
                };
                match next {
                    Some((st, at)) => {
                        let j = &mut w.tenants[ti].ctm_jobs[ji];
                        if j.status == st {
                            break;
                        }
                        j.status = st;
                        j.phase_since = at;
                        j.last_updated = at;
                        match st {
                            JobStatus::Completed => {
                                j.message = "The batch and all of its users have been successfully migrated with no failures.".into();
                            }
                            JobStatus::CompletedWithErrors => {
                                j.message =
                                    "The batch completed; some users failed to migrate.".into();
                            }
                            JobStatus::Failed => j.message = "The migration failed.".into(),
                            JobStatus::Cancelled => {
                                j.message = "The migration job was cancelled.".into()
                            }
                            _ => {}
                        }
                    }
                    None => break,
                }
                if removed {
                    break;
                }
            }
            if !removed {
                ji += 1;
            }
        }
    }
}

pub fn is_busy(job: &Job) -> bool {
    !matches!(
        job.status,
        JobStatus::Submitted
            | JobStatus::ValidatePassed
            | JobStatus::ValidateFailed
            | JobStatus::Completed
            | JobStatus::CompletedWithErrors
            | JobStatus::Failed
            | JobStatus::Cancelled
    )
}
