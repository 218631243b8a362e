//! The single way controllers write status and events.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::Result;
use crate::api::common::Condition;
use crate::api::conditions::find;

/// Server-side applies the complete status owned by `manager` (omitted fields are released).
pub async fn apply_status<K, S>(api: &Api<K>, obj: &K, manager: &str, status: &S) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": obj.name_any()},
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Publishes an event; failures are logged, never fatal (events are best effort).
pub async fn event<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.to_string(),
        note: Some(crate::api::conditions::truncate(&note, 1024)),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

/// Emits an event when the Ready condition changed status or reason (transitions only).
pub async fn ready_transition_event<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    old: &[Condition],
    new: &[Condition],
    action: &str,
) {
    let (Some(n), o) = (find(new, "Ready"), find(old, "Ready")) else {
        return;
    };
    if o.is_some_and(|o| o.status == n.status && o.reason == n.reason) {
        return;
    }
    let was_suspended = o.is_some_and(|o| o.reason == "Suspended");
    if n.reason == "Suspended" {
        if !was_suspended {
            event(
                recorder,
                obj,
                EventType::Normal,
                "Suspended",
                action,
                format!(
                    "spec.suspend is true: no tenant writes, status is still observed; {}",
                    n.message
                ),
            )
            .await;
        }
        return;
    }
    if was_suspended {
        event(
            recorder,
            obj,
            EventType::Normal,
            "Resumed",
            action,
            "spec.suspend was cleared: tenant writes resume".into(),
        )
        .await;
        if o.is_some_and(|o| o.status == n.status) {
            return;
        }
    }
    let type_ = if n.status == crate::api::ConditionStatus::True
        || n.reason == "Progressing"
        || n.reason == "WaitingForTenant"
    {
        EventType::Normal
    } else {
        EventType::Warning
    };
    event(recorder, obj, type_, &n.reason, action, n.message.clone()).await;
}

/// Persisted backoff: 30 s × 2^(n-1), capped at 1 h, ±20 % jitter.
pub fn backoff(failed_attempts: u32) -> std::time::Duration {
    backoff_from(std::time::Duration::from_secs(30), failed_attempts)
}

/// Persisted backoff from `base`: base × 2^(n-1), capped at 1 h, ±20 % jitter.
pub fn backoff_from(base: std::time::Duration, failed_attempts: u32) -> std::time::Duration {
    let factor = (1u64 << failed_attempts.saturating_sub(1).min(10)) as f64;
    let secs = (base.as_secs_f64() * factor).min(3600.0) * (0.8 + rand::random::<f64>() * 0.4);
    std::time::Duration::from_secs_f64(secs)
}

/// Writes the status only when it differs from the stored one: a pass that changed nothing
/// makes no API write (and so does not retrigger its own watch).
pub async fn apply_status_if_changed<K, S>(
    api: &Api<K>,
    obj: &K,
    manager: &str,
    old: &S,
    status: &S,
) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if old == status {
        return Ok(false);
    }
    apply_status(api, obj, manager, status).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_caps() {
        let b1 = super::backoff(1).as_secs_f64();
        assert!((24.0..=36.0).contains(&b1));
        let b3 = super::backoff(3).as_secs_f64();
        assert!((96.0..=144.0).contains(&b3));
        assert!(super::backoff(40).as_secs_f64() <= 3600.0 * 1.2);
        let short = super::backoff_from(std::time::Duration::from_millis(500), 2).as_secs_f64();
        assert!((0.8..=1.2).contains(&short), "{short}");
    }
}
