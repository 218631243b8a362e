//! End-to-end: the real, preinstalled `kubectl` against the in-process emulator, driven the way
//! users drive it. Every assertion is on what kubectl prints. Skipped (loudly) only when
//! kubectl is not installed.

use std::path::PathBuf;
use std::process::{Command, Output};

use t2t_operator::kubeemu::{KubeEmu, KubeEmuConfig};

struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
    _dir: tempfile::TempDir,
}

fn kubectl_present() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        // Written to the stderr handle directly: libtest captures eprintln! of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n\n*** SKIPPING kubectl end-to-end test: `kubectl` is not installed ***\n\n"
        );
    }
    ok
}

impl Kubectl {
    fn new(emu: &KubeEmu) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        emu.write_kubeconfig(&kubeconfig).unwrap();
        Kubectl {
            kubeconfig,
            cache: dir.path().join("cache"),
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout
    }

    /// Runs and requires failure; returns stderr.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    }
}

const TENANT_PAIR: &str = r#"
apiVersion: t2t.dev/v1alpha1
kind: TenantPair
metadata:
  name: contoso-fabrikam
spec:
  source:
    tenantId: 11111111-1111-1111-1111-111111111111
    initialDomain: contoso.onmicrosoft.com
  target:
    tenantId: 22222222-2222-2222-2222-222222222222
    initialDomain: fabrikam.onmicrosoft.com
    credentials:
      clientId: 33333333-3333-3333-3333-333333333333
      certificate:
        secretName: target-cert
"#;

fn crds_yaml() -> String {
    t2t_operator::crdgen::all()
        .iter()
        .map(|c| serde_yaml::to_string(c).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

async fn start() -> (KubeEmu, Kubectl) {
    let emu = KubeEmu::start(KubeEmuConfig::default()).await.unwrap();
    let k = Kubectl::new(&emu);
    (emu, k)
}

/// kubectl blocks; run the synchronous body off the async runtime that serves the emulator.
async fn blocking<F: FnOnce() + Send + 'static>(f: F) {
    tokio::task::spawn_blocking(f).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_and_custom_resources_through_kubectl() {
    if !kubectl_present() {
        return;
    }
    let (emu, k) = start().await;
    blocking(move || {
        assert!(k.ok(&["version"]).contains("Server Version: v1.33"));
        let out = k.ok_in(&["apply", "-f", "-"], Some(&crds_yaml()));
        assert!(out.contains("customresourcedefinition.apiextensions.k8s.io/tenantpairs.t2t.dev created"), "{out}");
        let out = k.ok(&["wait", "--for=condition=Established", "crd/tenantpairs.t2t.dev", "--timeout=10s"]);
        assert!(out.contains("condition met"), "{out}");
        assert!(k.ok(&["api-resources"]).contains("tenantpairs"));
        // RBAC is not enforced; `auth can-i` says so instead of failing.
        assert_eq!(k.ok(&["auth", "can-i", "patch", "tenantpairs"]).trim(), "yes");

        // Client-side apply, then printer columns.
        let out = k.ok_in(&["apply", "-f", "-"], Some(TENANT_PAIR));
        assert!(out.contains("tenantpair.t2t.dev/contoso-fabrikam created"), "{out}");
        let out = k.ok_in(&["apply", "-f", "-"], Some(TENANT_PAIR));
        assert!(out.contains("unchanged"), "{out}");
        let out = k.ok(&["get", "tp"]);
        let header = out.lines().next().unwrap();
        for col in ["NAME", "SOURCE", "TARGET", "READY", "REASON", "SUSPENDED", "SEATS", "AGE"] {
            assert!(header.contains(col), "missing column {col}: {out}");
        }
        assert!(!header.contains("MESSAGE"), "priority-1 column shown without -o wide");
        assert!(k.ok(&["get", "tp", "-o", "wide"]).lines().next().unwrap().contains("MESSAGE"));
        assert!(out.contains("contoso.onmicrosoft.com") && out.contains("fabrikam.onmicrosoft.com"));
        // -A needs row.object.metadata.namespace.
        assert!(k.ok(&["get", "tenantpairs", "-A"]).contains("default "));
        // Defaults applied, status absent, generation 1.
        let yaml = k.ok(&["get", "tp", "contoso-fabrikam", "-o", "yaml"]);
        assert!(yaml.contains("direction: OneWay") && yaml.contains("generation: 1"), "{yaml}");

        // CEL rule rejection, with the real error format.
        let bad = TENANT_PAIR
            .replace("22222222-2222-2222-2222-222222222222", "11111111-1111-1111-1111-111111111111")
            .replace("contoso-fabrikam", "same-tenant");
        let err = k.fails(&["apply", "-f", "-"], Some(&bad));
        assert!(
            err.contains(r#"The TenantPair "same-tenant" is invalid"#)
                && err.contains("spec.source.tenantId and spec.target.tenantId must be different tenants"),
            "{err}"
        );
        // Schema rejection (required field).
        let missing = TENANT_PAIR.replace("      clientId: 33333333-3333-3333-3333-333333333333\n", "");
        let err = k.fails(&["apply", "-f", "-"], Some(&missing.replace("contoso-fabrikam", "nocreds")));
        assert!(err.contains("spec.target.credentials.clientId: Required value"), "{err}");
        // Strict field validation: unknown field is a 400.
        let junk = TENANT_PAIR.replace("contoso-fabrikam", "junk").replace("spec:\n", "spec:\n  bogus: 1\n");
        let err = k.fails(&["apply", "-f", "-"], Some(&junk));
        assert!(err.contains(r#"strict decoding error: unknown field "spec.bogus""#), "{err}");
        // --validate=warn: accepted, the field dropped, kubectl prints the server's Warning.
        let out = k.run(&["apply", "--validate=warn", "-f", "-"], Some(&junk));
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(r#"Warning: unknown field "spec.bogus""#), "{stderr}");
        assert_eq!(k.ok(&["get", "tp", "junk", "-o", "jsonpath={.spec.bogus}"]), "");
        k.ok(&["delete", "tp", "junk"]);

        // label / annotate / selectors.
        assert!(k.ok(&["label", "tp", "contoso-fabrikam", "team=blue"]).contains("labeled"));
        assert!(k.ok(&["annotate", "tp", "contoso-fabrikam", "note=hi"]).contains("annotated"));
        assert!(k.ok(&["get", "tp", "-l", "team=blue", "-o", "name"]).contains("tenantpair.t2t.dev/contoso-fabrikam"));
        assert!(k.ok(&["get", "tp", "-l", "team!=blue", "-o", "name"]).trim().is_empty());

        // Server-side apply after client-side apply (the CSA -> SSA migration) and a conflict.
        let changed = TENANT_PAIR.replace("fabrikam.onmicrosoft.com", "fab2.onmicrosoft.com");
        let out = k.ok_in(&["apply", "--server-side", "-f", "-"], Some(&changed));
        assert!(out.contains("serverside-applied"), "{out}");
        assert!(k.ok(&["get", "tp", "contoso-fabrikam", "-o", "jsonpath={.metadata.generation}"]) == "2");
        k.ok(&["patch", "tp", "contoso-fabrikam", "--type=merge", "-p", r#"{"spec":{"target":{"initialDomain":"other.onmicrosoft.com"}}}"#]);
        let err = k.fails(&["apply", "--server-side", "-f", "-"], Some(&changed));
        assert!(err.contains("conflict with \"kubectl-patch\"") && err.contains(".spec.target.initialDomain"), "{err}");
        let out = k.ok_in(&["apply", "--server-side", "--force-conflicts", "-f", "-"], Some(&changed));
        assert!(out.contains("serverside-applied"), "{out}");
        // dry-run=server changes nothing.
        let dry = changed.replace("fab2.onmicrosoft.com", "dry.onmicrosoft.com");
        k.ok_in(&["apply", "--server-side", "--dry-run=server", "-f", "-"], Some(&dry));
        assert_eq!(
            k.ok(&["get", "tp", "contoso-fabrikam", "-o", "jsonpath={.spec.target.initialDomain}"]),
            "fab2.onmicrosoft.com"
        );

        // Status subresource + wait for a condition.
        k.ok(&["patch", "tp", "contoso-fabrikam", "--subresource=status", "--type=merge", "-p",
            r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Prepared","message":"all set","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#]);
        let out = k.ok(&["wait", "--for=condition=Ready", "tp/contoso-fabrikam", "--timeout=10s"]);
        assert!(out.contains("condition met"), "{out}");
        let row = k.ok(&["get", "tp", "contoso-fabrikam", "--no-headers"]);
        assert!(row.contains("True") && row.contains("Prepared"), "{row}");
        // Spec changes: SSA (2), merge patch (3), forced SSA (4); status writes do not count.
        // (Checked before the replace below, which makes it 5.)
        assert_eq!(k.ok(&["get", "tp", "contoso-fabrikam", "-o", "jsonpath={.metadata.generation}"]), "4");

        // replace fetches the resourceVersion itself; the status survives a main-resource PUT.
        let replaced = changed.replace("contoso.onmicrosoft.com", "contoso2.onmicrosoft.com");
        let out = k.ok_in(&["replace", "-f", "-"], Some(&replaced));
        assert!(out.contains("tenantpair.t2t.dev/contoso-fabrikam replaced"), "{out}");
        let row = k.ok(&["get", "tp", "contoso-fabrikam", "--no-headers"]);
        assert!(row.contains("contoso2.onmicrosoft.com") && row.contains("Prepared"), "{row}");

        // explain reads the OpenAPI v3 schema.
        let out = k.ok(&["explain", "tenantpair.spec.direction"]);
        assert!(out.contains("OneWay") && out.contains("Bidirectional"), "{out}");

        // describe works on CRs.
        assert!(k.ok(&["describe", "tp", "contoso-fabrikam"]).contains("Name:         contoso-fabrikam"));

        // A finalizer holds deletion; the object stays with a deletionTimestamp.
        k.ok(&["patch", "tp", "contoso-fabrikam", "--type=merge", "-p", r#"{"metadata":{"finalizers":["t2t.dev/cleanup"]}}"#]);
        k.ok(&["delete", "tp", "contoso-fabrikam", "--wait=false"]);
        let ts = k.ok(&["get", "tp", "contoso-fabrikam", "-o", "jsonpath={.metadata.deletionTimestamp}"]);
        assert!(!ts.is_empty());
        k.ok(&["patch", "tp", "contoso-fabrikam", "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]);
        let err = k.fails(&["get", "tp", "contoso-fabrikam"], None);
        assert!(err.contains(r#"tenantpairs.t2t.dev "contoso-fabrikam" not found"#), "{err}");
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_ins_through_kubectl() {
    if !kubectl_present() {
        return;
    }
    let (emu, k) = start().await;
    blocking(move || {
        // Protobuf request bodies.
        assert!(k.ok(&["create", "namespace", "team-a"]).contains("namespace/team-a created"));
        let out = k.ok(&["create", "secret", "generic", "creds", "-n", "team-a", "--from-literal=password=s3cret"]);
        assert!(out.contains("secret/creds created"), "{out}");
        let err = k.fails(&["create", "secret", "generic", "creds", "-n", "team-a", "--from-literal=a=b"], None);
        assert!(err.contains(r#"secrets "creds" already exists"#), "{err}");
        assert_eq!(k.ok(&["get", "secret", "creds", "-n", "team-a", "-o", "jsonpath={.data.password}"]), "czNjcmV0");
        let out = k.ok(&["get", "secrets", "-n", "team-a"]);
        assert!(out.contains("Opaque") && out.contains("TYPE") && out.contains("DATA"), "{out}");
        k.ok(&["create", "configmap", "settings", "-n", "team-a", "--from-literal=k=v"]);
        k.ok(&["create", "serviceaccount", "robot", "-n", "team-a"]);

        // Client-side apply twice (the second one is a strategic merge patch).
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: team-a\ndata:\n  a: \"1\"\n  b: \"2\"\n";
        k.ok_in(&["apply", "-f", "-"], Some(cm));
        let out = k.ok_in(&["apply", "-f", "-"], Some(&cm.replace("  b: \"2\"\n", "  c: \"3\"\n")));
        assert!(out.contains("configured"), "{out}");
        assert_eq!(k.ok(&["get", "cm", "app", "-n", "team-a", "-o", "jsonpath={.data}"]), r#"{"a":"1","c":"3"}"#);

        // Built-ins are decoded strictly too: kubectl sends fieldValidation=Strict.
        let err = k.fails(&["apply", "-f", "-"], Some(&cm.replace("\ndata:", "\nbogus: 1\ndata:")));
        assert!(err.contains(r#"strict decoding error: unknown field "bogus""#), "{err}");

        // A Deployment is stored generically (no controller runs) and scale works.
        let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: team-a\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1\n";
        k.ok_in(&["apply", "-f", "-"], Some(deploy));
        k.ok_in(&["apply", "-f", "-"], Some(&deploy.replace("nginx:1", "nginx:2")));
        assert_eq!(k.ok(&["get", "deploy", "web", "-n", "team-a", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]), "nginx:2");
        k.ok(&["scale", "deploy", "web", "-n", "team-a", "--replicas=3"]);
        assert_eq!(k.ok(&["get", "deploy", "web", "-n", "team-a", "-o", "jsonpath={.spec.replicas}"]), "3");

        // Deleting the namespace removes its content and then the namespace.
        k.ok(&["delete", "namespace", "team-a", "--timeout=20s"]);
        let err = k.fails(&["get", "namespace", "team-a"], None);
        assert!(err.contains(r#"namespaces "team-a" not found"#), "{err}");
        let out = k.ok(&["get", "ns"]);
        assert!(out.contains("default") && out.contains("kube-system") && out.contains("Active"), "{out}");
        let err = k.fails(&["delete", "namespace", "kube-system"], None);
        assert!(err.contains(r#"namespaces "kube-system" is forbidden: this namespace may not be deleted"#), "{err}");
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_streams_changes() {
    if !kubectl_present() {
        return;
    }
    let (emu, k) = start().await;
    let kc = k.kubeconfig.clone();
    let cache = k.cache.clone();
    blocking(move || {
        k.ok(&["create", "configmap", "w1", "--from-literal=a=1"]);
        let child = Command::new("timeout")
            .args(["10", "kubectl", "--kubeconfig"])
            .arg(&kc)
            .arg("--cache-dir")
            .arg(&cache)
            .args(["get", "cm", "-w", "--output-watch-events"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2000));
        k.ok(&["label", "cm", "w1", "x=y"]);
        k.ok(&["create", "configmap", "w2", "--from-literal=b=2"]);
        k.ok(&["delete", "cm", "w1"]);
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("ADDED") && text.contains("w1"), "{text}");
        assert!(text.contains("MODIFIED"), "{text}");
        assert!(text.contains("DELETED"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.contains("ADDED") && l.contains("w2")),
            "{text}"
        );
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_shows_events_from_kube_recorder() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Resource;
    use kube::api::{Api, PostParams};
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    if !kubectl_present() {
        return;
    }
    let (emu, k) = start().await;
    let client = emu.client().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "subject"}})).unwrap(),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "t2t-operator".into(),
            instance: None,
        },
    );
    recorder
        .publish(
            &Event {
                type_: EventType::Warning,
                reason: "CredentialsInvalid".into(),
                note: Some("secret target-cert not found".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &cm.object_ref(&()),
        )
        .await
        .unwrap();
    // The same for one of our own custom resources, as the operator's Recorder will do.
    emu.install_crds(t2t_operator::crdgen::all()).await.unwrap();
    let tps: Api<t2t_operator::api::TenantPair> =
        Api::namespaced(emu.client().await.unwrap(), "default");
    let tp = tps
        .create(
            &PostParams::default(),
            &serde_yaml::from_str(TENANT_PAIR).unwrap(),
        )
        .await
        .unwrap();
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "ScopeGroupCreated".into(),
                note: Some("created T2T-Migration-Scope in contoso".into()),
                action: "Reconcile".into(),
                secondary: None,
            },
            &tp.object_ref(&()),
        )
        .await
        .unwrap();
    blocking(move || {
        let out = k.ok(&["describe", "tenantpair", "contoso-fabrikam"]);
        assert!(
            out.contains("ScopeGroupCreated")
                && out.contains("created T2T-Migration-Scope in contoso"),
            "{out}"
        );
        let out = k.ok(&["describe", "configmap", "subject"]);
        assert!(out.contains("Events:"), "{out}");
        assert!(
            out.contains("Warning")
                && out.contains("CredentialsInvalid")
                && out.contains("secret target-cert not found"),
            "{out}"
        );
        let out = k.ok(&["get", "events"]);
        assert!(
            out.contains("CredentialsInvalid") && out.contains("configmap/subject"),
            "{out}"
        );
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_kustomization_with_crds_rbac_and_deployment() {
    if !kubectl_present() {
        return;
    }
    let (emu, k) = start().await;
    blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("crds.yaml"), crds_yaml()).unwrap();
        std::fs::write(
            p.join("operator.yaml"),
            r#"apiVersion: v1
kind: Namespace
metadata:
  name: t2t-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: t2t-operator
  namespace: t2t-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: t2t-operator
rules:
- apiGroups: ["t2t.dev"]
  resources: ["tenantpairs", "tenantpairs/status"]
  verbs: ["get", "list", "watch", "patch", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: t2t-operator
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: t2t-operator
subjects:
- kind: ServiceAccount
  name: t2t-operator
  namespace: t2t-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: t2t-operator
  namespace: t2t-system
spec:
  replicas: 1
  selector:
    matchLabels: {app: t2t-operator}
  template:
    metadata:
      labels: {app: t2t-operator}
    spec:
      serviceAccountName: t2t-operator
      containers:
      - name: operator
        image: t2t-operator:dev
        args: ["run"]
        ports:
        - containerPort: 8080
          name: metrics
---
apiVersion: v1
kind: Service
metadata:
  name: t2t-operator-metrics
  namespace: t2t-system
spec:
  selector: {app: t2t-operator}
  ports:
  - port: 8080
    targetPort: metrics
"#,
        )
        .unwrap();
        std::fs::write(
            p.join("kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- crds.yaml\n- operator.yaml\ncommonLabels:\n  app.kubernetes.io/part-of: t2t\n",
        )
        .unwrap();
        let dir_arg = p.to_str().unwrap();
        let out = k.ok(&["apply", "-k", dir_arg]);
        for want in [
            "customresourcedefinition.apiextensions.k8s.io/tenantpairs.t2t.dev created",
            "namespace/t2t-system created",
            "serviceaccount/t2t-operator created",
            "clusterrole.rbac.authorization.k8s.io/t2t-operator created",
            "clusterrolebinding.rbac.authorization.k8s.io/t2t-operator created",
            "deployment.apps/t2t-operator created",
            "service/t2t-operator-metrics created",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
        // Re-applying is a no-op for every object.
        let out = k.ok(&["apply", "-k", dir_arg]);
        assert!(!out.contains("configured") && out.contains("unchanged"), "{out}");
        let out = k.ok(&["get", "deploy,svc,sa", "-n", "t2t-system", "-l", "app.kubernetes.io/part-of=t2t"]);
        assert!(out.contains("deployment.apps/t2t-operator") && out.contains("service/t2t-operator-metrics"), "{out}");
        assert!(out.contains("8080/TCP") && out.contains("ClusterIP") && out.contains("0/1"), "{out}");
        // Server-side apply of the same kustomization takes over without conflicts.
        let out = k.ok(&["apply", "--server-side", "-k", dir_arg]);
        assert!(out.contains("serverside-applied"), "{out}");
        k.ok(&["delete", "-k", dir_arg, "--timeout=30s"]);
        let err = k.fails(&["get", "crd", "tenantpairs.t2t.dev"], None);
        assert!(err.contains("not found"), "{err}");
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_over_https() {
    if !kubectl_present() {
        return;
    }
    let emu = KubeEmu::start(KubeEmuConfig {
        tls: true,
        ..KubeEmuConfig::default()
    })
    .await
    .unwrap();
    let k = Kubectl::new(&emu);
    blocking(move || {
        assert!(k.ok(&["get", "ns"]).contains("kube-system"));
        assert!(
            k.ok(&["create", "configmap", "c", "--from-literal=a=b"])
                .contains("created")
        );
        // wait --for=delete returns once the object is gone.
        k.ok(&[
            "patch",
            "cm",
            "c",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["x.io/hold"]}}"#,
        ]);
        k.ok(&["delete", "cm", "c", "--wait=false"]);
        let kc = k.kubeconfig.clone();
        let cache = k.cache.clone();
        let waiter = std::thread::spawn(move || {
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kc)
                .arg("--cache-dir")
                .arg(&cache)
                .args(["wait", "--for=delete", "cm/c", "--timeout=20s"])
                .output()
                .unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(1500));
        k.ok(&[
            "patch",
            "cm",
            "c",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ]);
        let out = waiter.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // (If kubectl started after the object went, it succeeds without printing.)
        // A failed JSON patch test is a 422 Invalid carrying the patch error.
        k.ok(&["create", "configmap", "d", "--from-literal=a=b"]);
        let err = k.fails(
            &[
                "patch",
                "cm",
                "d",
                "--type=json",
                "-p",
                r#"[{"op":"test","path":"/data/a","value":"zzz"}]"#,
            ],
            None,
        );
        assert!(
            err.contains("The request is invalid") && err.contains("testing value /data/a failed"),
            "{err}"
        );
    })
    .await;
    emu.shutdown().await;
}
