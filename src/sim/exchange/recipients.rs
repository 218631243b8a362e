//! Recipient cmdlets: mailboxes, mail users, users (reference §2.6).

use serde_json::{Value, json};
use uuid::Uuid;

use super::params::Multi;
use super::{CmdletError, CmdletOutput, CmdletResult, Ctx, Params, byte_size};
use crate::sim::catalog;
use crate::sim::state::{
    Holds, Recipient, RecipientKind, Tenant, User, World, alias_of, with_smtp_prefix,
};

const GB: u64 = 1 << 30;

fn mailbox_locations(t: &Tenant, r: &Recipient) -> Vec<String> {
    let mut v = Vec::new();
    if !r.is_mailbox() {
        return v;
    }
    let db = catalog::stable_id(t.id, "db", &r.name);
    v.push(format!(
        "1;{};Primary;{};{}",
        r.exchange_guid, t.initial_domain, db
    ));
    if !r.archive_guid.is_nil() {
        v.push(format!(
            "1;{};MainArchive;{};{}",
            r.archive_guid, t.initial_domain, db
        ));
        for i in 0..r.aux_archives {
            let g = catalog::stable_id(r.archive_guid, "aux", &i.to_string());
            v.push(format!("1;{g};AuxArchive;{};{}", t.initial_domain, db));
        }
    }
    v
}

/// The full property set of a recipient as Get-Mailbox / Get-MailUser render it.
pub fn recipient_json(t: &Tenant, r: &Recipient) -> Value {
    recipient_json_with(t, r, t.has_capability_t2t(r.user_id))
}

/// `t2t`: whether the user holds the Cross Tenant User Data Migration licence (precomputed by
/// list callers so large tenants stay linear).
fn recipient_json_with(t: &Tenant, r: &Recipient, t2t: bool) -> Value {
    let upn = r.upn.clone();
    let delegates: Vec<String> = r
        .grant_send_on_behalf_to
        .iter()
        .filter_map(|g| t.recipients.by_guid(*g))
        .map(|x| x.name.clone())
        .collect();
    let mut caps: Vec<&str> = Vec::new();
    if t2t {
        caps.push(catalog::T2T_CAPABILITY);
    }
    let mut v = json!({
        "Identity": r.name,
        "Name": r.name,
        "Alias": r.alias,
        "DisplayName": r.display_name,
        "UserPrincipalName": upn,
        "PrimarySmtpAddress": r.primary_smtp(),
        "EmailAddresses": r.email_addresses,
        "ExchangeGuid": r.exchange_guid,
        "ArchiveGuid": r.archive_guid,
        "LegacyExchangeDN": r.legacy_exchange_dn,
        "RecipientType": r.recipient_type(),
        "RecipientTypeDetails": r.recipient_type_details(),
        "ExternalDirectoryObjectId": r.user_id,
        "Guid": r.guid,
        "IsDirSynced": false,
        "PersistedCapabilities": caps,
        "RecoverableItemsQuota": byte_size(r.recoverable_items_quota_bytes),
        "WhenCreated": r.when_created,
        "WhenCreatedUTC": r.when_created,
    });
    if let Value::Object(m) = &mut v {
        if r.is_mailbox() {
            let has_archive = !r.archive_guid.is_nil();
            m.insert(
                "ArchiveStatus".into(),
                json!(if has_archive { "Active" } else { "None" }),
            );
            m.insert(
                "ArchiveState".into(),
                json!(if has_archive { "Local" } else { "None" }),
            );
            m.insert(
                "ArchiveName".into(),
                json!(if has_archive {
                    vec![format!("In-Place Archive -{}", r.display_name)]
                } else {
                    vec![]
                }),
            );
            m.insert("AutoExpandingArchiveEnabled".into(), json!(false));
            m.insert("MailboxLocations".into(), json!(mailbox_locations(t, r)));
            m.insert(
                "LitigationHoldEnabled".into(),
                json!(r.holds.litigation_hold),
            );
            m.insert("InPlaceHolds".into(), json!(r.holds.in_place_holds));
            m.insert(
                "ComplianceTagHoldApplied".into(),
                json!(r.holds.compliance_tag_hold),
            );
            m.insert("DelayHoldApplied".into(), json!(r.holds.delay_hold));
            m.insert(
                "DelayReleaseHoldApplied".into(),
                json!(r.holds.delay_release_hold),
            );
            m.insert("GrantSendOnBehalfTo".into(), json!(delegates));
            m.insert("ForwardingSmtpAddress".into(), Value::Null);
        } else {
            m.insert(
                "ExternalEmailAddress".into(),
                json!(r.external_email_address),
            );
        }
    }
    v
}

fn find_kind(t: &Tenant, id: &str, mailbox: bool) -> Result<usize, CmdletError> {
    t.find_recipient(id)
        .filter(|i| t.recipients[*i].is_mailbox() == mailbox)
        .ok_or_else(|| CmdletError::not_found(id))
}

/// Applies `-Filter` (OPATH subset) to a cmdlet's output.
pub fn apply_filter(filter: Option<String>, items: Vec<Value>) -> Result<Vec<Value>, CmdletError> {
    let Some(f) = filter else {
        return Ok(items);
    };
    let parsed = super::opath::parse(&f)?;
    if let Some(first) = items.first() {
        super::opath::check_props(&parsed, first)?;
    }
    Ok(items
        .into_iter()
        .filter(|v| super::opath::eval(&parsed, v))
        .collect())
}

fn list_recipients(t: &Tenant, p: &mut Params, mailbox: bool) -> CmdletResult {
    let details = p.multi("RecipientTypeDetails")?;
    let filter = p.str("Filter")?;
    p.ignore(&["Anr", "SortBy"]);
    if let Some(id) = p.str("Identity")? {
        if filter.is_some() {
            return Err(CmdletError::new(
                "System.Management.Automation.ParameterBindingException",
                "Parameter set cannot be resolved using the specified named parameters.",
            ));
        }
        let i = find_kind(t, &id, mailbox)?;
        return Ok(CmdletOutput::one(recipient_json(t, &t.recipients[i])));
    }
    let wanted: Option<Vec<String>> = match details {
        Some(Multi::Replace(v)) => Some(v),
        Some(_) => None,
        None => None,
    };
    let sku = uuid::Uuid::parse_str(catalog::T2T_SKU_ID).ok();
    let licensed: std::collections::HashSet<Uuid> = t
        .users
        .iter()
        .filter(|u| sku.is_some_and(|s| u.assigned_licenses.contains(&s)))
        .map(|u| u.id)
        .collect();
    let out = t
        .recipients
        .iter()
        .filter(|r| r.is_mailbox() == mailbox)
        .filter(|r| {
            wanted.as_ref().is_none_or(|w| {
                w.iter()
                    .any(|d| d.eq_ignore_ascii_case(r.recipient_type_details()))
            })
        })
        .map(|r| recipient_json_with(t, r, licensed.contains(&r.user_id)))
        .collect();
    Ok(CmdletOutput::many(apply_filter(filter, out)?))
}

pub fn get_mailbox(_ctx: &Ctx<'_>, _w: &World, t: &Tenant, p: &mut Params) -> CmdletResult {
    p.ignore(&["Archive", "IncludeInactiveMailbox", "SoftDeletedMailbox"]);
    list_recipients(t, p, true)
}

pub fn get_mail_user(_ctx: &Ctx<'_>, _w: &World, t: &Tenant, p: &mut Params) -> CmdletResult {
    list_recipients(t, p, false)
}

pub fn get_mailbox_statistics(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let archive = p.switch("Archive")?;
    p.ignore(&["IncludeMoveHistory", "IncludeMoveReport"]);
    let i = find_kind(t, &id, true)?;
    let r = &t.recipients[i];
    if archive && r.archive_guid.is_nil() {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Data.Directory.Recipient.MailboxArchiveNotFoundException",
            format!(
                "The archive mailbox for user '{}' couldn't be found.",
                r.name
            ),
        ));
    }
    let (size, guid) = if archive {
        (r.archive_size_bytes, r.archive_guid)
    } else {
        (r.size_bytes, r.exchange_guid)
    };
    Ok(CmdletOutput::one(json!({
        "Identity": r.name,
        "DisplayName": r.display_name,
        "MailboxGuid": guid,
        "ItemCount": if archive { size / (80 * 1024) } else { r.item_count },
        "TotalItemSize": byte_size(size),
        "TotalDeletedItemSize": byte_size(r.total_deleted_item_bytes),
        "DeletedItemCount": r.total_deleted_item_bytes / (80 * 1024),
        "MailboxTypeDetail": r.recipient_type_details(),
        "IsArchiveMailbox": archive,
    })))
}

pub fn get_mailbox_permission(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    p.ignore(&["User", "Owner"]);
    let i = find_kind(t, &id, true)?;
    let r = &t.recipients[i];
    Ok(CmdletOutput::one(json!({
        "Identity": r.name,
        "User": "NT AUTHORITY\\SELF",
        "AccessRights": ["FullAccess", "ReadPermission"],
        "IsInherited": false,
        "Deny": false,
        "InheritanceType": "All",
    })))
}

fn smtp_domain(addr: &str) -> &str {
    addr.rsplit('@').next().unwrap_or_default()
}

fn invalid_address(addr: &str) -> CmdletError {
    CmdletError::new(
        "Microsoft.Exchange.Data.DataValidationException",
        format!(
            "The email address \"{addr}\" isn't correct. Please use this format: user name, the @ sign, followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com."
        ),
    )
}

fn check_address(addr: &str) -> Result<(), CmdletError> {
    let bare = addr.split_once(':').map(|(_, a)| a).unwrap_or(addr);
    let (local, domain) = bare.split_once('@').ok_or_else(|| invalid_address(addr))?;
    if local.is_empty() || !domain.contains('.') {
        return Err(invalid_address(addr));
    }
    Ok(())
}

fn not_accepted(t: &Tenant, addr: &str) -> CmdletError {
    CmdletError::new(
        "Microsoft.Exchange.Data.DataValidationException",
        format!(
            "The domain \"{}\" isn't an accepted domain for your organization ({}). Either use an address in an accepted domain or add the domain as an accepted domain.",
            smtp_domain(addr),
            t.initial_domain
        ),
    )
}

fn name_in_use(name: &str) -> CmdletError {
    CmdletError::new(
        "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
        format!("The name \"{name}\" is already being used. Please try another name."),
    )
}

fn proxy_in_use(addr: &str, owner: &str) -> CmdletError {
    CmdletError::new(
        "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
        format!(
            "The proxy address \"{addr}\" is already being used by the proxy addresses or LegacyExchangeDN of \"{owner}\". Please choose another proxy address."
        ),
    )
}

/// Proxies must be unique in the tenant (compared without prefix case).
fn check_proxies_unique(t: &Tenant, me: Option<Uuid>, addrs: &[String]) -> Result<(), CmdletError> {
    for a in addrs {
        if let Some((_, r)) = t.recipients.with_proxy(a).find(|(_, r)| Some(r.guid) != me) {
            return Err(proxy_in_use(a, &r.name));
        }
    }
    Ok(())
}

pub fn new_mail_user(ctx: &Ctx<'_>, w: &mut World, idx: usize, p: &mut Params) -> CmdletResult {
    let name = p.req_str("Name")?;
    let mosid = p.str("MicrosoftOnlineServicesID")?;
    let upn_param = p.str("UserPrincipalName")?;
    let external = p.str("ExternalEmailAddress")?;
    let password = p.str("Password")?;
    let alias = p.str("Alias")?;
    let display = p.str("DisplayName")?;
    let primary = p.str("PrimarySmtpAddress")?;
    p.ignore(&[
        "FirstName",
        "LastName",
        "Initials",
        "ImmutableId",
        "ResetPasswordOnNextLogon",
        "MailboxRegion",
        "ModeratedBy",
        "ModerationEnabled",
        "SendModerationNotifications",
        "OrganizationalUnit",
        "RemotePowerShellEnabled",
    ]);
    // Parameter sets (reference §2.6): MicrosoftOnlineServicesID (+Password), EnabledUser
    // (ExternalEmailAddress+Password+UserPrincipalName), DisabledUser (ExternalEmailAddress).
    let upn = match (&mosid, &upn_param) {
        (Some(_), Some(_)) => {
            return Err(CmdletError::new(
                "System.Management.Automation.ParameterBindingException",
                "Parameter set cannot be resolved using the specified named parameters.",
            ));
        }
        (Some(m), None) | (None, Some(m)) => {
            if password.is_none() {
                return Err(CmdletError::new(
                    "System.Management.Automation.ParameterBindingException",
                    "Cannot process command because of one or more missing mandatory parameters: Password.",
                ));
            }
            Some(m.clone())
        }
        (None, None) => {
            if external.is_none() {
                return Err(CmdletError::new(
                    "System.Management.Automation.ParameterBindingException",
                    "Cannot process command because of one or more missing mandatory parameters: ExternalEmailAddress.",
                ));
            }
            None
        }
    };
    if upn_param.is_some() && external.is_none() {
        return Err(CmdletError::new(
            "System.Management.Automation.ParameterBindingException",
            "Cannot process command because of one or more missing mandatory parameters: ExternalEmailAddress.",
        ));
    }
    if let Some(pw) = &password
        && p.decrypt(&ctx.app.keys, pw).is_none()
    {
        return Err(CmdletError::new(
            "System.Security.Cryptography.CryptographicException",
            "The SecureString value for parameter 'Password' couldn't be decrypted. Encrypt it with the service's public key.",
        ));
    }
    let t = &mut w.tenants[idx];
    if t.recipients.position_by_name(&name).is_some()
        || t.groups.iter().any(|g| g.name.eq_ignore_ascii_case(&name))
    {
        return Err(name_in_use(&name));
    }
    let upn = match upn {
        Some(u) => {
            check_address(&u)?;
            if !t.is_accepted_domain(smtp_domain(&u)) {
                return Err(not_accepted(t, &u));
            }
            if t.users.position_by_upn(&u).is_some() {
                return Err(CmdletError::new(
                    "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                    format!(
                        "The user principal name \"{u}\" is already being used. Please try another name."
                    ),
                ));
            }
            u
        }
        None => format!(
            "{}@{}",
            alias.clone().unwrap_or_else(|| alias_of_name(&name)),
            t.initial_domain
        ),
    };
    let alias = alias.unwrap_or_else(|| alias_of(&upn));
    let external = match external {
        Some(e) => {
            check_address(&e)?;
            Some(with_smtp_prefix(&e))
        }
        None => None,
    };
    // Without -PrimarySmtpAddress the primary address is the ExternalEmailAddress (the pitfall
    // the cross-tenant article warns about), else the UPN.
    let primary = match primary {
        Some(p) => {
            check_address(&p)?;
            if !t.is_accepted_domain(smtp_domain(&p)) {
                return Err(not_accepted(t, &p));
            }
            p
        }
        None => match &external {
            Some(e) => e
                .split_once(':')
                .map(|(_, a)| a.to_string())
                .unwrap_or_default(),
            None => upn.clone(),
        },
    };
    let mut addrs = vec![format!("SMTP:{primary}")];
    let onms = format!("{alias}@{}", t.initial_domain);
    if !onms.eq_ignore_ascii_case(&primary) {
        addrs.push(format!("smtp:{onms}"));
    }
    check_proxies_unique(t, None, &addrs)?;
    let user_id = Uuid::new_v4();
    let guid = Uuid::new_v4();
    t.users.push(User {
        id: user_id,
        user_principal_name: upn,
        display_name: display.clone().unwrap_or_else(|| name.clone()),
        mail: Some(primary.clone()),
        usage_location: None,
        assigned_licenses: Vec::new(),
        account_enabled: password.is_some(),
        created: ctx.now,
    });
    let r = Recipient {
        guid,
        user_id,
        upn: t
            .users
            .last()
            .map(|u| u.user_principal_name.clone())
            .unwrap_or_default(),
        name: name.clone(),
        alias: alias.clone(),
        display_name: display.unwrap_or(name),
        kind: RecipientKind::MailUser,
        email_addresses: addrs,
        exchange_guid: Uuid::nil(),
        archive_guid: Uuid::nil(),
        legacy_exchange_dn: format!(
            "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}-{}",
            guid.simple(),
            alias
        ),
        external_email_address: external,
        size_bytes: 0,
        item_count: 0,
        archive_size_bytes: 0,
        aux_archives: 0,
        holds: Holds::default(),
        total_deleted_item_bytes: 0,
        substrate_holds_items: 0,
        recoverable_items_quota_bytes: 30 * GB,
        grant_send_on_behalf_to: Vec::new(),
        previous_recipient_type_details: None,
        previous_exchange_guid: None,
        when_created: ctx.now,
    };
    let out = recipient_json(t, &r);
    t.recipients.push(r);
    Ok(CmdletOutput::one(out))
}

fn alias_of_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
        .collect()
}

/// Applies an EmailAddresses change keeping exactly one `SMTP:` primary.
fn apply_email_addresses(list: &mut Vec<String>, m: &Multi) -> Result<(), CmdletError> {
    for a in match m {
        Multi::Replace(v) => v.clone(),
        Multi::Modify { add, .. } => add.clone(),
    } {
        if a.to_ascii_lowercase().starts_with("smtp:") || !a.contains(':') {
            check_address(&a)?;
        }
    }
    let norm = |a: &String| {
        if a.contains(':') {
            a.clone()
        } else {
            format!("smtp:{a}")
        }
    };
    match m {
        Multi::Replace(v) => {
            let v: Vec<String> = v.iter().map(norm).collect();
            let primaries = v.iter().filter(|a| a.starts_with("SMTP:")).count();
            if primaries != 1 {
                return Err(CmdletError::new(
                    "Microsoft.Exchange.Data.DataValidationException",
                    "The EmailAddresses property must contain exactly one primary SMTP address (prefix \"SMTP:\").",
                ));
            }
            *list = v;
        }
        Multi::Modify { add, remove } => {
            let primary = list.iter().find(|a| a.starts_with("SMTP:")).cloned();
            for r in remove {
                let r = norm(r);
                if primary.as_ref().is_some_and(|p| p.eq_ignore_ascii_case(&r)) {
                    return Err(CmdletError::new(
                        "Microsoft.Exchange.Data.DataValidationException",
                        "The primary SMTP address can't be removed. Set another primary address first.",
                    ));
                }
                list.retain(|x| !x.eq_ignore_ascii_case(&r));
            }
            for a in add {
                let a = norm(a);
                if a.starts_with("SMTP:") {
                    // A new primary demotes the old one to a secondary proxy.
                    for x in list.iter_mut() {
                        if let Some(rest) = x.strip_prefix("SMTP:") {
                            *x = format!("smtp:{rest}");
                        }
                    }
                    list.retain(|x| !x.eq_ignore_ascii_case(&a));
                    list.insert(0, a);
                } else if !list.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                    list.push(a);
                }
            }
        }
    }
    Ok(())
}

pub fn set_mail_user(_ctx: &Ctx<'_>, w: &mut World, idx: usize, p: &mut Params) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let exchange_guid = p.guid("ExchangeGuid")?;
    let archive_guid = p.guid("ArchiveGuid")?;
    let emails = p.multi("EmailAddresses")?;
    let external = p.str("ExternalEmailAddress")?;
    let primary = p.str("PrimarySmtpAddress")?;
    let display = p.str("DisplayName")?;
    let mut ignored: Vec<String> = (1..=15).map(|i| format!("CustomAttribute{i}")).collect();
    ignored.extend(
        [
            "EmailAddressPolicyEnabled",
            "HiddenFromAddressListsEnabled",
            "Force",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let ignored_refs: Vec<&str> = ignored.iter().map(String::as_str).collect();
    p.ignore(&ignored_refs);
    if emails.is_some() && primary.is_some() {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Data.DataValidationException",
            "The EmailAddresses and PrimarySmtpAddress parameters can't be used together.",
        ));
    }
    let t = &mut w.tenants[idx];
    let i = find_kind(t, &id, false)?;
    let me = t.recipients[i].guid;
    if let Some(g) = exchange_guid
        && !g.is_nil()
        && let Some((_, other)) = t
            .recipients
            .with_exchange_guid(g)
            .find(|(_, r)| r.guid != me)
    {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Data.DataValidationException",
            format!(
                "The ExchangeGuid \"{g}\" is already used by \"{}\".",
                other.name
            ),
        ));
    }
    let mut addrs = t.recipients[i].email_addresses.clone();
    if let Some(m) = &emails {
        apply_email_addresses(&mut addrs, m)?;
    }
    if let Some(pr) = &primary {
        check_address(pr)?;
        if !t.is_accepted_domain(smtp_domain(pr)) {
            return Err(not_accepted(t, pr));
        }
        apply_email_addresses(
            &mut addrs,
            &Multi::Modify {
                add: vec![format!("SMTP:{pr}")],
                remove: vec![],
            },
        )?;
    }
    let new: Vec<String> = addrs
        .iter()
        .filter(|a| {
            !t.recipients[i]
                .email_addresses
                .iter()
                .any(|x| x.eq_ignore_ascii_case(a))
        })
        .cloned()
        .collect();
    check_proxies_unique(t, Some(me), &new)?;
    if let Some(e) = &external {
        check_address(e)?;
    }
    let mut r = t.recipients.get_mut(i);
    let before = (
        r.exchange_guid,
        r.archive_guid,
        r.email_addresses.clone(),
        r.external_email_address.clone(),
        r.display_name.clone(),
    );
    if let Some(g) = exchange_guid {
        r.exchange_guid = g;
    }
    if let Some(g) = archive_guid {
        r.archive_guid = g;
    }
    r.email_addresses = addrs;
    if let Some(e) = external {
        // The old external address is not kept as a proxy (reference §2.6).
        r.external_email_address = Some(with_smtp_prefix(&e));
    }
    if let Some(d) = display {
        r.display_name = d;
    }
    let after = (
        r.exchange_guid,
        r.archive_guid,
        r.email_addresses.clone(),
        r.external_email_address.clone(),
        r.display_name.clone(),
    );
    let mut out = CmdletOutput::none();
    if before == after {
        out = out.warn(format!(
            "The command completed successfully but no settings of '{}' have been modified.",
            r.name
        ));
    }
    Ok(out)
}

pub fn set_mailbox(_ctx: &Ctx<'_>, w: &mut World, idx: usize, p: &mut Params) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let delegates = p.multi("GrantSendOnBehalfTo")?;
    let emails = p.multi("EmailAddresses")?;
    let lit = p.bool("LitigationHoldEnabled")?;
    let rm_delay = p.switch("RemoveDelayHoldApplied")?;
    let rm_delay_release = p.switch("RemoveDelayReleaseHoldApplied")?;
    p.ignore(&["Force"]);
    let t = &mut w.tenants[idx];
    let i = find_kind(t, &id, true)?;
    if let Some(m) = &delegates {
        let resolve = |t: &Tenant, xs: &[String]| -> Result<Vec<String>, CmdletError> {
            xs.iter()
                .map(|x| {
                    t.find_recipient(x)
                        .map(|j| t.recipients[j].guid.to_string())
                        .ok_or_else(|| CmdletError::not_found(x))
                })
                .collect()
        };
        let resolved = match m {
            Multi::Replace(v) => Multi::Replace(resolve(t, v)?),
            Multi::Modify { add, remove } => Multi::Modify {
                add: resolve(t, add)?,
                remove: resolve(t, remove)?,
            },
        };
        let mut list: Vec<String> = t.recipients[i]
            .grant_send_on_behalf_to
            .iter()
            .map(Uuid::to_string)
            .collect();
        resolved.apply(&mut list, |a, b| a.eq_ignore_ascii_case(b));
        t.recipients.get_mut(i).grant_send_on_behalf_to = list
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect();
    }
    if let Some(m) = &emails {
        let mut addrs = t.recipients[i].email_addresses.clone();
        apply_email_addresses(&mut addrs, m)?;
        // Mailboxes may only carry SMTP proxies in accepted domains.
        for a in &addrs {
            if a.to_ascii_lowercase().starts_with("smtp:") && !t.is_accepted_domain(smtp_domain(a))
            {
                return Err(not_accepted(t, a));
            }
        }
        let me = t.recipients[i].guid;
        check_proxies_unique(t, Some(me), &addrs)?;
        t.recipients.get_mut(i).email_addresses = addrs;
    }
    let mut r = t.recipients.get_mut(i);
    if let Some(l) = lit {
        r.holds.litigation_hold = l;
    }
    if rm_delay {
        r.holds.delay_hold = false;
    }
    if rm_delay_release {
        r.holds.delay_release_hold = false;
    }
    Ok(CmdletOutput::none())
}

fn user_json(t: &Tenant, u: &User) -> Value {
    let r = t.recipients.by_user(u.id);
    json!({
        "Identity": r.map(|r| r.name.clone()).unwrap_or_else(|| u.display_name.clone()),
        "Name": r.map(|r| r.name.clone()).unwrap_or_else(|| u.display_name.clone()),
        "DisplayName": u.display_name,
        "UserPrincipalName": u.user_principal_name,
        "RecipientType": r.map(|r| r.recipient_type()).unwrap_or("User"),
        "RecipientTypeDetails": r.map(|r| r.recipient_type_details()).unwrap_or("User"),
        "PreviousRecipientTypeDetails": r
            .and_then(|r| r.previous_recipient_type_details.clone())
            .unwrap_or_else(|| "None".into()),
        "ExternalDirectoryObjectId": u.id,
        "Guid": r.map(|r| r.guid).unwrap_or(u.id),
        "IsDirSynced": false,
        "UsageLocation": u.usage_location,
        "WhenCreated": u.created,
    })
}

fn find_user(t: &Tenant, id: &str) -> Option<usize> {
    if let Some(ri) = t.find_recipient(id) {
        let uid = t.recipients[ri].user_id;
        return t.users.iter().position(|u| u.id == uid);
    }
    t.users.iter().position(|u| {
        u.user_principal_name.eq_ignore_ascii_case(id)
            || u.display_name.eq_ignore_ascii_case(id)
            || Uuid::parse_str(id).is_ok_and(|g| g == u.id)
    })
}

pub fn get_user(_ctx: &Ctx<'_>, _w: &World, t: &Tenant, p: &mut Params) -> CmdletResult {
    p.ignore(&["RecipientTypeDetails"]);
    let filter = p.str("Filter")?;
    match p.str("Identity")? {
        Some(id) => {
            let i = find_user(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
            Ok(CmdletOutput::one(user_json(t, &t.users[i])))
        }
        None => Ok(CmdletOutput::many(apply_filter(
            filter,
            t.users.iter().map(|u| user_json(t, u)).collect(),
        )?)),
    }
}

pub fn set_user(_ctx: &Ctx<'_>, w: &mut World, idx: usize, p: &mut Params) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let clear = p.switch("PermanentlyClearPreviousMailboxInfo")?;
    let display = p.str("DisplayName")?;
    p.ignore(&["Force"]);
    let t = &mut w.tenants[idx];
    let ui = find_user(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let uid = t.users[ui].id;
    if let Some(d) = display {
        t.users[ui].display_name = d;
    }
    if clear {
        let Some(ri) = t.recipients.position_by_user(uid) else {
            return Ok(CmdletOutput::none());
        };
        let mut r = t.recipients.get_mut(ri);
        if r.is_mailbox() {
            return Err(CmdletError::new(
                "System.InvalidOperationException",
                format!(
                    "The PermanentlyClearPreviousMailboxInfo parameter can't be used on '{}' because it has a mailbox.",
                    r.name
                ),
            ));
        }
        r.previous_recipient_type_details = None;
        r.previous_exchange_guid = None;
    }
    Ok(CmdletOutput::none())
}

/// Resolves a mailbox by any identity, including its ArchiveGuid (Microsoft's validation
/// script passes the ArchiveGuid to Get-MailboxFolderStatistics). Returns (index, archive?).
fn find_mailbox_or_archive(t: &Tenant, id: &str) -> Result<(usize, bool), CmdletError> {
    if let Ok(g) = Uuid::parse_str(id.trim())
        && let Some(i) = t
            .recipients
            .iter()
            .position(|r| r.is_mailbox() && !r.archive_guid.is_nil() && r.archive_guid == g)
    {
        return Ok((i, true));
    }
    Ok((find_kind(t, id, true)?, false))
}

pub fn get_mailbox_folder_statistics(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let scope = p.str("FolderScope")?.unwrap_or_else(|| "All".into());
    let archive_switch = p.switch("Archive")?;
    p.ignore(&[
        "IncludeOldestAndNewestItems",
        "IncludeAnalysis",
        "IncludeSoftDeletedRecipients",
    ]);
    let (i, by_archive_guid) = find_mailbox_or_archive(t, &id)?;
    let r = &t.recipients[i];
    let archive = archive_switch || by_archive_guid;
    if archive && r.archive_guid.is_nil() {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Data.Directory.Recipient.MailboxArchiveNotFoundException",
            format!(
                "The archive mailbox for user '{}' couldn't be found.",
                r.name
            ),
        ));
    }
    let deleted_items = r.total_deleted_item_bytes / (80 * 1024);
    let substrate = if archive { r.substrate_holds_items } else { 0 };
    let folder = |name: &str, ty: &str, items: u64, bytes: u64| {
        json!({
            "Identity": format!("{}\\{}", r.name, name), "Name": name,
            "FolderPath": format!("/{name}"), "FolderType": ty,
            "ItemsInFolder": items, "FolderSize": byte_size(bytes),
            "ItemsInFolderAndSubfolders": items, "FolderAndSubfolderSize": byte_size(bytes),
        })
    };
    let mut out = vec![
        folder("Recoverable Items", "RecoverableItemsRoot", 0, 0),
        folder(
            "Deletions",
            "RecoverableItemsDeletions",
            if archive { 0 } else { deleted_items },
            if archive {
                0
            } else {
                r.total_deleted_item_bytes
            },
        ),
        folder("Versions", "RecoverableItemsVersions", 0, 0),
        folder("Purges", "RecoverableItemsPurges", 0, 0),
        folder("DiscoveryHolds", "RecoverableItemsDiscoveryHolds", 0, 0),
        folder(
            "SubstrateHolds",
            "RecoverableItemsSubstrateHolds",
            substrate,
            substrate * 80 * 1024,
        ),
    ];
    if !scope.eq_ignore_ascii_case("RecoverableItems") {
        let (items, bytes) = if archive {
            (r.archive_size_bytes / (80 * 1024), r.archive_size_bytes)
        } else {
            (r.item_count, r.size_bytes)
        };
        out.insert(0, folder("Top of Information Store", "Root", items, bytes));
    }
    Ok(CmdletOutput::many(out))
}

pub fn export_mailbox_diagnostic_logs(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let component = p.req_str("ComponentName")?;
    p.ignore(&["Archive", "IncludeInactiveMailboxes"]);
    let i = find_kind(t, &id, true)?;
    let r = &t.recipients[i];
    if !component.eq_ignore_ascii_case("HoldTracking") {
        return Err(CmdletError::invalid_argument(format!(
            "The component '{component}' isn't simulated; only HoldTracking is."
        )));
    }
    // Organization-wide holds show up as hold type 4 with an `mbx` hold id (U9).
    let log = if r.holds.org_wide_hold {
        format!(
            "[{{\"hid\":\"mbx{}:1\",\"ht\":4,\"lut\":\"{}\"}}]",
            crate::sim::catalog::stable_id(t.id, "orghold", "1").simple(),
            r.when_created.to_rfc3339()
        )
    } else {
        "[]".to_string()
    };
    Ok(CmdletOutput::one(json!({
        "Identity": r.name, "MailboxIdentity": r.name, "ComponentName": "HoldTracking", "MailboxLog": log,
    })))
}
