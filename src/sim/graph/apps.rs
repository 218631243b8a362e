//! Graph app registrations: applications, passwords, federated identity credentials, service
//! principals and app-role assignments.

use super::*;

pub(super) fn cred_json(c: &Credential) -> Value {
    json!({"customKeyIdentifier": null, "displayName": c.display_name, "endDateTime": c.end,
           "keyId": c.key_id, "startDateTime": c.start,
           "hint": match &c.secret { CredentialSecret::Password(p) => Some(p.chars().take(3).collect::<String>()), _ => None },
           "secretText": null})
}

pub(super) fn app_json(a: &Application, tenant: &Tenant) -> Value {
    let pw: Vec<Value> = a
        .credentials
        .iter()
        .filter(|c| matches!(c.secret, CredentialSecret::Password(_)))
        .map(cred_json)
        .collect();
    let keys: Vec<Value> = a
        .credentials
        .iter()
        .filter_map(|c| match &c.secret {
            CredentialSecret::Certificate(der) => Some(json!({
                "customKeyIdentifier": base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der)),
                "keyId": c.key_id, "type": "AsymmetricX509Cert", "usage": "Verify",
                "displayName": c.display_name, "startDateTime": c.start, "endDateTime": c.end, "key": null})),
            _ => None,
        })
        .collect();
    json!({
        "id": a.id, "appId": a.app_id, "displayName": a.display_name, "signInAudience": a.sign_in_audience,
        "publisherDomain": tenant.initial_domain, "createdDateTime": a.created,
        "web": {"redirectUris": a.redirect_uris, "homePageUrl": null, "logoutUrl": null},
        "requiredResourceAccess": a.required_resource_access.iter().map(|r| json!({
            "resourceAppId": r.resource_app_id,
            "resourceAccess": r.resource_access.iter().map(|(id, ty)| json!({"id": id, "type": ty})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "passwordCredentials": pw, "keyCredentials": keys, "tags": a.tags,
    })
}

pub(super) fn find_app(t: &Tenant, key: &str) -> Option<usize> {
    if let Some(app_id) = key.strip_prefix("appId=") {
        return t
            .applications
            .iter()
            .position(|a| a.app_id.to_string().eq_ignore_ascii_case(app_id));
    }
    t.applications
        .iter()
        .position(|a| Uuid::parse_str(key).is_ok_and(|g| g == a.id))
}

pub(super) const APP_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub(super) const APP_WRITE: &[&str] =
    &["Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"];

pub(super) fn simple_filter(
    req: &Req<'_>,
    allowed: &[&str],
) -> Result<Option<(String, String)>, GraphResponse> {
    let Some(f) = req.q("filter") else {
        return Ok(None);
    };
    match parse_any_eq(f) {
        Some((p, v)) if allowed.iter().any(|a| a.eq_ignore_ascii_case(&p)) => Ok(Some((p, v))),
        _ => Err(req.err(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        )),
    }
}

pub(super) fn parse_any_eq(f: &str) -> Option<(String, String)> {
    let (p, v) = split_top(f.trim(), "eq")?;
    Some((p.trim().to_string(), unquote(&v)?))
}

pub(super) fn list_applications(req: &Req<'_>) -> GResult {
    req.require(APP_READ)?;
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
    let filter = simple_filter(req, &["appId", "displayName"])?;
    with_tenant(req, |_, t| {
        let items = t
            .applications
            .iter()
            .map(|a| app_json(a, t))
            .filter(|a| {
                filter
                    .as_ref()
                    .is_none_or(|(p, v)| prop_str(a, p).eq_ignore_ascii_case(v))
            })
            .map(|a| apply_select(req, a, None, "application"))
            .collect::<Result<Vec<_>, _>>()?;
        page(req, "applications", items, 100, offset, None)
    })
}

pub(super) fn get_application(req: &Req<'_>, key: &str) -> GResult {
    req.require(APP_READ)?;
    with_tenant(req, |_, t| {
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        Ok(GraphResponse::ok(apply_select(
            req,
            app_json(&t.applications[i], t),
            None,
            "application",
        )?))
    })
}

/// `DELETE /applications/{id}`: 204; the app's service principal in its home tenant goes too.
pub(super) fn delete_application(req: &Req<'_>, key: &str) -> GResult {
    req.require(APP_WRITE)?;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let app_id = t.applications[i].app_id.to_string();
        t.applications.remove(i);
        t.service_principals
            .retain(|sp| !sp.app_id.eq_ignore_ascii_case(&app_id));
        Ok(GraphResponse::no_content())
    })
}

pub(super) fn create_application(req: &Req<'_>, body: Option<Value>) -> GResult {
    req.require(APP_WRITE)?;
    let b = body.unwrap_or(Value::Null);
    let Some(name) = b["displayName"].as_str().filter(|s| !s.trim().is_empty()) else {
        return Err(req
            .bad("Invalid value specified for property 'displayName' of resource 'Application'."));
    };
    let audience = b["signInAudience"].as_str().unwrap_or("AzureADMyOrg");
    if ![
        "AzureADMyOrg",
        "AzureADMultipleOrgs",
        "AzureADandPersonalMicrosoftAccount",
        "PersonalMicrosoftAccount",
    ]
    .contains(&audience)
    {
        return Err(req.bad(
            "Invalid value specified for property 'signInAudience' of resource 'Application'.",
        ));
    }
    let redirects: Vec<String> = b["web"]["redirectUris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut rra = Vec::new();
    for r in b["requiredResourceAccess"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let Some(res) = r["resourceAppId"].as_str() else {
            return Err(req.bad("Invalid value specified for property 'resourceAppId' of resource 'RequiredResourceAccess'."));
        };
        let mut access = Vec::new();
        for a in r["resourceAccess"].as_array().cloned().unwrap_or_default() {
            let id = a["id"]
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| {
                    req.bad(
                        "Invalid value specified for property 'id' of resource 'ResourceAccess'.",
                    )
                })?;
            let ty = a["type"].as_str().unwrap_or("");
            if ty != "Role" && ty != "Scope" {
                return Err(req.bad(
                    "Invalid value specified for property 'type' of resource 'ResourceAccess'.",
                ));
            }
            access.push((id, ty.to_string()));
        }
        rra.push(RequiredResourceAccess {
            resource_app_id: res.to_string(),
            resource_access: access,
        });
    }
    let tags: Vec<String> = b["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let a = Application {
            id: Uuid::new_v4(),
            app_id: Uuid::new_v4(),
            display_name: name.to_string(),
            sign_in_audience: audience.to_string(),
            redirect_uris: redirects,
            required_resource_access: rra,
            credentials: Vec::new(),
            federated_credentials: Vec::new(),
            created: now,
            tags,
        };
        let mut v = app_json(&a, t);
        if let Value::Object(m) = &mut v {
            m.insert(
                "@odata.context".into(),
                json!(req.context("applications/$entity")),
            );
        }
        t.applications.push(a);
        Ok(GraphResponse::json(StatusCode::CREATED, v))
    })
}

pub(super) fn add_password(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(APP_WRITE)?;
    let pc = body
        .as_ref()
        .map(|b| b["passwordCredential"].clone())
        .unwrap_or(Value::Null);
    let now = req.now;
    let start = pc["startDateTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(now);
    let end = pc["endDateTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(start + chrono::Duration::days(730));
    if end <= start {
        return Err(req.bad(
            "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.",
        ));
    }
    let display = pc["displayName"].as_str().map(str::to_string);
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let secret = random_secret();
        let c = Credential {
            key_id: Uuid::new_v4(),
            display_name: display,
            start,
            end,
            secret: CredentialSecret::Password(secret.clone()),
        };
        let mut v = cred_json(&c);
        v["secretText"] = json!(secret);
        v["@odata.context"] = json!(req.context("microsoft.graph.passwordCredential"));
        t.applications[i].credentials.push(c);
        Ok(GraphResponse::ok(v))
    })
}

pub(super) fn random_secret() -> String {
    // 40 characters from the alphabet Entra uses for generated secrets.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
    let bytes = *Uuid::new_v4().as_bytes();
    let more = *Uuid::new_v4().as_bytes();
    let more2 = *Uuid::new_v4().as_bytes();
    bytes
        .iter()
        .chain(more.iter())
        .chain(more2.iter())
        .take(40)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

pub(super) fn remove_password(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(APP_WRITE)?;
    let kid = body
        .as_ref()
        .and_then(|b| b["keyId"].as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| req.bad("Invalid value specified for property 'keyId'."))?;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let before = t.applications[i].credentials.len();
        t.applications[i].credentials.retain(|c| c.key_id != kid);
        if t.applications[i].credentials.len() == before {
            return Err(req.err(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("No password credential found with keyId '{kid}'."),
            ));
        }
        Ok(GraphResponse::no_content())
    })
}

pub(super) fn fic_json(f: &crate::sim::federation::FederatedCredential) -> Value {
    json!({"id": f.id, "name": f.name, "issuer": f.issuer, "subject": f.subject,
           "audiences": f.audiences, "description": f.description})
}

pub(super) fn list_fics(req: &Req<'_>, key: &str) -> GResult {
    req.require(APP_READ)?;
    with_tenant(req, |_, t| {
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let items = t.applications[i]
            .federated_credentials
            .iter()
            .map(fic_json)
            .collect();
        page(
            req,
            &format!(
                "applications/{}/federatedIdentityCredentials",
                t.applications[i].id
            ),
            items,
            100,
            0,
            None,
        )
    })
}

/// `POST /applications/{id}/federatedIdentityCredentials` (max 20 per app, unique name).
pub(super) fn add_fic(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(APP_WRITE)?;
    let b = body.unwrap_or(Value::Null);
    let s = |k: &str| {
        b[k].as_str()
            .map(str::to_string)
            .filter(|v| !v.trim().is_empty())
    };
    let (Some(name), Some(issuer), Some(subject)) = (s("name"), s("issuer"), s("subject")) else {
        return Err(req.bad("Invalid request: name, issuer and subject are required."));
    };
    let audiences: Vec<String> = b["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if audiences.len() != 1 {
        return Err(req.bad("Invalid value specified for property 'audiences' of resource 'FederatedIdentityCredential'."));
    }
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let a = &mut t.applications[i];
        if a.federated_credentials.len() >= 20 {
            return Err(req.bad(
                "The number of federated identity credentials of an application can't exceed 20.",
            ));
        }
        if a.federated_credentials
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(&name))
        {
            return Err(req.err(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                format!("FederatedIdentityCredential with name {name} already exists."),
            ));
        }
        if a.federated_credentials
            .iter()
            .any(|f| f.issuer == issuer && f.subject == subject)
        {
            return Err(req.err(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                "FederatedIdentityCredential with the same issuer and subject already exists.",
            ));
        }
        let f = crate::sim::federation::FederatedCredential {
            id: Uuid::new_v4(),
            name,
            issuer,
            subject,
            audiences,
            description: s("description"),
            keys_pem: Vec::new(),
        };
        let v = fic_json(&f);
        a.federated_credentials.push(f);
        Ok(GraphResponse::json(StatusCode::CREATED, v))
    })
}

pub(super) fn sp_json(t: &Tenant, sp: &ServicePrincipal) -> Value {
    let app_roles: Vec<Value> = catalog::roles_for(&sp.app_id)
        .iter()
        .map(|r| json!({"id": r.id, "value": r.value, "displayName": r.display, "description": r.display,
                        "allowedMemberTypes": ["Application"], "isEnabled": true, "origin": "Application"}))
        .collect();
    let _ = t;
    json!({
        "id": sp.id, "appId": sp.app_id, "displayName": sp.display_name, "appDisplayName": sp.display_name,
        "appOwnerOrganizationId": sp.app_owner_organization_id, "servicePrincipalType": sp.service_principal_type,
        "accountEnabled": sp.account_enabled, "appRoles": app_roles, "servicePrincipalNames": [sp.app_id],
    })
}

pub(super) fn find_sp(t: &Tenant, key: &str) -> Option<usize> {
    if let Some(app_id) = key.strip_prefix("appId=") {
        return t
            .service_principals
            .iter()
            .position(|s| s.app_id.eq_ignore_ascii_case(app_id));
    }
    t.service_principals
        .iter()
        .position(|s| Uuid::parse_str(key).is_ok_and(|g| g == s.id))
}

pub(super) fn list_service_principals(req: &Req<'_>) -> GResult {
    req.require(APP_READ)?;
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
    let filter = simple_filter(req, &["appId", "displayName", "servicePrincipalType"])?;
    with_tenant(req, |_, t| {
        let items = t
            .service_principals
            .iter()
            .map(|s| sp_json(t, s))
            .filter(|s| {
                filter
                    .as_ref()
                    .is_none_or(|(p, v)| prop_str(s, p).eq_ignore_ascii_case(v))
            })
            .map(|s| apply_select(req, s, None, "servicePrincipal"))
            .collect::<Result<Vec<_>, _>>()?;
        page(req, "servicePrincipals", items, 100, offset, None)
    })
}

pub(super) fn get_service_principal(req: &Req<'_>, key: &str) -> GResult {
    req.require(APP_READ)?;
    with_tenant(req, |_, t| {
        let i = find_sp(t, key).ok_or_else(|| req.not_found(key))?;
        Ok(GraphResponse::ok(apply_select(
            req,
            sp_json(t, &t.service_principals[i]),
            None,
            "servicePrincipal",
        )?))
    })
}

pub(super) fn create_service_principal(req: &Req<'_>, body: Option<Value>) -> GResult {
    req.require(&["Application.ReadWrite.All", "Directory.ReadWrite.All"])?;
    let app_id = body
        .as_ref()
        .and_then(|b| b["appId"].as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| {
            req.bad("Invalid value specified for property 'appId' of resource 'ServicePrincipal'.")
        })?;
    with_tenant_mut(req, |w, idx| {
        let tid = w.tenants[idx].id;
        let Some((owner, reg)) = w.application(app_id) else {
            return Err(req.bad(format!("The appId '{app_id}' of the service principal does not reference a valid application object.")));
        };
        if owner.id != tid && reg.sign_in_audience == "AzureADMyOrg" {
            return Err(req.bad(format!("The appId '{app_id}' of the service principal does not reference a valid application object.")));
        }
        let (owner_id, name) = (owner.id, reg.display_name.clone());
        let t = &mut w.tenants[idx];
        if t.sp_by_app_id(&app_id.to_string()).is_some() {
            return Err(req.err(StatusCode::CONFLICT, "Request_MultipleObjectsWithSameKeyValue",
                format!("The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use.")));
        }
        let sp = ServicePrincipal {
            id: Uuid::new_v4(),
            app_id: app_id.to_string(),
            display_name: name,
            app_owner_organization_id: Some(owner_id),
            service_principal_type: "Application".into(),
            account_enabled: true,
        };
        let v = sp_json(t, &sp);
        t.service_principals.push(sp);
        Ok(GraphResponse::json(StatusCode::CREATED, v))
    })
}

pub(super) fn assignment_json(a: &crate::sim::state::AppRoleAssignment) -> Value {
    json!({"id": a.id, "appRoleId": a.app_role_id, "createdDateTime": a.created, "deletedDateTime": null,
           "principalDisplayName": a.principal_display_name, "principalId": a.principal_id,
           "principalType": "ServicePrincipal", "resourceDisplayName": a.resource_display_name, "resourceId": a.resource_id})
}

pub(super) fn list_assignments(req: &Req<'_>, key: &str, assigned_to: bool) -> GResult {
    req.require(APP_READ)?;
    with_tenant(req, |_, t| {
        let i = find_sp(t, key).ok_or_else(|| req.not_found(key))?;
        let id = t.service_principals[i].id;
        let items: Vec<Value> = t
            .app_role_assignments
            .iter()
            .filter(|a| {
                if assigned_to {
                    a.resource_id == id
                } else {
                    a.principal_id == id
                }
            })
            .map(assignment_json)
            .collect();
        page(
            req,
            &format!(
                "servicePrincipals/{id}/{}",
                if assigned_to {
                    "appRoleAssignedTo"
                } else {
                    "appRoleAssignments"
                }
            ),
            items,
            100,
            0,
            None,
        )
    })
}

pub(super) fn assign_app_role(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(&["AppRoleAssignment.ReadWrite.All"])?;
    let b = body.unwrap_or(Value::Null);
    let g = |k: &str| b[k].as_str().and_then(|s| Uuid::parse_str(s).ok());
    let (Some(principal), Some(resource), Some(role)) =
        (g("principalId"), g("resourceId"), g("appRoleId"))
    else {
        return Err(req.bad("Invalid request: principalId, resourceId and appRoleId are required."));
    };
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let ri = find_sp(t, key).ok_or_else(|| req.not_found(key))?;
        let res = t.service_principals[ri].clone();
        if res.id != resource {
            return Err(req.bad(
                "The resourceId in the request body must match the service principal in the URL.",
            ));
        }
        let Some(pi) = t.service_principals.iter().position(|s| s.id == principal) else {
            return Err(req.not_found(&principal.to_string()));
        };
        if catalog::role_by_id(&res.app_id, &role.to_string()).is_none() {
            return Err(req.bad("Permission being assigned was not found on application"));
        }
        if t.app_role_assignments.iter().any(|a| {
            a.principal_id == principal && a.resource_id == resource && a.app_role_id == role
        }) {
            return Err(req.bad("Permission being assigned already exists on the object"));
        }
        let rra = [RequiredResourceAccess {
            resource_app_id: res.app_id.clone(),
            resource_access: vec![(role, "Role".into())],
        }];
        let _ = pi;
        t.grant_consent(principal, &rra, now);
        let a = t
            .app_role_assignments
            .iter()
            .find(|a| {
                a.principal_id == principal && a.resource_id == resource && a.app_role_id == role
            })
            .map(assignment_json)
            .unwrap_or(Value::Null);
        Ok(GraphResponse::json(StatusCode::CREATED, a))
    })
}
