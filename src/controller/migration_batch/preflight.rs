//! Preflight: Microsoft's cross-tenant validation checklist (CrossTenantMailboxMigrationValidation.ps1,
//! checks U1–U19) plus the rules of the seed, as a pure function of what was observed for one user.
//!
//! Each finding says whether the operator can repair it (it then provisions instead of holding the
//! user back) or whether a person must act; its message names the fix.

use std::collections::BTreeSet;

use crate::api::{MailUserProvisioning, MigrationLicenseAssignment, ScopeMembership};
use crate::tenant::exchange::types::{MailUser, Mailbox, User, byte_size, is_zero_guid};

/// `PersistedCapabilities` entry present when a Cross Tenant User Data Migration licence is assigned.
pub const T2T_CAPABILITY: &str = "ExchangeT2TMbxMove";
/// Exchange Online's default RecoverableItemsQuota (30 GB), which a new target MailUser gets.
pub const DEFAULT_RECOVERABLE_ITEMS_QUOTA: u64 = 30 * 1024 * 1024 * 1024;
/// Most auxiliary archives a cross-tenant move supports.
pub const MAX_AUX_ARCHIVES: usize = 12;

/// Everything observed about one user.
#[derive(Clone, Debug, Default)]
pub struct UserFacts<'a> {
    pub source: Option<&'a Mailbox>,
    /// Source `TotalDeletedItemSize` in bytes.
    pub source_deleted_item_bytes: Option<u64>,
    pub target: Option<&'a MailUser>,
    /// Get-User of the target (PreviousRecipientTypeDetails, RecipientTypeDetails).
    pub target_user: Option<&'a User>,
    /// Whether the source mailbox is a member of the scope group.
    pub in_scope_group: bool,
    /// Another MigrationBatch (namespace/name) or Exchange batch holding this user.
    pub other_batch: Option<String>,
}

/// Settings of the batch that change what counts as blocking.
#[derive(Clone, Debug)]
pub struct Policy<'a> {
    pub mail_users: MailUserProvisioning,
    pub scope_membership: ScopeMembership,
    pub migration_license: MigrationLicenseAssignment,
    pub clear_previous_mailbox_data: bool,
    /// Accepted domains of the target tenant, lower case.
    pub target_domains: &'a BTreeSet<String>,
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Checklist id (`U4`) or `S<n>` for rules from the seed.
    pub check: &'static str,
    /// PascalCase reason code (status `reason`, ≤ 40 characters).
    pub reason: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
    pub severity: Severity,
}

/// Whether a finding stops the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Best practice only; the move proceeds.
    Warning,
    /// The operator repairs it during provisioning.
    Repairable,
    /// A person must act; the user is held back.
    Blocking,
}

/// Outcome of preflight for one user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// The first blocking finding, if any.
    pub fn blocking(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|f| f.severity == Severity::Blocking)
    }

    pub fn is_blocked(&self) -> bool {
        self.blocking().is_some()
    }

    pub fn needs_repair(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Repairable)
    }
}

fn f(check: &'static str, reason: &'static str, severity: Severity, message: String) -> Finding {
    Finding {
        check,
        reason,
        message,
        severity,
    }
}

fn has_proxy(list: &[String], want: &str) -> bool {
    list.iter().any(|p| p.eq_ignore_ascii_case(want))
}

fn domain(addr: &str) -> String {
    let a = addr.split_once(':').map(|(_, r)| r).unwrap_or(addr);
    a.rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

fn size_of(v: &Option<serde_json::Value>) -> Option<u64> {
    v.as_ref().and_then(byte_size)
}

/// Runs every check for one user, in the checklist's order.
pub fn check(user: &str, facts: &UserFacts<'_>, policy: &Policy<'_>) -> Verdict {
    use Severity::*;
    let mut out = Vec::new();
    let repair_attrs = if policy.mail_users == MailUserProvisioning::Skip {
        Blocking
    } else {
        Repairable
    };

    // U1: both objects exist.
    let Some(src) = facts.source else {
        out.push(f(
            "U1",
            "SourceMailboxNotFound",
            Blocking,
            format!("no mailbox {user} in the source tenant: check the address in spec.users"),
        ));
        return Verdict { findings: out };
    };

    // The seed: a user may be in one batch only (UserDuplicateInOtherBatchException).
    if let Some(other) = &facts.other_batch {
        out.push(f("S1", "InAnotherBatch", Blocking, format!("{user} is already in batch {other}: remove it there first (a user moves in one batch only)")));
    }

    // U2: at most 12 auxiliary archives.
    let aux = src.aux_archive_count();
    if aux > MAX_AUX_ARCHIVES {
        out.push(f("U2", "TooManyAuxArchives", Blocking, format!("{user} has {aux} auxiliary archives; cross-tenant moves support at most {MAX_AUX_ARCHIVES}: reduce them before the move")));
    }

    // U3: Cross Tenant User Data Migration licence on the source or the target object.
    let is_user_mailbox = src
        .recipient_type_details
        .as_deref()
        .is_none_or(|t| t == "UserMailbox");
    let licensed = has_proxy(&src.persisted_capabilities, T2T_CAPABILITY)
        || facts
            .target
            .is_some_and(|t| has_proxy(&t.persisted_capabilities, T2T_CAPABILITY));
    if is_user_mailbox && !licensed {
        let (sev, fix) = match policy.migration_license {
            MigrationLicenseAssignment::None => (
                Blocking,
                "assign a Cross Tenant User Data Migration licence to the source or target user, or set spec.provisioning.migrationLicense",
            ),
            _ => (
                Repairable,
                "the operator assigns a Cross Tenant User Data Migration licence (spec.provisioning.migrationLicense)",
            ),
        };
        out.push(f("U3", "NoMigrationLicense", sev, format!("{user} has no Cross Tenant User Data Migration licence (CrossTenantMigrationWithoutLicensePermanentException): {fix}")));
    }

    // U4–U9: holds block the move.
    if src.litigation_hold_enabled {
        out.push(f("U4", "LitigationHold", Blocking, format!("{user} is on litigation hold; mailboxes on hold are not migrated: release the hold (a legal decision) or remove the user from the batch")));
    }
    if src.delay_hold_applied {
        out.push(f(
            "U5",
            "DelayHold",
            Blocking,
            format!(
                "{user} has a delay hold: run Set-Mailbox -RemoveDelayHoldApplied in the source"
            ),
        ));
    }
    if src.delay_release_hold_applied {
        out.push(f("U6", "DelayReleaseHold", Blocking, format!("{user} has a delay-release hold: run Set-Mailbox -RemoveDelayReleaseHoldApplied in the source")));
    }
    if src.compliance_tag_hold_applied {
        out.push(f("U7", "ComplianceTagHold", Blocking, format!("{user} has items with retention labels that hold them (ComplianceTagHoldApplied): remove the labels or the user from the batch")));
    }
    for hold in &src.in_place_holds {
        let h = hold.trim_start_matches('-');
        let lower = h.to_ascii_lowercase();
        if lower.starts_with("mbx")
            || lower.starts_with("cld")
            || lower.starts_with("unih")
            || lower.starts_with("skp")
            || h.len() == 32
        {
            out.push(f("U8", "InPlaceHold", Blocking, format!("{user} is on hold {h} (retention policy or eDiscovery): exclude the mailbox from the hold before the move")));
            break;
        }
    }

    // U11: member of the scope group.
    if !facts.in_scope_group {
        let (sev, fix) = match policy.scope_membership {
            ScopeMembership::Manage => (Repairable, "the operator adds it"),
            ScopeMembership::Skip => (
                Blocking,
                "ask the source admin to add it to the scope group (MailboxNotInCrossTenantMigrationScopeException otherwise)",
            ),
        };
        out.push(f(
            "U11",
            "NotInScopeGroup",
            sev,
            format!("{user} is not in the source scope group: {fix}"),
        ));
    }

    let Some(tgt) = facts.target else {
        // U12 against the quota a new MailUser gets.
        if let Some(deleted) = facts.source_deleted_item_bytes
            && deleted > DEFAULT_RECOVERABLE_ITEMS_QUOTA
        {
            out.push(f("U12", "RecoverableItemsOverQuota", Blocking, format!("{user}: source recoverable items ({deleted} bytes) exceed the quota of a new target MailUser ({DEFAULT_RECOVERABLE_ITEMS_QUOTA} bytes): purge recoverable items first")));
        }
        let sev = if policy.mail_users == MailUserProvisioning::CreateOrRepair {
            Repairable
        } else {
            Blocking
        };
        out.push(f("U1", "TargetMailUserNotFound", sev, format!("no target MailUser for {user}: create it (spec.provisioning.mailUsers CreateOrRepair does)")));
        return Verdict { findings: out };
    };

    // The seed: a target that is (or was) a mailbox cannot take the move.
    if let Some(tu) = facts.target_user {
        if tu.recipient_type_details.as_deref() == Some("UserMailbox") {
            out.push(f("S2", "TargetIsMailbox", Blocking, format!("the target of {user} is already a mailbox (licensed before its ExchangeGuid was stamped): remove the licence and the mailbox, then clear previous mailbox data")));
        } else if tu
            .previous_recipient_type_details
            .as_deref()
            .is_some_and(|p| p.contains("Mailbox"))
        {
            let sev = if policy.clear_previous_mailbox_data {
                Repairable
            } else {
                Blocking
            };
            out.push(f("S3", "StalePreviousMailbox", sev, format!("the target of {user} was a mailbox before: set spec.provisioning.clearPreviousMailboxData (runs Set-User -PermanentlyClearPreviousMailboxInfo, irreversible) or clean it up by hand")));
        }
    }

    // U12: source dumpster fits the target's recoverable items quota.
    if let (Some(deleted), Some(quota)) = (
        facts.source_deleted_item_bytes,
        size_of(&tgt.recoverable_items_quota),
    ) && deleted > quota
    {
        out.push(f("U12", "RecoverableItemsOverQuota", Blocking, format!("{user}: source recoverable items ({deleted} bytes) exceed the target quota ({quota} bytes): purge recoverable items or raise the target quota")));
    }

    // U13: ExchangeGuid equal.
    let src_guid = src.exchange_guid.as_deref().unwrap_or("");
    if !tgt
        .exchange_guid
        .as_deref()
        .is_some_and(|g| g.eq_ignore_ascii_case(src_guid))
    {
        out.push(f("U13", "ExchangeGuidMismatch", repair_attrs, format!("the target of {user} does not carry the source ExchangeGuid {src_guid} (MissingExchangeGuidException): Set-MailUser -ExchangeGuid")));
    }
    // U14: ArchiveGuid.
    let src_archive = src.archive_guid.as_deref().filter(|g| !is_zero_guid(g));
    let tgt_archive = tgt.archive_guid.as_deref().filter(|g| !is_zero_guid(g));
    match (src_archive, tgt_archive) {
        (None, Some(_)) => out.push(f("U14", "ArchiveGuidMismatch", Blocking, format!("the target of {user} has an ArchiveGuid but the source has no archive: clear it on the target"))),
        (Some(s), t) if !t.is_some_and(|t| t.eq_ignore_ascii_case(s)) => {
            out.push(f("U14", "ArchiveGuidMismatch", repair_attrs, format!("the target of {user} does not carry the source ArchiveGuid {s}: Set-MailUser -ArchiveGuid")))
        }
        _ => {}
    }
    // U15: x500 of the source LegacyExchangeDN.
    if let Some(dn) = src.legacy_exchange_dn.as_deref()
        && !has_proxy(&tgt.email_addresses, &format!("x500:{dn}"))
    {
        out.push(f("U15", "MissingX500", repair_attrs, format!("the target of {user} lacks x500:{dn} (the source LegacyExchangeDN): add it to EmailAddresses")));
    }
    // U16: target primary SMTP in an accepted domain.
    if let Some(p) = tgt.primary_smtp_address.as_deref()
        && !policy.target_domains.contains(&domain(p))
    {
        out.push(f("U16", "PrimarySmtpNotAccepted", Blocking, format!("the primary address {p} of the target of {user} is not in an accepted domain of the target tenant: use a target domain in spec.users[].target")));
    }
    // U17: every SMTP proxy in an accepted domain (a foreign proxy blocks the conversion).
    let foreign: Vec<&String> = tgt
        .email_addresses
        .iter()
        .filter(|a| {
            a.len() > 5
                && a[..5].eq_ignore_ascii_case("smtp:")
                && !policy.target_domains.contains(&domain(a))
        })
        .collect();
    if let Some(first) = foreign.first() {
        out.push(f("U17", "ForeignSmtpProxy", repair_attrs, format!("the target of {user} has {} SMTP address(es) in domains the target does not own, e.g. {first} (NotAcceptedDomainException): remove them", foreign.len())));
    }
    // U18: every source x500 present (best practice).
    let missing_x500 = src
        .email_addresses
        .iter()
        .filter(|a| {
            a.len() > 5
                && a[..5].eq_ignore_ascii_case("x500:")
                && !has_proxy(&tgt.email_addresses, a)
        })
        .count();
    if missing_x500 > 0 {
        let sev = if policy.mail_users == MailUserProvisioning::Skip {
            Warning
        } else {
            Repairable
        };
        out.push(f("U18", "MissingSourceX500", sev, format!("the target of {user} lacks {missing_x500} x500 address(es) of the source mailbox: copy them (replies to old mail need them)")));
    }
    // U19: target ExternalEmailAddress is one of the source's addresses.
    let ext = tgt.external_email_address.as_deref().unwrap_or("");
    let ext_bare = ext.split_once(':').map(|(_, a)| a).unwrap_or(ext);
    if !src.email_addresses.iter().any(|a| {
        a.split_once(':')
            .map(|(_, x)| x)
            .unwrap_or(a)
            .eq_ignore_ascii_case(ext_bare)
    }) {
        out.push(f("U19", "ExternalAddressMismatch", repair_attrs, format!("the ExternalEmailAddress {ext} of the target of {user} is not an address of the source mailbox: point it at the source primary address")));
    }
    Verdict { findings: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "1ec059c7-8396-4d0b-af4e-d6bd4c12a8d8";
    const ARCHIVE: &str = "2f1e0d9c-8b7a-4654-9321-0fedcba98765";
    const DN: &str = "/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=abc-Lara";

    fn src() -> Mailbox {
        Mailbox {
            identity: "lara".into(),
            primary_smtp_address: Some("lara@contoso.com".into()),
            exchange_guid: Some(GUID.into()),
            archive_guid: Some("00000000-0000-0000-0000-000000000000".into()),
            legacy_exchange_dn: Some(DN.into()),
            email_addresses: vec![
                "SMTP:lara@contoso.com".into(),
                "X500:/o=ExchangeLabs/cn=old-Lara".into(),
            ],
            recipient_type_details: Some("UserMailbox".into()),
            persisted_capabilities: vec![T2T_CAPABILITY.into()],
            ..Default::default()
        }
    }

    fn tgt() -> MailUser {
        MailUser {
            identity: "lara".into(),
            primary_smtp_address: Some("lara@fabrikam.com".into()),
            external_email_address: Some("SMTP:lara@contoso.com".into()),
            exchange_guid: Some(GUID.into()),
            email_addresses: vec![
                "SMTP:lara@fabrikam.com".into(),
                "smtp:lara@fabrikam.onmicrosoft.com".into(),
                format!("x500:{DN}"),
                "X500:/o=ExchangeLabs/cn=old-Lara".into(),
            ],
            recipient_type_details: Some("MailUser".into()),
            ..Default::default()
        }
    }

    fn domains() -> BTreeSet<String> {
        ["fabrikam.com", "fabrikam.onmicrosoft.com"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn run<'a>(
        s: &'a Mailbox,
        t: Option<&'a MailUser>,
        tweak: impl FnOnce(&mut UserFacts<'a>),
        policy_tweak: impl FnOnce(&mut Policy<'_>),
    ) -> Verdict {
        let d = domains();
        let mut facts = UserFacts {
            source: Some(s),
            target: t,
            in_scope_group: true,
            ..Default::default()
        };
        tweak(&mut facts);
        let mut policy = Policy {
            mail_users: MailUserProvisioning::CreateOrRepair,
            scope_membership: ScopeMembership::Manage,
            migration_license: MigrationLicenseAssignment::None,
            clear_previous_mailbox_data: false,
            target_domains: &d,
        };
        policy_tweak(&mut policy);
        check("lara@contoso.com", &facts, &policy)
    }

    fn reasons(v: &Verdict) -> Vec<&'static str> {
        v.findings.iter().map(|f| f.reason).collect()
    }

    #[test]
    fn a_well_prepared_user_passes() {
        let v = run(&src(), Some(&tgt()), |_| {}, |_| {});
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn missing_source_stops_everything() {
        let d = domains();
        let facts = UserFacts::default();
        let policy = Policy {
            mail_users: MailUserProvisioning::CreateOrRepair,
            scope_membership: ScopeMembership::Manage,
            migration_license: MigrationLicenseAssignment::None,
            clear_previous_mailbox_data: false,
            target_domains: &d,
        };
        let v = check("x@contoso.com", &facts, &policy);
        assert_eq!(reasons(&v), vec!["SourceMailboxNotFound"]);
        assert!(v.is_blocked());
    }

    #[test]
    fn every_hold_blocks() {
        type Tweak = Box<dyn Fn(&mut Mailbox)>;
        let cases: Vec<(Tweak, &str)> = vec![
            (
                Box::new(|m| m.litigation_hold_enabled = true),
                "LitigationHold",
            ),
            (Box::new(|m| m.delay_hold_applied = true), "DelayHold"),
            (
                Box::new(|m| m.delay_release_hold_applied = true),
                "DelayReleaseHold",
            ),
            (
                Box::new(|m| m.compliance_tag_hold_applied = true),
                "ComplianceTagHold",
            ),
            (
                Box::new(|m| m.in_place_holds = vec!["mbxa1b2c3".into()]),
                "InPlaceHold",
            ),
            (
                Box::new(|m| m.in_place_holds = vec!["UniH1234".into()]),
                "InPlaceHold",
            ),
            (
                Box::new(|m| m.in_place_holds = vec!["cldabc".into()]),
                "InPlaceHold",
            ),
            (
                Box::new(|m| m.in_place_holds = vec!["skp127d7cf1076947929bf240de46ac8e3e".into()]),
                "InPlaceHold",
            ),
            (
                Box::new(|m| m.in_place_holds = vec!["c0ba3ce811b6432a8751430937152491".into()]),
                "InPlaceHold",
            ),
        ];
        for (tweak, reason) in cases {
            let mut s = src();
            tweak(&mut s);
            let v = run(&s, Some(&tgt()), |_| {}, |_| {});
            assert_eq!(v.blocking().map(|f| f.reason), Some(reason));
        }
        // An exclusion entry (leading '-') is still a hold id; an unrelated entry is not.
        let mut s = src();
        s.in_place_holds = vec!["other".into()];
        assert!(!run(&s, Some(&tgt()), |_| {}, |_| {}).is_blocked());
    }

    #[test]
    fn licence_is_needed_on_either_side() {
        let mut s = src();
        s.persisted_capabilities.clear();
        let v = run(&s, Some(&tgt()), |_| {}, |_| {});
        assert_eq!(v.blocking().map(|f| f.reason), Some("NoMigrationLicense"));
        assert!(v.blocking().is_some_and(|f| {
            f.message
                .contains("CrossTenantMigrationWithoutLicensePermanentException")
        }));
        let mut t = tgt();
        t.persisted_capabilities = vec![T2T_CAPABILITY.into()];
        assert!(
            !run(&s, Some(&t), |_| {}, |_| {}).is_blocked(),
            "a target licence counts"
        );
        let v = run(
            &s,
            Some(&tgt()),
            |_| {},
            |p| p.migration_license = MigrationLicenseAssignment::Target,
        );
        assert!(
            !v.is_blocked() && v.needs_repair(),
            "the operator assigns it when asked to"
        );
        let mut shared = s.clone();
        shared.recipient_type_details = Some("SharedMailbox".into());
        assert!(
            !run(&shared, Some(&tgt()), |_| {}, |_| {}).is_blocked(),
            "shared mailboxes need no licence (U3 applies to UserMailbox)"
        );
    }

    #[test]
    fn thirteen_aux_archives_block_twelve_do_not() {
        let mut s = src();
        s.mailbox_locations = (0..12).map(|i| format!("1;{i};AuxArchive;x;y")).collect();
        assert!(!run(&s, Some(&tgt()), |_| {}, |_| {}).is_blocked());
        s.mailbox_locations.push("1;13;AuxArchive;x;y".into());
        assert_eq!(
            run(&s, Some(&tgt()), |_| {}, |_| {})
                .blocking()
                .map(|f| f.reason),
            Some("TooManyAuxArchives")
        );
    }

    #[test]
    fn scope_membership_depends_on_policy() {
        let v = run(&src(), Some(&tgt()), |f| f.in_scope_group = false, |_| {});
        assert_eq!(reasons(&v), vec!["NotInScopeGroup"]);
        assert!(!v.is_blocked());
        let v = run(
            &src(),
            Some(&tgt()),
            |f| f.in_scope_group = false,
            |p| p.scope_membership = ScopeMembership::Skip,
        );
        assert_eq!(v.blocking().map(|f| f.reason), Some("NotInScopeGroup"));
    }

    #[test]
    fn another_batch_blocks() {
        let v = run(
            &src(),
            Some(&tgt()),
            |f| f.other_batch = Some("ns/wave-2".into()),
            |_| {},
        );
        assert_eq!(v.blocking().map(|f| f.reason), Some("InAnotherBatch"));
        assert!(v.findings[0].message.contains("ns/wave-2"));
    }

    #[test]
    fn attribute_mismatches_are_repairable_unless_provisioning_is_skipped() {
        let mut t = tgt();
        t.exchange_guid = None;
        t.email_addresses
            .retain(|a| !a.starts_with("x500:") && !a.starts_with("X500:"));
        t.email_addresses
            .push("smtp:lara@contoso.onmicrosoft.com".into());
        t.external_email_address = Some("SMTP:someone@else.com".into());
        let v = run(&src(), Some(&t), |_| {}, |_| {});
        assert_eq!(
            reasons(&v),
            vec![
                "ExchangeGuidMismatch",
                "MissingX500",
                "ForeignSmtpProxy",
                "MissingSourceX500",
                "ExternalAddressMismatch"
            ]
        );
        assert!(!v.is_blocked() && v.needs_repair());
        let v = run(
            &src(),
            Some(&t),
            |_| {},
            |p| p.mail_users = MailUserProvisioning::Skip,
        );
        assert_eq!(v.blocking().map(|f| f.reason), Some("ExchangeGuidMismatch"));
    }

    #[test]
    fn archive_rules() {
        let mut s = src();
        s.archive_guid = Some(ARCHIVE.into());
        let v = run(&s, Some(&tgt()), |_| {}, |_| {});
        assert_eq!(reasons(&v), vec!["ArchiveGuidMismatch"]);
        assert!(!v.is_blocked());
        let mut t = tgt();
        t.archive_guid = Some(ARCHIVE.into());
        let v = run(&src(), Some(&t), |_| {}, |_| {});
        assert_eq!(
            v.blocking().map(|f| f.reason),
            Some("ArchiveGuidMismatch"),
            "target archive without a source archive"
        );
    }

    #[test]
    fn missing_target_and_stale_previous_mailbox() {
        let v = run(&src(), None, |_| {}, |_| {});
        assert_eq!(reasons(&v), vec!["TargetMailUserNotFound"]);
        assert!(!v.is_blocked());
        let v = run(
            &src(),
            None,
            |_| {},
            |p| p.mail_users = MailUserProvisioning::RepairOnly,
        );
        assert!(v.is_blocked());
        let was_mailbox = User {
            identity: "lara".into(),
            previous_recipient_type_details: Some("UserMailbox".into()),
            recipient_type_details: Some("MailUser".into()),
            ..Default::default()
        };
        let v = run(
            &src(),
            Some(&tgt()),
            |f| f.target_user = Some(&was_mailbox),
            |_| {},
        );
        assert_eq!(v.blocking().map(|f| f.reason), Some("StalePreviousMailbox"));
        let v = run(
            &src(),
            Some(&tgt()),
            |f| f.target_user = Some(&was_mailbox),
            |p| p.clear_previous_mailbox_data = true,
        );
        assert!(!v.is_blocked() && v.needs_repair());
        let is_mailbox = User {
            identity: "lara".into(),
            recipient_type_details: Some("UserMailbox".into()),
            ..Default::default()
        };
        let v = run(
            &src(),
            Some(&tgt()),
            |f| f.target_user = Some(&is_mailbox),
            |_| {},
        );
        assert_eq!(v.blocking().map(|f| f.reason), Some("TargetIsMailbox"));
    }

    #[test]
    fn recoverable_items_must_fit() {
        let mut t = tgt();
        t.recoverable_items_quota = Some(serde_json::json!("30 GB (32,212,254,720 bytes)"));
        let v = run(
            &src(),
            Some(&t),
            |f| f.source_deleted_item_bytes = Some(40_000_000_000),
            |_| {},
        );
        assert_eq!(
            v.blocking().map(|f| f.reason),
            Some("RecoverableItemsOverQuota")
        );
        let v = run(
            &src(),
            Some(&t),
            |f| f.source_deleted_item_bytes = Some(1_000),
            |_| {},
        );
        assert!(!v.is_blocked());
        // Without a target yet, the default quota applies.
        let v = run(
            &src(),
            None,
            |f| f.source_deleted_item_bytes = Some(40 * 1024 * 1024 * 1024),
            |_| {},
        );
        assert_eq!(
            v.blocking().map(|f| f.reason),
            Some("RecoverableItemsOverQuota")
        );
        let v = run(
            &src(),
            None,
            |f| f.source_deleted_item_bytes = Some(1024),
            |_| {},
        );
        assert!(!v.is_blocked());
    }

    #[test]
    fn primary_address_must_be_accepted() {
        let mut t = tgt();
        t.primary_smtp_address = Some("lara@contoso.com".into());
        let v = run(&src(), Some(&t), |_| {}, |_| {});
        assert_eq!(
            v.blocking().map(|f| f.reason),
            Some("PrimarySmtpNotAccepted")
        );
    }

    #[test]
    fn reasons_fit_the_status_budget() {
        for r in [
            "SourceMailboxNotFound",
            "InAnotherBatch",
            "TooManyAuxArchives",
            "NoMigrationLicense",
            "LitigationHold",
            "DelayHold",
            "DelayReleaseHold",
            "ComplianceTagHold",
            "InPlaceHold",
            "NotInScopeGroup",
            "TargetMailUserNotFound",
            "TargetIsMailbox",
            "StalePreviousMailbox",
            "RecoverableItemsOverQuota",
            "ExchangeGuidMismatch",
            "ArchiveGuidMismatch",
            "MissingX500",
            "PrimarySmtpNotAccepted",
            "ForeignSmtpProxy",
            "MissingSourceX500",
            "ExternalAddressMismatch",
        ] {
            assert!(r.len() <= 40, "{r}");
        }
    }
}
