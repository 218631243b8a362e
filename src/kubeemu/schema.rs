//! Structural-schema handling for custom resources, in the apiextensions order (spec §11):
//! prune unknown fields, drop non-nullable nulls, apply defaults, then OpenAPI validation with the
//! apiserver's field-error messages. All pure functions over `serde_json::Value`.

use serde_json::{Map, Value, json};

use super::status::{FieldError, FieldErrorKind};

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Removes fields the schema does not know; returns their paths (for `fieldValidation`).
/// `root` keeps `apiVersion`, `kind` and `metadata` whatever the schema says.
pub fn prune(value: &mut Value, schema: &Value, path: &str, root: bool, unknown: &mut Vec<String>) {
    if flag(schema, "x-kubernetes-int-or-string") && !value.is_object() {
        return;
    }
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if (root || embedded) && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    // metadata is validated separately; only its known shape matters.
                    continue;
                }
                let sub = props
                    .and_then(|p| p.get(&k))
                    .or_else(|| addl.filter(|a| a.is_object()));
                match sub {
                    Some(s) => {
                        if let Some(v) = map.get_mut(&k) {
                            prune(v, s, &child(path, &k), false, unknown);
                        }
                    }
                    None if preserve || addl.and_then(Value::as_bool) == Some(true) => {}
                    None => {
                        map.remove(&k);
                        unknown.push(child(path, &k));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    prune(v, s, &index(path, i), false, unknown);
                }
            }
        }
        _ => {}
    }
}

/// Drops `null` values of non-nullable fields, or replaces them with the field's default
/// (apiextensions `PruneNonNullableNullsWithoutDefaults`).
pub fn drop_nulls(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let Some(sub) = props.and_then(|p| p.get(&k)).or(addl) else {
                    continue;
                };
                if map.get(&k).is_some_and(Value::is_null) && !flag(sub, "nullable") {
                    match sub.get("default") {
                        Some(d) => {
                            map.insert(k.clone(), d.clone());
                        }
                        None => {
                            map.remove(&k);
                        }
                    }
                }
                if let Some(v) = map.get_mut(&k) {
                    drop_nulls(v, sub);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for v in items.iter_mut() {
                    drop_nulls(v, s);
                }
            }
        }
        _ => {}
    }
}

/// Fills in `default`s of missing properties, recursively (defaults are themselves defaulted).
pub fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if !map.contains_key(k)
                        && let Some(d) = sub.get("default")
                    {
                        map.insert(k.clone(), d.clone());
                    }
                    if let Some(v) = map.get_mut(k) {
                        apply_defaults(v, sub);
                    }
                }
            }
            if let Some(addl) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let known = schema.get("properties").and_then(Value::as_object);
                for (k, v) in map.iter_mut() {
                    if known.is_none_or(|p| !p.contains_key(k)) {
                        apply_defaults(v, addl);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for v in items.iter_mut() {
                    apply_defaults(v, s);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    match expected {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        _ => true,
    }
}

fn invalid(path: &str, value: Value, detail: String) -> FieldError {
    FieldError::new(path, FieldErrorKind::Invalid { value, detail })
}

/// OpenAPI v3 (structural subset) validation with the apiserver's messages. `root` skips the
/// metadata subtree, which is validated by the generic metadata rules.
pub fn validate(value: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            let t = schema["type"].as_str().unwrap_or("object");
            errs.push(FieldError::new(
                path,
                FieldErrorKind::TypeInvalid {
                    value: json!("null"),
                    detail: format!("{path} in body must be of type {t}: \"null\""),
                },
            ));
        }
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if int_or_string {
        if !(value.is_string() || type_matches("integer", value)) {
            errs.push(FieldError::new(
                path,
                FieldErrorKind::TypeInvalid {
                    value: json!(type_name(value)),
                    detail: format!(
                        "{path} in body must be of type integer,string: \"{}\"",
                        type_name(value)
                    ),
                },
            ));
            return;
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str)
        && !type_matches(t, value)
    {
        errs.push(FieldError::new(
            path,
            FieldErrorKind::TypeInvalid {
                value: json!(type_name(value)),
                detail: format!(
                    "{path} in body must be of type {t}: \"{}\"",
                    type_name(value)
                ),
            },
        ));
        return;
    }

    if let Some(en) = schema.get("enum").and_then(Value::as_array)
        && !en.iter().any(|e| json_eq(e, value))
    {
        errs.push(FieldError::new(
            path,
            FieldErrorKind::NotSupported {
                value: value.clone(),
                supported: en.clone(),
            },
        ));
    }

    match value {
        Value::Number(_) => validate_number(value, schema, path, errs),
        Value::String(s) => validate_string(s, value, schema, path, errs),
        Value::Array(items) => validate_array(items, value, schema, path, errs),
        Value::Object(map) => validate_object(map, schema, path, errs),
        _ => {}
    }

    for key in ["allOf"] {
        if let Some(subs) = schema.get(key).and_then(Value::as_array) {
            for s in subs {
                validate(value, s, path, errs);
            }
        }
    }
    if let Some(subs) = schema.get("anyOf").and_then(Value::as_array) {
        let ok = subs.iter().any(|s| {
            let mut e = Vec::new();
            validate(value, s, path, &mut e);
            e.is_empty()
        });
        if !ok && !subs.is_empty() {
            errs.push(invalid(
                path,
                value.clone(),
                format!("{path} in body must match at least one schema in anyOf"),
            ));
        }
    }
    if let Some(subs) = schema.get("oneOf").and_then(Value::as_array) {
        let n = subs
            .iter()
            .filter(|s| {
                let mut e = Vec::new();
                validate(value, s, path, &mut e);
                e.is_empty()
            })
            .count();
        if n != 1 && !subs.is_empty() {
            errs.push(invalid(
                path,
                value.clone(),
                format!("{path} in body must validate one and only one schema (oneOf)"),
            ));
        }
    }
    if let Some(not) = schema.get("not") {
        let mut e = Vec::new();
        validate(value, not, path, &mut e);
        if e.is_empty() {
            errs.push(invalid(
                path,
                value.clone(),
                format!("{path} in body should not be valid against the given schema"),
            ));
        }
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn validate_number(value: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(n) = value.as_f64() else { return };
    let excl_min = flag(schema, "exclusiveMinimum");
    let excl_max = flag(schema, "exclusiveMaximum");
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && (n < min || (excl_min && n == min))
    {
        let op = if excl_min {
            "greater than"
        } else {
            "greater than or equal to"
        };
        errs.push(invalid(
            path,
            value.clone(),
            format!("{path} in body should be {op} {}", schema["minimum"]),
        ));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && (n > max || (excl_max && n == max))
    {
        let op = if excl_max {
            "less than"
        } else {
            "less than or equal to"
        };
        errs.push(invalid(
            path,
            value.clone(),
            format!("{path} in body should be {op} {}", schema["maximum"]),
        ));
    }
    if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64)
        && m > 0.0
        && (n / m).fract() != 0.0
    {
        errs.push(invalid(
            path,
            value.clone(),
            format!(
                "{path} in body should be a multiple of {}",
                schema["multipleOf"]
            ),
        ));
    }
    if schema.get("format").and_then(Value::as_str) == Some("int32")
        && value.as_i64().is_some_and(|i| i32::try_from(i).is_err())
    {
        errs.push(invalid(
            path,
            value.clone(),
            format!("{path} in body must be of type int32: \"{value}\""),
        ));
    }
}

fn validate_string(s: &str, value: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let len = s.chars().count();
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len as u64 > max
    {
        errs.push(FieldError::new(
            path,
            FieldErrorKind::TooLong { max: max as usize },
        ));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && (len as u64) < min
    {
        errs.push(invalid(
            path,
            value.clone(),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(p) {
            Ok(re) if !re.is_match(s) => errs.push(invalid(
                path,
                value.clone(),
                format!("{path} in body should match '{p}'"),
            )),
            _ => {}
        }
    }
    match schema.get("format").and_then(Value::as_str) {
        Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
            errs.push(invalid(
                path,
                value.clone(),
                format!("{path} in body must be of type date-time: \"{s}\""),
            ))
        }
        Some("byte") => {
            use base64::Engine;
            if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
                errs.push(invalid(
                    path,
                    value.clone(),
                    format!("{path} in body must be of type byte: \"{s}\""),
                ))
            }
        }
        _ => {}
    }
}

fn validate_array(
    items: &[Value],
    value: &Value,
    schema: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        errs.push(FieldError::new(
            path,
            FieldErrorKind::TooMany {
                actual: items.len(),
                max: max as usize,
            },
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        errs.push(invalid(
            path,
            value.clone(),
            format!("{path} in body should have at least {min} items"),
        ));
    }
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    if flag(schema, "uniqueItems") || list_type == Some("set") {
        for (i, it) in items.iter().enumerate() {
            if items[..i].contains(it) {
                errs.push(FieldError::new(
                    index(path, i),
                    FieldErrorKind::Duplicate(it.clone()),
                ));
            }
        }
    }
    if list_type == Some("map")
        && let Some(keys) = schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
    {
        let key_of = |it: &Value| -> Value {
            let mut m = Map::new();
            for k in keys.iter().filter_map(Value::as_str) {
                m.insert(k.into(), it.get(k).cloned().unwrap_or(Value::Null));
            }
            Value::Object(m)
        };
        for (i, it) in items.iter().enumerate() {
            let k = key_of(it);
            if items[..i].iter().any(|o| key_of(o) == k) {
                errs.push(FieldError::new(
                    index(path, i),
                    FieldErrorKind::Duplicate(k),
                ));
            }
        }
    }
    if let Some(s) = schema.get("items") {
        for (i, it) in items.iter().enumerate() {
            validate(it, s, &index(path, i), errs);
        }
    }
}

fn validate_object(
    map: &Map<String, Value>,
    schema: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                errs.push(FieldError::new(
                    child(path, r),
                    FieldErrorKind::Required(String::new()),
                ));
            }
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && map.len() as u64 > max
    {
        errs.push(FieldError::new(
            path,
            FieldErrorKind::TooMany {
                actual: map.len(),
                max: max as usize,
            },
        ));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && (map.len() as u64) < min
    {
        errs.push(invalid(
            path,
            json!(map.len()),
            format!("{path} in body should have at least {min} properties"),
        ));
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let addl = schema.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in map {
        if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(s) = props.and_then(|p| p.get(k)).or(addl) {
            validate(v, s, &child(path, k), errs);
        }
    }
}

/// Structural-schema checks on a CRD version schema (spec §11 "Validate the CRD").
pub fn check_structural(schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if obj.contains_key("$ref") {
        errs.push(FieldError::new(
            child(path, "$ref"),
            FieldErrorKind::Forbidden("$ref is not supported".into()),
        ));
    }
    let exempt = flag(schema, "x-kubernetes-int-or-string")
        || flag(schema, "x-kubernetes-preserve-unknown-fields");
    if !exempt && !obj.contains_key("type") {
        errs.push(FieldError::new(
            child(path, "type"),
            FieldErrorKind::Required("must not be empty for specified object fields".into()),
        ));
    }
    if obj.contains_key("properties")
        && schema
            .get("additionalProperties")
            .is_some_and(Value::is_object)
    {
        errs.push(FieldError::new(
            child(path, "additionalProperties"),
            FieldErrorKind::Forbidden(
                "additionalProperties and properties are mutual exclusive".into(),
            ),
        ));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, s) in props {
            check_structural(s, &format!("{}[{k}]", child(path, "properties")), errs);
        }
    }
    if let Some(items) = obj.get("items") {
        check_structural(items, &child(path, "items"), errs);
    }
    if let Some(a) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        check_structural(a, &child(path, "additionalProperties"), errs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "format": "int64"},
                "color": {"type": "string", "enum": ["blue", "red", "green"]},
                "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "mode": {"type": "string", "default": "Auto"},
                "opt": {"type": "string"},
                "nul": {"type": "string", "nullable": true},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "port": {"x-kubernetes-int-or-string": true},
            }},
            "status": {"type": "object", "nullable": true, "properties": {"ok": {"type": "boolean"}}}
        }})
    }

    fn errs(v: Value) -> Vec<String> {
        let mut e = Vec::new();
        validate(&v, &widget_schema(), "", &mut e);
        e.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn messages_match_the_apiserver() {
        assert_eq!(errs(json!({"spec": {}})), vec!["spec.size: Required value"]);
        assert_eq!(
            errs(json!({"spec": {"size": "x"}})),
            vec![
                r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#
            ]
        );
        assert_eq!(
            errs(json!({"spec": {"size": 0}})),
            vec![
                "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
            ]
        );
        assert_eq!(
            errs(json!({"spec": {"size": 1, "color": "pink"}})),
            vec![
                r#"spec.color: Unsupported value: "pink": supported values: "blue", "red", "green""#
            ]
        );
        assert_eq!(
            errs(json!({"spec": {"size": 1, "name": "ABC"}})),
            vec![r#"spec.name: Invalid value: "ABC": spec.name in body should match '^[a-z]+$'"#]
        );
        assert_eq!(
            errs(json!({"spec": {"size": 1, "name": "abcdefg"}})),
            vec!["spec.name: Too long: may not be more than 5 bytes"]
        );
        assert_eq!(
            errs(json!({"spec": {"size": 1, "tags": ["a", "b", "c"]}})),
            vec!["spec.tags: Too many: 3: must have at most 2 items"]
        );
        assert!(errs(json!({"spec": {"size": 1, "port": 80}})).is_empty());
        assert!(errs(json!({"spec": {"size": 1, "port": "http"}})).is_empty());
        assert_eq!(errs(json!({"spec": {"size": 1, "port": true}})).len(), 1);
        assert!(errs(json!({"spec": {"size": 2.0}})).is_empty());
        assert!(errs(json!({"spec": {"size": 1}, "status": null})).is_empty());
    }

    #[test]
    fn prune_nulls_defaults() {
        let mut v = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"size": 1, "junk": 1, "opt": null, "nul": null, "mode": null,
                     "free": {"anything": {"x": 1}}, "labels": {"a": "b"}},
            "extra": true});
        let mut unknown = Vec::new();
        prune(&mut v, &widget_schema(), "", true, &mut unknown);
        assert_eq!(unknown, vec!["extra", "spec.junk"]);
        drop_nulls(&mut v, &widget_schema());
        apply_defaults(&mut v, &widget_schema());
        assert_eq!(
            v["spec"],
            json!({"size": 1, "nul": null, "mode": "Auto", "free": {"anything": {"x": 1}}, "labels": {"a": "b"}})
        );
        assert_eq!(v["metadata"]["name"], "a");
    }

    #[test]
    fn structural_checks() {
        let mut e = Vec::new();
        check_structural(
            &widget_schema(),
            "spec.versions[0].schema.openAPIV3Schema",
            &mut e,
        );
        assert!(e.is_empty(), "{e:?}");
        check_structural(
            &json!({"type": "object", "properties": {"a": {"description": "no type"}}}),
            "s",
            &mut e,
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].field, "s.properties[a].type");
    }
}
