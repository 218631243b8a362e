//! TenantPair plan: from what was observed in both tenants, the next tenant actions and the
//! conditions to report. Pure: no client is in scope, so every branch is unit-tested.
//!
//! A pair has one or two *directions*. Each direction has a destination tenant (where the
//! migration app lives and the endpoint and batches run) and an origin tenant (which consents to
//! the app and publishes a scope group). Forward = source → target; Reverse (bidirectional pairs) =
//! target → source. Each tenant's organization relationship merges the capabilities of both roles.

use crate::api::conditions::{Desired, reasons, types};
use crate::api::{Direction, MigrationAppMode, SourceAdminSteps, TenantPairSpec};
use crate::tenant::exchange::RelationshipSettings;
use crate::tenant::exchange::types::{DistributionGroup, OrganizationRelationship};

/// The two tenants of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Source => Side::Target,
            Side::Target => Side::Source,
        }
    }
}

/// A direction of moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Way {
    Forward,
    Reverse,
}

impl Way {
    pub fn destination(self) -> Side {
        match self {
            Way::Forward => Side::Target,
            Way::Reverse => Side::Source,
        }
    }

    pub fn origin(self) -> Side {
        self.destination().other()
    }
}

/// What was observed in one tenant (only when its credentials are given).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantObs {
    pub initial_domain: String,
    pub dehydrated: bool,
    /// The relationship whose DomainNames holds the partner tenant id.
    pub relationship: Option<OrganizationRelationship>,
    /// The scope group this tenant publishes (when it is an origin).
    pub scope_group: Option<DistributionGroup>,
    /// Cross Tenant User Data Migration seats: (purchased, consumed).
    pub seats: (i64, i64),
}

/// The migration app of one direction, as observed in its destination tenant and in the origin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppObs {
    /// Application (client) id, once known.
    pub app_id: Option<String>,
    /// Whether the operator created it.
    pub created: bool,
    /// A create was sent and its outcome is not recorded yet.
    pub create_pending: bool,
    /// The app's client secret is available (operator-owned Secret or the adopted Secret).
    pub secret_ready: bool,
    /// The stored secret expires within the rotation window.
    pub secret_due_for_rotation: bool,
    /// When the secret in use expires (created: recorded at creation; adopted: the app's
    /// credential whose hint matches the Secret), if known.
    pub secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Key ids of earlier client secrets the operator added (left by a rotation or a lost Secret).
    pub old_secrets: Vec<String>,
    /// Endpoints of this direction whose Exchange credential is not the stored secret yet; old
    /// secrets stay until there are none (removing one still in use would break moves).
    pub endpoints_on_old_secret: Vec<String>,
    /// Service principal + Mailbox.Migration grant present, per tenant.
    pub consented_destination: bool,
    pub consented_origin: bool,
}

/// Everything observed for a pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub target: Option<TenantObs>,
    /// `None` without source credentials (split administration).
    pub source: Option<TenantObs>,
    pub forward: AppObs,
    pub reverse: Option<AppObs>,
    /// A MigrationEndpoint of this pair passed Test-MigrationServerAvailability (proves the
    /// source side when the operator cannot read it).
    pub endpoint_available: bool,
}

/// One tenant write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    EnableCustomization(Side),
    CreateApp(Way),
    CreateAppSecret(Way),
    RotateAppSecret(Way),
    /// Removes the operator's earlier client secrets (key ids) once no endpoint uses them.
    RemoveOldSecrets(Way, Vec<String>),
    /// Service principal of the app plus its Mailbox.Migration grant, in one tenant.
    GrantConsent(Way, Side),
    CreateScopeGroup(Side, String),
    CreateRelationship(Side, String, RelationshipSettings),
    UpdateRelationship(Side, String, RelationshipSettings),
}

impl Action {
    /// Short description for events.
    pub fn describe(&self) -> String {
        match self {
            Action::EnableCustomization(s) => format!(
                "enable organization customization in the {} tenant",
                s.name()
            ),
            Action::CreateApp(w) => format!("create the {} migration app", way_name(*w)),
            Action::CreateAppSecret(w) => format!(
                "create a client secret for the {} migration app",
                way_name(*w)
            ),
            Action::RotateAppSecret(w) => format!(
                "rotate the client secret of the {} migration app",
                way_name(*w)
            ),
            Action::RemoveOldSecrets(w, keys) => format!(
                "remove {} old client secret(s) of the {} migration app (keyId {}): every endpoint uses the new one",
                keys.len(),
                way_name(*w),
                keys.join(", ")
            ),
            Action::GrantConsent(w, s) => format!(
                "grant consent to the {} migration app in the {} tenant",
                way_name(*w),
                s.name()
            ),
            Action::CreateScopeGroup(s, n) => {
                format!("create scope group {n} in the {} tenant", s.name())
            }
            Action::CreateRelationship(s, n, r) => format!(
                "create organization relationship {n} in the {} tenant ({})",
                s.name(),
                r.capability.join(", ")
            ),
            Action::UpdateRelationship(s, n, r) => format!(
                "update organization relationship {n} in the {} tenant ({})",
                s.name(),
                r.capability.join(", ")
            ),
        }
    }
}

fn way_name(w: Way) -> &'static str {
    match w {
        Way::Forward => "forward",
        Way::Reverse => "reverse",
    }
}

/// The plan of one pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub conditions: Vec<Desired>,
    /// Split administration: what the source admin must do.
    pub source_steps: Option<SourceAdminSteps>,
    pub ready: bool,
}

/// Names of the objects the operator creates when none exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub source_relationship: String,
    pub target_relationship: String,
    /// Admin-consent URL of the forward app in the source tenant.
    pub consent_url: Option<String>,
}

fn scope_group_name(spec: &TenantPairSpec, origin: Side) -> String {
    match (origin, &spec.reverse) {
        (Side::Target, Some(r)) => r.scope_group.name.clone(),
        _ => spec.scope_group.name.clone(),
    }
}

fn app_id(o: &Observed, way: Way) -> Option<String> {
    match way {
        Way::Forward => o.forward.app_id.clone(),
        Way::Reverse => o.reverse.as_ref().and_then(|r| r.app_id.clone()),
    }
}

/// The relationship a tenant needs: Inbound where it is a destination; RemoteOutbound with the
/// app and scope where it is an origin.
pub fn desired_relationship(
    spec: &TenantPairSpec,
    o: &Observed,
    side: Side,
) -> RelationshipSettings {
    let ways: &[Way] = if spec.direction == Direction::Bidirectional {
        &[Way::Forward, Way::Reverse]
    } else {
        &[Way::Forward]
    };
    let mut s = RelationshipSettings::default();
    for &w in ways {
        if w.destination() == side {
            s.capability.push("Inbound".into());
        } else {
            s.capability.push("RemoteOutbound".into());
            s.oauth_application_id = app_id(o, w);
            s.published_scopes = vec![scope_group_name(spec, side)];
        }
    }
    s.capability.sort();
    s
}

/// Whether an existing relationship already allows what `want` asks.
pub fn relationship_matches(have: &OrganizationRelationship, want: &RelationshipSettings) -> bool {
    let mut caps: Vec<String> = have.mailbox_move_capability.clone();
    caps.sort();
    let scopes_ok = want.published_scopes.iter().all(|w| {
        have.mailbox_move_published_scopes.iter().any(|h| {
            h.eq_ignore_ascii_case(w)
                || h.to_ascii_lowercase()
                    .contains(&format!("cn={}", w.to_ascii_lowercase()))
        })
    });
    let app_ok = match &want.oauth_application_id {
        Some(a) => have
            .oauth_application_id
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(a)),
        None => true,
    };
    have.enabled && have.mailbox_move_enabled && caps == want.capability && scopes_ok && app_ok
}

/// What differs between an existing relationship and the wanted settings, one entry per
/// parameter, in the words of Set-OrganizationRelationship (for events).
pub fn relationship_changes(
    have: &OrganizationRelationship,
    want: &RelationshipSettings,
) -> Vec<String> {
    let mut out = Vec::new();
    if !have.enabled {
        out.push("Enabled False -> True".to_string());
    }
    if !have.mailbox_move_enabled {
        out.push("MailboxMoveEnabled False -> True".to_string());
    }
    let mut caps = have.mailbox_move_capability.clone();
    caps.sort();
    if caps != want.capability {
        let from = if caps.is_empty() {
            "None".to_string()
        } else {
            caps.join(", ")
        };
        out.push(format!(
            "MailboxMoveCapability {from} -> {}",
            want.capability.join(", ")
        ));
    }
    if let Some(a) = &want.oauth_application_id
        && !have
            .oauth_application_id
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(a))
    {
        out.push(format!(
            "OAuthApplicationId {} -> {a}",
            have.oauth_application_id.as_deref().unwrap_or("(none)")
        ));
    }
    let probe = OrganizationRelationship {
        enabled: true,
        mailbox_move_enabled: true,
        mailbox_move_capability: want.capability.clone(),
        oauth_application_id: want.oauth_application_id.clone(),
        mailbox_move_published_scopes: have.mailbox_move_published_scopes.clone(),
        ..Default::default()
    };
    if !relationship_matches(&probe, want) {
        out.push(format!(
            "MailboxMovePublishedScopes {} -> {}",
            if have.mailbox_move_published_scopes.is_empty() {
                "(none)".to_string()
            } else {
                have.mailbox_move_published_scopes.join(", ")
            },
            want.published_scopes.join(", ")
        ));
    }
    out
}

/// Computes the plan. `names` carries deterministic names; `consent_url` is shown for split administration.
pub fn plan(spec: &TenantPairSpec, o: &Observed, names: &Names) -> Plan {
    let mut p = Plan::default();
    let bidirectional = spec.direction == Direction::Bidirectional;
    let mut waiting: Vec<String> = Vec::new();

    let Some(target) = &o.target else {
        p.conditions.push(Desired::new(
            types::READY,
            false,
            reasons::PROGRESSING,
            "reading the target tenant",
        ));
        return p;
    };

    // Organization customization comes first: relationship cmdlets fail on a dehydrated tenant.
    if target.dehydrated {
        p.actions.push(Action::EnableCustomization(Side::Target));
    }
    if let Some(src) = &o.source
        && src.dehydrated
    {
        p.actions.push(Action::EnableCustomization(Side::Source));
    }

    // Migration apps, their secrets and consent, per direction.
    let mut app_ready = true;
    let ways: Vec<(Way, &AppObs, MigrationAppMode)> =
        std::iter::once((Way::Forward, &o.forward, spec.migration_app.mode))
            .chain(o.reverse.as_ref().filter(|_| bidirectional).map(|r| {
                (
                    Way::Reverse,
                    r,
                    spec.reverse
                        .as_ref()
                        .map(|r| r.migration_app.mode)
                        .unwrap_or_default(),
                )
            }))
            .collect();
    let mut expiring = Vec::new();
    for (way, app, mode) in &ways {
        let (way, mode) = (*way, *mode);
        if mode == MigrationAppMode::Adopt && app.secret_ready && app.secret_due_for_rotation {
            let secret = match way {
                Way::Forward => spec.migration_app.client_secret.as_ref(),
                Way::Reverse => spec
                    .reverse
                    .as_ref()
                    .and_then(|r| r.migration_app.client_secret.as_ref()),
            };
            expiring.push(format!(
                "the client secret of the adopted {} migration app{} expires {}: add a new client secret to the app registration and put it in that Secret (the operator picks it up at once)",
                way_name(way),
                secret
                    .map(|s| format!(" (Secret {} key {})", s.name, s.key))
                    .unwrap_or_default(),
                app.secret_expires_at
                    .map(|e| e.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "soon".into())
            ));
        }
        let dest_known = match way.destination() {
            Side::Target => true,
            Side::Source => o.source.is_some(),
        };
        if app.app_id.is_none() {
            app_ready = false;
            if mode == MigrationAppMode::Create && dest_known {
                if app.create_pending {
                    waiting.push(format!(
                        "the {} migration app was created; waiting for the directory to show it",
                        way_name(way)
                    ));
                } else {
                    p.actions.push(Action::CreateApp(way));
                }
            }
            continue;
        }
        if !app.secret_ready {
            app_ready = false;
            if mode == MigrationAppMode::Create && dest_known {
                p.actions.push(Action::CreateAppSecret(way));
            }
        } else if app.secret_due_for_rotation && mode == MigrationAppMode::Create {
            p.actions.push(Action::RotateAppSecret(way));
        } else if mode == MigrationAppMode::Create
            && !app.old_secrets.is_empty()
            && app.endpoints_on_old_secret.is_empty()
        {
            p.actions
                .push(Action::RemoveOldSecrets(way, app.old_secrets.clone()));
        }
        for side in [way.destination(), way.origin()] {
            let consented = if side == way.destination() {
                app.consented_destination
            } else {
                app.consented_origin
            };
            let can_write = match side {
                Side::Target => true,
                Side::Source => o.source.is_some(),
            };
            if !consented {
                if can_write {
                    p.actions.push(Action::GrantConsent(way, side));
                    app_ready = false;
                } else if !o.endpoint_available {
                    // Split administration: the source admin consents through the URL.
                    app_ready = false;
                }
            }
        }
    }

    // Scope groups: each origin tenant publishes one.
    let mut scope_ready = true;
    for (way, _, _) in &ways {
        let origin = way.origin();
        let obs = match origin {
            Side::Source => o.source.as_ref(),
            Side::Target => Some(target),
        };
        let create = match origin {
            Side::Source => spec.scope_group.create,
            Side::Target => spec.reverse.as_ref().is_none_or(|r| r.scope_group.create),
        };
        match obs {
            Some(t) if t.scope_group.is_none() => {
                scope_ready = false;
                if create {
                    p.actions.push(Action::CreateScopeGroup(
                        origin,
                        scope_group_name(spec, origin),
                    ));
                }
            }
            Some(_) => {}
            None => scope_ready = o.endpoint_available,
        }
    }

    // Organization relationships, once the apps they name are known.
    let mut rel_ready = true;
    for (side, obs, name) in [
        (Side::Target, Some(target), &names.target_relationship),
        (Side::Source, o.source.as_ref(), &names.source_relationship),
    ] {
        let Some(t) = obs else {
            rel_ready &= o.endpoint_available;
            continue;
        };
        let want = desired_relationship(spec, o, side);
        if want.capability.iter().any(|c| c == "RemoteOutbound")
            && want.oauth_application_id.is_none()
        {
            rel_ready = false;
            continue; // the app id is not known yet
        }
        match &t.relationship {
            None => {
                rel_ready = false;
                if !t.dehydrated {
                    p.actions
                        .push(Action::CreateRelationship(side, name.clone(), want));
                }
            }
            Some(have) if !relationship_matches(have, &want) => {
                rel_ready = false;
                if !t.dehydrated {
                    p.actions.push(Action::UpdateRelationship(
                        side,
                        have.identity.clone(),
                        want,
                    ));
                }
            }
            Some(_) => {}
        }
    }

    // Split administration: publish the source-side steps until the endpoint proves them done.
    if o.source.is_none() {
        let app = o
            .forward
            .app_id
            .clone()
            .unwrap_or_else(|| "<migration app id>".into());
        let scope = spec.scope_group.name.clone();
        p.source_steps = Some(SourceAdminSteps {
            consent_url: names.consent_url.clone().unwrap_or_default(),
            scope_group: scope.clone(),
            commands: vec![
                "Connect-ExchangeOnline (as an administrator of the source tenant)".into(),
                "if ((Get-OrganizationConfig).IsDehydrated) { Enable-OrganizationCustomization }"
                    .into(),
                format!(
                    "New-DistributionGroup -Type Security -Name '{scope}'   # then add the users to move"
                ),
                format!(
                    "New-OrganizationRelationship '{}' -Enabled:$true -MailboxMoveEnabled:$true -MailboxMoveCapability RemoteOutbound -DomainNames {} -OAuthApplicationId {app} -MailboxMovePublishedScopes '{scope}'   # or Set-OrganizationRelationship on the existing one whose DomainNames holds the target tenant id",
                    names.source_relationship, spec.target.tenant_id
                ),
            ],
        });
    }

    let seats_total = target.seats.0 + o.source.as_ref().map(|s| s.seats.0).unwrap_or(0);
    let seats_used = target.seats.1 + o.source.as_ref().map(|s| s.seats.1).unwrap_or(0);

    p.conditions.push(Desired::new(
        types::CREDENTIALS_VALID,
        true,
        reasons::SUCCEEDED,
        if o.source.is_some() {
            "credentials for both tenants work"
        } else {
            "target credentials work; no source credentials (split administration)"
        },
    ));
    p.conditions.push(Desired::new(
        types::MIGRATION_APP_READY,
        app_ready,
        if app_ready && !expiring.is_empty() {
            reasons::SECRET_EXPIRING
        } else if app_ready {
            reasons::SUCCEEDED
        } else if o.source.is_none() && !o.forward.consented_origin {
            reasons::AWAITING_SOURCE_ADMIN
        } else {
            reasons::PROGRESSING
        },
        if app_ready && !expiring.is_empty() {
            format!(
                "the migration app exists and is consented in both tenants; {}",
                expiring.join("; ")
            )
        } else if app_ready {
            "the migration app exists and is consented in both tenants".to_string()
        } else {
            "preparing the migration app and its consent".to_string()
        },
    ));
    p.conditions.push(Desired::new(
        types::SCOPE_GROUP_READY,
        scope_ready,
        if scope_ready {
            reasons::SUCCEEDED
        } else if o.source.is_none() {
            reasons::AWAITING_SOURCE_ADMIN
        } else {
            reasons::PROGRESSING
        },
        if scope_ready {
            "the scope group exists".to_string()
        } else {
            format!("scope group {} is not there yet", spec.scope_group.name)
        },
    ));
    p.conditions.push(Desired::new(
        types::ORGANIZATION_RELATIONSHIP_READY,
        rel_ready,
        if rel_ready {
            reasons::SUCCEEDED
        } else if o.source.is_none() {
            reasons::AWAITING_SOURCE_ADMIN
        } else {
            reasons::PROGRESSING
        },
        if rel_ready {
            "organization relationships allow the moves".to_string()
        } else {
            "configuring organization relationships".to_string()
        },
    ));

    let done = p.actions.is_empty() && waiting.is_empty() && app_ready && scope_ready && rel_ready;
    p.ready = done;
    if done {
        let msg = format!(
            "ready: {} seat(s) of Cross Tenant User Data Migration left",
            (seats_total - seats_used).max(0)
        );
        p.conditions
            .push(Desired::new(types::READY, true, reasons::SUCCEEDED, msg));
        p.conditions.push(Desired::new(
            types::RECONCILING,
            false,
            reasons::SUCCEEDED,
            "",
        ));
    } else if p.actions.is_empty() && waiting.is_empty() && o.source.is_none() {
        p.conditions.push(Desired::new(
            types::READY,
            false,
            reasons::AWAITING_SOURCE_ADMIN,
            "waiting for the source administrator: see status.sourceAdminSteps",
        ));
        p.conditions.push(Desired::new(
            types::RECONCILING,
            false,
            reasons::SUCCEEDED,
            "",
        ));
    } else {
        let what = p
            .actions
            .first()
            .map(Action::describe)
            .or_else(|| waiting.first().cloned())
            .unwrap_or_else(|| "waiting for the tenants".into());
        let reason = if p.actions.is_empty() {
            reasons::WAITING_FOR_TENANT
        } else {
            reasons::PROGRESSING
        };
        p.conditions
            .push(Desired::new(types::READY, false, reason, what.clone()));
        p.conditions
            .push(Desired::new(types::RECONCILING, true, reason, what));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CredentialsSpec, ReverseSpec, SecretKeyReference, TenantSpec};

    const SRC: &str = "11111111-1111-1111-1111-111111111111";
    const TGT: &str = "22222222-2222-2222-2222-222222222222";
    const APP: &str = "33333333-3333-3333-3333-333333333333";
    const REV: &str = "44444444-4444-4444-4444-444444444444";

    fn creds() -> Option<CredentialsSpec> {
        Some(CredentialsSpec {
            client_id: APP.into(),
            client_secret: Some(SecretKeyReference {
                name: "s".into(),
                key: "k".into(),
            }),
            certificate: None,
            workload_identity: None,
        })
    }

    fn spec() -> TenantPairSpec {
        TenantPairSpec {
            source: TenantSpec {
                tenant_id: SRC.into(),
                initial_domain: "contoso.onmicrosoft.com".into(),
                credentials: creds(),
            },
            target: TenantSpec {
                tenant_id: TGT.into(),
                initial_domain: "fabrikam.onmicrosoft.com".into(),
                credentials: creds(),
            },
            migration_app: Default::default(),
            scope_group: Default::default(),
            organization_relationship: None,
            direction: Direction::OneWay,
            reverse: None,
            cloud: Default::default(),
            deletion_policy: Default::default(),
            suspend: false,
        }
    }

    fn names() -> Names {
        Names {
            source_relationship: "t2t-fabrikam".into(),
            target_relationship: "t2t-contoso".into(),
            consent_url: Some("https://login/consent".into()),
        }
    }

    fn fresh() -> Observed {
        Observed {
            target: Some(TenantObs {
                dehydrated: true,
                seats: (10, 0),
                ..Default::default()
            }),
            source: Some(TenantObs {
                dehydrated: true,
                seats: (5, 1),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rel(
        id: &str,
        caps: &[&str],
        app: Option<&str>,
        scopes: &[&str],
    ) -> OrganizationRelationship {
        OrganizationRelationship {
            identity: id.into(),
            enabled: true,
            mailbox_move_enabled: true,
            mailbox_move_capability: caps.iter().map(|s| s.to_string()).collect(),
            oauth_application_id: app.map(str::to_string),
            mailbox_move_published_scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn group() -> Option<DistributionGroup> {
        Some(DistributionGroup {
            identity: "T2T-Migration-Scope".into(),
            ..Default::default()
        })
    }

    /// A fully prepared one-way pair.
    fn ready() -> Observed {
        Observed {
            target: Some(TenantObs {
                relationship: Some(rel("t2t-contoso", &["Inbound"], None, &[])),
                seats: (10, 2),
                ..Default::default()
            }),
            source: Some(TenantObs {
                relationship: Some(rel(
                    "t2t-fabrikam",
                    &["RemoteOutbound"],
                    Some(APP),
                    &["T2T-Migration-Scope"],
                )),
                scope_group: group(),
                ..Default::default()
            }),
            forward: AppObs {
                app_id: Some(APP.into()),
                created: true,
                secret_ready: true,
                consented_destination: true,
                consented_origin: true,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn ready_cond(p: &Plan) -> &Desired {
        p.conditions
            .iter()
            .find(|c| c.type_ == types::READY)
            .expect("Ready")
    }

    #[test]
    fn fresh_tenants_start_with_customization_and_the_app() {
        let p = plan(&spec(), &fresh(), &names());
        assert_eq!(
            p.actions,
            vec![
                Action::EnableCustomization(Side::Target),
                Action::EnableCustomization(Side::Source),
                Action::CreateApp(Way::Forward),
                Action::CreateScopeGroup(Side::Source, "T2T-Migration-Scope".into())
            ]
        );
        assert!(!p.ready);
        assert_eq!(ready_cond(&p).reason, reasons::PROGRESSING);
    }

    #[test]
    fn after_the_app_exists_its_secret_and_consent_follow() {
        let mut o = fresh();
        o.target.as_mut().expect("t").dehydrated = false;
        o.source.as_mut().expect("s").dehydrated = false;
        o.forward.app_id = Some(APP.into());
        let p = plan(&spec(), &o, &names());
        assert_eq!(
            p.actions,
            vec![
                Action::CreateAppSecret(Way::Forward),
                Action::GrantConsent(Way::Forward, Side::Target),
                Action::GrantConsent(Way::Forward, Side::Source),
                Action::CreateScopeGroup(Side::Source, "T2T-Migration-Scope".into()),
                Action::CreateRelationship(
                    Side::Target,
                    "t2t-contoso".into(),
                    RelationshipSettings {
                        capability: vec!["Inbound".into()],
                        oauth_application_id: None,
                        published_scopes: vec![]
                    }
                ),
                Action::CreateRelationship(
                    Side::Source,
                    "t2t-fabrikam".into(),
                    RelationshipSettings {
                        capability: vec!["RemoteOutbound".into()],
                        oauth_application_id: Some(APP.into()),
                        published_scopes: vec!["T2T-Migration-Scope".into()]
                    }
                ),
            ]
        );
    }

    #[test]
    fn relationships_wait_while_the_tenant_is_dehydrated() {
        let mut o = fresh();
        o.forward.app_id = Some(APP.into());
        let p = plan(&spec(), &o, &names());
        assert!(
            !p.actions
                .iter()
                .any(|a| matches!(a, Action::CreateRelationship(..)))
        );
    }

    #[test]
    fn a_prepared_pair_is_ready_with_no_writes() {
        let p = plan(&spec(), &ready(), &names());
        assert_eq!(p.actions, vec![]);
        assert!(p.ready);
        assert_eq!(ready_cond(&p).status, crate::api::ConditionStatus::True);
        assert!(ready_cond(&p).message.contains("8 seat(s)"));
        assert!(p.source_steps.is_none());
    }

    #[test]
    fn an_existing_relationship_is_updated_never_duplicated() {
        let mut o = ready();
        o.target.as_mut().expect("t").relationship =
            Some(rel("Contoso partnership", &["Outbound"], None, &[]));
        let p = plan(&spec(), &o, &names());
        assert_eq!(
            p.actions,
            vec![Action::UpdateRelationship(
                Side::Target,
                "Contoso partnership".into(),
                RelationshipSettings {
                    capability: vec!["Inbound".into()],
                    ..Default::default()
                }
            )]
        );
    }

    #[test]
    fn drift_is_repaired() {
        for broken in [
            rel(
                "t2t-fabrikam",
                &["RemoteOutbound"],
                Some("99999999-9999-9999-9999-999999999999"),
                &["T2T-Migration-Scope"],
            ),
            rel("t2t-fabrikam", &["RemoteOutbound"], Some(APP), &[]),
            rel("t2t-fabrikam", &[], Some(APP), &["T2T-Migration-Scope"]),
            OrganizationRelationship {
                mailbox_move_enabled: false,
                ..rel(
                    "t2t-fabrikam",
                    &["RemoteOutbound"],
                    Some(APP),
                    &["T2T-Migration-Scope"],
                )
            },
        ] {
            let mut o = ready();
            o.source.as_mut().expect("s").relationship = Some(broken);
            let p = plan(&spec(), &o, &names());
            assert!(
                matches!(p.actions.as_slice(), [Action::UpdateRelationship(Side::Source, id, _)] if id == "t2t-fabrikam"),
                "{:?}",
                p.actions
            );
        }
        let mut o = ready();
        o.source.as_mut().expect("s").scope_group = None;
        assert_eq!(
            plan(&spec(), &o, &names()).actions,
            vec![Action::CreateScopeGroup(
                Side::Source,
                "T2T-Migration-Scope".into()
            )]
        );
        let mut o = ready();
        o.forward.consented_origin = false;
        assert_eq!(
            plan(&spec(), &o, &names()).actions,
            vec![Action::GrantConsent(Way::Forward, Side::Source)]
        );
    }

    #[test]
    fn scope_given_as_a_dn_matches() {
        let mut o = ready();
        o.source.as_mut().expect("s").relationship = Some(rel(
            "r",
            &["RemoteOutbound"],
            Some(APP),
            &["CN=T2T-Migration-Scope,OU=contoso.onmicrosoft.com,DC=EURPR01"],
        ));
        assert!(plan(&spec(), &o, &names()).ready);
    }

    #[test]
    fn split_administration_publishes_steps_and_waits() {
        let mut s = spec();
        s.source.credentials = None;
        let mut o = ready();
        o.source = None;
        o.forward.consented_origin = false;
        let p = plan(&s, &o, &names());
        assert_eq!(p.actions, vec![]);
        assert!(!p.ready);
        assert_eq!(ready_cond(&p).reason, reasons::AWAITING_SOURCE_ADMIN);
        let steps = p.source_steps.as_ref().expect("steps");
        assert_eq!(steps.consent_url, "https://login/consent");
        assert!(steps.commands.iter().any(|c| {
            c.contains("-OAuthApplicationId 33333333-3333-3333-3333-333333333333")
                && c.contains("RemoteOutbound")
        }));
        // The endpoint's availability test proves the source side.
        o.endpoint_available = true;
        let p = plan(&s, &o, &names());
        assert!(p.ready, "{:?}", p.conditions);
        assert!(
            p.source_steps.is_some(),
            "the steps stay visible for reference"
        );
    }

    #[test]
    fn adopted_app_is_never_created_or_rotated() {
        let mut s = spec();
        s.migration_app.mode = MigrationAppMode::Adopt;
        let mut o = ready();
        o.forward.app_id = None;
        assert!(
            !plan(&s, &o, &names())
                .actions
                .iter()
                .any(|a| matches!(a, Action::CreateApp(_)))
        );
        let mut o = ready();
        o.forward.secret_due_for_rotation = true;
        assert_eq!(plan(&s, &o, &names()).actions, vec![]);
    }

    #[test]
    fn created_secrets_rotate_before_expiry() {
        let mut o = ready();
        o.forward.secret_due_for_rotation = true;
        assert_eq!(
            plan(&spec(), &o, &names()).actions,
            vec![Action::RotateAppSecret(Way::Forward)]
        );
    }

    #[test]
    fn an_expiring_adopted_secret_is_reported_not_rotated() {
        let mut s = spec();
        s.migration_app.mode = MigrationAppMode::Adopt;
        s.migration_app.client_secret = Some(crate::api::SecretKeyReference {
            name: "app".into(),
            key: "secret".into(),
        });
        let mut o = ready();
        let cond = |p: &Plan| {
            p.conditions
                .iter()
                .find(|c| c.type_ == types::MIGRATION_APP_READY)
                .cloned()
                .expect("MigrationAppReady")
        };
        assert_eq!(cond(&plan(&s, &o, &names())).reason, reasons::SUCCEEDED);
        o.forward.secret_due_for_rotation = true;
        o.forward.secret_expires_at = "2026-12-05T00:00:00Z".parse().ok();
        let p = plan(&s, &o, &names());
        assert_eq!(
            p.actions,
            vec![],
            "only the admin can replace an adopted secret"
        );
        assert!(p.ready, "it still works until it expires");
        let c = cond(&p);
        assert!(
            c.status == crate::api::ConditionStatus::True && c.reason == reasons::SECRET_EXPIRING,
            "{c:?}"
        );
        assert!(
            c.message
                .contains("(Secret app key secret) expires 2026-12-05 00:00 UTC"),
            "{}",
            c.message
        );
        // A created app is rotated instead.
        assert_eq!(
            cond(&plan(&spec(), &o, &names())).reason,
            reasons::SUCCEEDED
        );
    }

    #[test]
    fn old_secrets_are_removed_only_once_every_endpoint_uses_the_new_one() {
        let mut o = ready();
        o.forward.old_secrets = vec!["k1".into()];
        o.forward.endpoints_on_old_secret = vec!["contoso".into()];
        let p = plan(&spec(), &o, &names());
        assert_eq!(p.actions, vec![], "an endpoint still authenticates with k1");
        assert!(
            p.ready,
            "a lingering old secret does not make the pair unready"
        );
        o.forward.endpoints_on_old_secret.clear();
        assert_eq!(
            plan(&spec(), &o, &names()).actions,
            vec![Action::RemoveOldSecrets(Way::Forward, vec!["k1".into()])]
        );
        // Not while the stored secret itself is missing or being rotated.
        let mut due = o.clone();
        due.forward.secret_due_for_rotation = true;
        assert_eq!(
            plan(&spec(), &due, &names()).actions,
            vec![Action::RotateAppSecret(Way::Forward)]
        );
        let mut missing = o.clone();
        missing.forward.secret_ready = false;
        assert_eq!(
            plan(&spec(), &missing, &names()).actions,
            vec![Action::CreateAppSecret(Way::Forward)]
        );
        // Never for an adopted app (its secrets are the admin's).
        let mut s = spec();
        s.migration_app.mode = MigrationAppMode::Adopt;
        assert_eq!(plan(&s, &o, &names()).actions, vec![]);
    }

    #[test]
    fn a_pending_create_waits_instead_of_creating_again() {
        let mut o = fresh();
        o.target.as_mut().expect("t").dehydrated = false;
        o.source.as_mut().expect("s").dehydrated = false;
        o.forward.create_pending = true;
        let p = plan(&spec(), &o, &names());
        assert!(!p.actions.contains(&Action::CreateApp(Way::Forward)));
    }

    #[test]
    fn bidirectional_pairs_configure_both_roles_on_both_sides() {
        let mut s = spec();
        s.direction = Direction::Bidirectional;
        s.reverse = Some(ReverseSpec {
            migration_app: Default::default(),
            scope_group: crate::api::ScopeGroupSpec {
                name: "Move-Back".into(),
                create: true,
            },
        });
        let mut o = ready();
        o.reverse = Some(AppObs {
            app_id: Some(REV.into()),
            created: true,
            secret_ready: true,
            consented_destination: true,
            consented_origin: true,
            ..Default::default()
        });
        let target_rel = desired_relationship(&s, &o, Side::Target);
        assert_eq!(target_rel.capability, vec!["Inbound", "RemoteOutbound"]);
        assert_eq!(target_rel.oauth_application_id.as_deref(), Some(REV));
        assert_eq!(target_rel.published_scopes, vec!["Move-Back"]);
        let source_rel = desired_relationship(&s, &o, Side::Source);
        assert_eq!(source_rel.capability, vec!["Inbound", "RemoteOutbound"]);
        assert_eq!(source_rel.oauth_application_id.as_deref(), Some(APP));
        let p = plan(&s, &o, &names());
        assert!(
            p.actions
                .contains(&Action::CreateScopeGroup(Side::Target, "Move-Back".into()))
        );
        assert!(p.actions.iter().any(|a| matches!(a, Action::UpdateRelationship(Side::Target, _, r) if r.capability.len() == 2)));
        assert!(p.actions.iter().any(|a| matches!(a, Action::UpdateRelationship(Side::Source, _, r) if r.capability.len() == 2)));
        // The reverse app is created in the source tenant when missing.
        o.reverse = Some(AppObs::default());
        assert!(
            plan(&s, &o, &names())
                .actions
                .contains(&Action::CreateApp(Way::Reverse))
        );
    }

    #[test]
    fn relationship_changes_name_every_difference() {
        let want = RelationshipSettings {
            capability: vec!["RemoteOutbound".into()],
            oauth_application_id: Some(APP.into()),
            published_scopes: vec!["T2T-Migration-Scope".into()],
        };
        let good = rel(
            "r",
            &["RemoteOutbound"],
            Some(APP),
            &["T2T-Migration-Scope"],
        );
        assert!(relationship_changes(&good, &want).is_empty());
        assert!(relationship_matches(&good, &want));
        let bad = OrganizationRelationship {
            enabled: false,
            mailbox_move_enabled: false,
            ..rel("r", &["Inbound"], None, &[])
        };
        let changes = relationship_changes(&bad, &want);
        assert_eq!(
            changes,
            vec![
                "Enabled False -> True".to_string(),
                "MailboxMoveEnabled False -> True".to_string(),
                "MailboxMoveCapability Inbound -> RemoteOutbound".to_string(),
                format!("OAuthApplicationId (none) -> {APP}"),
                "MailboxMovePublishedScopes (none) -> T2T-Migration-Scope".to_string(),
            ]
        );
        let none = rel("r", &[], Some(APP), &["T2T-Migration-Scope"]);
        assert_eq!(
            relationship_changes(&none, &want),
            vec!["MailboxMoveCapability None -> RemoteOutbound".to_string()]
        );
        // A scope given as a DN is the same scope.
        let dn = rel(
            "r",
            &["RemoteOutbound"],
            Some(&APP.to_uppercase()),
            &["CN=T2T-Migration-Scope,OU=contoso.onmicrosoft.com"],
        );
        assert!(relationship_changes(&dn, &want).is_empty());
    }

    #[test]
    fn split_administration_commands_are_exact() {
        let mut s = spec();
        s.source.credentials = None;
        s.scope_group.name = "Movers".into();
        let mut o = ready();
        o.source = None;
        let p = plan(&s, &o, &names());
        let steps = p.source_steps.expect("steps");
        assert_eq!(steps.scope_group, "Movers");
        let all = steps.commands.join("\n");
        assert!(
            !all.contains('<'),
            "no placeholders once the app exists: {all}"
        );
        assert!(all.contains(&format!("-DomainNames {TGT}")), "{all}");
        assert!(
            all.contains("-MailboxMovePublishedScopes 'Movers'"),
            "{all}"
        );
        assert!(all.contains("New-DistributionGroup -Type Security -Name 'Movers'"));
        assert!(
            all.contains("'t2t-fabrikam'"),
            "the default source relationship name"
        );
        // Before the app exists the id is a visible placeholder, never a wrong id.
        let mut o = fresh();
        o.source = None;
        let steps = plan(&s, &o, &names()).source_steps.expect("steps");
        assert!(steps.commands.join(" ").contains("<migration app id>"));
    }

    #[test]
    fn split_administration_still_prepares_the_target() {
        let mut s = spec();
        s.source.credentials = None;
        let mut o = ready();
        o.source = None;
        o.endpoint_available = true;
        o.target.as_mut().expect("t").relationship = None;
        let p = plan(&s, &o, &names());
        assert_eq!(
            p.actions,
            vec![Action::CreateRelationship(
                Side::Target,
                "t2t-contoso".into(),
                RelationshipSettings {
                    capability: vec!["Inbound".into()],
                    ..Default::default()
                }
            )]
        );
        assert!(
            !p.ready,
            "an available endpoint does not excuse the target side"
        );
        // Never a write to the source, whatever is missing there.
        o.forward.consented_origin = false;
        o.endpoint_available = false;
        let p = plan(&s, &o, &names());
        assert!(p.actions.iter().all(|a| !matches!(
            a,
            Action::GrantConsent(_, Side::Source)
                | Action::CreateScopeGroup(Side::Source, _)
                | Action::CreateRelationship(Side::Source, ..)
                | Action::UpdateRelationship(Side::Source, ..)
                | Action::EnableCustomization(Side::Source)
        )));
        let c = p
            .conditions
            .iter()
            .find(|c| c.type_ == types::MIGRATION_APP_READY)
            .expect("cond");
        assert_eq!(c.reason, reasons::AWAITING_SOURCE_ADMIN);
    }

    #[test]
    fn a_missing_group_that_must_not_be_created_blocks_readiness() {
        let mut s = spec();
        s.scope_group.create = false;
        let mut o = ready();
        o.source.as_mut().expect("s").scope_group = None;
        let p = plan(&s, &o, &names());
        assert_eq!(p.actions, vec![]);
        assert!(!p.ready);
        let c = p
            .conditions
            .iter()
            .find(|c| c.type_ == types::SCOPE_GROUP_READY)
            .expect("cond");
        assert_eq!(c.status, crate::api::ConditionStatus::False);
        assert!(c.message.contains("T2T-Migration-Scope"));
        assert_eq!(ready_cond(&p).reason, reasons::WAITING_FOR_TENANT);
    }

    #[test]
    fn an_adopted_app_without_its_secret_is_not_ready_and_not_written() {
        let mut s = spec();
        s.migration_app.mode = MigrationAppMode::Adopt;
        let mut o = ready();
        o.forward.secret_ready = false;
        let p = plan(&s, &o, &names());
        assert!(
            !p.actions
                .iter()
                .any(|a| matches!(a, Action::CreateAppSecret(_) | Action::RotateAppSecret(_)))
        );
        assert!(!p.ready);
    }

    #[test]
    fn the_source_relationship_waits_for_the_app_id() {
        let mut o = fresh();
        o.target.as_mut().expect("t").dehydrated = false;
        o.source.as_mut().expect("s").dehydrated = false;
        o.source.as_mut().expect("s").scope_group = group();
        let p = plan(&spec(), &o, &names());
        assert!(p.actions.contains(&Action::CreateApp(Way::Forward)));
        assert!(
            p.actions
                .iter()
                .any(|a| matches!(a, Action::CreateRelationship(Side::Target, ..)))
        );
        assert!(
            !p.actions
                .iter()
                .any(|a| matches!(a, Action::CreateRelationship(Side::Source, ..))),
            "RemoteOutbound needs the app id"
        );
    }

    #[test]
    fn a_disabled_relationship_is_reenabled() {
        let mut o = ready();
        o.target.as_mut().expect("t").relationship = Some(OrganizationRelationship {
            enabled: false,
            ..rel("t2t-contoso", &["Inbound"], None, &[])
        });
        assert!(matches!(
            plan(&spec(), &o, &names()).actions.as_slice(),
            [Action::UpdateRelationship(Side::Target, id, _)] if id == "t2t-contoso"
        ));
    }

    #[test]
    fn destination_consent_is_granted_before_ready() {
        let mut o = ready();
        o.forward.consented_destination = false;
        let p = plan(&spec(), &o, &names());
        assert_eq!(
            p.actions,
            vec![Action::GrantConsent(Way::Forward, Side::Target)]
        );
        assert!(!p.ready);
        assert_eq!(ready_cond(&p).reason, reasons::PROGRESSING);
        let rec = p
            .conditions
            .iter()
            .find(|c| c.type_ == types::RECONCILING)
            .expect("Reconciling");
        assert_eq!(rec.status, crate::api::ConditionStatus::True);
    }

    #[test]
    fn every_action_describes_itself_for_events() {
        let all = [
            Action::EnableCustomization(Side::Source),
            Action::CreateApp(Way::Forward),
            Action::CreateAppSecret(Way::Reverse),
            Action::RotateAppSecret(Way::Forward),
            Action::GrantConsent(Way::Forward, Side::Source),
            Action::CreateScopeGroup(Side::Source, "G".into()),
            Action::CreateRelationship(Side::Target, "R".into(), Default::default()),
            Action::UpdateRelationship(Side::Source, "R".into(), Default::default()),
        ];
        for a in all {
            let d = a.describe();
            assert!(!d.is_empty() && d.len() < 200, "{d}");
        }
        assert!(
            Action::CreateScopeGroup(Side::Source, "G".into())
                .describe()
                .contains("source")
        );
    }

    #[test]
    fn reading_the_target_is_the_first_step() {
        let p = plan(&spec(), &Observed::default(), &names());
        assert!(p.actions.is_empty());
        assert!(!p.ready);
    }
}
