//! Graph directory endpoints: organization, subscribedSkus, users (filter/select/paging),
//! PATCH users and assignLicense.

use super::*;

pub(super) fn organization(req: &Req<'_>, id: Option<&str>) -> GResult {
    req.require(&roles(
        &["Organization.Read.All", "Organization.ReadWrite.All"],
        true,
    ))?;
    with_tenant(req, |_, t| {
        if let Some(id) = id
            && !id.eq_ignore_ascii_case(&t.id.to_string())
        {
            return Err(req.not_found(id));
        }
        let domains: Vec<Value> = t
            .domains
            .iter()
            .map(|d| {
                json!({"name": d, "isInitial": *d == t.initial_domain,
                       "isDefault": d == t.default_domain(), "type": "Managed",
                       "capabilities": if *d == t.initial_domain { "Email, OfficeCommunicationsOnline" } else { "Email" }})
            })
            .collect();
        let org = json!({
            "id": t.id, "displayName": t.display_name, "tenantType": "AAD",
            "defaultUsageLocation": t.default_usage_location, "verifiedDomains": domains,
            "countryLetterCode": t.default_usage_location,
            "createdDateTime": "2020-01-01T00:00:00Z",
        });
        let org = apply_select(req, org, None, "organization")?;
        Ok(match id {
            Some(_) => {
                let mut o = org;
                if let Value::Object(m) = &mut o {
                    m.insert(
                        "@odata.context".into(),
                        json!(req.context("organization/$entity")),
                    );
                }
                GraphResponse::ok(o)
            }
            None => GraphResponse::ok(
                json!({"@odata.context": req.context("organization"), "value": [org]}),
            ),
        })
    })
}

pub(super) fn subscribed_skus(req: &Req<'_>, id: Option<&str>) -> GResult {
    req.require(&roles(
        &[
            "LicenseAssignment.Read.All",
            "LicenseAssignment.ReadWrite.All",
            "Organization.Read.All",
        ],
        true,
    ))?;
    if req.q("filter").is_some() {
        return Err(req.err(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        ));
    }
    with_tenant(req, |_, t| {
        let skus: Vec<Value> = t
            .skus
            .iter()
            .map(|s| {
                json!({
                    "id": format!("{}_{}", t.id, s.sku_id), "accountId": t.id, "accountName": t.display_name,
                    "appliesTo": "User", "capabilityStatus": "Enabled",
                    "consumedUnits": t.consumed_units(s.sku_id),
                    "prepaidUnits": {"enabled": s.seats, "lockedOut": 0, "suspended": 0, "warning": 0},
                    "servicePlans": s.service_plans.iter().map(|(pid, n)| json!({
                        "servicePlanId": pid, "servicePlanName": n, "provisioningStatus": "Success", "appliesTo": "User"})).collect::<Vec<_>>(),
                    "skuId": s.sku_id, "skuPartNumber": s.sku_part_number,
                    "subscriptionIds": [catalog::stable_id(t.id, "subscription", &s.sku_id.to_string())],
                })
            })
            .collect();
        match id {
            Some(id) => {
                let s = skus
                    .into_iter()
                    .find(|s| s["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
                    .ok_or_else(|| req.not_found(id))?;
                Ok(GraphResponse::ok(apply_select(
                    req,
                    s,
                    None,
                    "subscribedSku",
                )?))
            }
            None => {
                let value = skus
                    .into_iter()
                    .map(|s| apply_select(req, s, None, "subscribedSku"))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(GraphResponse::ok(
                    json!({"@odata.context": req.context("subscribedSkus"), "value": value}),
                ))
            }
        }
    })
}

pub(super) const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

pub(super) fn user_json(t: &Tenant, u: &User) -> Value {
    let r = t.recipients.by_user(u.id);
    user_json_with(u, r)
}

pub(super) fn user_json_with(u: &User, r: Option<&crate::sim::state::Recipient>) -> Value {
    let (given, sur) = u
        .display_name
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_else(|| (u.display_name.clone(), String::new()));
    let proxies: Vec<String> = r
        .map(|r| {
            r.email_addresses
                .iter()
                .filter(|a| {
                    a.to_ascii_lowercase().starts_with("smtp:")
                        || a.to_ascii_lowercase().starts_with("x500:")
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": u.id, "userPrincipalName": u.user_principal_name, "displayName": u.display_name,
        "givenName": given, "surname": sur, "mail": u.mail, "mailNickname": r.map(|r| r.alias.clone()),
        "jobTitle": null, "mobilePhone": null, "officeLocation": null, "preferredLanguage": null,
        "businessPhones": [], "usageLocation": u.usage_location, "accountEnabled": u.account_enabled,
        "assignedLicenses": u.assigned_licenses.iter().map(|s| json!({"disabledPlans": [], "skuId": s})).collect::<Vec<_>>(),
        "proxyAddresses": proxies, "createdDateTime": u.created, "userType": "Member",
        "onPremisesSyncEnabled": null, "onPremisesImmutableId": null,
    })
}

pub(super) fn find_user(t: &Tenant, id: &str) -> Option<usize> {
    t.users.iter().position(|u| {
        u.user_principal_name.eq_ignore_ascii_case(id)
            || Uuid::parse_str(id).is_ok_and(|g| g == u.id)
    })
}

/// A parsed `$filter` over users: conjunctions / disjunctions of simple predicates.
pub(super) enum Pred {
    Eq(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    In(String, Vec<String>),
    HasSku(String),
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
}

pub(super) const FILTERABLE: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "usageLocation",
    "accountEnabled",
    "givenName",
    "surname",
    "mailNickname",
    "userType",
];

pub(super) fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return Some(inner.replace("''", "'"));
    }
    if s == "true" || s == "false" || Uuid::parse_str(s).is_ok() {
        return Some(s.to_string());
    }
    None
}

pub(super) fn split_top(s: &str, op: &str) -> Option<(String, String)> {
    let mut depth = 0i32;
    let mut quote = false;
    let bytes = s.as_bytes();
    let pat = format!(" {op} ");
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        match c {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            _ => {}
        }
        if !quote && depth == 0 && s[i..].to_ascii_lowercase().starts_with(&pat) {
            return Some((s[..i].to_string(), s[i + pat.len()..].to_string()));
        }
        i += 1;
    }
    None
}

pub(super) fn parse_filter(s: &str) -> Result<Pred, String> {
    let s = s.trim();
    if let Some((a, b)) = split_top(s, "or") {
        return Ok(Pred::Or(
            Box::new(parse_filter(&a)?),
            Box::new(parse_filter(&b)?),
        ));
    }
    if let Some((a, b)) = split_top(s, "and") {
        return Ok(Pred::And(
            Box::new(parse_filter(&a)?),
            Box::new(parse_filter(&b)?),
        ));
    }
    if s.starts_with('(') && s.ends_with(')') {
        return parse_filter(&s[1..s.len() - 1]);
    }
    let check = |p: &str| -> Result<String, String> {
        FILTERABLE
            .iter()
            .find(|f| f.eq_ignore_ascii_case(p.trim()))
            .map(|f| f.to_string())
            .ok_or_else(|| {
                format!(
                    "Could not find a property named '{}' on type 'microsoft.graph.user'.",
                    p.trim()
                )
            })
    };
    let lower = s.to_ascii_lowercase();
    for (fname, ctor) in [("startswith(", 0), ("endswith(", 1)] {
        if lower.starts_with(fname) && s.ends_with(')') {
            let inner = &s[fname.len()..s.len() - 1];
            let (p, v) = inner.split_once(',').ok_or("Invalid filter clause")?;
            let v = unquote(v).ok_or("Invalid filter clause")?;
            let p = check(p)?;
            return Ok(if ctor == 0 {
                Pred::StartsWith(p, v)
            } else {
                Pred::EndsWith(p, v)
            });
        }
    }
    if lower.starts_with("assignedlicenses/any(") && s.ends_with(')') {
        // assignedLicenses/any(x:x/skuId eq <guid>)
        let inner = &s["assignedLicenses/any(".len()..s.len() - 1];
        let (_, cond) = inner.split_once(':').ok_or("Invalid filter clause")?;
        let (lhs, rhs) = split_top(cond, "eq").ok_or("Invalid filter clause")?;
        if !lhs.trim().to_ascii_lowercase().ends_with("/skuid") {
            return Err("Invalid filter clause".into());
        }
        return Ok(Pred::HasSku(unquote(&rhs).ok_or("Invalid filter clause")?));
    }
    if let Some((p, rest)) = split_top(s, "in") {
        let rest = rest.trim();
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or("Invalid filter clause")?;
        let vals = inner
            .split(',')
            .map(|v| unquote(v).ok_or("Invalid filter clause".to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Pred::In(check(&p)?, vals));
    }
    if let Some((p, v)) = split_top(s, "eq") {
        return Ok(Pred::Eq(
            check(&p)?,
            unquote(&v).ok_or("Invalid filter clause")?,
        ));
    }
    Err("Invalid filter clause".into())
}

pub(super) fn needs_advanced(p: &Pred) -> bool {
    match p {
        Pred::EndsWith(..) => true,
        Pred::And(a, b) | Pred::Or(a, b) => needs_advanced(a) || needs_advanced(b),
        _ => false,
    }
}

pub(super) fn prop_str(u: &Value, p: &str) -> String {
    match &u[p] {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) fn eval(p: &Pred, u: &Value) -> bool {
    match p {
        Pred::Eq(k, v) => prop_str(u, k).eq_ignore_ascii_case(v),
        Pred::StartsWith(k, v) => prop_str(u, k)
            .to_ascii_lowercase()
            .starts_with(&v.to_ascii_lowercase()),
        Pred::EndsWith(k, v) => prop_str(u, k)
            .to_ascii_lowercase()
            .ends_with(&v.to_ascii_lowercase()),
        Pred::In(k, vs) => vs.iter().any(|v| prop_str(u, k).eq_ignore_ascii_case(v)),
        Pred::HasSku(s) => u["assignedLicenses"].as_array().is_some_and(|a| {
            a.iter().any(|l| {
                l["skuId"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(s))
            })
        }),
        Pred::And(a, b) => eval(a, u) && eval(b, u),
        Pred::Or(a, b) => eval(a, u) || eval(b, u),
    }
}

pub(super) fn list_users(req: &Req<'_>) -> GResult {
    req.require(&roles(&["User.Read.All", "User.ReadWrite.All"], true))?;
    let mut r = Req {
        app: req.app,
        caller: req.caller,
        version: req.version,
        now: req.now,
        query: req.query.clone(),
        headers: req.headers.clone(),
    };
    let offset = resume(&mut r)?;
    let req = &r;
    let advanced = req
        .header("ConsistencyLevel")
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    let count = req.q("count").is_some_and(|c| c == "true");
    if req.q("skip").is_some() {
        return Err(req.err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "'$skip' is not supported by the service.",
        ));
    }
    if (count || req.q("search").is_some() || req.q("orderby").is_some()) && !advanced {
        return Err(req.err(StatusCode::BAD_REQUEST, "Request_BadRequest",
            "The request requires the 'ConsistencyLevel:eventual' header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"));
    }
    let pred = match req.q("filter") {
        Some(f) => Some(parse_filter(f).map_err(|m| {
            if m.starts_with("Could not find") {
                req.bad(m)
            } else {
                req.err(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Unsupported Query.",
                )
            }
        })?),
        None => None,
    };
    if let Some(p) = &pred
        && needs_advanced(p)
        && !(advanced && count)
    {
        return Err(req.err(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery",
            "Operator 'endsWith' is not supported because the 'ConsistencyLevel:eventual' header is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information"));
    }
    with_tenant(req, |_, t| {
        // One pass to pair users with recipients keeps large tenants linear.
        let by_user: std::collections::HashMap<Uuid, &crate::sim::state::Recipient> =
            t.recipients.iter().map(|r| (r.user_id, r)).collect();
        let all: Vec<Value> = t
            .users
            .iter()
            .map(|u| user_json_with(u, by_user.get(&u.id).copied()))
            .filter(|u| pred.as_ref().is_none_or(|p| eval(p, u)))
            .collect();
        let n = all.len();
        let items = all
            .into_iter()
            .map(|u| apply_select(req, u, Some(USER_DEFAULT), "user"))
            .collect::<Result<Vec<_>, _>>()?;
        page(req, "users", items, 100, offset, count.then_some(n))
    })
}

pub(super) fn get_user(req: &Req<'_>, id: &str) -> GResult {
    req.require(&roles(&["User.Read.All", "User.ReadWrite.All"], true))?;
    with_tenant(req, |_, t| {
        let i = find_user(t, id).ok_or_else(|| req.not_found(id))?;
        let mut v = apply_select(req, user_json(t, &t.users[i]), Some(USER_DEFAULT), "user")?;
        if let Value::Object(m) = &mut v {
            m.insert("@odata.context".into(), json!(req.context("users/$entity")));
        }
        Ok(GraphResponse::ok(v))
    })
}

pub(super) fn patch_user(req: &Req<'_>, id: &str, body: Option<Value>) -> GResult {
    req.require(&["User.ReadWrite.All", "Directory.ReadWrite.All"])?;
    let Some(Value::Object(b)) = body else {
        return Err(req.bad("Empty Payload. JSON content expected."));
    };
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_user(t, id).ok_or_else(|| req.not_found(id))?;
        for (k, v) in &b {
            match k.as_str() {
                "usageLocation" => {
                    let loc = v.as_str().map(str::to_string);
                    if loc
                        .as_ref()
                        .is_some_and(|l| l.len() != 2 || !l.chars().all(|c| c.is_ascii_uppercase()))
                    {
                        return Err(req.bad("Invalid value specified for property 'usageLocation' of resource 'User'."));
                    }
                    t.users[i].usage_location = loc;
                }
                "displayName" => {
                    if let Some(d) = v.as_str() {
                        t.users[i].display_name = d.to_string();
                    }
                }
                "accountEnabled" => {
                    if let Some(e) = v.as_bool() {
                        t.users[i].account_enabled = e;
                    }
                }
                "jobTitle" | "department" | "officeLocation" | "mobilePhone" | "givenName"
                | "surname" => {}
                other => {
                    return Err(req.bad(format!("Property '{other}' does not exist as a declared property or extension property.")));
                }
            }
        }
        Ok(GraphResponse::no_content())
    })
}

/// Service plans that give the user an Exchange Online mailbox.
pub(super) fn has_exchange_plan(t: &Tenant, sku: Uuid) -> bool {
    t.skus.iter().find(|s| s.sku_id == sku).is_some_and(|s| {
        s.service_plans.iter().any(|(_, n)| {
            let n = n.to_ascii_uppercase();
            n.starts_with("EXCHANGE_S_")
                || n.starts_with("EXCHANGEENTERPRISE")
                || n.starts_with("EXCHANGESTANDARD")
        })
    })
}

pub(super) fn assign_license(req: &Req<'_>, id: &str, body: Option<Value>) -> GResult {
    req.require(&[
        "LicenseAssignment.ReadWrite.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ])?;
    let b = body.unwrap_or(Value::Null);
    let (Some(add), Some(remove)) = (b["addLicenses"].as_array(), b["removeLicenses"].as_array())
    else {
        return Err(req.bad("Invalid request: addLicenses and removeLicenses are required."));
    };
    let mut adds = Vec::new();
    for a in add {
        let sku = a["skuId"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| {
                req.bad(
                    "Invalid value specified for property 'skuId' of resource 'AssignedLicense'.",
                )
            })?;
        adds.push(sku);
    }
    let mut removes = Vec::new();
    for r in remove {
        let sku = r
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| req.bad("Invalid value specified for property 'removeLicenses'."))?;
        removes.push(sku);
    }
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_user(t, id).ok_or_else(|| req.not_found(id))?;
        let user_id = t.users[i].id;
        if !adds.is_empty() && t.users[i].usage_location.is_none() {
            return Err(
                req.bad("License assignment cannot be done for user with invalid usage location.")
            );
        }
        for sku in &adds {
            let Some(s) = t.skus.iter().find(|s| s.sku_id == *sku) else {
                return Err(req.bad(format!(
                    "License {sku} does not correspond to a valid company License."
                )));
            };
            let already = t.users[i].assigned_licenses.contains(sku);
            if !already && t.consumed_units(*sku) >= s.seats {
                return Err(req.bad(format!(
                    "Subscription with SKU {sku} does not have any available licenses."
                )));
            }
        }
        for sku in &removes {
            if !t.users[i].assigned_licenses.contains(sku) {
                return Err(req.bad(format!("User does not have a corresponding license {sku}.")));
            }
        }
        let before_exchange = t.users[i]
            .assigned_licenses
            .iter()
            .any(|s| has_exchange_plan(t, *s));
        t.users[i]
            .assigned_licenses
            .retain(|s| !removes.contains(s));
        for sku in adds {
            if !t.users[i].assigned_licenses.contains(&sku) {
                t.users[i].assigned_licenses.push(sku);
            }
        }
        let after_exchange = t.users[i]
            .assigned_licenses
            .iter()
            .any(|s| has_exchange_plan(t, *s));
        if after_exchange && !before_exchange {
            license_effects(t, user_id, now);
        }
        let v = user_json(t, &t.users[i]);
        Ok(GraphResponse::ok(v))
    })
}

/// An Exchange licence on a MailUser: proxies in unverified domains are scrubbed; without a
/// stamped ExchangeGuid a brand-new mailbox is provisioned (reference §4 licensing order).
pub(super) fn license_effects(t: &mut Tenant, user_id: Uuid, now: DateTime<Utc>) {
    let domains = t.domains.clone();
    let ns = t.id;
    let Some(ri) = t.recipients.position_by_user(user_id) else {
        return;
    };
    let mut r = t.recipients.get_mut(ri);
    if r.is_mailbox() {
        return;
    }
    r.email_addresses.retain(|a| match a.split_once(':') {
        Some((p, x)) if p.eq_ignore_ascii_case("smtp") => {
            let d = x.rsplit('@').next().unwrap_or("");
            domains.iter().any(|k| k.eq_ignore_ascii_case(d))
        }
        _ => true,
    });
    if r.exchange_guid.is_nil() {
        r.kind = crate::sim::state::RecipientKind::Mailbox(
            crate::sim::fixture::MailboxKind::UserMailbox,
        );
        r.exchange_guid =
            catalog::stable_id(ns, "provisioned", &format!("{}{}", r.guid, now.timestamp()));
        r.external_email_address = None;
    }
}
