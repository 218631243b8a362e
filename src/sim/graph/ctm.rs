//! Graph routes of `/solutions/migrations/crossTenantMigrationJobs` (reference G §1.2), over
//! the state machine in `sim::ctm`. A child module of `graph` so it shares its helpers.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{GResult, GraphResponse, Req, page, resume, with_tenant, with_tenant_mut};
use crate::sim::ctm::{self, Job, JobStatus};
use crate::sim::state::{Tenant, World};

const READ: &[&str] = &[
    "CrossTenantContentMigration.Read.All",
    "CrossTenantContentMigration.ReadWrite.All",
];
const WRITE: &[&str] = &["CrossTenantContentMigration.ReadWrite.All"];
const COLLECTION: &str = "solutions/migrations/crossTenantMigrationJobs";

fn bad_argument(req: &Req<'_>, field: &str, inner: &str, msg: &str) -> GraphResponse {
    let rid = Uuid::new_v4();
    GraphResponse::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"error": {"code": "BadArgument", "message": format!("Error in {field} data field {inner}. {msg}"),
            "innerError": {"code": inner, "date": req.now.format("%Y-%m-%dT%H:%M:%S").to_string(),
                           "request-id": rid, "client-request-id": rid}}}),
    )
}

fn conflict(req: &Req<'_>, msg: String) -> GraphResponse {
    req.err(StatusCode::CONFLICT, "Conflict", msg)
}

fn job_json(t: &Tenant, j: &Job, echo_resources: bool) -> Value {
    let ts = |d: DateTime<Utc>| super::super::identity::ticks(d);
    json!({
        "id": j.id, "displayName": j.display_name,
        "jobType": if j.migrate { "migrate" } else { "validate" },
        "status": j.status.as_str(), "message": j.message,
        "completeAfterDateTime": j.complete_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "sourceTenantId": j.source_tenant_id, "targetTenantId": t.id,
        "exchangeSettings": {"sourceEndpoint": j.source_endpoint, "targetDeliveryDomain": j.target_delivery_domain},
        "resourceType": "users",
        "resources": if echo_resources { j.resources.clone() } else { Vec::new() },
        "workloads": j.workloads,
        "createdBy": j.created_by,
        "createdDateTime": ts(j.created), "lastUpdatedDateTime": ts(j.last_updated),
        "@odata.type": "#microsoft.graph.crossTenantMigrationJob",
    })
}

fn find_job(t: &Tenant, key: &str) -> Option<usize> {
    if let Some(name) = key.strip_prefix("displayName=") {
        return t
            .ctm_jobs
            .iter()
            .position(|j| j.display_name.eq_ignore_ascii_case(name));
    }
    t.ctm_jobs.iter().position(|j| {
        Uuid::parse_str(key).is_ok_and(|g| g == j.id) && j.status != JobStatus::PendingDelete
    })
}

fn job_not_found(req: &Req<'_>, key: &str) -> GraphResponse {
    req.err(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Cross Tenant Migration Job {key} was not found."),
    )
}

pub(super) fn dispatch(
    req: &Req<'_>,
    method: &axum::http::Method,
    rest: &[&str],
    body: Option<Value>,
) -> GResult {
    use axum::http::Method;
    match (rest, method) {
        ([], m) if *m == Method::GET => list(req),
        ([], m) if *m == Method::POST => create(req, body),
        ([id], m) if *m == Method::GET => get(req, id),
        ([id], m) if *m == Method::PATCH => update(req, id, body),
        ([id], m) if *m == Method::DELETE => delete(req, id),
        ([id, "validate"], m) if *m == Method::POST => validate(req, id),
        ([id, "migrate"], m) if *m == Method::POST => migrate(req, id),
        ([id, "cancel"], m) if *m == Method::POST => cancel(req, id),
        ([id, "users"], m) if *m == Method::GET => users(req, id, None),
        ([id, "users", uid], m) if *m == Method::GET => users(req, id, Some(uid)),
        ([id, "users", uid, "cancel"], m) if *m == Method::POST => cancel_user(req, id, uid),
        _ => Err(req.err(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )),
    }
}

fn list(req: &Req<'_>) -> GResult {
    req.require(READ)?;
    let mut r = Req {
        app: req.app,
        caller: req.caller,
        version: req.version,
        now: req.now,
        query: req.query.clone(),
        headers: req.headers.clone(),
    };
    let offset = resume(&mut r)?;
    let req = &r;
    with_tenant(req, |_, t| {
        let items: Vec<Value> = t
            .ctm_jobs
            .iter()
            .filter(|j| j.status != JobStatus::PendingDelete)
            .map(|j| job_json(t, j, false))
            .collect();
        page(req, COLLECTION, items, 20, offset, None)
    })
}

fn get(req: &Req<'_>, key: &str) -> GResult {
    req.require(READ)?;
    with_tenant(req, |_, t| {
        let i = find_job(t, key).ok_or_else(|| job_not_found(req, key))?;
        let mut v = job_json(t, &t.ctm_jobs[i], true);
        v["@odata.context"] = json!(req.context(&format!("{COLLECTION}/$entity")));
        Ok(GraphResponse::ok(v))
    })
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn create(req: &Req<'_>, body: Option<Value>) -> GResult {
    req.require(WRITE)?;
    let b = body.unwrap_or(Value::Null);
    let Some(name) = b["displayName"].as_str().filter(|s| !s.trim().is_empty()) else {
        return Err(bad_argument(
            req,
            "displayName",
            "required",
            "displayName is required.",
        ));
    };
    let Some(complete_after) = parse_time(&b["completeAfterDateTime"]) else {
        return Err(bad_argument(
            req,
            "completeAfterDateTime",
            "required",
            "completeAfterDateTime is required.",
        ));
    };
    if complete_after <= req.now {
        return Err(bad_argument(
            req,
            "completeAfterDateTime",
            "minThresholdFailed",
            "completeAfterDateTime must be greater than the current time.",
        ));
    }
    let Some(source) = b["sourceTenantId"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return Err(bad_argument(
            req,
            "sourceTenantId",
            "required",
            "sourceTenantId must be a tenant GUID.",
        ));
    };
    if !b["resourceType"]
        .as_str()
        .is_some_and(|r| r.eq_ignore_ascii_case("users"))
    {
        return Err(bad_argument(
            req,
            "resourceType",
            "resourceTypeMismatch",
            "Only resourceType 'Users' is supported.",
        ));
    }
    let resources: Vec<Uuid> = match b["resources"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                bad_argument(
                    req,
                    "resources",
                    "invalidResource",
                    "resources must be target user object ids.",
                )
            })?,
        _ => {
            return Err(bad_argument(
                req,
                "resources",
                "required",
                "resources must contain at least one user.",
            ));
        }
    };
    let max = req.app.job_settings.max_users_per_job;
    if resources.len() > max {
        return Err(bad_argument(
            req,
            "resources",
            "maxThresholdExceeded",
            &format!("A job can contain at most {max} users."),
        ));
    }
    let workloads: Vec<String> = b["workloads"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec!["Exchange".into()]);
    if let Some(w) = workloads
        .iter()
        .find(|w| !w.eq_ignore_ascii_case("Exchange"))
    {
        // Only the Exchange workload is simulated (documented deviation).
        return Err(bad_argument(
            req,
            "workloads",
            "unsupportedWorkload",
            &format!("The workload '{w}' is not available in this simulator."),
        ));
    }
    let (Some(ep), Some(tdd)) = (
        b["exchangeSettings"]["sourceEndpoint"].as_str(),
        b["exchangeSettings"]["targetDeliveryDomain"].as_str(),
    ) else {
        return Err(bad_argument(
            req,
            "exchangeSettings",
            "required",
            "exchangeSettings with sourceEndpoint and targetDeliveryDomain is required for the Exchange workload.",
        ));
    };
    let now = req.now;
    let caller_app = req.caller.app_id.clone();
    with_tenant_mut(req, |w: &mut World, idx| {
        let t = &mut w.tenants[idx];
        if source == t.id {
            return Err(bad_argument(
                req,
                "sourceTenantId",
                "invalidSourceTenant",
                "The source tenant must differ from the target tenant.",
            ));
        }
        if t.ctm_jobs.iter().any(|j| {
            j.display_name.eq_ignore_ascii_case(name) && j.status != JobStatus::PendingDelete
        }) {
            return Err(bad_argument(
                req,
                "displayName",
                "duplicateDisplayNameJob",
                "displayName already exists.",
            ));
        }
        let job = Job {
            id: Uuid::new_v4(),
            display_name: name.to_string(),
            migrate: false,
            status: JobStatus::Submitted,
            message: String::new(),
            source_tenant_id: source,
            complete_after,
            created: now,
            created_by: caller_app,
            last_updated: now,
            source_endpoint: ep.to_string(),
            target_delivery_domain: tdd.to_string(),
            workloads: workloads.clone(),
            resources,
            validated_at: None,
            phase_since: now,
            checks: Vec::new(),
            cancelled_users: Vec::new(),
            batch: None,
        };
        let mut v = job_json(t, &job, true);
        v["@odata.context"] = json!(req.context(&format!("{COLLECTION}/$entity")));
        t.ctm_jobs.push(job);
        Ok(GraphResponse::json(StatusCode::CREATED, v))
    })
}

fn action_response(req: &Req<'_>, t: &Tenant, j: &Job) -> GraphResponse {
    let mut v = job_json(t, j, false);
    v["@odata.context"] = json!(req.context("microsoft.graph.crossTenantMigrationJob"));
    GraphResponse::ok(v)
}

fn validate(req: &Req<'_>, key: &str) -> GResult {
    req.require(WRITE)?;
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_job(t, key).ok_or_else(|| job_not_found(req, key))?;
        let j = &mut t.ctm_jobs[i];
        if !j.status.can_validate() {
            return Err(conflict(
                req,
                format!(
                    "Validation can't be started because the current status is {}.",
                    j.status.as_str()
                ),
            ));
        }
        j.status = JobStatus::ValidateSubmitted;
        j.migrate = false;
        j.message = "Validation job has been submitted successfully".into();
        j.phase_since = now;
        j.last_updated = now;
        j.checks.clear();
        let j = j.clone();
        Ok(action_response(req, &w.tenants[idx], &j))
    })
}

fn migrate(req: &Req<'_>, key: &str) -> GResult {
    req.require(WRITE)?;
    let now = req.now;
    let expiry = req.app.job_settings.validation_expiry;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_job(t, key).ok_or_else(|| job_not_found(req, key))?;
        let j = &mut t.ctm_jobs[i];
        if !j.status.can_migrate() {
            return Err(conflict(
                req,
                format!(
                    "Migration can't be started because the current status is {}.",
                    j.status.as_str()
                ),
            ));
        }
        if j.status == JobStatus::ValidatePassed && j.validated_at.is_some_and(|v| now - v > expiry)
        {
            return Err(conflict(req, "Migration can't be started because the validation is older than 7 days. Validate the job again.".into()));
        }
        j.status = JobStatus::Processing;
        j.migrate = true;
        j.message = "Migration job has been submitted successfully".into();
        j.phase_since = now;
        j.last_updated = now;
        let j = j.clone();
        Ok(action_response(req, &w.tenants[idx], &j))
    })
}

fn cancel(req: &Req<'_>, key: &str) -> GResult {
    req.require(WRITE)?;
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_job(t, key).ok_or_else(|| job_not_found(req, key))?;
        let j = &mut t.ctm_jobs[i];
        if !j.status.can_cancel() || now >= j.complete_after {
            return Err(conflict(
                req,
                format!(
                    "Cancel is not possible. Current status is {}.",
                    j.status.as_str()
                ),
            ));
        }
        j.status = JobStatus::PendingCancel;
        j.phase_since = now;
        j.last_updated = now;
        Ok(GraphResponse::json(
            StatusCode::ACCEPTED,
            json!({
            "@odata.context": req.context("microsoft.graph.crossTenantMigrationCancelResponse"),
            "status": "pendingCancel", "message": "cancellation request has been accepted for the migration job"}),
        ))
    })
}

fn update(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(WRITE)?;
    let Some(Value::Object(b)) = body else {
        return Err(req.bad("Empty Payload. JSON content expected."));
    };
    if let Some(k) = b.keys().find(|k| k.as_str() != "completeAfterDateTime") {
        return Err(bad_argument(
            req,
            k,
            "readOnlyProperty",
            "Only completeAfterDateTime can be updated.",
        ));
    }
    let Some(c) = b.get("completeAfterDateTime").and_then(parse_time) else {
        return Err(bad_argument(
            req,
            "completeAfterDateTime",
            "required",
            "completeAfterDateTime is required.",
        ));
    };
    if c <= req.now {
        return Err(bad_argument(
            req,
            "completeAfterDateTime",
            "minThresholdFailed",
            "completeAfterDateTime must be greater than the current time.",
        ));
    }
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_job(t, key).ok_or_else(|| job_not_found(req, key))?;
        let batch = t.ctm_jobs[i].batch;
        t.ctm_jobs[i].complete_after = c;
        t.ctm_jobs[i].last_updated = now;
        if let Some(b) = batch.and_then(|g| t.batches.iter_mut().find(|b| b.guid == g)) {
            b.complete_after = Some(c);
        }
        Ok(GraphResponse {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
        })
    })
}

fn delete(req: &Req<'_>, key: &str) -> GResult {
    req.require(WRITE)?;
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_job(t, key).ok_or_else(|| job_not_found(req, key))?;
        let j = &mut t.ctm_jobs[i];
        if !j.status.is_final() {
            return Err(conflict(
                req,
                format!(
                    "Cross Tenant Migration Job {} must be in final state (Completed, Failed, or Cancelled) to be deleted. Current status is {}.",
                    j.id,
                    j.status.as_str()
                ),
            ));
        }
        j.status = JobStatus::PendingDelete;
        j.phase_since = now;
        Ok(GraphResponse {
            status: StatusCode::ACCEPTED,
            body: None,
            headers: Vec::new(),
        })
    })
}

fn task_json(w: &World, ti: usize, j: &Job, user: Uuid) -> Value {
    let (status, errors) = ctm::exchange_status(w, ti, j, user);
    json!({
        "id": user, "taskType": "Users", "lastUpdatedDateTime": super::super::identity::ticks(j.last_updated),
        "currentStatus": [{"service": "Exchange", "status": status, "message": "",
            "errors": errors.iter().map(|(c, m)| json!({"code": c, "message": m})).collect::<Vec<_>>()}],
    })
}

fn users(req: &Req<'_>, key: &str, uid: Option<&str>) -> GResult {
    req.require(READ)?;
    let mut r = Req {
        app: req.app,
        caller: req.caller,
        version: req.version,
        now: req.now,
        query: req.query.clone(),
        headers: req.headers.clone(),
    };
    let offset = resume(&mut r)?;
    let req = &r;
    with_tenant(req, |w, t| {
        let ti = w.tenants.iter().position(|x| x.id == t.id).unwrap_or(0);
        let i = find_job(t, key).ok_or_else(|| job_not_found(req, key))?;
        let j = &t.ctm_jobs[i];
        match uid {
            Some(u) => {
                let user = Uuid::parse_str(u)
                    .ok()
                    .filter(|g| j.resources.contains(g))
                    .ok_or_else(|| {
                        req.err(
                            StatusCode::NOT_FOUND,
                            "NotFound",
                            format!("User {u} was not found in job {}.", j.id),
                        )
                    })?;
                Ok(GraphResponse::ok(task_json(w, ti, j, user)))
            }
            None => {
                let items: Vec<Value> = j
                    .resources
                    .iter()
                    .map(|u| task_json(w, ti, j, *u))
                    .collect();
                page(
                    req,
                    &format!("{COLLECTION}/{}/users", j.id),
                    items,
                    20,
                    offset,
                    None,
                )
            }
        }
    })
}

fn cancel_user(req: &Req<'_>, key: &str, uid: &str) -> GResult {
    req.require(WRITE)?;
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_job(t, key).ok_or_else(|| job_not_found(req, key))?;
        let user = Uuid::parse_str(uid)
            .ok()
            .filter(|g| t.ctm_jobs[i].resources.contains(g))
            .ok_or_else(|| {
                req.err(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("User {uid} was not found in job {key}."),
                )
            })?;
        let j = &t.ctm_jobs[i];
        if now >= j.complete_after || !j.status.can_cancel() {
            return Err(conflict(
                req,
                format!(
                    "Cancel is not possible. Current status is {}.",
                    j.status.as_str()
                ),
            ));
        }
        let name = j.display_name.clone();
        let batch = j.batch;
        t.ctm_jobs[i].cancelled_users.push(user);
        // Drop the user's move, if it started.
        let rguid = t
            .recipients
            .iter()
            .find(|r| r.user_id == user)
            .map(|r| r.guid);
        if let Some(b) = batch.and_then(|g| t.batches.iter_mut().find(|b| b.guid == g)) {
            b.users.retain(|u| u.target != rguid);
        }
        Ok(GraphResponse::json(
            StatusCode::ACCEPTED,
            json!({
            "status": "Accepted",
            "message": format!("Cancellation request for user id: {user} from batch: {name} was accepted.")}),
        ))
    })
}
