//! The only controllers the emulator runs (spec §6, §11): namespace finalization, CRD instance
//! cleanup, foreground/orphan propagation and ownerReference garbage collection. Run
//! synchronously after every write that can delete something, so tests see a settled state.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::ops::{State, after_removal, delete_object};
use super::store::GroupResource;

const CRD_CLEANUP: &str = "customresourcecleanup.apiextensions.k8s.io";

fn uid(v: &Value) -> &str {
    v["metadata"]["uid"].as_str().unwrap_or_default()
}

fn owned_by(obj: &Value, owner_uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r["uid"] == json!(owner_uid)))
}

/// Every (resource, object) in storage.
fn all_objects(st: &State) -> Vec<(GroupResource, Arc<Value>)> {
    let mut out = Vec::new();
    for gr in st.store.resources() {
        for o in st.store.list(&gr, None) {
            out.push((gr.clone(), o));
        }
    }
    out
}

/// Removes one finalizer; removes the object when none remain. Returns true if anything changed.
fn drop_finalizer(st: &mut State, gr: &GroupResource, obj: &Value, fin: &str) -> bool {
    let mut new = obj.clone();
    let Some(list) = new["metadata"]["finalizers"].as_array_mut() else {
        return false;
    };
    let before = list.len();
    list.retain(|f| f != fin);
    if list.len() == before {
        return false;
    }
    let empty = list.is_empty();
    let (ns, name) = super::store::obj_key(obj);
    if empty {
        if let Some(info) = st.registry.get(&gr.group, &gr.resource) {
            if let Some(removed) = st.store.remove(gr, &ns, &name) {
                after_removal(st, &info, &removed);
            }
        } else {
            st.store.remove(gr, &ns, &name);
        }
    } else {
        st.store.put(gr, new);
    }
    true
}

/// Drives pending deletions to a fixed point.
pub fn settle(st: &mut State, now: DateTime<Utc>) {
    for _ in 0..64 {
        let mut changed = false;
        let pending = std::mem::take(&mut st.terminating);
        let mut keep = Vec::new();
        for (gr, ns, name) in pending {
            let Some(obj) = st.store.get(&gr, &ns, &name) else {
                continue;
            };
            if obj["metadata"].get("deletionTimestamp").is_none() {
                continue;
            }
            changed |= step(st, &gr, &obj, now);
            if st.store.get(&gr, &ns, &name).is_some() {
                keep.push((gr, ns, name));
            }
        }
        // Entries added while stepping (cascades) are already in st.terminating.
        keep.append(&mut st.terminating);
        keep.dedup();
        st.terminating = keep;

        if st.store.removals() != st.gc_removals_seen {
            st.gc_removals_seen = st.store.removals();
            changed |= collect_orphans(st, now);
        }
        if !changed {
            break;
        }
    }
}

/// One deletion-in-progress object: do what its finalizers wait for.
fn step(st: &mut State, gr: &GroupResource, obj: &Arc<Value>, now: DateTime<Utc>) -> bool {
    let mut changed = false;
    let is_ns = gr.group.is_empty() && gr.resource == "namespaces";
    let fins: Vec<String> = obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if is_ns {
        let ns = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if st
            .ns_marked
            .get(&ns)
            .is_some_and(|t| t.elapsed() < st.namespace_delay)
        {
            // Not due yet: the background ticker comes back for it.
            return false;
        }
        let mut remaining = 0;
        for info in st.registry.storage_resources() {
            if !info.namespaced {
                continue;
            }
            for o in st.store.list(&info.storage, Some(&ns)) {
                remaining += 1;
                if o["metadata"].get("deletionTimestamp").is_none() {
                    delete_object(st, &info, o, Some("Background"), now);
                    changed = true;
                }
            }
        }
        if remaining == 0 || (changed && count_in_ns(st, &ns) == 0) {
            if fins.is_empty() {
                if st.store.remove(gr, "", &ns).is_some() {
                    st.ns_marked.remove(&ns);
                    changed = true;
                }
            } else if obj["spec"]["finalizers"] != json!([]) {
                let mut o = (**obj).clone();
                o["spec"]["finalizers"] = json!([]);
                st.store.put(gr, o);
                changed = true;
            }
        }
        return changed;
    }
    for f in &fins {
        match f.as_str() {
            CRD_CLEANUP => {
                let group = obj["spec"]["group"].as_str().unwrap_or_default();
                let plural = obj["spec"]["names"]["plural"].as_str().unwrap_or_default();
                let crs_gr = GroupResource::new(group, plural);
                let crs = st.store.list(&crs_gr, None);
                if let Some(info) = st.registry.get(group, plural) {
                    for o in &crs {
                        if o["metadata"].get("deletionTimestamp").is_none() {
                            delete_object(st, &info, o.clone(), Some("Background"), now);
                            changed = true;
                        }
                    }
                }
                if st.store.list(&crs_gr, None).is_empty() {
                    changed |= drop_finalizer(st, gr, &current(st, gr, obj), CRD_CLEANUP);
                }
            }
            "foregroundDeletion" => {
                let owner = uid(obj).to_string();
                let deps: Vec<(GroupResource, Arc<Value>)> = all_objects(st)
                    .into_iter()
                    .filter(|(_, o)| owned_by(o, &owner))
                    .collect();
                for (dgr, d) in &deps {
                    if d["metadata"].get("deletionTimestamp").is_none()
                        && let Some(info) = st.registry.get(&dgr.group, &dgr.resource)
                    {
                        delete_object(st, &info, d.clone(), Some("Foreground"), now);
                        changed = true;
                    }
                }
                let left = all_objects(st)
                    .into_iter()
                    .any(|(_, o)| owned_by(&o, &owner));
                if !left {
                    changed |= drop_finalizer(st, gr, &current(st, gr, obj), "foregroundDeletion");
                }
            }
            "orphan" => {
                let owner = uid(obj).to_string();
                for (dgr, d) in all_objects(st) {
                    if owned_by(&d, &owner) {
                        let mut nd = (*d).clone();
                        if let Some(refs) = nd["metadata"]["ownerReferences"].as_array_mut() {
                            refs.retain(|r| r["uid"] != json!(owner));
                            if refs.is_empty()
                                && let Some(m) = nd["metadata"].as_object_mut()
                            {
                                m.remove("ownerReferences");
                            }
                        }
                        st.store.put(&dgr, nd);
                    }
                }
                changed |= drop_finalizer(st, gr, &current(st, gr, obj), "orphan");
            }
            _ => {}
        }
    }
    changed
}

fn count_in_ns(st: &State, ns: &str) -> usize {
    st.registry
        .storage_resources()
        .iter()
        .filter(|i| i.namespaced)
        .map(|i| st.store.list(&i.storage, Some(ns)).len())
        .sum()
}

/// Re-reads an object (it may have changed while its dependents were processed).
fn current(st: &State, gr: &GroupResource, obj: &Value) -> Value {
    let (ns, name) = super::store::obj_key(obj);
    st.store
        .get(gr, &ns, &name)
        .map(|o| (*o).clone())
        .unwrap_or_else(|| obj.clone())
}

/// Background GC: objects whose every owner is gone are deleted.
fn collect_orphans(st: &mut State, now: DateTime<Utc>) -> bool {
    let objects = all_objects(st);
    let live: HashSet<&str> = objects.iter().map(|(_, o)| uid(o)).collect();
    let doomed: Vec<(GroupResource, Arc<Value>)> = objects
        .iter()
        .filter(|(_, o)| {
            o["metadata"].get("deletionTimestamp").is_none()
                && o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| {
                        !refs.is_empty()
                            && refs
                                .iter()
                                .all(|r| !live.contains(r["uid"].as_str().unwrap_or_default()))
                    })
        })
        .cloned()
        .collect();
    let mut changed = false;
    for (gr, o) in doomed {
        if let Some(info) = st.registry.get(&gr.group, &gr.resource) {
            delete_object(st, &info, o, Some("Background"), now);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeemu::ops::{DeleteOpts, FieldValidation, Target, WriteOpts, create, delete};

    fn opts() -> WriteOpts {
        WriteOpts {
            manager: "test".into(),
            manager_explicit: true,
            dry_run: false,
            validation: FieldValidation::Strict,
            force: false,
        }
    }

    fn target(st: &State, plural: &str, ns: Option<&str>, name: Option<&str>) -> Target {
        Target {
            info: st.registry.lookup("", "v1", plural).unwrap(),
            version: "v1".into(),
            ns: ns.map(String::from),
            name: name.map(String::from),
            sub: None,
        }
    }

    #[test]
    fn owner_deletion_cascades_and_namespace_finalizes() {
        let now = Utc::now();
        let mut st = State::new(100);
        let ns = target(&st, "namespaces", None, None);
        create(
            &mut st,
            &ns,
            json!({"metadata": {"name": "a"}}),
            &opts(),
            now,
            false,
        )
        .unwrap();
        let cm = target(&st, "configmaps", Some("a"), None);
        let owner = create(
            &mut st,
            &cm,
            json!({"metadata": {"name": "owner"}}),
            &opts(),
            now,
            false,
        )
        .unwrap()
        .obj;
        let owner_uid = uid(&owner).to_string();
        create(
            &mut st,
            &cm,
            json!({"metadata": {"name": "child", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}]}}),
            &opts(),
            now,
            false,
        )
        .unwrap();
        create(
            &mut st,
            &cm,
            json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}),
            &opts(),
            now,
            false,
        )
        .unwrap();
        let del = target(&st, "configmaps", Some("a"), Some("owner"));
        delete(&mut st, &del, &DeleteOpts::default(), now).unwrap();
        let gr = GroupResource::new("", "configmaps");
        assert!(st.store.get(&gr, "a", "child").is_none());

        let delns = target(&st, "namespaces", None, Some("a"));
        delete(&mut st, &delns, &DeleteOpts::default(), now).unwrap();
        let nsgr = GroupResource::new("", "namespaces");
        let n = st.store.get(&nsgr, "", "a").unwrap();
        assert_eq!(n["status"]["phase"], "Terminating");
        let held = st.store.get(&gr, "a", "held").unwrap();
        assert!(held["metadata"].get("deletionTimestamp").is_some());
        // Removing the finalizer lets the namespace go.
        drop_finalizer(&mut st, &gr, &held, "x/y");
        settle(&mut st, now);
        assert!(st.store.get(&nsgr, "", "a").is_none());
    }

    fn owner_and_child(st: &mut State, now: DateTime<Utc>) -> (String, GroupResource) {
        let cm = target(st, "configmaps", Some("default"), None);
        let ns = target(st, "namespaces", None, None);
        let _ = create(
            st,
            &ns,
            json!({"metadata": {"name": "default"}}),
            &opts(),
            now,
            false,
        );
        let owner = create(
            st,
            &cm,
            json!({"metadata": {"name": "owner"}}),
            &opts(),
            now,
            false,
        )
        .unwrap()
        .obj;
        let owner_uid = uid(&owner).to_string();
        create(
            st,
            &cm,
            json!({"metadata": {"name": "child", "finalizers": ["x/y"], "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}]}}),
            &opts(),
            now,
            false,
        )
        .unwrap();
        (owner_uid, GroupResource::new("", "configmaps"))
    }

    #[test]
    fn foreground_waits_for_dependents() {
        let now = Utc::now();
        let mut st = State::new(100);
        let (_, gr) = owner_and_child(&mut st, now);
        let del = target(&st, "configmaps", Some("default"), Some("owner"));
        let d = DeleteOpts {
            propagation: Some("Foreground".into()),
            ..DeleteOpts::default()
        };
        delete(&mut st, &del, &d, now).unwrap();
        let owner = st.store.get(&gr, "default", "owner").unwrap();
        assert_eq!(
            owner["metadata"]["finalizers"],
            json!(["foregroundDeletion"])
        );
        let child = st.store.get(&gr, "default", "child").unwrap();
        assert!(child["metadata"].get("deletionTimestamp").is_some());
        // The child's own finalizer goes: child removed, then the owner.
        drop_finalizer(&mut st, &gr, &child, "x/y");
        settle(&mut st, now);
        assert!(st.store.get(&gr, "default", "child").is_none());
        assert!(st.store.get(&gr, "default", "owner").is_none());
    }

    #[test]
    fn orphan_strips_owner_references() {
        let now = Utc::now();
        let mut st = State::new(100);
        let (_, gr) = owner_and_child(&mut st, now);
        let del = target(&st, "configmaps", Some("default"), Some("owner"));
        let d = DeleteOpts {
            propagation: Some("Orphan".into()),
            ..DeleteOpts::default()
        };
        delete(&mut st, &del, &d, now).unwrap();
        assert!(st.store.get(&gr, "default", "owner").is_none());
        let child = st.store.get(&gr, "default", "child").unwrap();
        assert!(child["metadata"].get("ownerReferences").is_none());
        assert!(child["metadata"].get("deletionTimestamp").is_none());
    }
}
