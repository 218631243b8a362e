//! Install and operations artefacts: the Dockerfile lints clean (hadolint), `deploy/` renders with
//! kustomize into least-privilege RBAC and a hardened pod, the Helm chart lints through the real
//! Helm engine (helm-sdkpy) for default, HA and all-options values and rejects bad values, its
//! copied CRDs equal `/crds`, its alerts link to runbook sections that exist, and the Argo CD
//! health checks return what their fixtures expect when run by a real Lua interpreter.
//!
//! External tools come from the venv `.ci/run` creates (`T2T_VENV`, default
//! `$HOME/.cache/t2t-operator/venv`) and from `kubectl`. When one is missing a test is skipped
//! with a message, except under `CI=true`, where it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A tool that is missing: fail under CI, skip (return None) on a developer machine.
fn missing(what: &str) -> Option<PathBuf> {
    let msg = format!("{what} is missing: run `bash .ci/run` once (it creates the venv)");
    if in_ci() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

fn venv() -> PathBuf {
    std::env::var_os("T2T_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/t2t-operator/venv")
        })
}

fn venv_bin(name: &str) -> Option<PathBuf> {
    let path = venv().join("bin").join(name);
    if path.exists() {
        Some(path)
    } else {
        missing(&format!("{}", path.display()))
    }
}

/// The venv's python, checked to import `module`.
fn venv_python(module: &str) -> Option<PathBuf> {
    let python = venv_bin("python")?;
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        missing(&format!("python module {module} in {}", venv().display()))
    }
}

struct Output {
    ok: bool,
    text: String,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Output {
        ok: out.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Parses a multi-document YAML stream into JSON values (empty documents dropped).
fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("yaml");
            serde_json::to_value(v).expect("json")
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn read(path: impl AsRef<Path>) -> String {
    let path = repo().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `kubectl kustomize deploy/`, parsed.
fn rendered_deploy() -> Option<Vec<Value>> {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        missing("kubectl")?;
    }
    let out = run(Command::new("kubectl").args(["kustomize", "deploy/"]));
    assert!(out.ok, "kubectl kustomize deploy/ failed:\n{}", out.text);
    Some(yaml_docs(&out.text))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected exactly one {kind}");
    found[0]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = venv_bin("hadolint") else {
        return;
    };
    let out = run(Command::new(hadolint).args(["--config", ".hadolint.yaml", "Dockerfile"]));
    assert!(out.ok, "hadolint found problems:\n{}", out.text);
}

#[test]
fn dockerfile_builds_the_release_binary_into_a_nonroot_distroless_image() {
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("--no-default-features"));
    assert!(dockerfile.contains("--locked"));
    assert!(dockerfile.contains("--bin t2t-operator"));
    assert!(dockerfile.contains("FROM gcr.io/distroless/"));
    assert!(dockerfile.contains(":nonroot"));
    let last_user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert_eq!(last_user, "USER 65532:65532");
    assert!(dockerfile.contains(r#"CMD ["run""#));
    let ignore = read(".dockerignore");
    let lines: Vec<&str> = ignore
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(lines.first(), Some(&"*"), "ignore everything by default");
    for keep in ["!Cargo.toml", "!Cargo.lock", "!src/"] {
        assert!(lines.contains(&keep), ".dockerignore must keep {keep}");
    }
}

// ---------------------------------------------------------------------------------------------
// deploy/ (kustomize)

#[test]
fn kustomize_renders_the_expected_objects() {
    let Some(docs) = rendered_deploy() else {
        return;
    };
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ] {
        assert!(kinds.contains(kind), "deploy/ renders no {kind}: {kinds:?}");
    }
    let crds: BTreeSet<&str> = of_kind(&docs, "CustomResourceDefinition")
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        crds,
        BTreeSet::from([
            "migrationbatches.t2t.dev",
            "migrationendpoints.t2t.dev",
            "tenantpairs.t2t.dev"
        ])
    );
    assert_eq!(one(&docs, "Namespace")["metadata"]["name"], "t2t-system");
    // Every namespaced object lives in t2t-system; cluster-scoped ones carry no namespace.
    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let ns = &doc["metadata"]["namespace"];
        match kind {
            "CustomResourceDefinition"
            | "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding" => {
                assert!(
                    ns.is_null(),
                    "{kind} is cluster-scoped but has namespace {ns}"
                )
            }
            _ => assert_eq!(ns, "t2t-system", "{kind} namespace"),
        }
    }
    // The Service selects the Deployment's pods.
    let pod_labels = &one(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    let selector = one(&docs, "Service")["spec"]["selector"]
        .as_object()
        .expect("selector");
    for (k, v) in selector {
        assert_eq!(&pod_labels[k], v, "service selector {k}");
    }
}

/// Every rule of every Role/ClusterRole: no `*` in apiGroups, resources, verbs or resourceNames.
fn assert_no_wildcards(docs: &[Value]) -> usize {
    let mut rules = 0;
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        let name = &role["metadata"]["name"];
        assert!(
            role.get("aggregationRule").is_none(),
            "{name}: no aggregation"
        );
        for rule in role["rules"].as_array().expect("rules") {
            rules += 1;
            for field in [
                "apiGroups",
                "resources",
                "verbs",
                "resourceNames",
                "nonResourceURLs",
            ] {
                for s in strings(&rule[field]) {
                    assert!(!s.contains('*'), "{name}: wildcard in {field}: {rule}");
                }
            }
            assert!(rule.get("nonResourceURLs").is_none(), "{name}: {rule}");
            for verb in strings(&rule["verbs"]) {
                assert!(
                    !["escalate", "bind", "impersonate", "deletecollection"]
                        .contains(&verb.as_str()),
                    "{name}: dangerous verb {verb}"
                );
            }
        }
    }
    rules
}

/// (apiGroup, resource) -> verbs granted by `role`.
fn grants(role: &Value, group: &str, resource: &str) -> BTreeSet<String> {
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| {
            strings(&r["apiGroups"]).iter().any(|g| g == group)
                && strings(&r["resources"]).iter().any(|x| x == resource)
        })
        .flat_map(|r| strings(&r["verbs"]))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn assert_least_privilege(cluster_role: &Value, secrets_write_in_cluster_role: bool) {
    for kind in ["tenantpairs", "migrationendpoints", "migrationbatches"] {
        assert_eq!(
            grants(cluster_role, "t2t.dev", kind),
            set(&["get", "list", "watch", "patch", "update"]),
            "{kind}"
        );
        for sub in ["status", "finalizers"] {
            assert_eq!(
                grants(cluster_role, "t2t.dev", &format!("{kind}/{sub}")),
                set(&["patch", "update"]),
                "{kind}/{sub}"
            );
        }
    }
    let mut secrets = set(&["get", "list", "watch"]);
    if secrets_write_in_cluster_role {
        secrets.extend(set(&["create", "update", "patch"]));
    }
    assert_eq!(grants(cluster_role, "", "secrets"), secrets, "secrets");
    assert_eq!(
        grants(cluster_role, "", "configmaps"),
        set(&["get", "list", "watch"])
    );
    assert_eq!(
        grants(cluster_role, "events.k8s.io", "events"),
        set(&["create", "patch"])
    );
    assert_eq!(
        grants(cluster_role, "", "events"),
        set(&["create", "patch"])
    );
    assert!(grants(cluster_role, "coordination.k8s.io", "leases").is_empty());
    // Nothing else: every rule is one of the above.
    let allowed: BTreeSet<(&str, &str)> = [
        ("t2t.dev", "tenantpairs"),
        ("t2t.dev", "migrationendpoints"),
        ("t2t.dev", "migrationbatches"),
        ("t2t.dev", "tenantpairs/status"),
        ("t2t.dev", "migrationendpoints/status"),
        ("t2t.dev", "migrationbatches/status"),
        ("t2t.dev", "tenantpairs/finalizers"),
        ("t2t.dev", "migrationendpoints/finalizers"),
        ("t2t.dev", "migrationbatches/finalizers"),
        ("", "secrets"),
        ("", "configmaps"),
        ("", "events"),
        ("events.k8s.io", "events"),
    ]
    .into();
    for rule in cluster_role["rules"].as_array().expect("rules") {
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                assert!(
                    allowed.contains(&(g.as_str(), r.as_str())),
                    "unexpected grant {g}/{r}"
                );
            }
        }
    }
}

fn assert_leader_election_role(role: &Value, namespace: &str) {
    assert_eq!(role["metadata"]["namespace"], namespace);
    let rules = role["rules"].as_array().expect("rules");
    for rule in rules {
        assert_eq!(strings(&rule["apiGroups"]), ["coordination.k8s.io"]);
        assert_eq!(strings(&rule["resources"]), ["leases"]);
        let verbs = strings(&rule["verbs"]);
        if verbs != ["create"] {
            assert_eq!(
                strings(&rule["resourceNames"]),
                ["t2t-operator-leader"],
                "{rule}"
            );
        }
    }
    assert_eq!(
        grants(role, "coordination.k8s.io", "leases"),
        set(&["get", "create", "update", "patch"])
    );
}

#[test]
fn deploy_rbac_is_least_privilege_without_wildcards() {
    let Some(docs) = rendered_deploy() else {
        return;
    };
    assert!(assert_no_wildcards(&docs) >= 10);
    assert_least_privilege(one(&docs, "ClusterRole"), true);
    assert_leader_election_role(one(&docs, "Role"), "t2t-system");
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        let b = one(&docs, binding);
        assert_eq!(b["subjects"][0]["kind"], "ServiceAccount");
        assert_eq!(b["subjects"][0]["name"], "t2t-operator");
        assert_eq!(b["subjects"][0]["namespace"], "t2t-system");
    }
    // The owned-Secret guard targets exactly the operator's service account.
    let vap = one(&docs, "ValidatingAdmissionPolicy");
    assert!(
        vap["spec"]["matchConditions"][0]["expression"]
            .as_str()
            .unwrap()
            .contains("system:serviceaccount:t2t-system:t2t-operator")
    );
    assert!(
        vap["spec"]["validations"]
            .to_string()
            .contains("app.kubernetes.io/managed-by")
    );
    assert_eq!(
        one(&docs, "ValidatingAdmissionPolicyBinding")["spec"]["policyName"],
        vap["metadata"]["name"]
    );
    // The comment explaining the tradeoff is part of the deliverable.
    assert!(read("deploy/rbac.yaml").contains("RBAC cannot filter by label"));
}

/// The pod template of `deployment` meets the hardening contract.
fn assert_hardened(deployment: &Value, replicas: i64) {
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], replicas);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], true);
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["runAsUser"], 65532);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_ne!(sc["privileged"], true);
    // Probes on the metrics port (8080).
    let port_8080 = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["containerPort"] == 8080)
        .expect("container port 8080");
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert!(
            get["port"] == 8080 || get["port"] == port_8080["name"],
            "{probe} port {}",
            get["port"]
        );
    }
    for kind in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            assert!(
                !c["resources"][kind][res].is_null(),
                "resources.{kind}.{res}"
            );
        }
    }
    let args = strings(&c["args"]);
    assert_eq!(args.first().map(String::as_str), Some("run"));
    let pos = args
        .iter()
        .position(|a| a == "--metrics-addr")
        .expect("--metrics-addr");
    assert_eq!(args[pos + 1], "0.0.0.0:8080");
    let pos = args
        .iter()
        .position(|a| a == "--log-format")
        .expect("--log-format");
    assert!(["json", "text"].contains(&args[pos + 1].as_str()));
    if replicas > 1 {
        assert!(
            args.contains(&"--leader-elect".to_string()),
            "HA needs leader election"
        );
    }
    assert!(
        pod["volumes"].is_null(),
        "the operator needs no volumes (no writable filesystem)"
    );
}

#[test]
fn deploy_pod_is_hardened() {
    let Some(docs) = rendered_deploy() else {
        return;
    };
    let deployment = one(&docs, "Deployment");
    assert_hardened(deployment, 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        one(&docs, "ServiceAccount")["metadata"]["name"]
    );
    assert_eq!(
        one(&docs, "ServiceAccount")["automountServiceAccountToken"],
        true
    );
    assert_eq!(
        one(&docs, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

#[test]
fn deploy_network_policy_and_disruption_budget() {
    let Some(docs) = rendered_deploy() else {
        return;
    };
    let np = &one(&docs, "NetworkPolicy")["spec"];
    assert_eq!(strings(&np["policyTypes"]), ["Ingress", "Egress"]);
    let ingress = np["ingress"].as_array().expect("ingress");
    let ingress_ports: Vec<&Value> = ingress
        .iter()
        .flat_map(|r| r["ports"].as_array().expect("ingress ports"))
        .map(|p| &p["port"])
        .collect();
    assert_eq!(ingress_ports, [&Value::from(8080)], "ingress only to 8080");
    let egress_ports: BTreeSet<i64> = np["egress"]
        .as_array()
        .expect("egress")
        .iter()
        .flat_map(|r| {
            r["ports"]
                .as_array()
                .expect("every egress rule names ports")
        })
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(egress_ports, BTreeSet::from([53, 443, 6443]));
    assert!(read("deploy/networkpolicy.yaml").contains("host names"));
    let pdb = &one(&docs, "PodDisruptionBudget")["spec"];
    assert_eq!(
        pdb["maxUnavailable"], 1,
        "a single replica must stay drainable"
    );
    assert!(pdb["minAvailable"].is_null());
}

// ---------------------------------------------------------------------------------------------
// Helm chart

const CHART: &str = "charts/t2t-operator";

/// Lints the chart with helm-sdkpy after merging `overrides` into its values.
fn helm_lint(overrides: &str) -> Option<Output> {
    let python = venv_python("helm_sdkpy")?;
    Some(run(Command::new(python).args([
        "tests/ops/helm_lint.py",
        CHART,
        overrides,
    ])))
}

#[test]
fn chart_lints_with_default_values() {
    if let Some(out) = helm_lint("{}") {
        assert!(out.ok, "helm lint failed:\n{}", out.text);
        assert!(out.text.contains("helm lint passed"));
    }
}

#[test]
fn chart_lints_with_ha_values() {
    let ha = r#"{"replicas": 2, "leaderElection": {"enabled": false},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                 "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                   {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                     "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "t2t-operator"}}}}]}}}"#;
    if let Some(out) = helm_lint(ha) {
        assert!(out.ok, "helm lint (HA) failed:\n{}", out.text);
    }
}

#[test]
fn chart_lints_with_every_option_on() {
    let all = r#"{"serviceAccount": {"workloadIdentity": {"enabled": true,
                    "clientId": "33333333-3333-3333-3333-333333333333"},
                    "annotations": {"example.com/owner": "platform"}},
                  "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}},
                  "prometheusRule": {"enabled": true, "runbookBaseUrl": "https://example.com/docs/operations.md"},
                  "grafanaDashboard": {"enabled": true},
                  "rbac": {"ownedSecretNamespaces": ["migration", "migration-2"]},
                  "nodeSelector": {"kubernetes.io/os": "linux"},
                  "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
                  "extraArgs": ["--example"], "extraEnv": [{"name": "EXAMPLE", "value": "1"}],
                  "logFormat": "text", "image": {"digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}}"#;
    if let Some(out) = helm_lint(all) {
        assert!(out.ok, "helm lint (all options) failed:\n{}", out.text);
    }
}

#[test]
fn chart_schema_rejects_unknown_and_mistyped_values() {
    for bad in [
        r#"{"replicaCount": 2}"#,
        r#"{"replicas": "two"}"#,
        r#"{"logFormat": "xml"}"#,
        r#"{"leaderElection": {"enabled": true, "leaseName": "x"}}"#,
        r#"{"securityContext": {"runAsNonRoot": "yes"}}"#,
        r#"{"serviceAccount": {"workloadIdentity": {"enabled": true, "clientId": "not-a-guid"}}}"#,
    ] {
        if let Some(out) = helm_lint(bad) {
            assert!(
                !out.ok,
                "helm lint accepted invalid values {bad}:\n{}",
                out.text
            );
        }
    }
    let schema: Value =
        serde_json::from_str(&read(format!("{CHART}/values.schema.json"))).expect("schema json");
    assert_eq!(schema["additionalProperties"], false);
    // Strict all the way down for the chart's own objects.
    for key in [
        "image",
        "leaderElection",
        "serviceAccount",
        "rbac",
        "metrics",
        "prometheusRule",
        "grafanaDashboard",
        "networkPolicy",
        "podDisruptionBudget",
        "podSecurityContext",
        "securityContext",
        "probes",
    ] {
        assert_eq!(
            schema["properties"][key]["additionalProperties"], false,
            "values.schema.json: {key} must be strict"
        );
    }
}

#[test]
fn chart_crds_equal_the_generated_crds() {
    let list = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(repo().join(dir))
            .expect(dir)
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
            .collect()
    };
    let generated = list("crds");
    assert_eq!(generated.len(), 3, "crds/: {generated:?}");
    assert_eq!(
        list(&format!("{CHART}/crds")),
        generated,
        "{CHART}/crds must hold exactly the files of crds/ (cp crds/*.t2t.dev.yaml {CHART}/crds/)"
    );
    for name in &generated {
        assert!(
            read(format!("crds/{name}")) == read(format!("{CHART}/crds/{name}")),
            "{CHART}/crds/{name} differs from crds/{name}: cp crds/*.t2t.dev.yaml {CHART}/crds/"
        );
    }
}

/// Renders the chart with the real Helm engine: `helm install` through helm-sdkpy against a fake
/// API server (tests/ops/helm_render.py), since helm-sdkpy has no `template` or dry-run.
fn helm_render(overrides: &str) -> Option<Vec<Value>> {
    let python = venv_python("helm_sdkpy")?;
    let out = run(Command::new(python).args(["tests/ops/helm_render.py", CHART, overrides]));
    assert!(out.ok, "rendering the chart failed:\n{}", out.text);
    let docs = yaml_docs(&out.text);
    assert!(docs.len() >= 10, "rendered too little:\n{}", out.text);
    Some(docs)
}

fn rule_set(role: &Value) -> BTreeSet<String> {
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r.to_string())
        .collect()
}

#[test]
fn rendered_chart_is_hardened_and_least_privilege_like_deploy() {
    let Some(docs) = helm_render("{}") else {
        return;
    };
    let Some(deploy) = rendered_deploy() else {
        return;
    };
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]),
        "default values render no optional objects"
    );
    let deployment = one(&docs, "Deployment");
    assert_hardened(deployment, 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert!(
        strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"])
            .contains(&"--leader-elect".to_string())
    );
    // Same pod hardening and the same grants as deploy/.
    let deploy_pod = &one(&deploy, "Deployment")["spec"]["template"]["spec"];
    let chart_pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(chart_pod["securityContext"], deploy_pod["securityContext"]);
    assert_eq!(
        chart_pod["containers"][0]["securityContext"],
        deploy_pod["containers"][0]["securityContext"]
    );
    assert_eq!(
        chart_pod["containers"][0]["resources"],
        deploy_pod["containers"][0]["resources"]
    );
    assert!(assert_no_wildcards(&docs) >= 10);
    assert_least_privilege(one(&docs, "ClusterRole"), true);
    assert_eq!(
        rule_set(one(&docs, "ClusterRole")),
        rule_set(one(&deploy, "ClusterRole"))
    );
    assert_leader_election_role(one(&docs, "Role"), "t2t-system");
    assert_eq!(rule_set(one(&docs, "Role")), rule_set(one(&deploy, "Role")));
    assert_eq!(
        one(&docs, "NetworkPolicy")["spec"]["egress"],
        one(&deploy, "NetworkPolicy")["spec"]["egress"]
    );
    assert_eq!(
        one(&docs, "NetworkPolicy")["spec"]["ingress"],
        one(&deploy, "NetworkPolicy")["spec"]["ingress"]
    );
    assert_eq!(
        one(&docs, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
    let vap = one(&docs, "ValidatingAdmissionPolicy");
    assert_eq!(
        vap["spec"],
        one(&deploy, "ValidatingAdmissionPolicy")["spec"]
    );
}

#[test]
fn rendered_chart_forces_leader_election_with_more_than_one_replica() {
    let Some(docs) = helm_render(r#"{"replicas": 2, "leaderElection": {"enabled": false}}"#) else {
        return;
    };
    assert_hardened(one(&docs, "Deployment"), 2);
    let Some(single) = helm_render(r#"{"leaderElection": {"enabled": false}}"#) else {
        return;
    };
    let args =
        strings(&one(&single, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(!args.contains(&"--leader-elect".to_string()), "{args:?}");
}

#[test]
fn rendered_chart_with_every_option_on() {
    let all = r#"{"serviceAccount": {"workloadIdentity": {"enabled": true,
                    "clientId": "33333333-3333-3333-3333-333333333333"},
                    "labels": {"team": "platform"}},
                  "metrics": {"serviceMonitor": {"enabled": true}},
                  "prometheusRule": {"enabled": true, "runbookBaseUrl": "https://example.com/docs/operations.md"},
                  "grafanaDashboard": {"enabled": true},
                  "rbac": {"ownedSecretNamespaces": ["migration", "migration-2"]},
                  "nodeSelector": {"kubernetes.io/os": "linux"},
                  "logFormat": "text"}"#;
    let Some(docs) = helm_render(all) else {
        return;
    };
    assert_no_wildcards(&docs);
    // Workload identity: account label + client-id annotation, pod label.
    let sa = one(&docs, "ServiceAccount");
    assert_eq!(
        sa["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    assert_eq!(sa["metadata"]["labels"]["team"], "platform");
    assert_eq!(
        sa["metadata"]["annotations"]["azure.workload.identity/client-id"],
        "33333333-3333-3333-3333-333333333333"
    );
    let deployment = one(&docs, "Deployment");
    assert_hardened(deployment, 1);
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        pod["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    // Owned-Secret writes only in the listed namespaces.
    assert_least_privilege(one(&docs, "ClusterRole"), false);
    let owned: BTreeSet<&str> = of_kind(&docs, "Role")
        .into_iter()
        .filter(|r| grants(r, "", "secrets") == set(&["create", "update", "patch"]))
        .filter_map(|r| r["metadata"]["namespace"].as_str())
        .collect();
    assert_eq!(owned, BTreeSet::from(["migration", "migration-2"]));
    for binding in of_kind(&docs, "RoleBinding") {
        assert_eq!(binding["subjects"][0]["namespace"], "t2t-system");
    }
    // Monitoring objects.
    let sm = one(&docs, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    let rules = &one(&docs, "PrometheusRule")["spec"]["groups"][0]["rules"];
    let runbooks: Vec<&str> = rules
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            r["annotations"]["runbook_url"]
                .as_str()
                .expect("runbook_url")
        })
        .collect();
    assert_eq!(runbooks.len(), 5);
    for url in runbooks {
        assert!(
            url.starts_with("https://example.com/docs/operations.md#t2t"),
            "{url}"
        );
    }
    let dashboard = one(&docs, "ConfigMap");
    let json: Value = serde_json::from_str(
        dashboard["data"]["t2t-operator.json"]
            .as_str()
            .expect("data"),
    )
    .expect("dashboard json");
    assert_eq!(json["uid"], "t2t-operator");
}

/// The chart's defaults and template wiring, checked without rendering (the rendered checks above
/// need the venv; these keep guarding the hardening on a machine without it).
#[test]
fn chart_defaults_and_templates_are_hardened() {
    let values: Value = {
        let v: serde_yaml::Value =
            serde_yaml::from_str(&read(format!("{CHART}/values.yaml"))).expect("values.yaml");
        serde_json::to_value(v).expect("json")
    };
    assert_eq!(values["replicas"], 1);
    assert_eq!(values["strategy"]["type"], "Recreate");
    assert_eq!(values["metrics"]["port"], 8080);
    assert_eq!(
        values["serviceAccount"]["automountServiceAccountToken"],
        true
    );
    // Build the pod the template would render from the defaults and check it like deploy/'s.
    let deployment = serde_json::json!({
        "spec": {
            "replicas": values["replicas"],
            "template": {"spec": {
                "automountServiceAccountToken": true,
                "securityContext": values["podSecurityContext"],
                "containers": [{
                    "args": ["run", "--leader-elect", "--metrics-addr", "0.0.0.0:8080", "--log-format", values["logFormat"]],
                    "ports": [{"name": "metrics", "containerPort": values["metrics"]["port"]}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
                    "resources": values["resources"],
                    "securityContext": values["securityContext"],
                }],
            }},
        }
    });
    assert_hardened(&deployment, 1);
    // ...and the template really wires those values in, with nothing that could undo them.
    let template = read(format!("{CHART}/templates/deployment.yaml"));
    for needle in [
        "toYaml .Values.podSecurityContext",
        "toYaml .Values.securityContext",
        "toYaml .Values.resources",
        "path: /healthz",
        "path: /readyz",
        "port: metrics",
        "automountServiceAccountToken: true",
        "- --leader-elect",
        "- --metrics-addr",
        "0.0.0.0:{{ .Values.metrics.port }}",
        "- --log-format",
        "{{- if $leaderElect }}",
    ] {
        assert!(
            template.contains(needle),
            "deployment template lacks {needle:?}"
        );
    }
    assert!(!template.contains("volumes:"));
    let helpers = read(format!("{CHART}/templates/_helpers.tpl"));
    assert!(
        helpers.contains("or .Values.leaderElection.enabled (gt (int .Values.replicas) 1)"),
        "leader election must be forced on with more than one replica"
    );
}

#[test]
fn chart_rbac_has_no_wildcards_and_matches_deploy() {
    let template = read(format!("{CHART}/templates/rbac.yaml"));
    for line in template.lines().map(str::trim) {
        let is_rule_list = ["apiGroups:", "resources:", "verbs:", "resourceNames:"]
            .iter()
            .any(|k| line.starts_with(k));
        if is_rule_list {
            assert!(!line.contains('*'), "wildcard in chart RBAC: {line}");
        }
        assert!(
            !line.starts_with("- \"*\"") && !line.starts_with("- '*'"),
            "{line}"
        );
    }
    // Render the static parts (everything outside template actions is plain YAML) by replacing
    // the Go template actions, then compare the grants with deploy/.
    let stripped: String = template
        .lines()
        .filter(|l| !l.trim_start().starts_with("{{"))
        .map(|l| {
            let mut out = String::new();
            let mut rest = l;
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find("}}").map(|e| start + e + 2).unwrap();
                out.push('x');
                rest = &rest[end..];
            }
            out.push_str(rest);
            out + "\n"
        })
        .collect();
    let docs = yaml_docs(&stripped);
    assert!(assert_no_wildcards(&docs) >= 10);
    let cluster_role = one(&docs, "ClusterRole");
    assert_least_privilege(cluster_role, true);
    let leader = of_kind(&docs, "Role")
        .into_iter()
        .find(|r| grants(r, "coordination.k8s.io", "leases").contains("create"))
        .expect("leader election Role");
    assert_leader_election_role(leader, "x");
    // The optional per-namespace Role grants only Secret writes.
    let owned = of_kind(&docs, "Role")
        .into_iter()
        .find(|r| !grants(r, "", "secrets").is_empty())
        .expect("owned secrets Role");
    assert_eq!(
        grants(owned, "", "secrets"),
        set(&["create", "update", "patch"])
    );
}

#[test]
fn prometheus_rule_alerts_link_to_existing_runbook_sections() {
    let rule = read(format!("{CHART}/templates/prometheusrule.yaml"));
    let docs = read("docs/operations.md");
    let anchors: BTreeSet<String> = docs
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let alerts: Vec<&str> = rule
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(
        alerts,
        [
            "T2TReconcileErrorRatioHigh",
            "T2TTenantThrottled",
            "T2TObjectStalled",
            "T2TNoSuccessfulReconcile",
            "T2TNoLeader"
        ]
    );
    let runbooks: Vec<&str> = rule
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: \"{{ $runbook }}#"))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert_eq!(runbooks.len(), alerts.len(), "one runbook_url per alert");
    for (alert, anchor) in alerts.iter().zip(&runbooks) {
        assert_eq!(anchor, &alert.to_lowercase());
        assert!(
            anchors.contains(*anchor),
            "docs/operations.md has no section #{anchor}"
        );
    }
    for needle in [
        "t2t_reconcile_errors_total",
        "t2t_tenant_throttled_total",
        "t2t_objects_stalled",
        "for: 15m",
        "for: 30m",
        "for: 10m",
        "max(t2t_leader",
    ] {
        assert!(rule.contains(needle), "prometheusrule.yaml lacks {needle}");
    }
    // Every Stalled reason has its own section.
    for reason in [
        "InvalidSpec",
        "SecretNotFound",
        "CredentialsRejected",
        "PermissionMissing",
        "ConsentMissing",
        "CreateIncomplete",
        "RetryBudgetExhausted",
        "LicensesExhausted",
    ] {
        assert!(
            anchors.contains(&reason.to_lowercase()),
            "docs/operations.md has no section for Stalled reason {reason}"
        );
    }
}

#[test]
fn grafana_dashboard_is_valid_json_with_the_key_panels() {
    let dashboard: Value =
        serde_json::from_str(&read(format!("{CHART}/files/dashboard.json"))).expect("json");
    let text = dashboard.to_string();
    for metric in [
        "t2t_mailboxes",
        "t2t_reconcile_errors_total",
        "t2t_tenant_requests_total",
        "t2t_tenant_throttled_total",
    ] {
        assert!(text.contains(metric), "dashboard lacks {metric}");
    }
}

// ---------------------------------------------------------------------------------------------
// Argo CD health checks

const ARGOCD: &str = "gitops/argocd/resource_customizations";

#[test]
fn argocd_health_checks_pass_their_fixtures() {
    let Some(python) = venv_python("lupa") else {
        return;
    };
    let out = run(Command::new(python).args(["tests/ops/argocd_health.py", ARGOCD]));
    assert!(out.ok, "Argo CD health fixtures failed:\n{}", out.text);
    assert!(out.text.contains("24 passed, 0 failed"), "{}", out.text);
}

#[test]
fn argocd_health_checks_share_one_logic_and_cover_each_outcome() {
    let kinds = ["TenantPair", "MigrationEndpoint", "MigrationBatch"];
    let normalized: Vec<String> = kinds
        .iter()
        .map(|k| {
            let script = read(format!("{ARGOCD}/t2t.dev/{k}/health.lua"));
            let (first, rest) = script.split_once('\n').expect("lines");
            assert!(
                first.contains(&format!("t2t.dev/v1alpha1 {k} ")),
                "{k}: {first}"
            );
            rest.to_string()
        })
        .collect();
    assert!(
        normalized.iter().all(|s| s == &normalized[0]),
        "the three health.lua differ beyond their first line"
    );
    for kind in kinds {
        let tests: Value = {
            let v: serde_yaml::Value =
                serde_yaml::from_str(&read(format!("{ARGOCD}/t2t.dev/{kind}/health_test.yaml")))
                    .expect("health_test.yaml");
            serde_json::to_value(v).expect("json")
        };
        let statuses: BTreeSet<&str> = tests["tests"]
            .as_array()
            .expect("tests")
            .iter()
            .filter_map(|t| t["healthStatus"]["status"].as_str())
            .collect();
        assert_eq!(
            statuses,
            BTreeSet::from(["Degraded", "Healthy", "Progressing", "Suspended"]),
            "{kind}"
        );
        for t in tests["tests"].as_array().unwrap() {
            let input = read(format!(
                "{ARGOCD}/t2t.dev/{kind}/{}",
                t["inputPath"].as_str().unwrap()
            ));
            let obj = &yaml_docs(&input)[0];
            assert_eq!(obj["kind"], kind);
            assert_eq!(obj["apiVersion"], "t2t.dev/v1alpha1");
        }
    }
}
