//! kube-rs 5 against the emulator: object semantics (resourceVersion, 409, generation, status
//! isolation, finalizers), patches, SSA, selectors, watches (bookmarks, 410, streaming lists),
//! events, leases, concurrency, and a small Controller reaching steady state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use t2t_operator::kubeemu::{KubeEmu, KubeEmuConfig};

#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#
)]
pub struct WidgetSpec {
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    pub observed_generation: Option<i64>,
    pub ready: bool,
}

async fn start() -> (KubeEmu, Client) {
    let emu = KubeEmu::start(KubeEmuConfig {
        bookmark_interval: Duration::from_millis(500),
        ..KubeEmuConfig::default()
    })
    .await
    .unwrap();
    let client = emu.client().await.unwrap();
    (emu, client)
}

async fn install_widget_crd(client: &Client) -> Api<Widget> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
    let established = await_condition(
        crds,
        "widgets.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(5), established)
        .await
        .unwrap()
        .unwrap();
    Api::namespaced(client.clone(), "default")
}

fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size, color: None })
}

#[tokio::test]
async fn object_semantics() {
    let (emu, client) = start().await;
    let widgets = install_widget_crd(&client).await;

    let w = widgets
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    assert!(w.metadata.uid.is_some());
    let rv1 = w.resource_version().unwrap();

    // Duplicate create.
    let err = widgets
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");

    // Replace bumps generation; a stale replace is 409 with the verbatim message.
    let mut w2 = w.clone();
    w2.spec.size = 2;
    let w2 = widgets
        .replace("w1", &PostParams::default(), &w2)
        .await
        .unwrap();
    assert_eq!(w2.metadata.generation, Some(2));
    let mut stale = w.clone();
    stale.spec.size = 3;
    let err = widgets
        .replace("w1", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    match &err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(
                s.message,
                "Operation cannot be fulfilled on widgets.example.com \"w1\": the object has been modified; please apply your changes to the latest version and try again"
            );
        }
        other => panic!("unexpected {other}"),
    }

    // Status through the main resource is ignored; through /status it does not bump generation.
    let mut with_status = w2.clone();
    with_status.status = Some(WidgetStatus {
        observed_generation: Some(9),
        ready: true,
    });
    let after = widgets
        .replace("w1", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(after.status, None);
    assert_eq!(
        after.resource_version(),
        w2.resource_version(),
        "no-op must not bump RV"
    );
    let st = widgets
        .patch_status(
            "w1",
            &PatchParams::apply("ctl").force(),
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "status": {"observedGeneration": 2, "ready": true}})),
        )
        .await
        .unwrap();
    assert!(st.status.as_ref().unwrap().ready);
    assert_eq!(st.metadata.generation, Some(2));
    // Identical status apply is a no-op (same RV).
    let again = widgets
        .patch_status(
            "w1",
            &PatchParams::apply("ctl").force(),
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "status": {"observedGeneration": 2, "ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(again.resource_version(), st.resource_version());
    assert_ne!(st.resource_version().unwrap(), rv1);
    let mf = again.metadata.managed_fields.unwrap();
    assert!(
        mf.iter()
            .any(|e| e.manager.as_deref() == Some("ctl")
                && e.subresource.as_deref() == Some("status"))
    );

    // Finalizer helper style JSON patch with the `test` op.
    let p: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/cleanup"]}
    ]))
    .unwrap();
    widgets
        .patch("w1", &PatchParams::default(), &Patch::Json::<()>(p))
        .await
        .unwrap();
    // Deleting holds the object with a deletionTimestamp; no new finalizers may be added.
    let del = widgets
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap();
    let held = del
        .left()
        .expect("object returned while finalizers pending");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.generation, Some(3));
    let err = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/cleanup", "other/x"]}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no new finalizers can be added if the object is being deleted"),
        "{err}"
    );
    widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(widgets.get_opt("w1").await.unwrap().is_none());

    // Strategic merge patch on a CR is 415.
    widgets
        .create(&PostParams::default(), &widget("w2", 1))
        .await
        .unwrap();
    let err = widgets
        .patch(
            "w2",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 415),
        "{err}"
    );

    // Schema validation errors surface the apiserver wording.
    let err = widgets
        .patch(
            "w2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": "big"}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#),
        "{err}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn selectors_paging_and_namespaces() {
    let (emu, client) = start().await;
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    for i in 0..25 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("cm-{i:02}"),
                "labels": {"tier": tier}}, "data": {"i": i.to_string()}}))
            .unwrap(),
        )
        .await
        .unwrap();
    }
    let even = cms
        .list(&ListParams::default().labels("tier=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 13);
    let named = cms
        .list(&ListParams::default().fields("metadata.name=cm-03"))
        .await
        .unwrap();
    assert_eq!(named.items.len(), 1);
    let err = cms
        .list(&ListParams::default().fields("data.i=3"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("field label not supported: data.i"),
        "{err}"
    );

    // Paging with limit/continue.
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(10);
    loop {
        let page = cms.list(&lp).await.unwrap();
        seen.extend(page.items.iter().map(|c| c.name_any()));
        match page.metadata.continue_.clone().filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    // A continue token older than the retained history is 410 Expired.
    let page = cms.list(&ListParams::default().limit(5)).await.unwrap();
    let token = page.metadata.continue_.clone().unwrap();
    cms.patch(
        "cm-00",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "y"}})),
    )
    .await
    .unwrap();
    emu.compact();
    let err = cms
        .list(&ListParams::default().limit(5).continue_token(&token))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 410);
            assert!(
                s.message
                    .starts_with("The provided continue parameter is too old")
            );
        }
        other => panic!("unexpected {other}"),
    }

    // Secrets: stringData is merged into data and type defaults to Opaque.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "team");
    let s = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(s.data.unwrap()["k"].0, b"v".to_vec());
    assert!(s.string_data.is_none());
    let err = secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"type": "kubernetes.io/tls"})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("type: Invalid value: \"kubernetes.io/tls\": field is immutable"),
        "{err}"
    );
    secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"immutable": true})),
        )
        .await
        .unwrap();
    let err = secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"k": "w"}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );

    // Namespace mismatch and missing namespace.
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let err = other
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(r#"namespaces "nope" not found"#),
        "{err}"
    );

    // delete_collection by label.
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=odd"),
    )
    .await
    .unwrap();
    assert_eq!(
        cms.list(&ListParams::default()).await.unwrap().items.len(),
        13
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn watches_bookmarks_expiry_and_streaming_lists() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mk = |n: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": n}, "data": {"a": "1"}})).unwrap()
    };
    let c1 = cms.create(&PostParams::default(), &mk("a")).await.unwrap();
    let rv = c1.resource_version().unwrap();

    // Replay from an RV, with bookmarks.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &mk("b")).await.unwrap();
    let mut added = false;
    let mut bookmark = false;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(6), stream.next())
        .await
        .unwrap()
    {
        match ev.unwrap() {
            WatchEvent::Added(c) => {
                assert_eq!(c.name_any(), "b");
                added = true;
            }
            WatchEvent::Bookmark(_) => bookmark = true,
            other => panic!("unexpected {other:?}"),
        }
        if added && bookmark {
            break;
        }
    }
    assert!(added && bookmark);

    // After compaction, an old RV gets 410 inside the stream.
    emu.compact();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }

    // Streaming lists reach InitDone.
    let mut w = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), w.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(c) => names.push(c.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    names.sort();
    assert_eq!(names, vec!["a", "b"]);

    // Selector transitions: leaving the selector is DELETED, entering is ADDED.
    let mut sel = cms
        .watch(&WatchParams::default().labels("keep=yes"), "0")
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"keep": "yes"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"keep": "no"}}})),
    )
    .await
    .unwrap();
    let first = sel.next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Added(_)), "{first:?}");
    let second = sel.next().await.unwrap().unwrap();
    assert!(matches!(second, WatchEvent::Deleted(_)), "{second:?}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_read_modify_write_clients_lose_no_update() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "counter"}, "data": {"n": "0"}}))
            .unwrap(),
    )
    .await
    .unwrap();
    let conflicts = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let cms = cms.clone();
        let conflicts = conflicts.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                loop {
                    let mut cm = cms.get("counter").await.unwrap();
                    let data = cm.data.get_or_insert_with(BTreeMap::new);
                    let n: u64 = data["n"].parse().unwrap();
                    data.insert("n".into(), (n + 1).to_string());
                    match cms.replace("counter", &PostParams::default(), &cm).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 409 => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let cm = cms.get("counter").await.unwrap();
    assert_eq!(cm.data.unwrap()["n"], "200");
    assert!(conflicts.load(Ordering::Relaxed) > 0, "expected some 409s");
    emu.shutdown().await;
}

#[tokio::test]
async fn events_and_leases() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "subject"}})).unwrap(),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "test-controller".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "Prepared".into(),
        note: Some("all good".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    // The core view, filtered like `kubectl describe`.
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let list = core
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=ConfigMap,involvedObject.name=subject,involvedObject.uid={}",
            cm.uid().unwrap()
        )))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.message.as_deref(), Some("all good"));
    assert_eq!(e.reason.as_deref(), Some("Prepared"));
    // Repeats are counted in `series` (the Recorder's merge patch), as on a real cluster.
    assert_eq!(e.series.as_ref().and_then(|s| s.count), Some(2));

    // Leases (leader election).
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let l = leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "leader"},
                "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut l2 = l.clone();
    l2.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace("leader", &PostParams::default(), &l2)
        .await
        .unwrap();
    let err = leases
        .replace("leader", &PostParams::default(), &l)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409));
    emu.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// A small controller: finalizer, owned ConfigMap (SSA), SSA status, events.

#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<kube::Error>>),
}

struct Ctx {
    client: Client,
    recorder: Recorder,
    reconciles: AtomicUsize,
    cleanups: AtomicUsize,
}

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let ns = w.namespace().unwrap();
    let api: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, "example.com/cleanup", w, |ev| async {
        match ev {
            FinalizerEvent::Apply(w) => {
                let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
                let owner = w.controller_owner_ref(&()).unwrap();
                let child = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("{}-child", w.name_any()), "ownerReferences": [owner]},
                    "data": {"size": w.spec.size.to_string()}});
                cms.patch(
                    &format!("{}-child", w.name_any()),
                    &PatchParams::apply("widget-controller").force(),
                    &Patch::Apply(child),
                )
                .await?;
                let status = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                    "status": {"observedGeneration": w.metadata.generation, "ready": true}});
                api.patch_status(
                    &w.name_any(),
                    &PatchParams::apply("widget-controller").force(),
                    &Patch::Apply(status),
                )
                .await?;
                ctx.recorder
                    .publish(
                        &Event {
                            type_: EventType::Normal,
                            reason: "Reconciled".into(),
                            note: Some(format!("size {}", w.spec.size)),
                            action: "Reconcile".into(),
                            secondary: None,
                        },
                        &w.object_ref(&()),
                    )
                    .await?;
                Ok(Action::await_change())
            }
            FinalizerEvent::Cleanup(_) => {
                ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)))
}

fn error_policy(_: Arc<Widget>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn settle(ctx: &Ctx) -> usize {
    // Steady state: the reconcile count stops moving.
    let mut last = ctx.reconciles.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = ctx.reconciles.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reaches_steady_state_and_recovers_from_410() {
    let (emu, client) = start().await;
    let widgets = install_widget_crd(&client).await;
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "widget-controller".into(),
                instance: None,
            },
        ),
        reconciles: AtomicUsize::new(0),
        cleanups: AtomicUsize::new(0),
    });
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    widgets
        .create(&PostParams::default(), &widget("w", 3))
        .await
        .unwrap();
    let w_api = widgets.clone();
    for _ in 0..100 {
        if let Some(w) = w_api.get_opt("w").await.unwrap()
            && w.status.as_ref().is_some_and(|s| s.ready)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let steady = settle(&ctx).await;
    assert!(
        steady <= 4,
        "reconciled {steady} times for one object: a write is not a no-op"
    );
    let w = widgets.get("w").await.unwrap();
    assert_eq!(w.finalizers(), &["example.com/cleanup".to_string()]);
    assert_eq!(w.status.unwrap().observed_generation, Some(1));
    assert_eq!(cms.get("w-child").await.unwrap().data.unwrap()["size"], "3");

    // Spec change: observedGeneration follows, the child is updated.
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}})),
        )
        .await
        .unwrap();
    settle(&ctx).await;
    let w = widgets.get("w").await.unwrap();
    assert_eq!(w.metadata.generation, Some(2));
    assert_eq!(w.status.unwrap().observed_generation, Some(2));

    // Force every watch to end and every resume to hit 410: the controller relists and
    // still sees the next change.
    emu.compact();
    tokio::time::sleep(Duration::from_millis(500)).await;
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 7}})),
        )
        .await
        .unwrap();
    let w_api = widgets.clone();
    let mut ok = false;
    for _ in 0..100 {
        let w = w_api.get("w").await.unwrap();
        if w.status.as_ref().and_then(|s| s.observed_generation) == Some(3) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "controller did not recover after 410");
    assert_eq!(cms.get("w-child").await.unwrap().data.unwrap()["size"], "7");

    // Events are visible in the core view.
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let evs = core
        .list(&ListParams::default().fields("involvedObject.name=w"))
        .await
        .unwrap();
    assert!(!evs.items.is_empty());

    // Delete: cleanup runs, the finalizer goes, the object and (by GC) its child disappear.
    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    let c = ctx.clone();
    wait_for("cleanup", || c.cleanups.load(Ordering::SeqCst) >= 1).await;
    for _ in 0..100 {
        if widgets.get_opt("w").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(widgets.get_opt("w").await.unwrap().is_none());
    assert!(
        cms.get_opt("w-child").await.unwrap().is_none(),
        "GC of owned child"
    );
    handle.abort();
    emu.shutdown().await;
}

#[tokio::test]
async fn crd_deletion_removes_instances_and_discovery() {
    let (emu, client) = start().await;
    let widgets = install_widget_crd(&client).await;
    widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut held = widget("b", 1);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    widgets.create(&PostParams::default(), &held).await.unwrap();
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    assert!(discovery.has_group("example.com"));

    let mut stream = widgets
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .unwrap()
        .boxed();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    // The CR without finalizers goes at once; the held one waits, and so does the CRD.
    assert!(widgets.get_opt("a").await.unwrap().is_none());
    let b = widgets.get("b").await.unwrap();
    assert!(b.metadata.deletion_timestamp.is_some());
    let crd = crds.get("widgets.example.com").await.unwrap();
    assert!(crd.metadata.deletion_timestamp.is_some());
    widgets
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(crds.get_opt("widgets.example.com").await.unwrap().is_none());
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    assert!(!discovery.has_group("example.com"));
    // The open watch saw the deletions and then ended.
    let mut deleted = 0;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
    {
        if let WatchEvent::Deleted(_) = ev.unwrap() {
            deleted += 1;
        }
    }
    assert_eq!(deleted, 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_watchers_all_see_every_change() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut streams = Vec::new();
    for _ in 0..20 {
        streams.push(
            cms.watch(&WatchParams::default().timeout(30), "0")
                .await
                .unwrap()
                .boxed(),
        );
    }
    for i in 0..10 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    for mut s in streams {
        let mut n = 0;
        while n < 10 {
            match tokio::time::timeout(Duration::from_secs(5), s.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
            {
                WatchEvent::Added(_) => n += 1,
                WatchEvent::Bookmark(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn https_with_generated_ca() {
    let emu = KubeEmu::start(KubeEmuConfig {
        tls: true,
        ..KubeEmuConfig::default()
    })
    .await
    .unwrap();
    assert!(emu.url().starts_with("https://127.0.0.1:"));
    assert!(emu.kubeconfig_yaml().contains("certificate-authority-data"));
    let client = emu.client().await.unwrap();
    let ns: Api<Namespace> = Api::all(client.clone());
    let list = ns.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 4);
    // Watches work over TLS too.
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut s = cms
        .watch(&WatchParams::default().timeout(10), "0")
        .await
        .unwrap()
        .boxed();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "tls"}})).unwrap(),
    )
    .await
    .unwrap();
    loop {
        match s.next().await.unwrap().unwrap() {
            WatchEvent::Added(c) => {
                assert_eq!(c.name_any(), "tls");
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn metadata_only_reads_and_watches() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "m", "labels": {"a": "b"}}, "data": {"big": "x"}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let meta = cms.get_metadata("m").await.unwrap();
    assert_eq!(meta.labels()["a"], "b");
    let list = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    let mut w = cms
        .watch_metadata(&WatchParams::default().timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    match w.next().await.unwrap().unwrap() {
        WatchEvent::Added(m) => assert_eq!(m.name_any(), "m"),
        other => panic!("unexpected {other:?}"),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn project_crds_work_with_typed_clients() {
    use t2t_operator::api::TenantPair;
    let (emu, client) = start().await;
    emu.install_crds(t2t_operator::crdgen::all()).await.unwrap();
    // Idempotent, like re-applying the manifests.
    emu.install_crds(t2t_operator::crdgen::all()).await.unwrap();
    let tps: Api<TenantPair> = Api::namespaced(client.clone(), "default");
    let tp: TenantPair = serde_json::from_value(json!({
        "apiVersion": "t2t.dev/v1alpha1", "kind": "TenantPair",
        "metadata": {"name": "contoso-fabrikam"},
        "spec": {
            "source": {"tenantId": "11111111-1111-1111-1111-111111111111", "initialDomain": "contoso.onmicrosoft.com"},
            "target": {"tenantId": "22222222-2222-2222-2222-222222222222", "initialDomain": "fabrikam.onmicrosoft.com",
                       "credentials": {"clientId": "33333333-3333-3333-3333-333333333333",
                                       "certificate": {"secretName": "cert"}}}}}))
    .unwrap();
    let created = tps.create(&PostParams::default(), &tp).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let status = json!({"apiVersion": "t2t.dev/v1alpha1", "kind": "TenantPair", "status": {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "False", "reason": "CredentialsMissing",
                        "message": "secret cert not found", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    let after = tps
        .patch_status(
            "contoso-fabrikam",
            &PatchParams::apply("t2t-operator").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    let st = after.status.clone().unwrap();
    assert_eq!(st.conditions[0].reason, "CredentialsMissing");
    let again = tps
        .patch_status(
            "contoso-fabrikam",
            &PatchParams::apply("t2t-operator").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(again.resource_version(), after.resource_version());
    // The same tenant on both sides is rejected by the CRD's CEL rule.
    let err = tps
        .patch(
            "contoso-fabrikam",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"target": {"tenantId": "11111111-1111-1111-1111-111111111111"}}}),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("spec.source.tenantId and spec.target.tenantId must be different tenants"),
        "{err}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn state_survives_a_restart_with_persist_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = KubeEmuConfig {
        persist_dir: Some(dir.path().to_path_buf()),
        ..KubeEmuConfig::default()
    };
    let emu = KubeEmu::start(config.clone()).await.unwrap();
    let client = emu.client().await.unwrap();
    let widgets = install_widget_crd(&client).await;
    let w = widgets
        .create(&PostParams::default(), &widget("keep", 4))
        .await
        .unwrap();
    emu.shutdown().await;

    let emu = KubeEmu::start(config).await.unwrap();
    let client = emu.client().await.unwrap();
    let widgets: Api<Widget> = Api::namespaced(client, "default");
    let back = widgets.get("keep").await.unwrap();
    assert_eq!(back.uid(), w.uid());
    assert_eq!(back.spec.size, 4);
    // The resourceVersion counter continues; old watch positions are expired.
    let next = widgets
        .create(&PostParams::default(), &widget("next", 1))
        .await
        .unwrap();
    assert!(
        next.resource_version().unwrap().parse::<u64>().unwrap()
            > w.resource_version().unwrap().parse::<u64>().unwrap()
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_see_every_concurrent_write_in_resource_version_order() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let start_rv = emu.resource_version().to_string();
    let mut watchers = Vec::new();
    for _ in 0..5 {
        let s = cms
            .watch(&WatchParams::default().timeout(60), &start_rv)
            .await
            .unwrap()
            .boxed();
        watchers.push(tokio::spawn(async move {
            let mut s = s;
            let mut last = 0u64;
            let mut count = 0;
            while count < 5 * 41 {
                match s.next().await.unwrap().unwrap() {
                    WatchEvent::Added(c) | WatchEvent::Modified(c) => {
                        let rv: u64 = c.resource_version().unwrap().parse().unwrap();
                        assert!(
                            rv > last,
                            "resourceVersions must increase: {rv} after {last}"
                        );
                        last = rv;
                        count += 1;
                    }
                    WatchEvent::Bookmark(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            count
        }));
    }
    let mut writers = Vec::new();
    for w in 0..5 {
        let cms = cms.clone();
        writers.push(tokio::spawn(async move {
            let name = format!("w{w}");
            cms.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}, "data": {"n": "0"}}))
                    .unwrap(),
            )
            .await
            .unwrap();
            for i in 1..=40 {
                cms.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"n": i.to_string()}})),
                )
                .await
                .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for w in watchers {
        let n = tokio::time::timeout(Duration::from_secs(20), w)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 205);
    }
    emu.shutdown().await;
}
