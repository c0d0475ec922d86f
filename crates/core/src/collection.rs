//! A collection in memory: the synced state from the server, the pending optimistic writes on
//! top of it, and the visible view (synced + pending) that reads and subscribers see.
//!
//! Every change to the view goes through one place (`show`), which keeps the indexes and the
//! live queries current: local, remote, rolled back or optimistic, each change reaches them.

use crate::doc_set::{DocSet, FastBuild};
use crate::document::Document;
use crate::hlc::Hlc;
use crate::index::{IndexInfo, Indexes};
use crate::live_query::{LiveId, LiveQueries};
use crate::mutation::Op;
use crate::query::{plan, Access, Query};
use crate::scheduler::MergeFn;
use crate::transaction::TxId;
use crate::DocId;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;

/// How a document changed in the visible view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// It appeared.
    Added,
    /// Its content changed (a soft delete is an update to a tombstone).
    Updated,
    /// It is gone from the view (rolled back or hard-deleted).
    Removed,
}
crate::deserialize_unit_enum!(ChangeKind {
    Added = "added",
    Updated = "updated",
    Removed = "removed",
});

/// One change to the visible view, as subscribers receive it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocChange {
    /// The collection.
    pub collection: String,
    /// The document.
    pub id: DocId,
    /// What happened.
    pub kind: ChangeKind,
    /// The document now (absent when removed).
    pub doc: Option<Document>,
}

crate::deserialize_object!(DocChange {
    "collection" => collection: String,
    "id" => id: DocId,
    "kind" => kind: ChangeKind,
    "doc" => doc: Option<Document> = default,
});

#[derive(Debug, Clone)]
struct PendingWrite {
    tx: TxId,
    op: Op,
    hlc: Hlc,
}

/// One collection's documents. Each document is held once: the synced state, and for the
/// documents that pending writes change, the view they make of it (`overlay`).
#[derive(Debug, Clone)]
pub struct Collection {
    name: String,
    synced: DocSet,
    pending: HashMap<DocId, Vec<PendingWrite>, FastBuild>,
    /// The visible state of every document with pending writes (`None`: nothing shows).
    overlay: HashMap<DocId, Option<Document>, FastBuild>,
    live: usize,
    /// Reads build indexes when they first need them, and count scans towards automatic ones.
    indexes: RefCell<Indexes>,
    queries: LiveQueries,
}

/// The visible documents, as queries read them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'c> {
    synced: &'c DocSet,
    overlay: &'c HashMap<DocId, Option<Document>, FastBuild>,
    live: usize,
}

impl<'c> View<'c> {
    /// The visible document, tombstones included.
    pub(crate) fn get(&self, id: &str) -> Option<&'c Document> {
        match self.overlay.get(id) {
            Some(shown) => shown.as_ref(),
            None => self.synced.get(id),
        }
    }

    /// Every visible document, tombstones included, in no particular order.
    pub(crate) fn docs(&self) -> impl Iterator<Item = &'c Document> + 'c {
        let overlay = self.overlay;
        self.synced
            .iter()
            .filter(move |doc| overlay.is_empty() || !overlay.contains_key(doc.id()))
            .chain(overlay.values().flatten())
    }

    /// At least as many as the visible documents.
    pub(crate) fn len(&self) -> usize {
        self.synced.len() + self.overlay.len()
    }

    /// The visible documents that are not soft-deleted.
    pub(crate) fn live(&self) -> usize {
        self.live
    }
}

impl Collection {
    /// An empty collection.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            synced: DocSet::default(),
            pending: HashMap::default(),
            overlay: HashMap::default(),
            live: 0,
            indexes: RefCell::default(),
            queries: LiveQueries::default(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn view(&self) -> View<'_> {
        View {
            synced: &self.synced,
            overlay: &self.overlay,
            live: self.live,
        }
    }

    /// The visible document, tombstones included.
    pub fn get(&self, id: &str) -> Option<&Document> {
        self.view().get(id)
    }

    /// The last state confirmed by the server (or, for a local-only collection, by storage).
    pub fn synced(&self, id: &str) -> Option<&Document> {
        self.synced.get(id)
    }

    /// Marks synced document `id` for the history if `held` accepts it; returns whether it
    /// did (see [`Document::history_marked`]).
    pub(crate) fn mark_synced(&mut self, id: &str, held: impl FnOnce(&Document) -> bool) -> bool {
        self.synced.mark_for_history(id, held)
    }

    /// Every visible document, tombstones included, in no particular order.
    pub fn docs(&self) -> impl Iterator<Item = &Document> {
        self.view().docs()
    }

    /// Every synced document (what storage holds).
    pub fn synced_docs(&self) -> impl Iterator<Item = &Document> {
        self.synced.iter()
    }

    /// Runs a query over the visible view: from the live query maintaining it, through an
    /// index, or by a scan (see [`Collection::explain`]).
    pub fn find(&self, query: &Query) -> Vec<&Document> {
        let view = self.view();
        match self.queries.results(query, &view) {
            Some(results) => results,
            None => plan::find(query, &view, &mut self.indexes.borrow_mut(), true),
        }
    }

    /// Calls `each` with the ids of the documents `find(query)` returns, in order (through an
    /// index whose entries all match the query, without reading a document).
    pub fn find_ids(&self, query: &Query, mut each: impl FnMut(&str)) {
        match self.queries.ids(query) {
            Some(ids) => ids.for_each(each),
            None => plan::find_ids(
                query,
                &self.view(),
                &mut self.indexes.borrow_mut(),
                &mut each,
            ),
        }
    }

    /// The number of visible documents that are not soft-deleted.
    pub fn count(&self) -> usize {
        self.live
    }

    /// How many visible documents `find(query)` would return.
    pub fn count_matching(&self, query: &Query) -> usize {
        match self.queries.count(query) {
            Some(count) => count,
            None => plan::count(query, &self.view(), &mut self.indexes.borrow_mut(), true),
        }
    }

    /// How `find(query)` would be answered.
    pub fn explain(&self, query: &Query) -> Access {
        if self.queries.maintains(query) {
            return Access::Live;
        }
        plan::explain(query, &self.view(), &mut self.indexes.borrow_mut())
    }

    /// Declares an index on `fields` (one field, or several, most significant first). It is
    /// built when a query first needs it.
    pub fn declare_index(&mut self, fields: Vec<String>) {
        self.indexes.get_mut().declare(fields);
    }

    /// The indexes, declared and automatic.
    pub fn indexes(&self) -> Vec<IndexInfo> {
        self.indexes.borrow().info()
    }

    /// Starts following `query` (or joins the live query that follows it): `find` and
    /// `count_matching` with it read the maintained results, and every change to its window
    /// waits in [`Collection::take_live_changes`].
    pub fn watch(&mut self, query: Query) -> LiveId {
        let view = View {
            synced: &self.synced,
            overlay: &self.overlay,
            live: self.live,
        };
        self.queries.watch(query, &view, self.indexes.get_mut())
    }

    /// Leaves a live query (it ends with its last subscriber).
    pub fn unwatch(&mut self, id: LiveId) {
        self.queries.unwatch(id);
    }

    /// The changes to each live query's window since the last call.
    pub fn take_live_changes(&mut self) -> Vec<(LiveId, Vec<DocChange>)> {
        self.queries.take_changes()
    }

    /// Rebuilds what is derived from the visible documents (the count, indexes, live queries)
    /// after they were filled without `show`, by a bulk load. Live queries report what left and
    /// entered their windows, and the rest as updated.
    pub fn index_all(&mut self) {
        // The load counted them as it stored them (reading every document again here would
        // touch every document's block).
        debug_assert_eq!(self.live, self.docs().filter(|d| !d.deleted()).count());
        let indexes = self.indexes.get_mut();
        indexes.reset();
        let view = View {
            synced: &self.synced,
            overlay: &self.overlay,
            live: self.live,
        };
        self.queries.refresh(&self.name, &view, indexes);
    }

    /// Whether any unfinished transaction writes this document.
    pub fn has_pending(&self, id: &str) -> bool {
        self.pending.contains_key(id)
    }

    /// Adds an optimistic write of transaction `tx` on top of the document.
    pub fn add_pending(
        &mut self,
        tx: TxId,
        id: &str,
        op: Op,
        hlc: Hlc,
        merge: Option<&MergeFn>,
    ) -> Option<DocChange> {
        let old = self.get(id).cloned();
        // Without a merge function the view is the writes folded over the synced document, so a
        // new write applies to the current view: O(1) instead of replaying the document's queue.
        let next = match merge {
            None => Some(op.apply(id, old.as_ref(), hlc)),
            Some(_) => None,
        };
        // Most documents get one write: room for one, not the four a first push makes.
        self.pending
            .entry(id.to_owned())
            .or_insert_with(|| Vec::with_capacity(1))
            .push(PendingWrite { tx, op, hlc });
        match next {
            Some(Ok(doc)) => self.show(id, old, Some(doc)),
            Some(Err(_)) => {
                self.overlay.insert(id.to_owned(), old);
                None
            }
            None => self.recompute(id, old, merge),
        }
    }

    /// Replaces transaction `tx`'s writes to the document with `ops` (after a conflict was
    /// resolved), keeping their place in the order.
    pub fn replace_pending(
        &mut self,
        tx: TxId,
        id: &str,
        ops: Vec<Op>,
        merge: Option<&MergeFn>,
    ) -> Option<DocChange> {
        let old = self.get(id).cloned();
        if let Some(writes) = self.pending.get_mut(id) {
            let hlc = writes.iter().find(|w| w.tx == tx).map(|w| w.hlc);
            let at = writes.iter().position(|w| w.tx == tx);
            writes.retain(|w| w.tx != tx);
            if let (Some(at), Some(hlc)) = (at, hlc) {
                let new = ops.into_iter().map(|op| PendingWrite { tx, op, hlc });
                writes.splice(at..at, new);
            }
            if writes.is_empty() {
                self.pending.remove(id);
            }
        }
        self.recompute(id, old, merge)
    }

    /// Drops transaction `tx`'s writes to the document (it completed or was rolled back).
    pub fn remove_pending(
        &mut self,
        tx: TxId,
        id: &str,
        merge: Option<&MergeFn>,
    ) -> Option<DocChange> {
        let old = self.get(id).cloned();
        if let Some(writes) = self.pending.get_mut(id) {
            writes.retain(|w| w.tx != tx);
            if writes.is_empty() {
                self.pending.remove(id);
            }
        }
        self.recompute(id, old, merge)
    }

    /// Stores a document from the server if it is newer than the synced one (a re-delivered or
    /// reordered older version is ignored). Returns whether it was stored, and the view change.
    pub fn apply_remote(
        &mut self,
        doc: Document,
        merge: Option<&MergeFn>,
    ) -> (bool, Option<DocChange>) {
        if self
            .synced
            .get(doc.id())
            .is_some_and(|old| old.version() >= doc.version())
        {
            return (false, None);
        }
        (true, self.set_synced(doc, merge))
    }

    /// Stores a synced document while loading, replacing any before it: nothing is reported
    /// (nobody watches yet) and no pending write may exist. Indexes and live queries follow
    /// when the load ends ([`Collection::index_all`]).
    pub fn load_synced(&mut self, doc: Document) {
        let live = !doc.deleted();
        if self.synced.insert(doc).is_some_and(|old| !old.deleted()) {
            self.live -= 1;
        }
        self.live += usize::from(live);
    }

    /// Makes room for about `additional` more synced documents before a load stores them.
    pub fn reserve_loaded(&mut self, additional: usize) {
        self.synced.reserve(additional);
    }

    /// Removes a synced document while loading (it was removed for good later).
    pub fn unload(&mut self, id: &str) {
        if self.synced.remove(id).is_some_and(|old| !old.deleted()) {
            self.live -= 1;
        }
    }

    /// Stores a document as synced unconditionally (local-only collections).
    pub fn set_synced(&mut self, doc: Document, merge: Option<&MergeFn>) -> Option<DocChange> {
        let id = doc.id().to_owned();
        let old = self.get(&id).cloned();
        self.synced.insert(doc);
        self.recompute(&id, old, merge)
    }

    /// Gives document `from` the id `to` (a backend assigned its own id): its synced state and
    /// pending writes move over, after any `to` already has. Reports both view changes, one
    /// after the other (`from` is gone from the view before `to` changes).
    pub fn rename(&mut self, from: &str, to: &str, merge: Option<&MergeFn>) -> Vec<DocChange> {
        if from == to {
            return Vec::new();
        }
        let old_from = self.get(from).cloned();
        let moved = self.synced.remove(from);
        let writes = self.pending.remove(from);
        let gone = self.recompute(from, old_from, merge);
        let old_to = self.get(to).cloned();
        if let Some(doc) = moved {
            if !self.synced.contains(to) {
                let renamed =
                    Document::new(to, doc.fields(), doc.version(), doc.hlc(), doc.deleted());
                self.synced.insert(renamed);
            }
        }
        if let Some(writes) = writes {
            self.pending
                .entry(to.to_owned())
                .or_default()
                .extend(writes);
        }
        gone.into_iter()
            .chain(self.recompute(to, old_to, merge))
            .collect()
    }

    /// Removes the local copy for good (`hardDelete`).
    pub fn remove(&mut self, id: &str, merge: Option<&MergeFn>) -> Option<DocChange> {
        let old = self.get(id).cloned();
        self.synced.remove(id);
        self.recompute(id, old, merge)
    }

    /// Recomputes the visible document from synced + pending writes and reports the change
    /// from `old`, what was visible before.
    fn recompute(
        &mut self,
        id: &str,
        old: Option<Document>,
        merge: Option<&MergeFn>,
    ) -> Option<DocChange> {
        let synced = self.synced.get(id);
        let writes = self.pending.get(id);
        let mut doc = synced.cloned();
        for write in writes.into_iter().flatten() {
            // A write that no longer applies (the document was deleted remotely) shows nothing;
            // the server will reject it and the transaction will roll back.
            if let Ok(next) = write.op.apply(id, doc.as_ref(), write.hlc) {
                doc = Some(next);
            }
        }
        if let (Some(merge), Some(synced), Some(pending), true) =
            (merge, synced, doc.as_ref(), writes.is_some())
        {
            doc = Some(merge(synced, pending));
        }
        self.show(id, old, doc)
    }

    /// Makes `doc` the visible document (in the overlay while the document has pending
    /// writes; otherwise it is the synced one) and reports the change from `old`, if users
    /// can see one.
    fn show(
        &mut self,
        id: &str,
        old: Option<Document>,
        doc: Option<Document>,
    ) -> Option<DocChange> {
        if self.pending.contains_key(id) {
            self.overlay.insert(id.to_owned(), doc.clone());
        } else {
            self.overlay.remove(id);
        }
        let was_live = old.as_ref().is_some_and(|d| !d.deleted());
        let is_live = doc.as_ref().is_some_and(|d| !d.deleted());
        self.live = self.live + usize::from(is_live) - usize::from(was_live);
        let kind = match (&old, &doc) {
            (None, None) => return None,
            // Only what users see counts: a new server version of the same content is silent.
            (Some(a), Some(b)) if a.fields() == b.fields() && a.deleted() == b.deleted() => {
                return None
            }
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), Some(_)) => ChangeKind::Updated,
            (Some(_), None) => ChangeKind::Removed,
        };
        self.follow(id, old.as_ref(), doc.as_ref());
        Some(DocChange {
            collection: self.name.clone(),
            id: id.to_owned(),
            kind,
            doc,
        })
    }

    /// Brings the indexes and live queries up to a change the view shows.
    fn follow(&mut self, id: &str, old: Option<&Document>, new: Option<&Document>) {
        let indexes = self.indexes.get_mut();
        indexes.update(id, old, new);
        if !self.queries.is_empty() {
            let view = View {
                synced: &self.synced,
                overlay: &self.overlay,
                live: self.live,
            };
            self.queries
                .update(&self.name, id, old, new, &view, indexes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: serde_json::Value) -> crate::document::Fields {
        v.as_object().unwrap().clone().into()
    }

    fn remote(id: &str, version: u64, v: serde_json::Value) -> Document {
        Document::new(id, fields(v), version, Hlc::default(), false)
    }

    #[test]
    fn the_visible_view_is_synced_plus_pending_writes() {
        let mut c = Collection::new("todos");
        c.apply_remote(remote("a", 1, json!({"t": 1, "n": 0})), None);
        let change = c
            .add_pending(
                TxId(1),
                "a",
                Op::Update {
                    patch: fields(json!({"n": 5})),
                },
                Hlc::default(),
                None,
            )
            .unwrap();
        assert_eq!(change.kind, ChangeKind::Updated);
        assert_eq!(
            c.get("a").unwrap().fields(),
            fields(json!({"t": 1, "n": 5}))
        );
        // A newer server version arrives: the pending write is re-applied on top of it.
        c.apply_remote(remote("a", 2, json!({"t": 2, "n": 0})), None);
        assert_eq!(
            c.get("a").unwrap().fields(),
            fields(json!({"t": 2, "n": 5}))
        );
        // An older, re-delivered version is ignored.
        assert!(!c.apply_remote(remote("a", 1, json!({"t": 1})), None).0);
        // Rolling back shows the synced document again.
        c.remove_pending(TxId(1), "a", None);
        assert_eq!(
            c.get("a").unwrap().fields(),
            fields(json!({"t": 2, "n": 0}))
        );
        assert_eq!(c.count(), 1);
    }

    #[test]
    fn a_custom_merge_decides_what_shows_over_newer_synced_state() {
        let merge: MergeFn = std::rc::Rc::new(|synced: &Document, pending: &Document| {
            let mut doc = pending.clone();
            let t = synced.fields().get("t").unwrap();
            doc.set_fields(doc.fields().merge(&fields(json!({"t": t, "merged": true}))));
            doc
        });
        let mut c = Collection::new("todos");
        c.apply_remote(remote("a", 1, json!({"t": 1})), Some(&merge));
        c.add_pending(
            TxId(1),
            "a",
            Op::Update {
                patch: fields(json!({"t": 9, "n": 1})),
            },
            Hlc::default(),
            Some(&merge),
        );
        c.apply_remote(remote("a", 2, json!({"t": 2})), Some(&merge));
        assert_eq!(
            c.get("a").unwrap().fields(),
            fields(json!({"t": 2, "n": 1, "merged": true}))
        );
    }

    #[test]
    fn counts_exclude_tombstones_and_removal_reports_removed() {
        let mut c = Collection::new("todos");
        c.add_pending(
            TxId(1),
            "a",
            Op::Insert {
                fields: fields(json!({})),
            },
            Hlc::default(),
            None,
        );
        c.add_pending(TxId(2), "a", Op::Delete, Hlc::default(), None);
        assert_eq!(c.count(), 0);
        assert!(c.get("a").unwrap().deleted());
        let change = c.remove_pending(TxId(1), "a", None).unwrap();
        // Without the insert the delete no longer applies: the document is gone from the view.
        assert_eq!(change.kind, ChangeKind::Removed);
        assert!(c.get("a").is_none());
    }
}
