//! Server-side printing (`Accept: …;as=Table;…`, spec §8): columns from CRD
//! `additionalPrinterColumns` (or per-kind built-in columns), cells from a small JSONPath
//! subset, `date` columns as the apiserver's human durations. Also PartialObjectMetadata.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::registry::{PrinterColumn, ResourceInfo};

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `[0]`, `[*]`,
/// `[?(@.type=="Ready")]`, optionally wrapped in `{…}`. Returns every match.
pub fn jsonpath<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut cur: Vec<&Value> = vec![root];
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let key: String = chars[start..i].iter().collect();
                if key.is_empty() {
                    continue;
                }
                cur = cur.into_iter().filter_map(|v| v.get(&key)).collect();
            }
            '[' => {
                let start = i + 1;
                let mut depth = 0;
                while i < chars.len() {
                    match chars[i] {
                        '[' => depth += 1,
                        ']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let inner: String = chars[start..i.min(chars.len())].iter().collect();
                i += 1;
                cur = apply_bracket(cur, inner.trim());
            }
            _ => {
                // Bare leading key (`metadata.name`).
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let key: String = chars[start..i].iter().collect();
                cur = cur.into_iter().filter_map(|v| v.get(&key)).collect();
            }
        }
    }
    cur
}

fn apply_bracket<'a>(cur: Vec<&'a Value>, inner: &str) -> Vec<&'a Value> {
    if inner == "*" {
        return cur
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                Value::Object(m) => m.values().collect(),
                _ => vec![],
            })
            .collect();
    }
    if let Ok(idx) = inner.parse::<i64>() {
        return cur
            .into_iter()
            .filter_map(|v| {
                let a = v.as_array()?;
                let i = if idx < 0 { a.len() as i64 + idx } else { idx };
                a.get(usize::try_from(i).ok()?)
            })
            .collect();
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
        // `@.a.b==value` / `!=`.
        let (lhs, op, rhs) = if let Some((l, r)) = filter.split_once("==") {
            (l, true, r)
        } else if let Some((l, r)) = filter.split_once("!=") {
            (l, false, r)
        } else {
            return vec![];
        };
        let lhs = lhs.trim().strip_prefix('@').unwrap_or(lhs.trim());
        let rhs = rhs.trim();
        let want: Value = if let Some(s) = rhs
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| rhs.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        {
            Value::String(s.to_string())
        } else {
            serde_json::from_str(rhs).unwrap_or(Value::String(rhs.to_string()))
        };
        return cur
            .into_iter()
            .flat_map(|v| {
                v.as_array()
                    .map(|a| a.iter().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .filter(|item| {
                let got = jsonpath(item, lhs);
                (got.first().copied() == Some(&want)) == op
            })
            .collect();
    }
    // Quoted key: ['a.b'].
    let key = inner.trim_matches(|c| c == '\'' || c == '"');
    cur.into_iter().filter_map(|v| v.get(key)).collect()
}

/// `metatable.ConvertToHumanReadableDateType` / `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rs = s % 60;
        return if rs == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rs}s")
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = s / 3600;
    if h < 8 {
        let rm = (s % 3600) / 60;
        return if rm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rm}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        let d = h / 24;
        let rh = h % 24;
        return if rh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rh}h")
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    if h < 24 * 365 * 8 {
        let y = h / (24 * 365);
        let d = (h / 24) % 365;
        return if d == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{d}d")
        };
    }
    format!("{}y", h / (24 * 365))
}

fn age(ts: &Value, now: DateTime<Utc>) -> Value {
    match ts
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        Some(t) => json!(human_duration((now - t.with_timezone(&Utc)).num_seconds())),
        None => Value::Null,
    }
}

fn col(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: json_path.into(),
    }
}

/// Columns after `Name`: the CRD's printer columns, or the kind's built-in set.
pub fn columns(info: &ResourceInfo, version: &str) -> Vec<PrinterColumn> {
    if info.custom {
        let cols = info
            .printer_columns
            .get(version)
            .cloned()
            .unwrap_or_default();
        if cols.is_empty() {
            return vec![col("Age", "date", ".metadata.creationTimestamp")];
        }
        return cols;
    }
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces") => vec![
            col("Status", "string", ".status.phase"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ],
        ("", "secrets") => vec![
            col("Type", "string", ".type"),
            col("Data", "integer", "#count:data"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ],
        ("", "configmaps") => vec![
            col("Data", "integer", "#count:data+binaryData"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![col(
                "Created At",
                "date",
                "#rfc3339:.metadata.creationTimestamp",
            )]
        }
        ("", "events") => vec![
            col("Last Seen", "string", "#event-last-seen"),
            col("Type", "string", ".type"),
            col("Reason", "string", ".reason"),
            col("Object", "string", "#event-object"),
            col("Message", "string", ".message"),
        ],
        ("coordination.k8s.io", "leases") => vec![
            col("Holder", "string", ".spec.holderIdentity"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ],
        ("", "serviceaccounts") => vec![
            col("Secrets", "integer", "#count:secrets"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ],
        ("apps", "deployments") => vec![
            col("Ready", "string", "#ready-replicas"),
            col("Up-to-date", "integer", ".status.updatedReplicas"),
            col("Available", "integer", ".status.availableReplicas"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ],
        ("", "services") => vec![
            col("Type", "string", "#service-type"),
            col("Cluster-IP", "string", "#service-cluster-ip"),
            col("External-IP", "string", "#none"),
            col("Port(s)", "string", "#service-ports"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ],
        ("", "pods") => vec![
            col("Ready", "string", "#pod-ready"),
            col("Status", "string", "#pod-phase"),
            col("Restarts", "integer", "#zero"),
            col("Age", "date", ".metadata.creationTimestamp"),
        ],
        _ => vec![col(
            "Created At",
            "date",
            "#rfc3339:.metadata.creationTimestamp",
        )],
    }
}

fn cell(obj: &Value, c: &PrinterColumn, now: DateTime<Utc>) -> Value {
    let jp = c.json_path.as_str();
    if let Some(fields) = jp.strip_prefix("#count:") {
        let n: usize = fields
            .split('+')
            .map(|f| match &obj[f] {
                Value::Object(m) => m.len(),
                Value::Array(a) => a.len(),
                _ => 0,
            })
            .sum();
        return json!(n);
    }
    if let Some(p) = jp.strip_prefix("#rfc3339:") {
        return jsonpath(obj, p)
            .first()
            .map(|v| (*v).clone())
            .unwrap_or(Value::Null);
    }
    match jp {
        "#event-last-seen" => {
            let ts = [
                &obj["lastTimestamp"],
                &obj["eventTime"],
                &obj["metadata"]["creationTimestamp"],
            ]
            .into_iter()
            .find(|v| v.is_string())
            .cloned()
            .unwrap_or(Value::Null);
            return age(&ts, now);
        }
        "#event-object" => {
            let io = &obj["involvedObject"];
            return json!(format!(
                "{}/{}",
                io["kind"].as_str().unwrap_or_default().to_lowercase(),
                io["name"].as_str().unwrap_or_default()
            ));
        }
        "#none" => return json!("<none>"),
        "#zero" => return json!(0),
        "#service-type" => {
            return json!(obj["spec"]["type"].as_str().unwrap_or("ClusterIP"));
        }
        "#service-cluster-ip" => {
            return json!(obj["spec"]["clusterIP"].as_str().unwrap_or("<none>"));
        }
        "#service-ports" => {
            let ports: Vec<String> = obj["spec"]["ports"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            return json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            });
        }
        "#pod-ready" => {
            let n = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
            return json!(format!("0/{n}"));
        }
        "#pod-phase" => {
            return json!(obj["status"]["phase"].as_str().unwrap_or("Pending"));
        }
        "#ready-replicas" => {
            return json!(format!(
                "{}/{}",
                obj["status"]["readyReplicas"].as_i64().unwrap_or(0),
                obj["spec"]["replicas"].as_i64().unwrap_or(1)
            ));
        }
        _ => {}
    }
    let Some(v) = jsonpath(obj, jp).first().map(|v| (*v).clone()) else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "date" => age(&v, now),
        "integer" | "number" | "boolean" => v,
        _ => match v {
            Value::String(_) => v,
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
    }
}

/// What each row carries in `object` (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    Metadata,
    Object,
    None,
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// A Table for `objs`; `with_columns=false` leaves out columnDefinitions (watch events after
/// the first, as the real server does).
pub fn table(
    info: &ResourceInfo,
    version: &str,
    objs: &[Value],
    list_meta: Value,
    include: Include,
    now: DateTime<Utc>,
) -> Value {
    let cols = columns(info, version);
    let mut defs = vec![json!({"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0})];
    for c in &cols {
        let type_ = if c.json_path.starts_with("#rfc3339:") {
            "string"
        } else {
            c.type_.as_str()
        };
        defs.push(json!({"name": c.name, "type": type_, "format": c.format,
            "description": c.description, "priority": c.priority}));
    }
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            cells.extend(cols.iter().map(|c| cell(o, c, now)));
            let mut row = json!({"cells": cells});
            match include {
                Include::Metadata => row["object"] = partial_metadata(o),
                Include::Object => row["object"] = o.clone(),
                Include::None => {}
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let o = json!({"spec": {"size": 3, "items": [{"a": 1}, {"a": 2}]},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True", "reason": "Ok"}]}});
        assert_eq!(jsonpath(&o, ".spec.size"), vec![&json!(3)]);
        assert_eq!(jsonpath(&o, ".spec.items[1].a"), vec![&json!(2)]);
        assert_eq!(jsonpath(&o, ".spec.items[*].a").len(), 2);
        assert_eq!(
            jsonpath(&o, r#".status.conditions[?(@.type=="Ready")].status"#),
            vec![&json!("True")]
        );
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type=='Ready')].reason"),
            vec![&json!("Ok")]
        );
        assert!(jsonpath(&o, ".status.nothing").is_empty());
        assert_eq!(jsonpath(&o, "{.spec.size}"), vec![&json!(3)]);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(252), "4m12s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(100 * 86400), "100d");
        assert_eq!(human_duration(-10), "<invalid>");
    }
}
