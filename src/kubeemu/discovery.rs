//! Discovery documents (spec §3): aggregated (`apidiscovery.k8s.io/v2`, which needs its exact
//! response content type) and the legacy APIVersions / APIGroupList / APIResourceList forms.

use serde_json::{Value, json};

use super::registry::{Registry, ResourceInfo};

/// Content type kubectl insists on for aggregated discovery (trap 1).
pub const AGGREGATED_CT: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the Accept header asks for aggregated discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.contains("as=APIGroupDiscoveryList") && accept.contains("v=v2")
}

fn resource_entry(info: &ResourceInfo, version: &str) -> Value {
    let gvk = json!({"group": info.group, "version": version, "kind": info.kind});
    let subs: Vec<Value> = info
        .subresources()
        .into_iter()
        .map(|s| {
            let kind = if s == "scale" {
                json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
            } else {
                gvk.clone()
            };
            let verbs = if s == "finalize" {
                json!(["update"])
            } else {
                json!(["get", "patch", "update"])
            };
            json!({"subresource": s, "responseKind": kind, "verbs": verbs})
        })
        .collect();
    let mut e = json!({
        "resource": info.plural,
        "responseKind": gvk,
        "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": info.singular,
        "verbs": info.verbs(),
    });
    if !info.short_names.is_empty() {
        e["shortNames"] = json!(info.short_names);
    }
    if !info.categories.is_empty() {
        e["categories"] = json!(info.categories);
    }
    if !subs.is_empty() {
        e["subresources"] = json!(subs);
    }
    e
}

fn group_entry(reg: &Registry, group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let res: Vec<Value> = reg
                .resources_in(group, v)
                .iter()
                .map(|i| resource_entry(i, v))
                .collect();
            json!({"version": v, "freshness": "Current", "resources": res})
        })
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": vs})
}

/// `GET /api` (core) or `GET /apis` (everything else), aggregated.
pub fn aggregated(reg: &Registry, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![group_entry(reg, "", &["v1".to_string()])]
    } else {
        reg.groups()
            .iter()
            .map(|(g, vs)| group_entry(reg, g, vs))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {}, "items": items})
}

pub fn api_versions(addr: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]})
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`; None if the group is unknown.
pub fn api_group_doc(reg: &Registry, group: &str) -> Option<Value> {
    let (g, vs) = reg.groups().into_iter().find(|(g, _)| g == group)?;
    let mut doc = api_group(&g, &vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `GET /api/v1` or `/apis/{g}/{v}`; None if that group version serves nothing.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let infos = reg.resources_in(group, version);
    if infos.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut res = Vec::new();
    for i in &infos {
        let mut e = json!({"name": i.plural, "singularName": i.singular, "namespaced": i.namespaced,
            "kind": i.kind, "verbs": i.verbs()});
        if !i.short_names.is_empty() {
            e["shortNames"] = json!(i.short_names);
        }
        if !i.categories.is_empty() {
            e["categories"] = json!(i.categories);
        }
        res.push(e);
        for s in i.subresources() {
            let (kind, verbs) = match s {
                "scale" => ("Scale", json!(["get", "patch", "update"])),
                "finalize" => (i.kind.as_str(), json!(["update"])),
                _ => (i.kind.as_str(), json!(["get", "patch", "update"])),
            };
            res.push(
                json!({"name": format!("{}/{s}", i.plural), "singularName": "",
                "namespaced": i.namespaced, "kind": kind, "verbs": verbs}),
            );
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}),
    )
}

pub fn version() -> Value {
    json!({"major": "1", "minor": "33", "emulationMajor": "1", "emulationMinor": "33",
        "gitVersion": "v1.33.0-kubeemu", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
        "compiler": "gc", "platform": "linux/amd64"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let reg = Registry::new();
        let core = aggregated(&reg, true);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let ns = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "namespaces")
            .unwrap()
            .clone();
        assert_eq!(ns["scope"], "Cluster");
        assert_eq!(ns["subresources"].as_array().unwrap().len(), 2);
        let rl = resource_list(&reg, "apps", "v1").unwrap();
        assert!(
            rl["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "deployments/scale")
        );
        assert!(resource_list(&reg, "nope", "v1").is_none());
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
    }
}
