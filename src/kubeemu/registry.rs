//! The resource catalogue: which group/version/resource exists, its kind, scope, subresources,
//! printer columns and schema. Built-ins are a static table; CRDs add and remove entries.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::store::GroupResource;

/// `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// Everything the server knows about one resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
    pub storage_version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// `(specReplicasPath, statusReplicasPath)` when the scale subresource is on.
    pub scale: Option<(String, String)>,
    /// Whether `metadata.generation` is maintained (CRs, CRDs, built-ins with a spec).
    pub has_generation: bool,
    /// Backed by a CustomResourceDefinition (schema validation, 415 for strategic merge).
    pub custom: bool,
    /// Per-version `openAPIV3Schema` (CRDs only).
    pub schemas: BTreeMap<String, Value>,
    /// Per-version compiled CEL rules (compiled once per CRD change, not per write).
    pub cel: BTreeMap<String, Arc<kube_cel::CompiledSchema>>,
    /// Per-version printer columns (CRDs only; built-ins use `table.rs`).
    pub printer_columns: BTreeMap<String, Vec<PrinterColumn>>,
    /// CRD `selectableFields` JSON paths (without the leading dot).
    pub selectable_fields: Vec<String>,
    /// Deprecated versions and the warning every request to them carries.
    pub deprecations: BTreeMap<String, String>,
    /// Where objects are stored; differs from (group, plural) only for events.k8s.io events,
    /// which share storage with core v1 events.
    pub storage: GroupResource,
}

impl ResourceInfo {
    pub fn gr(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// `widgets.example.com` / `secrets`, as used in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Review resources are create-only and not stored.
    pub fn is_review(&self) -> bool {
        self.group == "authorization.k8s.io"
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.is_review() {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// Lists of subresource names offered in discovery.
    pub fn subresources(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.status_subresource {
            v.push("status");
        }
        if self.scale.is_some() {
            v.push("scale");
        }
        if self.group.is_empty() && self.plural == "namespaces" {
            v.push("finalize");
        }
        v
    }
}

/// Compact builder for the static built-in table.
struct B {
    info: ResourceInfo,
}

impl B {
    fn new(group: &str, versions: &[&str], plural: &str, kind: &str, namespaced: bool) -> Self {
        let versions: Vec<String> = versions.iter().map(|s| s.to_string()).collect();
        B {
            info: ResourceInfo {
                group: group.into(),
                storage_version: versions[0].clone(),
                versions,
                plural: plural.into(),
                singular: kind.to_lowercase(),
                kind: kind.into(),
                list_kind: format!("{kind}List"),
                namespaced,
                short_names: vec![],
                categories: vec![],
                status_subresource: false,
                scale: None,
                has_generation: false,
                custom: false,
                schemas: BTreeMap::new(),
                cel: BTreeMap::new(),
                printer_columns: BTreeMap::new(),
                selectable_fields: vec![],
                deprecations: BTreeMap::new(),
                storage: GroupResource::new(group, plural),
            },
        }
    }
    fn short(mut self, s: &[&str]) -> Self {
        self.info.short_names = s.iter().map(|x| x.to_string()).collect();
        self
    }
    fn cat(mut self, s: &[&str]) -> Self {
        self.info.categories = s.iter().map(|x| x.to_string()).collect();
        self
    }
    fn status(mut self) -> Self {
        self.info.status_subresource = true;
        self
    }
    fn spec(mut self) -> Self {
        self.info.has_generation = true;
        self
    }
    fn scale(mut self) -> Self {
        self.info.scale = Some((".spec.replicas".into(), ".status.replicas".into()));
        self
    }
    fn stored_as(mut self, group: &str, plural: &str) -> Self {
        self.info.storage = GroupResource::new(group, plural);
        self
    }
}

/// Built-in kinds. No controllers run for them (as in envtest): they are stored and served.
fn builtins() -> Vec<ResourceInfo> {
    let all = &["all"];
    vec![
        B::new("", &["v1"], "namespaces", "Namespace", false)
            .short(&["ns"])
            .status(),
        B::new("", &["v1"], "secrets", "Secret", true),
        B::new("", &["v1"], "configmaps", "ConfigMap", true).short(&["cm"]),
        B::new("", &["v1"], "serviceaccounts", "ServiceAccount", true).short(&["sa"]),
        B::new("", &["v1"], "events", "Event", true).short(&["ev"]),
        B::new("", &["v1"], "services", "Service", true)
            .short(&["svc"])
            .cat(all)
            .status(),
        B::new("", &["v1"], "pods", "Pod", true)
            .short(&["po"])
            .cat(all)
            .status(),
        B::new("", &["v1"], "endpoints", "Endpoints", true).short(&["ep"]),
        B::new(
            "",
            &["v1"],
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
        )
        .short(&["pvc"])
        .status(),
        B::new("", &["v1"], "nodes", "Node", false)
            .short(&["no"])
            .status(),
        B::new("", &["v1"], "resourcequotas", "ResourceQuota", true)
            .short(&["quota"])
            .status(),
        B::new("", &["v1"], "limitranges", "LimitRange", true).short(&["limits"]),
        B::new("events.k8s.io", &["v1"], "events", "Event", true)
            .short(&["ev"])
            .stored_as("", "events"),
        B::new("coordination.k8s.io", &["v1"], "leases", "Lease", true),
        B::new(
            "apiextensions.k8s.io",
            &["v1"],
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        )
        .short(&["crd", "crds"])
        .cat(&["api-extensions"])
        .status()
        .spec(),
        B::new("apps", &["v1"], "deployments", "Deployment", true)
            .short(&["deploy"])
            .cat(all)
            .status()
            .spec()
            .scale(),
        B::new("apps", &["v1"], "statefulsets", "StatefulSet", true)
            .short(&["sts"])
            .cat(all)
            .status()
            .spec()
            .scale(),
        B::new("apps", &["v1"], "daemonsets", "DaemonSet", true)
            .short(&["ds"])
            .cat(all)
            .status()
            .spec(),
        B::new("apps", &["v1"], "replicasets", "ReplicaSet", true)
            .short(&["rs"])
            .cat(all)
            .status()
            .spec()
            .scale(),
        B::new("batch", &["v1"], "jobs", "Job", true)
            .cat(all)
            .status()
            .spec(),
        B::new("batch", &["v1"], "cronjobs", "CronJob", true)
            .short(&["cj"])
            .cat(all)
            .status()
            .spec(),
        B::new("rbac.authorization.k8s.io", &["v1"], "roles", "Role", true),
        B::new(
            "rbac.authorization.k8s.io",
            &["v1"],
            "rolebindings",
            "RoleBinding",
            true,
        ),
        B::new(
            "rbac.authorization.k8s.io",
            &["v1"],
            "clusterroles",
            "ClusterRole",
            false,
        ),
        B::new(
            "rbac.authorization.k8s.io",
            &["v1"],
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
        ),
        B::new(
            "networking.k8s.io",
            &["v1"],
            "networkpolicies",
            "NetworkPolicy",
            true,
        )
        .short(&["netpol"])
        .spec(),
        B::new("networking.k8s.io", &["v1"], "ingresses", "Ingress", true)
            .short(&["ing"])
            .status()
            .spec(),
        B::new(
            "policy",
            &["v1"],
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
        )
        .short(&["pdb"])
        .status()
        .spec(),
        B::new(
            "admissionregistration.k8s.io",
            &["v1"],
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            false,
        ),
        B::new(
            "admissionregistration.k8s.io",
            &["v1"],
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            false,
        ),
        // GA since 1.30; stored and served (policies are not evaluated).
        B::new(
            "admissionregistration.k8s.io",
            &["v1"],
            "validatingadmissionpolicies",
            "ValidatingAdmissionPolicy",
            false,
        )
        .status()
        .spec(),
        B::new(
            "admissionregistration.k8s.io",
            &["v1"],
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
            false,
        )
        .spec(),
        // Virtual, create-only: answered (always allowed, RBAC is not enforced), never stored.
        B::new(
            "authorization.k8s.io",
            &["v1"],
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
        ),
        B::new(
            "scheduling.k8s.io",
            &["v1"],
            "priorityclasses",
            "PriorityClass",
            false,
        )
        .short(&["pc"]),
        B::new(
            "monitoring.coreos.com",
            &["v1"],
            "servicemonitors",
            "ServiceMonitor",
            true,
        )
        .spec(),
    ]
    .into_iter()
    .map(|b| b.info)
    .collect()
}

/// The live catalogue, keyed by (group, plural).
#[derive(Debug, Clone)]
pub struct Registry {
    by_gr: BTreeMap<(String, String), Arc<ResourceInfo>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        let mut r = Registry {
            by_gr: BTreeMap::new(),
        };
        for info in builtins() {
            r.insert(info);
        }
        r
    }

    pub fn insert(&mut self, info: ResourceInfo) {
        self.by_gr
            .insert((info.group.clone(), info.plural.clone()), Arc::new(info));
    }

    pub fn remove(&mut self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gr.remove(&(group.to_string(), plural.to_string()))
    }

    /// The resource served at `/apis/{group}/{version}/{plural}`, if that version is served.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gr
            .get(&(group.to_string(), plural.to_string()))
            .filter(|i| i.versions.iter().any(|v| v == version))
            .cloned()
    }

    pub fn get(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gr
            .get(&(group.to_string(), plural.to_string()))
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.by_gr.values()
    }

    /// Groups with their served versions, preferred version first; core group excluded.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for info in self.by_gr.values() {
            if info.group.is_empty() {
                continue;
            }
            let vs = out.entry(info.group.clone()).or_default();
            for v in &info.versions {
                if !vs.contains(v) {
                    vs.push(v.clone());
                }
            }
        }
        out.into_iter().collect()
    }

    /// Resources served in one group version.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.by_gr
            .values()
            .filter(|i| i.group == group && i.versions.iter().any(|v| v == version))
            .cloned()
            .collect()
    }

    /// Finds the resource for an (apiVersion, kind) pair, e.g. to follow ownerReferences.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = split_api_version(api_version);
        self.by_gr
            .values()
            .find(|i| {
                i.group == group
                    && i.kind == kind
                    && i.versions.iter().any(|v| v == version)
                    && i.storage == i.gr()
            })
            .cloned()
    }

    /// Distinct storage locations (events appear once).
    pub fn storage_resources(&self) -> Vec<Arc<ResourceInfo>> {
        self.by_gr
            .values()
            .filter(|i| i.storage == i.gr())
            .cloned()
            .collect()
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_served() {
        let r = Registry::new();
        assert!(r.lookup("", "v1", "secrets").is_some());
        assert!(r.lookup("", "v2", "secrets").is_none());
        let ev = r.lookup("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(ev.storage, GroupResource::new("", "events"));
        assert_eq!(r.by_kind("v1", "Event").unwrap().group, "");
        assert!(r.groups().iter().any(|(g, _)| g == "apps"));
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
    }
}
