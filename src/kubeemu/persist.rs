//! Optional persistence: the whole object set as one JSON file, rewritten after every write
//! (atomically, via rename) and loaded at start. Watch history is not persisted: clients that
//! resume from a pre-restart resourceVersion get 410 and relist, as after etcd compaction.

use std::path::Path;

use serde_json::{Value, json};

use super::ops::{State, register_crd};
use super::store::GroupResource;

const FILE: &str = "kubeemu-state.json";

pub fn snapshot(st: &State) -> Value {
    let objects: Vec<Value> = st
        .store
        .snapshot()
        .into_iter()
        .map(|(gr, o)| json!({"group": gr.group, "resource": gr.resource, "object": *o}))
        .collect();
    json!({"resourceVersion": st.store.current_rv(), "objects": objects})
}

pub fn save(dir: &Path, snap: &Value) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, snap.to_string()).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join(FILE)).map_err(|e| e.to_string())
}

/// Loads a saved state; Ok(false) when there is none yet.
pub fn load(dir: &Path, st: &mut State) -> Result<bool, String> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let snap: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let rv = snap["resourceVersion"].as_u64().unwrap_or(1);
    let mut objects = Vec::new();
    for o in snap["objects"].as_array().cloned().unwrap_or_default() {
        let gr = GroupResource::new(
            o["group"].as_str().unwrap_or_default(),
            o["resource"].as_str().unwrap_or_default(),
        );
        objects.push((gr, o["object"].clone()));
    }
    let crd_gr = GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions");
    let crds: Vec<Value> = objects
        .iter()
        .filter(|(gr, _)| *gr == crd_gr)
        .map(|(_, o)| o.clone())
        .collect();
    st.store.restore(rv, objects);
    for c in crds {
        register_crd(st, &c);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = State::new(10);
        st.store.put(
            &GroupResource::new("", "configmaps"),
            json!({"metadata": {"namespace": "d", "name": "c"}}),
        );
        save(dir.path(), &snapshot(&st)).unwrap();
        let mut st2 = State::new(10);
        assert!(load(dir.path(), &mut st2).unwrap());
        assert_eq!(st2.store.current_rv(), st.store.current_rv());
        assert!(
            st2.store
                .get(&GroupResource::new("", "configmaps"), "d", "c")
                .is_some()
        );
    }
}
