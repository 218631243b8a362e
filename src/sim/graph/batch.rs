//! Graph JSON batching (`$batch`).

use super::*;

pub(super) fn batch(req: &Req<'_>, body: Option<Value>) -> GraphResponse {
    let Some(reqs) = body.as_ref().and_then(|b| b["requests"].as_array()) else {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
        );
    };
    if reqs.len() > 20 {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The number of requests in a batch cannot exceed 20.",
        );
    }
    let mut ids: Vec<&str> = Vec::new();
    for r in reqs {
        let Some(id) = r["id"].as_str().or(None) else {
            return req.err(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Each request in a batch must have an id.",
            );
        };
        if ids.contains(&id) {
            return req.err(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Batch request contains duplicate id '{id}'."),
            );
        }
        ids.push(id);
    }
    let mut results: Vec<(String, u16)> = Vec::new();
    let mut responses = Vec::new();
    for r in reqs {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let depends: Vec<String> = r["dependsOn"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let failed_dep = depends.iter().any(|d| {
            results
                .iter()
                .find(|(i, _)| i == d)
                .is_none_or(|(_, s)| *s >= 400)
        });
        let route = format!(
            "/{}/{}",
            req.version,
            r["url"].as_str().unwrap_or("").trim_start_matches('/')
        );
        let throttled = if failed_dep || req.app.faults.is_empty() {
            None
        } else {
            req.app
                .faults
                .throttle_item(&route, &[req.caller.tenant_id.to_string()])
        };
        let resp = if failed_dep {
            req.err(
                StatusCode::FAILED_DEPENDENCY,
                "BadRequest",
                "Dependent request failed.",
            )
        } else if let Some(ra) = throttled {
            // Each item of a batch can be throttled on its own (reference G §2.9).
            let mut e = req.err(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests. Please retry after the time specified in the Retry-After header.",
            );
            e.headers.push(("Retry-After".into(), ra.to_string()));
            e
        } else {
            batch_item(req, r)
        };
        results.push((id.clone(), resp.status.as_u16()));
        let headers: Map<String, Value> = resp
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let mut item = json!({"id": id, "status": resp.status.as_u16(), "headers": headers});
        if let Some(b) = resp.body {
            item["body"] = b;
        }
        responses.push(item);
    }
    GraphResponse::ok(json!({"responses": responses}))
}

pub(super) fn batch_item(req: &Req<'_>, r: &Value) -> GraphResponse {
    let method = r["method"]
        .as_str()
        .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok());
    let Some(url) = r["url"].as_str() else {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The url of a batch request is required.",
        );
    };
    let Some(method) = method else {
        return req.err(StatusCode::BAD_REQUEST, "BadRequest", "Invalid method.");
    };
    let headers: Vec<(String, String)> = r["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let body = r.get("body").filter(|b| !b.is_null()).cloned();
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Content-Type header is required for a batch request with a body.",
        );
    }
    let url = url.trim_start_matches('/');
    if url.starts_with("v1.0/") || url.starts_with("beta/") {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Batch request urls must be relative to the version root.",
        );
    }
    let (path, q) = url.split_once('?').unwrap_or((url, ""));
    let sub = Req {
        app: req.app,
        caller: req.caller,
        version: req.version,
        now: req.now,
        query: parse_query(Some(q)),
        headers,
    };
    match dispatch(&sub, &method, path, body) {
        Ok(r) | Err(r) => r,
    }
}
