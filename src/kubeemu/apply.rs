//! Server-side apply and managedFields (spec §10), a simplified structured-merge-diff.
//!
//! A field set is a set of paths; each path is a list of fieldsV1 segments (`f:spec`,
//! `k:{"name":"a"}`, `v:"x"`, `.`). Converting to and from the nested `fieldsV1` JSON is lossless.
//! Pure functions: the caller supplies the clock (`now`) and the schema.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::patch::merge_key;

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// How a list merges (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq)]
enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Schema lookups that work with or without a CRD schema (built-ins use name-based tables).
#[derive(Clone, Copy)]
struct Sch<'a>(Option<&'a Value>);

impl<'a> Sch<'a> {
    fn child(self, key: &str) -> Sch<'a> {
        let s = self.0.and_then(|s| {
            s.get("properties")
                .and_then(|p| p.get(key))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        });
        Sch(s)
    }
    fn items(self) -> Sch<'a> {
        Sch(self.0.and_then(|s| s.get("items")))
    }
    fn atomic_map(self) -> bool {
        self.0
            .and_then(|s| s.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }
    fn list_type(self, field: &str) -> ListType {
        if let Some(lt) = self
            .0
            .and_then(|s| s.get("x-kubernetes-list-type"))
            .and_then(Value::as_str)
        {
            return match lt {
                "set" => ListType::Set,
                "map" => ListType::Map(
                    self.0
                        .and_then(|s| s.get("x-kubernetes-list-map-keys"))
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|k| k.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => ListType::Atomic,
            };
        }
        match field {
            "finalizers" => ListType::Set,
            _ => match merge_key(field) {
                Some(k) => ListType::Map(vec![k.to_string()]),
                None => ListType::Atomic,
            },
        }
    }
}

fn item_key(item: &Value, keys: &[String]) -> Value {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}

fn key_segment(item: &Value, keys: &[String]) -> String {
    format!("k:{}", item_key(item, keys))
}

/// Leaf paths of an object, as the field manager records them. At the root only the tracked
/// metadata fields count; `status` is included only when `with_status`, and only it when
/// `only_status` (writes through `/status`).
pub fn fields_of(obj: &Value, schema: Option<&Value>, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    let sch = Sch(schema);
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => continue,
            "metadata" => {
                if scope == Scope::Status {
                    continue;
                }
                for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(mv) = v.get(mk) {
                        let p = vec!["f:metadata".to_string(), format!("f:{mk}")];
                        walk(mv, Sch(None), mk, p, &mut out);
                    }
                }
            }
            "status" if scope == Scope::Main => continue,
            _ if scope == Scope::Status && k != "status" => continue,
            _ => walk(v, sch.child(k), k, vec![format!("f:{k}")], &mut out),
        }
    }
    out
}

/// Which part of the object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Main resource of a kind with a status subresource: status is excluded.
    Main,
    /// Main resource of a kind without status subresource: everything.
    All,
    /// The `/status` subresource: only status.
    Status,
}

fn walk(v: &Value, sch: Sch, field: &str, path: Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() && !sch.atomic_map() => {
            for (k, cv) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(cv, sch.child(k), k, p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => match sch.list_type(field) {
            ListType::Atomic => {
                out.insert(path);
            }
            ListType::Set => {
                for it in items {
                    let mut p = path.clone();
                    p.push(format!("v:{it}"));
                    out.insert(p);
                }
            }
            ListType::Map(keys) => {
                for it in items {
                    let mut base = path.clone();
                    base.push(key_segment(it, &keys));
                    let mut dot = base.clone();
                    dot.push(".".into());
                    out.insert(dot);
                    if let Some(m) = it.as_object() {
                        for (k, cv) in m {
                            let mut p = base.clone();
                            p.push(format!("f:{k}"));
                            walk(cv, sch.items().child(k), k, p, out);
                        }
                    }
                }
            }
        },
        _ => {
            out.insert(path);
        }
    }
}

/// The value a path points at (`.` is the node itself).
pub fn get_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = if seg == "." {
            cur
        } else if let Some(f) = seg.strip_prefix("f:") {
            cur.get(f)?
        } else if let Some(k) = seg.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).ok()?;
            let km = key.as_object()?;
            cur.as_array()?
                .iter()
                .find(|it| km.iter().all(|(kk, kv)| it.get(kk) == Some(kv)))?
        } else if let Some(j) = seg.strip_prefix("v:") {
            let want: Value = serde_json::from_str(j).ok()?;
            cur.as_array()?.iter().find(|it| **it == want)?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// Removes what a path points at; a `.` path removes the list item as a whole.
fn remove_at(v: &mut Value, path: &[String]) {
    let path: Vec<&String> = path.iter().filter(|s| *s != ".").collect();
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for seg in parents {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = seg.strip_prefix("k:") {
            let key: Option<Value> = serde_json::from_str(k).ok();
            match (key, cur.as_array_mut()) {
                (Some(Value::Object(km)), Some(arr)) => arr
                    .iter_mut()
                    .find(|it| km.iter().all(|(kk, kv)| it.get(kk) == Some(kv))),
                _ => None,
            }
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Ok(Value::Object(km)), Some(arr)) =
            (serde_json::from_str::<Value>(k), cur.as_array_mut())
        {
            arr.retain(|it| !km.iter().all(|(kk, kv)| it.get(kk) == Some(kv)));
        }
    } else if let Some(j) = last.strip_prefix("v:")
        && let (Ok(want), Some(arr)) = (serde_json::from_str::<Value>(j), cur.as_array_mut())
    {
        arr.retain(|it| *it != want);
    }
}

/// `fieldsV1` JSON from a set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            let e = cur
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            match e {
                Value::Object(m) => cur = m,
                _ => break,
            }
        }
    }
    Value::Object(root)
}

/// A set from `fieldsV1` JSON.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, path: &mut Path, out: &mut FieldSet) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, c) in m {
                    path.push(k.clone());
                    rec(c, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

/// One managedFields entry in decoded form.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, sub: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == sub
    }
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or_default().to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    subresource: e["subresource"].as_str().map(String::from),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if arr.is_empty() {
            md.remove("managedFields");
        } else {
            md.insert("managedFields".into(), Value::Array(arr));
        }
    }
}

/// Who is writing, for the managedFields bookkeeping.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    pub now: &'a str,
    pub schema: Option<&'a Value>,
    pub scope: Scope,
}

/// Bookkeeping for Update operations (create, replace, non-apply patch): the writer takes every
/// leaf that changed or appeared; other managers lose those leaves and any leaf that vanished.
/// `new` already carries the managedFields to start from (the old ones, or client-supplied ones).
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer) {
    let null = Value::Null;
    let old_v = old.unwrap_or(&null);
    let new_leaves = fields_of(new, w.schema, w.scope);
    let changed: FieldSet = new_leaves
        .iter()
        .filter(|p| get_at(old_v, p) != get_at(new, p))
        .cloned()
        .collect();
    let mut entries = read_entries(new);
    for e in entries.iter_mut() {
        e.fields.retain(|p| {
            !changed.contains(p) && (get_at(new, p).is_some() || !in_scope(p, w.scope))
        });
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.same_owner(w.manager, "Update", w.subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = w.now.to_string();
                e.api_version = w.api_version.to_string();
            }
            None => entries.push(Entry {
                manager: w.manager.to_string(),
                operation: "Update".into(),
                api_version: w.api_version.to_string(),
                time: w.now.to_string(),
                subresource: w.subresource.map(String::from),
                fields: changed,
            }),
        }
    }
    write_entries(new, &entries);
}

fn in_scope(p: &Path, scope: Scope) -> bool {
    let is_status = p.first().is_some_and(|s| s == "f:status");
    match scope {
        Scope::Status => is_status,
        Scope::Main => !is_status,
        Scope::All => true,
    }
}

/// One SSA conflict: (other manager, dotted field path).
pub type Conflict = (String, String);

/// Dotted path for messages: `.spec.size`, `.spec.items[name="a"].x`.
pub fn dotted(path: &Path) -> String {
    let mut s = String::new();
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let inner: Vec<String> = serde_json::from_str::<Value>(k)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .map(|m| m.iter().map(|(a, b)| format!("{a}={b}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", inner.join(",")));
        } else if let Some(v) = seg.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Merges an applied configuration into the live object with the schema's list semantics.
fn merge_applied(live: &mut Value, applied: &Value, sch: Sch, field: &str) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !sch.atomic_map() => {
            for (k, av) in a {
                match l.get_mut(k) {
                    Some(lv) if !av.is_null() => merge_applied(lv, av, sch.child(k), k),
                    _ => {
                        l.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => match sch.list_type(field) {
            ListType::Atomic => *l = a.clone(),
            ListType::Set => {
                for it in a {
                    if !l.contains(it) {
                        l.push(it.clone());
                    }
                }
            }
            ListType::Map(keys) => {
                for it in a {
                    let k = item_key(it, &keys);
                    match l.iter_mut().find(|x| item_key(x, &keys) == k) {
                        Some(x) => merge_applied(x, it, sch.items(), ""),
                        None => l.push(it.clone()),
                    }
                }
            }
        },
        (l, a) => *l = a.clone(),
    }
}

/// Server-side apply of `applied` onto `live` (None: the object is being created). Returns the
/// merged object with managedFields updated, or the conflicts. `last_applied_ok` implements the
/// apiserver's special case for manager `kubectl` after client-side apply: conflicts on fields
/// whose live value equals the `last-applied-configuration` value are forced.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    w: &Writer,
) -> Result<Value, Vec<Conflict>> {
    let mut obj = live.cloned().unwrap_or_else(|| json!({"metadata": {}}));
    let applied_set = fields_of(applied, w.schema, w.scope);
    let mut entries = read_entries(&obj);
    let mine = |e: &Entry| e.same_owner(w.manager, "Apply", w.subresource);

    // Conflicts: another manager owns a leaf we apply with a different value.
    let last_applied: Option<Value> =
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok());
    let mut conflicts: Vec<(usize, Path)> = Vec::new();
    for p in applied_set
        .iter()
        .filter(|p| p.last().is_none_or(|s| s != "."))
    {
        let differs = get_at(&obj, p) != get_at(applied, p);
        if !differs {
            continue;
        }
        for (i, e) in entries.iter().enumerate() {
            if mine(e) || !e.fields.contains(p) {
                continue;
            }
            let csa_upgrade = w.manager == "kubectl"
                && last_applied
                    .as_ref()
                    .is_some_and(|la| get_at(la, p).is_some() && get_at(la, p) == get_at(&obj, p));
            if !csa_upgrade {
                conflicts.push((i, p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts
            .iter()
            .map(|(i, p)| (entries[*i].manager.clone(), dotted(p)))
            .collect());
    }
    // Forced (or CSA-upgraded) leaves change hands.
    for p in &applied_set {
        let differs = get_at(&obj, p) != get_at(applied, p);
        if differs {
            for e in entries.iter_mut().filter(|e| !mine(e)) {
                e.fields.remove(p);
            }
        }
    }
    // Fields this manager applied before but no longer applies, owned by nobody else, go away.
    let previous: FieldSet = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut removed: Vec<&Path> = previous
        .iter()
        .filter(|p| !applied_set.contains(*p))
        .filter(|p| !entries.iter().any(|e| !mine(e) && e.fields.contains(*p)))
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));

    let mut body = applied.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            md.remove("managedFields");
            md.remove("resourceVersion");
        }
        match w.scope {
            Scope::Status => m.retain(|k, _| k == "status" || k == "metadata"),
            Scope::Main => {
                m.remove("status");
            }
            Scope::All => {}
        }
        if w.scope == Scope::Status {
            // Status applies own no metadata.
            m.remove("metadata");
        }
    }
    merge_applied(&mut obj, &body, Sch(w.schema), "");
    for p in removed {
        remove_at(&mut obj, p);
    }

    let changed = previous != applied_set;
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            if changed {
                e.time = w.now.to_string();
            }
            e.fields = applied_set;
            e.api_version = w.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: w.manager.to_string(),
            operation: "Apply".into(),
            api_version: w.api_version.to_string(),
            time: w.now.to_string(),
            subresource: w.subresource.map(String::from),
            fields: applied_set,
        }),
    }
    // Fields that vanished from the object are no longer owned by anyone.
    for e in entries.iter_mut() {
        e.fields
            .retain(|p| get_at(&obj, p).is_some() || !in_scope(p, w.scope));
    }
    write_entries(&mut obj, &entries);
    Ok(obj)
}

/// Renders SSA conflicts as the apiserver does.
pub fn conflict_message(conflicts: &[Conflict], api_version: &str) -> String {
    if conflicts.len() == 1 {
        let (m, f) = &conflicts[0];
        return format!(
            "Apply failed with 1 conflict: conflict with {m:?} using {api_version}: {f}"
        );
    }
    let mut by_mgr: Vec<(String, Vec<String>)> = Vec::new();
    for (m, f) in conflicts {
        match by_mgr.iter_mut().find(|(x, _)| x == m) {
            Some((_, fs)) => fs.push(f.clone()),
            None => by_mgr.push((m.clone(), vec![f.clone()])),
        }
    }
    let parts: Vec<String> = by_mgr
        .iter()
        .map(|(m, fs)| {
            let lines: Vec<String> = fs.iter().map(|f| format!("- {f}")).collect();
            format!(
                "conflicts with {m:?} using {api_version}:\n{}",
                lines.join("\n")
            )
        })
        .collect();
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        parts.join("\n")
    )
}

/// Validates client-supplied managedFields (kubectl's CSA→SSA upgrade writes them).
pub fn valid_entries(v: &Value) -> bool {
    v.as_array().is_some_and(|a| {
        a.iter().all(|e| {
            e.is_object()
                && (e.as_object().is_some_and(|m| m.is_empty())
                    || (e["manager"].is_string() && e["operation"].is_string()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w<'a>(manager: &'a str, schema: Option<&'a Value>) -> Writer<'a> {
        Writer {
            manager,
            api_version: "example.com/v1",
            subresource: None,
            now: "2026-01-01T00:00:00Z",
            schema,
            scope: Scope::Main,
        }
    }

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"app": "a"}, "finalizers": ["f"]},
            "spec": {"size": 1, "containers": [{"name": "c", "image": "i"}], "tags": ["a"]}});
        let set = fields_of(&obj, None, Scope::Main);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {"v:\"f\"": {}}},
                   "f:spec": {"f:size": {}, "f:tags": {},
                              "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:image": {}}}}})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn update_transfers_ownership() {
        let old = json!({"metadata": {"name": "x"}, "spec": {"a": 1, "b": 2}});
        let mut created = old.clone();
        record_update(None, &mut created, &w("creator", None));
        let mut new = created.clone();
        new["spec"]["a"] = json!(5);
        record_update(Some(&created), &mut new, &w("patcher", None));
        let e = read_entries(&new);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].manager, "creator");
        assert!(e[0].fields.contains(&vec!["f:spec".into(), "f:b".into()]));
        assert!(!e[0].fields.contains(&vec!["f:spec".into(), "f:a".into()]));
        assert_eq!(e[1].fields.len(), 1);
    }

    #[test]
    fn apply_conflicts_force_and_removal() {
        let mut live = json!({"metadata": {"name": "x"}, "spec": {"size": 1}});
        record_update(None, &mut live, &w("kubectl-create", None));
        // Same value: co-ownership, no conflict.
        let same = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "x"}, "spec": {"size": 1, "color": "red"}});
        let applied = apply(Some(&live), &same, false, &w("mgr", None)).unwrap();
        assert_eq!(applied["spec"]["color"], "red");
        // Different value owned by someone else: conflict.
        let mut other = same.clone();
        other["spec"]["size"] = json!(3);
        let err = apply(Some(&applied), &other, false, &w("other", None)).unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(
            conflict_message(&err[..1], "example.com/v1"),
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using example.com/v1: .spec.size"
        );
        let forced = apply(Some(&applied), &other, true, &w("other", None)).unwrap();
        assert_eq!(forced["spec"]["size"], 3);
        // mgr re-applies without color: color is only mgr's and other's -> stays (other owns it).
        let no_color = json!({"metadata": {"name": "x"}, "spec": {"size": 3}});
        let r = apply(Some(&forced), &no_color, false, &w("mgr", None)).unwrap();
        assert_eq!(r["spec"]["color"], "red");
        // A manager that solely owns a field and drops it removes it.
        let only = apply(
            Some(&r),
            &json!({"spec": {"extra": 1}}),
            false,
            &w("solo", None),
        )
        .unwrap();
        assert_eq!(only["spec"]["extra"], 1);
        let gone = apply(Some(&only), &json!({"spec": {}}), false, &w("solo", None)).unwrap();
        assert!(gone["spec"].get("extra").is_none());
    }

    #[test]
    fn list_map_merge_with_schema() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "users": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}, "x": {"type": "integer"}}}}}}}});
        let live = json!({"metadata": {}, "spec": {"users": [{"name": "a", "x": 1}]}});
        let a = apply(
            Some(&live),
            &json!({"spec": {"users": [{"name": "b", "x": 2}]}}),
            false,
            &w("m1", Some(&schema)),
        )
        .unwrap();
        assert_eq!(a["spec"]["users"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn status_apply_records_subresource() {
        let live = json!({"metadata": {"name": "x"}, "spec": {"a": 1}});
        let mut wr = w("ctrl", None);
        wr.subresource = Some("status");
        wr.scope = Scope::Status;
        let r = apply(
            Some(&live),
            &json!({"apiVersion": "v", "kind": "K", "status": {"ok": true}}),
            true,
            &wr,
        )
        .unwrap();
        assert_eq!(r["status"]["ok"], true);
        assert_eq!(r["metadata"]["managedFields"][0]["subresource"], "status");
        // Re-apply identical: time unchanged.
        let mut wr2 = wr.clone();
        wr2.now = "2030-01-01T00:00:00Z";
        let r2 = apply(Some(&r), &json!({"status": {"ok": true}}), true, &wr2).unwrap();
        assert_eq!(r, r2);
    }
}
