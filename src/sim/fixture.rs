//! The YAML fixture describing the simulated tenants, and a generator for bulk mailboxes.
//! Format documented in `docs/simulator.md`; `examples/tenants.yaml` is a complete example.

use std::path::Path;

use serde::Deserialize;
use uuid::Uuid;

use super::error::SimError;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    pub tenants: Vec<TenantFixture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantFixture {
    pub id: Uuid,
    pub display_name: String,
    /// The `*.onmicrosoft.com` domain.
    pub initial_domain: String,
    /// Further verified (custom) domains; the first one is the default domain.
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub default_usage_location: Option<String>,
    /// `false` = `Get-OrganizationConfig` reports `IsDehydrated: True`.
    #[serde(default)]
    pub organization_customization_enabled: bool,
    #[serde(default)]
    pub skus: Vec<SkuFixture>,
    pub admin_app: AppFixture,
    #[serde(default)]
    pub apps: Vec<AppFixture>,
    #[serde(default)]
    pub users: Vec<UserFixture>,
    #[serde(default)]
    pub groups: Vec<GroupFixture>,
    /// Bulk mailboxes generated on load (`--generate N` adds to the first tenant's count).
    #[serde(default)]
    pub generate: Option<GenerateFixture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkuFixture {
    pub sku_id: Uuid,
    pub sku_part_number: String,
    /// `prepaidUnits.enabled`.
    pub seats: u32,
    #[serde(default)]
    pub service_plans: Vec<ServicePlanFixture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePlanFixture {
    pub service_plan_id: Uuid,
    pub service_plan_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppFixture {
    pub client_id: Uuid,
    pub display_name: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// PEM certificate registered as a key credential (for client assertions).
    #[serde(default)]
    pub certificate_pem: Option<String>,
    /// Microsoft Graph application permissions granted (admin-consented) in this tenant.
    #[serde(default)]
    pub graph_roles: Vec<String>,
    /// Office 365 Exchange Online application permissions granted in this tenant.
    #[serde(default)]
    pub exchange_roles: Vec<String>,
    /// Entra directory roles held by the app's service principal (e.g. "Exchange Administrator").
    #[serde(default)]
    pub directory_roles: Vec<String>,
    #[serde(default)]
    pub sign_in_audience: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Workload-identity trust (federated identity credentials).
    #[serde(default)]
    pub federated_credentials: Vec<FederatedFixture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedFixture {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    #[serde(default = "default_fic_audiences")]
    pub audiences: Vec<String>,
    /// Issuer signing keys (PEM). Empty = discover them from the issuer over HTTPS.
    #[serde(default)]
    pub public_keys_pem: Vec<String>,
}

fn default_fic_audiences() -> Vec<String> {
    vec!["api://AzureADTokenExchange".to_string()]
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum MailboxKind {
    #[default]
    UserMailbox,
    SharedMailbox,
    RoomMailbox,
    EquipmentMailbox,
}

impl MailboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxKind::UserMailbox => "UserMailbox",
            MailboxKind::SharedMailbox => "SharedMailbox",
            MailboxKind::RoomMailbox => "RoomMailbox",
            MailboxKind::EquipmentMailbox => "EquipmentMailbox",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserFixture {
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub usage_location: Option<String>,
    /// skuIds assigned.
    #[serde(default)]
    pub licenses: Vec<Uuid>,
    #[serde(default)]
    pub mailbox: Option<MailboxFixture>,
    #[serde(default)]
    pub mail_user: Option<MailUserFixture>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MailboxFixture {
    #[serde(default)]
    pub kind: MailboxKind,
    #[serde(default)]
    pub primary_smtp_address: Option<String>,
    /// Extra proxies (`smtp:…`, `x500:…`).
    #[serde(default)]
    pub email_addresses: Vec<String>,
    #[serde(default)]
    pub size_mb: u64,
    #[serde(default)]
    pub item_count: Option<u64>,
    #[serde(default)]
    pub archive: bool,
    #[serde(default)]
    pub archive_size_mb: u64,
    #[serde(default)]
    pub aux_archives: u32,
    #[serde(default)]
    pub holds: HoldsFixture,
    #[serde(default)]
    pub total_deleted_item_size_mb: u64,
    /// Items in the archive's Recoverable Items\SubstrateHolds folder (U10).
    #[serde(default)]
    pub substrate_holds_items: u64,
    /// UPNs of delegates.
    #[serde(default)]
    pub grant_send_on_behalf_to: Vec<String>,
    #[serde(default)]
    pub exchange_guid: Option<Uuid>,
    #[serde(default)]
    pub archive_guid: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldsFixture {
    #[serde(default)]
    pub litigation_hold: bool,
    #[serde(default)]
    pub in_place_holds: Vec<String>,
    #[serde(default)]
    pub compliance_tag_hold: bool,
    #[serde(default)]
    pub delay_hold: bool,
    #[serde(default)]
    pub delay_release_hold: bool,
    #[serde(default)]
    pub org_wide_hold: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MailUserFixture {
    pub external_email_address: String,
    #[serde(default)]
    pub primary_smtp_address: Option<String>,
    #[serde(default)]
    pub email_addresses: Vec<String>,
    #[serde(default)]
    pub exchange_guid: Option<Uuid>,
    #[serde(default)]
    pub archive_guid: Option<Uuid>,
    /// The object used to be a mailbox (`Get-User` shows `PreviousRecipientTypeDetails`).
    #[serde(default)]
    pub previous_mailbox: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupFixture {
    pub name: String,
    #[serde(default)]
    pub security: bool,
    #[serde(default)]
    pub primary_smtp_address: Option<String>,
    /// Member UPNs.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateFixture {
    pub mailboxes: usize,
    /// Mailbox size of generated mailboxes (MB); varied ±50% deterministically.
    #[serde(default = "default_generated_size")]
    pub size_mb: u64,
}

fn default_generated_size() -> u64 {
    2048
}

impl Fixture {
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::FixtureRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses a fixture, given directly or as the `tenants.yaml` key of a Kubernetes ConfigMap
    /// (so `kubectl apply -f examples/` accepts the file too).
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let raw: serde_yaml::Value = serde_yaml::from_str(text)?;
        let inner = if raw.get("kind").and_then(|k| k.as_str()) == Some("ConfigMap") {
            raw.get("data")
                .and_then(|d| d.get("tenants.yaml"))
                .and_then(|t| t.as_str())
                .map(str::to_string)
        } else {
            None
        };
        let mut fx: Fixture = match inner {
            Some(t) => serde_yaml::from_str(&t)?,
            None => serde_yaml::from_value(raw)?,
        };
        fx.expand_generated();
        fx.validate()?;
        Ok(fx)
    }

    /// Adds `n` generated mailboxes to the first tenant (the `--generate N` option).
    pub fn add_generated(&mut self, n: usize) {
        if let Some(t) = self.tenants.first_mut() {
            let g = t.generate.get_or_insert_with(|| GenerateFixture {
                mailboxes: 0,
                size_mb: default_generated_size(),
            });
            g.mailboxes += n;
        }
        self.expand_generated();
    }

    fn expand_generated(&mut self) {
        for t in &mut self.tenants {
            let Some(g) = t.generate.take() else { continue };
            let domain = t.domains.first().unwrap_or(&t.initial_domain).clone();
            for i in 0..g.mailboxes {
                // Deterministic variety: every 7th mailbox has an archive, every 11th is shared.
                let factor = 50 + (i * 37 % 101) as u64; // 50..150 %
                let upn = format!("gen{i:05}@{domain}");
                t.users.push(UserFixture {
                    user_principal_name: upn,
                    display_name: format!("Generated User {i:05}"),
                    alias: None,
                    usage_location: t.default_usage_location.clone(),
                    licenses: Vec::new(),
                    mailbox: Some(MailboxFixture {
                        kind: if i % 11 == 10 {
                            MailboxKind::SharedMailbox
                        } else {
                            MailboxKind::UserMailbox
                        },
                        size_mb: g.size_mb * factor / 100,
                        archive: i % 7 == 6,
                        archive_size_mb: if i % 7 == 6 { g.size_mb / 2 } else { 0 },
                        ..MailboxFixture::default()
                    }),
                    mail_user: None,
                });
            }
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        if self.tenants.is_empty() {
            return Err(SimError::FixtureInvalid("no tenants".into()));
        }
        let mut ids = std::collections::HashSet::new();
        for t in &self.tenants {
            if !ids.insert(t.id) {
                return Err(SimError::FixtureInvalid(format!(
                    "duplicate tenant id {}",
                    t.id
                )));
            }
            if !t.initial_domain.ends_with(".onmicrosoft.com") {
                return Err(SimError::FixtureInvalid(format!(
                    "tenant {}: initialDomain must end in .onmicrosoft.com",
                    t.id
                )));
            }
            let mut upns = std::collections::HashSet::new();
            for u in &t.users {
                if !upns.insert(u.user_principal_name.to_ascii_lowercase()) {
                    return Err(SimError::FixtureInvalid(format!(
                        "tenant {}: duplicate user {}",
                        t.id, u.user_principal_name
                    )));
                }
                if u.mailbox.is_some() && u.mail_user.is_some() {
                    return Err(SimError::FixtureInvalid(format!(
                        "user {}: a recipient is either a mailbox or a mail user",
                        u.user_principal_name
                    )));
                }
                if let Some(m) = &u.mailbox
                    && m.aux_archives > 0
                    && !m.archive
                {
                    return Err(SimError::FixtureInvalid(format!(
                        "user {}: auxArchives need archive: true",
                        u.user_principal_name
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "tenants:\n  - id: 3f2b6c1a-8d4e-4b7a-9c11-5a0e2d7f4b01\n    displayName: C\n    initialDomain: c.onmicrosoft.com\n    domains: [c.com]\n    adminApp: {clientId: 7a1c9e40-2b6d-4f83-a5e1-0c9d8b7a6f01, displayName: a}\n";

    #[test]
    fn generator_adds_varied_mailboxes_to_the_first_tenant() {
        let mut fx = Fixture::parse(MIN).expect("fixture");
        fx.add_generated(22);
        let users = &fx.tenants[0].users;
        assert_eq!(users.len(), 22);
        assert_eq!(users[0].user_principal_name, "gen00000@c.com");
        let shared = users
            .iter()
            .filter(|u| {
                u.mailbox
                    .as_ref()
                    .is_some_and(|m| m.kind == MailboxKind::SharedMailbox)
            })
            .count();
        let archives = users
            .iter()
            .filter(|u| u.mailbox.as_ref().is_some_and(|m| m.archive))
            .count();
        assert_eq!((shared, archives), (2, 3));
    }

    #[test]
    fn invalid_fixtures_are_refused() {
        let bad_domain = MIN.replace("c.onmicrosoft.com", "c.example");
        assert!(Fixture::parse(&bad_domain).is_err());
        let unknown_key = format!("{MIN}    colour: blue\n");
        assert!(Fixture::parse(&unknown_key).is_err());
        let dup = format!(
            "{MIN}    users:\n      - {{userPrincipalName: a@c.com, displayName: A}}\n      - {{userPrincipalName: A@c.com, displayName: B}}\n"
        );
        assert!(Fixture::parse(&dup).is_err());
    }
}
