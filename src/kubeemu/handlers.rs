//! HTTP glue: one fallback handler parses Kubernetes paths by hand (their shapes are irregular),
//! picks the verb, runs the operation under the state lock, and renders JSON, Table or
//! PartialObjectMetadata responses and `Status` errors.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use base64::Engine;
use chrono::Utc;
use serde_json::{Value, json};

use super::App;
use super::discovery;
use super::openapi;
use super::ops::{self, DeleteOpts, FieldValidation, Target, WriteOpts, present};
use super::protobuf;
use super::registry::ResourceInfo;
use super::selector::{FieldSelector, LabelSelector, field_supported};
use super::status::ApiError;
use super::table::{self, Include};
use super::watch;

/// Parsed query string; tolerates empty pairs, a bare `?` and unknown keys.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut m = HashMap::new();
        for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(decode(k), decode(v));
        }
        Query(m)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(
            self.0.get(k).map(String::as_str),
            Some("true" | "1" | "True")
        )
    }
}

/// Percent-decoding (`+` is a space in query strings).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code(), &e.to_status())
}

fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append("Warning", v);
        }
    }
    r
}

/// What the client asked to get back (Accept header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Full,
    Table,
    Metadata,
}

pub fn shape_of(accept: &str) -> Shape {
    if accept.contains("as=Table") {
        Shape::Table
    } else if accept.contains("as=PartialObjectMetadata") {
        Shape::Metadata
    } else {
        Shape::Full
    }
}

fn include_of(q: &Query) -> Include {
    match q.get("includeObject") {
        Some("Object") => Include::Object,
        Some("None") => Include::None,
        _ => Include::Metadata,
    }
}

/// Entry point for every request.
pub async fn handle(app: Arc<App>, req: axum::extract::Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::BadRequest(format!("reading body: {e}"))),
    };
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    tracing::debug!(method = %parts.method, %path, query = ?parts.uri.query(), "kubeemu request");
    route(app, parts.method, &path, query, &parts.headers, bytes).await
}

fn header_str(h: &HeaderMap, k: header::HeaderName) -> &str {
    h.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

async fn route(
    app: Arc<App>,
    method: Method,
    path: &str,
    q: Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let accept = header_str(headers, header::ACCEPT).to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => return json_response(200, &discovery::version()),
        ["healthz"] | ["readyz"] | ["livez"] => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return r;
        }
        ["api"] | ["apis"] if method == Method::GET => {
            let st = app.lock();
            let core = segs[0] == "api";
            if discovery::wants_aggregated(&accept) {
                let mut r = json_response(200, &discovery::aggregated(&st.registry, core));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(discovery::AGGREGATED_CT),
                );
                return r;
            }
            return json_response(
                200,
                &if core {
                    discovery::api_versions(&app.addr)
                } else {
                    discovery::api_group_list(&st.registry)
                },
            );
        }
        ["api", "v1"] if method == Method::GET => {
            let st = app.lock();
            return discovery::resource_list(&st.registry, "", "v1")
                .map(|d| json_response(200, &d))
                .unwrap_or_else(|| error_response(&ApiError::NoResource));
        }
        ["apis", g] if method == Method::GET => {
            let st = app.lock();
            return discovery::api_group_doc(&st.registry, g)
                .map(|d| json_response(200, &d))
                .unwrap_or_else(|| error_response(&ApiError::NoResource));
        }
        ["apis", g, v] if method == Method::GET => {
            let st = app.lock();
            return discovery::resource_list(&st.registry, g, v)
                .map(|d| json_response(200, &d))
                .unwrap_or_else(|| error_response(&ApiError::NoResource));
        }
        ["openapi", "v3"] => {
            let st = app.lock();
            return json_response(200, &openapi::index(&st.registry, st.openapi_hash));
        }
        ["openapi", "v3", "api", v] => {
            let st = app.lock();
            return openapi::group_version_doc(&st.registry, "", v)
                .map(|d| json_response(200, &d))
                .unwrap_or_else(|| error_response(&ApiError::NoResource));
        }
        ["openapi", "v3", "apis", g, v] => {
            let st = app.lock();
            return openapi::group_version_doc(&st.registry, g, v)
                .map(|d| json_response(200, &d))
                .unwrap_or_else(|| error_response(&ApiError::NoResource));
        }
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return error_response(&ApiError::NoResource),
    };
    let target = {
        let st = app.lock();
        resolve(&st.registry, group, version, rest)
    };
    let Some(target) = target else {
        return error_response(&ApiError::NoResource);
    };
    let ctx = Ctx {
        app: app.clone(),
        target,
        q,
        accept,
        content_type: header_str(headers, header::CONTENT_TYPE).to_string(),
        user_agent: header_str(headers, header::USER_AGENT).to_string(),
        body,
    };
    if ctx.target.info.is_review() {
        return review(&ctx, &method);
    }
    let deprecation = ctx
        .target
        .info
        .deprecations
        .get(&ctx.target.version)
        .cloned();
    let response = match (method, ctx.target.name.is_some()) {
        (Method::GET, false) if ctx.q.flag("watch") => watch::serve(ctx).await,
        (Method::GET, false) => list(&ctx),
        (Method::GET, true) => get(&ctx),
        (Method::POST, false) => write(&ctx, Verb::Create),
        (Method::PUT, true) => write(&ctx, Verb::Update),
        (Method::PATCH, true) => write(&ctx, Verb::Patch),
        (Method::DELETE, true) => write(&ctx, Verb::Delete),
        (Method::DELETE, false) => delete_collection(&ctx),
        _ => error_response(&ApiError::MethodNotAllowed),
    };
    match deprecation {
        Some(w) => with_warnings(response, &[w]),
        None => response,
    }
}

/// `SelfSubjectAccessReview`: authorization is not emulated, so every request is allowed.
fn review(ctx: &Ctx, method: &Method) -> Response<Body> {
    if *method != Method::POST || ctx.target.name.is_some() {
        return error_response(&ApiError::MethodNotAllowed);
    }
    let decoded = decode_body(ctx).and_then(|v| {
        if !v.is_object() {
            return Err(ApiError::BadRequest(
                "the body of the request was in an unknown format".into(),
            ));
        }
        ops::check_metadata_shape(&ctx.target, &v)?;
        Ok(v)
    });
    match decoded {
        Ok(mut v) => {
            v["status"] = json!({"allowed": true, "reason": "kubeemu does not enforce RBAC"});
            if !v["metadata"].is_object() {
                v["metadata"] = json!({});
            }
            json_response(201, &v)
        }
        Err(e) => error_response(&e),
    }
}

/// Everything a resource handler needs.
pub struct Ctx {
    pub app: Arc<App>,
    pub target: Target,
    pub q: Query,
    pub accept: String,
    pub content_type: String,
    pub user_agent: String,
    pub body: Bytes,
}

/// Maps the path after `/api/v1` or `/apis/{g}/{v}` to a target.
pub fn resolve(
    reg: &super::registry::Registry,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Option<Target> {
    let mk =
        |info: Arc<ResourceInfo>, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
            info,
            version: version.to_string(),
            ns: ns.map(String::from),
            name: name.map(String::from),
            sub: sub.map(String::from),
        };
    if let ["namespaces", ns, r, tail @ ..] = rest
        && let Some(info) = reg.lookup(group, version, r)
        && info.namespaced
    {
        return match tail {
            [] => Some(mk(info, Some(ns), None, None)),
            [name] => Some(mk(info, Some(ns), Some(name), None)),
            [name, sub] if valid_sub(&info, sub) => Some(mk(info, Some(ns), Some(name), Some(sub))),
            _ => None,
        };
    }
    match rest {
        [r] => reg
            .lookup(group, version, r)
            .map(|i| mk(i, None, None, None)),
        [r, name] => reg
            .lookup(group, version, r)
            .filter(|i| !i.namespaced)
            .map(|i| mk(i, None, Some(name), None)),
        [r, name, sub] => reg
            .lookup(group, version, r)
            .filter(|i| !i.namespaced && valid_sub(i, sub))
            .map(|i| mk(i, None, Some(name), Some(sub))),
        _ => None,
    }
}

fn valid_sub(info: &ResourceInfo, sub: &str) -> bool {
    info.subresources().contains(&sub)
}

/// Field manager: `fieldManager`, else the User-Agent's program name, else `unknown`.
fn manager(ctx: &Ctx) -> (String, bool) {
    if let Some(m) = ctx.q.get("fieldManager") {
        return (m.to_string(), true);
    }
    let ua = ctx.user_agent.split('/').next().unwrap_or_default().trim();
    if ua.is_empty() {
        ("unknown".into(), false)
    } else {
        (ua.to_string(), false)
    }
}

fn write_opts(ctx: &Ctx) -> Result<WriteOpts, ApiError> {
    let (manager, manager_explicit) = manager(ctx);
    let validation = match ctx.q.get("fieldValidation") {
        None | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "fieldValidation must be one of Ignore, Warn, Strict; got {other:?}"
            )));
        }
    };
    let dry_run = match ctx.q.get("dryRun") {
        None => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )));
        }
    };
    let force = ctx.q.flag("force");
    if force && !ctx.content_type.starts_with("application/apply-patch") {
        return Err(ApiError::Invalid(
            super::status::Subject {
                group: "meta.k8s.io".into(),
                kind: "PatchOptions".into(),
                name: String::new(),
            },
            vec![super::status::FieldError::new(
                "force",
                super::status::FieldErrorKind::Forbidden(
                    "may not be specified for non-apply patch".into(),
                ),
            )],
        ));
    }
    Ok(WriteOpts {
        manager,
        manager_explicit,
        dry_run,
        validation,
        force,
    })
}

/// Decodes a create/update body: JSON, YAML, or kubectl's protobuf envelope.
fn decode_body(ctx: &Ctx) -> Result<Value, ApiError> {
    if ctx
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        return protobuf::decode(&ctx.body).map_err(ApiError::UnsupportedMediaType);
    }
    if ctx.body.is_empty() {
        return Err(ApiError::BadRequest(
            "the body of the request was in an unknown format".into(),
        ));
    }
    serde_json::from_slice(&ctx.body)
        .or_else(|_| serde_yaml::from_slice(&ctx.body))
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "the body of the request was in an unknown format: {e}"
            ))
        })
}

enum Verb {
    Create,
    Update,
    Patch,
    Delete,
}

fn render_obj(ctx: &Ctx, obj: &Value) -> Value {
    let t = &ctx.target;
    let shown = present(&t.info, &t.version, obj);
    match shape_of(&ctx.accept) {
        Shape::Table => table::table(
            &t.info,
            &t.version,
            &[shown],
            json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
            include_of(&ctx.q),
            Utc::now(),
        ),
        Shape::Metadata => table::partial_metadata(&shown),
        Shape::Full => shown,
    }
}

fn write(ctx: &Ctx, verb: Verb) -> Response<Body> {
    let now = Utc::now();
    let t = &ctx.target;
    if t.sub.as_deref() == Some("scale") {
        return match verb {
            Verb::Update | Verb::Patch => scale(ctx, true),
            Verb::Create | Verb::Delete => error_response(&ApiError::MethodNotAllowed),
        };
    }
    if matches!(verb, Verb::Create) && t.sub.is_some() {
        return error_response(&ApiError::MethodNotAllowed);
    }
    let res = (|| {
        let opts = write_opts(ctx)?;
        let mut st = ctx.app.lock();
        let out = match verb {
            Verb::Create => ops::create(&mut st, t, decode_body(ctx)?, &opts, now, false),
            Verb::Update => {
                let mut target = t.clone();
                if t.sub.as_deref() == Some("finalize") {
                    // Namespace finalize: only spec.finalizers changes; treat as a main update.
                    target.sub = None;
                }
                ops::update(&mut st, &target, decode_body(ctx)?, &opts, now)
            }
            Verb::Patch => ops::patch(&mut st, t, &ctx.content_type, &ctx.body, &opts, now),
            Verb::Delete => {
                let body: Value = if ctx.body.is_empty() {
                    json!({})
                } else {
                    serde_json::from_slice(&ctx.body)
                        .map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
                };
                let d = DeleteOpts::from_body(
                    &body,
                    ctx.q.get("propagationPolicy").map(String::from),
                    opts.dry_run,
                );
                ops::delete(&mut st, t, &d, now)
            }
        }?;
        drop(st);
        ctx.app.notify();
        Ok::<_, ApiError>(out)
    })();
    match res {
        Ok(out) => {
            let code = if out.created { 201 } else { 200 };
            with_warnings(
                json_response(code, &render_obj(ctx, &out.obj)),
                &out.warnings,
            )
        }
        Err(e) => error_response(&e),
    }
}

/// `autoscaling/v1 Scale` view of `spec.replicas` / `status.replicas`.
/// `autoscaling/v1 Scale` view of the replica paths (`specReplicasPath`/`statusReplicasPath`).
/// `set`: a PUT or PATCH carrying `spec.replicas`.
fn scale(ctx: &Ctx, set: bool) -> Response<Body> {
    let t = &ctx.target;
    let Some((spec_path, status_path)) = t.info.scale.clone() else {
        return error_response(&ApiError::NoResource);
    };
    let mut main = t.clone();
    main.sub = None;
    let render = |obj: &Value| {
        let first = |p: &str| table::jsonpath(obj, p).first().map(|v| (*v).clone());
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
                "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
                "creationTimestamp": obj["metadata"]["creationTimestamp"]},
            "spec": {"replicas": first(&spec_path).unwrap_or(json!(0))},
            "status": {"replicas": first(&status_path).unwrap_or(json!(0))}})
    };
    let res = (|| {
        let mut st = ctx.app.lock();
        let cur = st
            .store
            .get(
                &t.info.storage,
                t.ns.as_deref().unwrap_or_default(),
                t.name(),
            )
            .ok_or_else(|| t.not_found())?;
        if !set {
            return Ok(render(&cur));
        }
        let body: Value =
            serde_json::from_slice(&ctx.body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        // A merge patch that sets the spec replica path: {"spec":{"replicas":N}} or deeper.
        let mut patch = body["spec"]["replicas"].clone();
        for seg in spec_path.trim_start_matches('.').rsplit('.') {
            patch = json!({ seg: patch });
        }
        let opts = write_opts(ctx)?;
        let out = ops::patch(
            &mut st,
            &main,
            "application/merge-patch+json",
            patch.to_string().as_bytes(),
            &opts,
            Utc::now(),
        )?;
        drop(st);
        ctx.app.notify();
        Ok(render(&out.obj))
    })();
    match res {
        Ok(v) => json_response(200, &v),
        Err(e) => error_response(&e),
    }
}

fn get(ctx: &Ctx) -> Response<Body> {
    let t = &ctx.target;
    if t.sub.as_deref() == Some("scale") {
        return scale(ctx, false);
    }
    let st = ctx.app.lock();
    match st.store.get(
        &t.info.storage,
        t.ns.as_deref().unwrap_or_default(),
        t.name(),
    ) {
        Some(obj) => {
            let v = render_obj(ctx, &obj);
            drop(st);
            json_response(200, &v)
        }
        None => error_response(&t.not_found()),
    }
}

/// Parsed list/watch filters.
pub struct Filters {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub ns: Option<String>,
}

impl Filters {
    pub fn parse(ctx: &Ctx) -> Result<Self, ApiError> {
        let info = &ctx.target.info;
        let labels = LabelSelector::parse(ctx.q.get("labelSelector").unwrap_or_default())
            .map_err(ApiError::BadRequest)?;
        let allowed =
            |f: &str| field_supported(&info.group, &info.plural, &info.selectable_fields, f);
        let fields = FieldSelector::parse(ctx.q.get("fieldSelector").unwrap_or_default(), &allowed)
            .map_err(ApiError::BadRequest)?;
        Ok(Filters {
            labels,
            fields,
            ns: ctx.target.ns.clone(),
        })
    }

    /// Matches against the object as the URL's view shows it (field paths differ per view).
    pub fn matches(&self, shown: &Value) -> bool {
        if let Some(ns) = &self.ns
            && shown["metadata"]["namespace"].as_str() != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches(&shown["metadata"]["labels"]) && self.fields.matches(shown)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
}

const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn list(ctx: &Ctx) -> Response<Body> {
    match list_inner(ctx) {
        Ok(bytes) => {
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => error_response(&e),
    }
}

fn list_inner(ctx: &Ctx) -> Result<Vec<u8>, ApiError> {
    let t = &ctx.target;
    let filters = Filters::parse(ctx)?;
    let limit = ctx
        .q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let st = ctx.app.lock();
    let rv = st.store.current_rv();
    let mut start_after: Option<(String, String)> = None;
    if let Some(c) = ctx.q.get("continue") {
        let tok: ContinueToken = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ApiError::BadRequest("continue key is not valid".into()))?;
        if st.store.is_compacted(tok.rv) {
            return Err(ApiError::Expired(CONTINUE_TOO_OLD.into()));
        }
        start_after = Some((tok.ns, tok.name));
    }
    if ctx.q.get("resourceVersionMatch") == Some("Exact")
        && let Some(n) = ctx
            .q
            .get("resourceVersion")
            .and_then(|r| r.parse::<u64>().ok())
        && st.store.is_compacted(n)
    {
        return Err(ApiError::Expired(format!(
            "too old resource version: {n} ({})",
            rv
        )));
    }
    let all = st.store.list(&t.info.storage, filters.ns.as_deref());
    let shape = shape_of(&ctx.accept);
    let api_version = t.info.api_version(&t.version);
    let mut items: Vec<Arc<Value>> = Vec::new();
    let mut last_key = None;
    let mut remaining = 0usize;
    for obj in all.iter() {
        let key = super::store::obj_key(obj);
        if let Some(sa) = &start_after
            && key <= *sa
        {
            continue;
        }
        let shown = shown(&t.info, &api_version, &t.version, obj);
        if !filters.matches(&shown) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            remaining += 1;
            continue;
        }
        last_key = Some(key);
        items.push(shown);
    }
    drop(st);
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if remaining > 0
        && let Some((ns, name)) = last_key
    {
        let tok = serde_json::to_vec(&ContinueToken { rv, ns, name }).unwrap_or_default();
        meta["continue"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tok));
        meta["remainingItemCount"] = json!(remaining);
    }
    let doc = match shape {
        Shape::Table => {
            let owned: Vec<Value> = items.iter().map(|i| (**i).clone()).collect();
            table::table(
                &t.info,
                &t.version,
                &owned,
                meta,
                include_of(&ctx.q),
                Utc::now(),
            )
        }
        Shape::Metadata => {
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "items": items.iter().map(|i| table::partial_metadata(i)).collect::<Vec<_>>()})
        }
        Shape::Full => {
            // Large lists are written straight from the stored objects: no per-item copy and
            // no intermediate document (the 10,000-object list budget is 200 ms).
            let mut buf = Vec::with_capacity(items.len() * 512 + 256);
            let head =
                json!({"kind": t.info.list_kind, "apiVersion": api_version, "metadata": meta});
            let head = head.to_string();
            buf.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
            buf.extend_from_slice(b",\"items\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                serde_json::to_writer(&mut buf, &**item)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            buf.extend_from_slice(b"]}");
            return Ok(buf);
        }
    };
    Ok(doc.to_string().into_bytes())
}

/// The object as the URL's version shows it, without copying when nothing changes.
fn shown(info: &ResourceInfo, api_version: &str, version: &str, obj: &Arc<Value>) -> Arc<Value> {
    if info.storage == info.gr()
        && obj["apiVersion"].as_str() == Some(api_version)
        && obj["kind"].as_str() == Some(info.kind.as_str())
    {
        obj.clone()
    } else {
        Arc::new(present(info, version, obj))
    }
}

fn delete_collection(ctx: &Ctx) -> Response<Body> {
    let t = &ctx.target;
    let res = (|| {
        let filters = Filters::parse(ctx)?;
        let opts = write_opts(ctx)?;
        let body: Value = if ctx.body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&ctx.body).unwrap_or_else(|_| json!({}))
        };
        let d = DeleteOpts::from_body(
            &body,
            ctx.q.get("propagationPolicy").map(String::from),
            opts.dry_run,
        );
        let now = Utc::now();
        let mut st = ctx.app.lock();
        let objs = st.store.list(&t.info.storage, filters.ns.as_deref());
        let mut deleted = Vec::new();
        for o in objs {
            let shown = present(&t.info, &t.version, &o);
            if !filters.matches(&shown) {
                continue;
            }
            let mut one = t.clone();
            one.ns = o["metadata"]["namespace"].as_str().map(String::from);
            one.name = o["metadata"]["name"].as_str().map(String::from);
            let out = ops::delete(&mut st, &one, &d, now)?;
            deleted.push(present(&t.info, &t.version, &out.obj));
        }
        let rv = st.store.current_rv();
        drop(st);
        ctx.app.notify();
        Ok::<_, ApiError>(
            json!({"kind": t.info.list_kind, "apiVersion": t.info.api_version(&t.version),
            "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
        )
    })();
    match res {
        Ok(v) => json_response(200, &v),
        Err(e) => error_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeemu::registry::Registry;

    #[test]
    fn query_parsing_tolerates_kube_rs_shapes() {
        let q = Query::parse(Some("&limit=500&&fieldSelector=metadata.name%3Dx&watch=1"));
        assert_eq!(q.get("limit"), Some("500"));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=x"));
        assert!(q.flag("watch"));
        assert!(Query::parse(Some("")).get("x").is_none());
    }

    #[test]
    fn path_resolution() {
        let reg = Registry::new();
        let t = resolve(&reg, "", "v1", &["namespaces", "d", "secrets", "s1"]).unwrap();
        assert_eq!(t.info.plural, "secrets");
        assert_eq!(t.ns.as_deref(), Some("d"));
        let n = resolve(&reg, "", "v1", &["namespaces", "d"]).unwrap();
        assert_eq!(n.info.plural, "namespaces");
        assert_eq!(n.name.as_deref(), Some("d"));
        let f = resolve(&reg, "", "v1", &["namespaces", "d", "finalize"]).unwrap();
        assert_eq!(f.sub.as_deref(), Some("finalize"));
        let all = resolve(&reg, "", "v1", &["secrets"]).unwrap();
        assert!(all.ns.is_none() && all.name.is_none());
        assert!(resolve(&reg, "", "v1", &["secrets", "x"]).is_none());
        assert!(
            resolve(
                &reg,
                "",
                "v1",
                &["namespaces", "d", "secrets", "s", "status"]
            )
            .is_none()
        );
    }
}
