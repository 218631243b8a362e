//! Indexed, cheaply snapshotted collections for a tenant's users and recipients.
//!
//! Every Exchange write snapshots its tenant so that a failed or `-WhatIf` call can be rolled
//! back; with thousands of recipients a deep clone per write dominated the simulator's cost and,
//! under the world lock, serialized both tenants. Elements are therefore shared (`Arc`): a
//! snapshot copies pointers, and a write clones only the element it changes
//! (`Arc::make_mut`).
//!
//! Lookups by identity go through hash indexes instead of scanning. An index is built lazily
//! from the elements on first use (a clone starts without one), and kept up to date on every
//! insert and on every mutable borrow of a recipient ([`RecipientMut`] unindexes the element
//! when borrowed and reindexes it when dropped). Index hits are always re-checked against the
//! element itself, and results are returned in element order, so answers are exactly those of
//! the linear scans they replace.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut, Index, IndexMut};
use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use super::state::{Recipient, User};

type Positions = Vec<u32>;

fn add_pos(map_entry: &mut Positions, i: u32) {
    // Positions are appended in increasing order on build; keep them sorted on updates too.
    if let Err(at) = map_entry.binary_search(&i) {
        map_entry.insert(at, i);
    }
}

fn remove_pos<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Positions>, key: &K, i: u32) {
    if let Some(v) = map.get_mut(key) {
        if let Ok(at) = v.binary_search(&i) {
            v.remove(at);
        }
        if v.is_empty() {
            map.remove(key);
        }
    }
}

fn pos(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// A lazily built index that a clone does not copy (it is rebuilt on demand).
struct Lazy<T>(OnceLock<T>);

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Self(OnceLock::new())
    }
}

impl<T> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<T> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "<index>"
        } else {
            "<no index>"
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Users

#[derive(Default)]
struct UserIndex {
    by_id: HashMap<Uuid, Positions>,
    /// ASCII-lowercased UPN.
    by_upn: HashMap<String, Positions>,
}

impl UserIndex {
    fn add(&mut self, i: u32, u: &User) {
        add_pos(self.by_id.entry(u.id).or_default(), i);
        add_pos(
            self.by_upn
                .entry(u.user_principal_name.to_ascii_lowercase())
                .or_default(),
            i,
        );
    }
}

/// A tenant's directory users. `id` and `user_principal_name` never change once a user is
/// added (the simulator has no rename), so mutable access needs no reindexing.
#[derive(Clone, Default, Debug)]
pub struct Users {
    items: Vec<Arc<User>>,
    index: Lazy<UserIndex>,
}

impl Users {
    fn index(&self) -> &UserIndex {
        self.index.0.get_or_init(|| {
            let mut ix = UserIndex::default();
            for (i, u) in self.items.iter().enumerate() {
                ix.add(pos(i), u);
            }
            ix
        })
    }

    pub fn push(&mut self, u: User) {
        let i = pos(self.items.len());
        if let Some(ix) = self.index.0.get_mut() {
            ix.add(i, &u);
        }
        self.items.push(Arc::new(u));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &User> + ExactSizeIterator + Clone {
        self.items.iter().map(|u| &**u)
    }

    pub fn last(&self) -> Option<&User> {
        self.items.last().map(|u| &**u)
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut User> {
        self.items.get_mut(i).map(Arc::make_mut)
    }

    /// Position of the user with this object id.
    pub fn position_by_id(&self, id: Uuid) -> Option<usize> {
        self.index()
            .by_id
            .get(&id)?
            .iter()
            .map(|&i| i as usize)
            .find(|&i| self.items[i].id == id)
    }

    pub fn by_id(&self, id: Uuid) -> Option<&User> {
        self.position_by_id(id).map(|i| &*self.items[i])
    }

    /// Position of the first user whose UPN equals `upn` ignoring ASCII case.
    pub fn position_by_upn(&self, upn: &str) -> Option<usize> {
        self.index()
            .by_upn
            .get(&upn.to_ascii_lowercase())?
            .iter()
            .map(|&i| i as usize)
            .find(|&i| self.items[i].user_principal_name.eq_ignore_ascii_case(upn))
    }
}

impl Index<usize> for Users {
    type Output = User;
    fn index(&self, i: usize) -> &User {
        &self.items[i]
    }
}

impl IndexMut<usize> for Users {
    fn index_mut(&mut self, i: usize) -> &mut User {
        Arc::make_mut(&mut self.items[i])
    }
}

impl<'a> IntoIterator for &'a Users {
    type Item = &'a User;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, Arc<User>>, fn(&Arc<User>) -> &User>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter().map(|u| &**u)
    }
}

// ---------------------------------------------------------------------------------------------
// Recipients

#[derive(Default)]
struct RecipientIndex {
    /// ASCII-lowercased name, alias, UPN, LegacyExchangeDN and the value of every `smtp:` proxy:
    /// the text forms [`Recipient::matches`] accepts.
    by_text: HashMap<String, Positions>,
    /// Guid, ExchangeGuid and ExternalDirectoryObjectId.
    by_guid: HashMap<Uuid, Positions>,
    /// Every proxy address, prefix included, ASCII-lowercased.
    by_proxy: HashMap<String, Positions>,
}

fn text_keys(r: &Recipient) -> impl Iterator<Item = String> + '_ {
    [
        r.name.as_str(),
        r.alias.as_str(),
        r.upn.as_str(),
        r.legacy_exchange_dn.as_str(),
    ]
    .into_iter()
    .chain(r.email_addresses.iter().filter_map(|a| {
        a.split_once(':')
            .filter(|(p, _)| p.eq_ignore_ascii_case("smtp"))
            .map(|(_, v)| v)
    }))
    .map(str::to_ascii_lowercase)
}

fn guid_keys(r: &Recipient) -> [Uuid; 3] {
    [r.guid, r.exchange_guid, r.user_id]
}

impl RecipientIndex {
    fn add(&mut self, i: u32, r: &Recipient) {
        for k in text_keys(r) {
            add_pos(self.by_text.entry(k).or_default(), i);
        }
        for g in guid_keys(r) {
            add_pos(self.by_guid.entry(g).or_default(), i);
        }
        for a in &r.email_addresses {
            add_pos(self.by_proxy.entry(a.to_ascii_lowercase()).or_default(), i);
        }
    }

    fn remove(&mut self, i: u32, r: &Recipient) {
        for k in text_keys(r) {
            remove_pos(&mut self.by_text, &k, i);
        }
        for g in guid_keys(r) {
            remove_pos(&mut self.by_guid, &g, i);
        }
        for a in &r.email_addresses {
            remove_pos(&mut self.by_proxy, &a.to_ascii_lowercase(), i);
        }
    }
}

/// A tenant's Exchange recipients, indexed by every identity form Exchange resolves.
#[derive(Clone, Default, Debug)]
pub struct Recipients {
    items: Vec<Arc<Recipient>>,
    index: Lazy<RecipientIndex>,
}

impl Recipients {
    fn index(&self) -> &RecipientIndex {
        self.index.0.get_or_init(|| {
            let mut ix = RecipientIndex::default();
            for (i, r) in self.items.iter().enumerate() {
                ix.add(pos(i), r);
            }
            ix
        })
    }

    pub fn push(&mut self, r: Recipient) {
        let i = pos(self.items.len());
        if let Some(ix) = self.index.0.get_mut() {
            ix.add(i, &r);
        }
        self.items.push(Arc::new(r));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Recipient> + ExactSizeIterator + Clone {
        self.items.iter().map(|r| &**r)
    }

    /// Mutable access to one recipient; the indexes follow whatever the caller changes.
    ///
    /// Panics when `i` is out of bounds, like slice indexing.
    pub fn get_mut(&mut self, i: usize) -> RecipientMut<'_> {
        let p = pos(i);
        if let Some(ix) = self.index.0.get_mut() {
            ix.remove(p, &self.items[i]);
        }
        RecipientMut { store: self, i }
    }

    fn candidates<'a>(
        &'a self,
        list: Option<&'a Positions>,
    ) -> impl Iterator<Item = (usize, &'a Recipient)> + 'a {
        list.into_iter()
            .flatten()
            .map(move |&i| (i as usize, &*self.items[i as usize]))
    }

    /// The first recipient (in order) that [`Recipient::matches`] `identity`.
    pub fn find(&self, identity: &str) -> Option<usize> {
        let id = identity.trim();
        let ix = self.index();
        let by_text = self
            .candidates(ix.by_text.get(&id.to_ascii_lowercase()))
            .find(|(_, r)| r.matches(identity))
            .map(|(i, _)| i);
        let by_guid = Uuid::parse_str(id).ok().and_then(|g| {
            self.candidates(ix.by_guid.get(&g))
                .find(|(_, r)| r.matches(identity))
                .map(|(i, _)| i)
        });
        match (by_text, by_guid) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first recipient whose `Name` equals `name` ignoring ASCII case.
    pub fn position_by_name(&self, name: &str) -> Option<usize> {
        self.candidates(self.index().by_text.get(&name.to_ascii_lowercase()))
            .find(|(_, r)| r.name.eq_ignore_ascii_case(name))
            .map(|(i, _)| i)
    }

    /// The first recipient with this object Guid.
    pub fn position_by_guid(&self, guid: Uuid) -> Option<usize> {
        self.candidates(self.index().by_guid.get(&guid))
            .find(|(_, r)| r.guid == guid)
            .map(|(i, _)| i)
    }

    pub fn by_guid(&self, guid: Uuid) -> Option<&Recipient> {
        self.position_by_guid(guid).map(|i| &*self.items[i])
    }

    /// The first recipient backed by this directory user.
    pub fn position_by_user(&self, user_id: Uuid) -> Option<usize> {
        self.candidates(self.index().by_guid.get(&user_id))
            .find(|(_, r)| r.user_id == user_id)
            .map(|(i, _)| i)
    }

    pub fn by_user(&self, user_id: Uuid) -> Option<&Recipient> {
        self.position_by_user(user_id).map(|i| &*self.items[i])
    }

    /// Recipients (in order) with this ExchangeGuid.
    pub fn with_exchange_guid(&self, g: Uuid) -> impl Iterator<Item = (usize, &Recipient)> {
        self.candidates(self.index().by_guid.get(&g))
            .filter(move |(_, r)| r.exchange_guid == g)
    }

    /// Recipients (in order) holding proxy address `addr` (prefix included, ASCII case
    /// ignored).
    pub fn with_proxy<'a>(
        &'a self,
        addr: &'a str,
    ) -> impl Iterator<Item = (usize, &'a Recipient)> + 'a {
        self.candidates(self.index().by_proxy.get(&addr.to_ascii_lowercase()))
            .filter(move |(_, r)| {
                r.email_addresses
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(addr))
            })
    }
}

impl Index<usize> for Recipients {
    type Output = Recipient;
    fn index(&self, i: usize) -> &Recipient {
        &self.items[i]
    }
}

impl<'a> IntoIterator for &'a Recipients {
    type Item = &'a Recipient;
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, Arc<Recipient>>, fn(&Arc<Recipient>) -> &Recipient>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter().map(|r| &**r)
    }
}

/// A mutable borrow of one recipient that reindexes it when dropped.
pub struct RecipientMut<'a> {
    store: &'a mut Recipients,
    i: usize,
}

impl Deref for RecipientMut<'_> {
    type Target = Recipient;
    fn deref(&self) -> &Recipient {
        &self.store.items[self.i]
    }
}

impl DerefMut for RecipientMut<'_> {
    fn deref_mut(&mut self) -> &mut Recipient {
        Arc::make_mut(&mut self.store.items[self.i])
    }
}

impl Drop for RecipientMut<'_> {
    fn drop(&mut self) {
        let i = self.i;
        let items = &self.store.items;
        if let Some(ix) = self.store.index.0.get_mut() {
            ix.add(pos(i), &items[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::state::{Holds, RecipientKind};
    use chrono::Utc;

    fn rcpt(name: &str, addrs: &[&str]) -> Recipient {
        Recipient {
            guid: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            upn: format!("{name}@contoso.com"),
            name: name.into(),
            alias: name.into(),
            display_name: name.into(),
            kind: RecipientKind::MailUser,
            email_addresses: addrs.iter().map(|s| s.to_string()).collect(),
            exchange_guid: Uuid::nil(),
            archive_guid: Uuid::nil(),
            legacy_exchange_dn: format!("/o=x/cn={name}"),
            external_email_address: None,
            size_bytes: 0,
            item_count: 0,
            archive_size_bytes: 0,
            aux_archives: 0,
            holds: Holds::default(),
            total_deleted_item_bytes: 0,
            substrate_holds_items: 0,
            recoverable_items_quota_bytes: 0,
            grant_send_on_behalf_to: Vec::new(),
            previous_recipient_type_details: None,
            previous_exchange_guid: None,
            when_created: Utc::now(),
        }
    }

    /// The indexed lookups answer exactly what a scan with `matches` answers, before and after
    /// mutations, and in a clone (which rebuilds its index).
    #[test]
    fn index_agrees_with_scan_through_mutations() {
        let mut s = Recipients::default();
        s.push(rcpt("alice", &["SMTP:alice@contoso.com", "smtp:a@x.com"]));
        s.push(rcpt("bob", &["SMTP:bob@contoso.com", "X500:/o=old/cn=bob"]));
        let probe = |s: &Recipients, id: &str| {
            let scan = s.iter().position(|r| r.matches(id));
            assert_eq!(s.find(id), scan, "identity {id}");
        };
        let ids = |s: &Recipients| -> Vec<String> {
            let mut v = vec![
                "ALICE".to_string(),
                " a@X.com ".into(),
                "bob@contoso.com".into(),
                "/o=old/cn=bob".into(),
                "nobody".into(),
                "new@y.com".into(),
                "carol".into(),
            ];
            for r in s.iter() {
                v.extend([r.guid, r.user_id, r.exchange_guid].map(|g| g.to_string()));
                v.push(r.legacy_exchange_dn.to_uppercase());
            }
            v
        };
        for id in ids(&s) {
            probe(&s, &id);
        }
        let g = Uuid::new_v4();
        {
            let mut r = s.get_mut(1);
            r.exchange_guid = g;
            r.email_addresses.push("smtp:new@y.com".into());
            r.name = "carol".into();
        }
        for id in ids(&s) {
            probe(&s, &id);
        }
        assert_eq!(
            s.with_exchange_guid(g).map(|(i, _)| i).collect::<Vec<_>>(),
            [1]
        );
        assert_eq!(s.with_proxy("SMTP:NEW@Y.COM").count(), 1);
        assert_eq!(s.position_by_name("Carol"), Some(1));
        assert_eq!(s.position_by_name("bob"), None);
        let c = s.clone();
        for id in ids(&c) {
            probe(&c, &id);
        }
        // A shared element is copied on write: the clone keeps the old value.
        s.get_mut(0).display_name = "changed".into();
        assert_eq!(c[0].display_name, "alice");
        assert_eq!(s[0].display_name, "changed");
    }

    #[test]
    fn users_index_by_id_and_upn() {
        let mut u = Users::default();
        let id = Uuid::new_v4();
        u.push(User {
            id,
            user_principal_name: "Ann@Contoso.com".into(),
            display_name: "Ann".into(),
            mail: None,
            usage_location: None,
            assigned_licenses: Vec::new(),
            account_enabled: true,
            created: Utc::now(),
        });
        assert_eq!(u.position_by_upn("ann@contoso.COM"), Some(0));
        assert_eq!(u.by_id(id).map(|x| x.display_name.as_str()), Some("Ann"));
        assert_eq!(u.position_by_id(Uuid::new_v4()), None);
        let c = u.clone();
        u[0].display_name = "Anne".into();
        assert_eq!(c[0].display_name, "Ann");
        assert_eq!(c.position_by_upn("ANN@contoso.com"), Some(0));
    }
}
