//! Delegates captured before the move and the steps after completion: verify both conversions,
//! license the target, re-stamp GrantSendOnBehalfTo (Exchange does not migrate it) and report.
//!
//! The status stays compact, so what must survive a restart lives in a ConfigMap owned by the
//! batch (`<batch>-delegates`): the delegates of each prepared user and the users whose
//! post-completion steps are done.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::{Deserialize, Serialize};

use crate::api::MigrationBatch;
use crate::controller::error::Result;

const DELEGATES_KEY: &str = "delegates.json";
const FINALIZED_KEY: &str = "finalized.json";
const MANAGER: &str = "t2t.dev/migrationbatch";

/// Delegates of one source mailbox, as primary SMTP addresses (lower case) where resolvable.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Delegates {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send_on_behalf: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub full_access: Vec<String>,
}

/// What the batch's ConfigMap holds.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// Source address (lower case) → delegates; only users that were captured.
    pub delegates: BTreeMap<String, Delegates>,
    /// Source addresses (lower case) whose post-completion steps are done.
    pub finalized: BTreeSet<String>,
    /// Whether the ConfigMap exists.
    pub exists: bool,
}

pub fn configmap_name(mb: &MigrationBatch) -> String {
    let base: String = mb.name_any().chars().take(243).collect();
    format!("{base}-delegates")
}

pub async fn load(client: &kube::Client, mb: &MigrationBatch) -> Result<Ledger> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &mb.namespace().unwrap_or_default());
    let Some(cm) = api.get_opt(&configmap_name(mb)).await? else {
        return Ok(Ledger::default());
    };
    let data = cm.data.unwrap_or_default();
    let delegates = data
        .get(DELEGATES_KEY)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let finalized = data
        .get(FINALIZED_KEY)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    Ok(Ledger {
        delegates,
        finalized,
        exists: true,
    })
}

/// Writes the ledger (server-side apply, owned by the batch so it goes with it).
pub async fn save(client: &kube::Client, mb: &MigrationBatch, l: &Ledger) -> Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &mb.namespace().unwrap_or_default());
    let owner = mb.controller_owner_ref(&()).map(|o| vec![o]);
    let name = configmap_name(mb);
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "ownerReferences": owner,
            "labels": {"app.kubernetes.io/managed-by": "t2t-operator"},
        },
        "data": {
            DELEGATES_KEY: serde_json::to_string(&l.delegates).unwrap_or_default(),
            FINALIZED_KEY: serde_json::to_string(&l.finalized).unwrap_or_default(),
        }
    });
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(())
}

/// Where a delegate of a user of this batch moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DelegatePlace {
    /// In this batch, with its target address.
    ThisBatch(String),
    /// In another MigrationBatch (namespace/name).
    OtherBatch(String),
    /// In no batch.
    NoBatch,
}

/// Classifies a delegate address (lower case).
pub fn place(
    delegate: &str,
    this_batch: &BTreeMap<String, String>,
    others: &std::collections::HashMap<String, String>,
) -> DelegatePlace {
    if let Some(t) = this_batch.get(delegate) {
        DelegatePlace::ThisBatch(t.clone())
    } else if let Some(o) = others.get(delegate) {
        DelegatePlace::OtherBatch(o.clone())
    } else {
        DelegatePlace::NoBatch
    }
}

/// The warning for a user whose delegates do not move with it (None when they all do).
pub fn delegate_warning(
    user: &str,
    d: &Delegates,
    this_batch: &BTreeMap<String, String>,
    others: &std::collections::HashMap<String, String>,
) -> Option<String> {
    let mut parts = Vec::new();
    for (kind, list) in [
        ("send-on-behalf", &d.send_on_behalf),
        ("FullAccess", &d.full_access),
    ] {
        for a in list {
            match place(a, this_batch, others) {
                DelegatePlace::ThisBatch(_) => {}
                DelegatePlace::OtherBatch(o) => {
                    parts.push(format!("{kind} delegate {a} moves in batch {o}"))
                }
                DelegatePlace::NoBatch => parts.push(format!("{kind} delegate {a} is in no batch")),
            }
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(format!(
            "{user}: {}; delegation across tenants does not work, so move delegates and their managers together",
            parts.join(", ")
        ))
    }
}

/// Whether the source side of a completed move was converted: a MailUser forwarding to the
/// target delivery domain. Returns the external address when it was.
pub fn source_converted(
    m: &crate::tenant::exchange::types::MailUser,
    delivery_domain: &str,
) -> Option<String> {
    let ext = m.external_email_address.as_deref()?;
    let bare = ext.split_once(':').map(|(_, a)| a).unwrap_or(ext);
    let is_mail_user = m
        .recipient_type_details
        .as_deref()
        .is_none_or(|t| t == "MailUser");
    let domain_ok = bare
        .rsplit_once('@')
        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(delivery_domain));
    (is_mail_user && domain_ok).then(|| bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegates_in_this_batch_are_fine_others_warn() {
        let this: BTreeMap<String, String> = [("alice@c.com".into(), "alice@f.com".into())].into();
        let others = [("bob@c.com".to_string(), "ns/wave-2".to_string())].into();
        let d = Delegates {
            send_on_behalf: vec!["alice@c.com".into()],
            full_access: vec![],
        };
        assert_eq!(delegate_warning("frank@c.com", &d, &this, &others), None);
        let d = Delegates {
            send_on_behalf: vec!["bob@c.com".into()],
            full_access: vec!["zed@c.com".into()],
        };
        let w = delegate_warning("frank@c.com", &d, &this, &others).expect("warning");
        assert!(
            w.contains("ns/wave-2") && w.contains("zed@c.com is in no batch"),
            "{w}"
        );
    }

    #[test]
    fn conversion_is_checked() {
        let m = crate::tenant::exchange::types::MailUser {
            external_email_address: Some("SMTP:alice@fabrikam.onmicrosoft.com".into()),
            recipient_type_details: Some("MailUser".into()),
            ..Default::default()
        };
        assert_eq!(
            source_converted(&m, "fabrikam.onmicrosoft.com").as_deref(),
            Some("alice@fabrikam.onmicrosoft.com")
        );
        assert_eq!(source_converted(&m, "other.com"), None);
    }
}
