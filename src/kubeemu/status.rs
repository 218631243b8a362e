//! The `Status` error catalog: every failure the emulator returns, with the exact reason, code and
//! message shape of the real API server (spec §9), so clients print what they print on a cluster.

use serde_json::{Value, json};

/// One field-level cause of an `Invalid` (422) error (`k8s.io/apimachinery/pkg/util/validation/field`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Dotted field path, e.g. `spec.size` or `spec.items[0].name`.
    pub field: String,
    pub kind: FieldErrorKind,
}

/// The field error types we produce; `Display` renders the apiserver's message text.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldErrorKind {
    /// `Required value` (+ optional detail).
    Required(String),
    /// `Unsupported value: "pink": supported values: "blue", "red"`.
    NotSupported { value: Value, supported: Vec<Value> },
    /// `Invalid value: <value>: <detail>`.
    Invalid { value: Value, detail: String },
    /// A type mismatch; rendered like `Invalid` (the apiserver uses `Invalid value` for it too).
    TypeInvalid { value: Value, detail: String },
    /// `Forbidden: <detail>`.
    Forbidden(String),
    /// `Too many: 11: must have at most 10 items`.
    TooMany { actual: usize, max: usize },
    /// `Duplicate value: <value>`.
    Duplicate(Value),
    /// `Too long: may not be more than 5 bytes` (maxLength).
    TooLong { max: usize },
}

impl FieldError {
    pub fn new(field: impl Into<String>, kind: FieldErrorKind) -> Self {
        FieldError {
            field: field.into(),
            kind,
        }
    }

    fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required(_) => "FieldValueRequired",
            FieldErrorKind::NotSupported { .. } => "FieldValueNotSupported",
            FieldErrorKind::Invalid { .. } => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid { .. } => "FieldValueTypeInvalid",
            FieldErrorKind::Forbidden(_) => "FieldValueForbidden",
            FieldErrorKind::TooMany { .. } => "FieldValueTooMany",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::TooLong { .. } => "FieldValueTooLong",
        }
    }

    /// The message without the field prefix (what goes in `details.causes[].message`).
    fn body(&self) -> String {
        match &self.kind {
            FieldErrorKind::Required(d) if d.is_empty() => "Required value".to_string(),
            FieldErrorKind::Required(d) => format!("Required value: {d}"),
            FieldErrorKind::NotSupported { value, supported } => {
                let list: Vec<String> = supported.iter().map(render_value).collect();
                format!(
                    "Unsupported value: {}: supported values: {}",
                    render_value(value),
                    list.join(", ")
                )
            }
            FieldErrorKind::Invalid { value, detail }
            | FieldErrorKind::TypeInvalid { value, detail } => {
                if detail.is_empty() {
                    format!("Invalid value: {}", render_value(value))
                } else {
                    format!("Invalid value: {}: {detail}", render_value(value))
                }
            }
            FieldErrorKind::Forbidden(d) => format!("Forbidden: {d}"),
            FieldErrorKind::TooMany { actual, max } => {
                format!("Too many: {actual}: must have at most {max} items")
            }
            FieldErrorKind::Duplicate(v) => format!("Duplicate value: {}", render_value(v)),
            FieldErrorKind::TooLong { max } => {
                format!("Too long: may not be more than {max} bytes")
            }
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.body())
        } else {
            write!(f, "{}: {}", self.field, self.body())
        }
    }
}

/// Go's `%#v`-like rendering that field errors use: strings quoted, numbers bare.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// Identity of the object an error is about: `details.{name,group,kind}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    pub group: String,
    /// Resource plural (NotFound/AlreadyExists/Conflict) or Kind (Invalid), per the catalog.
    pub kind: String,
    pub name: String,
}

impl Subject {
    /// `widgets.example.com` or `secrets` (core types have no group suffix).
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// Every error the emulator can answer with.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ApiError {
    #[error("{} {:?} not found", .0.qualified(), .0.name)]
    NotFound(Subject),
    #[error("the server could not find the requested resource")]
    NoResource,
    #[error("{} {:?} already exists", .0.qualified(), .0.name)]
    AlreadyExists(Subject),
    #[error(
        "Operation cannot be fulfilled on {} {:?}: the object has been modified; please apply your changes to the latest version and try again",
        .0.qualified(), .0.name
    )]
    Conflict(Subject),
    #[error("Operation cannot be fulfilled on {} {:?}: {}", .0.qualified(), .0.name, .1)]
    Precondition(Subject, String),
    /// SSA conflicts: message pre-rendered, causes are `(manager message, field)`.
    #[error("{message}")]
    ApplyConflict {
        subject: Subject,
        message: String,
        causes: Vec<(String, String)>,
    },
    #[error("{} {:?} is invalid: {}", .0.qualified(), .0.name, render_causes(.1))]
    Invalid(Subject, Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    /// A patch that parsed but could not be applied (e.g. a failed JSON patch `test`).
    #[error("the server rejected our request due to an error in our request")]
    PatchFailed(String),
    #[error("{} {:?} is forbidden: {}", .0.qualified(), .0.name, .1)]
    Forbidden(Subject, String),
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Internal(String),
}

fn render_causes(causes: &[FieldError]) -> String {
    if causes.len() == 1 {
        causes[0].to_string()
    } else {
        let parts: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        format!("[{}]", parts.join(", "))
    }
}

impl ApiError {
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) | ApiError::NoResource => 404,
            ApiError::AlreadyExists(_)
            | ApiError::Conflict(_)
            | ApiError::Precondition(..)
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid(..) | ApiError::PatchFailed(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(..) => 403,
            ApiError::MethodNotAllowed => 405,
            ApiError::Expired(_) => 410,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::NoResource => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict(_) | ApiError::Precondition(..) | ApiError::ApplyConflict { .. } => {
                "Conflict"
            }
            ApiError::Invalid(..) | ApiError::PatchFailed(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden(..) => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::Expired(_) => "Expired",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `v1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound(sub)
            | ApiError::AlreadyExists(sub)
            | ApiError::Conflict(sub)
            | ApiError::Precondition(sub, _)
            | ApiError::Forbidden(sub, _) => Some(subject_details(sub)),
            ApiError::ApplyConflict {
                subject, causes, ..
            } => {
                let mut d = subject_details(subject);
                d["causes"] = causes
                    .iter()
                    .map(|(m, f)| json!({"type": "FieldManagerConflict", "message": m, "field": f}))
                    .collect();
                Some(d)
            }
            ApiError::Invalid(sub, causes) => {
                let mut d = subject_details(sub);
                d["causes"] = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason(), "message": c.body(), "field": c.field}))
                    .collect();
                Some(d)
            }
            ApiError::PatchFailed(m) => {
                Some(json!({"causes": [{"type": "UnexpectedServerResponse", "message": m}]}))
            }
            _ => None,
        };
        if let Some(d) = details {
            s["details"] = d;
        }
        s
    }
}

fn subject_details(sub: &Subject) -> Value {
    let mut d = json!({"name": sub.name, "kind": sub.kind});
    if !sub.group.is_empty() {
        d["group"] = json!(sub.group);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget(kind: &str) -> Subject {
        Subject {
            group: "example.com".into(),
            kind: kind.into(),
            name: "w1".into(),
        }
    }

    #[test]
    fn not_found_message_and_details() {
        let e = ApiError::NotFound(widget("widgets"));
        assert_eq!(e.to_string(), r#"widgets.example.com "w1" not found"#);
        let s = e.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["kind"], "widgets");
        let core = ApiError::NotFound(Subject {
            group: String::new(),
            kind: "secrets".into(),
            name: "s1".into(),
        });
        assert_eq!(core.to_string(), r#"secrets "s1" not found"#);
    }

    #[test]
    fn conflict_message_is_verbatim() {
        assert_eq!(
            ApiError::Conflict(widget("widgets")).to_string(),
            "Operation cannot be fulfilled on widgets.example.com \"w1\": the object has been modified; please apply your changes to the latest version and try again"
        );
    }

    #[test]
    fn invalid_single_and_many() {
        let e1 = FieldError::new(
            "spec.color",
            FieldErrorKind::NotSupported {
                value: json!("pink"),
                supported: vec![json!("blue"), json!("red")],
            },
        );
        let e2 = FieldError::new("spec.size", FieldErrorKind::Required(String::new()));
        let one = ApiError::Invalid(widget("Widget"), vec![e1.clone()]);
        assert_eq!(
            one.to_string(),
            r#"Widget.example.com "w1" is invalid: spec.color: Unsupported value: "pink": supported values: "blue", "red""#
        );
        let two = ApiError::Invalid(widget("Widget"), vec![e1, e2]);
        assert!(two.to_string().ends_with(": Required value]"));
        let st = two.to_status();
        assert_eq!(st["details"]["causes"][1]["reason"], "FieldValueRequired");
        assert_eq!(st["details"]["causes"][1]["field"], "spec.size");
        assert_eq!(st["code"], 422);
    }
}
