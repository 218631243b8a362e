//! Parameter binding for `CmdletInput.Parameters`, as strict as PowerShell: names are
//! case-insensitive, unknown names and missing mandatory parameters fail with
//! `ParameterBindingException`, multi-valued parameters accept a list (replace) or a
//! `#Exchange.GenericHashTable` with `Add` / `Remove`.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::CmdletError;

const BINDING: &str = "System.Management.Automation.ParameterBindingException";
/// PowerShell common parameters and those every Exchange cmdlet accepts.
const COMMON: &[&str] = &[
    "Confirm",
    "WhatIf",
    "ErrorAction",
    "WarningAction",
    "InformationAction",
    "Verbose",
    "Debug",
    "DomainController",
    "OutVariable",
    "ErrorVariable",
    "WarningVariable",
];

/// A multi-valued parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Multi {
    Replace(Vec<String>),
    Modify {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

impl Multi {
    /// Applies to an existing list; `eq` decides duplicates.
    pub fn apply(&self, list: &mut Vec<String>, eq: impl Fn(&str, &str) -> bool) {
        match self {
            Multi::Replace(v) => *list = v.clone(),
            Multi::Modify { add, remove } => {
                list.retain(|x| !remove.iter().any(|r| eq(x, r)));
                for a in add {
                    if !list.iter().any(|x| eq(x, a)) {
                        list.push(a.clone());
                    }
                }
            }
        }
    }
}

pub struct Params {
    cmdlet: &'static str,
    map: Map<String, Value>,
    used: HashSet<String>,
    /// SecureString values decrypted before the world lock was taken: (ciphertext, plaintext).
    decrypted: Vec<(String, Option<String>)>,
}

fn binding(text: String) -> CmdletError {
    CmdletError::new(BINDING, text)
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True".into() } else { "False".into() }),
        _ => None,
    }
}

impl Params {
    pub fn new(cmdlet: &'static str, map: Map<String, Value>) -> Self {
        Self {
            cmdlet,
            map,
            used: HashSet::new(),
            decrypted: Vec::new(),
        }
    }

    /// Decrypts the named SecureString parameters ahead of time, so that the (slow) RSA work
    /// happens outside the world lock. Does not bind the parameters.
    pub fn predecrypt(&mut self, keys: &crate::sim::keys::Keys, names: &[&str]) {
        for name in names {
            if let Some(Value::String(enc)) = self.key(name).and_then(|k| self.map.get(&k)) {
                let plain = keys.decrypt_secure_string(enc);
                self.decrypted.push((enc.clone(), plain));
            }
        }
    }

    /// Decrypts a SecureString value, using the result of [`Params::predecrypt`] when there is
    /// one.
    pub fn decrypt(&self, keys: &crate::sim::keys::Keys, enc: &str) -> Option<String> {
        match self.decrypted.iter().find(|(c, _)| c == enc) {
            Some((_, plain)) => plain.clone(),
            None => keys.decrypt_secure_string(enc),
        }
    }

    fn key(&self, name: &str) -> Option<String> {
        self.map
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        let k = self.key(name)?;
        self.used.insert(k.to_ascii_lowercase());
        self.map.get(&k).cloned().filter(|v| !v.is_null())
    }

    /// A mandatory parameter as raw JSON (e.g. Byte[]).
    pub fn req_raw(&mut self, name: &str) -> Result<Value, CmdletError> {
        self.take(name).ok_or_else(|| {
            binding(format!(
                "Cannot process command because of one or more missing mandatory parameters: {name}."
            ))
        })
    }

    /// An optional parameter as raw JSON (e.g. Byte[]).
    pub fn raw(&mut self, name: &str) -> Option<Value> {
        self.take(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.key(name).is_some()
    }

    /// Marks parameters the simulator accepts but does not model.
    pub fn ignore(&mut self, names: &[&str]) {
        for n in names {
            let _ = self.take(n);
        }
    }

    fn cannot_convert(&self, name: &str, v: &Value, ty: &str) -> CmdletError {
        CmdletError::new(
            "System.Management.Automation.ParameterBindingArgumentTransformationException",
            format!(
                "Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{v}\" to type \"{ty}\"."
            ),
        )
    }

    pub fn str(&mut self, name: &str) -> Result<Option<String>, CmdletError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => as_string(&v)
                .map(Some)
                .ok_or_else(|| self.cannot_convert(name, &v, "System.String")),
        }
    }

    pub fn req_str(&mut self, name: &str) -> Result<String, CmdletError> {
        match self.str(name)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(binding(format!(
                "Cannot bind argument to parameter '{name}' because it is an empty string."
            ))),
            None => Err(binding(format!(
                "Cannot process command because of one or more missing mandatory parameters: {name}."
            ))),
        }
    }

    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, CmdletError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "$true" => {
                Ok(Some(true))
            }
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s == "$false" => {
                Ok(Some(false))
            }
            Some(v) => Err(self.cannot_convert(name, &v, "System.Boolean")),
        }
    }

    pub fn switch(&mut self, name: &str) -> Result<bool, CmdletError> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    /// `Unlimited<Int32>`: a number, a numeric string or "Unlimited" (None).
    pub fn unlimited(&mut self, name: &str) -> Result<Option<Option<u32>>, CmdletError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| Some(Some(n)))
                .ok_or_else(|| self.cannot_convert(name, &Value::Number(n), "Unlimited")),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("unlimited") => Ok(Some(None)),
            Some(Value::String(s)) => s
                .trim()
                .parse::<u32>()
                .map(|n| Some(Some(n)))
                .map_err(|_| self.cannot_convert(name, &Value::String(s), "Unlimited")),
            Some(v) => Err(self.cannot_convert(name, &v, "Unlimited")),
        }
    }

    pub fn guid(&mut self, name: &str) -> Result<Option<Uuid>, CmdletError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => as_string(&v)
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .map(Some)
                .ok_or_else(|| self.cannot_convert(name, &v, "System.Guid")),
        }
    }

    /// ISO-8601; a value without a zone is UTC (EXO's rule for batch schedules).
    pub fn datetime(&mut self, name: &str) -> Result<Option<DateTime<Utc>>, CmdletError> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => {
                let s = as_string(&v).unwrap_or_default();
                let parsed = DateTime::parse_from_rfc3339(s.trim())
                    .map(|d| d.with_timezone(&Utc))
                    .ok()
                    .or_else(|| {
                        [
                            "%Y-%m-%dT%H:%M:%S%.f",
                            "%Y-%m-%dT%H:%M:%S",
                            "%Y-%m-%d %H:%M:%S",
                        ]
                        .iter()
                        .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
                        .map(|n| n.and_utc())
                    });
                parsed
                    .map(Some)
                    .ok_or_else(|| self.cannot_convert(name, &v, "System.DateTime"))
            }
        }
    }

    /// A list or a GenericHashTable with Add/Remove (keys case-insensitive).
    pub fn multi(&mut self, name: &str) -> Result<Option<Multi>, CmdletError> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        let list = |v: &Value| -> Option<Vec<String>> {
            match v {
                Value::Array(xs) => xs.iter().map(as_string).collect(),
                Value::Null => Some(Vec::new()),
                other => as_string(other).map(|s| vec![s]),
            }
        };
        match &v {
            Value::Object(m) => {
                let mut add = Vec::new();
                let mut remove = Vec::new();
                for (k, val) in m {
                    if k.eq_ignore_ascii_case("@odata.type") {
                        continue;
                    }
                    let items = list(val)
                        .ok_or_else(|| self.cannot_convert(name, &v, "MultiValuedProperty"))?;
                    if k.eq_ignore_ascii_case("add") {
                        add = items;
                    } else if k.eq_ignore_ascii_case("remove") {
                        remove = items;
                    } else {
                        return Err(CmdletError::invalid_argument(format!(
                            "The hash table for parameter '{name}' contains the key '{k}'. Only the keys Add and Remove are valid."
                        )));
                    }
                }
                Ok(Some(Multi::Modify { add, remove }))
            }
            other => list(other)
                .map(|l| Some(Multi::Replace(l)))
                .ok_or_else(|| self.cannot_convert(name, &v, "MultiValuedProperty")),
        }
    }

    /// A PSCredential: `{"UserName": "...", "Password": "<base64 RSA ciphertext>"}`.
    pub fn credential(&mut self, name: &str) -> Result<Option<(String, String)>, CmdletError> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        let obj = v.as_object().ok_or_else(|| {
            self.cannot_convert(name, &v, "System.Management.Automation.PSCredential")
        })?;
        let get = |k: &str| {
            obj.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
        };
        match (get("UserName"), get("Password")) {
            (Some(u), Some(p)) => Ok(Some((u, p))),
            _ => Err(self.cannot_convert(name, &v, "System.Management.Automation.PSCredential")),
        }
    }

    /// `-ResultSize`: default 1000, "Unlimited" = no limit.
    pub fn result_size(&mut self) -> Result<Option<usize>, CmdletError> {
        match self.unlimited("ResultSize")? {
            None => Ok(Some(1000)),
            Some(None) => Ok(None),
            Some(Some(n)) => Ok(Some(n as usize)),
        }
    }

    pub fn what_if(&self) -> bool {
        self.key("WhatIf")
            .and_then(|k| self.map.get(&k))
            .is_some_and(|v| v == &Value::Bool(true))
    }

    /// Fails on any parameter the cmdlet did not bind.
    pub fn finish(&self) -> Result<(), CmdletError> {
        for k in self.map.keys() {
            let lk = k.to_ascii_lowercase();
            if self.used.contains(&lk)
                || COMMON.iter().any(|c| c.eq_ignore_ascii_case(k))
                || (lk == "resultsize" && self.cmdlet.starts_with("Get-"))
            {
                continue;
            }
            return Err(binding(format!(
                "A parameter cannot be found that matches parameter name '{k}'."
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Params {
        Params::new("Set-MailUser", v.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn names_are_case_insensitive_and_unknown_names_fail() {
        let mut ps = p(json!({"identity": "a", "Bogus": 1}));
        assert_eq!(ps.req_str("Identity").ok(), Some("a".into()));
        let e = ps.finish().err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("A parameter cannot be found that matches parameter name 'Bogus'.")
        );
    }

    #[test]
    fn missing_mandatory_parameter() {
        let mut ps = p(json!({}));
        let e = ps.req_str("Name").err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some(
                "Cannot process command because of one or more missing mandatory parameters: Name."
            )
        );
    }

    #[test]
    fn generic_hashtable_add_remove() {
        let mut ps = p(json!({"EmailAddresses": {
            "@odata.type": "#Exchange.GenericHashTable",
            "add": ["X500:/o=x"], "Remove": "smtp:a@b.com"}}));
        let m = ps.multi("EmailAddresses").ok().flatten();
        let mut list = vec!["SMTP:a@c.com".to_string(), "smtp:a@b.com".to_string()];
        if let Some(m) = &m {
            m.apply(&mut list, |a, b| a.eq_ignore_ascii_case(b));
        }
        assert_eq!(list, vec!["SMTP:a@c.com", "X500:/o=x"]);
    }

    #[test]
    fn unlimited_values() {
        let mut ps = p(json!({"ResultSize": "Unlimited"}));
        assert_eq!(ps.result_size().ok(), Some(None));
        let mut ps = p(json!({"ResultSize": 5}));
        assert_eq!(ps.result_size().ok(), Some(Some(5)));
        let mut ps = p(json!({}));
        assert_eq!(ps.result_size().ok(), Some(Some(1000)));
    }
}
