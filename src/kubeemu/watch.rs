//! Watches (spec §7): a chunked stream of one JSON event per line. Replays the event log from
//! the requested resourceVersion, delivers `410 Expired` as an ERROR event inside a 200 stream,
//! sends bookmarks (including the `initial-events-end` one for streaming lists), turns selector
//! transitions into ADDED/DELETED, and ends cleanly at `timeoutSeconds`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Response;
use chrono::Utc;
use futures::SinkExt;
use futures::channel::mpsc;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until};

use super::handlers::{Ctx, Filters, Shape, error_response, json_response, shape_of};
use super::ops::present;
use super::registry::ResourceInfo;
use super::status::{ApiError, FieldError, FieldErrorKind, Subject};
use super::store::{EventType, LogEntry};
use super::table::{self, Include};

/// How one watch renders objects.
struct View {
    info: Arc<ResourceInfo>,
    version: String,
    shape: Shape,
    filters: Filters,
}

impl View {
    fn render(&self, obj: &Value) -> Value {
        match self.shape {
            Shape::Table => table::table(
                &self.info,
                &self.version,
                std::slice::from_ref(obj),
                json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
                Include::Metadata,
                Utc::now(),
            ),
            Shape::Metadata => table::partial_metadata(obj),
            Shape::Full => obj.clone(),
        }
    }

    fn line(&self, kind: &str, shown: &Value) -> Bytes {
        let mut s = json!({"type": kind, "object": self.render(shown)}).to_string();
        s.push('\n');
        Bytes::from(s)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let (kind, api_version) = match self.shape {
            Shape::Metadata => (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            ),
            _ => (self.info.kind.clone(), self.info.api_version(&self.version)),
        };
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut s = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": md}})
            .to_string();
        s.push('\n');
        Bytes::from(s)
    }

    /// What a client with these selectors sees of one change (apiserver `convertToWatchEvent`).
    fn transform(&self, e: &LogEntry) -> Option<Bytes> {
        let shown = present(&self.info, &self.version, &e.object);
        let now = self.filters.matches(&shown);
        let before = e
            .prev
            .as_ref()
            .is_some_and(|p| self.filters.matches(&present(&self.info, &self.version, p)));
        let kind = match e.event {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => before.then_some("DELETED"),
            EventType::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }?;
        Some(self.line(kind, &shown))
    }
}

fn expired_line(msg: &str) -> Bytes {
    let status = ApiError::Expired(msg.to_string()).to_status();
    let mut s = json!({"type": "ERROR", "object": status}).to_string();
    s.push('\n');
    Bytes::from(s)
}

pub async fn serve(ctx: Ctx) -> Response<Body> {
    let filters = match Filters::parse(&ctx) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let q = &ctx.q;
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.flag("sendInitialEvents");
    if send_initial && (q.get("resourceVersionMatch") != Some("NotOlderThan") || !bookmarks) {
        return error_response(&ApiError::Invalid(
            Subject {
                group: "meta.k8s.io".into(),
                kind: "ListOptions".into(),
                name: String::new(),
            },
            vec![FieldError::new(
                "sendInitialEvents",
                FieldErrorKind::Forbidden(
                    "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan and allowWatchBookmarks is true".into(),
                ),
            )],
        ));
    }
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let rv_param = q.get("resourceVersion").filter(|r| *r != "0");
    let view = View {
        info: ctx.target.info.clone(),
        version: ctx.target.version.clone(),
        shape: shape_of(&ctx.accept),
        filters,
    };
    let app = ctx.app.clone();
    let mut rx = app.subscribe();
    let epoch = app.epoch();

    // The initial state: synthetic ADDED events, or a replay start point.
    let (initial, start) = {
        let st = app.lock();
        let cur = st.store.current_rv();
        match (rv_param, send_initial) {
            (Some(rv), false) => match rv.parse::<u64>() {
                Ok(n) => (Vec::new(), n.min(cur)),
                Err(_) => {
                    return error_response(&ApiError::BadRequest(format!(
                        "invalid resource version: {rv}"
                    )));
                }
            },
            _ => {
                let mut lines = Vec::new();
                for o in st
                    .store
                    .list(&view.info.storage, view.filters.ns.as_deref())
                {
                    let shown = present(&view.info, &view.version, &o);
                    if view.filters.matches(&shown) {
                        lines.push(view.line("ADDED", &shown));
                    }
                }
                if send_initial {
                    lines.push(view.bookmark(cur, true));
                }
                (lines, cur)
            }
        }
    };

    let (mut tx, body_rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let bookmark_every = app.config.bookmark_interval;
    tokio::spawn(async move {
        for l in initial {
            if tx.send(Ok(l)).await.is_err() {
                return;
            }
        }
        let mut last = start;
        let deadline = Instant::now() + timeout;
        let mut next_bookmark = Instant::now() + bookmark_every;
        loop {
            let (lines, done, cur) = {
                let st = app.lock();
                let cur = st.store.current_rv();
                // Deliver what happened first (the final DELETED events of a CRD's objects),
                // then end the stream if the CRD went away, as the apiserver does.
                let gone = st
                    .registry
                    .get(&view.info.group, &view.info.plural)
                    .is_none();
                match st.store.events_since(&view.info.storage, last) {
                    Err(too_old) => (vec![expired_line(&too_old.to_string())], true, cur),
                    Ok(evs) => {
                        let lines: Vec<Bytes> =
                            evs.iter().filter_map(|e| view.transform(e)).collect();
                        (lines, gone, cur)
                    }
                }
            };
            if !done {
                last = last.max(cur);
            }
            for l in lines {
                if tx.send(Ok(l)).await.is_err() {
                    return;
                }
            }
            if done || app.epoch() != epoch {
                return;
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = sleep_until(next_bookmark) => {
                    next_bookmark = Instant::now() + bookmark_every;
                    // The timer also reaps streams whose client went away while idle.
                    if tx.is_closed() {
                        return;
                    }
                    if bookmarks && tx.send(Ok(view.bookmark(last, false))).await.is_err() {
                        return;
                    }
                }
                _ = sleep_until(deadline) => {
                    if bookmarks {
                        let _ = tx.send(Ok(view.bookmark(last, false))).await;
                    }
                    return;
                }
            }
        }
    });
    let mut r = json_response(200, &Value::Null);
    *r.body_mut() = Body::from_stream(body_rx);
    r
}
