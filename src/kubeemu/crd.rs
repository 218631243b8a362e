//! CustomResourceDefinitions (spec §11): validating a CRD, turning it into a catalogue entry,
//! its status (Established), and the per-write custom-resource pipeline: prune, drop nulls,
//! default, OpenAPI validation, then CEL `x-kubernetes-validations` through kube-cel.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::registry::{PrinterColumn, ResourceInfo};
use super::schema;
use super::status::{FieldError, FieldErrorKind};
use super::store::GroupResource;

fn required(field: &str, errs: &mut Vec<FieldError>) {
    errs.push(FieldError::new(
        field,
        FieldErrorKind::Required(String::new()),
    ));
}

/// Validation of the CRD object itself.
pub fn validate_crd(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        required("spec.group", &mut errs);
    } else if !group.contains('.') {
        errs.push(FieldError::new(
            "spec.group",
            FieldErrorKind::Invalid {
                value: json!(group),
                detail: "should be a domain with at least one dot".into(),
            },
        ));
    }
    if plural.is_empty() {
        required("spec.names.plural", &mut errs);
    }
    if spec["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        required("spec.names.kind", &mut errs);
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::new(
            "metadata.name",
            FieldErrorKind::Invalid {
                value: json!(name),
                detail: "must be spec.names.plural+\".\"+spec.group".into(),
            },
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced") | Some("Cluster") => {}
        Some(other) => errs.push(FieldError::new(
            "spec.scope",
            FieldErrorKind::NotSupported {
                value: json!(other),
                supported: vec![json!("Cluster"), json!("Namespaced")],
            },
        )),
        None => required("spec.scope", &mut errs),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        required("spec.versions", &mut errs);
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"] == json!(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        errs.push(FieldError::new(
            "spec.versions",
            FieldErrorKind::Invalid {
                value: json!(spec["versions"]),
                detail: "must have exactly one version marked as storage version".into(),
            },
        ));
    }
    if !versions.is_empty() && !versions.iter().any(|v| v["served"] == json!(true)) {
        errs.push(FieldError::new(
            "spec.versions",
            FieldErrorKind::Invalid {
                value: json!(spec["versions"]),
                detail: "must have at least one version marked as served".into(),
            },
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
        match v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            Some(s) => {
                schema::check_structural(s, &path, &mut errs);
                if s.get("type").and_then(Value::as_str) != Some("object") {
                    errs.push(FieldError::new(
                        format!("{path}.type"),
                        FieldErrorKind::Invalid {
                            value: s.get("type").cloned().unwrap_or(json!("")),
                            detail: "must be object at the root".into(),
                        },
                    ));
                }
                let compiled = kube_cel::compile_schema(s);
                for e in compiled.compilation_errors() {
                    errs.push(FieldError::new(
                        format!("{path}.x-kubernetes-validations"),
                        FieldErrorKind::Invalid {
                            value: json!(""),
                            detail: format!("compilation failed: {e}"),
                        },
                    ));
                }
            }
            None => required(&path, &mut errs),
        }
    }
    errs
}

/// The catalogue entry a CRD defines (None if it serves nothing).
pub fn resource_info(crd: &Value) -> Option<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str()?.to_string();
    let plural = names["plural"].as_str()?.to_string();
    let kind = names["kind"].as_str()?.to_string();
    let versions: Vec<&Value> = spec["versions"]
        .as_array()?
        .iter()
        .filter(|v| v["served"] == json!(true))
        .collect();
    if versions.is_empty() {
        return None;
    }
    // Preferred version first, in Kubernetes version priority (GA > beta > alpha, higher first).
    let mut ordered: Vec<&Value> = versions.clone();
    ordered.sort_by(|a, b| {
        version_priority(b["name"].as_str().unwrap_or_default())
            .cmp(&version_priority(a["name"].as_str().unwrap_or_default()))
            .then_with(|| a["name"].as_str().cmp(&b["name"].as_str()))
    });
    let storage_version = spec["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"] == json!(true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut schemas = BTreeMap::new();
    let mut cel = BTreeMap::new();
    let mut printer_columns = BTreeMap::new();
    let mut status_sub = false;
    let mut scale = None;
    let mut selectable = Vec::new();
    let mut deprecations = BTreeMap::new();
    for v in &versions {
        let vn = v["name"].as_str().unwrap_or_default().to_string();
        if let Some(s) = v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            schemas.insert(vn.clone(), s.clone());
            cel.insert(vn.clone(), Arc::new(kube_cel::compile_schema(s)));
        }
        let cols: Vec<PrinterColumn> = v["additionalPrinterColumns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| PrinterColumn {
                        name: c["name"].as_str().unwrap_or_default().into(),
                        type_: c["type"].as_str().unwrap_or("string").into(),
                        format: c["format"].as_str().unwrap_or_default().into(),
                        description: c["description"].as_str().unwrap_or_default().into(),
                        priority: c["priority"].as_i64().unwrap_or(0),
                        json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        printer_columns.insert(vn.clone(), cols);
        if vn == storage_version || !status_sub {
            status_sub |= v["subresources"].get("status").is_some();
        }
        if let Some(sc) = v["subresources"].get("scale") {
            scale = Some((
                sc["specReplicasPath"]
                    .as_str()
                    .unwrap_or(".spec.replicas")
                    .into(),
                sc["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas")
                    .into(),
            ));
        }
        if v["deprecated"] == json!(true) {
            let msg = v["deprecationWarning"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| {
                    format!(
                        "{}/{vn} {} is deprecated",
                        spec["group"].as_str().unwrap_or_default(),
                        names["kind"].as_str().unwrap_or_default()
                    )
                });
            deprecations.insert(vn.clone(), msg);
        }
        if let Some(sf) = v["selectableFields"].as_array() {
            for f in sf {
                if let Some(p) = f["jsonPath"].as_str() {
                    selectable.push(p.trim_start_matches('.').to_string());
                }
            }
        }
    }
    let str_list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(ResourceInfo {
        storage: GroupResource::new(&group, &plural),
        group,
        versions: ordered
            .iter()
            .filter_map(|v| v["name"].as_str().map(String::from))
            .collect(),
        storage_version,
        singular: names["singular"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| kind.to_lowercase()),
        list_kind: names["listKind"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{kind}List")),
        kind,
        plural,
        namespaced: spec["scope"] == json!("Namespaced"),
        short_names: str_list(&names["shortNames"]),
        categories: str_list(&names["categories"]),
        status_subresource: status_sub,
        scale,
        has_generation: true,
        custom: true,
        schemas,
        cel,
        printer_columns,
        selectable_fields: selectable,
        deprecations,
    })
}

/// Sort key of a version name (`apimachinery/pkg/version.CompareKubeAwareVersionStrings`):
/// `v2` > `v1` > `v1beta2` > `v1beta1` > `v1alpha1` > anything else.
pub fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let (rank, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(u64::MAX))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(u64::MAX))
    } else {
        return (0, 0, 0);
    };
    if rank == 3 {
        (rank, major, 0)
    } else if minor == u64::MAX {
        (0, 0, 0)
    } else {
        (rank, major, minor)
    }
}

/// The status a freshly accepted CRD gets: NamesAccepted and Established at once.
pub fn established_status(crd: &Value, now: &str, old_status: Option<&Value>) -> Value {
    let names = &crd["spec"]["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    let mut accepted = names.clone();
    if accepted.get("singular").is_none() {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted.get("listKind").is_none() {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let mut stored: Vec<String> = old_status
        .and_then(|s| s["storedVersions"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if let Some(sv) = crd["spec"]["versions"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["storage"] == json!(true)))
        .and_then(|v| v["name"].as_str())
        && !stored.iter().any(|s| s == sv)
    {
        stored.push(sv.to_string());
    }
    // Keep the original transition times so re-applies are no-ops.
    let time_of = |t: &str| -> String {
        old_status
            .and_then(|s| s["conditions"].as_array())
            .and_then(|a| a.iter().find(|c| c["type"] == json!(t)))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now)
            .to_string()
    };
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": time_of("NamesAccepted")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": time_of("Established")}
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    })
}

/// Result of running the custom-resource pipeline.
#[derive(Debug, Default)]
pub struct Checked {
    /// Paths of unknown fields that were pruned (for fieldValidation Warn/Strict).
    pub unknown: Vec<String>,
}

/// Prune, drop nulls, default, validate (OpenAPI + CEL). `old` enables transition rules.
pub fn check_custom(
    info: &ResourceInfo,
    version: &str,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<Checked, Vec<FieldError>> {
    let Some(schema) = info.schemas.get(version) else {
        return Ok(Checked::default());
    };
    let mut checked = Checked::default();
    schema::prune(obj, schema, "", true, &mut checked.unknown);
    schema::drop_nulls(obj, schema);
    schema::apply_defaults(obj, schema);
    let mut errs = Vec::new();
    schema::validate(obj, schema, "", &mut errs);
    // Validation ratcheting (GA in 1.33): on update, errors in parts the write left unchanged
    // do not block it, so tightening a CRD schema does not wedge existing objects.
    if let Some(old) = old {
        errs.retain(|e| {
            let path = match e.kind {
                // A missing required field is judged by its parent object.
                FieldErrorKind::Required(_) => parent_path(&e.field),
                _ => e.field.clone(),
            };
            !unchanged(old, obj, &path)
        });
    }
    if errs.is_empty() {
        // CEL only runs on schema-valid objects, as in the apiserver.
        let result = match info.cel.get(version) {
            Some(compiled) => kube_cel::validate_compiled(compiled, obj, old),
            None => kube_cel::validate(schema, obj, old),
        };
        if let Err(cel_errs) = result {
            for e in cel_errs.iter() {
                let path = e.field_path.trim_start_matches('.').to_string();
                // Ratcheting covers CEL rules too, except transition rules (they compare with
                // the old object by design).
                if let Some(old) = old
                    && !e.rule.contains("oldSelf")
                    && unchanged(old, obj, &path)
                {
                    continue;
                }
                let value_type = type_at(obj, &path);
                let detail = e.message.clone();
                let kind = match e.reason.as_deref() {
                    Some("FieldValueRequired") => FieldErrorKind::Required(detail),
                    Some("FieldValueForbidden") => FieldErrorKind::Forbidden(detail),
                    _ => FieldErrorKind::Invalid {
                        value: json!(value_type),
                        detail,
                    },
                };
                errs.push(FieldError::new(
                    if path.is_empty() {
                        "<nil>".to_string()
                    } else {
                        path
                    },
                    kind,
                ));
            }
        }
    }
    if errs.is_empty() {
        Ok(checked)
    } else {
        Err(errs)
    }
}

fn parent_path(path: &str) -> String {
    match path.rfind(['.', '[']) {
        Some(i) => path[..i].to_string(),
        None => String::new(),
    }
}

/// The value at a dotted path (`spec.items[0].name`); the empty path is the whole object.
fn value_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (key, idx) = match seg.split_once('[') {
            Some((k, rest)) => (k, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (seg, None),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// Whether a path holds the same value before and after the write (present in both).
fn unchanged(old: &Value, new: &Value, path: &str) -> bool {
    if path == "<nil>" {
        return false;
    }
    match (value_at(old, path), value_at(new, path)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// OpenAPI type name of the value at a dotted path (`spec.items[0]`), as CEL errors print it.
fn type_at(obj: &Value, path: &str) -> &'static str {
    let mut cur = obj;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (key, idx) = match seg.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        cur = match cur.get(key) {
            Some(v) => v,
            None => return "object",
        };
        if let Some(i) = idx {
            cur = match cur.get(i) {
                Some(v) => v,
                None => return "object",
            };
        }
    }
    match cur {
        Value::String(_) => "string",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object",
                            "x-kubernetes-validations": [
                                {"rule": "self.size <= 10", "message": "size must be at most 10"},
                                {"rule": "!has(oldSelf.color) || self.color == oldSelf.color", "message": "color is immutable"}],
                            "properties": {"size": {"type": "integer"}, "color": {"type": "string"}}},
                        "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}}}]}})
    }

    #[test]
    fn crd_to_resource_info() {
        let crd = widget_crd();
        assert!(validate_crd(&crd).is_empty(), "{:?}", validate_crd(&crd));
        let info = resource_info(&crd).unwrap();
        assert_eq!(info.list_kind, "WidgetList");
        assert!(info.status_subresource);
        assert_eq!(info.printer_columns["v1"][0].json_path, ".spec.size");
        let st = established_status(&crd, "2026-01-01T00:00:00Z", None);
        assert_eq!(st["conditions"][1]["type"], "Established");
        assert_eq!(st["storedVersions"], json!(["v1"]));
        let mut bad = crd.clone();
        bad["metadata"]["name"] = json!("wrong");
        assert_eq!(validate_crd(&bad)[0].field, "metadata.name");
    }

    #[test]
    fn ratcheting_lets_unchanged_invalid_fields_through() {
        let mut crd = widget_crd();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["color"]["maxLength"] = json!(2);
        let info = resource_info(&crd).unwrap();
        // Stored before the schema was tightened.
        let old = json!({"metadata": {"name": "a"}, "spec": {"size": 3, "color": "red"}});
        let mut resize = json!({"metadata": {"name": "a"}, "spec": {"size": 4, "color": "red"}});
        assert!(check_custom(&info, "v1", &mut resize, Some(&old)).is_ok());
        let mut still_bad =
            json!({"metadata": {"name": "a"}, "spec": {"size": 4, "color": "blue"}});
        assert!(check_custom(&info, "v1", &mut still_bad, Some(&old)).is_err());
        let mut create = old.clone();
        assert!(check_custom(&info, "v1", &mut create, None).is_err());
        // Unchanged values also skip non-transition CEL rules.
        let big_old = json!({"metadata": {"name": "a"}, "spec": {"size": 30}});
        let mut relabel =
            json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {"size": 30}});
        let info2 = resource_info(&widget_crd()).unwrap();
        assert!(check_custom(&info2, "v1", &mut relabel, Some(&big_old)).is_ok());
    }

    #[test]
    fn schema_change_defaults_existing_objects_on_read() {
        use crate::kubeemu::ops::{State, register_crd};
        let mut st = State::new(10);
        let crd = widget_crd();
        register_crd(&mut st, &crd);
        let gr = GroupResource::new("example.com", "widgets");
        st.store.put(
            &gr,
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"namespace": "d", "name": "w"}, "spec": {"size": 1}}),
        );
        let rv = st.store.current_rv();
        let mut changed = crd.clone();
        changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["color"]["default"] = json!("blue");
        register_crd(&mut st, &changed);
        assert_eq!(
            st.store.get(&gr, "d", "w").unwrap()["spec"]["color"],
            "blue"
        );
        assert_eq!(st.store.current_rv(), rv);
    }

    #[test]
    fn version_priority_order() {
        let mut v = vec![
            "v1alpha1", "v1", "v2beta1", "v1beta2", "foo", "v2", "v1beta1",
        ];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(
            v,
            vec![
                "v2", "v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "foo"
            ]
        );
    }

    #[test]
    fn cel_rules_and_transitions() {
        let info = resource_info(&widget_crd()).unwrap();
        let mut ok = json!({"metadata": {"name": "a"}, "spec": {"size": 3, "color": "red"}});
        assert!(check_custom(&info, "v1", &mut ok, None).is_ok());
        let mut big = json!({"metadata": {"name": "a"}, "spec": {"size": 30}});
        let errs = check_custom(&info, "v1", &mut big, None).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            r#"spec: Invalid value: "object": size must be at most 10"#
        );
        let mut recolor = json!({"metadata": {"name": "a"}, "spec": {"size": 3, "color": "blue"}});
        let errs = check_custom(&info, "v1", &mut recolor, Some(&ok)).unwrap_err();
        assert!(errs[0].to_string().contains("color is immutable"));
    }
}
