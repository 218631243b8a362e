//! MigrationEndpoint plan (pure): create, update or leave the Exchange endpoint.

use crate::tenant::exchange::types::MigrationEndpoint as ExoEndpoint;

/// The endpoint the spec and the pair ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub remote_server: String,
    /// Initial domain of the origin tenant (`-RemoteTenant`).
    pub remote_tenant: String,
    pub application_id: String,
    /// keyId of the app secret that should be on the endpoint.
    pub secret_key_id: String,
    pub max_concurrent_migrations: Option<i32>,
    pub max_concurrent_incremental_syncs: Option<i32>,
}

/// What to do with the endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Create,
    /// Update settings; `rotate_credential` also writes the current app secret.
    Update {
        rotate_credential: bool,
        changes: Vec<String>,
    },
    /// Nothing to write; test availability.
    Test,
}

/// Decides the next step. `written_key_id` is the secret keyId last written to the endpoint.
pub fn plan(want: &Desired, have: Option<&ExoEndpoint>, written_key_id: Option<&str>) -> Step {
    let Some(have) = have else {
        return Step::Create;
    };
    let mut changes = Vec::new();
    if !have
        .application_id
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case(&want.application_id))
    {
        changes.push(format!(
            "ApplicationId {} -> {}",
            have.application_id.clone().unwrap_or_default(),
            want.application_id
        ));
    }
    if !have
        .remote_server
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case(&want.remote_server))
    {
        changes.push(format!(
            "RemoteServer {} -> {}",
            have.remote_server.clone().unwrap_or_default(),
            want.remote_server
        ));
    }
    if let Some(m) = want.max_concurrent_migrations
        && have.max_concurrent_migrations != Some(i64::from(m))
    {
        changes.push(format!(
            "MaxConcurrentMigrations {} -> {m}",
            have.max_concurrent_migrations
                .map(|v| v.to_string())
                .unwrap_or_default()
        ));
    }
    if let Some(m) = want.max_concurrent_incremental_syncs
        && have.max_concurrent_incremental_syncs != Some(i64::from(m))
    {
        changes.push(format!(
            "MaxConcurrentIncrementalSyncs {} -> {m}",
            have.max_concurrent_incremental_syncs
                .map(|v| v.to_string())
                .unwrap_or_default()
        ));
    }
    let rotate = written_key_id.is_some_and(|k| !k.eq_ignore_ascii_case(&want.secret_key_id))
        || !changes.is_empty() && changes[0].starts_with("ApplicationId");
    if rotate {
        changes.push("client secret rotated".into());
    }
    if changes.is_empty() {
        Step::Test
    } else {
        Step::Update {
            rotate_credential: rotate,
            changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> Desired {
        Desired {
            name: "contoso".into(),
            remote_server: "outlook.office.com".into(),
            remote_tenant: "contoso.onmicrosoft.com".into(),
            application_id: "app".into(),
            secret_key_id: "k2".into(),
            max_concurrent_migrations: Some(50),
            max_concurrent_incremental_syncs: None,
        }
    }

    fn have() -> ExoEndpoint {
        ExoEndpoint {
            identity: "contoso".into(),
            remote_server: Some("outlook.office.com".into()),
            application_id: Some("APP".into()),
            max_concurrent_migrations: Some(50),
            max_concurrent_incremental_syncs: Some(20),
            ..Default::default()
        }
    }

    #[test]
    fn missing_endpoint_is_created() {
        assert_eq!(plan(&want(), None, None), Step::Create);
    }

    #[test]
    fn matching_endpoint_is_only_tested() {
        assert_eq!(plan(&want(), Some(&have()), Some("k2")), Step::Test);
        // Adopted endpoint whose credential we never wrote: leave it.
        assert_eq!(plan(&want(), Some(&have()), None), Step::Test);
    }

    #[test]
    fn drift_and_rotation_update() {
        let mut h = have();
        h.max_concurrent_migrations = Some(100);
        assert!(
            matches!(plan(&want(), Some(&h), Some("k2")), Step::Update { rotate_credential: false, ref changes } if changes[0].contains("MaxConcurrentMigrations 100 -> 50"))
        );
        assert!(matches!(
            plan(&want(), Some(&have()), Some("k1")),
            Step::Update {
                rotate_credential: true,
                ..
            }
        ));
        let mut h = have();
        h.application_id = Some("other".into());
        assert!(
            matches!(
                plan(&want(), Some(&h), Some("k2")),
                Step::Update {
                    rotate_credential: true,
                    ..
                }
            ),
            "a new app needs its secret too"
        );
    }

    #[test]
    fn each_setting_drift_is_named_and_only_the_app_change_rotates() {
        let mut h = have();
        h.remote_server = Some("outlook.office365.us".into());
        assert_eq!(
            plan(&want(), Some(&h), Some("k2")),
            Step::Update {
                rotate_credential: false,
                changes: vec!["RemoteServer outlook.office365.us -> outlook.office.com".into()]
            }
        );
        let mut w = want();
        w.max_concurrent_incremental_syncs = Some(10);
        assert_eq!(
            plan(&w, Some(&have()), Some("k2")),
            Step::Update {
                rotate_credential: false,
                changes: vec!["MaxConcurrentIncrementalSyncs 20 -> 10".into()]
            }
        );
        let mut h = have();
        h.application_id = None;
        h.max_concurrent_migrations = None;
        match plan(&want(), Some(&h), None) {
            Step::Update {
                rotate_credential,
                changes,
            } => {
                assert!(rotate_credential, "a new app id needs its secret");
                assert_eq!(changes.len(), 3, "{changes:?}");
                assert!(changes[0].starts_with("ApplicationId  -> app"));
                assert!(changes[1].starts_with("MaxConcurrentMigrations  -> 50"));
                assert_eq!(changes[2], "client secret rotated");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unset_limits_are_left_as_exchange_has_them() {
        let mut w = want();
        w.max_concurrent_migrations = None;
        w.max_concurrent_incremental_syncs = None;
        let mut h = have();
        h.max_concurrent_migrations = Some(300);
        assert_eq!(plan(&w, Some(&h), Some("k2")), Step::Test);
    }

    #[test]
    fn key_ids_compare_case_insensitively() {
        assert_eq!(plan(&want(), Some(&have()), Some("K2")), Step::Test);
    }
}
