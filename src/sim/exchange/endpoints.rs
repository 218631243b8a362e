//! Migration endpoints and Test-MigrationServerAvailability (reference §2.2, §2.3).

use serde_json::{Value, json};
use uuid::Uuid;

use super::{CmdletError, CmdletOutput, CmdletResult, Ctx, Params};
use crate::sim::rules;
use crate::sim::state::{MigrationEndpoint, Tenant, World};

/// Initial syncs (and synced users, which run incremental syncs) on this endpoint.
fn active_counts(t: &Tenant, e: &MigrationEndpoint) -> (usize, usize) {
    use crate::sim::moves::UserStatus;
    let users = t
        .batches
        .iter()
        .filter(|b| b.endpoint == e.guid)
        .flat_map(|b| b.users.iter());
    let (mut active, mut incremental) = (0, 0);
    for u in users {
        match u.status {
            UserStatus::Syncing | UserStatus::Completing => active += 1,
            UserStatus::IncrementalSyncing => incremental += 1,
            _ => {}
        }
    }
    (active, incremental)
}

fn endpoint_json(t: &Tenant, e: &MigrationEndpoint) -> Value {
    let (active, incremental) = active_counts(t, e);
    json!({
        "Identity": e.name,
        "Name": e.name,
        "Guid": e.guid,
        "EndpointType": "ExchangeRemoteMove",
        "IsRemote": true,
        "RemoteServer": e.remote_server,
        "RemoteTenant": e.remote_tenant,
        "ApplicationId": e.application_id,
        "Username": e.username,
        "MaxConcurrentMigrations": e.max_concurrent_migrations,
        "MaxConcurrentIncrementalSyncs": e.max_concurrent_incremental_syncs,
        "ActiveMigrationCount": active,
        "ActiveIncrementalSyncCount": incremental,
        "Port": Value::Null,
        "Authentication": Value::Null,
        "Security": Value::Null,
        "UseAutoDiscover": false,
    })
}

pub fn find_endpoint(t: &Tenant, id: &str) -> Option<usize> {
    t.endpoints.iter().position(|e| {
        e.name.eq_ignore_ascii_case(id) || Uuid::parse_str(id).is_ok_and(|g| g == e.guid)
    })
}

/// Reads `-Credentials` and decrypts the password with the simulator's SecureString key.
fn read_credentials(
    ctx: &Ctx<'_>,
    p: &mut Params,
) -> Result<Option<(String, String)>, CmdletError> {
    let Some((user, enc)) = p.credential("Credentials")? else {
        return Ok(None);
    };
    let secret = ctx.app.keys.decrypt_secure_string(&enc).ok_or_else(|| {
        CmdletError::new(
            "System.Security.Cryptography.CryptographicException",
            "The SecureString value for parameter 'Credentials' couldn't be decrypted. Encrypt it with the service's public key.",
        )
    })?;
    Ok(Some((user, secret)))
}

/// The tenant-wide budget of concurrent migrations across endpoints (reference X §2.2:
/// `MaximumConcurrentMigrationLimitExceededException`). "Unlimited" endpoints are not counted.
fn check_budget(
    ctx: &Ctx<'_>,
    t: &Tenant,
    e: &MigrationEndpoint,
    replacing: Option<Uuid>,
) -> Result<(), CmdletError> {
    let budget = ctx.app.migration_budget;
    let counted = |m: u32| if m == u32::MAX { 0 } else { u64::from(m) };
    let others: u64 = t
        .endpoints
        .iter()
        .filter(|x| Some(x.guid) != replacing)
        .map(|x| counted(x.max_concurrent_migrations))
        .sum();
    let total = others + counted(e.max_concurrent_migrations);
    if total > u64::from(budget) {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Migration.MaximumConcurrentMigrationLimitExceededException",
            format!(
                "The value of MaxConcurrentMigrations ({}) would raise the organization's concurrent migrations across all endpoints to {total}, above the limit of {budget}.",
                e.max_concurrent_migrations
            ),
        ));
    }
    Ok(())
}

fn unlimited_to_u32(v: Option<u32>) -> u32 {
    // "Unlimited" is stored as u32::MAX.
    v.unwrap_or(u32::MAX)
}

fn connectivity(
    w: &World,
    t: &Tenant,
    e: &MigrationEndpoint,
    secret: Option<&str>,
) -> Result<(), CmdletError> {
    rules::endpoint_connectivity(
        w,
        t,
        &e.remote_server,
        e.remote_tenant.as_deref(),
        e.application_id.as_deref(),
        secret,
    )
    .map(|_| ())
    .map_err(|v| CmdletError::new(v.exception, v.message))
}

pub fn new_migration_endpoint(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let name = p.req_str("Name")?;
    if !p.switch("ExchangeRemoteMove")? {
        // Only the ExchangeRemoteMove parameter set is simulated.
        return Err(CmdletError::new(
            "System.Management.Automation.ParameterBindingException",
            "Parameter set cannot be resolved using the specified named parameters.",
        ));
    }
    let remote_server = p.req_str("RemoteServer")?;
    let remote_tenant = p.str("RemoteTenant")?;
    let app_id = p.str("ApplicationId")?;
    let creds = read_credentials(ctx, p)?;
    let kv = p.str("AppSecretKeyVaultUrl")?;
    let max = p.unlimited("MaxConcurrentMigrations")?;
    let max_inc = p.unlimited("MaxConcurrentIncrementalSyncs")?;
    let skip = p.switch("SkipVerification")?;
    p.ignore(&["Partition", "Autodiscover", "TestMailbox"]);
    if kv.is_some() {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Migration.MigrationPermanentException",
            "The Azure Key Vault method for cross-tenant migration endpoints is deprecated; use -Credentials with the application's client secret.",
        ));
    }
    let t = &w.tenants[idx];
    if find_endpoint(t, &name).is_some() {
        return Err(CmdletError::new(
            "Microsoft.Exchange.Migration.MigrationEndpointDuplicateException",
            format!("A migration endpoint with the name '{name}' already exists."),
        ));
    }
    if let (Some((user, _)), Some(app)) = (&creds, &app_id)
        && !user.eq_ignore_ascii_case(app)
    {
        return Err(CmdletError::invalid_argument(
            "The user name of the credentials must be the ApplicationId.",
        ));
    }
    let e = MigrationEndpoint {
        guid: Uuid::new_v4(),
        name,
        remote_server,
        remote_tenant,
        application_id: app_id,
        username: creds.as_ref().map(|(u, _)| u.clone()),
        max_concurrent_migrations: max.map(unlimited_to_u32).unwrap_or(100),
        max_concurrent_incremental_syncs: max_inc.map(unlimited_to_u32).unwrap_or(20),
    };
    check_budget(ctx, t, &e, None)?;
    if !skip {
        connectivity(w, t, &e, creds.as_ref().map(|(_, s)| s.as_str()))?;
    }
    let out = endpoint_json(&w.tenants[idx], &e);
    w.tenants[idx].endpoints.push(e);
    w.tenants[idx].endpoint_secrets.push((
        out["Guid"].as_str().unwrap_or_default().to_string(),
        creds.map(|(_, s)| s),
    ));
    Ok(CmdletOutput::one(out))
}

pub fn get_migration_endpoint(
    _ctx: &Ctx<'_>,
    _w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let kind = p.str("Type")?;
    p.ignore(&[
        "ConnectionSettings",
        "Diagnostic",
        "DiagnosticArgument",
        "DiagnosticInfo",
        "Partition",
    ]);
    if let Some(k) = &kind
        && !k.eq_ignore_ascii_case("ExchangeRemoteMove")
    {
        return Ok(CmdletOutput::none());
    }
    match p.str("Identity")? {
        Some(id) => {
            let i = find_endpoint(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
            Ok(CmdletOutput::one(endpoint_json(t, &t.endpoints[i])))
        }
        None => Ok(CmdletOutput::many(
            t.endpoints.iter().map(|e| endpoint_json(t, e)).collect(),
        )),
    }
}

pub fn set_migration_endpoint(
    ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let app_id = p.str("ApplicationId")?;
    let creds = read_credentials(ctx, p)?;
    let max = p.unlimited("MaxConcurrentMigrations")?;
    let max_inc = p.unlimited("MaxConcurrentIncrementalSyncs")?;
    let remote_server = p.str("RemoteServer")?;
    let skip = p.switch("SkipVerification")?;
    p.ignore(&["TestMailbox", "Partition", "AppSecretKeyVaultUrl"]);
    let t = &w.tenants[idx];
    let i = find_endpoint(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let mut e = t.endpoints[i].clone();
    if let Some(a) = app_id {
        e.application_id = Some(a);
    }
    if let Some((u, _)) = &creds {
        e.username = Some(u.clone());
    }
    if let Some(m) = max {
        e.max_concurrent_migrations = unlimited_to_u32(m);
        check_budget(ctx, t, &e, Some(e.guid))?;
    }
    if let Some(m) = max_inc {
        e.max_concurrent_incremental_syncs = unlimited_to_u32(m);
    }
    if let Some(r) = remote_server {
        e.remote_server = r;
    }
    let guid = e.guid.to_string();
    let secret = match &creds {
        Some((_, s)) => Some(s.clone()),
        None => t
            .endpoint_secrets
            .iter()
            .find(|(g, _)| *g == guid)
            .and_then(|(_, s)| s.clone()),
    };
    if !skip && creds.is_some() {
        connectivity(w, t, &e, secret.as_deref())?;
    }
    let t = &mut w.tenants[idx];
    t.endpoints[i] = e;
    if let Some((_, s)) = creds {
        t.endpoint_secrets.retain(|(g, _)| *g != guid);
        t.endpoint_secrets.push((guid, Some(s)));
    }
    Ok(CmdletOutput::none())
}

pub fn remove_migration_endpoint(
    _ctx: &Ctx<'_>,
    w: &mut World,
    idx: usize,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Identity")?;
    let t = &mut w.tenants[idx];
    let i = find_endpoint(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let guid = t.endpoints[i].guid.to_string();
    t.endpoints.remove(i);
    t.endpoint_secrets.retain(|(g, _)| *g != guid);
    Ok(CmdletOutput::none())
}

pub fn test_migration_server_availability(
    _ctx: &Ctx<'_>,
    w: &World,
    t: &Tenant,
    p: &mut Params,
) -> CmdletResult {
    let id = p.req_str("Endpoint")?;
    let test_mailbox = p.str("TestMailbox")?;
    p.ignore(&["ExchangeRemoteMove"]);
    let i = find_endpoint(t, &id).ok_or_else(|| CmdletError::not_found(&id))?;
    let e = &t.endpoints[i];
    let guid = e.guid.to_string();
    let secret = t
        .endpoint_secrets
        .iter()
        .find(|(g, _)| *g == guid)
        .and_then(|(_, s)| s.clone());
    let failed = |exception: &str, message: &str| {
        CmdletOutput::one(json!({
            "Identity": e.name,
            "Result": "Failed",
            "Message": message,
            "ConnectionSettings": Value::Null,
            "SupportsCutover": false,
            "ErrorDetail": format!("{exception}: {message}"),
            "IsValid": true,
        }))
    };
    if let Err(v) = rules::endpoint_connectivity(
        w,
        t,
        &e.remote_server,
        e.remote_tenant.as_deref(),
        e.application_id.as_deref(),
        secret.as_deref(),
    ) {
        return Ok(failed(v.exception, &v.message));
    }
    if let Some(v) = rules::org_checks(w, t, e).into_iter().next() {
        return Ok(failed(v.exception, &v.message));
    }
    if let Some(mbx) = test_mailbox {
        // The 2024 article: TestMailbox = the target MailUser's primary SMTP address.
        let Some(ri) = t
            .find_recipient(&mbx)
            .filter(|i| !t.recipients[*i].is_mailbox())
        else {
            return Ok(failed(
                "Microsoft.Exchange.Migration.MigrationRecipientNotFoundException",
                &format!("The mail user '{mbx}' couldn't be found in the target organization."),
            ));
        };
        let target = &t.recipients[ri];
        if let Some(v) = crate::sim::rules::user_checks_for_test(w, t, e, target)
            .into_iter()
            .next()
        {
            return Ok(failed(v.exception, &v.message));
        }
    }
    Ok(CmdletOutput::one(json!({
        "Identity": e.name,
        "Result": "Success",
        "Message": "",
        "ConnectionSettings": {"RemoteServer": e.remote_server, "RemoteTenant": e.remote_tenant},
        "SupportsCutover": false,
        "ErrorDetail": "",
        "IsValid": true,
    })))
}
