//! The wire format at the HTTP level: discovery content types, status codes and `Status`
//! bodies for the error catalog, watch framing.

use serde_json::{Value, json};
use t2t_operator::kubeemu::{KubeEmu, KubeEmuConfig};

fn http_client() -> reqwest::Client {
    // reqwest is built without a default rustls provider in this project; plain HTTP still
    // needs one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn send(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let client = http_client();
    let mut rb = client.request(method, url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let code = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (code, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn discovery_and_error_catalog_on_the_wire() {
    let emu = KubeEmu::start(KubeEmuConfig::default()).await.unwrap();
    let u = emu.url();
    let get = reqwest::Method::GET;

    let (code, _, body) = send(get.clone(), &format!("{u}/version"), &[], None).await;
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["minor"], "33");

    let agg =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let (code, ct, body) = send(get.clone(), &format!("{u}/apis"), &[("Accept", agg)], None).await;
    assert_eq!(code, 200);
    assert_eq!(
        ct,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["kind"],
        "APIGroupDiscoveryList"
    );
    let (_, ct, body) = send(get.clone(), &format!("{u}/api"), &[], None).await;
    assert_eq!(ct, "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["kind"],
        "APIVersions"
    );

    let (code, _, _) = send(get.clone(), &format!("{u}/openapi/v2"), &[], None).await;
    assert_eq!(code, 404);
    let (code, _, body) = send(get.clone(), &format!("{u}/openapi/v3"), &[], None).await;
    assert_eq!(code, 200);
    assert!(body.contains("apis/apps/v1"));

    let (code, _, body) = send(
        get.clone(),
        &format!("{u}/apis/nope.io/v1/things"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 404);
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["reason"], "NotFound");
    assert_eq!(
        st["message"],
        "the server could not find the requested resource"
    );

    let (code, _, body) = send(
        get.clone(),
        &format!("{u}/api/v1/namespaces/default/secrets/missing"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 404);
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["message"], r#"secrets "missing" not found"#);
    assert_eq!(st["details"], json!({"name": "missing", "kind": "secrets"}));

    let (code, _, _) = send(
        reqwest::Method::POST,
        &format!("{u}/api/v1/namespaces/default/configmaps/x"),
        &[("Content-Type", "application/json")],
        Some("{}"),
    )
    .await;
    assert_eq!(code, 405);

    let (code, _, body) = send(
        get.clone(),
        &format!("{u}/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20b"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");

    // Create, then an unknown patch content type is 415.
    let (code, _, _) = send(
        reqwest::Method::POST,
        &format!("{u}/api/v1/namespaces/default/configmaps?fieldManager=test"),
        &[("Content-Type", "application/json")],
        Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}}"#),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _, body) = send(
        reqwest::Method::PATCH,
        &format!("{u}/api/v1/namespaces/default/configmaps/c"),
        &[("Content-Type", "text/plain")],
        Some("x"),
    )
    .await;
    assert_eq!(code, 415, "{body}");
    // Apply without fieldManager is 422.
    let (code, _, body) = send(
        reqwest::Method::PATCH,
        &format!("{u}/api/v1/namespaces/default/configmaps/c"),
        &[("Content-Type", "application/apply-patch+yaml")],
        Some("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n"),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("fieldManager: Required value"), "{body}");
    // Warn mode: an unknown field becomes a Warning header and is dropped.
    let client = http_client();
    let r = client
        .post(format!("{u}/api/v1/namespaces/default/configmaps"))
        .header("Content-Type", "application/json")
        .body(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w"},"junk":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(
        r.headers().get("warning").unwrap().to_str().unwrap(),
        r#"299 - "unknown field \"junk\"""#
    );
    // sendInitialEvents without resourceVersionMatch=NotOlderThan is 422.
    let (code, _, _) = send(
        get.clone(),
        &format!("{u}/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 422);
    // Watch framing: one JSON object per line, ends at timeoutSeconds.
    let (code, _, body) = send(
        get.clone(),
        &format!("{u}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&allowWatchBookmarks=true"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200);
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.iter().filter(|l| l["type"] == "ADDED").count(), 2);
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "BOOKMARK");
    assert_eq!(last["object"]["kind"], "ConfigMap");
    assert!(last["object"]["metadata"]["resourceVersion"].is_string());
    emu.shutdown().await;
}

#[tokio::test]
async fn deprecated_crd_versions_warn_and_versions_share_storage() {
    let emu = KubeEmu::start(KubeEmuConfig::default()).await.unwrap();
    let u = emu.url();
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "deprecated": true,
                 "deprecationWarning": "example.com/v1beta1 Gadget is deprecated; use example.com/v1", "schema": schema},
                {"name": "v1", "served": true, "storage": true, "schema": schema}]}});
    let (code, _, body) = send(
        reqwest::Method::POST,
        &format!("{u}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
        &[("Content-Type", "application/json")],
        Some(&crd.to_string()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    // Preferred version is v1 (GA before beta).
    let (_, _, body) = send(
        reqwest::Method::GET,
        &format!("{u}/apis/example.com"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["preferredVersion"]["version"],
        "v1"
    );

    let client = http_client();
    let r = client
        .post(format!("{u}/apis/example.com/v1beta1/namespaces/default/gadgets"))
        .header("Content-Type", "application/json")
        .body(r#"{"apiVersion":"example.com/v1beta1","kind":"Gadget","metadata":{"name":"g"},"spec":{"size":1}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(
        r.headers().get("warning").unwrap().to_str().unwrap(),
        r#"299 - "example.com/v1beta1 Gadget is deprecated; use example.com/v1""#
    );
    // The same object through the storage version.
    let (code, _, body) = send(
        reqwest::Method::GET,
        &format!("{u}/apis/example.com/v1/namespaces/default/gadgets/g"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["apiVersion"], "example.com/v1");
    assert_eq!(v["spec"]["size"], 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_get_client_errors_not_crashes() {
    let emu = KubeEmu::start(KubeEmuConfig::default()).await.unwrap();
    let u = emu.url();
    let (code, _, _) = send(
        reqwest::Method::POST,
        &format!("{u}/api/v1/namespaces/default/configmaps"),
        &[("Content-Type", "application/json")],
        Some(r#"{"metadata":{"name":"c"}}"#),
    )
    .await;
    assert_eq!(code, 201);
    let bodies = [
        "[]",
        "5",
        "\"x\"",
        "null",
        "{",
        r#"{"metadata":5}"#,
        r#"{"metadata":{"name":"c","labels":5}}"#,
        r#"{"metadata":{"name":"c"},"data":[1]}"#,
        r#"[{"op":"replace","path":"","value":[1]}]"#,
        r#"[{"op":"nonsense"}]"#,
    ];
    let targets = [
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/configmaps/c",
            "application/json",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/merge-patch+json",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/json-patch+json",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/strategic-merge-patch+json",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c?fieldManager=m",
            "application/apply-patch+yaml",
        ),
        (
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            "application/json",
        ),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "application/json",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/secrets",
            "application/vnd.kubernetes.protobuf",
        ),
    ];
    for (method, path, ct) in targets {
        for body in bodies {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let (code, _, text) = send(
                m,
                &format!("{u}{path}"),
                &[("Content-Type", ct)],
                Some(body),
            )
            .await;
            if ct == "application/json-patch+json" && body == "[]" {
                assert_eq!(code, 200, "an empty JSON patch is a valid no-op");
                continue;
            }
            if path.contains("selfsubjectaccessreviews") && body.contains("\"name\"") {
                // Reviews answer any well-formed object.
                assert_eq!(code, 201, "{text}");
                continue;
            }
            if path.contains("events") && body.contains("\"data\"") {
                // A well-formed event with an unknown field: accepted with a warning.
                assert_eq!(code, 201, "{text}");
                continue;
            }
            assert!(
                (400..500).contains(&code),
                "{method} {path} ({ct}) with {body}: {code} {text}"
            );
        }
    }
    // The server is still healthy and the object intact.
    let (code, _, body) = send(
        reqwest::Method::GET,
        &format!("{u}/api/v1/namespaces/default/configmaps/c"),
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    emu.shutdown().await;
}
