//! The target MailUser a cross-tenant move needs, computed from the source mailbox (pure).
//!
//! Microsoft's requirements (seed 002, "Prerequisites for target user objects"): ExchangeGuid and
//! (with an archive) ArchiveGuid copied from the source; `x500:` of the source LegacyExchangeDN plus
//! every source x500 proxy; UPN and primary SMTP in the target; ExternalEmailAddress pointing at the
//! source mailbox; no SMTP proxy in a domain the target does not own; a proxy in the target delivery
//! domain so Exchange can stamp the source's new targetAddress on completion.

use std::collections::BTreeSet;

use crate::api::BatchUser;
use crate::tenant::exchange::types::{MailUser, Mailbox, is_zero_guid};
use crate::tenant::exchange::{MailUserChanges, NewMailUser};

/// What the target MailUser of one user must look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredMailUser {
    pub name: String,
    pub alias: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub primary_smtp_address: String,
    /// `SMTP:<source primary address>`.
    pub external_email_address: String,
    pub exchange_guid: String,
    pub archive_guid: Option<String>,
    /// Proxies that must be present (`x500:`/`X500:` and the delivery-domain `smtp:`).
    pub required_addresses: Vec<String>,
}

fn domain_of(addr: &str) -> &str {
    let a = addr.split_once(':').map(|(_, r)| r).unwrap_or(addr);
    a.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

fn local_part(addr: &str) -> &str {
    addr.split_once('@').map(|(l, _)| l).unwrap_or(addr)
}

/// Compares proxies the way Exchange does: prefix case-insensitively (it only marks primary),
/// address case-insensitively.
fn same_proxy(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The desired MailUser for `user`, whose source mailbox is `source`. `delivery_domain` is the
/// batch's TargetDeliveryDomain.
pub fn desired(
    user: &BatchUser,
    source: &Mailbox,
    delivery_domain: &str,
) -> Result<DesiredMailUser, String> {
    let exchange_guid = source
        .exchange_guid
        .clone()
        .filter(|g| !is_zero_guid(g))
        .ok_or_else(|| format!("source mailbox {} has no ExchangeGuid", user.source))?;
    let legacy_dn = source
        .legacy_exchange_dn
        .clone()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| format!("source mailbox {} has no LegacyExchangeDN", user.source))?;
    let alias = user
        .alias
        .clone()
        .or_else(|| source.alias.clone())
        .unwrap_or_else(|| local_part(&user.target).to_string());
    let display_name = user
        .display_name
        .clone()
        .or_else(|| source.display_name.clone())
        .unwrap_or_else(|| alias.clone());
    let source_primary = source
        .primary_smtp_address
        .clone()
        .unwrap_or_else(|| user.source.clone());
    let upn = user
        .user_principal_name
        .clone()
        .unwrap_or_else(|| user.target.clone());

    let mut required = vec![format!("x500:{legacy_dn}")];
    for p in &source.email_addresses {
        if p.len() > 5
            && p[..5].eq_ignore_ascii_case("x500:")
            && !required.iter().any(|r| same_proxy(r, p))
        {
            required.push(format!("X500:{}", &p[5..]));
        }
    }
    let delivery = format!("smtp:{alias}@{delivery_domain}");
    if !domain_of(&user.target).eq_ignore_ascii_case(delivery_domain) {
        required.push(delivery);
    }
    Ok(DesiredMailUser {
        name: alias.clone(),
        alias,
        display_name,
        user_principal_name: upn,
        primary_smtp_address: user.target.clone(),
        external_email_address: format!("SMTP:{source_primary}"),
        exchange_guid,
        archive_guid: source
            .has_archive()
            .then(|| source.archive_guid.clone())
            .flatten(),
        required_addresses: required,
    })
}

impl DesiredMailUser {
    /// New-MailUser parameters (GUIDs and proxies are stamped afterwards with Set-MailUser).
    pub fn new_mail_user(&self, password: String) -> NewMailUser {
        NewMailUser {
            name: self.name.clone(),
            alias: self.alias.clone(),
            display_name: self.display_name.clone(),
            first_name: None,
            last_name: None,
            microsoft_online_services_id: self.user_principal_name.clone(),
            primary_smtp_address: self.primary_smtp_address.clone(),
            external_email_address: self.external_email_address.clone(),
            password,
        }
    }

    /// The Set-MailUser call that repairs `current`; empty when it is already right.
    /// `owned_domains` are the target's accepted domains: SMTP proxies elsewhere are removed
    /// (they would block the MailUser-to-mailbox conversion).
    pub fn repair(&self, current: &MailUser, owned_domains: &BTreeSet<String>) -> MailUserChanges {
        let mut c = MailUserChanges::default();
        if !current
            .exchange_guid
            .as_deref()
            .is_some_and(|g| g.eq_ignore_ascii_case(&self.exchange_guid))
        {
            c.exchange_guid = Some(self.exchange_guid.clone());
        }
        if let Some(ag) = &self.archive_guid
            && !current
                .archive_guid
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(ag))
        {
            c.archive_guid = Some(ag.clone());
        }
        if !current
            .external_email_address
            .as_deref()
            .is_some_and(|e| same_proxy(e, &self.external_email_address))
        {
            c.external_email_address = Some(self.external_email_address.clone());
        }
        for want in &self.required_addresses {
            if !current
                .email_addresses
                .iter()
                .any(|have| same_proxy(have, want))
            {
                c.add_addresses.push(want.clone());
            }
        }
        for have in &current.email_addresses {
            let is_smtp = have.len() > 5 && have[..5].eq_ignore_ascii_case("smtp:");
            if is_smtp && !owned_domains.contains(&domain_of(have).to_ascii_lowercase()) {
                c.remove_addresses.push(have.clone());
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Mailbox {
        Mailbox {
            identity: "LaraN".into(),
            alias: Some("LaraN".into()),
            display_name: Some("Lara Newton".into()),
            primary_smtp_address: Some("Lara.Newton@contoso.com".into()),
            exchange_guid: Some("1ec059c7-8396-4d0b-af4e-d6bd4c12a8d8".into()),
            archive_guid: Some("00000000-0000-0000-0000-000000000000".into()),
            legacy_exchange_dn: Some("/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=d11ec1a2cacd4f81858c81907273f1f9-Lara".into()),
            email_addresses: vec![
                "smtp:LaraN@contoso.onmicrosoft.com".into(),
                "SMTP:Lara.Newton@contoso.com".into(),
                "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=f161af74128f460fba5c0c23984b3d6c-Lara".into(),
            ],
            ..Default::default()
        }
    }

    fn user() -> BatchUser {
        BatchUser {
            source: "Lara.Newton@contoso.com".into(),
            target: "Lara.Newton@northwindtraders.com".into(),
            ..Default::default()
        }
    }

    fn owned() -> BTreeSet<String> {
        ["northwindtraders.com", "northwindtraders.onmicrosoft.com"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// The seed's example target MailUser.
    #[test]
    fn matches_microsofts_example() {
        let d = desired(&user(), &source(), "northwindtraders.onmicrosoft.com").expect("desired");
        assert_eq!(d.exchange_guid, "1ec059c7-8396-4d0b-af4e-d6bd4c12a8d8");
        assert_eq!(d.archive_guid, None, "no archive: ArchiveGuid all zeros");
        assert_eq!(d.primary_smtp_address, "Lara.Newton@northwindtraders.com");
        assert_eq!(d.external_email_address, "SMTP:Lara.Newton@contoso.com");
        assert_eq!(d.alias, "LaraN");
        assert_eq!(
            d.required_addresses,
            vec![
                "x500:/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=d11ec1a2cacd4f81858c81907273f1f9-Lara".to_string(),
                "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=f161af74128f460fba5c0c23984b3d6c-Lara".to_string(),
                "smtp:LaraN@northwindtraders.onmicrosoft.com".to_string(),
            ]
        );
        assert!(
            !d.required_addresses
                .iter()
                .any(|a| a.contains("contoso.com")),
            "no source SMTP proxies are copied"
        );
    }

    #[test]
    fn archive_guid_is_copied_when_the_source_has_an_archive() {
        let mut s = source();
        s.archive_guid = Some("2f1e0d9c-8b7a-4654-9321-0fedcba98765".into());
        let d = desired(&user(), &s, "northwindtraders.onmicrosoft.com").expect("desired");
        assert_eq!(
            d.archive_guid.as_deref(),
            Some("2f1e0d9c-8b7a-4654-9321-0fedcba98765")
        );
    }

    #[test]
    fn missing_guid_or_dn_is_an_error() {
        let mut s = source();
        s.exchange_guid = None;
        assert!(desired(&user(), &s, "x.onmicrosoft.com").is_err());
        let mut s = source();
        s.legacy_exchange_dn = Some(String::new());
        assert!(desired(&user(), &s, "x.onmicrosoft.com").is_err());
    }

    #[test]
    fn a_correct_mail_user_needs_no_change() {
        let d = desired(&user(), &source(), "northwindtraders.onmicrosoft.com").expect("desired");
        let mut addresses = d.required_addresses.clone();
        addresses.push("SMTP:Lara.Newton@northwindtraders.com".into());
        let current = MailUser {
            identity: "LaraN".into(),
            exchange_guid: Some(d.exchange_guid.to_uppercase()),
            external_email_address: Some("smtp:lara.newton@contoso.com".into()),
            email_addresses: addresses,
            ..Default::default()
        };
        assert!(d.repair(&current, &owned()).is_empty());
    }

    #[test]
    fn repair_stamps_what_is_missing_and_strips_foreign_smtp() {
        let d = desired(&user(), &source(), "northwindtraders.onmicrosoft.com").expect("desired");
        let current = MailUser {
            identity: "LaraN".into(),
            exchange_guid: Some("00000000-0000-0000-0000-000000000000".into()),
            external_email_address: Some("SMTP:Lara.Newton@contoso.com".into()),
            email_addresses: vec![
                "SMTP:Lara.Newton@northwindtraders.com".into(),
                "smtp:LaraN@contoso.onmicrosoft.com".into(),
            ],
            ..Default::default()
        };
        let c = d.repair(&current, &owned());
        assert_eq!(
            c.exchange_guid.as_deref(),
            Some("1ec059c7-8396-4d0b-af4e-d6bd4c12a8d8")
        );
        assert_eq!(c.external_email_address, None);
        assert_eq!(c.add_addresses.len(), 3);
        assert_eq!(
            c.remove_addresses,
            vec!["smtp:LaraN@contoso.onmicrosoft.com".to_string()]
        );
    }
}
