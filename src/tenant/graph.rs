//! Microsoft Graph (app-only): organization, licences, users, the migration app registration and
//! its consent, `$batch`, and the cross-tenant migration job API. Paging follows
//! `@odata.nextLink` verbatim; unknown enum values are kept as strings.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{Api, ErrorClass, TenantError};
use super::http::{Family, Idempotency, Transport, retry_after, transport_error};
use super::identity::{AppCredential, TokenProvider};

/// Resource app id of Office 365 Exchange Online.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// Resource app id of Microsoft Graph.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// SKU id of Cross Tenant User Data Migration.
pub const MIGRATION_SKU_ID: &str = "946ce899-873d-44bb-9d8b-671870cbfdbf";
/// App-role value of the Exchange permission a migration app needs.
pub const MAILBOX_MIGRATION_ROLE: &str = "Mailbox.Migration";
/// The redirect URI Microsoft's procedure registers.
pub const MIGRATION_APP_REDIRECT: &str = "https://office.com";
/// Graph's limit on requests in one `$batch`.
pub const MAX_BATCH: usize = 20;

/// `GET /organization` entry.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Organization {
    pub id: String,
    pub display_name: Option<String>,
    pub verified_domains: Vec<VerifiedDomain>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VerifiedDomain {
    pub name: String,
    pub is_initial: bool,
    pub is_default: bool,
}

impl Organization {
    /// The `*.onmicrosoft.com` domain (`isInitial`).
    pub fn initial_domain(&self) -> Option<&str> {
        self.verified_domains
            .iter()
            .find(|d| d.is_initial)
            .map(|d| d.name.as_str())
    }
}

/// `GET /subscribedSkus` entry.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscribedSku {
    pub id: String,
    pub sku_id: String,
    pub sku_part_number: String,
    pub consumed_units: i64,
    pub prepaid_units: PrepaidUnits,
    pub capability_status: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct PrepaidUnits {
    pub enabled: i64,
}

impl SubscribedSku {
    /// Cross Tenant User Data Migration, matched by id first and part number second (it varies by channel).
    pub fn is_migration_sku(&self) -> bool {
        self.sku_id.eq_ignore_ascii_case(MIGRATION_SKU_ID)
            || self
                .sku_part_number
                .eq_ignore_ascii_case("Cross_tenant_user_data_migration")
            || self
                .sku_part_number
                .eq_ignore_ascii_case("CROSSTENANTUSERDATAMIGRATION")
    }

    pub fn available(&self) -> i64 {
        (self.prepaid_units.enabled - self.consumed_units).max(0)
    }
}

/// A directory user (the properties the operator selects).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphUser {
    pub id: String,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub usage_location: Option<String>,
    pub assigned_licenses: Vec<AssignedLicense>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AssignedLicense {
    pub sku_id: String,
    pub disabled_plans: Vec<String>,
}

/// The select list used for users.
pub const USER_SELECT: &str = "id,userPrincipalName,mail,usageLocation,assignedLicenses";

/// An application registration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Application {
    pub id: String,
    pub app_id: String,
    pub display_name: Option<String>,
    pub sign_in_audience: Option<String>,
    pub password_credentials: Vec<PasswordCredential>,
    pub required_resource_access: Vec<Value>,
    pub tags: Vec<String>,
}

/// A client secret (the text appears only in the addPassword answer).
#[derive(Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordCredential {
    pub key_id: String,
    pub display_name: Option<String>,
    pub end_date_time: Option<chrono::DateTime<chrono::Utc>>,
    pub secret_text: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Debug for PasswordCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordCredential")
            .field("key_id", &self.key_id)
            .field("display_name", &self.display_name)
            .field("end_date_time", &self.end_date_time)
            .field(
                "secret_text",
                &self.secret_text.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A service principal.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub app_display_name: Option<String>,
    pub app_owner_organization_id: Option<String>,
    pub app_roles: Vec<AppRole>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AppRole {
    pub id: String,
    pub value: Option<String>,
}

impl ServicePrincipal {
    /// The id of the app role with this value (ids are resolved at runtime, never hard-coded).
    pub fn role_id(&self, value: &str) -> Option<&str> {
        self.app_roles
            .iter()
            .find(|r| r.value.as_deref() == Some(value))
            .map(|r| r.id.as_str())
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AppRoleAssignment {
    pub id: String,
    pub app_role_id: String,
    pub principal_id: String,
    pub resource_id: String,
}

/// One request of a `$batch`.
#[derive(Clone, Debug, Serialize)]
pub struct BatchRequest {
    pub id: String,
    pub method: String,
    /// Relative URL without the version prefix.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Value>,
}

/// `Retry-After` of one `$batch` item (header names are case-insensitive).
fn batch_item_retry_after(r: &BatchResponse) -> Option<std::time::Duration> {
    r.headers.as_object()?.iter().find_map(|(k, v)| {
        k.eq_ignore_ascii_case("retry-after")
            .then(|| v.as_str().and_then(super::error::parse_retry_after))
            .flatten()
    })
}

/// One answer of a `$batch`.
#[derive(Clone, Debug, Deserialize)]
pub struct BatchResponse {
    pub id: String,
    pub status: u16,
    #[serde(default)]
    pub body: Value,
    #[serde(default)]
    pub headers: Value,
}

/// A cross-tenant migration job (`/solutions/migrations/crossTenantMigrationJobs`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CrossTenantMigrationJob {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub source_tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tenant_id: Option<String>,
    pub complete_after_date_time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_settings: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<String>,
    pub resource_type: String,
    pub resources: Vec<String>,
}

/// A user of a migration job with its per-workload status.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CrossTenantMigrationTask {
    pub id: String,
    pub current_status: Vec<Value>,
}

/// A Graph client for one tenant, acting as one app.
#[derive(Clone)]
pub struct GraphClient {
    transport: Transport,
    tokens: TokenProvider,
    credential: AppCredential,
    tenant_id: String,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
}

impl GraphClient {
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
        }
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    fn url(&self, version: &str, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            return path.to_string();
        }
        format!("{}{}", self.tokens.endpoints().graph_base(version), path)
    }

    /// Sends one request and decodes the JSON answer (`None` for an empty 2xx body).
    #[tracing::instrument(skip(self, body), fields(tenant = %self.tenant_id))]
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<Option<Value>, TenantError> {
        let family = if method == reqwest::Method::GET {
            Family::GraphRead
        } else {
            Family::GraphWrite
        };
        let resource = self.tokens.endpoints().graph_resource.clone();
        let mut refreshed = false;
        loop {
            let result = self
                .transport
                .execute(
                    Api::Graph,
                    &self.tenant_id,
                    family,
                    method.as_str(),
                    idempotency,
                    || async {
                        let token = self.tokens.token(&self.credential, &resource).await?;
                        let mut req = self
                            .transport
                            .client
                            .request(method.clone(), url)
                            .bearer_auth(token.token.expose())
                            .header("client-request-id", uuid::Uuid::new_v4().to_string());
                        if let Some(b) = body {
                            req = req.json(b);
                        }
                        let resp = req
                            .send()
                            .await
                            .map_err(|e| transport_error(Api::Graph, &e))?;
                        let status = resp.status().as_u16();
                        let retry = retry_after(resp.headers());
                        let bytes = resp
                            .bytes()
                            .await
                            .map_err(|e| transport_error(Api::Graph, &e))?;
                        if (200..300).contains(&status) {
                            if bytes.is_empty() {
                                return Ok(None);
                            }
                            return serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                                TenantError::Decode {
                                    api: "graph",
                                    message: e.to_string(),
                                }
                            });
                        }
                        Err(parse_graph_error(status, &bytes, retry))
                    },
                )
                .await;
            match result {
                Err(TenantError::Graph { status: 401, .. })
                | Err(TenantError::Http { status: 401, .. })
                    if !refreshed =>
                {
                    refreshed = true;
                    self.tokens.invalidate(&self.credential, &resource).await;
                }
                other => return other,
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, version: &str, path: &str) -> Result<T, TenantError> {
        let v = self
            .send(
                reqwest::Method::GET,
                &self.url(version, path),
                None,
                Idempotency::Safe,
            )
            .await?
            .unwrap_or(Value::Null);
        serde_json::from_value(v).map_err(|e| TenantError::Decode {
            api: "graph",
            message: e.to_string(),
        })
    }

    async fn get_opt<T: DeserializeOwned>(
        &self,
        version: &str,
        path: &str,
    ) -> Result<Option<T>, TenantError> {
        match self.get(version, path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn post<T: DeserializeOwned>(
        &self,
        version: &str,
        path: &str,
        body: &Value,
        idem: Idempotency,
    ) -> Result<T, TenantError> {
        let v = self
            .send(
                reqwest::Method::POST,
                &self.url(version, path),
                Some(body),
                idem,
            )
            .await?
            .unwrap_or(Value::Null);
        serde_json::from_value(v).map_err(|e| TenantError::Decode {
            api: "graph",
            message: e.to_string(),
        })
    }

    /// Every item of a collection, following `@odata.nextLink` verbatim.
    pub async fn list<T: DeserializeOwned>(
        &self,
        version: &str,
        path: &str,
    ) -> Result<Vec<T>, TenantError> {
        let mut out = Vec::new();
        let mut next = Some(self.url(version, path));
        while let Some(url) = next.take() {
            let v = self
                .send(reqwest::Method::GET, &url, None, Idempotency::Safe)
                .await?
                .unwrap_or(Value::Null);
            let page: Page<T> = serde_json::from_value(v).map_err(|e| TenantError::Decode {
                api: "graph",
                message: e.to_string(),
            })?;
            out.extend(page.value);
            next = page.next_link;
        }
        Ok(out)
    }

    // ---- organization and licences ----

    pub async fn organization(&self) -> Result<Organization, TenantError> {
        let orgs: Vec<Organization> = self
            .list(
                "v1.0",
                "/organization?$select=id,displayName,verifiedDomains",
            )
            .await?;
        orgs.into_iter().next().ok_or_else(|| TenantError::Decode {
            api: "graph",
            message: "no organization returned".into(),
        })
    }

    pub async fn subscribed_skus(&self) -> Result<Vec<SubscribedSku>, TenantError> {
        self.list("v1.0", "/subscribedSkus").await
    }

    // ---- users ----

    /// A user by id or UPN; `None` when absent.
    pub async fn get_user(&self, id_or_upn: &str) -> Result<Option<GraphUser>, TenantError> {
        self.get_opt(
            "v1.0",
            &format!("/users/{}?$select={USER_SELECT}", encode_segment(id_or_upn)),
        )
        .await
    }

    /// Many users by UPN with `$batch` (20 per round trip); absent users are `None`.
    pub async fn get_users(&self, upns: &[String]) -> Result<Vec<Option<GraphUser>>, TenantError> {
        let mut out = Vec::with_capacity(upns.len());
        for chunk in upns.chunks(MAX_BATCH) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .enumerate()
                .map(|(i, upn)| BatchRequest {
                    id: i.to_string(),
                    method: "GET".into(),
                    url: format!("/users/{}?$select={USER_SELECT}", encode_segment(upn)),
                    body: None,
                    headers: None,
                })
                .collect();
            let mut responses = self.batch(&requests).await?;
            responses.sort_by_key(|r| r.id.parse::<usize>().unwrap_or(usize::MAX));
            for r in responses {
                match r.status {
                    200 => out.push(Some(serde_json::from_value(r.body).map_err(|e| {
                        TenantError::Decode {
                            api: "graph",
                            message: e.to_string(),
                        }
                    })?)),
                    404 => out.push(None),
                    status => {
                        let retry = r
                            .headers
                            .get("Retry-After")
                            .and_then(Value::as_str)
                            .and_then(super::error::parse_retry_after);
                        return Err(parse_graph_error(
                            status,
                            r.body.to_string().as_bytes(),
                            retry,
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Sets a user's usage location (needed before licensing).
    pub async fn set_usage_location(
        &self,
        user_id: &str,
        location: &str,
    ) -> Result<(), TenantError> {
        let body = json!({"usageLocation": location});
        self.send(
            reqwest::Method::PATCH,
            &self.url("v1.0", &format!("/users/{}", encode_segment(user_id))),
            Some(&body),
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }

    /// Assigns and removes licences (repeating it converges on the same state).
    pub async fn assign_license(
        &self,
        user_id: &str,
        add: &[AssignedLicense],
        remove: &[String],
    ) -> Result<GraphUser, TenantError> {
        let body = json!({"addLicenses": add, "removeLicenses": remove});
        self.post(
            "v1.0",
            &format!("/users/{}/assignLicense", encode_segment(user_id)),
            &body,
            Idempotency::Safe,
        )
        .await
    }

    // ---- applications, consent ----

    pub async fn find_applications_by_name(
        &self,
        display_name: &str,
    ) -> Result<Vec<Application>, TenantError> {
        self.list(
            "v1.0",
            &format!(
                "/applications?$filter=displayName eq '{}'",
                odata_string(display_name)
            ),
        )
        .await
    }

    pub async fn get_application_by_app_id(
        &self,
        app_id: &str,
    ) -> Result<Option<Application>, TenantError> {
        self.get_opt(
            "v1.0",
            &format!("/applications(appId='{}')", odata_string(app_id)),
        )
        .await
    }

    /// Creates the multi-tenant migration app (redirect https://office.com, Exchange
    /// `Mailbox.Migration` resolved from the Exchange service principal). `tag` marks it as ours.
    /// Unsafe to repeat; prefer [`GraphClient::ensure_migration_app`], which looks the app up by
    /// name and tag before and after an ambiguous failure.
    pub async fn create_migration_app(
        &self,
        display_name: &str,
        mailbox_migration_role_id: &str,
        tag: &str,
    ) -> Result<Application, TenantError> {
        let body = json!({
            "displayName": display_name,
            "signInAudience": "AzureADMultipleOrgs",
            "web": {"redirectUris": [MIGRATION_APP_REDIRECT]},
            "tags": [tag],
            "requiredResourceAccess": [{
                "resourceAppId": EXCHANGE_APP_ID,
                "resourceAccess": [{"id": mailbox_migration_role_id, "type": "Role"}]
            }]
        });
        // Not idempotent: a retry after a lost answer would register a second app. Callers look the
        // app up by its tag first and persist a create-pending marker.
        self.post("v1.0", "/applications", &body, Idempotency::Unsafe)
            .await
    }

    /// The migration app carrying `tag` (ours), found by display name; `None` when absent.
    pub async fn find_migration_app(
        &self,
        display_name: &str,
        tag: &str,
    ) -> Result<Option<Application>, TenantError> {
        Ok(self
            .find_applications_by_name(display_name)
            .await?
            .into_iter()
            .find(|a| a.tags.iter().any(|t| t == tag)))
    }

    /// Finds the migration app by name and tag, or creates it once. `POST /applications` is not
    /// idempotent, so it is never repeated blindly: after an answer that was lost (the create may
    /// have landed) the app is looked up again, and only if it is still absent is the error
    /// returned, for the caller to call this again later (Graph reads can lag a create by a few
    /// seconds, so an immediate second create could register a duplicate).
    pub async fn ensure_migration_app(
        &self,
        display_name: &str,
        mailbox_migration_role_id: &str,
        tag: &str,
    ) -> Result<Application, TenantError> {
        if let Some(app) = self.find_migration_app(display_name, tag).await? {
            return Ok(app);
        }
        match self
            .create_migration_app(display_name, mailbox_migration_role_id, tag)
            .await
        {
            Ok(app) => Ok(app),
            Err(e) if e.may_have_applied() => {
                self.find_migration_app(display_name, tag).await?.ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn delete_application(&self, object_id: &str) -> Result<(), TenantError> {
        match self
            .send(
                reqwest::Method::DELETE,
                &self.url("v1.0", &format!("/applications/{object_id}")),
                None,
                Idempotency::Safe,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Adds a client secret (returned once). Never retried after an ambiguous failure
    /// ([`TenantError::may_have_applied`]): the secret may exist without anyone knowing its text.
    /// Recovery: [`GraphClient::replace_password`], which removes credentials of the same display
    /// name before adding one.
    pub async fn add_password(
        &self,
        object_id: &str,
        display_name: &str,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Result<PasswordCredential, TenantError> {
        let body = json!({"passwordCredential": {"displayName": display_name, "endDateTime": end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}});
        self.post(
            "v1.0",
            &format!("/applications/{object_id}/addPassword"),
            &body,
            Idempotency::Unsafe,
        )
        .await
    }

    /// Adds a client secret named `display_name` so that exactly one secret of that name exists
    /// and its text is known: credentials of that name left by an earlier call whose answer was
    /// lost (their text is unrecoverable) are removed first, and an ambiguous failure of
    /// addPassword is followed by the same clean-up and one more attempt (at most `3` in all).
    pub async fn replace_password(
        &self,
        object_id: &str,
        display_name: &str,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Result<PasswordCredential, TenantError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let app: Option<Application> = self
                .get_opt("v1.0", &format!("/applications/{object_id}"))
                .await?;
            let Some(app) = app else {
                return Err(TenantError::Graph {
                    status: 404,
                    code: "Request_ResourceNotFound".into(),
                    message: format!("application {object_id} does not exist"),
                    retry_after: None,
                });
            };
            for stale in app
                .password_credentials
                .iter()
                .filter(|p| p.display_name.as_deref() == Some(display_name))
            {
                self.remove_password(object_id, &stale.key_id).await?;
            }
            match self.add_password(object_id, display_name, end).await {
                Ok(p) => return Ok(p),
                Err(e) if e.may_have_applied() && attempt < 3 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes a client secret; an unknown key id (already removed) counts as success. Graph
    /// answers that with 400 `No password credential found with keyId '…'`, not 404.
    pub async fn remove_password(&self, object_id: &str, key_id: &str) -> Result<(), TenantError> {
        let body = json!({"keyId": key_id});
        match self
            .send(
                reqwest::Method::POST,
                &self.url("v1.0", &format!("/applications/{object_id}/removePassword")),
                Some(&body),
                Idempotency::Safe,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(TenantError::Graph {
                status: 400,
                message,
                ..
            }) if message.contains("No password credential found") => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn get_service_principal(
        &self,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>, TenantError> {
        self.get_opt("v1.0", &format!("/servicePrincipals(appId='{}')?$select=id,appId,appDisplayName,appOwnerOrganizationId,appRoles", odata_string(app_id))).await
    }

    /// Creates the service principal of an app; if it exists already, returns it.
    pub async fn ensure_service_principal(
        &self,
        app_id: &str,
    ) -> Result<ServicePrincipal, TenantError> {
        if let Some(sp) = self.get_service_principal(app_id).await? {
            return Ok(sp);
        }
        match self
            .post(
                "v1.0",
                "/servicePrincipals",
                &json!({"appId": app_id}),
                Idempotency::Safe,
            )
            .await
        {
            Ok(sp) => Ok(sp),
            Err(e) if e.is_already_exists() => self.get_service_principal(app_id).await?.ok_or(e),
            Err(e) => Err(e),
        }
    }

    pub async fn app_role_assignments(
        &self,
        principal_sp_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, TenantError> {
        self.list(
            "v1.0",
            &format!("/servicePrincipals/{principal_sp_id}/appRoleAssignments"),
        )
        .await
    }

    /// Grants an application permission (admin consent without UI); an existing grant is success.
    pub async fn ensure_app_role_assignment(
        &self,
        principal_sp_id: &str,
        resource_sp_id: &str,
        app_role_id: &str,
    ) -> Result<AppRoleAssignment, TenantError> {
        let existing = self.app_role_assignments(principal_sp_id).await?;
        if let Some(a) = existing.into_iter().find(|a| {
            a.resource_id == resource_sp_id && a.app_role_id.eq_ignore_ascii_case(app_role_id)
        }) {
            return Ok(a);
        }
        let body = json!({"principalId": principal_sp_id, "resourceId": resource_sp_id, "appRoleId": app_role_id});
        match self
            .post(
                "v1.0",
                &format!("/servicePrincipals/{resource_sp_id}/appRoleAssignedTo"),
                &body,
                Idempotency::Safe,
            )
            .await
        {
            Ok(a) => Ok(a),
            Err(e) if e.is_already_exists() => self
                .app_role_assignments(principal_sp_id)
                .await?
                .into_iter()
                .find(|a| {
                    a.resource_id == resource_sp_id
                        && a.app_role_id.eq_ignore_ascii_case(app_role_id)
                })
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    // ---- $batch ----

    /// Sends up to 20 requests in one round trip; per-item statuses are returned, not raised,
    /// in request order.
    ///
    /// Graph throttles the items of a batch one by one: the batch answers 200 and an item
    /// carries 429 with its own `Retry-After`. Such items (and, for GETs, items answering 502,
    /// 503 or 504) are sent again in a smaller batch after the longest `Retry-After` among them
    /// (else exponential backoff), up to the transport's `max_attempts`; items that succeeded
    /// or failed for good are never repeated. After the last attempt an item keeps its last
    /// answer.
    pub async fn batch(
        &self,
        requests: &[BatchRequest],
    ) -> Result<Vec<BatchResponse>, TenantError> {
        if requests.len() > MAX_BATCH {
            return Err(TenantError::Config(format!(
                "a Graph $batch holds at most {MAX_BATCH} requests, got {}",
                requests.len()
            )));
        }
        let config = self.transport.config();
        let mut answers: Vec<Option<BatchResponse>> = vec![None; requests.len()];
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        let mut round = 0u32;
        while !pending.is_empty() {
            round += 1;
            let sent: Vec<&BatchRequest> = pending.iter().map(|&i| &requests[i]).collect();
            let mut got = self.batch_once(&sent).await?;
            let mut retry = Vec::new();
            let mut retry_after: Option<std::time::Duration> = None;
            let mut throttled = false;
            for &i in &pending {
                let req = &requests[i];
                let Some(at) = got.iter().position(|r| r.id == req.id) else {
                    return Err(TenantError::Decode {
                        api: "graph",
                        message: format!("$batch answer has no response for request {}", req.id),
                    });
                };
                let resp = got.swap_remove(at);
                let again = match resp.status {
                    429 => {
                        throttled = true;
                        if let Some(ra) = batch_item_retry_after(&resp) {
                            retry_after = Some(retry_after.map_or(ra, |w| w.max(ra)));
                        }
                        true
                    }
                    // A GET changes nothing, so a transient server error is safe to repeat.
                    502..=504 => req.method.eq_ignore_ascii_case("GET"),
                    _ => false,
                };
                if again && round < config.max_attempts {
                    retry.push(i);
                }
                answers[i] = Some(resp);
            }
            if retry.is_empty() {
                break;
            }
            let class = if throttled {
                ErrorClass::Throttled { retry_after }
            } else {
                ErrorClass::Transient
            };
            // `$batch` is a POST: the write bucket is the one its retries go through.
            let wait = self.transport.retry_wait(
                Api::Graph,
                &self.tenant_id,
                Family::GraphWrite,
                class,
                round,
            );
            tracing::debug!(
                items = retry.len(),
                round,
                wait_ms = wait.as_millis() as u64,
                "retrying throttled or failed $batch items"
            );
            tokio::time::sleep(wait).await;
            pending = retry;
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// One `$batch` round trip.
    async fn batch_once(
        &self,
        requests: &[&BatchRequest],
    ) -> Result<Vec<BatchResponse>, TenantError> {
        #[derive(Deserialize)]
        struct Answer {
            responses: Vec<BatchResponse>,
        }
        let all_reads = requests.iter().all(|r| r.method == "GET");
        let idem = if all_reads {
            Idempotency::Safe
        } else {
            Idempotency::Unsafe
        };
        let a: Answer = self
            .post("v1.0", "/$batch", &json!({"requests": requests}), idem)
            .await?;
        Ok(a.responses)
    }

    // ---- cross-tenant migration jobs (beta) ----

    const JOBS: &'static str = "/solutions/migrations/crossTenantMigrationJobs";

    pub async fn list_migration_jobs(&self) -> Result<Vec<CrossTenantMigrationJob>, TenantError> {
        self.list("beta", Self::JOBS).await
    }

    pub async fn get_migration_job(
        &self,
        id: &str,
    ) -> Result<Option<CrossTenantMigrationJob>, TenantError> {
        self.get_opt("beta", &format!("{}/{id}", Self::JOBS)).await
    }

    /// Creates a job; a duplicate display name (a repeat) returns the existing job.
    pub async fn create_migration_job(
        &self,
        job: &CrossTenantMigrationJob,
    ) -> Result<CrossTenantMigrationJob, TenantError> {
        let body = serde_json::to_value(job).map_err(|e| TenantError::Config(e.to_string()))?;
        match self
            .post("beta", Self::JOBS, &body, Idempotency::Safe)
            .await
        {
            Ok(j) => Ok(j),
            Err(e @ TenantError::Graph { status: 422, .. })
                if e.to_string().contains("duplicateDisplayNameJob")
                    || e.to_string().contains("already exists") =>
            {
                self.list_migration_jobs()
                    .await?
                    .into_iter()
                    .find(|j| j.display_name == job.display_name)
                    .ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn validate_migration_job(
        &self,
        id: &str,
    ) -> Result<CrossTenantMigrationJob, TenantError> {
        self.post(
            "beta",
            &format!("{}/{id}/validate", Self::JOBS),
            &Value::Null,
            Idempotency::Safe,
        )
        .await
    }

    pub async fn migrate_migration_job(
        &self,
        id: &str,
    ) -> Result<CrossTenantMigrationJob, TenantError> {
        self.post(
            "beta",
            &format!("{}/{id}/migrate", Self::JOBS),
            &Value::Null,
            Idempotency::Safe,
        )
        .await
    }

    pub async fn cancel_migration_job(&self, id: &str) -> Result<Value, TenantError> {
        self.post(
            "beta",
            &format!("{}/{id}/cancel", Self::JOBS),
            &Value::Null,
            Idempotency::Safe,
        )
        .await
    }

    pub async fn update_migration_job_complete_after(
        &self,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), TenantError> {
        let body =
            json!({"completeAfterDateTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
        self.send(
            reqwest::Method::PATCH,
            &self.url("beta", &format!("{}/{id}", Self::JOBS)),
            Some(&body),
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_migration_job(&self, id: &str) -> Result<(), TenantError> {
        match self
            .send(
                reqwest::Method::DELETE,
                &self.url("beta", &format!("{}/{id}", Self::JOBS)),
                None,
                Idempotency::Safe,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn migration_job_users(
        &self,
        id: &str,
    ) -> Result<Vec<CrossTenantMigrationTask>, TenantError> {
        self.list("beta", &format!("{}/{id}/users", Self::JOBS))
            .await
    }
}

/// Maps a Graph error envelope (`error.code`, `error.message`; branch on code, never message).
pub(crate) fn parse_graph_error(
    status: u16,
    body: &[u8],
    retry: Option<std::time::Duration>,
) -> TenantError {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v["error"].is_object() => {
            let inner = v["error"]["innerError"]["code"].as_str().unwrap_or("");
            let mut message = v["error"]["message"].as_str().unwrap_or("").to_string();
            if !inner.is_empty() {
                message = format!("{message} ({inner})");
            }
            TenantError::Graph {
                status,
                code: v["error"]["code"].as_str().unwrap_or("").to_string(),
                message,
                retry_after: retry,
            }
        }
        _ => TenantError::Http {
            api: "graph",
            status,
            message: String::from_utf8_lossy(body).chars().take(300).collect(),
            retry_after: retry,
        },
    }
}

/// Escapes a value for an OData string literal.
fn odata_string(s: &str) -> String {
    s.replace('\'', "''")
}

/// Percent-encodes a path segment (UPNs may contain `#` for guests, `'`, `+`).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_errors_keep_code_and_inner_code() {
        let e = parse_graph_error(403, br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"x"}}}"#, None);
        assert!(
            matches!(&e, TenantError::Graph { code, .. } if code == "Authorization_RequestDenied")
        );
        assert_eq!(e.category(), "PermissionMissing");
        let e = parse_graph_error(422, br#"{"error":{"code":"BadArgument","message":"displayName already exists.","innerError":{"code":"duplicateDisplayNameJob"}}}"#, None);
        assert!(e.to_string().contains("duplicateDisplayNameJob"));
        let e = parse_graph_error(
            404,
            br#"{"error":{"code":"Request_ResourceNotFound","message":"gone"}}"#,
            None,
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn initial_domain_and_seats() {
        let org: Organization = serde_json::from_value(json!({"id": "t", "verifiedDomains": [
            {"name": "contoso.com", "isInitial": false, "isDefault": true},
            {"name": "contoso.onmicrosoft.com", "isInitial": true, "isDefault": false}]}))
        .expect("org");
        assert_eq!(org.initial_domain(), Some("contoso.onmicrosoft.com"));
        let sku: SubscribedSku = serde_json::from_value(json!({"skuId": MIGRATION_SKU_ID, "skuPartNumber": "x", "consumedUnits": 3, "prepaidUnits": {"enabled": 10}})).expect("sku");
        assert!(sku.is_migration_sku());
        assert_eq!(sku.available(), 7);
    }

    #[test]
    fn segments_and_literals_are_escaped() {
        assert_eq!(encode_segment("a#b@c.com"), "a%23b@c.com");
        assert_eq!(odata_string("O'Neil"), "O''Neil");
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let p = PasswordCredential {
            key_id: "k".into(),
            secret_text: Some("s3cr3t".into()),
            ..Default::default()
        };
        assert!(!format!("{p:?}").contains("s3cr3t"));
    }
}
