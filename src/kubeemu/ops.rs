//! The write pipeline (spec §5, §6): create, update, patch, delete, with identity and metadata
//! rules, status isolation, generation, finalizers, managedFields, validation and no-op
//! detection. Operates on `State` under the server's lock; no IO.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::apply::{self, Scope, Writer};
use super::crd;
use super::events;
use super::gc;
use super::patch::{self, PatchError};
use super::registry::{Registry, ResourceInfo};
use super::status::{ApiError, FieldError, FieldErrorKind, Subject};
use super::store::{GroupResource, Store, parse_rv};

/// Everything the server holds, behind one lock.
#[derive(Debug)]
pub struct State {
    pub registry: Registry,
    pub store: Store,
    /// Bumped on every CRD change; kubectl caches OpenAPI by it.
    pub openapi_hash: u64,
    /// Objects marked for deletion that still wait for finalizers (the GC walks only these).
    pub terminating: Vec<(GroupResource, String, String)>,
    /// `Store::removals` when ownerReference GC last ran.
    pub gc_removals_seen: u64,
    /// When each terminating namespace was marked; its content is deleted only after
    /// `namespace_delay`, because the real namespace controller is asynchronous and clients
    /// (`kubectl delete -k`) rely on namespaced objects outliving the namespace DELETE briefly.
    pub ns_marked: std::collections::HashMap<String, std::time::Instant>,
    pub namespace_delay: std::time::Duration,
}

impl State {
    pub fn new(history_limit: usize) -> Self {
        State {
            registry: Registry::new(),
            store: Store::new(history_limit),
            openapi_hash: 1,
            terminating: Vec::new(),
            gc_removals_seen: 0,
            ns_marked: std::collections::HashMap::new(),
            namespace_delay: std::time::Duration::ZERO,
        }
    }
}

/// A request's target: resource, URL version, namespace, name and subresource.
#[derive(Debug, Clone)]
pub struct Target {
    pub info: Arc<ResourceInfo>,
    pub version: String,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
    fn ns_key(&self) -> &str {
        if self.info.namespaced {
            self.ns.as_deref().unwrap_or_default()
        } else {
            ""
        }
    }
    pub fn not_found(&self) -> ApiError {
        ApiError::NotFound(subject_plural(&self.info, self.name()))
    }
    fn invalid(&self, name: &str, errs: Vec<FieldError>) -> ApiError {
        ApiError::Invalid(
            Subject {
                group: self.info.group.clone(),
                kind: self.info.kind.clone(),
                name: name.to_string(),
            },
            errs,
        )
    }
}

pub fn subject_plural(info: &ResourceInfo, name: &str) -> Subject {
    Subject {
        group: info.group.clone(),
        kind: info.plural.clone(),
        name: name.to_string(),
    }
}

/// `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

/// Per-request write options.
#[derive(Debug, Clone)]
pub struct WriteOpts {
    pub manager: String,
    /// Whether `fieldManager` was in the query (apply requires it).
    pub manager_explicit: bool,
    pub dry_run: bool,
    pub validation: FieldValidation,
    pub force: bool,
}

/// What a write did.
#[derive(Debug)]
pub struct Outcome {
    pub obj: Arc<Value>,
    pub created: bool,
    pub warnings: Vec<String>,
}

pub fn now_str(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Converts a stored object into what the URL's version shows.
pub fn present(info: &ResourceInfo, version: &str, obj: &Value) -> Value {
    if info.storage != info.gr() && info.group == "events.k8s.io" {
        return events::from_core(obj);
    }
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), json!(info.api_version(version)));
        m.insert("kind".into(), json!(info.kind));
    }
    o
}

/// Converts an incoming object (URL view) into the stored shape.
fn to_storage(info: &ResourceInfo, obj: Value) -> Value {
    if info.storage != info.gr() && info.group == "events.k8s.io" {
        return events::to_core(&obj);
    }
    let mut o = obj;
    if let Some(m) = o.as_object_mut() {
        m.insert(
            "apiVersion".into(),
            json!(info.api_version(&info.storage_version)),
        );
        m.insert("kind".into(), json!(info.kind));
    }
    o
}

/// `metadata` as a map, created if missing. Callers have checked that `obj` is an object.
fn md(obj: &mut Value) -> &mut Map<String, Value> {
    let slot = &mut obj["metadata"];
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("metadata was set to an object just above"),
    }
}

const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

/// Name and label/annotation checks (a subset of `ValidateObjectMeta`).
fn validate_meta(info: &ResourceInfo, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let is_ns = info.group.is_empty() && info.plural == "namespaces";
    // Events and a few kinds allow any path-segment name; only enforce DNS rules generally.
    let ok = if is_ns {
        is_label(name)
    } else if info.plural == "events" {
        !name.is_empty() && !name.contains('/')
    } else {
        is_subdomain(name)
    };
    if !ok {
        errs.push(FieldError::new(
            "metadata.name",
            FieldErrorKind::Invalid {
                value: json!(name),
                detail: if is_ns {
                    DNS1123_LABEL
                } else {
                    DNS1123_SUBDOMAIN
                }
                .to_string(),
            },
        ));
    }
    if let Some(labels) = obj["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            let val = v.as_str().unwrap_or_default();
            let valid = val.len() <= 63
                && val
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && (val.is_empty()
                    || (val.as_bytes()[0].is_ascii_alphanumeric()
                        && val.as_bytes()[val.len() - 1].is_ascii_alphanumeric()));
            if !v.is_string() || !valid {
                errs.push(FieldError::new(
                    "metadata.labels",
                    FieldErrorKind::Invalid {
                        value: v.clone(),
                        detail: "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
                    },
                ));
            }
            if let Some(detail) = qualified_name_error(k) {
                errs.push(FieldError::new(
                    "metadata.labels",
                    FieldErrorKind::Invalid {
                        value: json!(k),
                        detail,
                    },
                ));
            }
        }
    }
    if let Some(ann) = obj["metadata"]["annotations"].as_object() {
        for k in ann.keys() {
            if let Some(detail) = qualified_name_error(&k.to_lowercase()) {
                errs.push(FieldError::new(
                    "metadata.annotations",
                    FieldErrorKind::Invalid {
                        value: json!(k),
                        detail,
                    },
                ));
            }
        }
    }
    if let Some(ann) = obj["metadata"]["annotations"].as_object() {
        let size: usize = ann
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if size > 256 * 1024 {
            errs.push(FieldError::new(
                "metadata.annotations",
                FieldErrorKind::TooLong { max: 262144 },
            ));
        }
    }
    errs
}

/// `validation.IsQualifiedName`: `[prefix/]name`, prefix a DNS subdomain, name at most 63
/// characters of `[A-Za-z0-9_.-]` starting and ending alphanumeric. None when valid.
fn qualified_name_error(key: &str) -> Option<String> {
    const NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("prefix part must be non-empty".into());
        }
        if !is_subdomain(p) {
            return Some(format!("prefix part {DNS1123_SUBDOMAIN}"));
        }
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Some("name part must be no more than 63 characters".into());
    }
    let b = name.as_bytes();
    let ok = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    (!ok).then(|| NAME_MSG.to_string())
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn scope_of(t: &Target) -> Scope {
    if t.sub.as_deref() == Some("status") {
        Scope::Status
    } else if t.info.status_subresource {
        Scope::Main
    } else {
        Scope::All
    }
}

fn writer<'a>(
    t: &'a Target,
    opts: &'a WriteOpts,
    now: &'a str,
    api_version: &'a str,
) -> Writer<'a> {
    Writer {
        manager: &opts.manager,
        api_version,
        subresource: t.sub.as_deref().filter(|s| *s == "status"),
        now,
        schema: t.info.schemas.get(&t.version),
        scope: scope_of(t),
    }
}

/// Unknown-field handling after pruning (spec §6 `fieldValidation`).
fn handle_unknown(
    t: &Target,
    unknown: &[String],
    opts: &WriteOpts,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    if unknown.is_empty() {
        return Ok(());
    }
    match opts.validation {
        FieldValidation::Strict => {
            let list: Vec<String> = unknown
                .iter()
                .map(|u| format!("unknown field {u:?}"))
                .collect();
            Err(ApiError::BadRequest(format!(
                "{kind} in version {v:?} cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", "),
                kind = t.info.kind,
                v = t.version
            )))
        }
        FieldValidation::Warn => {
            warnings.extend(unknown.iter().map(|u| format!("unknown field {u:?}")));
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

/// Typed decoding of built-ins: bad types are a 400, unknown fields follow `fieldValidation`.
fn check_builtin(
    t: &Target,
    obj: &mut Value,
    opts: &WriteOpts,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let result = if t.info.custom {
        // The schema covers the rest; metadata is always ObjectMeta.
        super::builtin::check_metadata(obj)
    } else {
        super::builtin::check(&t.info.storage.group, &t.info.kind, obj)
    };
    match result {
        Ok(unknown) => handle_unknown(t, &unknown, opts, warnings),
        Err(e) => Err(ApiError::BadRequest(format!(
            "{kind} in version {v:?} cannot be handled as a {kind}: {e}",
            kind = t.info.kind,
            v = t.version
        ))),
    }
}

/// Kind-specific normalisation on every write (create and update).
fn normalize_kind(info: &ResourceInfo, obj: &mut Value) {
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "secrets") => {
            // stringData is write-only: merged into data, never stored.
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                use base64::Engine;
                let data = obj
                    .as_object_mut()
                    .map(|m| m.entry("data").or_insert_with(|| json!({})));
                if let Some(Value::Object(d)) = data {
                    for (k, v) in sd {
                        let raw = v.as_str().unwrap_or_default();
                        d.insert(
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(raw)),
                        );
                    }
                }
            }
            if obj["type"].as_str().is_none_or(str::is_empty) {
                obj["type"] = json!("Opaque");
            }
        }
        ("", "namespaces") => {
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let m = md(obj);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        _ => {}
    }
}

/// Create (POST, and apply-creates).
pub fn create(
    st: &mut State,
    t: &Target,
    body: Value,
    opts: &WriteOpts,
    now: DateTime<Utc>,
    from_apply: bool,
) -> Result<Outcome, ApiError> {
    let info = &t.info;
    if !body.is_object() {
        return Err(ApiError::BadRequest(
            "the body of the request was in an unknown format".into(),
        ));
    }
    if !from_apply {
        check_type_meta(t, &body)?;
    }
    check_metadata_shape(t, &body)?;
    let mut obj = to_storage(info, body);
    let mut warnings = Vec::new();
    check_builtin(t, &mut obj, opts, &mut warnings)?;
    {
        let m = md(&mut obj);
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ] {
            m.remove(k);
        }
        if !from_apply {
            m.remove("managedFields");
        }
    }
    // Namespace.
    let ns = if info.namespaced {
        let body_ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let url_ns = t.ns.clone().unwrap_or_default();
        if url_ns.is_empty() {
            return Err(ApiError::BadRequest(
                "the server could not find the requested resource".into(),
            ));
        }
        if !body_ns.is_empty() && body_ns != url_ns {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        md(&mut obj).insert("namespace".into(), json!(url_ns));
        url_ns
    } else {
        md(&mut obj).remove("namespace");
        String::new()
    };
    // Name.
    let mut name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        match obj["metadata"]["generateName"].as_str() {
            Some(g) if !g.is_empty() => name = format!("{g}{}", random_suffix()),
            _ => {
                return Err(t.invalid(
                    "",
                    vec![FieldError::new(
                        "metadata.name",
                        FieldErrorKind::Required("name or generateName is required".into()),
                    )],
                ));
            }
        }
        md(&mut obj).insert("name".into(), json!(name));
    }
    let meta_errs = validate_meta(info, &obj);
    if !meta_errs.is_empty() {
        return Err(t.invalid(&name, meta_errs));
    }
    if info.namespaced {
        let nsgr = GroupResource::new("", "namespaces");
        match st.store.get(&nsgr, "", &ns) {
            None => {
                return Err(ApiError::NotFound(Subject {
                    group: String::new(),
                    kind: "namespaces".into(),
                    name: ns,
                }));
            }
            Some(n) if n["metadata"].get("deletionTimestamp").is_some() => {
                return Err(ApiError::Forbidden(
                    subject_plural(info, &name),
                    format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if st.store.get(&info.storage, &ns, &name).is_some() {
        return Err(ApiError::AlreadyExists(subject_plural(info, &name)));
    }
    {
        let ts = now_str(now);
        let m = md(&mut obj);
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(ts));
        if info.has_generation {
            m.insert("generation".into(), json!(1));
        }
    }
    let is_ns = info.group.is_empty() && info.plural == "namespaces";
    let is_crd = info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions";
    if info.status_subresource && !is_ns && obj.get("status").is_some() && !from_apply {
        // Status is set only through /status (statusStrategy.PrepareForCreate).
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }
    if is_ns {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        obj["status"] = json!({"phase": "Active"});
    }
    normalize_kind(info, &mut obj);
    if is_crd {
        let errs = crd::validate_crd(&obj);
        if !errs.is_empty() {
            return Err(t.invalid(&name, errs));
        }
        if let Some(ri) = crd::resource_info(&obj)
            && let Some(existing) = st.registry.get(&ri.group, &ri.plural)
            && !existing.custom
        {
            return Err(t.invalid(
                &name,
                vec![FieldError::new(
                    "spec.names.plural",
                    FieldErrorKind::Invalid {
                        value: json!(ri.plural),
                        detail: "conflicts with a built-in resource".into(),
                    },
                )],
            ));
        }
        let status = crd::established_status(&obj, &now_str(now), None);
        obj["status"] = status;
    }
    if info.custom {
        let checked = crd::check_custom(info, &t.version, &mut obj, None)
            .map_err(|errs| t.invalid(&name, errs))?;
        handle_unknown(t, &checked.unknown, opts, &mut warnings)?;
    }
    let ts = now_str(now);
    if !from_apply {
        let av = info.api_version(&t.version);
        apply::record_update(None, &mut obj, &writer(t, opts, &ts, &av));
    }
    if opts.dry_run {
        return Ok(Outcome {
            obj: Arc::new(obj),
            created: true,
            warnings,
        });
    }
    let stored = st.store.put(&info.storage, obj);
    if is_crd {
        register_crd(st, &stored);
    }
    Ok(Outcome {
        obj: stored,
        created: true,
        warnings,
    })
}

pub fn register_crd(st: &mut State, crd_obj: &Value) {
    if let Some(ri) = crd::resource_info(crd_obj) {
        // The apiserver defaults objects as it reads them from etcd, so defaults added by a
        // schema change show up on existing objects without a write (no RV bump, no event).
        if let Some(schema) = ri.schemas.get(&ri.storage_version) {
            st.store.map_in_place(&ri.storage, |obj| {
                let mut v = obj.clone();
                super::schema::apply_defaults(&mut v, schema);
                (v != *obj).then_some(v)
            });
        }
        st.registry.insert(ri);
        st.openapi_hash = st.openapi_hash.wrapping_add(1);
    }
}

/// `metadata` must decode as ObjectMeta before anything else looks at it.
pub fn check_metadata_shape(t: &Target, obj: &Value) -> Result<(), ApiError> {
    match obj.get("metadata") {
        None | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{kind} in version {v:?} cannot be handled as a {kind}: json: cannot unmarshal {} into Go struct field {kind}.metadata of type v1.ObjectMeta",
            match other {
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Bool(_) => "bool",
                _ => "null",
            },
            kind = t.info.kind,
            v = t.version
        ))),
    }
}

fn check_type_meta(t: &Target, body: &Value) -> Result<(), ApiError> {
    let want = t.info.api_version(&t.version);
    if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
        && av != want
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({av}) does not match the expected API version ({want})"
        )));
    }
    if let Some(k) = body.get("kind").and_then(Value::as_str)
        && k != t.info.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            t.info.kind
        )));
    }
    Ok(())
}

/// Replace (PUT).
pub fn update(
    st: &mut State,
    t: &Target,
    body: Value,
    opts: &WriteOpts,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let info = &t.info;
    if !body.is_object() {
        return Err(ApiError::BadRequest(
            "the body of the request was in an unknown format".into(),
        ));
    }
    check_type_meta(t, &body)?;
    let body_name = body["metadata"]["name"].as_str().unwrap_or_default();
    if body_name != t.name() {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            t.name()
        )));
    }
    let old = st
        .store
        .get(&info.storage, t.ns_key(), t.name())
        .ok_or_else(|| t.not_found())?;
    match body["metadata"]["resourceVersion"].as_str() {
        None | Some("") if info.custom => {
            return Err(t.invalid(
                t.name(),
                vec![FieldError::new(
                    "metadata.resourceVersion",
                    FieldErrorKind::Invalid {
                        value: json!("0x0"),
                        detail: "must be specified for an update".into(),
                    },
                )],
            ));
        }
        Some(rv) if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() => {
            return Err(ApiError::Conflict(subject_plural(info, t.name())));
        }
        _ => {}
    }
    let new = to_storage(info, body);
    finish_update(st, t, old, new, opts, now, false)
}

/// Patch (all four types).
pub fn patch(
    st: &mut State,
    t: &Target,
    content_type: &str,
    body: &[u8],
    opts: &WriteOpts,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let info = &t.info;
    let old = st.store.get(&info.storage, t.ns_key(), t.name());
    if content_type.starts_with("application/apply-patch") {
        return server_side_apply(st, t, old, body, opts, now);
    }
    let known = [
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
    ];
    if !known.iter().any(|k| content_type.starts_with(k)) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}",
            if info.custom {
                ""
            } else {
                ", application/strategic-merge-patch+json"
            }
        )));
    }
    let old = old.ok_or_else(|| t.not_found())?;
    let patch_doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
    let mut target = present(info, &t.version, &old);
    let res = if content_type.starts_with("application/merge-patch+json") {
        if !patch_doc.is_object() {
            return Err(ApiError::BadRequest(
                "json: cannot unmarshal into Go value of type map[string]interface {}".into(),
            ));
        }
        patch::merge_patch(&mut target, &patch_doc);
        Ok(())
    } else if content_type.starts_with("application/json-patch+json") {
        patch::json_patch(&mut target, &patch_doc)
    } else if content_type.starts_with("application/strategic-merge-patch+json") {
        if info.custom {
            return Err(ApiError::UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
            ));
        }
        patch::strategic_merge_patch(&mut target, &patch_doc)
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}",
            if info.custom {
                ""
            } else {
                ", application/strategic-merge-patch+json"
            }
        )));
    };
    match res {
        Ok(()) => {}
        Err(PatchError::Malformed(m)) => return Err(ApiError::BadRequest(m)),
        Err(PatchError::Failed(m)) => return Err(ApiError::PatchFailed(m)),
    }
    // A resourceVersion in the patched object is a precondition.
    if let Some(rv) = target["metadata"]["resourceVersion"].as_str()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::Conflict(subject_plural(info, t.name())));
    }
    let new = to_storage(info, target);
    finish_update(st, t, old, new, opts, now, false)
}

fn server_side_apply(
    st: &mut State,
    t: &Target,
    old: Option<Arc<Value>>,
    body: &[u8],
    opts: &WriteOpts,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let info = &t.info;
    let applied: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?,
    };
    if !applied.is_object() {
        return Err(ApiError::BadRequest(
            "the body of the request was in an unknown format".into(),
        ));
    }
    if !opts.manager_explicit {
        return Err(ApiError::Invalid(
            Subject {
                group: "meta.k8s.io".into(),
                kind: "PatchOptions".into(),
                name: String::new(),
            },
            vec![FieldError::new(
                "fieldManager",
                FieldErrorKind::Required("is required for apply patch".into()),
            )],
        ));
    }
    if applied["metadata"].get("managedFields").is_some() {
        return Err(t.invalid(
            t.name(),
            vec![FieldError::new(
                "metadata.managedFields",
                FieldErrorKind::Forbidden("cannot be set on an apply patch (use an update)".into()),
            )],
        ));
    }
    check_type_meta(t, &applied)?;
    if let Some(n) = applied["metadata"]["name"].as_str()
        && !n.is_empty()
        && n != t.name()
    {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({n}) does not match the name on the URL ({})",
            t.name()
        )));
    }
    let ts = now_str(now);
    let av = info.api_version(&t.version);
    let w = writer(t, opts, &ts, &av);
    let applied_storage = if info.storage != info.gr() {
        events::to_core(&applied)
    } else {
        applied.clone()
    };
    match old {
        None => {
            if t.sub.is_some() {
                return Err(t.not_found());
            }
            let mut merged = apply::apply(None, &applied_storage, opts.force, &w)
                .map_err(|c| conflict(t, &c))?;
            let m = md(&mut merged);
            m.insert("name".into(), json!(t.name()));
            if let Some(ns) = &t.ns {
                m.insert("namespace".into(), json!(ns));
            }
            merged["apiVersion"] = json!(info.api_version(&t.version));
            merged["kind"] = json!(info.kind);
            create(st, t, merged, opts, now, true)
        }
        Some(old) => {
            let live = present(info, &t.version, &old);
            let live = if info.storage != info.gr() {
                events::to_core(&live)
            } else {
                live
            };
            let mut merged = apply::apply(Some(&live), &applied_storage, opts.force, &w)
                .map_err(|c| conflict(t, &c))?;
            // kubectl keeps last-applied in sync when it applies server-side over CSA objects.
            if opts.manager == "kubectl"
                && merged["metadata"]["annotations"]
                    .get("kubectl.kubernetes.io/last-applied-configuration")
                    .is_some()
            {
                let mut la = applied.clone();
                if let Some(a) = la["metadata"]["annotations"].as_object_mut() {
                    a.remove("kubectl.kubernetes.io/last-applied-configuration");
                }
                merged["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
                    json!(la.to_string());
            }
            let new = to_storage(info, merged);
            finish_update(st, t, old, new, opts, now, true)
        }
    }
}

fn conflict(t: &Target, c: &[apply::Conflict]) -> ApiError {
    let av = t.info.api_version(&t.version);
    ApiError::ApplyConflict {
        subject: subject_plural(&t.info, t.name()),
        message: apply::conflict_message(c, &av),
        causes: c
            .iter()
            .map(|(m, f)| (format!("conflict with {m:?} using {av}"), f.clone()))
            .collect(),
    }
}

/// Compares two objects ignoring managedFields timestamps (no-op detection).
fn same_ignoring_times(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(Value::Array(mf)) = v
            .get_mut("metadata")
            .and_then(|m| m.get_mut("managedFields"))
        {
            for e in mf.iter_mut() {
                if let Some(o) = e.as_object_mut() {
                    o.remove("time");
                }
            }
        }
        v
    };
    strip(a) == strip(b)
}

/// Outside metadata (and status when it has its own subresource): what bumps generation.
fn spec_part(info: &ResourceInfo, v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if info.status_subresource {
            m.remove("status");
        }
    }
    v
}

/// The shared tail of update, patch and apply.
fn finish_update(
    st: &mut State,
    t: &Target,
    old: Arc<Value>,
    mut new: Value,
    opts: &WriteOpts,
    now: DateTime<Utc>,
    is_apply: bool,
) -> Result<Outcome, ApiError> {
    let info = &t.info;
    let mut warnings = Vec::new();
    let is_crd = info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions";
    let is_ns = info.group.is_empty() && info.plural == "namespaces";
    if !new.is_object() {
        return Err(ApiError::BadRequest(
            "the body of the request was in an unknown format".into(),
        ));
    }
    check_metadata_shape(t, &new)?;
    // Status isolation.
    if t.sub.as_deref() == Some("status") {
        let mut merged = (*old).clone();
        match new.get("status") {
            Some(s) => merged["status"] = s.clone(),
            None => {
                if let Some(m) = merged.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        merged["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
        new = merged;
    } else if info.status_subresource {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    // Immutable metadata comes from the stored object.
    let incoming_mf = new["metadata"].get("managedFields").cloned();
    {
        let oldm = old["metadata"].clone();
        let m = md(&mut new);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "name",
            "namespace",
            "resourceVersion",
            "selfLink",
        ] {
            match oldm.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        // Client-written managedFields: absent or [] keeps ours; [{}] clears; else replaces.
        match &incoming_mf {
            None | Some(Value::Null) => {
                restore(m, "managedFields", oldm.get("managedFields"));
            }
            Some(Value::Array(a)) if a.is_empty() => {
                restore(m, "managedFields", oldm.get("managedFields"));
            }
            Some(Value::Array(a)) if a.len() == 1 && a[0] == json!({}) => {
                m.remove("managedFields");
            }
            Some(v) if !is_apply => {
                if !apply::valid_entries(v) {
                    return Err(t.invalid(
                        t.name(),
                        vec![FieldError::new(
                            "metadata.managedFields",
                            FieldErrorKind::Invalid {
                                value: v.clone(),
                                detail: "invalid managedFields".into(),
                            },
                        )],
                    ));
                }
            }
            Some(_) => {}
        }
    }
    let client_set_mf = !is_apply
        && matches!(&incoming_mf, Some(Value::Array(a)) if !a.is_empty() && old["metadata"].get("managedFields") != incoming_mf.as_ref());
    // No new finalizers on an object being deleted.
    if old["metadata"].get("deletionTimestamp").is_some() {
        let old_f: Vec<&Value> = old["metadata"]["finalizers"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let added = new["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| !old_f.contains(&f)));
        if added {
            return Err(t.invalid(
                t.name(),
                vec![FieldError::new(
                    "metadata.finalizers",
                    FieldErrorKind::Forbidden(
                        "no new finalizers can be added if the object is being deleted".into(),
                    ),
                )],
            ));
        }
    }
    check_builtin(t, &mut new, opts, &mut warnings)?;
    normalize_kind(info, &mut new);
    let immutable_errs = immutable_fields(info, &old, &new);
    if !immutable_errs.is_empty() {
        return Err(t.invalid(t.name(), immutable_errs));
    }
    if is_ns {
        // spec.finalizers and the phase are owned by the (emulated) namespace controller.
        if t.sub.is_none() {
            new["spec"] = old["spec"].clone();
            new["status"] = old["status"].clone();
        }
    }
    if is_crd && t.sub.is_none() {
        let errs = crd::validate_crd(&new);
        if !errs.is_empty() {
            return Err(t.invalid(t.name(), errs));
        }
        let status = crd::established_status(&new, &now_str(now), old.get("status"));
        new["status"] = status;
    }
    let meta_errs = validate_meta(info, &new);
    if !meta_errs.is_empty() {
        return Err(t.invalid(t.name(), meta_errs));
    }
    if info.custom {
        let checked = crd::check_custom(info, &t.version, &mut new, Some(&old))
            .map_err(|errs| t.invalid(t.name(), errs))?;
        handle_unknown(t, &checked.unknown, opts, &mut warnings)?;
    }
    // Generation: bumped when anything outside metadata (and status) changed.
    if info.has_generation && t.sub.is_none() && spec_part(info, &old) != spec_part(info, &new) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        md(&mut new).insert("generation".into(), json!(g));
    }
    let ts = now_str(now);
    if !is_apply && !client_set_mf {
        let av = info.api_version(&t.version);
        apply::record_update(Some(&old), &mut new, &writer(t, opts, &ts, &av));
    }
    if same_ignoring_times(&old, &new) {
        return Ok(Outcome {
            obj: old,
            created: false,
            warnings,
        });
    }
    if opts.dry_run {
        return Ok(Outcome {
            obj: Arc::new(new),
            created: false,
            warnings,
        });
    }
    let finalizers_empty = new["metadata"]["finalizers"]
        .as_array()
        .is_none_or(|a| a.is_empty());
    if new["metadata"].get("deletionTimestamp").is_some() && finalizers_empty && !is_ns {
        // The last finalizer went: the object is removed now.
        let removed = st
            .store
            .remove(&info.storage, t.ns_key(), t.name())
            .ok_or_else(|| t.not_found())?;
        let mut final_obj = new;
        final_obj["metadata"]["resourceVersion"] = removed["metadata"]["resourceVersion"].clone();
        after_removal(st, info, &final_obj);
        gc::settle(st, now);
        return Ok(Outcome {
            obj: Arc::new(final_obj),
            created: false,
            warnings,
        });
    }
    let stored = st.store.put(&info.storage, new);
    if is_crd {
        register_crd(st, &stored);
    }
    gc::settle(st, now);
    Ok(Outcome {
        obj: stored,
        created: false,
        warnings,
    })
}

/// Built-in immutability rules that clients run into: Secret `type`, and the content of
/// Secrets/ConfigMaps marked `immutable: true`.
fn immutable_fields(info: &ResourceInfo, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !info.group.is_empty() || !matches!(info.plural.as_str(), "secrets" | "configmaps") {
        return errs;
    }
    if info.plural == "secrets" && old["type"] != new["type"] {
        errs.push(FieldError::new(
            "type",
            FieldErrorKind::Invalid {
                value: new["type"].clone(),
                detail: "field is immutable".into(),
            },
        ));
    }
    if old["immutable"] == json!(true) {
        if new["immutable"] != json!(true) {
            errs.push(FieldError::new(
                "immutable",
                FieldErrorKind::Forbidden("field is immutable when `immutable` is set".into()),
            ));
        }
        for f in ["data", "binaryData"] {
            if old.get(f) != new.get(f) {
                errs.push(FieldError::new(
                    f,
                    FieldErrorKind::Forbidden("field is immutable when `immutable` is set".into()),
                ));
            }
        }
    }
    errs
}

fn restore(m: &mut Map<String, Value>, key: &str, v: Option<&Value>) {
    match v {
        Some(v) => {
            m.insert(key.into(), v.clone());
        }
        None => {
            m.remove(key);
        }
    }
}

/// Bookkeeping when an object leaves the store (CRDs unregister their resource).
pub fn after_removal(st: &mut State, info: &ResourceInfo, obj: &Value) {
    if info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions" {
        let g = obj["spec"]["group"].as_str().unwrap_or_default();
        let p = obj["spec"]["names"]["plural"].as_str().unwrap_or_default();
        st.registry.remove(g, p);
        st.openapi_hash = st.openapi_hash.wrapping_add(1);
    }
}

/// `DeleteOptions` that matter here.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOpts {
    pub fn from_body(body: &Value, query_propagation: Option<String>, dry_run: bool) -> Self {
        DeleteOpts {
            propagation: body["propagationPolicy"]
                .as_str()
                .map(String::from)
                .or(query_propagation),
            precondition_uid: body["preconditions"]["uid"].as_str().map(String::from),
            precondition_rv: body["preconditions"]["resourceVersion"]
                .as_str()
                .map(String::from),
            dry_run: dry_run
                || body["dryRun"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "All")),
        }
    }
}

/// Delete one object. Returns the object as the response shows it (with deletionTimestamp
/// when finalizers hold it, or the final state with the deletion RV).
pub fn delete(
    st: &mut State,
    t: &Target,
    opts: &DeleteOpts,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let info = &t.info;
    let old = st
        .store
        .get(&info.storage, t.ns_key(), t.name())
        .ok_or_else(|| t.not_found())?;
    if let Some(uid) = &opts.precondition_uid
        && Some(uid.as_str()) != old["metadata"]["uid"].as_str()
    {
        return Err(ApiError::Precondition(
            subject_plural(info, t.name()),
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old["metadata"]["uid"].as_str().unwrap_or_default()
            ),
        ));
    }
    if let Some(rv) = &opts.precondition_rv
        && Some(rv.as_str()) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::Precondition(
            subject_plural(info, t.name()),
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                old["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
            ),
        ));
    }
    if info.group.is_empty()
        && info.plural == "namespaces"
        && matches!(t.name(), "default" | "kube-system" | "kube-public")
    {
        // The apiserver's namespace lifecycle admission protects these.
        return Err(ApiError::Forbidden(
            subject_plural(info, t.name()),
            "this namespace may not be deleted".into(),
        ));
    }
    if opts.dry_run {
        return Ok(Outcome {
            obj: old,
            created: false,
            warnings: vec![],
        });
    }
    let obj = delete_object(st, info, old, opts.propagation.as_deref(), now);
    gc::settle(st, now);
    Ok(Outcome {
        obj,
        created: false,
        warnings: vec![],
    })
}

/// Marks an object deleting or removes it; shared by user deletes, GC and namespace cleanup.
pub fn delete_object(
    st: &mut State,
    info: &ResourceInfo,
    old: Arc<Value>,
    propagation: Option<&str>,
    now: DateTime<Utc>,
) -> Arc<Value> {
    let (ns, name) = super::store::obj_key(&old);
    if old["metadata"].get("deletionTimestamp").is_some() {
        return old;
    }
    let mut obj = (*old).clone();
    let mut finalizers: Vec<Value> = obj["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let extra = match propagation {
        Some("Foreground") => Some("foregroundDeletion"),
        Some("Orphan") => Some("orphan"),
        _ => None,
    };
    if let Some(f) = extra
        && !finalizers.contains(&json!(f))
    {
        finalizers.push(json!(f));
    }
    let is_ns = info.group.is_empty() && info.plural == "namespaces";
    let is_crd = info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions";
    if is_crd {
        finalizers.push(json!("customresourcecleanup.apiextensions.k8s.io"));
        if let Some(conds) = obj["status"]["conditions"].as_array_mut() {
            conds.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
                "message": "CustomResource deletion is in progress", "lastTransitionTime": now_str(now)}));
        }
    }
    if finalizers.is_empty() && !is_ns {
        let removed = st.store.remove(&info.storage, &ns, &name);
        if let Some(r) = &removed {
            after_removal(st, info, r);
        }
        return removed.unwrap_or(old);
    }
    {
        let m = md(&mut obj);
        m.insert("deletionTimestamp".into(), json!(now_str(now)));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        if !finalizers.is_empty() {
            m.insert("finalizers".into(), Value::Array(finalizers));
        }
        if let Some(g) = m.get("generation").and_then(Value::as_i64)
            && g > 0
        {
            m.insert("generation".into(), json!(g + 1));
        }
    }
    if is_ns {
        obj["status"]["phase"] = json!("Terminating");
        st.ns_marked.insert(name.clone(), std::time::Instant::now());
    }
    st.terminating.push((info.storage.clone(), ns, name));
    st.store.put(&info.storage, obj)
}

/// Current RV parse helper for handlers.
pub fn rv_of(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(parse_rv)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        assert!(qualified_name_error("app").is_none());
        assert!(qualified_name_error("app.kubernetes.io/name").is_none());
        assert!(qualified_name_error("t2t.dev/requested-at").is_none());
        assert!(qualified_name_error("bad key").is_some());
        assert!(qualified_name_error("-x").is_some());
        assert!(qualified_name_error("/x").is_some());
        assert!(qualified_name_error("Upper.Case/x").is_some());
        assert!(qualified_name_error(&"a".repeat(64)).is_some());
    }

    #[test]
    fn label_values_and_names() {
        let info = Registry::new().lookup("", "v1", "configmaps").unwrap();
        let ok = json!({"metadata": {"name": "a.b-c", "labels": {"k": "v_1.2-3"}}});
        assert!(validate_meta(&info, &ok).is_empty());
        let bad = json!({"metadata": {"name": "A", "labels": {"k": "-v", "bad key": "x"}}});
        let errs = validate_meta(&info, &bad);
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
