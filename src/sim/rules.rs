//! Cross-tenant rules as pure functions over the world (deciding, not doing): migration-app
//! connectivity, organization-relationship checks (validation script O1–O10) and, for the move
//! engine, per-user checks. Texts follow reference §3.2 / §5.

use uuid::Uuid;

use super::catalog;
use super::state::{CredentialSecret, MigrationEndpoint, Tenant, World};

/// The only remote server for worldwide cross-tenant moves (reference §2.2).
pub const WW_REMOTE_SERVER: &str = "outlook.office.com";

/// A failed rule: exception type name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub exception: &'static str,
    pub message: String,
}

fn v(exception: &'static str, message: impl Into<String>) -> Violation {
    Violation {
        exception,
        message: message.into(),
    }
}

fn has_mailbox_migration(t: &Tenant, app_id: &str) -> bool {
    let Some(sp) = t.sp_by_app_id(app_id) else {
        return false;
    };
    t.roles_of(sp.id, catalog::EXCHANGE_APP_ID)
        .iter()
        .any(|r| r == "Mailbox.Migration")
}

/// Can the target reach the source with this endpoint's app and secret? Returns the source
/// tenant's index.
pub fn endpoint_connectivity(
    w: &World,
    target: &Tenant,
    remote_server: &str,
    remote_tenant: Option<&str>,
    app_id: Option<&str>,
    secret: Option<&str>,
) -> Result<usize, Violation> {
    const FAILED: &str = "Microsoft.Exchange.Migration.MigrationServerConnectionFailedException";
    if !remote_server.eq_ignore_ascii_case(WW_REMOTE_SERVER) {
        return Err(v(
            FAILED,
            format!("The connection to the server '{remote_server}' could not be completed."),
        ));
    }
    let Some(rt) = remote_tenant else {
        return Err(v(
            "Microsoft.Exchange.Migration.MigrationPermanentException",
            "The RemoteTenant parameter is required for cross-tenant migration endpoints.",
        ));
    };
    let Some(src) = w.tenant_index(rt).filter(|i| w.tenants[*i].id != target.id) else {
        return Err(v(
            FAILED,
            format!(
                "The connection to the server '{remote_server}' could not be completed. AADSTS90002: Tenant '{rt}' not found."
            ),
        ));
    };
    let Some(app_id) = app_id else {
        return Err(v(
            "Microsoft.Exchange.Migration.MigrationPermanentException",
            "The ApplicationId parameter is required for cross-tenant migration endpoints.",
        ));
    };
    let app = Uuid::parse_str(app_id).ok().and_then(|a| w.application(a));
    let Some((_, reg)) = app else {
        return Err(v(
            FAILED,
            format!(
                "The connection to the server '{remote_server}' could not be completed. AADSTS700016: Application with identifier '{app_id}' was not found in the directory."
            ),
        ));
    };
    let secret_ok = secret.is_some_and(|s| {
        reg.credentials
            .iter()
            .any(|c| matches!(&c.secret, CredentialSecret::Password(p) if p == s))
    });
    if !secret_ok {
        return Err(v(
            FAILED,
            format!(
                "The connection to the server '{remote_server}' could not be completed. AADSTS7000215: Invalid client secret provided."
            ),
        ));
    }
    let source = &w.tenants[src];
    if !has_mailbox_migration(source, app_id) {
        return Err(v(
            FAILED,
            format!(
                "The connection to the server '{remote_server}' could not be completed. AADSTS700016: Application with identifier '{app_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                source.display_name
            ),
        ));
    }
    Ok(src)
}

/// Organization-level readiness (validation script O2, O4–O10) for a target endpoint.
pub fn org_checks(w: &World, target: &Tenant, ep: &MigrationEndpoint) -> Vec<Violation> {
    const CFG: &str = "Microsoft.Exchange.Migration.CrossTenantMigrationConfigurationException";
    let mut out = Vec::new();
    let Some(src_idx) = ep.remote_tenant.as_deref().and_then(|d| w.tenant_index(d)) else {
        out.push(v(CFG, "The endpoint's RemoteTenant isn't a known tenant."));
        return out;
    };
    let source = &w.tenants[src_idx];
    let src_id = source.id.to_string();
    let tgt_id = target.id.to_string();
    let app = ep.application_id.clone().unwrap_or_default();
    if !has_mailbox_migration(target, &app) {
        out.push(v(
            CFG,
            "The migration application isn't consented with Mailbox.Migration in the target tenant.",
        ));
    }
    match target.org_relationships.iter().find(|o| {
        o.domain_names
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&src_id))
    }) {
        None => out.push(v(
            CFG,
            "No Organization relationship on TARGET tenant pointing to SourceTenantId.",
        )),
        Some(o) => {
            if !o.mailbox_move_enabled {
                out.push(v(
                    CFG,
                    "The TARGET organization relationship is not enabled for moves.",
                ));
            }
            if o.mailbox_move_capability != ["Inbound"] {
                out.push(v(
                    CFG,
                    "The TARGET organization relationship MailboxMoveCapability expected value is 'Inbound'.",
                ));
            }
        }
    }
    match source.org_relationships.iter().find(|o| {
        o.oauth_application_id
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(&app))
    }) {
        None => out.push(v(
            CFG,
            "No Organization relationship on SOURCE tenant with the migration application's OAuthApplicationId.",
        )),
        Some(o) => {
            if !o.mailbox_move_enabled {
                out.push(v(CFG, "The SOURCE organization relationship is not enabled for moves."));
            }
            if !o.mailbox_move_capability.iter().any(|c| c == "RemoteOutbound") {
                out.push(v(
                    CFG,
                    "The SOURCE organization relationship MailboxMoveCapability expected value is 'RemoteOutbound'.",
                ));
            }
            if !o.domain_names.iter().any(|d| d.eq_ignore_ascii_case(&tgt_id)) {
                out.push(v(
                    CFG,
                    "The SOURCE organization relationship is not pointing to TargetTenantId.",
                ));
            }
            if o.mailbox_move_published_scopes.is_empty() {
                out.push(v(
                    CFG,
                    "The SOURCE organization relationship does not have a Mail-Enabled security group defined in MailboxMovePublishedScopes.",
                ));
            }
        }
    }
    out
}

/// The source tenant's scope group guids (from its RemoteOutbound relationship for `app`).
pub fn scope_groups(source: &Tenant, app: &str) -> Vec<Uuid> {
    source
        .org_relationships
        .iter()
        .filter(|o| {
            o.mailbox_move_capability
                .iter()
                .any(|c| c == "RemoteOutbound")
                && o.oauth_application_id
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(app))
        })
        .flat_map(|o| {
            o.mailbox_move_published_scopes
                .iter()
                .filter_map(|s| Uuid::parse_str(s).ok())
        })
        .collect()
}

/// Is the recipient a (possibly nested) member of one of the groups?
pub fn in_scope(source: &Tenant, recipient: Uuid, groups: &[Uuid]) -> bool {
    let mut stack: Vec<Uuid> = groups.to_vec();
    let mut seen = Vec::new();
    while let Some(g) = stack.pop() {
        if seen.contains(&g) {
            continue;
        }
        seen.push(g);
        if let Some(group) = source.groups.iter().find(|x| x.guid == g) {
            for m in &group.members {
                if *m == recipient {
                    return true;
                }
                if source.groups.iter().any(|x| x.guid == *m) {
                    stack.push(*m);
                }
            }
        }
    }
    false
}

/// Per-user readiness of a (target MailUser, source mailbox) pair, in the order of the
/// validation script (U1–U19) plus the article's failure modes. Returns the source tenant and
/// recipient indices when every blocking rule passes; warnings (U18) are not violations.
pub fn user_checks(
    w: &World,
    target: &Tenant,
    ep: &MigrationEndpoint,
    mu: &super::state::Recipient,
) -> Result<(usize, usize), Vec<Violation>> {
    const NS: &str = "Microsoft.Exchange.Migration.";
    let _ = NS;
    let mut out = Vec::new();
    let Some(si) = ep.remote_tenant.as_deref().and_then(|d| w.tenant_index(d)) else {
        return Err(vec![v(
            "Microsoft.Exchange.Migration.MigrationPermanentException",
            "The endpoint's RemoteTenant isn't a known tenant.",
        )]);
    };
    let source = &w.tenants[si];
    if mu.is_mailbox() {
        // Licensing before stamping ExchangeGuid provisions a new mailbox (reference §4).
        return Err(vec![v(
            "Microsoft.Exchange.Migration.TargetRecipientIsMailboxPermanentException",
            format!(
                "The target recipient '{}' already has a mailbox. A mailbox was provisioned because a license was assigned before the ExchangeGuid was stamped; the target must be a MailUser.",
                mu.name
            ),
        )]);
    }
    // U19 / U1: the source mailbox is the one the target's ExternalEmailAddress points at.
    let ext = mu
        .external_email_address
        .as_deref()
        .map(|e| e.split_once(':').map(|(_, a)| a).unwrap_or(e))
        .unwrap_or("");
    let Some(ri) = source.recipients.iter().position(|r| {
        r.is_mailbox()
            && r.email_addresses.iter().any(|a| {
                a.split_once(':')
                    .is_some_and(|(_, x)| x.eq_ignore_ascii_case(ext))
            })
    }) else {
        return Err(vec![v(
            "Microsoft.Exchange.Migration.MigrationRecipientNotFoundException",
            format!(
                "The source mailbox for target recipient '{}' couldn't be found: ExternalEmailAddress '{ext}' doesn't match any address of a mailbox in the source organization.",
                mu.name
            ),
        )]);
    };
    let src = &source.recipients[ri];
    // U2
    if src.aux_archives > 12 {
        out.push(v(
            "Microsoft.Exchange.Migration.TooManyAuxArchivesPermanentException",
            format!(
                "The source mailbox '{}' has {} auxiliary archives; cross-tenant moves support no more than 12.",
                src.name, src.aux_archives
            ),
        ));
    }
    // U3: Cross Tenant User Data Migration licence on either side (user mailboxes only).
    let is_user_mailbox = src.recipient_type_details() == "UserMailbox";
    if is_user_mailbox
        && !source.has_capability_t2t(src.user_id)
        && !target.has_capability_t2t(mu.user_id)
    {
        out.push(v(
            "Microsoft.Exchange.Migration.CrossTenantMigrationWithoutLicensePermanentException",
            format!(
                "No license was found for the source recipient, '{}', or the target recipient, '{}'. A Cross-tenant User Data Migration license is required to move a mailbox between tenants.",
                src.exchange_guid, mu.guid
            ),
        ));
    }
    // U4–U9: holds of every kind block the move.
    let h = &src.holds;
    let hold_kinds: Vec<&str> = [
        (h.litigation_hold, "LitigationHold"),
        (h.delay_hold, "DelayHold"),
        (h.delay_release_hold, "DelayReleaseHold"),
        (h.compliance_tag_hold, "ComplianceTagHold"),
        (
            h.in_place_holds.iter().any(|x| {
                let l = x.to_ascii_lowercase();
                l.starts_with("mbx")
                    || l.starts_with("cld")
                    || l.starts_with("unih")
                    || l.starts_with("skp")
                    || x.len() == 32
            }),
            "InPlaceHold",
        ),
        (h.org_wide_hold, "OrganizationWideHold"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| *n)
    .collect();
    if !hold_kinds.is_empty() {
        out.push(v(
            "Microsoft.Exchange.Migration.SourceMailboxOnHoldPermanentException",
            format!(
                "The source mailbox '{}' is on hold ({}). Mailboxes that are on any type of hold aren't migrated, and the move for those mailboxes is blocked.",
                src.name,
                hold_kinds.join(", ")
            ),
        ));
    }
    // U10
    if !src.archive_guid.is_nil() && src.substrate_holds_items > 0 {
        out.push(v(
            "Microsoft.Exchange.Migration.SubstrateHoldsNotEmptyPermanentException",
            format!(
                "The archive of '{}' has {} items in Recoverable Items\\SubstrateHolds.",
                src.name, src.substrate_holds_items
            ),
        ));
    }
    // U11
    let groups = scope_groups(source, ep.application_id.as_deref().unwrap_or(""));
    if !in_scope(source, src.guid, &groups) {
        out.push(v(
            "Microsoft.Exchange.Migration.MailboxNotInCrossTenantMigrationScopeException",
            format!(
                "The mailbox '{}' isn't a member of the MailboxMovePublishedScopes group of the source organization relationship.",
                src.name
            ),
        ));
    }
    // U12
    if src.total_deleted_item_bytes > mu.recoverable_items_quota_bytes {
        out.push(v(
            "Microsoft.Exchange.Migration.RecoverableItemsQuotaExceededPermanentException",
            format!(
                "TotalDeletedItemSize of '{}' ({} bytes) is bigger than the target RecoverableItemsQuota ({} bytes).",
                src.name, src.total_deleted_item_bytes, mu.recoverable_items_quota_bytes
            ),
        ));
    }
    // U13
    if mu.exchange_guid != src.exchange_guid {
        out.push(v(
            "Microsoft.Exchange.Migration.MissingExchangeGuidException",
            format!(
                "The target MailUser '{}' ExchangeGuid '{}' doesn't match the source mailbox ExchangeGuid '{}'.",
                mu.name, mu.exchange_guid, src.exchange_guid
            ),
        ));
    }
    // U14
    if (src.archive_guid.is_nil() && !mu.archive_guid.is_nil())
        || (!src.archive_guid.is_nil() && mu.archive_guid != src.archive_guid)
    {
        out.push(v(
            "Microsoft.Exchange.Migration.ArchiveGuidMismatchPermanentException",
            format!(
                "The target MailUser '{}' ArchiveGuid '{}' doesn't match the source ArchiveGuid '{}'.",
                mu.name, mu.archive_guid, src.archive_guid
            ),
        ));
    }
    // U15
    let x500 = format!("X500:{}", src.legacy_exchange_dn);
    if !mu
        .email_addresses
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&x500))
    {
        out.push(v(
            "Microsoft.Exchange.Migration.MissingLegacyExchangeDNProxyPermanentException",
            format!(
                "The target MailUser '{}' is missing the proxy address {x500}.",
                mu.name
            ),
        ));
    }
    // U16 / U17: every SMTP proxy (and the primary) must be in a target accepted domain.
    for a in &mu.email_addresses {
        if let Some((p, addr)) = a.split_once(':')
            && p.eq_ignore_ascii_case("smtp")
        {
            let d = addr.rsplit('@').next().unwrap_or("");
            if !target.is_accepted_domain(d) {
                out.push(v(
                    "Microsoft.Exchange.Migration.NotAcceptedDomainException",
                    format!(
                        "The proxy address '{a}' of target recipient '{}' is in the domain '{d}', which isn't an accepted domain of the target organization.",
                        mu.name
                    ),
                ));
            }
        }
    }
    // Stale previous mailbox data on the target object.
    if mu.previous_exchange_guid.is_some() {
        out.push(v(
            "Microsoft.Exchange.Migration.TargetUserHasPreviousMailboxDataPermanentException",
            format!(
                "The target user '{}' has data from a previous mailbox. Run Set-User -PermanentlyClearPreviousMailboxInfo.",
                mu.name
            ),
        ));
    }
    if out.is_empty() {
        Ok((si, ri))
    } else {
        Err(out)
    }
}

/// Test-MigrationServerAvailability's user-level view: the same rules.
pub fn user_checks_for_test(
    w: &World,
    target: &Tenant,
    ep: &MigrationEndpoint,
    mu: &super::state::Recipient,
) -> Vec<Violation> {
    user_checks(w, target, ep, mu).err().unwrap_or_default()
}
