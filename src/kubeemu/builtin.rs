//! Field validation for built-in kinds: the object is decoded into its k8s-openapi type, so a
//! wrong type is a 400 like the apiserver's decoding error, and fields the type does not know
//! are reported as unknown (for `fieldValidation`) and dropped, as the apiserver's decoder drops
//! them. Kinds without a typed entry here are stored as sent.

use serde_json::Value;

macro_rules! round_trip {
    ($t:ty, $obj:expr) => {{
        let typed: $t = serde_json::from_value($obj.clone()).map_err(|e| e.to_string())?;
        serde_json::to_value(&typed).map_err(|e| e.to_string())?
    }};
}

/// Decodes through the typed struct. Err: the decode error text. Ok: unknown field paths,
/// which have been removed from `obj`.
pub fn check(storage_group: &str, kind: &str, obj: &mut Value) -> Result<Vec<String>, String> {
    use k8s_openapi::api::{apps, batch, coordination, core, networking, policy, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    let typed = match (storage_group, kind) {
        ("", "Namespace") => round_trip!(core::v1::Namespace, obj),
        ("", "Secret") => round_trip!(core::v1::Secret, obj),
        ("", "ConfigMap") => round_trip!(core::v1::ConfigMap, obj),
        ("", "ServiceAccount") => round_trip!(core::v1::ServiceAccount, obj),
        ("", "Event") => round_trip!(core::v1::Event, obj),
        ("", "Service") => round_trip!(core::v1::Service, obj),
        ("", "Pod") => round_trip!(core::v1::Pod, obj),
        ("coordination.k8s.io", "Lease") => round_trip!(coordination::v1::Lease, obj),
        ("apps", "Deployment") => round_trip!(apps::v1::Deployment, obj),
        ("apps", "StatefulSet") => round_trip!(apps::v1::StatefulSet, obj),
        ("apps", "DaemonSet") => round_trip!(apps::v1::DaemonSet, obj),
        ("batch", "Job") => round_trip!(batch::v1::Job, obj),
        ("batch", "CronJob") => round_trip!(batch::v1::CronJob, obj),
        ("rbac.authorization.k8s.io", "Role") => round_trip!(rbac::v1::Role, obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => round_trip!(rbac::v1::RoleBinding, obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => round_trip!(rbac::v1::ClusterRole, obj),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            round_trip!(rbac::v1::ClusterRoleBinding, obj)
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            round_trip!(networking::v1::NetworkPolicy, obj)
        }
        ("policy", "PodDisruptionBudget") => round_trip!(policy::v1::PodDisruptionBudget, obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            round_trip!(apiextensions::v1::CustomResourceDefinition, obj)
        }
        _ => return Ok(Vec::new()),
    };
    let mut unknown = Vec::new();
    strip_unknown(obj, &typed, "", &mut unknown);
    Ok(unknown)
}

/// `metadata` of any object (custom resources included) against `ObjectMeta`: unknown field
/// paths (removed from `obj`), or the decode error.
pub fn check_metadata(obj: &mut Value) -> Result<Vec<String>, String> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let Some(md) = obj.get_mut("metadata") else {
        return Ok(Vec::new());
    };
    let typed = round_trip!(ObjectMeta, md);
    let mut unknown = Vec::new();
    strip_unknown(md, &typed, "metadata", &mut unknown);
    Ok(unknown)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes keys of `input` that the typed round trip dropped. Empty values are left alone:
/// serializers may omit them, so their absence proves nothing.
fn strip_unknown(input: &mut Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(m), Value::Object(t)) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match t.get(&k) {
                    Some(tv) => {
                        if let Some(v) = m.get_mut(&k) {
                            strip_unknown(v, tv, &p, out);
                        }
                    }
                    None => {
                        if m.get(&k).is_some_and(|v| !is_empty(v)) {
                            m.remove(&k);
                            out.push(p);
                        }
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(t)) if a.len() == t.len() => {
            for (i, (v, tv)) in a.iter_mut().zip(t.iter()).enumerate() {
                strip_unknown(v, tv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_bad_fields() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {}},
            "data": {"a": "b"}, "junk": 1});
        assert_eq!(check("", "ConfigMap", &mut cm).unwrap(), vec!["junk"]);
        assert!(cm.get("junk").is_none());
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}}}});
        assert_eq!(
            check("apps", "Deployment", &mut d).unwrap(),
            vec!["spec.template.spec.containers[0].imagee"]
        );
        let mut bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 1}});
        assert!(check("", "ConfigMap", &mut bad).is_err());
        let mut other = json!({"spec": {"anything": 1}});
        assert!(
            check("example.com", "Widget", &mut other)
                .unwrap()
                .is_empty()
        );
    }
}
