//! Output objects of the cmdlets the operator uses. Property names are PowerShell's; every field
//! is optional or defaulted because Exchange omits, nulls or adds properties freely.

use serde::{Deserialize, Deserializer};

/// `Get-OrganizationConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OrganizationConfig {
    pub is_dehydrated: bool,
    pub name: Option<String>,
}

/// `Get-MigrationEndpoint`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MigrationEndpoint {
    pub identity: String,
    pub endpoint_type: Option<String>,
    pub remote_server: Option<String>,
    pub remote_tenant: Option<String>,
    pub application_id: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub max_concurrent_migrations: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub max_concurrent_incremental_syncs: Option<i64>,
    pub guid: Option<String>,
    pub is_remote: Option<bool>,
}

/// `Test-MigrationServerAvailability`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AvailabilityResult {
    pub result: String,
    pub message: Option<String>,
    pub error_detail: Option<String>,
}

/// `Get-OrganizationRelationship`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct OrganizationRelationship {
    pub identity: String,
    pub name: Option<String>,
    #[serde(deserialize_with = "string_list")]
    pub domain_names: Vec<String>,
    pub enabled: bool,
    pub mailbox_move_enabled: bool,
    /// Flags, comma-joined (`Inbound, RemoteOutbound`).
    #[serde(deserialize_with = "flags")]
    pub mailbox_move_capability: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub mailbox_move_published_scopes: Vec<String>,
    #[serde(rename = "OAuthApplicationId")]
    pub oauth_application_id: Option<String>,
}

/// `Get-DistributionGroup`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DistributionGroup {
    pub identity: String,
    pub name: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub recipient_type_details: Option<String>,
    pub guid: Option<String>,
}

/// `Get-DistributionGroupMember`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct GroupMember {
    pub identity: String,
    pub name: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub recipient_type_details: Option<String>,
    pub external_directory_object_id: Option<String>,
}

/// `Get-Mailbox` (source tenant).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mailbox {
    pub identity: String,
    pub name: Option<String>,
    pub alias: Option<String>,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub exchange_guid: Option<String>,
    pub archive_guid: Option<String>,
    pub archive_status: Option<String>,
    pub auto_expanding_archive_enabled: bool,
    #[serde(deserialize_with = "string_list")]
    pub mailbox_locations: Vec<String>,
    #[serde(rename = "LegacyExchangeDN")]
    pub legacy_exchange_dn: Option<String>,
    #[serde(deserialize_with = "string_list")]
    pub email_addresses: Vec<String>,
    pub litigation_hold_enabled: bool,
    #[serde(deserialize_with = "string_list")]
    pub in_place_holds: Vec<String>,
    pub compliance_tag_hold_applied: bool,
    pub delay_hold_applied: bool,
    pub delay_release_hold_applied: bool,
    pub recipient_type_details: Option<String>,
    #[serde(deserialize_with = "string_list")]
    pub grant_send_on_behalf_to: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub persisted_capabilities: Vec<String>,
    pub external_directory_object_id: Option<String>,
}

/// `Get-MailUser` (target tenant, and the source after completion).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MailUser {
    pub identity: String,
    pub name: Option<String>,
    pub alias: Option<String>,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub external_email_address: Option<String>,
    pub exchange_guid: Option<String>,
    pub archive_guid: Option<String>,
    #[serde(rename = "LegacyExchangeDN")]
    pub legacy_exchange_dn: Option<String>,
    #[serde(deserialize_with = "string_list")]
    pub email_addresses: Vec<String>,
    pub is_dir_synced: bool,
    pub recoverable_items_quota: Option<serde_json::Value>,
    #[serde(deserialize_with = "string_list")]
    pub persisted_capabilities: Vec<String>,
    pub recipient_type_details: Option<String>,
    pub external_directory_object_id: Option<String>,
    pub custom_attribute1: Option<String>,
}

/// `Get-User`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct User {
    pub identity: String,
    pub previous_recipient_type_details: Option<String>,
    pub recipient_type: Option<String>,
    pub recipient_type_details: Option<String>,
    pub user_principal_name: Option<String>,
}

/// `Get-AcceptedDomain`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AcceptedDomain {
    pub domain_name: String,
    pub domain_type: Option<String>,
    pub default: bool,
}

/// `Get-MailboxStatistics`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MailboxStatistics {
    pub total_deleted_item_size: Option<serde_json::Value>,
    pub total_item_size: Option<serde_json::Value>,
}

/// `Get-MailboxPermission`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MailboxPermission {
    pub user: String,
    #[serde(deserialize_with = "string_list")]
    pub access_rights: Vec<String>,
    pub is_inherited: bool,
    pub deny: bool,
}

/// `Get-MigrationBatch`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MigrationBatch {
    pub identity: String,
    pub status: String,
    pub batch_guid: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub total_count: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub active_count: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub synced_count: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub finalized_count: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub failed_count: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub stopped_count: Option<i64>,
    pub target_delivery_domain: Option<String>,
    pub message: Option<String>,
}

/// `Get-MigrationUser`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MigrationUser {
    pub identity: String,
    pub email_address: Option<String>,
    pub batch_id: Option<String>,
    pub status: String,
    pub status_summary: Option<String>,
    pub error_summary: Option<String>,
    pub mailbox_guid: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub synced_item_count: Option<i64>,
}

/// `Get-MigrationUserStatistics`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MigrationUserStatistics {
    pub identity: String,
    pub email_address: Option<String>,
    pub status: String,
    #[serde(deserialize_with = "lenient_i64")]
    pub percentage_complete: Option<i64>,
    pub bytes_transferred: Option<serde_json::Value>,
    pub error: Option<serde_json::Value>,
    pub error_summary: Option<String>,
}

/// The exception type of an `ErrorSummary` (`<ExceptionName>: <text>`) as a typed kind, so callers
/// branch on `NotAcceptedDomainException` etc. without parsing the text.
fn summary_kind(summary: Option<&str>) -> Option<crate::tenant::error::ExchangeErrorKind> {
    let s = summary?.trim();
    let (ty, _) = s.split_once(':')?;
    let ty = ty.trim();
    if ty.is_empty() || ty.contains(' ') {
        return None;
    }
    Some(crate::tenant::error::ExchangeErrorKind::from_exception_type(ty))
}

impl MigrationUser {
    /// The kind of the user's failure, from `ErrorSummary`.
    pub fn error_kind(&self) -> Option<crate::tenant::error::ExchangeErrorKind> {
        summary_kind(self.error_summary.as_deref())
    }
}

impl MigrationUserStatistics {
    /// The kind of the user's failure, from `ErrorSummary`.
    pub fn error_kind(&self) -> Option<crate::tenant::error::ExchangeErrorKind> {
        summary_kind(self.error_summary.as_deref())
    }
}

/// Accepts a list, a single string, or null.
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .filter_map(|i| match i {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect(),
        Some(serde_json::Value::String(s)) if !s.is_empty() => vec![s],
        _ => vec![],
    })
}

/// Flags arrive as `"Inbound, RemoteOutbound"` or as an array.
fn flags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = string_list(d)?;
    Ok(list
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "None")
        .collect())
}

/// Numbers arrive as numbers, strings, or `"Unlimited"`.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Bytes from a `ByteQuantifiedSize` rendering (`"28.45 GB (30,551,458,399 bytes)"`) or a number.
pub fn byte_size(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => {
            if let (Some(open), Some(close)) = (s.rfind('('), s.rfind(" bytes)")) {
                return s[open + 1..close].replace(',', "").trim().parse().ok();
            }
            s.replace(',', "").trim().parse().ok()
        }
        serde_json::Value::Object(o) => o
            .get("Value")
            .or_else(|| o.get("value"))
            .and_then(byte_size),
        _ => None,
    }
}

impl Mailbox {
    /// Number of auxiliary archives (`MailboxLocations` entries naming `auxArchive`).
    pub fn aux_archive_count(&self) -> usize {
        self.mailbox_locations
            .iter()
            .filter(|l| l.to_ascii_lowercase().contains("auxarchive"))
            .count()
    }

    /// True when the mailbox has an archive (ArchiveGuid set and not all zeros).
    pub fn has_archive(&self) -> bool {
        self.archive_guid
            .as_deref()
            .is_some_and(|g| !is_zero_guid(g))
    }
}

/// True for an empty or all-zero GUID.
pub fn is_zero_guid(g: &str) -> bool {
    g.chars().all(|c| c == '0' || c == '-') || g.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relationship_flags_and_lists_parse_in_every_form() {
        let r: OrganizationRelationship = serde_json::from_value(json!({
            "Identity": "rel", "DomainNames": "1111", "MailboxMoveCapability": "Inbound, RemoteOutbound",
            "MailboxMovePublishedScopes": null, "OAuthApplicationId": "app", "Enabled": true, "MailboxMoveEnabled": true
        }))
        .expect("parse");
        assert_eq!(r.domain_names, vec!["1111"]);
        assert_eq!(r.mailbox_move_capability, vec!["Inbound", "RemoteOutbound"]);
        assert!(r.mailbox_move_published_scopes.is_empty());
        let r: OrganizationRelationship =
            serde_json::from_value(json!({"Identity": "r", "MailboxMoveCapability": ["Inbound"]}))
                .expect("parse");
        assert_eq!(r.mailbox_move_capability, vec!["Inbound"]);
        let r: OrganizationRelationship =
            serde_json::from_value(json!({"Identity": "r", "MailboxMoveCapability": "None"}))
                .expect("parse");
        assert!(r.mailbox_move_capability.is_empty());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(
            byte_size(&json!("28.45 GB (30,551,458,399 bytes)")),
            Some(30_551_458_399)
        );
        assert_eq!(byte_size(&json!(1234)), Some(1234));
        assert_eq!(byte_size(&json!("1,024")), Some(1024));
        assert_eq!(byte_size(&json!({"Value": 5})), Some(5));
    }

    #[test]
    fn mailbox_helpers() {
        let m: Mailbox = serde_json::from_value(json!({
            "Identity": "m", "ArchiveGuid": "00000000-0000-0000-0000-000000000000",
            "MailboxLocations": ["1;aaa;Primary;x;y", "1;bbb;AuxArchive;x;y", "1;ccc;auxArchive;x;y"],
            "MaxConcurrentMigrations": "Unlimited"
        }))
        .expect("parse");
        assert!(!m.has_archive());
        assert_eq!(m.aux_archive_count(), 2);
        let e: MigrationEndpoint = serde_json::from_value(json!({"Identity": "e", "MaxConcurrentMigrations": "Unlimited", "MaxConcurrentIncrementalSyncs": "20"})).expect("parse");
        assert_eq!(e.max_concurrent_migrations, None);
        assert_eq!(e.max_concurrent_incremental_syncs, Some(20));
    }
}
