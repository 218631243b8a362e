//! Decoding of kubectl's protobuf request bodies (spec §12, trap 3): `kubectl create secret`,
//! `create configmap`, `create namespace` and `create serviceaccount` send
//! `application/vnd.kubernetes.protobuf`, and a 415 does not make kubectl retry with JSON. A
//! hand-written wire-format reader covers the few messages involved, which is far cheaper to
//! compile than generated bindings for every Kubernetes type.

use base64::Engine;
use serde_json::{Map, Value, json};

/// One protobuf field value.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long".into())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let (field, wt) = (tag >> 3, tag & 7);
        let v = match wt {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 => {
                pos += 8;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|e| e.to_string())?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                let b = &buf[pos..end];
                pos = end;
                Wire::Bytes(b)
            }
            5 => {
                pos += 4;
                Wire::Fixed
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((field, v));
    }
    Ok(out)
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `map<string, X>` entry: (key, raw value bytes).
fn map_entry(b: &[u8]) -> Result<(String, Vec<u8>), String> {
    let mut k = String::new();
    let mut v = Vec::new();
    for (f, w) in fields(b)? {
        match (f, w) {
            (1, Wire::Bytes(x)) => k = string(x),
            (2, Wire::Bytes(x)) => v = x.to_vec(),
            _ => {}
        }
    }
    Ok((k, v))
}

fn insert_nonempty(m: &mut Map<String, Value>, k: &str, v: String) {
    // proto2 optional strings arrive as "": treat them as unset.
    if !v.is_empty() {
        m.insert(k.into(), json!(v));
    }
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    let mut owners = Vec::new();
    for (f, w) in fields(b)? {
        let Wire::Bytes(x) = w else { continue };
        match f {
            1 => insert_nonempty(&mut m, "name", string(x)),
            2 => insert_nonempty(&mut m, "generateName", string(x)),
            3 => insert_nonempty(&mut m, "namespace", string(x)),
            11 => {
                let (k, v) = map_entry(x)?;
                labels.insert(k, json!(string(&v)));
            }
            12 => {
                let (k, v) = map_entry(x)?;
                annotations.insert(k, json!(string(&v)));
            }
            13 => owners.push(owner_reference(x)?),
            14 => finalizers.push(json!(string(x))),
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    if !owners.is_empty() {
        m.insert("ownerReferences".into(), Value::Array(owners));
    }
    Ok(Value::Object(m))
}

fn owner_reference(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    for (f, w) in fields(b)? {
        match (f, w) {
            (1, Wire::Bytes(x)) => insert_nonempty(&mut m, "kind", string(x)),
            (3, Wire::Bytes(x)) => insert_nonempty(&mut m, "name", string(x)),
            (4, Wire::Bytes(x)) => insert_nonempty(&mut m, "uid", string(x)),
            (5, Wire::Bytes(x)) => insert_nonempty(&mut m, "apiVersion", string(x)),
            (6, Wire::Varint(v)) => {
                m.insert("controller".into(), json!(v != 0));
            }
            (7, Wire::Varint(v)) => {
                m.insert("blockOwnerDeletion".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// Decodes a `k8s\0`-prefixed `runtime.Unknown` envelope into the JSON object it carries.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    const UNSUPPORTED: &str = "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml";
    let inner = body.strip_prefix(b"k8s\x00").ok_or(UNSUPPORTED)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (f, w) in fields(inner)? {
        match (f, w) {
            (1, Wire::Bytes(tm)) => {
                for (tf, tw) in fields(tm)? {
                    match (tf, tw) {
                        (1, Wire::Bytes(x)) => api_version = string(x),
                        (2, Wire::Bytes(x)) => kind = string(x),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let b64 = |v: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(v));
    let mut obj = json!({"apiVersion": api_version, "kind": kind});
    let mut data = Map::new();
    let mut other = Map::new();
    for (f, w) in fields(raw)? {
        match (kind.as_str(), f, w) {
            (_, 1, Wire::Bytes(x)) => obj["metadata"] = object_meta(x)?,
            ("Secret", 2, Wire::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                data.insert(k, b64(&v));
            }
            ("Secret", 3, Wire::Bytes(x)) => obj["type"] = json!(string(x)),
            ("Secret", 4, Wire::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                data.insert(k, b64(v.as_slice()));
            }
            ("Secret" | "ConfigMap", n, Wire::Varint(v)) if n == 5 || n == 4 => {
                obj["immutable"] = json!(v != 0)
            }
            ("ConfigMap", 2, Wire::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                data.insert(k, json!(string(&v)));
            }
            ("ConfigMap", 3, Wire::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                other.insert(k, b64(&v));
            }
            // The review's spec is not needed: every request is allowed.
            ("Namespace" | "ServiceAccount" | "SelfSubjectAccessReview", _, _) => {}
            ("Secret" | "ConfigMap", _, _) => {}
            (k, _, _) => return Err(format!("{UNSUPPORTED} (protobuf {k} is not supported)")),
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !other.is_empty() {
        obj["binaryData"] = Value::Object(other);
    }
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({});
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u8, b: &[u8]) -> Vec<u8> {
        let mut v = vec![(field << 3) | 2, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn decodes_a_kubectl_secret() {
        let meta = [
            ld(1, b"s1"),
            ld(3, b""),
            ld(11, &[ld(1, b"app"), ld(2, b"x")].concat()),
        ]
        .concat();
        let secret = [
            ld(1, &meta),
            ld(2, &[ld(1, b"k"), ld(2, b"val")].concat()),
            ld(3, b"Opaque"),
        ]
        .concat();
        let tm = [ld(1, b"v1"), ld(2, b"Secret")].concat();
        let body = [b"k8s\x00".to_vec(), ld(1, &tm), ld(2, &secret)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["metadata"]["name"], "s1");
        assert!(v["metadata"].get("namespace").is_none());
        assert_eq!(v["metadata"]["labels"]["app"], "x");
        assert_eq!(v["data"]["k"], "dmFs");
        assert_eq!(v["type"], "Opaque");
        assert!(decode(b"{}").is_err());
    }
}
