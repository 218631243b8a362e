//! Typed tenant errors and their classification.
//!
//! Callers branch on variants and on [`ErrorClass`], never on message text: the Exchange exception
//! type and the Graph / AADSTS codes are mapped here, once.

use std::time::Duration;

/// How a caller should react to an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth retrying soon with backoff (network trouble, 5xx).
    Transient,
    /// The tenant asked us to slow down; wait `retry_after` when given.
    Throttled { retry_after: Option<Duration> },
    /// Retrying cannot help until someone changes something (credentials, consent, input).
    Terminal,
    /// The object already exists or changed under us; re-read and decide.
    Conflict,
}

/// Which API produced an error (a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    Token,
    Graph,
    Exchange,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Token => "token",
            Api::Graph => "graph",
            Api::Exchange => "exchange",
        }
    }
}

/// Exchange exception types the operator reacts to. Unknown types keep their name in `Other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeErrorKind {
    /// `ManagementObjectNotFoundException` and friends.
    NotFound,
    /// An object with that name or address already exists.
    AlreadyExists,
    /// `Enable-OrganizationCustomization` must run first (dehydrated tenant).
    CustomizationRequired,
    /// Customization was already enabled.
    CustomizationAlreadyEnabled,
    /// `NotAcceptedDomainException`: an address in a domain the tenant does not own.
    NotAcceptedDomain,
    /// `MaximumConcurrentMigrationLimitExceededException`.
    ConcurrencyLimit,
    /// "maximum number of concurrent requests per tenant" (throttling).
    TenantConcurrentRequests,
    /// The user is already in another batch (`UserDuplicateInOtherBatchException`).
    UserInOtherBatch,
    /// The migration app is not consented / the endpoint credentials are rejected.
    EndpointCredentials,
    /// A cmdlet or parameter is not valid (wrong enum value, bad parameter set).
    InvalidParameter,
    /// A command that does nothing (e.g. Stop-MigrationBatch on a finished batch).
    NoOp,
    /// Any other exception type, kept verbatim.
    Other(String),
}

impl ExchangeErrorKind {
    /// Maps a .NET exception type name (full or short) to a kind.
    pub fn from_exception_type(ty: &str) -> Self {
        let short = ty.rsplit('.').next().unwrap_or(ty);
        match short {
            "ManagementObjectNotFoundException"
            | "MigrationBatchNotFoundException"
            | "MigrationUserNotFoundException"
            | "MigrationEndpointNotFoundException"
            | "RecipientNotFoundException"
            | "MigrationRecipientNotFoundException"
            | "ObjectNotFoundException" => Self::NotFound,
            "ADObjectAlreadyExistsException"
            | "ManagementObjectAlreadyExistsException"
            | "MigrationBatchAlreadyExistsException"
            | "MigrationBatchNameAlreadyUsedException"
            | "MigrationEndpointDuplicateException"
            | "ProxyAddressExistsException"
            | "ObjectAlreadyExistsException"
            | "OrganizationRelationshipAlreadyExistsException"
            | "MemberAlreadyExistsException"
            | "WindowsLiveIdAlreadyExistsException"
            | "DuplicateDomainNameException" => Self::AlreadyExists,
            "OrganizationCustomizationRequiredException"
            | "CmdletInvalidOperationInDehydratedContextException"
            | "NeedOrganizationCustomizationException" => Self::CustomizationRequired,
            "OrganizationAlreadyCustomizedException"
            | "OrganizationAlreadyEnabledForCustomizationException" => {
                Self::CustomizationAlreadyEnabled
            }
            "NotAcceptedDomainException" => Self::NotAcceptedDomain,
            "MaximumConcurrentMigrationLimitExceededException" => Self::ConcurrencyLimit,
            "UserDuplicateInOtherBatchException" | "MigrationUserAlreadyExistsException" => {
                Self::UserInOtherBatch
            }
            "MigrationServerConnectionFailedException"
            | "MigrationRemoteEndpointSettingsCouldNotBeAutodiscoveredException"
            | "MigrationPermanentException" => Self::EndpointCredentials,
            "ParameterBindingException"
            | "ArgumentException"
            | "ParameterBindingValidationException"
            | "ParameterBindingArgumentTransformationException"
            | "CmdletInvocationException"
            | "DataValidationException"
            | "ValidationArgumentException" => Self::InvalidParameter,
            "MigrationBatchCannotBeStoppedException"
            | "MigrationBatchCannotBeCompletedException"
            | "MigrationBatchCannotBeStartedException" => Self::NoOp,
            other => Self::Other(other.to_string()),
        }
    }

    /// A short bounded label.
    pub fn label(&self) -> &str {
        match self {
            Self::NotFound => "NotFound",
            Self::AlreadyExists => "AlreadyExists",
            Self::CustomizationRequired => "CustomizationRequired",
            Self::CustomizationAlreadyEnabled => "CustomizationAlreadyEnabled",
            Self::NotAcceptedDomain => "NotAcceptedDomain",
            Self::ConcurrencyLimit => "ConcurrencyLimit",
            Self::TenantConcurrentRequests => "TenantConcurrentRequests",
            Self::UserInOtherBatch => "UserInOtherBatch",
            Self::EndpointCredentials => "EndpointCredentials",
            Self::InvalidParameter => "InvalidParameter",
            Self::NoOp => "NoOp",
            Self::Other(_) => "Other",
        }
    }
}

/// An error from a tenant API. Messages never contain secrets or tokens.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The identity platform rejected the credential or request (`error` + AADSTS codes).
    #[error("token request for tenant {tenant} rejected: {error} (AADSTS{code}): {description}")]
    Token {
        tenant: String,
        error: String,
        code: u64,
        description: String,
    },
    /// A Graph error envelope.
    #[error("Microsoft Graph {status} {code}: {message}")]
    Graph {
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// An Exchange cmdlet failed (`details[0].message` = `id|ExceptionType|text`).
    #[error("Exchange {cmdlet} failed ({exception}): {message}")]
    Exchange {
        cmdlet: String,
        status: u16,
        kind: ExchangeErrorKind,
        exception: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A non-JSON or unexpected HTTP answer (401/403 with an empty body, 5xx from a proxy, …).
    #[error("{api} HTTP {status}: {message}")]
    Http {
        api: &'static str,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request did not complete (connection reset, timeout, TLS).
    #[error("{api} request failed: {message}")]
    Transport {
        api: &'static str,
        message: String,
        timeout: bool,
    },
    /// The answer could not be understood.
    #[error("{api} response could not be decoded: {message}")]
    Decode { api: &'static str, message: String },
    /// Local configuration is wrong (bad certificate, missing key, unusable URL).
    #[error("configuration: {0}")]
    Config(String),
    /// A PKCS#12 (PFX) certificate credential can't be used.
    #[error("certificate credential: {0}")]
    Certificate(#[from] crate::tenant::identity::CertificateError),
    /// Retries were exhausted; the last error is kept.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        attempts: u32,
        last: Box<TenantError>,
    },
}

impl TenantError {
    /// How to react to this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            TenantError::Token { error, code, .. } => match (error.as_str(), *code) {
                ("temporarily_unavailable", _) => ErrorClass::Transient,
                _ => ErrorClass::Terminal,
            },
            TenantError::Graph {
                status,
                code,
                retry_after,
                ..
            } => classify_status(*status, *retry_after, || {
                matches!(
                    code.as_str(),
                    "Request_MultipleObjectsWithSameKeyValue" | "ObjectConflict"
                )
            }),
            TenantError::Exchange {
                status,
                kind,
                retry_after,
                ..
            } => match kind {
                ExchangeErrorKind::TenantConcurrentRequests => ErrorClass::Throttled {
                    retry_after: *retry_after,
                },
                ExchangeErrorKind::AlreadyExists | ExchangeErrorKind::UserInOtherBatch => {
                    ErrorClass::Conflict
                }
                _ => classify_status(*status, *retry_after, || false),
            },
            TenantError::Http {
                status,
                retry_after,
                ..
            } => classify_status(*status, *retry_after, || false),
            TenantError::Transport { .. } => ErrorClass::Transient,
            TenantError::Decode { .. } => ErrorClass::Transient,
            TenantError::Config(_) | TenantError::Certificate(_) => ErrorClass::Terminal,
            TenantError::RetriesExhausted { last, .. } => last.class(),
        }
    }

    /// HTTP status, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            TenantError::Graph { status, .. }
            | TenantError::Exchange { status, .. }
            | TenantError::Http { status, .. } => Some(*status),
            TenantError::Token { .. } => Some(400),
            TenantError::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The Exchange error kind, if this is an Exchange cmdlet error (looking through retries).
    pub fn exchange_kind(&self) -> Option<&ExchangeErrorKind> {
        match self {
            TenantError::Exchange { kind, .. } => Some(kind),
            TenantError::RetriesExhausted { last, .. } => last.exchange_kind(),
            _ => None,
        }
    }

    /// True for an Exchange or Graph "not found".
    pub fn is_not_found(&self) -> bool {
        match self {
            TenantError::Exchange { kind, .. } => *kind == ExchangeErrorKind::NotFound,
            TenantError::Graph { status, code, .. } => {
                *status == 404 || code == "Request_ResourceNotFound"
            }
            TenantError::RetriesExhausted { last, .. } => last.is_not_found(),
            _ => false,
        }
    }

    /// True when the object already exists.
    pub fn is_already_exists(&self) -> bool {
        match self {
            TenantError::Exchange { kind, .. } => *kind == ExchangeErrorKind::AlreadyExists,
            TenantError::Graph {
                status,
                code,
                message,
                ..
            } => {
                *status == 409
                    || code == "Request_MultipleObjectsWithSameKeyValue"
                    || (*status == 400 && message.contains("already exists"))
            }
            TenantError::RetriesExhausted { last, .. } => last.is_already_exists(),
            _ => false,
        }
    }

    /// True when a write may have been applied although no answer arrived (connection dropped
    /// after sending, timeout, an unreadable 2xx, a 5xx without Retry-After). Non-idempotent
    /// writes are never repeated by the transport after such an error; the caller re-reads first.
    pub fn may_have_applied(&self) -> bool {
        match self {
            TenantError::Transport { message, .. } => !message.starts_with("connect:"),
            TenantError::Decode { .. } => true,
            TenantError::Graph { .. } | TenantError::Http { .. } => {
                self.class() == ErrorClass::Transient
            }
            TenantError::RetriesExhausted { last, .. } => last.may_have_applied(),
            _ => false,
        }
    }

    /// A bounded PascalCase category (event reason, metric label).
    pub fn category(&self) -> &'static str {
        match self.class() {
            ErrorClass::Transient => "TenantUnavailable",
            ErrorClass::Throttled { .. } => "ThrottledByTenant",
            ErrorClass::Conflict => "TenantConflict",
            ErrorClass::Terminal => match self {
                TenantError::Token { .. } => "CredentialsRejected",
                TenantError::Graph {
                    status: 401 | 403, ..
                }
                | TenantError::Http {
                    status: 401 | 403, ..
                }
                | TenantError::Exchange {
                    status: 401 | 403, ..
                } => "PermissionMissing",
                TenantError::Config(_) | TenantError::Certificate(_) => "InvalidConfiguration",
                _ => "TenantRejected",
            },
        }
    }
}

/// Maps an HTTP status to a class: 429 and 503-with-Retry-After throttle, 5xx and 408 are
/// transient, 409/412 conflict, the rest of 4xx terminal.
fn classify_status(
    status: u16,
    retry_after: Option<Duration>,
    conflict: impl Fn() -> bool,
) -> ErrorClass {
    match status {
        429 => ErrorClass::Throttled { retry_after },
        503 | 504 if retry_after.is_some() => ErrorClass::Throttled { retry_after },
        500..=599 | 408 => ErrorClass::Transient,
        409 | 412 => ErrorClass::Conflict,
        _ if conflict() => ErrorClass::Conflict,
        _ => ErrorClass::Terminal,
    }
}

/// Parses a `Retry-After` header: delta-seconds (what Graph and Exchange send) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(status: u16, ty: &str) -> TenantError {
        TenantError::Exchange {
            cmdlet: "Get-MailUser".into(),
            status,
            kind: ExchangeErrorKind::from_exception_type(ty),
            exception: ty.into(),
            message: "m".into(),
            retry_after: None,
        }
    }

    #[test]
    fn exchange_exception_types_map_to_kinds() {
        let cases = [
            (
                "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
                ExchangeErrorKind::NotFound,
            ),
            (
                "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                ExchangeErrorKind::AlreadyExists,
            ),
            (
                "NotAcceptedDomainException",
                ExchangeErrorKind::NotAcceptedDomain,
            ),
            (
                "MaximumConcurrentMigrationLimitExceededException",
                ExchangeErrorKind::ConcurrencyLimit,
            ),
            (
                "UserDuplicateInOtherBatchException",
                ExchangeErrorKind::UserInOtherBatch,
            ),
            (
                "OrganizationCustomizationRequiredException",
                ExchangeErrorKind::CustomizationRequired,
            ),
            (
                "Some.New.FancyException",
                ExchangeErrorKind::Other("FancyException".into()),
            ),
        ];
        for (ty, want) in cases {
            assert_eq!(ExchangeErrorKind::from_exception_type(ty), want, "{ty}");
        }
    }

    #[test]
    fn classification_follows_status_and_kind() {
        assert_eq!(
            exchange(400, "ManagementObjectNotFoundException").class(),
            ErrorClass::Terminal
        );
        assert!(exchange(400, "ManagementObjectNotFoundException").is_not_found());
        assert_eq!(
            exchange(400, "ADObjectAlreadyExistsException").class(),
            ErrorClass::Conflict
        );
        assert_eq!(exchange(500, "Whatever").class(), ErrorClass::Transient);
        let throttled = TenantError::Http {
            api: "graph",
            status: 429,
            message: String::new(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            throttled.class(),
            ErrorClass::Throttled {
                retry_after: Some(Duration::from_secs(3))
            }
        );
        let busy = TenantError::Http {
            api: "graph",
            status: 503,
            message: String::new(),
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            busy.class(),
            ErrorClass::Throttled {
                retry_after: Some(Duration::from_secs(1))
            }
        );
        let down = TenantError::Http {
            api: "graph",
            status: 503,
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(down.class(), ErrorClass::Transient);
        let denied = TenantError::Http {
            api: "exchange",
            status: 403,
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(denied.class(), ErrorClass::Terminal);
        assert_eq!(denied.category(), "PermissionMissing");
        let token = TenantError::Token {
            tenant: "t".into(),
            error: "invalid_client".into(),
            code: 7000215,
            description: "d".into(),
        };
        assert_eq!(token.class(), ErrorClass::Terminal);
        assert_eq!(token.category(), "CredentialsRejected");
        let reset = TenantError::Transport {
            api: "exchange",
            message: "reset".into(),
            timeout: false,
        };
        assert_eq!(reset.class(), ErrorClass::Transient);
        let wrapped = TenantError::RetriesExhausted {
            attempts: 5,
            last: Box::new(exchange(400, "ManagementObjectNotFoundException")),
        };
        assert!(wrapped.is_not_found());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
