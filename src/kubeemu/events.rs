//! Events are one table with two views (spec §12): objects are stored in the core `v1` shape;
//! `events.k8s.io/v1` requests are converted on the way in and out, so `kubectl describe`
//! (core view, `involvedObject.*` field selectors) sees what kube's `Recorder` wrote.

use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core v1 field) pairs that differ only in name.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedSource", "source"),
    ("reportingController", "reportingComponent"),
];

fn rename(obj: &Value, from_new: bool, api_version: &str) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = RENAMES.iter().find_map(|(new, old)| {
            if from_new && k == new {
                Some(*old)
            } else if !from_new && k == old {
                Some(*new)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// events.k8s.io/v1 → stored core shape.
pub fn to_core(obj: &Value) -> Value {
    if !obj.is_object() {
        // Not an event at all; the write pipeline rejects it.
        return obj.clone();
    }
    let mut core = rename(obj, true, "v1");
    // `kubectl describe` and `get events` read these; the Recorder sets only `series`.
    if let Some(t) = obj.get("series").and_then(|s| s.get("lastObservedTime")) {
        core["lastTimestamp"] = Value::String(second_precision(t));
    }
    if core.get("firstTimestamp").is_none_or(Value::is_null)
        && let Some(t) = obj.get("eventTime").filter(|t| t.is_string())
    {
        core["firstTimestamp"] = Value::String(second_precision(t));
    }
    if core.get("lastTimestamp").is_none_or(Value::is_null)
        && let Some(t) = obj.get("eventTime").filter(|t| t.is_string())
    {
        core["lastTimestamp"] = Value::String(second_precision(t));
    }
    if core.get("count").is_none() {
        core["count"] = Value::from(1);
    }
    if core.get("source").is_none()
        && let Some(c) = obj.get("reportingController").and_then(Value::as_str)
    {
        core["source"] = serde_json::json!({"component": c});
    }
    core
}

/// Stored core shape → events.k8s.io/v1.
pub fn from_core(obj: &Value) -> Value {
    rename(obj, false, "events.k8s.io/v1")
}

/// MicroTime → Time (`2026-01-01T00:00:00.123456Z` → `2026-01-01T00:00:00Z`).
fn second_precision(t: &Value) -> String {
    let s = t.as_str().unwrap_or_default();
    match s.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Widget", "name": "w"}, "note": "hello", "reason": "Made",
            "type": "Normal", "eventTime": "2026-01-01T00:00:00.123456Z", "reportingController": "ctl",
            "action": "Reconcile"});
        let core = to_core(&ev);
        assert_eq!(core["involvedObject"]["name"], "w");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["lastTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(core["source"]["component"], "ctl");
        assert_eq!(core["apiVersion"], "v1");
        let back = from_core(&core);
        assert_eq!(back["regarding"]["name"], "w");
        assert_eq!(back["note"], "hello");
        assert_eq!(back["apiVersion"], "events.k8s.io/v1");
    }
}
