//! Fault injection, configured at run time through `/_sim/faults`: latency, 429 with
//! Retry-After, 5xx, connection resets, and a per-tenant concurrency cap answered with the
//! Exchange "maximum number of concurrent requests per tenant" error. Rules match by API,
//! optional route substring (for Exchange: the cmdlet name) and tenant. Rates use a seeded
//! generator so runs are reproducible; `times` limits a rule to its next N matches.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::App;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Api {
    Any,
    Identity,
    Graph,
    Exchange,
}

/// One rule. Every effect is optional; a request can be delayed and then failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    #[serde(default = "any")]
    pub api: Api,
    /// Substring of the path (Graph, identity) or the cmdlet name (Exchange), case-insensitive.
    #[serde(default)]
    pub route: Option<String>,
    /// Tenant id or domain.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability (0..=1) of a 429 with `Retry-After: retryAfterSeconds`.
    #[serde(default)]
    pub throttle_rate: f64,
    #[serde(default = "one")]
    pub retry_after_seconds: u64,
    /// Probability of a 5xx with `errorStatus` (500, 503 or 504).
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "five_oh_three")]
    pub error_status: u16,
    /// Probability of the connection being dropped mid-response.
    #[serde(default)]
    pub reset_rate: f64,
    /// Exchange: more simultaneous requests per tenant than this are refused.
    #[serde(default)]
    pub max_concurrent_per_tenant: Option<usize>,
    /// Apply to the next N matching requests only.
    #[serde(default)]
    pub times: Option<u64>,
}

fn any() -> Api {
    Api::Any
}
fn one() -> u64 {
    1
}
fn five_oh_three() -> u16 {
    503
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSet {
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    #[serde(default)]
    pub seed: Option<u64>,
}

#[derive(Debug)]
pub struct Faults {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    rules: Vec<(FaultRule, u64)>,
    rng: u64,
    in_flight: HashMap<String, usize>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                rules: Vec::new(),
                rng: 0x9E37_79B9_7F4A_7C15,
                in_flight: HashMap::new(),
            }),
        }
    }
}

/// What to do with one request.
#[derive(Debug, Default)]
struct Decision {
    latency: Duration,
    throttle: Option<u64>,
    error: Option<u16>,
    reset: bool,
    cap: Option<usize>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, set: FaultSet) {
        let mut g = self.lock();
        g.rules = set.rules.into_iter().map(|r| (r, 0)).collect();
        if let Some(s) = set.seed {
            g.rng = s.max(1);
        }
    }

    pub fn get(&self) -> Vec<FaultRule> {
        self.lock().rules.iter().map(|(r, _)| r.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().rules.is_empty()
    }

    fn decide(&self, api: Api, route: &str, tenant: &[String]) -> Decision {
        let mut g = self.lock();
        let mut d = Decision::default();
        let Inner { rules, rng, .. } = &mut *g;
        let mut roll = || {
            // xorshift64*: reproducible for a given seed and request order.
            *rng ^= *rng >> 12;
            *rng ^= *rng << 25;
            *rng ^= *rng >> 27;
            (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        };
        for (r, used) in rules.iter_mut() {
            if r.api != Api::Any && r.api != api {
                continue;
            }
            if let Some(p) = &r.route
                && !route.to_ascii_lowercase().contains(&p.to_ascii_lowercase())
            {
                continue;
            }
            if let Some(t) = &r.tenant
                && !tenant.iter().any(|x| x.eq_ignore_ascii_case(t))
            {
                continue;
            }
            if r.times.is_some_and(|n| *used >= n) {
                continue;
            }
            *used += 1;
            d.latency += Duration::from_millis(r.latency_ms);
            if d.throttle.is_none() && r.throttle_rate > 0.0 && roll() < r.throttle_rate {
                d.throttle = Some(r.retry_after_seconds);
            }
            if d.error.is_none() && r.error_rate > 0.0 && roll() < r.error_rate {
                d.error = Some(r.error_status);
            }
            if r.reset_rate > 0.0 && roll() < r.reset_rate {
                d.reset = true;
            }
            if let Some(c) = r.max_concurrent_per_tenant {
                d.cap = Some(d.cap.map_or(c, |x: usize| x.min(c)));
            }
        }
        d
    }

    /// Per-item throttling inside a Graph `$batch` (each item may get its own 429): the
    /// Retry-After seconds when a matching rule throttles this item.
    pub fn throttle_item(&self, route: &str, tenants: &[String]) -> Option<u64> {
        self.decide(Api::Graph, route, tenants).throttle
    }

    fn enter(&self, tenant: &str, cap: usize) -> bool {
        let mut g = self.lock();
        let n = g.in_flight.entry(tenant.to_ascii_lowercase()).or_insert(0);
        if *n >= cap {
            return false;
        }
        *n += 1;
        true
    }

    fn leave(&self, tenant: &str) {
        let mut g = self.lock();
        if let Some(n) = g.in_flight.get_mut(&tenant.to_ascii_lowercase()) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Tenant keys a request refers to: the URL segment and the token's `tid` (unverified read —
/// only used to pick fault rules).
fn tenants_of(app: &App, path: &str, auth: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let seg = match segs.as_slice() {
        ["adminapi", _, t, ..] => Some(*t),
        [t, "oauth2", ..] => Some(*t),
        _ => None,
    };
    if let Some(s) = seg {
        out.push(s.to_string());
    }
    if let Some(tid) = auth
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| t.split('.').nth(1))
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["tid"].as_str().map(str::to_string))
    {
        out.push(tid);
    }
    // Add the other spellings of the same tenant so a rule may name either.
    let w = app.shared.read();
    let mut extra = Vec::new();
    for k in &out {
        if let Some(t) = w.tenant(k) {
            extra.push(t.id.to_string());
            extra.extend(t.domains.iter().cloned());
        }
    }
    out.extend(extra);
    out
}

fn throttled(api: Api, retry_after: u64) -> Response {
    let body = match api {
        Api::Identity => json!({"error": "temporarily_unavailable",
            "error_description": "AADSTS50196: The server terminated an operation because it encountered a client request loop. Please contact your app vendor.",
            "error_codes": [50196]}),
        Api::Exchange => json!({"error": {"code": "TooManyRequests",
            "message": format!("The request was throttled. Retry after {retry_after} seconds.")}}),
        _ => json!({"error": {"code": "TooManyRequests",
            "message": "Too many requests. Please retry after the time specified in the Retry-After header.",
            "innerError": {"code": "throttledRequest"}}}),
    };
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert("Retry-After", v);
    }
    r
}

fn server_error(api: Api, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (code, msg) = match status.as_u16() {
        500 => ("InternalServerError", "An internal server error occurred."),
        504 => ("GatewayTimeout", "The gateway timed out."),
        _ => (
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry.",
        ),
    };
    let body = match api {
        Api::Identity => json!({"error": "temporarily_unavailable", "error_description": msg}),
        _ => json!({"error": {"code": code, "message": msg}}),
    };
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert("Retry-After", HeaderValue::from_static("1"));
    }
    r
}

/// The Exchange concurrency refusal (text from reference §1.7; shape as other EXO errors).
fn concurrency_refused() -> Response {
    let text = "You have reached the maximum number of concurrent requests per tenant. Please wait and try again";
    let body = json!({"error": {"code": "TooManyRequests", "message": text,
        "details": [{"code": "Client", "target": "",
            "message": format!("|Microsoft.Exchange.Admin.OData.Core.ODataServiceException|{text}")}],
        "innererror": {"message": text, "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}});
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    r.headers_mut()
        .insert("Retry-After", HeaderValue::from_static("1"));
    r
}

/// A response whose body fails after the headers: the client sees the connection drop.
fn reset() -> Response {
    let stream = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-length", HeaderValue::from_static("1024"));
    r
}

pub async fn middleware(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/_sim/") || app.faults.is_empty() {
        return next.run(req).await;
    }
    let api = if path.starts_with("/adminapi/") {
        Api::Exchange
    } else if path.starts_with("/v1.0/") || path.starts_with("/beta/") {
        Api::Graph
    } else {
        Api::Identity
    };
    // Exchange routes are cmdlets: peek at the (small) body for the name.
    let (req, route) = if api == Api::Exchange {
        let (parts, body) = req.into_parts();
        let bytes = to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
        let name = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["CmdletInput"]["CmdletName"].as_str().map(str::to_string))
            .unwrap_or_default();
        (Request::from_parts(parts, Body::from(bytes)), name)
    } else {
        (req, path.clone())
    };
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let tenants = tenants_of(&app, &path, auth.as_deref());
    let d = app.faults.decide(api, &route, &tenants);
    let cap_key = tenants.first().cloned().unwrap_or_default();
    let entered = match d.cap {
        Some(cap) if api == Api::Exchange => {
            if !app.faults.enter(&cap_key, cap) {
                return concurrency_refused();
            }
            true
        }
        _ => false,
    };
    if !d.latency.is_zero() {
        tokio::time::sleep(d.latency).await;
    }
    let resp = if let Some(ra) = d.throttle {
        throttled(api, ra)
    } else if let Some(s) = d.error {
        server_error(api, s)
    } else if d.reset {
        reset()
    } else {
        next.run(req).await
    };
    if entered {
        app.faults.leave(&cap_key);
    }
    resp
}
