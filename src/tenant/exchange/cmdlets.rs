//! Typed wrappers for every cmdlet of the cross-tenant flow. Reads return `Option` for "not
//! found"; writes that can be repeated after a lost answer (create → already exists, add → already
//! a member, remove → not found) are idempotent here, so callers never parse message text.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::types::*;
use super::{ExchangeClient, Params};
use crate::tenant::error::{ExchangeErrorKind, TenantError};

/// Builds a parameter object from `(name, value)` pairs, skipping nulls.
pub fn params<const N: usize>(pairs: [(&str, Value); N]) -> Params {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// A multi-valued add/remove (`@{Add=…; Remove=…}`).
pub fn hashtable_add_remove(add: &[String], remove: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("@odata.type".into(), json!("#Exchange.GenericHashTable"));
    if !add.is_empty() {
        m.insert("Add".into(), json!(add));
    }
    if !remove.is_empty() {
        m.insert("Remove".into(), json!(remove));
    }
    Value::Object(m)
}

/// Parameters of New-MigrationEndpoint for a cross-tenant (ExchangeRemoteMove) endpoint.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub name: String,
    pub remote_server: String,
    /// The source tenant's initial domain (`-RemoteTenant`).
    pub remote_tenant: String,
    pub application_id: String,
    pub max_concurrent_migrations: Option<i32>,
    pub max_concurrent_incremental_syncs: Option<i32>,
}

/// Desired state of an organization relationship.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelationshipSettings {
    pub capability: Vec<String>,
    pub oauth_application_id: Option<String>,
    pub published_scopes: Vec<String>,
}

/// Parameters of New-MailUser (MicrosoftOnlineServicesID parameter set) for a target MailUser.
#[derive(Clone, Debug)]
pub struct NewMailUser {
    pub name: String,
    pub alias: String,
    pub display_name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// UPN / MicrosoftOnlineServicesID in the target.
    pub microsoft_online_services_id: String,
    pub primary_smtp_address: String,
    /// The source mailbox's primary address.
    pub external_email_address: String,
    /// Initial password (random; the user never signs in before the move completes).
    pub password: String,
}

/// Attributes Set-MailUser stamps on a target MailUser (only the `Some`/non-empty ones are sent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MailUserChanges {
    pub exchange_guid: Option<String>,
    pub archive_guid: Option<String>,
    pub external_email_address: Option<String>,
    pub add_addresses: Vec<String>,
    pub remove_addresses: Vec<String>,
}

impl MailUserChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Parameters of New-MigrationBatch for a cross-tenant batch.
#[derive(Clone, Debug)]
pub struct NewBatch {
    pub name: String,
    pub source_endpoint: String,
    /// Target addresses, one per user (the CSV's `EmailAddress` column).
    pub users: Vec<String>,
    pub target_delivery_domain: String,
    pub auto_start: bool,
    pub start_after: Option<chrono::DateTime<chrono::Utc>>,
    pub notification_emails: Vec<String>,
}

impl NewBatch {
    /// The CSV Exchange expects: header `EmailAddress`, one target address per line.
    pub fn csv(&self) -> String {
        let mut s = String::from("EmailAddress\r\n");
        for u in &self.users {
            s.push_str(u);
            s.push_str("\r\n");
        }
        s
    }
}

fn first<T: DeserializeOwned>(values: Vec<Value>) -> Result<Option<T>, TenantError> {
    match values.into_iter().next() {
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| TenantError::Decode {
                api: "exchange",
                message: e.to_string(),
            }),
        None => Ok(None),
    }
}

fn all<T: DeserializeOwned>(values: Vec<Value>) -> Result<Vec<T>, TenantError> {
    values
        .into_iter()
        .map(|v| {
            serde_json::from_value(v).map_err(|e| TenantError::Decode {
                api: "exchange",
                message: e.to_string(),
            })
        })
        .collect()
}

/// `Ok(None)` for not-found, the error otherwise.
fn optional<T>(r: Result<T, TenantError>) -> Result<Option<T>, TenantError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

impl ExchangeClient {
    async fn get_one<T: DeserializeOwned>(
        &self,
        cmdlet: &str,
        p: Params,
    ) -> Result<Option<T>, TenantError> {
        match optional(self.invoke(cmdlet, p).await)? {
            Some(values) => first(values),
            None => Ok(None),
        }
    }

    // ---- organization ----

    pub async fn get_organization_config(&self) -> Result<OrganizationConfig, TenantError> {
        Ok(first(self.invoke("Get-OrganizationConfig", Params::new()).await?)?.unwrap_or_default())
    }

    /// Enables customization; "already enabled" counts as success.
    pub async fn enable_organization_customization(&self) -> Result<(), TenantError> {
        match self
            .invoke("Enable-OrganizationCustomization", Params::new())
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.exchange_kind() == Some(&ExchangeErrorKind::CustomizationAlreadyEnabled) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub async fn get_accepted_domains(&self) -> Result<Vec<AcceptedDomain>, TenantError> {
        all(self.invoke("Get-AcceptedDomain", Params::new()).await?)
    }

    // ---- migration endpoints ----

    pub async fn get_migration_endpoint(
        &self,
        identity: &str,
    ) -> Result<Option<MigrationEndpoint>, TenantError> {
        self.get_one(
            "Get-MigrationEndpoint",
            params([("Identity", json!(identity))]),
        )
        .await
    }

    pub async fn list_migration_endpoints(&self) -> Result<Vec<MigrationEndpoint>, TenantError> {
        all(self.invoke("Get-MigrationEndpoint", Params::new()).await?)
    }

    /// Creates the endpoint; if it already exists (a repeat after a lost answer) returns the existing one.
    pub async fn new_migration_endpoint(
        &self,
        e: &NewEndpoint,
        client_secret: &str,
    ) -> Result<MigrationEndpoint, TenantError> {
        let p = params([
            ("Name", json!(e.name)),
            ("RemoteServer", json!(e.remote_server)),
            ("RemoteTenant", json!(e.remote_tenant)),
            ("ApplicationId", json!(e.application_id)),
            ("ExchangeRemoteMove", json!(true)),
            (
                "Credentials",
                self.credential(&e.application_id, client_secret)?,
            ),
            (
                "MaxConcurrentMigrations",
                json!(e.max_concurrent_migrations),
            ),
            (
                "MaxConcurrentIncrementalSyncs",
                json!(e.max_concurrent_incremental_syncs),
            ),
        ]);
        match self.invoke("New-MigrationEndpoint", p).await {
            Ok(values) => {
                match first(values)? {
                    Some(ep) => Ok(ep),
                    None => self.get_migration_endpoint(&e.name).await?.ok_or_else(|| {
                        TenantError::Decode {
                            api: "exchange",
                            message: "New-MigrationEndpoint returned nothing".into(),
                        }
                    }),
                }
            }
            Err(err) if err.is_already_exists() => {
                self.get_migration_endpoint(&e.name).await?.ok_or(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Updates settings; `client_secret` rotates the endpoint credential.
    pub async fn set_migration_endpoint(
        &self,
        identity: &str,
        application_id: Option<&str>,
        client_secret: Option<&str>,
        max_concurrent_migrations: Option<i32>,
        max_concurrent_incremental_syncs: Option<i32>,
    ) -> Result<(), TenantError> {
        let credentials = match (application_id, client_secret) {
            (Some(app), Some(secret)) => self.credential(app, secret)?,
            _ => Value::Null,
        };
        let p = params([
            ("Identity", json!(identity)),
            ("ApplicationId", json!(application_id)),
            ("Credentials", credentials),
            ("MaxConcurrentMigrations", json!(max_concurrent_migrations)),
            (
                "MaxConcurrentIncrementalSyncs",
                json!(max_concurrent_incremental_syncs),
            ),
        ]);
        self.invoke("Set-MigrationEndpoint", p).await.map(|_| ())
    }

    /// Removes the endpoint; already gone counts as success.
    pub async fn remove_migration_endpoint(&self, identity: &str) -> Result<(), TenantError> {
        optional(
            self.invoke(
                "Remove-MigrationEndpoint",
                params([("Identity", json!(identity)), ("Confirm", json!(false))]),
            )
            .await,
        )
        .map(|_| ())
    }

    pub async fn test_migration_server_availability(
        &self,
        endpoint: &str,
        test_mailbox: Option<&str>,
    ) -> Result<AvailabilityResult, TenantError> {
        let p = params([
            ("Endpoint", json!(endpoint)),
            ("TestMailbox", json!(test_mailbox)),
        ]);
        Ok(first(self.invoke("Test-MigrationServerAvailability", p).await?)?.unwrap_or_default())
    }

    // ---- organization relationships ----

    pub async fn get_organization_relationships(
        &self,
    ) -> Result<Vec<OrganizationRelationship>, TenantError> {
        all(self
            .invoke("Get-OrganizationRelationship", Params::new())
            .await?)
    }

    /// The relationship whose DomainNames holds `partner_tenant_id` (the seed's lookup rule).
    pub async fn find_organization_relationship(
        &self,
        partner_tenant_id: &str,
    ) -> Result<Option<OrganizationRelationship>, TenantError> {
        Ok(self
            .get_organization_relationships()
            .await?
            .into_iter()
            .find(|r| {
                r.domain_names
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(partner_tenant_id))
            }))
    }

    fn relationship_params(s: &RelationshipSettings) -> [(&'static str, Value); 5] {
        [
            ("Enabled", json!(true)),
            ("MailboxMoveEnabled", json!(true)),
            ("MailboxMoveCapability", json!(s.capability.join(", "))),
            ("OAuthApplicationId", json!(s.oauth_application_id)),
            (
                "MailboxMovePublishedScopes",
                if s.published_scopes.is_empty() {
                    Value::Null
                } else {
                    json!(s.published_scopes)
                },
            ),
        ]
    }

    /// Creates a relationship with the partner tenant; a repeat returns the existing one.
    pub async fn new_organization_relationship(
        &self,
        name: &str,
        partner_tenant_id: &str,
        s: &RelationshipSettings,
    ) -> Result<OrganizationRelationship, TenantError> {
        let mut p = params([
            ("Name", json!(name)),
            ("DomainNames", json!([partner_tenant_id])),
        ]);
        p.extend(params(Self::relationship_params(s)));
        match self.invoke("New-OrganizationRelationship", p).await {
            Ok(values) => match first(values)? {
                Some(r) => Ok(r),
                None => self
                    .find_organization_relationship(partner_tenant_id)
                    .await?
                    .ok_or_else(|| TenantError::Decode {
                        api: "exchange",
                        message: "New-OrganizationRelationship returned nothing".into(),
                    }),
            },
            Err(err) if err.is_already_exists() => self
                .find_organization_relationship(partner_tenant_id)
                .await?
                .ok_or(err),
            Err(err) => Err(err),
        }
    }

    pub async fn set_organization_relationship(
        &self,
        identity: &str,
        s: &RelationshipSettings,
    ) -> Result<(), TenantError> {
        let mut p = params([("Identity", json!(identity))]);
        p.extend(params(Self::relationship_params(s)));
        self.invoke("Set-OrganizationRelationship", p)
            .await
            .map(|_| ())
    }

    pub async fn remove_organization_relationship(
        &self,
        identity: &str,
    ) -> Result<(), TenantError> {
        optional(
            self.invoke(
                "Remove-OrganizationRelationship",
                params([("Identity", json!(identity)), ("Confirm", json!(false))]),
            )
            .await,
        )
        .map(|_| ())
    }

    // ---- scope group ----

    pub async fn get_distribution_group(
        &self,
        identity: &str,
    ) -> Result<Option<DistributionGroup>, TenantError> {
        self.get_one(
            "Get-DistributionGroup",
            params([("Identity", json!(identity))]),
        )
        .await
    }

    /// Creates a mail-enabled security group; a repeat returns the existing one.
    pub async fn new_security_group(&self, name: &str) -> Result<DistributionGroup, TenantError> {
        match self
            .invoke(
                "New-DistributionGroup",
                params([("Name", json!(name)), ("Type", json!("Security"))]),
            )
            .await
        {
            Ok(values) => {
                match first(values)? {
                    Some(g) => Ok(g),
                    None => self.get_distribution_group(name).await?.ok_or_else(|| {
                        TenantError::Decode {
                            api: "exchange",
                            message: "New-DistributionGroup returned nothing".into(),
                        }
                    }),
                }
            }
            Err(err) if err.is_already_exists() => {
                self.get_distribution_group(name).await?.ok_or(err)
            }
            Err(err) => Err(err),
        }
    }

    pub async fn remove_distribution_group(&self, identity: &str) -> Result<(), TenantError> {
        optional(
            self.invoke(
                "Remove-DistributionGroup",
                params([("Identity", json!(identity)), ("Confirm", json!(false))]),
            )
            .await,
        )
        .map(|_| ())
    }

    /// Every member (one call, `-ResultSize Unlimited`).
    pub async fn get_group_members(&self, identity: &str) -> Result<Vec<GroupMember>, TenantError> {
        self.invoke_as(
            "Get-DistributionGroupMember",
            params([
                ("Identity", json!(identity)),
                ("ResultSize", json!("Unlimited")),
            ]),
        )
        .await
    }

    /// Adds a member; already a member counts as success.
    pub async fn add_group_member(&self, group: &str, member: &str) -> Result<(), TenantError> {
        let p = params([
            ("Identity", json!(group)),
            ("Member", json!(member)),
            ("BypassSecurityGroupManagerCheck", json!(true)),
        ]);
        match self.invoke("Add-DistributionGroupMember", p).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes a member; not a member counts as success.
    pub async fn remove_group_member(&self, group: &str, member: &str) -> Result<(), TenantError> {
        let p = params([
            ("Identity", json!(group)),
            ("Member", json!(member)),
            ("BypassSecurityGroupManagerCheck", json!(true)),
            ("Confirm", json!(false)),
        ]);
        match self.invoke("Remove-DistributionGroupMember", p).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if matches!(e.exchange_kind(), Some(ExchangeErrorKind::Other(t)) if t == "MemberNotFoundException") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    // ---- recipients ----

    pub async fn get_mailbox(&self, identity: &str) -> Result<Option<Mailbox>, TenantError> {
        self.get_one("Get-Mailbox", params([("Identity", json!(identity))]))
            .await
    }

    pub async fn get_mailbox_statistics(
        &self,
        identity: &str,
    ) -> Result<Option<MailboxStatistics>, TenantError> {
        self.get_one(
            "Get-MailboxStatistics",
            params([("Identity", json!(identity))]),
        )
        .await
    }

    pub async fn get_mailbox_permissions(
        &self,
        identity: &str,
    ) -> Result<Vec<MailboxPermission>, TenantError> {
        match optional(
            self.invoke(
                "Get-MailboxPermission",
                params([("Identity", json!(identity))]),
            )
            .await,
        )? {
            Some(v) => all(v),
            None => Ok(vec![]),
        }
    }

    /// Adds send-on-behalf delegates (`Set-Mailbox -GrantSendOnBehalfTo @{Add=…}`).
    pub async fn add_send_on_behalf(
        &self,
        identity: &str,
        delegates: &[String],
    ) -> Result<(), TenantError> {
        let p = params([
            ("Identity", json!(identity)),
            ("GrantSendOnBehalfTo", hashtable_add_remove(delegates, &[])),
        ]);
        self.invoke("Set-Mailbox", p).await.map(|_| ())
    }

    /// Every mailbox of the tenant (`-ResultSize Unlimited`, paged by 1,000): one call per page
    /// instead of one per user.
    pub async fn list_mailboxes(&self) -> Result<Vec<Mailbox>, TenantError> {
        self.invoke_as("Get-Mailbox", params([("ResultSize", json!("Unlimited"))]))
            .await
    }

    /// Every MailUser of the tenant (`-ResultSize Unlimited`, paged by 1,000).
    pub async fn list_mail_users(&self) -> Result<Vec<MailUser>, TenantError> {
        self.invoke_as("Get-MailUser", params([("ResultSize", json!("Unlimited"))]))
            .await
    }

    pub async fn get_mail_user(&self, identity: &str) -> Result<Option<MailUser>, TenantError> {
        self.get_one("Get-MailUser", params([("Identity", json!(identity))]))
            .await
    }

    /// Creates a target MailUser; a repeat (address or UPN already taken) returns the existing one.
    pub async fn new_mail_user(&self, m: &NewMailUser) -> Result<MailUser, TenantError> {
        let p = params([
            ("Name", json!(m.name)),
            ("Alias", json!(m.alias)),
            ("DisplayName", json!(m.display_name)),
            ("FirstName", json!(m.first_name)),
            ("LastName", json!(m.last_name)),
            (
                "MicrosoftOnlineServicesID",
                json!(m.microsoft_online_services_id),
            ),
            ("PrimarySmtpAddress", json!(m.primary_smtp_address)),
            ("ExternalEmailAddress", json!(m.external_email_address)),
            ("Password", self.secure_string(&m.password)?),
        ]);
        match self.invoke("New-MailUser", p).await {
            Ok(values) => match first(values)? {
                Some(u) => Ok(u),
                None => self
                    .get_mail_user(&m.microsoft_online_services_id)
                    .await?
                    .ok_or_else(|| TenantError::Decode {
                        api: "exchange",
                        message: "New-MailUser returned nothing".into(),
                    }),
            },
            Err(err) if err.is_already_exists() => self
                .get_mail_user(&m.microsoft_online_services_id)
                .await?
                .ok_or(err),
            Err(err) => Err(err),
        }
    }

    /// Stamps attributes on a MailUser (no call when there is nothing to change).
    pub async fn set_mail_user(
        &self,
        identity: &str,
        c: &MailUserChanges,
    ) -> Result<(), TenantError> {
        if c.is_empty() {
            return Ok(());
        }
        let addresses = if c.add_addresses.is_empty() && c.remove_addresses.is_empty() {
            Value::Null
        } else {
            hashtable_add_remove(&c.add_addresses, &c.remove_addresses)
        };
        let p = params([
            ("Identity", json!(identity)),
            ("ExchangeGuid", json!(c.exchange_guid)),
            ("ArchiveGuid", json!(c.archive_guid)),
            ("ExternalEmailAddress", json!(c.external_email_address)),
            ("EmailAddresses", addresses),
        ]);
        self.invoke("Set-MailUser", p).await.map(|_| ())
    }

    pub async fn get_user(&self, identity: &str) -> Result<Option<User>, TenantError> {
        self.get_one("Get-User", params([("Identity", json!(identity))]))
            .await
    }

    /// `Set-User -PermanentlyClearPreviousMailboxInfo` (irreversible; callers gate it on the spec).
    pub async fn clear_previous_mailbox_info(&self, identity: &str) -> Result<(), TenantError> {
        let p = params([
            ("Identity", json!(identity)),
            ("PermanentlyClearPreviousMailboxInfo", json!(true)),
            ("Confirm", json!(false)),
        ]);
        self.invoke("Set-User", p).await.map(|_| ())
    }

    // ---- migration batches and users ----

    pub async fn get_migration_batch(
        &self,
        identity: &str,
    ) -> Result<Option<MigrationBatch>, TenantError> {
        self.get_one(
            "Get-MigrationBatch",
            params([("Identity", json!(identity))]),
        )
        .await
    }

    /// Creates a batch; a repeat returns the existing one.
    pub async fn new_migration_batch(&self, b: &NewBatch) -> Result<MigrationBatch, TenantError> {
        let csv = json!({"@odata.type": "#Exchange.ByteArrayType", "Data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b.csv())});
        let p = params([
            ("Name", json!(b.name)),
            ("SourceEndpoint", json!(b.source_endpoint)),
            ("CSVData", csv),
            ("TargetDeliveryDomain", json!(b.target_delivery_domain)),
            (
                "AutoStart",
                if b.auto_start {
                    json!(true)
                } else {
                    Value::Null
                },
            ),
            (
                "StartAfter",
                json!(
                    b.start_after
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                ),
            ),
            (
                "NotificationEmails",
                if b.notification_emails.is_empty() {
                    Value::Null
                } else {
                    json!(b.notification_emails)
                },
            ),
        ]);
        match self.invoke("New-MigrationBatch", p).await {
            Ok(values) => {
                match first(values)? {
                    Some(batch) => Ok(batch),
                    None => self.get_migration_batch(&b.name).await?.ok_or_else(|| {
                        TenantError::Decode {
                            api: "exchange",
                            message: "New-MigrationBatch returned nothing".into(),
                        }
                    }),
                }
            }
            Err(err) if err.is_already_exists() => {
                self.get_migration_batch(&b.name).await?.ok_or(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Appends users to an existing batch (`Set-MigrationBatch -AddUsers -CSVData`, same CSV
    /// format as New-MigrationBatch). Exchange processes only rows not yet in the batch, so a
    /// repeat after a lost answer adds nothing twice.
    pub async fn add_migration_batch_users(
        &self,
        identity: &str,
        users: &[String],
    ) -> Result<(), TenantError> {
        let csv = NewBatch {
            name: identity.to_string(),
            source_endpoint: String::new(),
            users: users.to_vec(),
            target_delivery_domain: String::new(),
            auto_start: false,
            start_after: None,
            notification_emails: Vec::new(),
        }
        .csv();
        let data = json!({"@odata.type": "#Exchange.ByteArrayType", "Data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, csv)});
        self.invoke(
            "Set-MigrationBatch",
            params([
                ("Identity", json!(identity)),
                ("AddUsers", json!(true)),
                ("CSVData", data),
                ("Confirm", json!(false)),
            ]),
        )
        .await
        .map(|_| ())
    }

    pub async fn start_migration_batch(&self, identity: &str) -> Result<(), TenantError> {
        self.batch_action("Start-MigrationBatch", identity).await
    }

    pub async fn stop_migration_batch(&self, identity: &str) -> Result<(), TenantError> {
        self.batch_action("Stop-MigrationBatch", identity).await
    }

    pub async fn complete_migration_batch(&self, identity: &str) -> Result<(), TenantError> {
        self.batch_action("Complete-MigrationBatch", identity).await
    }

    pub async fn remove_migration_batch(&self, identity: &str) -> Result<(), TenantError> {
        optional(
            self.invoke(
                "Remove-MigrationBatch",
                params([("Identity", json!(identity)), ("Confirm", json!(false))]),
            )
            .await,
        )
        .map(|_| ())
    }

    /// Batch verbs; "nothing to do" answers (already stopped/completed) count as success.
    async fn batch_action(&self, cmdlet: &str, identity: &str) -> Result<(), TenantError> {
        match self
            .invoke(
                cmdlet,
                params([("Identity", json!(identity)), ("Confirm", json!(false))]),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.exchange_kind() == Some(&ExchangeErrorKind::NoOp) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every user of a batch in one call (polling cost does not grow with one call per user).
    pub async fn get_migration_users(
        &self,
        batch: &str,
    ) -> Result<Vec<MigrationUser>, TenantError> {
        match optional(
            self.invoke(
                "Get-MigrationUser",
                params([
                    ("BatchId", json!(batch)),
                    ("ResultSize", json!("Unlimited")),
                ]),
            )
            .await,
        )? {
            Some(v) => all(v),
            None => Ok(vec![]),
        }
    }

    pub async fn get_migration_user_statistics(
        &self,
        identity: &str,
    ) -> Result<Option<MigrationUserStatistics>, TenantError> {
        self.get_one(
            "Get-MigrationUserStatistics",
            params([("Identity", json!(identity))]),
        )
        .await
    }

    /// Removes a user from its batch (remediation before resubmitting); already gone is success.
    pub async fn remove_migration_user(&self, identity: &str) -> Result<(), TenantError> {
        optional(
            self.invoke(
                "Remove-MigrationUser",
                params([("Identity", json!(identity)), ("Confirm", json!(false))]),
            )
            .await,
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_skip_nulls() {
        let p = params([
            ("Identity", json!("x")),
            ("ArchiveGuid", Value::Null),
            ("Enabled", json!(false)),
        ]);
        assert_eq!(Value::Object(p), json!({"Identity": "x", "Enabled": false}));
    }

    #[test]
    fn hashtables_are_tagged() {
        assert_eq!(
            hashtable_add_remove(&["x500:/o=a".into()], &["smtp:b@c".into()]),
            json!({"@odata.type": "#Exchange.GenericHashTable", "Add": ["x500:/o=a"], "Remove": ["smtp:b@c"]})
        );
    }

    #[test]
    fn csv_has_the_exchange_header() {
        let b = NewBatch {
            name: "b".into(),
            source_endpoint: "e".into(),
            users: vec![
                "a@fabrikam.onmicrosoft.com".into(),
                "b@fabrikam.onmicrosoft.com".into(),
            ],
            target_delivery_domain: "fabrikam.onmicrosoft.com".into(),
            auto_start: true,
            start_after: None,
            notification_emails: vec![],
        };
        assert_eq!(
            b.csv(),
            "EmailAddress\r\na@fabrikam.onmicrosoft.com\r\nb@fabrikam.onmicrosoft.com\r\n"
        );
    }
}
