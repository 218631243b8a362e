//! OpenAPI v3 (spec §4): the minimum kubectl needs for `apply`/`create`/`replace` (a PATCH
//! operation per GVK that declares the `fieldValidation` parameter, so kubectl hands validation
//! to the server) and for `kubectl explain` (component schemas tagged with their GVK). The
//! strategic-merge content type is deliberately not listed: kubectl then uses its compiled-in
//! types for built-ins and JSON merge patch for custom resources.

use serde_json::{Map, Value, json};

use super::registry::{Registry, ResourceInfo};

/// `GET /openapi/v3`. `hash` changes whenever a CRD changes, because kubectl caches by it.
pub fn index(reg: &Registry, hash: u64) -> Value {
    let mut paths = Map::new();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": format!("/openapi/v3/api/v1?hash={hash:016X}")}),
    );
    for (g, vs) in reg.groups() {
        for v in vs {
            paths.insert(
                format!("apis/{g}/{v}"),
                json!({"serverRelativeURL": format!("/openapi/v3/apis/{g}/{v}?hash={hash:016X}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// Component schema name: reversed group + version + kind (`dev.t2t.v1alpha1.TenantPair`), or the
/// real names for built-ins (`io.k8s.api.core.v1.ConfigMap`).
pub fn schema_name(info: &ResourceInfo, version: &str) -> String {
    if info.custom {
        let rev: Vec<&str> = info.group.split('.').rev().collect();
        format!("{}.{version}.{}", rev.join("."), info.kind)
    } else if info.group.is_empty() {
        format!("io.k8s.api.core.v1.{}", info.kind)
    } else if info.group == "apiextensions.k8s.io" {
        format!(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{}",
            info.kind
        )
    } else {
        let short = info.group.split('.').next().unwrap_or(&info.group);
        format!("io.k8s.api.{short}.{version}.{}", info.kind)
    }
}

fn patch_op(info: &ResourceInfo, version: &str, name: &str) -> Value {
    let q = |n: &str, t: &str| json!({"name": n, "in": "query", "schema": {"type": t}, "uniqueItems": true});
    let body = json!({"schema": {"type": "object"}});
    json!({"patch": {
        "operationId": format!("patch{}", info.kind),
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": info.group, "version": version, "kind": info.kind},
        "parameters": [q("dryRun", "string"), q("fieldManager", "string"),
                       q("fieldValidation", "string"), q("force", "boolean")],
        "requestBody": {"content": {
            "application/apply-patch+yaml": body,
            "application/json-patch+json": body,
            "application/merge-patch+json": body}},
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{name}")}}}}}
    }})
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/{g}/{v}`; None for an unknown group version.
pub fn group_version_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let infos = reg.resources_in(group, version);
    if infos.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for info in &infos {
        let name = schema_name(info, version);
        let path = if info.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", info.plural)
        } else {
            format!("{prefix}/{}/{{name}}", info.plural)
        };
        paths.insert(path, patch_op(info, version, &name));
        let mut schema = info.schemas.get(version).cloned().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if let Some(m) = schema.as_object_mut() {
            m.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": info.group, "version": version, "kind": info.kind}]),
            );
            let props = m
                .entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(props) = props {
                props.insert("apiVersion".into(), json!({"type": "string",
                    "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values."}));
                props.insert("kind".into(), json!({"type": "string",
                    "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase."}));
                props.insert("metadata".into(), json!({"type": "object",
                    "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
            }
        }
        schemas.insert(name, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_ops_declare_field_validation() {
        let reg = Registry::new();
        let doc = group_version_doc(&reg, "", "v1").unwrap();
        let op = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "ConfigMap");
        assert!(
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            op["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
        assert!(
            doc["components"]["schemas"]
                .get("io.k8s.api.core.v1.ConfigMap")
                .is_some()
        );
        let idx = index(&reg, 7);
        assert!(
            idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .contains("hash=")
        );
    }
}
