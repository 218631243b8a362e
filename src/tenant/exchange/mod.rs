//! Exchange Online admin API: `POST {exchange}/adminapi/beta/{tenant}/InvokeCommand` with the
//! `CmdletInput` envelope, app-only tokens for `https://outlook.office365.com`.
//!
//! [`ExchangeClient::invoke`] is the raw call (envelope, paging, error mapping); `cmdlets.rs`
//! holds the typed wrappers for the cross-tenant flow.

mod cmdlets;
mod secure;
pub mod types;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

pub use cmdlets::*;
pub use secure::SecureStringKey;

use super::error::{Api, ExchangeErrorKind, TenantError};
use super::http::{Family, Idempotency, Transport, retry_after, transport_error};
use super::identity::{AppCredential, TokenProvider};

/// The routing hint app-only clients send (the tenant's system mailbox).
const ANCHOR_MAILBOX: &str = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@";
/// Pages longer than this are requested explicitly (the module's default page size).
const PAGE_SIZE: usize = 1000;

/// A client for one tenant's Exchange Online, acting as one app.
#[derive(Clone)]
pub struct ExchangeClient {
    transport: Transport,
    tokens: TokenProvider,
    credential: AppCredential,
    /// Tenant GUID used in the URL and the anchor mailbox.
    tenant_id: String,
    secure_key: Option<SecureStringKey>,
}

/// Parameters of a cmdlet call: a JSON object of PowerShell parameter names.
pub type Params = Map<String, Value>;

/// One page of output, decoded straight into `T` (no intermediate `Value` per object: a
/// tenant-wide listing of typed objects is a fraction of the memory).
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct SuccessBody<T> {
    #[serde(default = "none")]
    value: Option<Vec<T>>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
}

fn none<T>() -> Option<T> {
    None
}

impl ExchangeClient {
    pub fn new(
        transport: Transport,
        tokens: TokenProvider,
        credential: AppCredential,
        tenant_id: impl Into<String>,
    ) -> Self {
        Self {
            transport,
            tokens,
            credential,
            tenant_id: tenant_id.into(),
            secure_key: None,
        }
    }

    /// The public key SecureString and PSCredential parameters are encrypted with.
    pub fn with_secure_string_key(mut self, key: SecureStringKey) -> Self {
        self.secure_key = Some(key);
        self
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    fn resource(&self) -> String {
        self.tokens.endpoints().exchange_resource.clone()
    }

    /// Runs a cmdlet and returns every output object (following `@odata.nextLink`).
    pub async fn invoke(&self, cmdlet: &str, params: Params) -> Result<Vec<Value>, TenantError> {
        self.invoke_as(cmdlet, params).await
    }

    /// [`ExchangeClient::invoke`], each object decoded as `T` page by page.
    #[tracing::instrument(skip(self, params), fields(tenant = %self.tenant_id))]
    pub async fn invoke_as<T: DeserializeOwned>(
        &self,
        cmdlet: &str,
        params: Params,
    ) -> Result<Vec<T>, TenantError> {
        let url = self.tokens.endpoints().invoke_command_url(&self.tenant_id);
        let body =
            json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": Value::Object(params)}});
        let mut out = Vec::new();
        let mut next = Some(url);
        while let Some(page_url) = next.take() {
            let page = self.post_page(cmdlet, &page_url, &body).await?;
            out.extend(page.value.unwrap_or_default());
            next = page.next_link;
        }
        Ok(out)
    }

    async fn post_page<T: DeserializeOwned>(
        &self,
        cmdlet: &str,
        url: &str,
        body: &Value,
    ) -> Result<SuccessBody<T>, TenantError> {
        // The cmdlet name (a fixed set in this crate, so the label stays bounded): call budgets
        // are per cmdlet.
        let verb = cmdlet.to_string();
        let resource = self.resource();
        let mut refreshed = false;
        loop {
            let result = self
                .transport
                .execute(
                    Api::Exchange,
                    &self.tenant_id,
                    Family::Exchange,
                    &verb,
                    Idempotency::Safe,
                    || async {
                        let token = self.tokens.token(&self.credential, &resource).await?;
                        let resp = self
                            .transport
                            .client
                            .post(url)
                            .bearer_auth(token.token.expose())
                            .header(
                                "X-AnchorMailbox",
                                format!("{ANCHOR_MAILBOX}{}", self.tenant_id),
                            )
                            .header("X-ResponseFormat", "json")
                            .header("X-CmdletName", cmdlet)
                            .header("Prefer", format!("odata.maxpagesize={PAGE_SIZE}"))
                            .header("client-request-id", uuid::Uuid::new_v4().to_string())
                            .json(body)
                            .send()
                            .await
                            .map_err(|e| transport_error(Api::Exchange, &e))?;
                        let status = resp.status().as_u16();
                        let retry = retry_after(resp.headers());
                        let bytes = resp
                            .bytes()
                            .await
                            .map_err(|e| transport_error(Api::Exchange, &e))?;
                        if (200..300).contains(&status) {
                            if bytes.is_empty() {
                                return Ok(SuccessBody {
                                    value: None,
                                    next_link: None,
                                });
                            }
                            return serde_json::from_slice(&bytes).map_err(|e| {
                                TenantError::Decode {
                                    api: "exchange",
                                    message: e.to_string(),
                                }
                            });
                        }
                        Err(parse_error(cmdlet, status, &bytes, retry))
                    },
                )
                .await;
            match result {
                // A 401 can mean the cached token was revoked or expired early: refresh once.
                Err(TenantError::Http { status: 401, .. }) if !refreshed => {
                    refreshed = true;
                    self.tokens.invalidate(&self.credential, &resource).await;
                }
                other => return other,
            }
        }
    }

    /// Encrypts a secret for a SecureString parameter.
    pub fn secure_string(&self, plain: &str) -> Result<Value, TenantError> {
        let key = self.secure_key.as_ref().ok_or_else(|| {
            TenantError::Config(
                "no Exchange SecureString public key is configured (--exchange-public-key)".into(),
            )
        })?;
        Ok(Value::String(key.encrypt(plain)?))
    }

    /// A PSCredential parameter: user name plus encrypted password.
    pub fn credential(&self, user: &str, password: &str) -> Result<Value, TenantError> {
        Ok(json!({"UserName": user, "Password": self.secure_string(password)?}))
    }
}

/// Maps an Exchange error answer to a typed error. The exception type comes from
/// `details[0].message` (`id|Type|text`) or `innererror.internalexception.type`.
pub(crate) fn parse_error(
    cmdlet: &str,
    status: u16,
    body: &[u8],
    retry: Option<std::time::Duration>,
) -> TenantError {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            // 401/403 arrive with an empty or NUL-filled body.
            let message = match status {
                401 => "the token was rejected (wrong audience or tenant, or the app lacks Exchange.ManageAsApp)".to_string(),
                403 => "the app may not run this cmdlet (it needs a directory role such as Exchange Administrator)".to_string(),
                _ => String::from_utf8_lossy(body).chars().filter(|c| !c.is_control()).take(300).collect(),
            };
            return TenantError::Http {
                api: "exchange",
                status,
                message,
                retry_after: retry,
            };
        }
    };
    let err = &v["error"];
    let detail = err["details"][0]["message"].as_str().unwrap_or("");
    let mut parts = detail.splitn(3, '|');
    let (_id, ty, text) = match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(ty), Some(text)) => (id, ty.to_string(), text.to_string()),
        _ => (
            "",
            err["innererror"]["internalexception"]["type"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            detail.to_string(),
        ),
    };
    let text = if text.is_empty() {
        err["message"].as_str().unwrap_or("").to_string()
    } else {
        text
    };
    let mut kind = ExchangeErrorKind::from_exception_type(&ty);
    if text.contains("maximum number of concurrent requests per tenant") {
        kind = ExchangeErrorKind::TenantConcurrentRequests;
    } else if text.contains("already enabled for customization")
        && matches!(kind, ExchangeErrorKind::Other(_))
    {
        // "This operation is not required. Organization is already enabled for customization."
        kind = ExchangeErrorKind::CustomizationAlreadyEnabled;
    } else if text.contains("Enable-OrganizationCustomization")
        && matches!(kind, ExchangeErrorKind::Other(_))
    {
        kind = if text.contains("already enabled") {
            ExchangeErrorKind::CustomizationAlreadyEnabled
        } else {
            ExchangeErrorKind::CustomizationRequired
        };
    }
    if ty.is_empty() && status != 400 {
        return TenantError::Http {
            api: "exchange",
            status,
            message: text,
            retry_after: retry,
        };
    }
    let exception = ty.rsplit('.').next().unwrap_or(&ty).to_string();
    TenantError::Exchange {
        cmdlet: cmdlet.to_string(),
        status,
        kind,
        exception,
        message: text,
        retry_after: retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_pipe_separated_detail() {
        let body = br#"{"error":{"code":"BadRequest","message":"Invalid Operation","details":[{"code":"Client","target":"","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'x@contoso.com' couldn't be found on 'XXXX.PROD.OUTLOOK.COM'."}]}}"#;
        let e = parse_error("Get-MailUser", 400, body, None);
        assert!(e.is_not_found());
        match e {
            TenantError::Exchange {
                exception, message, ..
            } => {
                assert_eq!(exception, "ManagementObjectNotFoundException");
                assert!(message.starts_with("The operation couldn't be performed"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn falls_back_to_the_inner_exception() {
        let body = br#"{"error":{"code":"BadRequest","message":"Error executing cmdlet","innererror":{"internalexception":{"message":"exists","type":"Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"}}}}"#;
        assert!(parse_error("New-MailUser", 400, body, None).is_already_exists());
    }

    #[test]
    fn empty_auth_failures_are_explained() {
        let e = parse_error("Get-Mailbox", 403, &[0, 0, 0], None);
        assert!(matches!(e, TenantError::Http { status: 403, .. }));
        assert_eq!(e.category(), "PermissionMissing");
    }

    #[test]
    fn concurrency_text_is_throttling() {
        let body = br#"{"error":{"code":"BadRequest","message":"x","details":[{"message":"|Microsoft.Exchange.Admin.OData.Core.ODataServiceException|You have reached the maximum number of concurrent requests per tenant. Please wait and try again"}]}}"#;
        let e = parse_error(
            "Get-Mailbox",
            429,
            body,
            Some(std::time::Duration::from_secs(2)),
        );
        assert_eq!(
            e.exchange_kind(),
            Some(&ExchangeErrorKind::TenantConcurrentRequests)
        );
        assert!(matches!(
            e.class(),
            crate::tenant::ErrorClass::Throttled { .. }
        ));
    }
}
