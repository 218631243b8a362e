//! Migration batches, migration users and move requests (reference §2.7–§2.9), backed by the
//! move engine in `sim::moves`.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::endpoints::find_endpoint;
use super::{CmdletError, CmdletOutput, CmdletResult, Ctx, Params, byte_size};
use crate::sim::moves::{self, Batch, BatchStatus, MoveUser, UserStatus};
use crate::sim::state::{Tenant, World};

fn mig_err(kind: &'static str, text: impl Into<String>) -> CmdletError {
    CmdletError::new(kind, text)
}

/// Reads `-CSVData` (Byte[]): `{"@odata.type":"#Exchange.ByteArrayType","Data":…}` with Data as
/// Base64 text or a number array, or either form bare.
fn csv_bytes(v: &Value) -> Option<Vec<u8>> {
    let data = match v {
        Value::Object(m) => m
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Data"))
            .map(|(_, v)| v.clone())?,
        other => other.clone(),
    };
    match data {
        Value::String(s) => base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .ok(),
        Value::Array(xs) => xs
            .iter()
            .map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect(),
        _ => None,
    }
}

fn parse_csv(bytes: &[u8]) -> Result<Vec<String>, CmdletError> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_string())
        .collect();
    let Some(col) = header
        .iter()
        .position(|h| h.eq_ignore_ascii_case("EmailAddress"))
    else {
        return Err(mig_err(
            "Microsoft.Exchange.Migration.MigrationCSVParsingException",
            "The CSV file is missing the required column 'EmailAddress'.",
        ));
    };
    let mut out: Vec<String> = Vec::new();
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let email = cells
            .get(col)
            .map(|c| c.trim().trim_matches('"').to_string())
            .unwrap_or_default();
        if email.is_empty() || !email.contains('@') {
            return Err(mig_err(
                "Microsoft.Exchange.Migration.MigrationCSVParsingException",
                format!(
                    "Row {}: the EmailAddress value '{email}' isn't valid.",
                    i + 2
                ),
            ));
        }
        if out.iter().any(|e| e.eq_ignore_ascii_case(&email)) {
            return Err(mig_err(
                "Microsoft.Exchange.Migration.MigrationCSVParsingException",
                format!(
                    "Row {}: the EmailAddress '{email}' appears more than once.",
                    i + 2
                ),
            ));
        }
        out.push(email);
    }
    Ok(out)
}

pub fn find_batch(t: &Tenant, id: &str) -> Option<usize> {
    let id = id.strip_prefix("MigrationService:").unwrap_or(id);
    t.batches.iter().position(|b| {
        b.name.eq_ignore_ascii_case(id) || Uuid::parse_str(id).is_ok_and(|g| g == b.guid)
    })
}

fn ts(d: Option<DateTime<Utc>>) -> Value {
    d.map_or(Value::Null, |d| json!(d))
}

fn batch_json(t: &Tenant, b: &Batch) -> Value {
    let count = |f: &dyn Fn(&MoveUser) -> bool| b.users.iter().filter(|u| f(u)).count();
    let ep = t
        .endpoints
        .iter()
        .find(|e| e.guid == b.endpoint)
        .map(|e| e.name.clone());
    let status = b.status();
    json!({
        "Identity": b.name,
        "Status": status.as_str(),
        "State": status.as_str(),
        "Type": "ExchangeRemoteMove",
        "MigrationType": "ExchangeRemoteMove",
        "BatchDirection": "Onboarding",
        "BatchGuid": b.guid,
        "TotalCount": b.users.len(),
        "ActiveCount": count(&|u| matches!(u.status, UserStatus::Queued | UserStatus::Syncing | UserStatus::Completing)),
        "StoppedCount": count(&|u| u.status == UserStatus::Stopped),
        "SyncedCount": count(&|u| matches!(u.status, UserStatus::Synced | UserStatus::IncrementalSyncing)),
        "FinalizedCount": count(&|u| u.status == UserStatus::Completed),
        "FailedCount": count(&|u| u.status == UserStatus::Failed),
        "FailedInitialSyncCount": count(&|u| u.status == UserStatus::Failed && u.initial_sync_done.is_none()),
        "FailedIncrementalSyncCount": count(&|u| u.status == UserStatus::Failed && u.initial_sync_done.is_some()),
        "PendingCount": count(&|u| u.status == UserStatus::Queued),
        "CreationDateTime": b.created,
        "CreationDateTimeUTC": b.created,
        "StartDateTime": ts(b.started),
        "StartDateTimeUTC": ts(b.started),
        "InitialSyncDateTime": ts(b.users.iter().filter_map(|u| u.initial_sync_done).max()),
        "LastSyncedDateTime": ts(b.last_synced),
        "LastSyncedDateTimeUTC": ts(b.last_synced),
        "FinalizedDateTime": ts(b.finalized),
        "StartAfter": ts(b.start_after),
        "StartAfterUTC": ts(b.start_after),
        "CompleteAfter": ts(b.complete_after),
        "CompleteAfterUTC": ts(b.complete_after),
        "SourceEndpoint": ep,
        "TargetDeliveryDomain": b.target_delivery_domain,
        "NotificationEmails": b.notification_emails,
        "Message": "",
    })
}

fn user_json(b: &Batch, u: &MoveUser) -> Value {
    json!({
        "Identity": u.email,
        "Identifier": u.email,
        "EmailAddress": u.email,
        "Guid": u.guid,
        "BatchId": b.name,
        "RecipientType": "MailUser",
        "MailboxGuid": Value::Null,
        "Status": u.status.as_str(),
        "StatusSummary": u.status.summary(),
        "State": u.status.summary(),
        "SkippedItemCount": 0,
        "SyncedItemCount": u.items_done(),
        "LastSuccessfulSyncTime": ts(u.last_sync),
        "ErrorSummary": u.error.as_ref().map(|e| format!("{}: {}", short(e.exception), e.message)).unwrap_or_default(),
        "DataConsistencyScore": "Perfect",
        "HasUnapprovedSkippedItems": false,
    })
}

fn short(ty: &str) -> &str {
    ty.rsplit('.').next().unwrap_or(ty)
}

fn user_stats_json(b: &Batch, u: &MoveUser) -> Value {
    let mut v = user_json(b, u);
    if let Value::Object(m) = &mut v {
        m.insert(
            "TotalItemsInSourceMailboxCount".into(),
            json!(u.items_total),
        );
        m.insert(
            "EstimatedTotalTransferSize".into(),
            json!(byte_size(u.bytes_total)),
        );
        m.insert("EstimatedTotalTransferCount".into(), json!(u.items_total));
        m.insert("BytesTransferred".into(), json!(byte_size(u.bytes_done)));
        m.insert("PercentageComplete".into(), json!(u.percent()));
        m.insert(
            "InitialSeedingCompletedTime".into(),
            ts(u.initial_sync_done),
        );
        m.insert("MigrationType".into(), json!("ExchangeRemoteMove"));
        m.insert(
            "Error".into(),
            u.error.as_ref().map_or(Value::Null, |e| {
                json!(format!("{}: {}", e.exception, e.message))
            }),
        );
    }
    v
}

/// A migration user for a CSV row, waiting (Stopped) until its batch starts.
fn new_move_user(t: &Tenant, email: String, now: DateTime<Utc>) -> MoveUser {
    MoveUser {
        guid: Uuid::new_v4(),
        target: t.find_recipient(&email).map(|i| t.recipients[i].guid),
        email,
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
    }
}

pub fn new_migration_batch(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let name = p.req_str("Name")?;
    let endpoint = p.req_str("SourceEndpoint")?;
    let csv = p.req_raw("CSVData")?;
    let tdd = p.req_str("TargetDeliveryDomain")?;
    let auto_start = p.switch("AutoStart")?;
    let auto_complete = p.switch("AutoComplete")?;
    let start_after = p.datetime("StartAfter")?;
    let complete_after = p.datetime("CompleteAfter")?;
    let notify = p.multi("NotificationEmails")?;
    let deprecated = p.has("BadItemLimit") || p.has("LargeItemLimit");
    p.ignore(&[
        "BadItemLimit",
        "LargeItemLimit",
        "TimeZone",
        "AllowIncrementalSyncs",
        "AllowUnknownColumnsInCsv",
        "ArchiveDomain",
        "AutoRetryCount",
        "DisallowExistingUsers",
        "ExcludeFolders",
        "MoveOptions",
        "PrimaryOnly",
        "ArchiveOnly",
        "ReportInterval",
        "SkipReports",
        "SkipMerging",
        "SkipMoving",
        "TargetArchiveDatabases",
        "TargetDatabases",
        "WorkflowControlFlags",
        "Locale",
        "SkipSteps",
    ]);
    if name.chars().count() > 64 {
        return Err(CmdletError::invalid_argument(format!(
            "The length of the property is too long. The maximum length is 64 and the length of the value provided is {}.",
            name.chars().count()
        )));
    }
    let bytes = csv_bytes(&csv).ok_or_else(|| {
        CmdletError::new(
            "System.Management.Automation.ParameterBindingArgumentTransformationException",
            "Cannot process argument transformation on parameter 'CSVData'. Cannot convert value to type \"System.Byte[]\".",
        )
    })?;
    let emails = parse_csv(&bytes)?;
    let max = ctx.app.move_settings.max_users_per_batch;
    if emails.is_empty() || emails.len() > max {
        return Err(mig_err(
            "Microsoft.Exchange.Migration.MigrationCSVParsingException",
            format!("The CSV file must contain between 1 and {max} rows."),
        ));
    }
    let t = &w.tenants[idx];
    if find_batch(t, &name).is_some() {
        return Err(mig_err(
            "Microsoft.Exchange.Migration.MigrationBatchNameAlreadyUsedException",
            format!("A migration batch with the name '{name}' already exists."),
        ));
    }
    let ei = find_endpoint(t, &endpoint).ok_or_else(|| CmdletError::not_found(&endpoint))?;
    if !t.is_accepted_domain(&tdd) {
        return Err(mig_err(
            "Microsoft.Exchange.Migration.MigrationPermanentException",
            format!(
                "The target delivery domain '{tdd}' isn't an accepted domain of this organization."
            ),
        ));
    }
    let users = emails
        .into_iter()
        .map(|e| new_move_user(t, e, ctx.now))
        .collect();
    let b = Batch {
        guid: Uuid::new_v4(),
        name,
        endpoint: t.endpoints[ei].guid,
        target_delivery_domain: tdd,
        created: ctx.now,
        started: None,
        start_after,
        complete_after,
        auto_complete,
        stopped: false,
        notification_emails: match notify {
            Some(super::params::Multi::Replace(v)) => v,
            Some(super::params::Multi::Modify { add, .. }) => add,
            None => Vec::new(),
        },
        users,
        last_synced: None,
        finalized: None,
    };
    w.tenants[idx].batches.push(b);
    let bi = w.tenants[idx].batches.len() - 1;
    if auto_start {
        moves::start_batch(w, idx, bi, ctx.now);
    }
    let t = &w.tenants[idx];
    let mut out = CmdletOutput::one(batch_json(t, &t.batches[bi]));
    if deprecated {
        out = out.warn("The BadItemLimit and LargeItemLimit parameters are deprecated in Exchange Online; use Data Consistency Score and approve skipped items instead.");
    }
    Ok(out)
}

fn batch_index(t: &Tenant, p: &mut Params) -> Result<usize, CmdletError> {
    let id = p.req_str("Identity")?;
    find_batch(t, &id).ok_or_else(|| CmdletError::not_found(&id))
}

pub fn get_migration_batch(_ctx: &Ctx<'_>, _w: &World, t: &Tenant, p: &mut Params) -> CmdletResult {
    let status = p.str("Status")?;
    let endpoint = p.str("Endpoint")?;
    p.ignore(&[
        "IncludeReport",
        "Diagnostic",
        "DiagnosticArgument",
        "DiagnosticInfo",
        "Partition",
    ]);
    if let Some(s) = &status
        && BatchStatus::parse(s).is_none()
    {
        return Err(CmdletError::new(
            "System.Management.Automation.ParameterBindingArgumentTransformationException",
            format!(
                "Cannot process argument transformation on parameter 'Status'. Cannot convert value \"{s}\" to type \"Microsoft.Exchange.Data.Storage.Management.MigrationBatchStatus\". Error: \"Unable to match the identifier name {s} to a valid enumerator name. Specify one of the following enumerator names and try again: Created, Syncing, Stopping, Stopped, Completed, Failed, Removing, Synced, IncrementalSyncing, Completing, CompletedWithErrors, SyncedWithErrors, Corrupted, Waiting, Starting\""
            ),
        ));
    }
    if let Some(id) = p.str("Identity")? {
        let i = find_batch(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
        return Ok(CmdletOutput::one(batch_json(t, &t.batches[i])));
    }
    let ep_guid = match &endpoint {
        Some(e) => Some(
            find_endpoint(t, e)
                .map(|i| t.endpoints[i].guid)
                .ok_or_else(|| CmdletError::not_found(e))?,
        ),
        None => None,
    };
    Ok(CmdletOutput::many(
        t.batches
            .iter()
            .filter(|b| {
                status
                    .as_ref()
                    .is_none_or(|s| b.status().as_str().eq_ignore_ascii_case(s))
            })
            .filter(|b| ep_guid.is_none_or(|g| b.endpoint == g))
            .map(|b| batch_json(t, b))
            .collect(),
    ))
}

pub fn start_migration_batch(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let bi = batch_index(&w.tenants[idx], p)?;
    p.ignore(&["Validate", "Partition"]);
    let b = &w.tenants[idx].batches[bi];
    let status = b.status();
    let retryable = b
        .users
        .iter()
        .any(|u| matches!(u.status, UserStatus::Failed | UserStatus::Stopped));
    if !retryable {
        return Err(mig_err(
            "Microsoft.Exchange.Migration.MigrationBatchCannotBeStartedException",
            format!(
                "The migration batch '{}' can't be started because it's in the {} state and has no stopped or failed users.",
                b.name,
                status.as_str()
            ),
        ));
    }
    moves::start_batch(w, idx, bi, ctx.now);
    Ok(CmdletOutput::none())
}

pub fn stop_migration_batch(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let bi = batch_index(&w.tenants[idx], p)?;
    p.ignore(&["Partition"]);
    let b = &mut w.tenants[idx].batches[bi];
    let in_progress = b.users.iter().any(|u| {
        matches!(
            u.status,
            UserStatus::Queued
                | UserStatus::Syncing
                | UserStatus::Synced
                | UserStatus::IncrementalSyncing
        )
    });
    if !in_progress {
        return Err(mig_err(
            "Microsoft.Exchange.Migration.MigrationBatchCannotBeStoppedException",
            format!(
                "The migration batch '{}' can't be stopped because no users are in progress.",
                b.name
            ),
        ));
    }
    for u in &mut b.users {
        if matches!(
            u.status,
            UserStatus::Queued
                | UserStatus::Syncing
                | UserStatus::Synced
                | UserStatus::IncrementalSyncing
        ) {
            u.status = UserStatus::Stopped;
            u.phase_since = ctx.now;
        }
    }
    b.stopped = true;
    Ok(CmdletOutput::none())
}

pub fn complete_migration_batch(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let bi = batch_index(&w.tenants[idx], p)?;
    let notify = p.multi("NotificationEmails")?;
    p.ignore(&["SyncAndComplete", "Partition"]);
    let b = &mut w.tenants[idx].batches[bi];
    let status = b.status();
    if !matches!(status, BatchStatus::Synced | BatchStatus::SyncedWithErrors) {
        return Err(mig_err(
            "Microsoft.Exchange.Migration.MigrationBatchCannotBeCompletedException",
            format!(
                "The migration batch '{}' can't be completed because it's in the {} state. Only batches in the Synced or SyncedWithErrors state can be completed.",
                b.name,
                status.as_str()
            ),
        ));
    }
    // EXO: completing sets CompleteAfter to now (UTC); the engine picks it up.
    b.complete_after = Some(ctx.now);
    if let Some(n) = notify {
        n.apply(&mut b.notification_emails, |a, c| a.eq_ignore_ascii_case(c));
    }
    Ok(CmdletOutput::none())
}

pub fn remove_migration_batch(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let bi = batch_index(&w.tenants[idx], p)?;
    p.ignore(&["Force", "Partition"]);
    let b = &w.tenants[idx].batches[bi];
    if b.status() == BatchStatus::Completing {
        return Err(mig_err(
            "Microsoft.Exchange.Migration.MigrationBatchCannotBeRemovedException",
            format!(
                "The migration batch '{}' can't be removed while it's completing.",
                b.name
            ),
        ));
    }
    w.tenants[idx].batches.remove(bi);
    Ok(CmdletOutput::none())
}

pub fn set_migration_batch(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let bi = batch_index(&w.tenants[idx], p)?;
    let complete_after = p.datetime("CompleteAfter")?;
    let start_after = p.datetime("StartAfter")?;
    let notify = p.multi("NotificationEmails")?;
    let sync_now = p.switch("SyncNow")?;
    let add_users = p.switch("AddUsers")?;
    let csv = p.raw("CSVData");
    p.ignore(&[
        "ApproveSkippedItems",
        "AutoRetryCount",
        "AllowIncrementalSyncs",
        "ReportInterval",
        "SkipReports",
        "Update",
        "Partition",
        "TimeZone",
    ]);
    // -AddUsers -CSVData (cloud only): the CSV has New-MigrationBatch's format; its rows are
    // appended and only rows not yet in the batch are processed.
    let added = match (add_users, csv) {
        (true, None) => {
            return Err(CmdletError::invalid_argument(
                "The AddUsers switch must be used with the CSVData parameter.",
            ));
        }
        (add, Some(csv)) => {
            let bytes = csv_bytes(&csv).ok_or_else(|| {
                CmdletError::new(
                    "System.Management.Automation.ParameterBindingArgumentTransformationException",
                    "Cannot process argument transformation on parameter 'CSVData'. Cannot convert value to type \"System.Byte[]\".",
                )
            })?;
            let emails = parse_csv(&bytes)?;
            let b = &w.tenants[idx].batches[bi];
            let new: Vec<String> = emails
                .into_iter()
                .filter(|e| !b.users.iter().any(|u| u.email.eq_ignore_ascii_case(e)))
                .collect();
            if !add {
                // Without -AddUsers the CSV only updates per-user settings of users already in
                // the batch.
                if let Some(e) = new.first() {
                    return Err(mig_err(
                        "Microsoft.Exchange.Migration.MigrationCSVParsingException",
                        format!(
                            "The user '{e}' isn't in the migration batch '{}'. Use the AddUsers switch to add users to an existing batch.",
                            b.name
                        ),
                    ));
                }
                Vec::new()
            } else {
                let max = ctx.app.move_settings.max_users_per_batch;
                if b.users.len() + new.len() > max {
                    return Err(mig_err(
                        "Microsoft.Exchange.Migration.MigrationCSVParsingException",
                        format!(
                            "The migration batch '{}' can't have more than {max} users; it has {} and the CSV file adds {}.",
                            b.name,
                            b.users.len(),
                            new.len()
                        ),
                    ));
                }
                if b.status() == BatchStatus::Completing {
                    return Err(mig_err(
                        "Microsoft.Exchange.Migration.MigrationBatchCannotBeModifiedException",
                        format!(
                            "Users can't be added to the migration batch '{}' while it's completing.",
                            b.name
                        ),
                    ));
                }
                new
            }
        }
        (false, None) => Vec::new(),
    };
    if !added.is_empty() {
        let t = &w.tenants[idx];
        let users: Vec<MoveUser> = added
            .into_iter()
            .map(|e| new_move_user(t, e, ctx.now))
            .collect();
        let first = w.tenants[idx].batches[bi].users.len();
        w.tenants[idx].batches[bi].users.extend(users);
        // A running batch validates and queues its new users at once; a created or stopped one
        // keeps them Stopped until Start-MigrationBatch.
        let b = &w.tenants[idx].batches[bi];
        if b.started.is_some() && !b.stopped {
            let last = b.users.len();
            let queued: Vec<(usize, MoveUser)> = (first..last)
                .map(|ui| (ui, moves::validate_and_queue(w, idx, bi, ui, ctx.now)))
                .collect();
            for (ui, u) in queued {
                w.tenants[idx].batches[bi].users[ui] = u;
            }
        }
    }
    let b = &mut w.tenants[idx].batches[bi];
    if let Some(c) = complete_after {
        b.complete_after = Some(c);
    }
    if let Some(s) = start_after {
        b.start_after = Some(s);
    }
    if let Some(n) = notify {
        n.apply(&mut b.notification_emails, |a, c| a.eq_ignore_ascii_case(c));
    }
    if sync_now {
        for u in &mut b.users {
            if u.status == UserStatus::Synced {
                u.last_sync = Some(ctx.now);
            }
        }
        b.last_synced = Some(ctx.now);
    }
    Ok(CmdletOutput::none())
}

fn all_users(t: &Tenant) -> impl Iterator<Item = (&Batch, &MoveUser)> {
    t.batches
        .iter()
        .flat_map(|b| b.users.iter().map(move |u| (b, u)))
}

fn user_matches(u: &MoveUser, id: &str) -> bool {
    u.email.eq_ignore_ascii_case(id) || Uuid::parse_str(id).is_ok_and(|g| g == u.guid)
}

pub fn get_migration_user(_ctx: &Ctx<'_>, _w: &World, t: &Tenant, p: &mut Params) -> CmdletResult {
    let id = p.str("Identity")?;
    let batch = p.str("BatchId")?;
    let status = p.str("Status")?;
    let email = p.str("EmailAddress")?;
    p.ignore(&[
        "StatusSummary",
        "MailboxGuid",
        "IncludeAssociatedUsers",
        "Partition",
    ]);
    let id = id.or(email);
    // Reference §2.8 caution: a non-existent Identity returns all objects.
    let id = id.filter(|i| all_users(t).any(|(_, u)| user_matches(u, i)));
    let bidx = match &batch {
        Some(b) => Some(find_batch(t, b).ok_or_else(|| CmdletError::not_found(b))?),
        None => None,
    };
    Ok(CmdletOutput::many(
        all_users(t)
            .filter(|(b, _)| bidx.is_none_or(|i| t.batches[i].guid == b.guid))
            .filter(|(_, u)| id.as_ref().is_none_or(|i| user_matches(u, i)))
            .filter(|(_, u)| {
                status
                    .as_ref()
                    .is_none_or(|s| u.status.as_str().eq_ignore_ascii_case(s))
            })
            .map(|(b, u)| user_json(b, u))
            .collect(),
    ))
}

pub fn get_migration_user_statistics(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    p.ignore(&[
        "IncludeReport",
        "IncludeSkippedItems",
        "LimitSkippedItemsTo",
        "SkipSubscription",
        "Diagnostic",
        "DiagnosticArgument",
        "DiagnosticInfo",
        "IncludeCopilotReport",
        "Partition",
    ]);
    let (b, u) = all_users(t)
        .find(|(_, u)| user_matches(u, &id))
        .ok_or_else(|| CmdletError::not_found(&id))?;
    Ok(CmdletOutput::one(user_stats_json(b, u)))
}

fn move_json(t: &Tenant, b: &Batch, u: &MoveUser, stats: bool) -> Value {
    let r = u.target.and_then(|g| t.recipients.by_guid(g));
    let mut v = json!({
        "Identity": r.map(|r| r.name.clone()).unwrap_or_else(|| u.email.clone()),
        "DisplayName": r.map(|r| r.display_name.clone()).unwrap_or_default(),
        "Alias": r.map(|r| r.alias.clone()).unwrap_or_default(),
        "ExchangeGuid": r.map(|r| r.exchange_guid),
        "Status": u.status.move_status(),
        "BatchName": format!("MigrationService:{}", b.name),
        "RemoteHostName": crate::sim::rules::WW_REMOTE_SERVER,
        "Flags": "CrossOrg, Pull, CrossTenant",
        "RequestStyle": "CrossOrg",
        "Direction": "Pull",
        "Suspend": false,
        "SuspendWhenReadyToComplete": b.complete_after.is_none() && !b.auto_complete,
        "RecipientTypeDetails": r.map(|r| r.recipient_type_details()),
    });
    if stats && let Value::Object(m) = &mut v {
        m.insert("PercentComplete".into(), json!(u.percent()));
        m.insert(
            "StatusDetail".into(),
            json!(match u.status {
                UserStatus::Synced => "AutoSuspended",
                UserStatus::IncrementalSyncing => "IncrementalSync",
                UserStatus::Failed => "FailedOther",
                UserStatus::Queued => "Queued",
                UserStatus::Syncing => "CopyingMessages",
                UserStatus::Completing => "Finalization",
                UserStatus::Completed => "Completed",
                UserStatus::Stopped => "Suspended",
            }),
        );
        m.insert("TotalMailboxSize".into(), json!(byte_size(u.bytes_total)));
        m.insert("TotalMailboxItemCount".into(), json!(u.items_total));
        m.insert("BytesTransferred".into(), json!(byte_size(u.bytes_done)));
        m.insert("ItemsTransferred".into(), json!(u.items_done()));
        m.insert("BadItemsEncountered".into(), json!(0));
        m.insert("LargeItemsEncountered".into(), json!(0));
        m.insert("CompleteAfter".into(), ts(b.complete_after));
        m.insert(
            "FailureType".into(),
            json!(u.error.as_ref().map(|e| short(e.exception))),
        );
        m.insert(
            "Message".into(),
            json!(
                u.error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default()
            ),
        );
    }
    v
}

fn move_user<'a>(t: &'a Tenant, id: &str) -> Option<(&'a Batch, &'a MoveUser)> {
    let ri = t.find_recipient(id).map(|i| t.recipients[i].guid);
    all_users(t)
        .filter(|(_, u)| {
            u.status != UserStatus::Stopped || u.initial_sync_done.is_some() || u.source.is_some()
        })
        .find(|(_, u)| user_matches(u, id) || (ri.is_some() && u.target == ri))
}

pub fn get_move_request(_ctx: &Ctx<'_>, _w: &World, t: &Tenant, p: &mut Params) -> CmdletResult {
    let id = p.str("Identity")?;
    let batch = p.str("BatchName")?;
    let status = p.str("Status")?.or(p.str("MoveStatus")?);
    p.ignore(&[
        "Flags",
        "Suspend",
        "SuspendWhenReadyToComplete",
        "TargetDatabase",
        "SourceDatabase",
        "Offline",
        "Protect",
        "RemoteHostName",
        "SortBy",
        "HighPriority",
    ]);
    if let Some(id) = id {
        let (b, u) = move_user(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
        return Ok(CmdletOutput::one(move_json(t, b, u, false)));
    }
    Ok(CmdletOutput::many(
        all_users(t)
            .filter(|(_, u)| u.source.is_some())
            .filter(|(b, _)| {
                batch.as_ref().is_none_or(|n| {
                    let n = n.strip_prefix("MigrationService:").unwrap_or(n);
                    b.name.eq_ignore_ascii_case(n)
                })
            })
            .filter(|(_, u)| {
                status
                    .as_ref()
                    .is_none_or(|s| u.status.move_status().eq_ignore_ascii_case(s))
            })
            .map(|(b, u)| move_json(t, b, u, false))
            .collect(),
    ))
}

pub fn get_move_request_statistics(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    p.ignore(&[
        "IncludeReport",
        "DiagnosticInfo",
        "ReportOnly",
        "Analysis",
        "DiagnosticOnly",
        "IncludeSkippedItems",
    ]);
    let (b, u) = move_user(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    Ok(CmdletOutput::one(move_json(t, b, u, true)))
}

/// Finds a migration user by email or guid: (batch index, user index). An address that is
/// in two batches (the second copy failed as a duplicate) resolves to the live copy, which
/// is the one the remediation "remove the user, then retry the new batch" removes.
fn user_index(t: &Tenant, id: &str) -> Option<(usize, usize)> {
    let find = |live: bool| {
        t.batches.iter().enumerate().find_map(|(bi, b)| {
            b.users
                .iter()
                .position(|u| user_matches(u, id) && (!live || u.status != UserStatus::Failed))
                .map(|ui| (bi, ui))
        })
    };
    find(true).or_else(|| find(false))
}

pub fn remove_migration_user(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    p.ignore(&["Force", "Partition"]);
    let t = &mut w.tenants[idx];
    let (bi, ui) = user_index(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    if t.batches[bi].users[ui].status == UserStatus::Completing {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Migration.MigrationUserCannotBeRemovedException",
            format!("The migration user '{id}' can't be removed while it's completing."),
        ));
    }
    t.batches[bi].users.remove(ui);
    Ok(CmdletOutput::none())
}

pub fn set_migration_user(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let complete_after = p.datetime("CompleteAfter")?;
    let sync_now = p.switch("SyncNow")?;
    p.ignore(&[
        "ApproveSkippedItems",
        "StartAfter",
        "Partition",
        "BadItemLimit",
        "LargeItemLimit",
    ]);
    let t = &mut w.tenants[idx];
    let (bi, ui) = user_index(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let u = &mut t.batches[bi].users[ui];
    if let Some(c) = complete_after {
        u.complete_after = Some(c);
    }
    if sync_now && u.status == UserStatus::Synced {
        u.last_sync = Some(ctx.now);
    }
    Ok(CmdletOutput::none())
}

pub fn start_migration_user(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    p.ignore(&["Partition", "Validate"]);
    let (bi, ui) = user_index(&w.tenants[idx], &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let status = w.tenants[idx].batches[bi].users[ui].status;
    if !matches!(status, UserStatus::Failed | UserStatus::Stopped) {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Migration.MigrationUserCannotBeStartedException",
            format!(
                "The migration user '{id}' can't be started because it's {}.",
                status.as_str()
            ),
        ));
    }
    let u = moves::validate_and_queue(w, idx, bi, ui, ctx.now);
    let b = &mut w.tenants[idx].batches[bi];
    b.users[ui] = u;
    b.stopped = false;
    if b.started.is_none() {
        b.started = Some(ctx.now);
    }
    if w.tenants[idx].moves_cursor.is_none() {
        w.tenants[idx].moves_cursor = Some(ctx.now);
    }
    Ok(CmdletOutput::none())
}

pub fn stop_migration_user(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    p.ignore(&["Partition"]);
    let t = &mut w.tenants[idx];
    let (bi, ui) = user_index(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let u = &mut t.batches[bi].users[ui];
    if !matches!(
        u.status,
        UserStatus::Queued
            | UserStatus::Syncing
            | UserStatus::Synced
            | UserStatus::IncrementalSyncing
    ) {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Migration.MigrationUserCannotBeStoppedException",
            format!(
                "The migration user '{id}' can't be stopped because it's {}.",
                u.status.as_str()
            ),
        ));
    }
    u.status = UserStatus::Stopped;
    u.phase_since = ctx.now;
    Ok(CmdletOutput::none())
}
