//! MigrationBatch reconcile: prepare users (preflight + target MailUser + scope group), create the
//! Exchange batch, follow it with a bounded number of calls per poll, complete it when the gate
//! opens, and report per-user state. Tenant errors become status with persisted backoff.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{EventType, Recorder};
use kube::{Api, Resource, ResourceExt};

use super::plan::{self, BatchView, Step};
use super::post;
use super::preflight::{self, Policy, Severity, UserFacts};
use super::target_user;
use super::users;
use crate::api::conditions::{Desired, is_true, merge, reasons, types};
use crate::api::*;
use crate::controller::context::{Context, PairClients, TenantClients};
use crate::controller::error::{ReconcileError, Result};
use crate::controller::status::event;
use crate::tenant::exchange::NewBatch;
use crate::tenant::exchange::types::byte_size;

pub const MANAGER: &str = "t2t.dev/migrationbatch";
/// Users prepared per pass (bounded work; the rest follow on the next pass).
const PREPARE_PER_PASS: usize = 100;
/// Per-user statistics calls per poll (percent of syncing users), independent of batch size.
const STATS_PER_POLL: usize = 10;
/// Times failed users are retried with Start-MigrationBatch.
const MAX_RETRIES: u32 = 2;

/// The Exchange batch name: spec, or `<namespace>-<name>` cut to 64 characters.
pub fn exchange_batch_name(mb: &MigrationBatch) -> String {
    mb.spec.exchange_batch_name.clone().unwrap_or_else(|| {
        format!("{}-{}", mb.namespace().unwrap_or_default(), mb.name_any())
            .chars()
            .take(64)
            .collect()
    })
}

async fn user_list(ctx: &Context, mb: &MigrationBatch) -> Result<Vec<BatchUser>> {
    let list = match &mb.spec.users_from {
        Some(r) => {
            let cms: Api<ConfigMap> =
                Api::namespaced(ctx.client.clone(), &mb.namespace().unwrap_or_default());
            let cm = cms.get_opt(&r.name).await?.ok_or_else(|| {
                ReconcileError::DependencyNotReady(format!(
                    "ConfigMap {} (spec.usersFrom) not found",
                    r.name
                ))
            })?;
            let text = cm
                .data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .ok_or_else(|| {
                    ReconcileError::InvalidSpec(format!(
                        "ConfigMap {} has no key {:?} (spec.usersFrom)",
                        r.name, r.key
                    ))
                })?;
            users::parse_csv(text).map_err(|e| {
                ReconcileError::InvalidSpec(format!("ConfigMap {} key {}: {e}", r.name, r.key))
            })?
        }
        None => mb.spec.users.clone(),
    };
    users::validate(&list).map_err(ReconcileError::InvalidSpec)?;
    Ok(list)
}

/// Everything resolved before a pass can talk to the tenants.
struct Resolved {
    endpoint_name: String,
    pair: TenantPair,
    clients: PairClients,
    users: Vec<BatchUser>,
}

async fn resolve(ctx: &Context, mb: &MigrationBatch) -> Result<Resolved> {
    let ns = mb.namespace().unwrap_or_default();
    let eps: Api<MigrationEndpoint> = Api::namespaced(ctx.client.clone(), &ns);
    let ep = eps
        .get_opt(&mb.spec.endpoint_ref.name)
        .await?
        .ok_or_else(|| {
            ReconcileError::DependencyNotReady(format!(
                "MigrationEndpoint {} not found: create it or fix spec.endpointRef",
                mb.spec.endpoint_ref.name
            ))
        })?;
    if !ep
        .status
        .as_ref()
        .is_some_and(|s| is_true(&s.conditions, types::READY))
    {
        return Err(ReconcileError::DependencyNotReady(format!(
            "MigrationEndpoint {} is not Ready yet",
            ep.name_any()
        )));
    }
    let pairs: Api<TenantPair> = Api::namespaced(ctx.client.clone(), &ns);
    let pair = pairs
        .get_opt(&ep.spec.tenant_pair_ref.name)
        .await?
        .ok_or_else(|| {
            ReconcileError::DependencyNotReady(format!(
                "TenantPair {} not found",
                ep.spec.tenant_pair_ref.name
            ))
        })?;
    let clients = ctx.pair_clients(&pair).await?;
    let endpoint_name = ep
        .spec
        .exchange_name
        .clone()
        .unwrap_or_else(|| ep.name_any());
    let users = user_list(ctx, mb).await?;
    Ok(Resolved {
        endpoint_name,
        pair,
        clients,
        users,
    })
}

fn random_password() -> String {
    const SETS: [&str; 4] = [
        "ABCDEFGHJKLMNPQRSTUVWXYZ",
        "abcdefghijkmnopqrstuvwxyz",
        "23456789",
        "!@#$%^&*-_",
    ];
    let mut out = String::new();
    for i in 0..24 {
        let set = SETS[i % SETS.len()].as_bytes();
        out.push(set[rand::random::<u32>() as usize % set.len()] as char);
    }
    out
}

/// Addresses in other MigrationBatches of the namespace: a user moves in one batch only.
/// Returns (users owned by older batches, users of any other batch). Reads the controller's
/// store (shared `Arc`s, no listing); lists from the API server only when no store runs here.
async fn other_batches(
    ctx: &Context,
    mb: &MigrationBatch,
) -> Result<(HashMap<String, String>, HashMap<String, String>)> {
    let ns = mb.namespace();
    let batches: Vec<std::sync::Arc<MigrationBatch>> = match ctx.batch_store().await {
        Some(store) => store
            .state()
            .into_iter()
            .filter(|b| b.namespace() == ns)
            .collect(),
        None => {
            let api: Api<MigrationBatch> =
                Api::namespaced(ctx.client.clone(), &ns.clone().unwrap_or_default());
            api.list(&Default::default())
                .await?
                .items
                .into_iter()
                .map(std::sync::Arc::new)
                .collect()
        }
    };
    let mut out = HashMap::new();
    let mut all = HashMap::new();
    for other in batches.iter().map(|b| b.as_ref()) {
        if other.uid() == mb.uid() || other.meta().deletion_timestamp.is_some() {
            continue;
        }
        let key = |b: &MigrationBatch| (b.meta().creation_timestamp.clone(), b.name_any());
        let older = key(other) < key(mb);
        for u in other.spec.users.iter() {
            all.insert(
                u.source.to_ascii_lowercase(),
                format!(
                    "{}/{}",
                    other.namespace().unwrap_or_default(),
                    other.name_any()
                ),
            );
        }
        // Older batches own a contested user; the newer one holds it back (ties: by name).
        if !older {
            continue;
        }
        for u in other.spec.users.iter() {
            out.insert(
                u.source.to_ascii_lowercase(),
                format!(
                    "{}/{}",
                    other.namespace().unwrap_or_default(),
                    other.name_any()
                ),
            );
        }
        for s in other.status.iter().flat_map(|s| s.users.iter()) {
            out.insert(
                s.source.to_ascii_lowercase(),
                format!(
                    "{}/{}",
                    other.namespace().unwrap_or_default(),
                    other.name_any()
                ),
            );
        }
    }
    Ok((out, all))
}

/// From this many users on, one paged read of every object replaces per-user reads.
const BULK_READ_MIN: usize = 20;

/// The listed objects one of `wanted` (lower-case addresses) names, by each such address. A
/// tenant-wide listing (20,000 mailboxes) is dropped at once; only the batch's objects stay, each
/// once.
fn index_wanted<T>(
    list: Vec<T>,
    wanted: &HashSet<String>,
    keys_of: impl Fn(&T) -> Vec<String>,
) -> HashMap<String, std::sync::Arc<T>> {
    let mut out = HashMap::new();
    for m in list {
        let ks: Vec<String> = keys_of(&m)
            .into_iter()
            .filter(|k| wanted.contains(k))
            .collect();
        if ks.is_empty() {
            continue;
        }
        let m = std::sync::Arc::new(m);
        for k in ks {
            out.insert(k, m.clone());
        }
    }
    out
}

/// Mailboxes by the wanted SMTP addresses and UPNs (lower case).
fn index_mailboxes(
    list: Vec<crate::tenant::exchange::types::Mailbox>,
    wanted: &HashSet<String>,
) -> HashMap<String, std::sync::Arc<crate::tenant::exchange::types::Mailbox>> {
    index_wanted(list, wanted, |m| {
        keys(
            m.primary_smtp_address.as_deref(),
            m.user_principal_name.as_deref(),
            &m.email_addresses,
        )
    })
}

/// MailUsers by the wanted SMTP addresses and UPNs (lower case).
fn index_mail_users(
    list: Vec<crate::tenant::exchange::types::MailUser>,
    wanted: &HashSet<String>,
) -> HashMap<String, std::sync::Arc<crate::tenant::exchange::types::MailUser>> {
    index_wanted(list, wanted, |m| {
        keys(
            m.primary_smtp_address.as_deref(),
            m.user_principal_name.as_deref(),
            &m.email_addresses,
        )
    })
}

fn keys(primary: Option<&str>, upn: Option<&str>, proxies: &[String]) -> Vec<String> {
    let mut out: Vec<String> = primary
        .into_iter()
        .chain(upn)
        .map(str::to_ascii_lowercase)
        .collect();
    for p in proxies {
        if let Some((kind, a)) = p.split_once(':')
            && kind.eq_ignore_ascii_case("smtp")
        {
            out.push(a.to_ascii_lowercase());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Source address (lower case) → target address of the batch's users.
fn this_batch_map(users: &[BatchUser]) -> std::collections::BTreeMap<String, String> {
    users
        .iter()
        .map(|u| (u.source.to_ascii_lowercase(), u.target.clone()))
        .collect()
}

/// Outcome of preparing one user.
struct Prepared {
    state: UserState,
    reason: Option<String>,
    message: Option<String>,
    wrote: bool,
    /// Delegates captured before the move (prepared users only).
    delegates: Option<post::Delegates>,
    /// UPN that still needs the migration licence.
    license_upn: Option<String>,
}

/// Reads a user's delegates before the move: GrantSendOnBehalfTo (names, resolved to addresses)
/// and explicit FullAccess permissions.
async fn capture_delegates(
    source: &TenantClients,
    src: &crate::tenant::exchange::types::Mailbox,
    identity: &str,
) -> Result<post::Delegates> {
    async fn address(source: &TenantClients, who: &str) -> Result<String> {
        if who.contains('@') {
            return Ok(who.to_ascii_lowercase());
        }
        Ok(source
            .exchange
            .get_mailbox(who)
            .await?
            .and_then(|m| m.primary_smtp_address)
            .unwrap_or_else(|| who.to_string())
            .to_ascii_lowercase())
    }
    let mut d = post::Delegates::default();
    for who in &src.grant_send_on_behalf_to {
        d.send_on_behalf.push(address(source, who).await?);
    }
    for perm in source.exchange.get_mailbox_permissions(identity).await? {
        let system = perm.user.to_ascii_uppercase().starts_with("NT AUTHORITY")
            || perm.user.starts_with("S-1-");
        if !system
            && !perm.is_inherited
            && !perm.deny
            && perm
                .access_rights
                .iter()
                .any(|r| r.eq_ignore_ascii_case("FullAccess"))
        {
            d.full_access.push(address(source, &perm.user).await?);
        }
    }
    Ok(d)
}

struct PrepareCtx<'a> {
    /// Cross Tenant User Data Migration SKU id, when the spec asks the operator to assign it.
    migration_sku: Option<&'a str>,
    source: &'a TenantClients,
    target: &'a TenantClients,
    spec: &'a MigrationBatchSpec,
    scope_group: &'a str,
    scope_members: &'a HashSet<String>,
    target_domains: &'a BTreeSet<String>,
    others: &'a HashMap<String, String>,
    write: bool,
}

async fn prepare_user(p: &PrepareCtx<'_>, user: &BatchUser) -> Result<Prepared> {
    let src = p.source.exchange.get_mailbox(&user.source).await?;
    let deleted = match &src {
        Some(_) => p
            .source
            .exchange
            .get_mailbox_statistics(&user.source)
            .await?
            .and_then(|s| s.total_deleted_item_size.as_ref().and_then(byte_size)),
        None => None,
    };
    let tgt = p.target.exchange.get_mail_user(&user.target).await?;
    let tgt_user = match &tgt {
        Some(_) => p.target.exchange.get_user(&user.target).await?,
        None => None,
    };
    let in_scope = src.as_ref().is_some_and(|m| {
        [
            m.primary_smtp_address.as_deref(),
            m.name.as_deref(),
            Some(m.identity.as_str()),
            m.alias.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|k| p.scope_members.contains(&k.to_ascii_lowercase()))
    }) || p.scope_members.contains(&user.source.to_ascii_lowercase());
    let facts = UserFacts {
        source: src.as_ref(),
        source_deleted_item_bytes: deleted,
        target: tgt.as_ref(),
        target_user: tgt_user.as_ref(),
        in_scope_group: in_scope,
        other_batch: p.others.get(&user.source.to_ascii_lowercase()).cloned(),
    };
    let policy = Policy {
        mail_users: p.spec.provisioning.mail_users,
        scope_membership: p.spec.provisioning.scope_group_membership,
        migration_license: p.spec.provisioning.migration_license,
        clear_previous_mailbox_data: p.spec.provisioning.clear_previous_mailbox_data,
        target_domains: p.target_domains,
    };
    let verdict = preflight::check(&user.source, &facts, &policy);
    if let Some(f) = verdict.blocking() {
        return Ok(Prepared {
            state: UserState::HeldBack,
            reason: Some(f.reason.to_string()),
            message: Some(f.message.clone()),
            wrote: false,
            delegates: None,
            license_upn: None,
        });
    }
    if !p.write {
        let state = if verdict.needs_repair() {
            UserState::Validated
        } else {
            UserState::Provisioned
        };
        return Ok(Prepared {
            state,
            reason: None,
            message: None,
            wrote: false,
            delegates: None,
            license_upn: None,
        });
    }
    let Some(src) = src else {
        return Ok(Prepared {
            state: UserState::HeldBack,
            reason: Some("SourceMailboxNotFound".into()),
            message: None,
            wrote: false,
            delegates: None,
            license_upn: None,
        });
    };
    let mut wrote = false;
    let desired = target_user::desired(user, &src, &p.spec.target_delivery_domain)
        .map_err(ReconcileError::InvalidSpec)?;
    // Stale previous-mailbox data first (only when the spec opts in; the check blocks otherwise).
    if verdict
        .findings
        .iter()
        .any(|f| f.reason == "StalePreviousMailbox" && f.severity == Severity::Repairable)
    {
        p.target
            .exchange
            .clear_previous_mailbox_info(&user.target)
            .await?;
        wrote = true;
    }
    let current = match tgt {
        Some(t) => t,
        None => {
            wrote = true;
            match p
                .target
                .exchange
                .new_mail_user(&desired.new_mail_user(random_password()))
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    // The address may belong to a mailbox (licensed before the GUID was stamped).
                    let tu = p.target.exchange.get_user(&user.target).await?;
                    if tu
                        .as_ref()
                        .and_then(|u| u.recipient_type_details.as_deref())
                        .is_some_and(|t| t.ends_with("Mailbox"))
                    {
                        return Ok(Prepared {
                            state: UserState::HeldBack,
                            reason: Some("TargetIsMailbox".into()),
                            message: Some(format!(
                                "the target {} of {} is already a mailbox (licensed before its ExchangeGuid was stamped): remove the licence and the mailbox, then clear previous mailbox data",
                                user.target, user.source
                            )),
                            wrote: false,
                            delegates: None,
                            license_upn: None,
                        });
                    }
                    return Err(e.into());
                }
            }
        }
    };
    let changes = desired.repair(&current, p.target_domains);
    if !changes.is_empty() {
        // GUIDs and proxies are stamped before any licence (licensing first provisions a new mailbox).
        p.target
            .exchange
            .set_mail_user(&current.identity, &changes)
            .await?;
        wrote = true;
    }
    // The migration licence (an add-on without a mailbox plan), on the side the spec names: the
    // pass assigns it for all its users together (Graph $batch), after the GUIDs are stamped.
    let license_upn = if p.migration_sku.is_some()
        && verdict
            .findings
            .iter()
            .any(|f| f.reason == "NoMigrationLicense" && f.severity == Severity::Repairable)
    {
        Some(match p.spec.provisioning.migration_license {
            MigrationLicenseAssignment::Target => desired.user_principal_name.clone(),
            _ => src
                .user_principal_name
                .clone()
                .unwrap_or_else(|| user.source.clone()),
        })
    } else {
        None
    };
    if !in_scope && p.spec.provisioning.scope_group_membership == ScopeMembership::Manage {
        p.source
            .exchange
            .add_group_member(p.scope_group, &user.source)
            .await?;
        wrote = true;
    }
    let delegates = capture_delegates(p.source, &src, &user.source).await?;
    Ok(Prepared {
        state: UserState::Provisioned,
        reason: None,
        message: None,
        wrote,
        delegates: Some(delegates),
        license_upn,
    })
}

fn sample(failures: &mut Vec<UserFailure>, source: &str, reason: &str, message: &str) {
    if failures.len() < MAX_SAMPLE_FAILURES && !failures.iter().any(|f| f.source == source) {
        failures.push(UserFailure {
            source: source.to_string(),
            reason: reason.chars().take(40).collect(),
            message: crate::api::conditions::truncate(message, MAX_FAILURE_MESSAGE_LEN),
        });
    }
}

/// Reason code from an Exchange ErrorSummary (`ExceptionType: text`).
fn failure_reason(summary: &str) -> String {
    let head = summary.split(':').next().unwrap_or("MoveFailed").trim();
    let code: String = head
        .trim_end_matches("Exception")
        .trim_end_matches("Permanent")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    if code.is_empty() {
        "MoveFailed".into()
    } else {
        code
    }
}

/// One pass; returns the status to write and when to come back.
pub async fn run_pass(
    mb: &MigrationBatch,
    ctx: &Context,
    recorder: &Recorder,
    old: &MigrationBatchStatus,
    now: DateTime<Utc>,
) -> Result<(MigrationBatchStatus, Requeue)> {
    let r = resolve(ctx, mb).await?;
    let source = r.clients.source.as_ref().ok_or_else(|| ReconcileError::InvalidSpec(format!("TenantPair {} has no source credentials: preparing target MailUsers needs to read the source mailboxes", r.pair.name_any())))?;
    let target = &r.clients.target;
    let name = exchange_batch_name(mb);
    let write = !(mb.spec.suspend || ctx.config.read_only);

    // Users Exchange is moving cannot leave the list: the operator would stop following them
    // (and Complete-MigrationBatch would still complete them). Completed ones may go.
    let in_spec: HashSet<String> = r
        .users
        .iter()
        .map(|u| u.source.to_ascii_lowercase())
        .collect();
    let still_moving: Vec<&str> = old
        .users
        .iter()
        .filter(|u| !in_spec.contains(&u.source.to_ascii_lowercase()))
        .filter(|u| {
            matches!(
                u.state,
                UserState::Queued
                    | UserState::Syncing
                    | UserState::Synced
                    | UserState::Completing
                    | UserState::Stopped
                    | UserState::Failed
            )
        })
        .map(|u| u.source.as_str())
        .collect();
    if !still_moving.is_empty() {
        return Err(ReconcileError::InvalidSpec(format!(
            "{} user(s) removed from the list are already in Exchange batch {name} and keep moving there: put them back, or take them out in Exchange first (Remove-MigrationUser): {}",
            still_moving.len(),
            still_moving
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    // Per-user state carried from the last pass, in spec order.
    let prev: HashMap<String, &UserStatus> = old
        .users
        .iter()
        .map(|u| (u.source.to_ascii_lowercase(), u))
        .collect();
    let mut states: Vec<UserStatus> = r
        .users
        .iter()
        .map(|u| {
            prev.get(&u.source.to_ascii_lowercase())
                .map(|s| (*s).clone())
                .unwrap_or(UserStatus {
                    source: u.source.clone(),
                    state: UserState::Pending,
                    percent: None,
                    reason: None,
                })
        })
        .collect();
    let mut failures: Vec<UserFailure> = old
        .sample_failures
        .iter()
        .filter(|f| {
            states.iter().any(|s| {
                s.source == f.source && matches!(s.state, UserState::HeldBack | UserState::Failed)
            })
        })
        .cloned()
        .collect();
    // Users and failures are rebuilt below: copy only the small fields of the old status.
    let mut status = status_without_users(old);
    let mut wrote = false;
    let mut notes: Vec<(EventType, &'static str, String)> = Vec::new();

    let batch = target.exchange.get_migration_batch(&name).await?;
    if let Some(b) = &batch {
        // Follow progress: one batch read and one user list per poll, plus a bounded number of statistics.
        let exo_users = target.exchange.get_migration_users(&name).await?;
        let by_target: HashMap<String, &crate::tenant::exchange::types::MigrationUser> = exo_users
            .iter()
            .filter_map(|u| {
                u.email_address
                    .as_ref()
                    .map(|e| (e.to_ascii_lowercase(), u))
            })
            .collect();
        let mut syncing: Vec<usize> = Vec::new();
        for (i, u) in r.users.iter().enumerate() {
            if let Some(x) = by_target.get(&u.target.to_ascii_lowercase()) {
                let st = plan::user_state(&x.status);
                if st == UserState::Failed {
                    let summary = x.error_summary.clone().unwrap_or_default();
                    let code = failure_reason(&summary);
                    sample(&mut failures, &u.source, &code, &summary);
                    states[i].reason = Some(code);
                } else if st != UserState::HeldBack {
                    states[i].reason = None;
                }
                if st == UserState::Syncing {
                    syncing.push(i);
                }
                if st != UserState::Syncing {
                    states[i].percent = match st {
                        UserState::Synced => Some(95),
                        UserState::Completed => Some(100),
                        _ => None,
                    };
                }
                states[i].state = st;
            }
        }
        // Percent for a bounded window of syncing users, rotating through them across polls.
        let offset = (now.timestamp() as usize / 2) % syncing.len().max(1);
        let window: Vec<usize> = syncing
            .iter()
            .cycle()
            .skip(offset)
            .take(STATS_PER_POLL.min(syncing.len()))
            .copied()
            .collect();
        let stats = futures::stream::iter(window.clone())
            .map(|i| {
                let t = r.users[i].target.clone();
                async move { target.exchange.get_migration_user_statistics(&t).await }
            })
            .buffered(5)
            .try_collect::<Vec<_>>()
            .await?;
        for (i, s) in window.into_iter().zip(stats) {
            if let Some(s) = s {
                states[i].percent = s.percentage_complete.map(|p| p.clamp(0, 100) as u8);
            }
        }
        status.exchange_batch = Some(ExchangeBatchStatus {
            name: name.clone(),
            guid: b.batch_guid.clone(),
            status: Some(b.status.clone()),
            created_at: old
                .exchange_batch
                .as_ref()
                .and_then(|e| e.created_at)
                .or(Some(now)),
        });
    } else if old.exchange_batch.is_some() && old.completion_started_at.is_some() {
        // Exchange removes completed batches after 60 days: the moves are done.
        status.exchange_batch = old.exchange_batch.clone();
    }

    // Users taken out of the spec before Exchange started them leave the scope group (when the
    // operator manages it and no other batch lists them). A Provisioned user may already be in
    // an existing Exchange batch (appended just before a crash), so it stays. Until this
    // succeeds they remain in the old status, so a failed or interrupted pass repeats it
    // (removing a non-member is a success).
    if write && mb.spec.provisioning.scope_group_membership == ScopeMembership::Manage {
        let removed: Vec<&str> = old
            .users
            .iter()
            .filter(|u| !in_spec.contains(&u.source.to_ascii_lowercase()))
            .filter(|u| {
                matches!(
                    u.state,
                    UserState::Pending | UserState::HeldBack | UserState::Validated
                ) || (u.state == UserState::Provisioned && batch.is_none())
            })
            .map(|u| u.source.as_str())
            .collect();
        if !removed.is_empty() {
            let (_, elsewhere) = other_batches(ctx, mb).await?;
            let group = r.pair.spec.scope_group.name.as_str();
            let leaving: Vec<&str> = removed
                .into_iter()
                .filter(|s| !elsewhere.contains_key(&s.to_ascii_lowercase()))
                .collect();
            for u in &leaving {
                source.exchange.remove_group_member(group, u).await?;
            }
            if !leaving.is_empty() {
                notes.push((
                    EventType::Normal,
                    "UsersRemoved",
                    format!(
                        "{} user(s) removed from the batch before they started left scope group {group}, e.g. {}",
                        leaving.len(),
                        leaving[0]
                    ),
                ));
                wrote = true;
            }
        }
    }

    // Prepare users that are not in Exchange yet.
    let mut step = next_step(
        mb,
        &states,
        batch.as_ref().map(|b| b.status.as_str()),
        old,
        now,
    );
    if step == Step::Prepare {
        let group = r.pair.spec.scope_group.name.clone();
        let members: HashSet<String> = source
            .exchange
            .get_group_members(&group)
            .await?
            .into_iter()
            .flat_map(|m| [Some(m.identity), m.name, m.primary_smtp_address])
            .flatten()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let domains: BTreeSet<String> = target
            .exchange
            .get_accepted_domains()
            .await?
            .into_iter()
            .map(|d| d.domain_name.to_ascii_lowercase())
            .collect();
        let (others, all_others) = other_batches(ctx, mb).await?;
        let migration_sku = match mb.spec.provisioning.migration_license {
            MigrationLicenseAssignment::None => None,
            side => {
                let g = if side == MigrationLicenseAssignment::Target {
                    &target.graph
                } else {
                    &source.graph
                };
                g.subscribed_skus()
                    .await?
                    .into_iter()
                    .find(|k| k.is_migration_sku())
                    .map(|k| k.sku_id)
            }
        };
        let pc = PrepareCtx {
            migration_sku: migration_sku.as_deref(),
            source,
            target,
            spec: &mb.spec,
            scope_group: &group,
            scope_members: &members,
            target_domains: &domains,
            others: &others,
            write,
        };
        let todo: Vec<usize> = states
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.state, UserState::Pending | UserState::Validated))
            .map(|(i, _)| i)
            .take(PREPARE_PER_PASS)
            .collect();
        let pc = &pc;
        let users_ref = &r.users;
        let results = futures::stream::iter(todo.clone())
            .map(|i| async move { prepare_user(pc, &users_ref[i]).await })
            .buffered(8)
            .collect::<Vec<_>>()
            .await;
        let mut held = 0;
        let mut captured: Vec<(usize, post::Delegates)> = Vec::new();
        let mut prepared: Vec<(usize, Prepared)> = Vec::with_capacity(todo.len());
        for (i, res) in todo.into_iter().zip(results) {
            prepared.push((i, res?));
        }
        // Migration licences for the whole pass: 20 users per Graph round trip.
        let needs: Vec<(usize, String)> = prepared
            .iter()
            .enumerate()
            .filter_map(|(k, (_, p))| p.license_upn.clone().map(|u| (k, u)))
            .collect();
        if let (Some(sku), false) = (migration_sku.as_deref(), needs.is_empty()) {
            let graph =
                if mb.spec.provisioning.migration_license == MigrationLicenseAssignment::Target {
                    &target.graph
                } else {
                    &source.graph
                };
            let upns: Vec<String> = needs.iter().map(|(_, u)| u.clone()).collect();
            let ok = assign_licenses(
                graph,
                sku,
                &upns,
                mb.spec.provisioning.usage_location.as_deref(),
            )
            .await?;
            for ((k, _), ok) in needs.iter().zip(ok) {
                if !ok {
                    // Not in the directory yet: prepared again on the next pass.
                    prepared[*k].1.state = UserState::Validated;
                }
                wrote = true;
            }
        }
        for (i, mut p) in prepared {
            if let Some(d) = p.delegates.take() {
                captured.push((i, d));
            }
            wrote |= p.wrote;
            states[i].state = p.state;
            states[i].reason = p.reason.clone();
            if let (Some(code), Some(msg)) = (&p.reason, &p.message) {
                held += 1;
                sample(&mut failures, &r.users[i].source, code, msg);
                notes.push((EventType::Warning, "UserHeldBack", msg.clone()));
            }
        }
        if held > 0 {
            tracing::info!(held, "users held back by preflight");
        }
        // Delegates are kept (before the move changes them) for the steps after completion.
        if captured
            .iter()
            .any(|(_, d)| *d != post::Delegates::default())
        {
            let mut ledger = post::load(&ctx.client, mb).await?;
            let this_batch = this_batch_map(&r.users);
            let mut warnings = Vec::new();
            for (i, d) in captured {
                if d == post::Delegates::default() {
                    continue;
                }
                if let Some(w) =
                    post::delegate_warning(&r.users[i].source, &d, &this_batch, &all_others)
                {
                    warnings.push(w);
                }
                ledger
                    .delegates
                    .insert(r.users[i].source.to_ascii_lowercase(), d);
            }
            post::save(&ctx.client, mb, &ledger).await?;
            if !warnings.is_empty() {
                notes.push((
                    EventType::Warning,
                    "DelegatesNotMoving",
                    format!(
                        "{} user(s) have delegates that do not move with them: {}",
                        warnings.len(),
                        warnings.join(" | ")
                    ),
                ));
            }
        }
        step = next_step(
            mb,
            &states,
            batch.as_ref().map(|b| b.status.as_str()),
            old,
            now,
        );
    }

    let (gate_open, gate_msg) = plan::gate(&mb.spec.completion, now);
    // Suspending is itself a write (Stop-MigrationBatch); everything else waits for resume.
    if write || (step == Step::Stop && !ctx.config.read_only) {
        match &step {
            Step::CreateBatch => {
                let ready: Vec<String> = r
                    .users
                    .iter()
                    .zip(&states)
                    .filter(|(_, s)| s.state == UserState::Provisioned)
                    .map(|(u, _)| u.target.clone())
                    .collect();
                let created = target
                    .exchange
                    .new_migration_batch(&NewBatch {
                        name: name.clone(),
                        source_endpoint: r.endpoint_name.clone(),
                        users: ready.clone(),
                        target_delivery_domain: mb.spec.target_delivery_domain.clone(),
                        auto_start: true,
                        start_after: mb.spec.start_after,
                        notification_emails: mb.spec.notification_emails.clone(),
                    })
                    .await?;
                for s in states
                    .iter_mut()
                    .filter(|s| s.state == UserState::Provisioned)
                {
                    s.state = UserState::Queued;
                }
                status.exchange_batch = Some(ExchangeBatchStatus {
                    name: name.clone(),
                    guid: created.batch_guid.clone(),
                    status: Some(created.status.clone()),
                    created_at: Some(now),
                });
                notes.push((
                    EventType::Normal,
                    "BatchStarted",
                    format!(
                        "created Exchange migration batch {name} with {} user(s)",
                        ready.len()
                    ),
                ));
                wrote = true;
            }
            Step::AddUsers => {
                // Prepared after the batch was created. A repeat (answer lost, crash before
                // the status write) adds nothing twice: Exchange skips rows already in the
                // batch, and the next poll sees these users in Get-MigrationUser.
                let ready: Vec<usize> = states
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.state == UserState::Provisioned)
                    .map(|(i, _)| i)
                    .collect();
                let targets: Vec<String> =
                    ready.iter().map(|&i| r.users[i].target.clone()).collect();
                target
                    .exchange
                    .add_migration_batch_users(&name, &targets)
                    .await?;
                for &i in &ready {
                    states[i].state = UserState::Queued;
                }
                notes.push((
                    EventType::Normal,
                    "UsersAdded",
                    format!(
                        "added {} user(s) to Exchange batch {name}: {}",
                        targets.len(),
                        r.users[ready[0]].source
                    ) + if ready.len() > 1 { " …" } else { "" },
                ));
                wrote = true;
            }
            Step::Stop => {
                target.exchange.stop_migration_batch(&name).await?;
                notes.push((
                    EventType::Normal,
                    reasons::SUSPENDED,
                    format!("stopped Exchange batch {name}"),
                ));
                wrote = true;
            }
            Step::Start => {
                target.exchange.start_migration_batch(&name).await?;
                let failed = states.iter().any(|s| s.state == UserState::Failed);
                if failed {
                    status.retry_of_failed_users = status.retry_of_failed_users.saturating_add(1);
                }
                notes.push((
                    EventType::Normal,
                    if failed {
                        "RetryingFailedUsers"
                    } else {
                        "Resumed"
                    },
                    format!("started Exchange batch {name}"),
                ));
                wrote = true;
            }
            Step::Complete => {
                // Completion deletes the source mailboxes: re-check the synced users first.
                let synced: Vec<usize> = states
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.state == UserState::Synced)
                    .map(|(i, _)| i)
                    .collect();
                let mut blocked = Vec::new();
                let bulk = if synced.len() >= BULK_READ_MIN {
                    let wanted: HashSet<String> = synced
                        .iter()
                        .map(|&i| r.users[i].source.to_ascii_lowercase())
                        .collect();
                    Some(index_mailboxes(
                        source.exchange.list_mailboxes().await?,
                        &wanted,
                    ))
                } else {
                    None
                };
                for i in synced {
                    let key = r.users[i].source.to_ascii_lowercase();
                    let found = match bulk.as_ref().and_then(|b| b.get(&key)) {
                        Some(m) => Some(m.as_ref().clone()),
                        None => source.exchange.get_mailbox(&r.users[i].source).await?,
                    };
                    if let Some(m) = found {
                        let facts = UserFacts {
                            source: Some(&m),
                            in_scope_group: true,
                            ..Default::default()
                        };
                        let empty = BTreeSet::new();
                        let policy = Policy {
                            mail_users: MailUserProvisioning::CreateOrRepair,
                            scope_membership: ScopeMembership::Manage,
                            migration_license: MigrationLicenseAssignment::Target,
                            clear_previous_mailbox_data: false,
                            target_domains: &empty,
                        };
                        if let Some(f) = preflight::check(&r.users[i].source, &facts, &policy)
                            .blocking()
                            .filter(|f| f.reason != "TargetMailUserNotFound")
                        {
                            blocked.push((i, f.reason, f.message.clone()));
                        }
                    }
                }
                if blocked.is_empty() {
                    status.completion_started_at = Some(now);
                    target.exchange.complete_migration_batch(&name).await?;
                    notes.push((
                        EventType::Normal,
                        "CompletionGateOpened",
                        format!("{gate_msg}: completing Exchange batch {name}"),
                    ));
                    wrote = true;
                } else {
                    for (i, reason, msg) in &blocked {
                        states[*i].reason = Some(reason.to_string());
                        sample(&mut failures, &r.users[*i].source, reason, msg);
                    }
                    notes.push((
                        EventType::Warning,
                        reasons::USERS_HELD_BACK,
                        format!(
                            "completion waits: {} synced user(s) no longer pass preflight, e.g. {}",
                            blocked.len(),
                            blocked[0].2
                        ),
                    ));
                }
            }
            _ => {}
        }
    }

    // After completion: verify the conversions, license, re-stamp delegates, report.
    let mut pending_post = 0usize;
    if states.iter().any(|s| s.state == UserState::Completed) {
        let (left, did) = if write {
            finalize_completed(ctx, mb, source, target, &r.users, &states, &mut notes).await?
        } else {
            (
                states
                    .iter()
                    .filter(|s| s.state == UserState::Completed)
                    .count(),
                false,
            )
        };
        pending_post = left;
        wrote |= did;
    }

    // Status from one place.
    status.users = states;
    status.sample_failures = failures;
    status.counts = plan::counts(&status.users);
    let c = status.counts.clone();
    let mut conds = vec![
        Desired::new(
            types::PREFLIGHT_PASSED,
            c.held_back == 0 && c.validated == c.total,
            if c.held_back > 0 {
                reasons::USERS_HELD_BACK
            } else if c.validated < c.total {
                reasons::PROGRESSING
            } else {
                reasons::SUCCEEDED
            },
            format!(
                "{} of {} users pass preflight, {} held back",
                c.validated, c.total, c.held_back
            ),
        ),
        Desired::new(
            types::PROVISIONED,
            c.provisioned == c.validated && c.validated > 0,
            if c.provisioned == c.validated {
                reasons::SUCCEEDED
            } else {
                reasons::PROGRESSING
            },
            format!(
                "{} of {} validated users prepared in the target",
                c.provisioned, c.validated
            ),
        ),
        Desired::new(
            types::COMPLETION_APPROVED,
            gate_open,
            if gate_open {
                reasons::COMPLETION_GATE_OPEN
            } else {
                reasons::AWAITING_APPROVAL
            },
            gate_msg.clone(),
        ),
    ];
    let all_moved = c.total > 0 && c.completed == c.total;
    let all_completed = all_moved && pending_post == 0;
    let (ready_reason, ready_msg, reconciling) = if all_moved && !all_completed {
        (
            reasons::COMPLETING,
            format!(
                "all {} mailboxes moved; {pending_post} still need the steps after completion (licences, delegates)",
                c.total
            ),
            true,
        )
    } else if all_completed {
        (
            reasons::COMPLETED,
            format!("all {} mailboxes moved", c.total),
            false,
        )
    } else if mb.spec.suspend {
        (
            reasons::SUSPENDED,
            format!(
                "suspended: {} synced, {} completed of {}",
                c.synced, c.completed, c.total
            ),
            false,
        )
    } else {
        match &step {
            Step::Done => (
                if c.failed > 0 {
                    reasons::USERS_FAILED
                } else {
                    reasons::USERS_HELD_BACK
                },
                format!(
                    "finished: {} of {} completed, {} failed, {} held back",
                    c.completed, c.total, c.failed, c.held_back
                ),
                false,
            ),
            Step::Blocked(why) => (
                reasons::USERS_HELD_BACK,
                format!("cannot start: {why}"),
                false,
            ),
            Step::WaitForStart(at) => (
                reasons::WAITING_FOR_START,
                format!("the batch starts after {}", at.to_rfc3339()),
                true,
            ),
            _ if c.synced > 0 && c.syncing == 0 && !gate_open => (
                reasons::AWAITING_APPROVAL,
                format!("{} of {} synced; {gate_msg}", c.synced, c.total),
                false,
            ),
            _ if old.completion_started_at.is_some() || status.completion_started_at.is_some() => (
                reasons::COMPLETING,
                format!("completing: {} of {} completed", c.completed, c.total),
                true,
            ),
            _ if c.syncing > 0 || c.synced > 0 => (
                reasons::SYNCING,
                format!(
                    "{} syncing, {} synced, {} completed of {}",
                    c.syncing, c.synced, c.completed, c.total
                ),
                true,
            ),
            _ => (
                reasons::PROGRESSING,
                format!("preparing users: {} of {} prepared", c.provisioned, c.total),
                true,
            ),
        }
    };
    conds.push(Desired::new(
        types::READY,
        all_completed,
        ready_reason,
        ready_msg.clone(),
    ));
    conds.push(Desired::new(
        types::RECONCILING,
        reconciling,
        ready_reason,
        ready_msg,
    ));
    conds.push(Desired::new(types::STALLED, false, reasons::SUCCEEDED, ""));
    status.conditions = merge(&old.conditions, &conds, mb.metadata.generation, now);
    status.retry = RetryStatus::default();
    if all_completed || matches!(step, Step::Done | Step::Blocked(_)) {
        status.observed_generation = mb.metadata.generation;
    }
    status.last_handled_reconcile_at = mb
        .annotations()
        .get(REQUESTED_AT_ANNOTATION)
        .cloned()
        .or(old.last_handled_reconcile_at.clone());

    // Events for this pass (transitions and actions only).
    let held_now = status.counts.held_back;
    for (ty, reason, msg) in notes.iter().filter(|(_, r, _)| *r != "UserHeldBack") {
        event(recorder, mb, *ty, reason, "Migrate", msg.clone()).await;
    }
    if held_now > old.counts.held_back {
        let first = notes
            .iter()
            .find(|(_, r, _)| *r == "UserHeldBack")
            .map(|(_, _, m)| m.clone())
            .unwrap_or_default();
        event(
            recorder,
            mb,
            EventType::Warning,
            reasons::USERS_HELD_BACK,
            "Preflight",
            format!("{held_now} user(s) held back by preflight, e.g. {first}"),
        )
        .await;
    }
    if status.counts.failed > old.counts.failed {
        event(
            recorder,
            mb,
            EventType::Warning,
            reasons::USERS_FAILED,
            "Migrate",
            format!(
                "{} user(s) failed in Exchange, e.g. {}",
                status.counts.failed,
                status
                    .sample_failures
                    .iter()
                    .find(|f| status
                        .users
                        .iter()
                        .any(|u| u.source == f.source && u.state == UserState::Failed))
                    .map(|f| format!("{}: {}", f.source, f.message))
                    .unwrap_or_default()
            ),
        )
        .await;
    }
    if status.counts.completed > old.counts.completed && all_completed {
        event(
            recorder,
            mb,
            EventType::Normal,
            "MoveCompleted",
            "Complete",
            format!("all {} mailboxes moved", status.counts.total),
        )
        .await;
    }

    let requeue = match &step {
        _ if wrote => Duration::from_secs(1),
        _ if pending_post > 0 => ctx.config.active_poll,
        Step::Prepare => Duration::from_secs(1),
        Step::Done | Step::Blocked(_) if !all_completed => ctx.config.idle_resync,
        _ if all_completed => ctx.config.idle_resync,
        Step::WaitForStart(at) => (*at - now)
            .to_std()
            .unwrap_or_default()
            .min(ctx.config.active_poll)
            .max(Duration::from_secs(1)),
        _ => ctx.config.active_poll,
    };
    Ok((status, Requeue::requeue(requeue)))
}

/// The old status without its per-user lists (the pass rebuilds them).
fn status_without_users(old: &MigrationBatchStatus) -> MigrationBatchStatus {
    MigrationBatchStatus {
        conditions: old.conditions.clone(),
        observed_generation: old.observed_generation,
        last_handled_reconcile_at: old.last_handled_reconcile_at.clone(),
        retry: old.retry.clone(),
        exchange_batch: old.exchange_batch.clone(),
        retry_of_failed_users: old.retry_of_failed_users,
        completion_started_at: old.completion_started_at,
        counts: old.counts.clone(),
        bytes_transferred: old.bytes_transferred,
        users: Vec::new(),
        sample_failures: Vec::new(),
    }
}

fn next_step(
    mb: &MigrationBatch,
    states: &[UserStatus],
    batch_status: Option<&str>,
    old: &MigrationBatchStatus,
    now: DateTime<Utc>,
) -> Step {
    plan::next_step(&BatchView {
        users: states,
        batch_exists: batch_status.is_some(),
        batch_status,
        suspend: mb.spec.suspend,
        block_on_any_failure: mb.spec.preflight.on_failure == PreflightFailurePolicy::BlockBatch,
        start_after: mb.spec.start_after,
        gate_open: plan::gate(&mb.spec.completion, now).0,
        completion_requested: old.completion_started_at.is_some(),
        retries: old.retry_of_failed_users,
        max_retries: MAX_RETRIES,
        now,
    })
}

/// Steps after completion for completed users not yet finalized (bounded per pass). Returns how
/// many completed users still wait for them, and whether anything was written.
async fn finalize_completed(
    ctx: &Context,
    mb: &MigrationBatch,
    source: &TenantClients,
    target: &TenantClients,
    users: &[BatchUser],
    states: &[UserStatus],
    notes: &mut Vec<(EventType, &'static str, String)>,
) -> Result<(usize, bool)> {
    const POST_PER_PASS: usize = 500;
    let mut ledger = post::load(&ctx.client, mb).await?;
    let todo: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            s.state == UserState::Completed
                && !ledger
                    .finalized
                    .contains(&users[*i].source.to_ascii_lowercase())
        })
        .map(|(i, _)| i)
        .collect();
    if todo.is_empty() {
        return Ok((0, false));
    }
    let prov = &mb.spec.provisioning;
    // Licences from the spec, resolved to SKU ids in the target once per pass.
    let mut skus: Vec<String> = Vec::new();
    if !prov.licenses.is_empty() {
        let subscribed = target.graph.subscribed_skus().await?;
        for l in &prov.licenses {
            let id = l.sku_id.clone().or_else(|| {
                l.sku_part_number.as_ref().and_then(|pn| {
                    subscribed
                        .iter()
                        .find(|k| k.sku_part_number.eq_ignore_ascii_case(pn))
                        .map(|k| k.sku_id.clone())
                })
            });
            match id {
                Some(id) => skus.push(id),
                None => {
                    return Err(ReconcileError::InvalidSpec(format!(
                        "spec.provisioning.licenses: the target tenant has no SKU {:?}",
                        l.sku_part_number.as_deref().unwrap_or("?")
                    )));
                }
            }
        }
    }
    let index: HashMap<String, usize> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.source.to_ascii_lowercase(), i))
        .collect();
    let batch_size = todo.len().min(POST_PER_PASS);
    let (src_bulk, tgt_bulk) = if batch_size >= BULK_READ_MIN {
        // The addresses of this pass's users, on one side.
        let wanted = |side: fn(&BatchUser) -> &str| -> HashSet<String> {
            todo.iter()
                .take(POST_PER_PASS)
                .map(|&i| side(&users[i]).to_ascii_lowercase())
                .collect()
        };
        (
            Some(index_mail_users(
                source.exchange.list_mail_users().await?,
                &wanted(|u| &u.source),
            )),
            Some(index_mailboxes(
                target.exchange.list_mailboxes().await?,
                &wanted(|u| &u.target),
            )),
        )
    } else {
        (None, None)
    };
    let mut reported = Vec::new();
    let mut not_restamped = Vec::new();
    let mut wrote = false;
    let mut done = 0usize;
    for &i in todo.iter().take(POST_PER_PASS) {
        let u = &users[i];
        // Both conversions: the source is a MailUser forwarding to the target delivery domain,
        // the target is a mailbox.
        let src_mu = match src_bulk
            .as_ref()
            .and_then(|b| b.get(&u.source.to_ascii_lowercase()))
        {
            Some(m) => Some(m.as_ref().clone()),
            None => source.exchange.get_mail_user(&u.source).await?,
        };
        let Some(external) =
            src_mu.and_then(|m| post::source_converted(&m, &mb.spec.target_delivery_domain))
        else {
            continue;
        };
        let tgt = match tgt_bulk
            .as_ref()
            .and_then(|b| b.get(&u.target.to_ascii_lowercase()))
        {
            Some(m) => Some(m.as_ref().clone()),
            None => target.exchange.get_mailbox(&u.target).await?,
        };
        let Some(tgt) = tgt else {
            continue;
        };
        // Licences only now: licensing before the GUID was stamped would have made a new mailbox.
        if !skus.is_empty() {
            let upn = tgt
                .user_principal_name
                .clone()
                .unwrap_or_else(|| u.target.clone());
            let Some(gu) = target.graph.get_user(&upn).await? else {
                continue;
            };
            let missing: Vec<crate::tenant::graph::AssignedLicense> = skus
                .iter()
                .filter(|s| {
                    !gu.assigned_licenses
                        .iter()
                        .any(|l| l.sku_id.eq_ignore_ascii_case(s))
                })
                .map(|s| crate::tenant::graph::AssignedLicense {
                    sku_id: s.clone(),
                    disabled_plans: vec![],
                })
                .collect();
            if !missing.is_empty() {
                if gu.usage_location.is_none() {
                    let loc = prov.usage_location.clone().ok_or_else(|| {
                        ReconcileError::InvalidSpec(format!(
                            "target user {upn} has no usage location: set spec.provisioning.usageLocation so licences can be assigned"
                        ))
                    })?;
                    target.graph.set_usage_location(&gu.id, &loc).await?;
                }
                target.graph.assign_license(&gu.id, &missing, &[]).await?;
                wrote = true;
            }
        }
        // GrantSendOnBehalfTo is not migrated: re-stamp it with the delegates' target addresses.
        if let Some(d) = ledger.delegates.get(&u.source.to_ascii_lowercase()) {
            let mut add = Vec::new();
            for a in &d.send_on_behalf {
                match index.get(a) {
                    Some(&j)
                        if !matches!(
                            states[j].state,
                            UserState::Pending | UserState::HeldBack | UserState::Validated
                        ) =>
                    {
                        add.push(users[j].target.clone())
                    }
                    _ => not_restamped.push(format!("{} (delegate {a})", u.source)),
                }
            }
            if !add.is_empty() {
                target
                    .exchange
                    .add_send_on_behalf(&tgt.identity, &add)
                    .await?;
                wrote = true;
            }
        }
        ledger.finalized.insert(u.source.to_ascii_lowercase());
        reported.push(format!(
            "{} → {} (source forwards to {external})",
            u.source, u.target
        ));
        done += 1;
    }
    if done > 0 {
        post::save(&ctx.client, mb, &ledger).await?;
        let shown: Vec<&String> = reported.iter().take(10).collect();
        let more = reported.len().saturating_sub(shown.len());
        notes.push((
            EventType::Normal,
            "MailboxesMoved",
            format!(
                "{} mailbox(es) completed: {}{}",
                reported.len(),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            ),
        ));
        if !not_restamped.is_empty() {
            notes.push((
                EventType::Warning,
                "DelegatesNotRestamped",
                format!(
                    "send-on-behalf delegates not re-stamped (they did not move in this batch): {}",
                    not_restamped.join(", ")
                ),
            ));
        }
    }
    Ok((todo.len() - done, wrote))
}

/// Assigns `sku` to the users that lack it, 20 per Graph `$batch`; sets the usage location first
/// where it is missing. Returns, per UPN, whether the user was found (and is now licensed).
async fn assign_licenses(
    graph: &crate::tenant::graph::GraphClient,
    sku: &str,
    upns: &[String],
    usage_location: Option<&str>,
) -> Result<Vec<bool>> {
    let users = graph.get_users(upns).await?;
    let mut out = Vec::with_capacity(upns.len());
    let mut todo: Vec<String> = Vec::new();
    for (upn, gu) in upns.iter().zip(users) {
        let Some(gu) = gu else {
            out.push(false);
            continue;
        };
        out.push(true);
        if gu
            .assigned_licenses
            .iter()
            .any(|l| l.sku_id.eq_ignore_ascii_case(sku))
        {
            continue;
        }
        if gu.usage_location.is_none() {
            let loc = usage_location.ok_or_else(|| ReconcileError::InvalidSpec(format!("user {upn} has no usage location: set spec.provisioning.usageLocation so licences can be assigned")))?;
            graph.set_usage_location(&gu.id, loc).await?;
        }
        todo.push(gu.id);
    }
    for chunk in todo.chunks(20) {
        let requests: Vec<crate::tenant::graph::BatchRequest> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| crate::tenant::graph::BatchRequest {
                id: i.to_string(),
                method: "POST".into(),
                url: format!("/users/{id}/assignLicense"),
                body: Some(serde_json::json!({"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []})),
                headers: Some(serde_json::json!({"Content-Type": "application/json"})),
            })
            .collect();
        for r in graph.batch(&requests).await? {
            if r.status >= 300 {
                return Err(ReconcileError::Tenant(
                    crate::tenant::graph::parse_graph_error(
                        r.status,
                        r.body.to_string().as_bytes(),
                        None,
                    ),
                ));
            }
        }
    }
    Ok(out)
}
