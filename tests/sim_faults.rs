//! Fault injection through /_sim/faults: throttling with Retry-After, 5xx, connection resets,
//! latency and the Exchange per-tenant concurrency cap.
#![cfg(feature = "dev")]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use t2t_operator::sim::testkit::{EXCHANGE_SCOPE, GRAPH_SCOPE};
use t2t_operator::sim::{Fixture, RunningSimulator, SimConfig, Simulator};

const CONTOSO: &str = "3f2b6c1a-8d4e-4b7a-9c11-5a0e2d7f4b01";

async fn start() -> (RunningSimulator, reqwest::Client) {
    let fx = Fixture::load(std::path::Path::new("examples/tenants.yaml")).expect("fixture");
    let sim = Simulator::start(SimConfig::new(fx)).await.expect("start");
    let c = sim.http_client().expect("client");
    (sim, c)
}

async fn faults(sim: &RunningSimulator, c: &reqwest::Client, body: Value) {
    let r = c
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn graph_throttling_with_retry_after_then_recovery() {
    let (sim, c) = start().await;
    let t = sim.admin_token(CONTOSO, GRAPH_SCOPE).await.expect("t");
    faults(
        &sim,
        &c,
        json!({"rules": [{"api": "graph", "route": "/users", "throttleRate": 1.0,
        "retryAfterSeconds": 7, "times": 2}]}),
    )
    .await;
    for _ in 0..2 {
        let r = c
            .get(format!("{}/v1.0/users", sim.base_url()))
            .bearer_auth(&t)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        let b: Value = r.json().await.expect("json");
        assert_eq!(b["error"]["code"], "TooManyRequests");
    }
    let r = c
        .get(format!("{}/v1.0/users", sim.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    // Other routes were never affected.
    let r = c
        .get(format!("{}/v1.0/organization", sim.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let listed: Value = c
        .get(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(listed["rules"][0]["retryAfterSeconds"], 7);
    let r = c
        .delete(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status().as_u16(), 204);
}

#[tokio::test]
async fn exchange_server_errors_resets_and_latency() {
    let (sim, c) = start().await;
    let t = sim.admin_token(CONTOSO, EXCHANGE_SCOPE).await.expect("t");
    faults(
        &sim,
        &c,
        json!({"rules": [{"api": "exchange", "route": "Get-Mailbox", "errorRate": 1.0,
        "errorStatus": 503, "times": 1}]}),
    )
    .await;
    let (s, _) = sim
        .invoke(&t, CONTOSO, "Get-Mailbox", json!({"Identity": "alice"}))
        .await
        .expect("invoke");
    assert_eq!(s, 503);
    let (s, _) = sim
        .invoke(&t, CONTOSO, "Get-Mailbox", json!({"Identity": "alice"}))
        .await
        .expect("invoke");
    assert_eq!(s, 200);

    faults(
        &sim,
        &c,
        json!({"rules": [{"api": "exchange", "route": "Get-OrganizationConfig",
        "resetRate": 1.0, "times": 1}]}),
    )
    .await;
    let r = sim
        .invoke(&t, CONTOSO, "Get-OrganizationConfig", json!({}))
        .await;
    assert!(
        r.is_err(),
        "a reset must surface as a transport error: {r:?}"
    );
    let (s, _) = sim
        .invoke(&t, CONTOSO, "Get-OrganizationConfig", json!({}))
        .await
        .expect("invoke");
    assert_eq!(s, 200);

    faults(
        &sim,
        &c,
        json!({"rules": [{"api": "exchange", "latencyMs": 300}]}),
    )
    .await;
    let t0 = Instant::now();
    let (s, _) = sim
        .invoke(&t, CONTOSO, "Get-OrganizationConfig", json!({}))
        .await
        .expect("invoke");
    assert_eq!(s, 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn exchange_concurrency_cap_per_tenant() {
    let (sim, c) = start().await;
    let t = sim.admin_token(CONTOSO, EXCHANGE_SCOPE).await.expect("t");
    faults(
        &sim,
        &c,
        json!({"rules": [{"api": "exchange", "tenant": "contoso.onmicrosoft.com",
        "maxConcurrentPerTenant": 1, "latencyMs": 400}]}),
    )
    .await;
    let a = sim.invoke(&t, CONTOSO, "Get-Mailbox", json!({"Identity": "alice"}));
    let b = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sim.invoke(&t, CONTOSO, "Get-Mailbox", json!({"Identity": "bob"}))
            .await
    };
    let (ra, rb) = tokio::join!(a, b);
    let (sa, _) = ra.expect("a");
    let (sb, body) = rb.expect("b");
    assert_eq!(sa, 200);
    assert_eq!(sb, 429);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert!(v["error"]["details"][0]["message"].as_str().is_some_and(|m|
        m.ends_with("You have reached the maximum number of concurrent requests per tenant. Please wait and try again")), "{v}");
}

#[tokio::test]
async fn identity_throttling() {
    let (sim, c) = start().await;
    faults(&sim, &c, json!({"rules": [{"api": "identity", "throttleRate": 1.0, "retryAfterSeconds": 3, "times": 1}]})).await;
    let r = c
        .post(format!("{}/{CONTOSO}/oauth2/v2.0/token", sim.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    assert!(sim.admin_token(CONTOSO, GRAPH_SCOPE).await.is_ok());
    // Unknown rule fields are refused.
    let r = c
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"rules": [{"bogus": 1}]}))
        .send()
        .await
        .expect("s");
    assert_eq!(r.status().as_u16(), 422);
}

#[tokio::test]
async fn batch_items_are_throttled_individually() {
    let (sim, c) = start().await;
    let t = sim.admin_token(CONTOSO, GRAPH_SCOPE).await.expect("t");
    faults(
        &sim,
        &c,
        json!({"rules": [{"api": "graph", "route": "/users/", "throttleRate": 1.0,
        "retryAfterSeconds": 5, "times": 1}]}),
    )
    .await;
    let body = json!({"requests": [
        {"id": "a", "method": "GET", "url": "/users/alice@contoso.com"},
        {"id": "b", "method": "GET", "url": "/organization"},
        {"id": "c", "method": "GET", "url": "/users/bob@contoso.com"},
    ]});
    let r = c
        .post(format!("{}/v1.0/$batch", sim.base_url()))
        .bearer_auth(&t)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    let item = |id: &str| {
        v["responses"]
            .as_array()
            .expect("r")
            .iter()
            .find(|x| x["id"] == id)
            .expect("item")
            .clone()
    };
    assert_eq!(item("a")["status"], 429);
    assert_eq!(item("a")["headers"]["Retry-After"], "5");
    assert_eq!(item("b")["status"], 200);
    assert_eq!(item("c")["status"], 200);
}
