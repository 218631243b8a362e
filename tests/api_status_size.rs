//! Status stays bounded: a worst-case 2,000-user MigrationBatch status fits the 512 KiB budget,
//! and a whole 2,000-user object (spec, status and managedFields) stays well under etcd's 1.5 MiB.
//! See docs/adr/0001-per-user-state-in-status.md.

use chrono::{TimeZone, Utc};
use serde_json::json;
use t2t_operator::api::*;

const KIB: usize = 1024;

fn addr(i: usize, len: usize) -> String {
    let domain = "@fabrikam.onmicrosoft.com";
    let local = format!("u{i:04}");
    format!(
        "{local}{}{domain}",
        "x".repeat(len - local.len() - domain.len())
    )
}

fn condition(kind: &str) -> Condition {
    Condition {
        type_: kind.to_string(),
        status: ConditionStatus::False,
        reason: "ProgressingWithRetry".into(),
        // The status writer truncates messages to 1 KiB.
        message: "m".repeat(KIB),
        last_transition_time: Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("time"),
        observed_generation: Some(i64::MAX),
    }
}

fn worst_case_status() -> MigrationBatchStatus {
    let longest_state = UserState::Provisioned; // the longest variant name
    MigrationBatchStatus {
        conditions: (0..16)
            .map(|i| condition(&format!("Condition{i}")))
            .collect(),
        observed_generation: Some(i64::MAX),
        last_handled_reconcile_at: Some("r".repeat(64)),
        retry: RetryStatus {
            failed_attempts: u32::MAX,
            last_failure_time: Some(Utc::now()),
        },
        exchange_batch: Some(ExchangeBatchStatus {
            name: "b".repeat(64),
            guid: Some(uuid::Uuid::new_v4().to_string()),
            status: Some("CompletedWithErrors".into()),
            created_at: Some(Utc::now()),
        }),
        completion_started_at: Some(Utc::now()),
        retry_of_failed_users: u32::MAX,
        counts: BatchCounts {
            total: 2000,
            validated: 2000,
            provisioned: 2000,
            syncing: 2000,
            synced: 2000,
            completed: 2000,
            failed: 2000,
            held_back: 2000,
        },
        bytes_transferred: Some(u64::MAX),
        users: (0..MAX_USERS_PER_BATCH)
            .map(|i| UserStatus {
                source: addr(i, MAX_ADDRESS_LEN),
                state: longest_state,
                percent: Some(100),
                reason: Some("R".repeat(40)),
            })
            .collect(),
        sample_failures: (0..MAX_SAMPLE_FAILURES)
            .map(|i| UserFailure {
                source: addr(i, MAX_ADDRESS_LEN),
                reason: "R".repeat(40),
                message: "m".repeat(MAX_FAILURE_MESSAGE_LEN),
            })
            .collect(),
    }
}

#[test]
fn worst_case_batch_status_fits_512_kib() {
    let status = worst_case_status();
    let bytes = serde_json::to_vec(&json!({ "status": status }))
        .expect("json")
        .len();
    println!(
        "worst-case 2,000-user status: {} bytes ({:.1} KiB)",
        bytes,
        bytes as f64 / 1024.0
    );
    assert!(
        bytes <= 512 * KIB,
        "status is {bytes} bytes, over the 512 KiB budget"
    );
}

#[test]
fn state_names_used_in_the_worst_case_are_the_longest() {
    let all = [
        UserState::Pending,
        UserState::HeldBack,
        UserState::Validated,
        UserState::Provisioned,
        UserState::Queued,
        UserState::Syncing,
        UserState::Synced,
        UserState::Completing,
        UserState::Completed,
        UserState::Failed,
        UserState::Stopped,
    ];
    let longest = all
        .iter()
        .map(|s| serde_json::to_string(s).expect("json").len())
        .max();
    assert_eq!(
        longest,
        Some(
            serde_json::to_string(&UserState::Provisioned)
                .expect("json")
                .len()
        )
    );
}

/// The whole object: 2,000 users inline with every optional field at realistic lengths (40-character
/// addresses), the worst-case status, and the managedFields that server-side apply records (one
/// entry per key of the `spec.users` map; `status.users` is atomic).
#[test]
fn whole_2000_user_object_stays_far_below_etcd_limit() {
    let users: Vec<BatchUser> = (0..MAX_USERS_PER_BATCH)
        .map(|i| BatchUser {
            source: addr(i, 40).replace("fabrikam", "contoso"),
            target: addr(i, 40),
            user_principal_name: Some(addr(i, 40)),
            alias: Some(format!("user{i:04}")),
            display_name: Some(format!("User Number {i:04} (Sales, Contoso)")),
        })
        .collect();
    // Worst-case status, but for these users (their addresses are the status keys).
    let mut status = worst_case_status();
    for (entry, user) in status.users.iter_mut().zip(&users) {
        entry.source = user.source.clone();
    }
    let spec_keys: serde_json::Map<String, serde_json::Value> = users
        .iter()
        .map(|u| (format!("k:{{\"source\":\"{}\"}}", u.source), json!({".": {}, "f:source": {}, "f:target": {}, "f:userPrincipalName": {}, "f:alias": {}, "f:displayName": {}})))
        .collect();
    let obj = json!({
        "apiVersion": "t2t.dev/v1alpha1",
        "kind": "MigrationBatch",
        "metadata": {
            "name": "wave-1", "namespace": "migration", "uid": uuid::Uuid::new_v4().to_string(),
            "resourceVersion": "123456789", "generation": 3,
            "managedFields": [
                {"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:users": spec_keys}}},
                {"manager": "t2t.dev/migrationbatch", "operation": "Apply", "subresource": "status", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:users": {}}}}
            ]
        },
        "spec": MigrationBatchSpec {
            endpoint_ref: LocalObjectReference { name: "contoso".into() },
            exchange_batch_name: None,
            users,
            users_from: None,
            target_delivery_domain: "fabrikam.onmicrosoft.com".into(),
            provisioning: ProvisioningSpec::default(),
            preflight: PreflightSpec::default(),
            start_after: None,
            completion: CompletionSpec::default(),
            notification_emails: vec![],
            deletion_policy: DeletionPolicy::Orphan,
            suspend: false,
        },
        "status": status,
    });
    let bytes = serde_json::to_vec(&obj).expect("json").len();
    println!(
        "whole 2,000-user object: {} bytes ({:.1} KiB)",
        bytes,
        bytes as f64 / 1024.0
    );
    assert!(
        bytes < 1280 * KIB,
        "object is {bytes} bytes: less than 256 KiB of headroom under etcd's 1.5 MiB"
    );
}
