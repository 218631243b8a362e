//! The simulated world: tenants with their directory (users, apps, service principals, role
//! assignments, licences) and Exchange objects (recipients, groups, endpoints, organization
//! relationships). Pure data plus lookups; protocol modules decide, this module stores.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::catalog::{self, stable_id};
use super::clock::Clock;
use super::error::SimError;
use super::fixture::{AppFixture, Fixture, MailboxKind, TenantFixture};
pub use super::store::{RecipientMut, Recipients, Users};

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;

/// Shared, lock-protected world plus the clock (which needs no lock).
pub struct Shared {
    world: RwLock<World>,
    pub clock: Clock,
}

impl Shared {
    pub fn new(world: World, clock: Clock) -> Self {
        Self {
            world: RwLock::new(world),
            clock,
        }
    }

    /// A panic while holding the lock leaves plain data behind; keep serving rather than
    /// poisoning every later request.
    pub fn read(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
pub struct World {
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub display_name: String,
    pub initial_domain: String,
    /// All verified domains, initial first, then custom domains in fixture order.
    pub domains: Vec<String>,
    pub default_usage_location: Option<String>,
    pub org_customization_enabled: bool,
    /// When Enable-OrganizationCustomization has propagated to the cmdlets that need it
    /// (IsDehydrated flips first; reference X §2.1).
    pub customization_ready_at: Option<DateTime<Utc>>,
    pub skus: Vec<Sku>,
    pub users: Users,
    pub recipients: Recipients,
    pub groups: Vec<Group>,
    pub applications: Vec<Application>,
    pub service_principals: Vec<ServicePrincipal>,
    pub app_role_assignments: Vec<AppRoleAssignment>,
    /// (directory role display name, service principal object id).
    pub directory_role_members: Vec<(String, Uuid)>,
    pub endpoints: Vec<MigrationEndpoint>,
    pub org_relationships: Vec<OrgRelationship>,
    /// (endpoint guid, decrypted client secret): what MRS would use to reach the source.
    pub endpoint_secrets: Vec<(String, Option<String>)>,
    /// Migration batches (cross-tenant moves are pulled by the target).
    pub batches: Vec<super::moves::Batch>,
    /// Graph crossTenantMigrationJobs created in this (target) tenant.
    pub ctm_jobs: Vec<super::ctm::Job>,
    /// How far the move engine has advanced this tenant.
    pub moves_cursor: Option<DateTime<Utc>>,
    /// The fixture's pre-consented admin app.
    pub admin_client_id: Uuid,
    pub admin_client_secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Sku {
    pub sku_id: Uuid,
    pub sku_part_number: String,
    pub seats: u32,
    pub service_plans: Vec<(Uuid, String)>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub usage_location: Option<String>,
    pub assigned_licenses: Vec<Uuid>,
    pub account_enabled: bool,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientKind {
    Mailbox(MailboxKind),
    MailUser,
}

#[derive(Debug, Clone, Default)]
pub struct Holds {
    pub litigation_hold: bool,
    pub in_place_holds: Vec<String>,
    pub compliance_tag_hold: bool,
    pub delay_hold: bool,
    pub delay_release_hold: bool,
    pub org_wide_hold: bool,
}

/// An Exchange recipient backed by a directory user (mailbox or mail user).
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The Exchange object Guid (`Guid`).
    pub guid: Uuid,
    /// `ExternalDirectoryObjectId` = the Entra user id.
    pub user_id: Uuid,
    /// The user's UPN, kept here so identity lookups stay O(recipients).
    pub upn: String,
    pub name: String,
    pub alias: String,
    pub display_name: String,
    pub kind: RecipientKind,
    /// Proxy addresses with their prefixes; exactly one `SMTP:` entry is the primary.
    pub email_addresses: Vec<String>,
    pub exchange_guid: Uuid,
    /// Nil = no archive.
    pub archive_guid: Uuid,
    pub legacy_exchange_dn: String,
    pub external_email_address: Option<String>,
    pub size_bytes: u64,
    pub item_count: u64,
    pub archive_size_bytes: u64,
    pub aux_archives: u32,
    pub holds: Holds,
    pub total_deleted_item_bytes: u64,
    pub substrate_holds_items: u64,
    pub recoverable_items_quota_bytes: u64,
    /// Recipient guids of delegates.
    pub grant_send_on_behalf_to: Vec<Uuid>,
    pub previous_recipient_type_details: Option<String>,
    pub previous_exchange_guid: Option<Uuid>,
    pub when_created: DateTime<Utc>,
}

impl Recipient {
    pub fn primary_smtp(&self) -> &str {
        self.email_addresses
            .iter()
            .find_map(|a| a.strip_prefix("SMTP:"))
            .unwrap_or("")
    }

    pub fn recipient_type(&self) -> &'static str {
        match self.kind {
            RecipientKind::Mailbox(_) => "UserMailbox",
            RecipientKind::MailUser => "MailUser",
        }
    }

    pub fn recipient_type_details(&self) -> &'static str {
        match &self.kind {
            RecipientKind::Mailbox(k) => k.as_str(),
            RecipientKind::MailUser => "MailUser",
        }
    }

    pub fn is_mailbox(&self) -> bool {
        matches!(self.kind, RecipientKind::Mailbox(_))
    }

    /// Matches the ways Exchange resolves an identity parameter: name, alias, any SMTP proxy,
    /// UPN (via the user), Guid, ExchangeGuid, ExternalDirectoryObjectId, LegacyExchangeDN.
    pub fn matches(&self, identity: &str) -> bool {
        let id = identity.trim();
        let upn = self.upn.as_str();
        id.eq_ignore_ascii_case(&self.name)
            || id.eq_ignore_ascii_case(&self.alias)
            || id.eq_ignore_ascii_case(upn)
            || id.eq_ignore_ascii_case(&self.legacy_exchange_dn)
            || self.email_addresses.iter().any(|a| {
                a.split_once(':').is_some_and(|(p, v)| {
                    p.eq_ignore_ascii_case("smtp") && v.eq_ignore_ascii_case(id)
                })
            })
            || Uuid::parse_str(id)
                .is_ok_and(|g| g == self.guid || g == self.exchange_guid || g == self.user_id)
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub guid: Uuid,
    pub name: String,
    pub alias: String,
    pub display_name: String,
    pub security: bool,
    pub primary_smtp: String,
    /// Recipient guids.
    pub members: Vec<Uuid>,
    pub when_created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub key_id: Uuid,
    pub display_name: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub secret: CredentialSecret,
}

#[derive(Debug, Clone)]
pub enum CredentialSecret {
    Password(String),
    /// DER of an X.509 certificate.
    Certificate(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct RequiredResourceAccess {
    pub resource_app_id: String,
    /// (id, type) with type `Role` or `Scope`.
    pub resource_access: Vec<(Uuid, String)>,
}

/// An app registration; it lives in its home (owner) tenant only.
#[derive(Debug, Clone)]
pub struct Application {
    pub id: Uuid,
    pub app_id: Uuid,
    pub display_name: String,
    pub sign_in_audience: String,
    pub redirect_uris: Vec<String>,
    pub required_resource_access: Vec<RequiredResourceAccess>,
    pub credentials: Vec<Credential>,
    pub federated_credentials: Vec<super::federation::FederatedCredential>,
    pub created: DateTime<Utc>,
    /// Free-form `tags` (Graph stores them; clients use them to find their own apps).
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    pub id: Uuid,
    pub app_id: String,
    pub display_name: String,
    pub app_owner_organization_id: Option<Uuid>,
    pub service_principal_type: String,
    pub account_enabled: bool,
}

#[derive(Debug, Clone)]
pub struct AppRoleAssignment {
    pub id: String,
    pub app_role_id: Uuid,
    pub principal_id: Uuid,
    pub principal_display_name: String,
    pub resource_id: Uuid,
    pub resource_display_name: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct MigrationEndpoint {
    pub guid: Uuid,
    pub name: String,
    pub remote_server: String,
    pub remote_tenant: Option<String>,
    pub application_id: Option<String>,
    pub username: Option<String>,
    pub max_concurrent_migrations: u32,
    pub max_concurrent_incremental_syncs: u32,
}

#[derive(Debug, Clone)]
pub struct OrgRelationship {
    pub guid: Uuid,
    pub name: String,
    pub domain_names: Vec<String>,
    pub enabled: bool,
    pub mailbox_move_enabled: bool,
    /// Flags, canonical order, e.g. `["Inbound","RemoteOutbound"]`; empty = `None`.
    pub mailbox_move_capability: Vec<String>,
    pub mailbox_move_published_scopes: Vec<String>,
    pub oauth_application_id: Option<String>,
}

impl World {
    pub fn from_fixture(fx: &Fixture, now: DateTime<Utc>) -> Result<Self, SimError> {
        let mut tenants = Vec::with_capacity(fx.tenants.len());
        for t in &fx.tenants {
            tenants.push(Tenant::from_fixture(t, now)?);
        }
        let mut world = World { tenants };
        // Apps registered as multitenant in one tenant and consented in another are listed in
        // the other tenant's `apps` with the same clientId: the registration stays in the first
        // tenant that lists it; later tenants only get a service principal.
        world.dedupe_foreign_apps();
        Ok(world)
    }

    fn dedupe_foreign_apps(&mut self) {
        let mut seen: Vec<(Uuid, Uuid)> = Vec::new(); // (appId, owner tenant)
        for t in &mut self.tenants {
            let tid = t.id;
            let mut keep = Vec::new();
            for app in t.applications.drain(..) {
                if let Some((_, owner)) = seen.iter().find(|(a, _)| *a == app.app_id) {
                    let owner = *owner;
                    if let Some(sp) = t
                        .service_principals
                        .iter_mut()
                        .find(|s| s.app_id == app.app_id.to_string())
                    {
                        sp.app_owner_organization_id = Some(owner);
                    }
                } else {
                    seen.push((app.app_id, tid));
                    keep.push(app);
                }
            }
            t.applications = keep;
        }
    }

    /// Resolves `{tenant}` path segments: a tenant GUID or any verified domain.
    pub fn tenant_index(&self, key: &str) -> Option<usize> {
        let key = key.trim();
        if let Ok(id) = Uuid::parse_str(key) {
            return self.tenants.iter().position(|t| t.id == id);
        }
        self.tenants
            .iter()
            .position(|t| t.domains.iter().any(|d| d.eq_ignore_ascii_case(key)))
    }

    pub fn tenant(&self, key: &str) -> Option<&Tenant> {
        self.tenant_index(key).map(|i| &self.tenants[i])
    }

    pub fn tenant_by_id(&self, id: Uuid) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }

    pub fn tenant_by_id_mut(&mut self, id: Uuid) -> Option<&mut Tenant> {
        self.tenants.iter_mut().find(|t| t.id == id)
    }

    /// The registration of an app id, wherever it lives.
    pub fn application(&self, app_id: Uuid) -> Option<(&Tenant, &Application)> {
        self.tenants.iter().find_map(|t| {
            t.applications
                .iter()
                .find(|a| a.app_id == app_id)
                .map(|a| (t, a))
        })
    }
}

fn legacy_dn(guid: Uuid, alias: &str) -> String {
    format!(
        "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}-{}",
        guid.simple(),
        alias
    )
}

pub fn alias_of(upn: &str) -> String {
    upn.split('@').next().unwrap_or(upn).to_string()
}

impl Tenant {
    fn from_fixture(f: &TenantFixture, now: DateTime<Utc>) -> Result<Self, SimError> {
        let ns = f.id;
        let mut domains = vec![f.initial_domain.to_ascii_lowercase()];
        domains.extend(f.domains.iter().map(|d| d.to_ascii_lowercase()));
        let mut t = Tenant {
            id: f.id,
            display_name: f.display_name.clone(),
            initial_domain: f.initial_domain.to_ascii_lowercase(),
            domains,
            default_usage_location: f.default_usage_location.clone(),
            org_customization_enabled: f.organization_customization_enabled,
            customization_ready_at: None,
            skus: f
                .skus
                .iter()
                .map(|s| Sku {
                    sku_id: s.sku_id,
                    sku_part_number: s.sku_part_number.clone(),
                    seats: s.seats,
                    service_plans: s
                        .service_plans
                        .iter()
                        .map(|p| (p.service_plan_id, p.service_plan_name.clone()))
                        .collect(),
                })
                .collect(),
            users: Users::default(),
            recipients: Recipients::default(),
            groups: Vec::new(),
            applications: Vec::new(),
            service_principals: Vec::new(),
            app_role_assignments: Vec::new(),
            directory_role_members: Vec::new(),
            endpoints: Vec::new(),
            org_relationships: Vec::new(),
            endpoint_secrets: Vec::new(),
            batches: Vec::new(),
            ctm_jobs: Vec::new(),
            moves_cursor: None,
            admin_client_id: f.admin_app.client_id,
            admin_client_secret: f.admin_app.client_secret.clone(),
        };
        // First-party resource service principals exist in every tenant.
        for (app_id, name) in [
            (catalog::GRAPH_APP_ID, "Microsoft Graph"),
            (catalog::EXCHANGE_APP_ID, "Office 365 Exchange Online"),
        ] {
            t.service_principals.push(ServicePrincipal {
                id: stable_id(ns, "sp", app_id),
                app_id: app_id.to_string(),
                display_name: name.to_string(),
                // Microsoft's own tenant owns first-party apps.
                app_owner_organization_id: Uuid::parse_str("f8cdef31-a31e-4b4a-93e4-5f571e91255a")
                    .ok(),
                service_principal_type: "Application".into(),
                account_enabled: true,
            });
        }
        t.add_app_from_fixture(&f.admin_app, now)?;
        for a in &f.apps {
            t.add_app_from_fixture(a, now)?;
        }
        for u in &f.users {
            let id = stable_id(ns, "user", &u.user_principal_name);
            let alias = u
                .alias
                .clone()
                .unwrap_or_else(|| alias_of(&u.user_principal_name));
            let mut mail = None;
            if let Some(m) = &u.mailbox {
                let primary = m
                    .primary_smtp_address
                    .clone()
                    .unwrap_or_else(|| u.user_principal_name.clone());
                mail = Some(primary.clone());
                let guid = stable_id(ns, "recipient", &u.user_principal_name);
                let mut addrs = vec![format!("SMTP:{primary}")];
                let onms = format!("smtp:{alias}@{}", t.initial_domain);
                if !primary.eq_ignore_ascii_case(&onms[5..]) {
                    addrs.push(onms);
                }
                addrs.extend(m.email_addresses.iter().cloned());
                let archive_guid = if m.archive {
                    m.archive_guid
                        .unwrap_or_else(|| stable_id(ns, "archive", &u.user_principal_name))
                } else {
                    Uuid::nil()
                };
                t.recipients.push(Recipient {
                    guid,
                    user_id: id,
                    upn: u.user_principal_name.clone(),
                    name: alias.clone(),
                    alias: alias.clone(),
                    display_name: u.display_name.clone(),
                    kind: RecipientKind::Mailbox(m.kind),
                    email_addresses: addrs,
                    exchange_guid: m
                        .exchange_guid
                        .unwrap_or_else(|| stable_id(ns, "exchange", &u.user_principal_name)),
                    archive_guid,
                    legacy_exchange_dn: legacy_dn(guid, &alias),
                    external_email_address: None,
                    size_bytes: m.size_mb * MB,
                    item_count: m.item_count.unwrap_or(m.size_mb * 12),
                    archive_size_bytes: m.archive_size_mb * MB,
                    aux_archives: m.aux_archives,
                    holds: Holds {
                        litigation_hold: m.holds.litigation_hold,
                        in_place_holds: m.holds.in_place_holds.clone(),
                        compliance_tag_hold: m.holds.compliance_tag_hold,
                        delay_hold: m.holds.delay_hold,
                        delay_release_hold: m.holds.delay_release_hold,
                        org_wide_hold: m.holds.org_wide_hold,
                    },
                    total_deleted_item_bytes: m.total_deleted_item_size_mb * MB,
                    substrate_holds_items: m.substrate_holds_items,
                    recoverable_items_quota_bytes: 30 * GB,
                    grant_send_on_behalf_to: Vec::new(),
                    previous_recipient_type_details: None,
                    previous_exchange_guid: None,
                    when_created: now,
                });
            } else if let Some(mu) = &u.mail_user {
                let guid = stable_id(ns, "recipient", &u.user_principal_name);
                let primary = mu
                    .primary_smtp_address
                    .clone()
                    .unwrap_or_else(|| u.user_principal_name.clone());
                mail = Some(primary.clone());
                let mut addrs = vec![format!("SMTP:{primary}")];
                addrs.extend(mu.email_addresses.iter().cloned());
                t.recipients.push(Recipient {
                    guid,
                    user_id: id,
                    upn: u.user_principal_name.clone(),
                    name: alias.clone(),
                    alias: alias.clone(),
                    display_name: u.display_name.clone(),
                    kind: RecipientKind::MailUser,
                    email_addresses: addrs,
                    exchange_guid: mu.exchange_guid.unwrap_or_else(Uuid::nil),
                    archive_guid: mu.archive_guid.unwrap_or_else(Uuid::nil),
                    legacy_exchange_dn: legacy_dn(guid, &alias),
                    external_email_address: Some(with_smtp_prefix(&mu.external_email_address)),
                    size_bytes: 0,
                    item_count: 0,
                    archive_size_bytes: 0,
                    aux_archives: 0,
                    holds: Holds::default(),
                    total_deleted_item_bytes: 0,
                    substrate_holds_items: 0,
                    recoverable_items_quota_bytes: 30 * GB,
                    grant_send_on_behalf_to: Vec::new(),
                    previous_recipient_type_details: mu
                        .previous_mailbox
                        .then(|| "UserMailbox".to_string()),
                    previous_exchange_guid: mu
                        .previous_mailbox
                        .then(|| stable_id(ns, "previous", &u.user_principal_name)),
                    when_created: now,
                });
            }
            for sku in &u.licenses {
                if !t.skus.iter().any(|s| s.sku_id == *sku) {
                    return Err(SimError::FixtureInvalid(format!(
                        "user {}: licence {sku} is not a subscribed SKU of tenant {}",
                        u.user_principal_name, t.id
                    )));
                }
            }
            t.users.push(User {
                id,
                user_principal_name: u.user_principal_name.clone(),
                display_name: u.display_name.clone(),
                mail,
                usage_location: u.usage_location.clone(),
                assigned_licenses: u.licenses.clone(),
                account_enabled: true,
                created: now,
            });
        }
        // Delegates are resolved after every recipient exists.
        for u in &f.users {
            let Some(m) = &u.mailbox else { continue };
            let mut delegates = Vec::new();
            for d in &m.grant_send_on_behalf_to {
                let Some(r) = t.recipients.find(d).map(|i| &t.recipients[i]) else {
                    return Err(SimError::FixtureInvalid(format!(
                        "user {}: delegate {d} not found",
                        u.user_principal_name
                    )));
                };
                delegates.push(r.guid);
            }
            let uid = stable_id(ns, "recipient", &u.user_principal_name);
            if let Some(i) = t.recipients.position_by_guid(uid) {
                t.recipients.get_mut(i).grant_send_on_behalf_to = delegates;
            }
        }
        for g in &f.groups {
            let mut members = Vec::new();
            for m in &g.members {
                let found = t.recipients.find(m).map(|i| &t.recipients[i]);
                match found {
                    Some(r) => members.push(r.guid),
                    None => {
                        return Err(SimError::FixtureInvalid(format!(
                            "group {}: member {m} not found",
                            g.name
                        )));
                    }
                }
            }
            let alias: String = g.name.chars().filter(|c| !c.is_whitespace()).collect();
            t.groups.push(Group {
                guid: stable_id(ns, "group", &g.name),
                name: g.name.clone(),
                alias: alias.clone(),
                display_name: g.name.clone(),
                security: g.security,
                primary_smtp: g
                    .primary_smtp_address
                    .clone()
                    .unwrap_or_else(|| format!("{alias}@{}", t.default_domain())),
                members,
                when_created: now,
            });
        }
        Ok(t)
    }

    fn add_app_from_fixture(&mut self, a: &AppFixture, now: DateTime<Utc>) -> Result<(), SimError> {
        let ns = self.id;
        let mut credentials = Vec::new();
        if let Some(s) = &a.client_secret {
            credentials.push(Credential {
                key_id: stable_id(ns, "secret", &a.client_id.to_string()),
                display_name: Some("fixture".into()),
                start: now - chrono::Duration::days(1),
                end: now + chrono::Duration::days(730),
                secret: CredentialSecret::Password(s.clone()),
            });
        }
        if let Some(pem) = &a.certificate_pem {
            let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                .map_err(|e| {
                    SimError::FixtureInvalid(format!("app {}: certificatePem: {e}", a.client_id))
                })?
                .1
                .contents;
            credentials.push(Credential {
                key_id: stable_id(ns, "cert", &a.client_id.to_string()),
                display_name: Some("fixture certificate".into()),
                start: now - chrono::Duration::days(1),
                end: now + chrono::Duration::days(730),
                secret: CredentialSecret::Certificate(der),
            });
        }
        let mut rra = Vec::new();
        for (resource, roles) in [
            (catalog::GRAPH_APP_ID, &a.graph_roles),
            (catalog::EXCHANGE_APP_ID, &a.exchange_roles),
        ] {
            let mut access = Vec::new();
            for r in roles {
                let def = catalog::role_by_value(resource, r).ok_or_else(|| {
                    SimError::FixtureInvalid(format!(
                        "app {}: unknown app role {r} of {resource}",
                        a.client_id
                    ))
                })?;
                let rid = Uuid::parse_str(def.id)
                    .map_err(|e| SimError::FixtureInvalid(format!("catalog id: {e}")))?;
                access.push((rid, "Role".to_string()));
            }
            if !access.is_empty() {
                rra.push(RequiredResourceAccess {
                    resource_app_id: resource.to_string(),
                    resource_access: access,
                });
            }
        }
        self.applications.push(Application {
            id: stable_id(ns, "application", &a.client_id.to_string()),
            app_id: a.client_id,
            display_name: a.display_name.clone(),
            sign_in_audience: a
                .sign_in_audience
                .clone()
                .unwrap_or_else(|| "AzureADMyOrg".into()),
            redirect_uris: a.redirect_uris.clone(),
            required_resource_access: rra.clone(),
            credentials,
            federated_credentials: a
                .federated_credentials
                .iter()
                .map(|f| super::federation::FederatedCredential {
                    id: stable_id(ns, "fic", &format!("{}/{}", a.client_id, f.name)),
                    name: f.name.clone(),
                    issuer: f.issuer.clone(),
                    subject: f.subject.clone(),
                    audiences: f.audiences.clone(),
                    description: None,
                    keys_pem: f.public_keys_pem.clone(),
                })
                .collect(),
            created: now,
            tags: Vec::new(),
        });
        // Fixture apps are consented in the tenant that lists them.
        let sp_id = stable_id(ns, "sp", &a.client_id.to_string());
        self.service_principals.push(ServicePrincipal {
            id: sp_id,
            app_id: a.client_id.to_string(),
            display_name: a.display_name.clone(),
            app_owner_organization_id: Some(ns),
            service_principal_type: "Application".into(),
            account_enabled: true,
        });
        self.grant_consent(sp_id, &rra, now);
        for role in &a.directory_roles {
            self.directory_role_members.push((role.clone(), sp_id));
        }
        Ok(())
    }

    /// Creates the app-role assignments an admin's consent creates.
    pub fn grant_consent(
        &mut self,
        client_sp: Uuid,
        rra: &[RequiredResourceAccess],
        now: DateTime<Utc>,
    ) {
        let client_name = self
            .service_principals
            .iter()
            .find(|s| s.id == client_sp)
            .map(|s| s.display_name.clone())
            .unwrap_or_default();
        for r in rra {
            let Some(resource) = self
                .service_principals
                .iter()
                .find(|s| s.app_id.eq_ignore_ascii_case(&r.resource_app_id))
                .map(|s| (s.id, s.display_name.clone()))
            else {
                continue;
            };
            for (role_id, kind) in &r.resource_access {
                if kind != "Role" {
                    continue;
                }
                let exists = self.app_role_assignments.iter().any(|a| {
                    a.principal_id == client_sp
                        && a.resource_id == resource.0
                        && a.app_role_id == *role_id
                });
                if !exists {
                    self.app_role_assignments.push(AppRoleAssignment {
                        id: assignment_id(client_sp, resource.0, *role_id),
                        app_role_id: *role_id,
                        principal_id: client_sp,
                        principal_display_name: client_name.clone(),
                        resource_id: resource.0,
                        resource_display_name: resource.1.clone(),
                        created: now,
                    });
                }
            }
        }
    }

    /// Can cmdlets that need a hydrated organization run now?
    pub fn customization_effective(&self, now: DateTime<Utc>) -> bool {
        self.org_customization_enabled && self.customization_ready_at.is_none_or(|r| now >= r)
    }

    pub fn default_domain(&self) -> &str {
        self.domains.get(1).unwrap_or(&self.initial_domain)
    }

    pub fn upn_of(&self, user_id: Uuid) -> Option<String> {
        self.users
            .by_id(user_id)
            .map(|u| u.user_principal_name.clone())
    }

    pub fn sp_by_app_id(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals
            .iter()
            .find(|s| s.app_id.eq_ignore_ascii_case(app_id))
    }

    /// App-role values an SP holds on a resource app (what goes into the token's `roles`).
    pub fn roles_of(&self, client_sp: Uuid, resource_app_id: &str) -> Vec<String> {
        let Some(resource) = self.sp_by_app_id(resource_app_id) else {
            return Vec::new();
        };
        self.app_role_assignments
            .iter()
            .filter(|a| a.principal_id == client_sp && a.resource_id == resource.id)
            .filter_map(|a| {
                catalog::role_by_id(resource_app_id, &a.app_role_id.to_string())
                    .map(|d| d.value.to_string())
            })
            .collect()
    }

    pub fn directory_roles_of(&self, sp: Uuid) -> Vec<&str> {
        self.directory_role_members
            .iter()
            .filter(|(_, id)| *id == sp)
            .map(|(r, _)| r.as_str())
            .collect()
    }

    pub fn is_accepted_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    pub fn find_recipient(&self, identity: &str) -> Option<usize> {
        self.recipients.find(identity)
    }

    pub fn has_capability_t2t(&self, user_id: Uuid) -> bool {
        let Some(sku) = Uuid::parse_str(catalog::T2T_SKU_ID).ok() else {
            return false;
        };
        self.users
            .by_id(user_id)
            .is_some_and(|u| u.assigned_licenses.contains(&sku))
    }

    pub fn consumed_units(&self, sku: Uuid) -> u32 {
        self.users
            .iter()
            .filter(|u| u.assigned_licenses.contains(&sku))
            .count() as u32
    }
}

pub fn with_smtp_prefix(addr: &str) -> String {
    if addr.contains(':') {
        addr.to_string()
    } else {
        format!("SMTP:{addr}")
    }
}

/// Real assignment ids are opaque base64url strings; derive one deterministically.
fn assignment_id(principal: Uuid, resource: Uuid, role: Uuid) -> String {
    use base64::Engine;
    let id = stable_id(resource, "assignment", &format!("{principal}/{role}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}
