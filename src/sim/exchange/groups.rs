//! Distribution groups and their members: the migration scope group (reference §2.5).

use serde_json::{Value, json};
use uuid::Uuid;

use super::{CmdletError, CmdletOutput, CmdletResult, Ctx, Params};
use crate::sim::state::{Group, Tenant, World};

fn group_json(g: &Group) -> Value {
    json!({
        "Identity": g.name,
        "Name": g.name,
        "DisplayName": g.display_name,
        "Alias": g.alias,
        "PrimarySmtpAddress": g.primary_smtp,
        "EmailAddresses": [format!("SMTP:{}", g.primary_smtp)],
        "GroupType": if g.security { "Universal, SecurityEnabled" } else { "Universal" },
        "RecipientType": if g.security { "MailUniversalSecurityGroup" } else { "MailUniversalDistributionGroup" },
        "RecipientTypeDetails": if g.security { "MailUniversalSecurityGroup" } else { "MailUniversalDistributionGroup" },
        "Guid": g.guid,
        "ExternalDirectoryObjectId": g.guid,
        "WhenCreated": g.when_created,
    })
}

pub fn find_group(t: &Tenant, id: &str) -> Option<usize> {
    t.groups.iter().position(|g| {
        g.name.eq_ignore_ascii_case(id)
            || g.alias.eq_ignore_ascii_case(id)
            || g.primary_smtp.eq_ignore_ascii_case(id)
            || g.display_name.eq_ignore_ascii_case(id)
            || Uuid::parse_str(id).is_ok_and(|u| u == g.guid)
    })
}

pub fn new_distribution_group(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let name = p.req_str("Name")?;
    let kind = p.str("Type")?.unwrap_or_else(|| "Distribution".into());
    let security = if kind.eq_ignore_ascii_case("Security") {
        true
    } else if kind.eq_ignore_ascii_case("Distribution") {
        false
    } else {
        return Err(CmdletError::new(
            "System.Management.Automation.ParameterBindingArgumentTransformationException",
            format!(
                "Cannot process argument transformation on parameter 'Type'. Cannot convert value \"{kind}\" to type \"Microsoft.Exchange.Management.RecipientTasks.GroupType\". Error: \"Unable to match the identifier name {kind} to a valid enumerator name. Specify one of the following enumerator names and try again: Distribution, Security\""
            ),
        ));
    };
    let alias = p.str("Alias")?.unwrap_or_else(|| {
        name.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.')
            .collect()
    });
    let display = p.str("DisplayName")?.unwrap_or_else(|| name.clone());
    let primary = p.str("PrimarySmtpAddress")?;
    let members = match p.multi("Members")? {
        Some(super::params::Multi::Replace(m)) => m,
        Some(super::params::Multi::Modify { add, .. }) => add,
        None => Vec::new(),
    };
    p.ignore(&[
        "ManagedBy",
        "Notes",
        "MemberDepartRestriction",
        "MemberJoinRestriction",
        "RequireSenderAuthenticationEnabled",
        "BypassNestedModerationEnabled",
        "CopyOwnerToMember",
        "HiddenGroupMembershipEnabled",
        "IgnoreNamingPolicy",
        "ModeratedBy",
        "ModerationEnabled",
        "SendModerationNotifications",
        "OrganizationalUnit",
    ]);
    let t = &mut w.tenants[idx];
    if find_group(t, &name).is_some() || t.find_recipient(&name).is_some() {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
            format!("The name \"{name}\" is already being used. Please try another name."),
        ));
    }
    let primary = primary.unwrap_or_else(|| format!("{alias}@{}", t.default_domain()));
    let domain = primary.rsplit('@').next().unwrap_or_default();
    if !primary.contains('@') || !t.is_accepted_domain(domain) {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Data.DataValidationException",
            format!(
                "The email address \"{primary}\" isn't correct. Please use this format: user name, the @ sign, followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com."
            ),
        ));
    }
    let mut member_ids = Vec::new();
    for m in &members {
        let i = t
            .find_recipient(m)
            .ok_or_else(|| CmdletError::not_found(m))?;
        member_ids.push(t.recipients[i].guid);
    }
    let g = Group {
        guid: Uuid::new_v4(),
        name: name.clone(),
        alias,
        display_name: display,
        security,
        primary_smtp: primary,
        members: member_ids,
        when_created: ctx.now,
    };
    let out = group_json(&g);
    t.groups.push(g);
    Ok(CmdletOutput::one(out))
}

pub fn get_distribution_group(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    p.ignore(&["RecipientTypeDetails"]);
    let filter = p.str("Filter")?;
    match p.str("Identity")? {
        Some(id) => {
            let i = find_group(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
            Ok(CmdletOutput::one(group_json(&t.groups[i])))
        }
        None => Ok(CmdletOutput::many(super::recipients::apply_filter(
            filter,
            t.groups.iter().map(group_json).collect(),
        )?)),
    }
}

/// `Remove-DistributionGroup -Identity` (the group, not its members' mailboxes).
pub fn remove_distribution_group(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    p.ignore(&["BypassSecurityGroupManagerCheck"]);
    let t = &mut w.tenants[idx];
    let i = find_group(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    t.groups.remove(i);
    Ok(CmdletOutput::none())
}

fn member_change(w: &mut World, idx: usize, p: &mut Params, add: bool) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let member = p.req_str("Member")?;
    p.ignore(&["BypassSecurityGroupManagerCheck"]);
    let t = &mut w.tenants[idx];
    let gi = find_group(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let ri = t
        .find_recipient(&member)
        .ok_or_else(|| CmdletError::not_found(&member))?;
    let rguid = t.recipients[ri].guid;
    let rname = t.recipients[ri].name.clone();
    let g = &mut t.groups[gi];
    let is_member = g.members.contains(&rguid);
    if add {
        if is_member {
            return Err(CmdletError::new(
                "Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException",
                format!(
                    "The recipient \"{rname}\" is already a member of the group \"{}\".",
                    g.name
                ),
            ));
        }
        g.members.push(rguid);
    } else {
        if !is_member {
            return Err(CmdletError::new(
                "Microsoft.Exchange.Management.Tasks.MemberNotFoundException",
                format!(
                    "The recipient \"{rname}\" isn't a member of the group \"{}\".",
                    g.name
                ),
            ));
        }
        g.members.retain(|m| *m != rguid);
    }
    Ok(CmdletOutput::none())
}

pub fn add_distribution_group_member(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    member_change(w, idx, p, true)
}

pub fn remove_distribution_group_member(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    member_change(w, idx, p, false)
}

pub fn get_distribution_group_member(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let gi = find_group(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let out = t.groups[gi]
        .members
        .iter()
        .filter_map(|m| t.recipients.by_guid(*m))
        .map(|r| {
            json!({
                "Identity": r.name, "Name": r.name, "DisplayName": r.display_name,
                "Alias": r.alias, "PrimarySmtpAddress": r.primary_smtp(),
                "RecipientType": r.recipient_type(),
                "RecipientTypeDetails": r.recipient_type_details(),
                "ExternalDirectoryObjectId": r.user_id, "Guid": r.guid,
            })
        })
        .collect();
    Ok(CmdletOutput::many(out))
}
