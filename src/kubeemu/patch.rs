//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902 with the Go evanphx
//! `test` quirk), and the subset of strategic merge patch that kubectl sends for built-ins.
//! Pure functions; the handler maps `PatchError` to 400/422.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of this type (400).
    #[error("{0}")]
    Malformed(String),
    /// The patch is well-formed but cannot be applied to this object (422).
    #[error("{0}")]
    Failed(String),
}

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902. `test` is evaluated here rather than by the `json-patch` crate because Go's
/// evanphx/json-patch (what the apiserver uses) treats a missing key under an existing parent as
/// `null`: kube-runtime's finalizer helper sends `test /metadata/finalizers == null` on objects
/// without finalizers and relies on that passing.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchError::Malformed("json patch must be an array of operations".into()))?;
    for op in ops {
        if op.get("op").and_then(Value::as_str) == Some("test") {
            let path = op
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| PatchError::Malformed("test operation without path".into()))?;
            let expected = op.get("value").cloned().unwrap_or(Value::Null);
            let actual = match target.pointer(path) {
                Some(v) => v.clone(),
                None => {
                    let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                    if target.pointer(parent).is_some() {
                        Value::Null
                    } else {
                        return Err(PatchError::Failed(format!(
                            "testing value {path} failed: missing path"
                        )));
                    }
                }
            };
            if actual != expected {
                return Err(PatchError::Failed(format!(
                    "testing value {path} failed: test failed"
                )));
            }
            continue;
        }
        let one: json_patch::Patch = serde_json::from_value(Value::Array(vec![op.clone()]))
            .map_err(|e| PatchError::Malformed(format!("invalid json patch: {e}")))?;
        json_patch::patch(target, &one).map_err(|e| PatchError::Failed(e.to_string()))?;
    }
    Ok(())
}

/// Merge key of object lists in built-in types (`patchMergeKey` in the Go structs). Looked up by
/// field name only: these names mean the same thing wherever they occur in the built-ins.
pub(crate) fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "hostAliases" => match field {
            "hostAliases" => "ip",
            _ => "name",
        },
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Primitive lists with `patchStrategy: merge` (union instead of replace).
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge patch for built-ins: the map semantics of merge patch, `$patch` directives,
/// `$retainKeys`, `$deleteFromPrimitiveList/…`, `$setElementOrder/…` (ordering is ignored), and
/// object lists merged by their merge key.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(p) = patch else {
        return Err(PatchError::Malformed(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    smp_map(target, p)
}

fn smp_map(target: &mut Value, patch: &Map<String, Value>) -> Result<(), PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut p = patch.clone();
            p.remove("$patch");
            *target = Value::Object(p);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, pv) in patch {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(del)) = (t.get_mut(field), pv.as_array()) {
                items.retain(|i| !del.contains(i));
            }
            continue;
        }
        match pv {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(pm) => {
                let cur = t.entry(k.clone()).or_insert(Value::Null);
                smp_map(cur, pm)?;
                if cur.is_null() {
                    t.remove(k);
                }
            }
            Value::Array(pl) => {
                let merged = smp_list(k, t.get(k), pl)?;
                t.insert(k.clone(), merged);
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
    Ok(())
}

fn smp_list(field: &str, cur: Option<&Value>, patch: &[Value]) -> Result<Value, PatchError> {
    let cur: Vec<Value> = cur.and_then(Value::as_array).cloned().unwrap_or_default();
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(Value::Array(
            patch
                .iter()
                .filter(|p| p.get("$patch").is_none())
                .cloned()
                .collect(),
        ));
    }
    if let Some(key) = merge_key(field)
        && patch.iter().all(Value::is_object)
    {
        let mut out = cur;
        for p in patch {
            let kv = p.get(key).cloned().unwrap_or(Value::Null);
            let pos = out.iter().position(|o| o.get(key) == Some(&kv));
            let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
            match (pos, delete) {
                (Some(i), true) => {
                    out.remove(i);
                }
                (None, true) => {}
                (Some(i), false) => {
                    if let Value::Object(pm) = p {
                        smp_map(&mut out[i], pm)?;
                    }
                }
                (None, false) => {
                    let mut fresh = Value::Object(Map::new());
                    if let Value::Object(pm) = p {
                        smp_map(&mut fresh, pm)?;
                    }
                    out.push(fresh);
                }
            }
        }
        return Ok(Value::Array(out));
    }
    if merges_primitives(field) {
        let mut out = cur;
        for p in patch {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        return Ok(Value::Array(out));
    }
    Ok(Value::Array(patch.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut v, &json!({"a": null, "b": {"c": 5}, "e": [1]}));
        assert_eq!(v, json!({"b": {"c": 5, "d": 3}, "e": [1]}));
    }

    #[test]
    fn json_patch_test_null_quirk() {
        let mut v = json!({"metadata": {"name": "x"}});
        let p = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}
        ]);
        json_patch(&mut v, &p).unwrap();
        assert_eq!(v["metadata"]["finalizers"], json!(["f"]));
        // Second identical patch: the test now fails (list is present).
        let err = json_patch(&mut v, &p).unwrap_err();
        assert!(matches!(err, PatchError::Failed(_)));
        // Remove with test on the element.
        let rm = json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "f"},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]);
        json_patch(&mut v, &rm).unwrap();
        assert_eq!(v["metadata"]["finalizers"], json!([]));
        // Missing parent fails.
        assert!(
            json_patch(
                &mut v,
                &json!([{"op": "test", "path": "/nope/x", "value": null}])
            )
            .is_err()
        );
        assert!(matches!(
            json_patch(&mut v, &json!({"op": "add"})),
            Err(PatchError::Malformed(_))
        ));
        assert!(matches!(
            json_patch(&mut v, &json!([{"op": "remove", "path": "/nope"}])),
            Err(PatchError::Failed(_))
        ));
    }

    #[test]
    fn strategic_merge_lists_and_directives() {
        let mut v = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "v1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "s1"}]}}},
            "data": {"k": "v"}});
        let p = json!({"metadata": {"finalizers": ["b"], "labels": {"y": null}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [
                    {"name": "app", "image": "v2", "env": [{"name": "B", "value": "2"}]},
                    {"name": "side", "$patch": "delete"}]}}},
            "data": {"$patch": "replace", "n": "m"}});
        strategic_merge_patch(&mut v, &p).unwrap();
        assert_eq!(v["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(v["metadata"]["labels"], json!({"x": "1"}));
        let cs = &v["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 1);
        assert_eq!(cs[0]["image"], "v2");
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(v["data"], json!({"n": "m"}));
        let mut w = json!({"metadata": {"finalizers": ["a", "b"]}});
        strategic_merge_patch(
            &mut w,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(w["metadata"]["finalizers"], json!(["b"]));
    }
}
