//! Organization-level cmdlets: organization config and customization, accepted domains,
//! organization relationships (reference §2.1, §2.4).

use serde_json::{Value, json};
use uuid::Uuid;

use super::params::Multi;
use super::{CmdletError, CmdletOutput, CmdletResult, Ctx, Params};
use crate::sim::state::{OrgRelationship, Tenant, World};

pub fn get_organization_config(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    p.ignore(&["Identity"]);
    Ok(CmdletOutput::one(json!({
        "Identity": t.initial_domain,
        "Name": t.initial_domain,
        "DisplayName": t.display_name,
        "Guid": t.id,
        "IsDehydrated": !t.org_customization_enabled,
        "IsUpdatingServicePlan": false,
        "IsUpgradingOrganization": false,
        "OrganizationId": t.initial_domain,
        "ExternalDirectoryOrganizationId": t.id,
    })))
}

pub fn enable_organization_customization(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    _p: &mut Params,
) -> CmdletResult {
    let t = &mut w.tenants[idx];
    if t.org_customization_enabled {
        // Reference §2.1: the text is published; the exception type is not.
        return Err(CmdletError::new(
            "Microsoft.Exchange.Management.Deployment.OrganizationAlreadyEnabledForCustomizationException",
            "This operation is not required. Organization is already enabled for customization.",
        ));
    }
    t.org_customization_enabled = true;
    t.customization_ready_at = Some(ctx.now + ctx.app.customization_delay);
    Ok(CmdletOutput::none())
}

pub fn get_accepted_domain(_ctx: &Ctx<'_>, _w: &World, t: &Tenant, p: &mut Params) -> CmdletResult {
    let id = p.str("Identity")?;
    let out: Vec<Value> = t
        .domains
        .iter()
        .filter(|d| id.as_deref().is_none_or(|i| i.eq_ignore_ascii_case(d)))
        .map(|d| {
            json!({
                "Identity": d, "Name": d, "DomainName": d, "DomainType": "Authoritative",
                "Default": d == t.default_domain(), "InitialDomain": *d == t.initial_domain,
            })
        })
        .collect();
    if let Some(i) = id
        && out.is_empty()
    {
        return Err(CmdletError::not_found(&i));
    }
    Ok(CmdletOutput::many(out))
}

const CAPABILITIES: &[&str] = &["Inbound", "Outbound", "RemoteInbound", "RemoteOutbound"];

/// Parses `MailboxMoveCapability` (flags enum: "Inbound, RemoteOutbound" or a list).
fn parse_capability(p: &mut Params) -> Result<Option<Vec<String>>, CmdletError> {
    let Some(m) = p.multi("MailboxMoveCapability")? else {
        return Ok(None);
    };
    let Multi::Replace(items) = m else {
        return Err(CmdletError::invalid_argument(
            "MailboxMoveCapability is a flags value; pass the full set.",
        ));
    };
    let mut out: Vec<String> = Vec::new();
    for raw in items.iter().flat_map(|s| s.split(',')) {
        let v = raw.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("None") {
            continue;
        }
        let Some(canon) = CAPABILITIES.iter().find(|c| c.eq_ignore_ascii_case(v)) else {
            return Err(CmdletError::new(
                "System.Management.Automation.ParameterBindingArgumentTransformationException",
                format!(
                    "Cannot process argument transformation on parameter 'MailboxMoveCapability'. Cannot convert value \"{v}\" to type \"Microsoft.Exchange.Data.MailboxMoveCapability\". Error: \"Unable to match the identifier name {v} to a valid enumerator name. Specify one of the following enumerator names and try again: None, Inbound, Outbound, RemoteInbound, RemoteOutbound\""
                ),
            ));
        };
        if !out.iter().any(|o| o == canon) {
            out.push(canon.to_string());
        }
    }
    out.sort_by_key(|c| CAPABILITIES.iter().position(|x| x == c));
    Ok(Some(out))
}

fn org_rel_json(t: &Tenant, o: &OrgRelationship) -> Value {
    let scopes: Vec<String> = o
        .mailbox_move_published_scopes
        .iter()
        .map(|s| {
            Uuid::parse_str(s)
                .ok()
                .and_then(|g| t.groups.iter().find(|x| x.guid == g))
                .map(|g| g.name.clone())
                .unwrap_or_else(|| s.clone())
        })
        .collect();
    json!({
        "Identity": o.name,
        "Name": o.name,
        "Guid": o.guid,
        "DomainNames": o.domain_names,
        "Enabled": o.enabled,
        "MailboxMoveEnabled": o.mailbox_move_enabled,
        "MailboxMoveCapability": if o.mailbox_move_capability.is_empty() {
            "None".to_string()
        } else {
            o.mailbox_move_capability.join(", ")
        },
        "MailboxMovePublishedScopes": scopes,
        "OAuthApplicationId": o.oauth_application_id,
        "FreeBusyAccessEnabled": false,
        "MailTipsAccessEnabled": false,
        "ArchiveAccessEnabled": false,
        "PhotosEnabled": false,
        "DeliveryReportEnabled": false,
        "IsValid": true,
    })
}

/// Resolves scope groups to guids; they must be mail-enabled security groups.
fn resolve_scopes(t: &Tenant, names: &[String]) -> Result<Vec<String>, CmdletError> {
    let mut out = Vec::new();
    for n in names {
        let Some(g) = t.groups.iter().find(|g| {
            g.name.eq_ignore_ascii_case(n)
                || g.alias.eq_ignore_ascii_case(n)
                || g.primary_smtp.eq_ignore_ascii_case(n)
                || Uuid::parse_str(n).is_ok_and(|u| u == g.guid)
        }) else {
            return Err(CmdletError::not_found(n));
        };
        if !g.security {
            return Err(CmdletError::invalid_argument(format!(
                "The group '{}' isn't a mail-enabled security group. Only mail-enabled security groups can be used for MailboxMovePublishedScopes.",
                g.name
            )));
        }
        out.push(g.guid.to_string());
    }
    Ok(out)
}

fn find_org_rel(t: &Tenant, id: &str) -> Option<usize> {
    t.org_relationships.iter().position(|o| {
        o.name.eq_ignore_ascii_case(id) || Uuid::parse_str(id).is_ok_and(|g| g == o.guid)
    })
}

fn check_domains(d: &[String]) -> Result<(), CmdletError> {
    if d.len() > 238 {
        return Err(CmdletError::invalid_argument(
            "The number of domains in DomainNames can't exceed 238.",
        ));
    }
    Ok(())
}

pub fn new_organization_relationship(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let name = p.req_str("Name")?;
    if name.chars().count() > 64 {
        return Err(CmdletError::invalid_argument(format!(
            "The length of the property is too long. The maximum length is 64 and the length of the value provided is {}.",
            name.chars().count()
        )));
    }
    let domains = match p.multi("DomainNames")? {
        Some(Multi::Replace(d)) if !d.is_empty() => d,
        _ => {
            return Err(CmdletError::new(
                "System.Management.Automation.ParameterBindingException",
                "Cannot process command because of one or more missing mandatory parameters: DomainNames.",
            ));
        }
    };
    check_domains(&domains)?;
    let enabled = p.bool("Enabled")?.unwrap_or(true);
    let move_enabled = p.bool("MailboxMoveEnabled")?.unwrap_or(false);
    let capability = parse_capability(p)?.unwrap_or_default();
    let scopes = match p.multi("MailboxMovePublishedScopes")? {
        Some(Multi::Replace(s)) => s,
        Some(Multi::Modify { add, .. }) => add,
        None => Vec::new(),
    };
    let oauth = p.str("OAuthApplicationId")?;
    p.ignore(&[
        "FreeBusyAccessEnabled",
        "FreeBusyAccessLevel",
        "FreeBusyAccessScope",
        "MailTipsAccessEnabled",
        "MailTipsAccessLevel",
        "ArchiveAccessEnabled",
        "PhotosEnabled",
        "DeliveryReportEnabled",
        "TargetApplicationUri",
        "TargetAutodiscoverEpr",
        "TargetOwaURL",
        "TargetSharingEpr",
        "OrganizationContact",
    ]);
    let t = &mut w.tenants[idx];
    let scopes = resolve_scopes(t, &scopes)?;
    if find_org_rel(t, &name).is_some() {
        return Err(CmdletError::already_exists(&name));
    }
    // One relationship per partner domain.
    if let Some(o) = t.org_relationships.iter().find(|o| {
        o.domain_names
            .iter()
            .any(|d| domains.iter().any(|n| n.eq_ignore_ascii_case(d)))
    }) {
        return Err(CmdletError::invalid_argument(format!(
            "The domain(s) specified are already used by the organization relationship '{}'.",
            o.name
        )));
    }
    let o = OrgRelationship {
        guid: Uuid::new_v4(),
        name,
        domain_names: domains,
        enabled,
        mailbox_move_enabled: move_enabled,
        mailbox_move_capability: capability,
        mailbox_move_published_scopes: scopes,
        oauth_application_id: oauth,
    };
    let out = org_rel_json(t, &o);
    t.org_relationships.push(o);
    Ok(CmdletOutput::one(out))
}

pub fn get_organization_relationship(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    match p.str("Identity")? {
        Some(id) => {
            let i = find_org_rel(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
            Ok(CmdletOutput::one(org_rel_json(t, &t.org_relationships[i])))
        }
        None => Ok(CmdletOutput::many(
            t.org_relationships
                .iter()
                .map(|o| org_rel_json(t, o))
                .collect(),
        )),
    }
}

pub fn set_organization_relationship(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let new_name = p.str("Name")?;
    let domains = p.multi("DomainNames")?;
    let enabled = p.bool("Enabled")?;
    let move_enabled = p.bool("MailboxMoveEnabled")?;
    let capability = parse_capability(p)?;
    let scopes = p.multi("MailboxMovePublishedScopes")?;
    let oauth = p.str("OAuthApplicationId")?;
    p.ignore(&[
        "Force",
        "FreeBusyAccessEnabled",
        "FreeBusyAccessLevel",
        "FreeBusyAccessScope",
        "MailTipsAccessEnabled",
        "MailTipsAccessLevel",
        "ArchiveAccessEnabled",
        "PhotosEnabled",
        "DeliveryReportEnabled",
        "TargetApplicationUri",
        "TargetAutodiscoverEpr",
        "TargetOwaURL",
        "TargetSharingEpr",
        "OrganizationContact",
    ]);
    let t = &mut w.tenants[idx];
    let i = find_org_rel(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let resolved_scopes = match &scopes {
        Some(Multi::Replace(s)) => Some(Multi::Replace(resolve_scopes(t, s)?)),
        Some(Multi::Modify { add, remove }) => Some(Multi::Modify {
            add: resolve_scopes(t, add)?,
            remove: resolve_scopes(t, remove)?,
        }),
        None => None,
    };
    let o = &mut t.org_relationships[i];
    let mut changed = false;
    if let Some(n) = new_name {
        changed |= o.name != n;
        o.name = n;
    }
    if let Some(d) = domains {
        let before = o.domain_names.clone();
        d.apply(&mut o.domain_names, |a, b| a.eq_ignore_ascii_case(b));
        check_domains(&o.domain_names)?;
        changed |= before != o.domain_names;
    }
    if let Some(e) = enabled {
        changed |= o.enabled != e;
        o.enabled = e;
    }
    if let Some(e) = move_enabled {
        changed |= o.mailbox_move_enabled != e;
        o.mailbox_move_enabled = e;
    }
    if let Some(c) = capability {
        changed |= o.mailbox_move_capability != c;
        o.mailbox_move_capability = c;
    }
    if let Some(s) = resolved_scopes {
        let before = o.mailbox_move_published_scopes.clone();
        s.apply(&mut o.mailbox_move_published_scopes, |a, b| {
            a.eq_ignore_ascii_case(b)
        });
        changed |= before != o.mailbox_move_published_scopes;
    }
    if let Some(a) = oauth {
        changed |= o.oauth_application_id.as_deref() != Some(a.as_str());
        o.oauth_application_id = Some(a);
    }
    let mut out = CmdletOutput::none();
    if !changed {
        out = out.warn(format!(
            "The command completed successfully but no settings of '{}' have been modified.",
            o.name
        ));
    }
    Ok(out)
}

pub fn remove_organization_relationship(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let t = &mut w.tenants[idx];
    let i = find_org_rel(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    t.org_relationships.remove(i);
    Ok(CmdletOutput::none())
}
