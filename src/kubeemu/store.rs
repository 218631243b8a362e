//! Object storage: objects keyed by (group, resource) then (namespace, name), one global
//! resourceVersion counter shared by every kind (like an etcd revision), and a bounded event log
//! that watches replay from. Pure data structure: no IO, no clock, no locking.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

/// Storage identity of a resource: versions share storage, so the version is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

/// (namespace, name); cluster-scoped objects use an empty namespace.
pub type ObjKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches replay it. `prev` lets a filtered watch turn a change that makes an
/// object stop (or start) matching its selector into DELETED (or ADDED), as the apiserver does.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub rv: u64,
    pub gr: GroupResource,
    pub event: EventType,
    pub object: Arc<Value>,
    pub prev: Option<Arc<Value>>,
}

/// Asked for history that compaction already dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too old resource version: {requested} ({oldest})")]
pub struct TooOld {
    pub requested: u64,
    /// The oldest resourceVersion a watch can still start from.
    pub oldest: u64,
}

#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: HashMap<GroupResource, BTreeMap<ObjKey, Arc<Value>>>,
    log: VecDeque<LogEntry>,
    history_limit: usize,
    /// Every event with rv > `compacted` is still in `log`.
    compacted: u64,
    /// How many objects were ever removed (garbage collection runs only after removals).
    removals: u64,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Store {
            rv: 1,
            objects: HashMap::new(),
            log: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 1,
            removals: 0,
        }
    }

    pub fn removals(&self) -> u64 {
        self.removals
    }

    /// The current revision: what lists report as their resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(gr)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
    }

    /// Objects of a resource sorted by (namespace, name); `ns = None` means all namespaces.
    pub fn list(&self, gr: &GroupResource, ns: Option<&str>) -> Vec<Arc<Value>> {
        let Some(m) = self.objects.get(gr) else {
            return Vec::new();
        };
        match ns {
            None => m.values().cloned().collect(),
            Some(ns) => m
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// Every resource that currently has objects (GC and namespace cleanup walk these).
    pub fn resources(&self) -> Vec<GroupResource> {
        let mut v: Vec<GroupResource> = self
            .objects
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    pub fn count(&self) -> usize {
        self.objects.values().map(|m| m.len()).sum()
    }

    /// Stores `obj` (created or modified) under the next resourceVersion, which is written into
    /// `metadata.resourceVersion`. Returns the stored object.
    pub fn put(&mut self, gr: &GroupResource, mut obj: Value) -> Arc<Value> {
        let (ns, name) = obj_key(&obj);
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        let obj = Arc::new(obj);
        let prev = self
            .objects
            .entry(gr.clone())
            .or_default()
            .insert((ns, name), obj.clone());
        let event = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(gr, event, obj.clone(), prev);
        obj
    }

    /// Rewrites stored objects without a new resourceVersion or event: for read-time
    /// transformations (defaulting after a CRD schema change). `f` returns the replacement.
    pub fn map_in_place(&mut self, gr: &GroupResource, f: impl Fn(&Value) -> Option<Value>) {
        if let Some(m) = self.objects.get_mut(gr) {
            for v in m.values_mut() {
                if let Some(new) = f(v) {
                    *v = Arc::new(new);
                }
            }
        }
    }

    /// Removes an object; the DELETED event (and the returned object) carry the deletion's RV.
    pub fn remove(&mut self, gr: &GroupResource, ns: &str, name: &str) -> Option<Arc<Value>> {
        let prev = self
            .objects
            .get_mut(gr)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        self.removals += 1;
        let mut obj = (*prev).clone();
        set_rv(&mut obj, self.rv);
        let obj = Arc::new(obj);
        self.record(gr, EventType::Deleted, obj.clone(), Some(prev));
        Some(obj)
    }

    fn record(
        &mut self,
        gr: &GroupResource,
        event: EventType,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
    ) {
        self.log.push_back(LogEntry {
            rv: self.rv,
            gr: gr.clone(),
            event,
            object,
            prev,
        });
        while self.log.len() > self.history_limit {
            if let Some(e) = self.log.pop_front() {
                self.compacted = e.rv;
            }
        }
    }

    /// Events of `gr` with rv > `since`. Err when `since` predates the retained history.
    pub fn events_since(&self, gr: &GroupResource, since: u64) -> Result<Vec<LogEntry>, TooOld> {
        if since < self.compacted {
            return Err(TooOld {
                requested: since,
                oldest: self.compacted,
            });
        }
        // The log is sorted by rv; skip what the caller has already seen.
        let start = self.log.partition_point(|e| e.rv <= since);
        Ok(self
            .log
            .range(start..)
            .filter(|e| &e.gr == gr)
            .cloned()
            .collect())
    }

    /// Whether a list/continue snapshot at `rv` could still be served "exactly".
    pub fn is_compacted(&self, rv: u64) -> bool {
        rv < self.compacted
    }

    /// Drops all history: every watch from an older RV now gets 410 (tests use this to force a relist).
    pub fn compact_all(&mut self) {
        self.log.clear();
        self.compacted = self.rv;
    }

    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
    }

    /// Restores objects (from a persisted snapshot) without recording events.
    pub fn restore(&mut self, rv: u64, objects: Vec<(GroupResource, Value)>) {
        for (gr, obj) in objects {
            let key = obj_key(&obj);
            self.objects
                .entry(gr)
                .or_default()
                .insert(key, Arc::new(obj));
        }
        self.rv = self.rv.max(rv);
        self.compacted = self.rv;
    }

    /// Every object with its resource (for persistence).
    pub fn snapshot(&self) -> Vec<(GroupResource, Arc<Value>)> {
        let mut out = Vec::new();
        for (gr, m) in &self.objects {
            for v in m.values() {
                out.push((gr.clone(), v.clone()));
            }
        }
        out
    }
}

pub fn obj_key(obj: &Value) -> ObjKey {
    let md = &obj["metadata"];
    (
        md["namespace"].as_str().unwrap_or_default().to_string(),
        md["name"].as_str().unwrap_or_default().to_string(),
    )
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        md.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// Parses a `metadata.resourceVersion`-style string.
pub fn parse_rv(s: &str) -> Option<u64> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(ns: &str, name: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}})
    }

    #[test]
    fn rv_is_global_and_monotonic() {
        let mut s = Store::new(100);
        let a = GroupResource::new("", "configmaps");
        let b = GroupResource::new("", "secrets");
        let o1 = s.put(&a, cm("ns", "x"));
        let o2 = s.put(&b, cm("ns", "y"));
        assert_eq!(o1["metadata"]["resourceVersion"], "2");
        assert_eq!(o2["metadata"]["resourceVersion"], "3");
        assert_eq!(s.current_rv(), 3);
        let d = s.remove(&a, "ns", "x").unwrap();
        assert_eq!(d["metadata"]["resourceVersion"], "4");
        assert!(s.get(&a, "ns", "x").is_none());
    }

    #[test]
    fn list_is_sorted_and_namespace_filtered() {
        let mut s = Store::new(100);
        let a = GroupResource::new("", "configmaps");
        s.put(&a, cm("b", "2"));
        s.put(&a, cm("a", "9"));
        s.put(&a, cm("b", "1"));
        s.put(&a, cm("bb", "0"));
        let names: Vec<String> = s
            .list(&a, Some("b"))
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["1", "2"]);
        assert_eq!(s.list(&a, None).len(), 4);
    }

    #[test]
    fn events_since_filters_and_compacts() {
        let mut s = Store::new(3);
        let a = GroupResource::new("", "configmaps");
        let b = GroupResource::new("", "secrets");
        s.put(&a, cm("n", "1")); // rv 2
        s.put(&b, cm("n", "1")); // rv 3
        s.put(&a, cm("n", "1")); // rv 4
        let ev = s.events_since(&a, 2).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event, EventType::Modified);
        s.put(&a, cm("n", "2")); // rv 5, drops rv 2
        assert!(s.events_since(&a, 1).is_err());
        assert_eq!(s.events_since(&a, 2).unwrap().len(), 2);
        s.compact_all();
        let err = s.events_since(&a, 4).unwrap_err();
        assert_eq!(err.to_string(), "too old resource version: 4 (5)");
        assert!(s.events_since(&a, 5).unwrap().is_empty());
    }
}
