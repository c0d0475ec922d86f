//! Live queries: a query's results kept up to date as the collection changes, in O(log n) per
//! change, and shared by every subscriber of the same query (by [`Query::key`]). `find` and
//! `count` with that query read them instead of running it, and each change is turned into the
//! exact changes of the results' window (`offset`, `limit`) that subscribers receive.
//!
//! A live query keeps its first `offset + limit` results (all of them without a limit) by
//! order key. When one of those leaves and more matches exist, it reads the next ones again
//! through the query planner.

use crate::collection::{ChangeKind, DocChange, View};
use crate::document::Document;
use crate::index::Indexes;
use crate::query::{plan, Query};
use crate::DocId;
use std::collections::BTreeSet;
use std::ops::Bound;

/// Names a live query of a collection (shared by the subscribers of the same query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LiveId(pub u64);

/// The changes to one live query's window.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveChanges {
    /// The collection.
    pub collection: String,
    /// The live query.
    pub id: LiveId,
    /// The documents that entered the window (`Added`), changed in it (`Updated`) or left it
    /// (`Removed`).
    pub changes: Vec<DocChange>,
}

/// The changes to the live queries of several collections since the last call.
pub fn take_live_changes<'c>(
    collections: impl Iterator<Item = &'c mut crate::collection::Collection>,
) -> Vec<LiveChanges> {
    collections
        .flat_map(|c| {
            let name = c.name().to_owned();
            c.take_live_changes()
                .into_iter()
                .map(move |(id, changes)| LiveChanges {
                    collection: name.clone(),
                    id,
                    changes,
                })
        })
        .collect()
}

/// A result: its order key and id.
type Entry = (Box<[u8]>, DocId);

/// A collection's live queries.
#[derive(Debug, Clone, Default)]
pub struct LiveQueries {
    /// In the order they started (a collection has a few, each found by id or key).
    queries: Vec<(LiveId, LiveQuery)>,
    next: u64,
}

/// One maintained query.
#[derive(Debug, Clone)]
struct LiveQuery {
    query: Query,
    /// The query without its offset and with `offset + limit` as its limit: what `top` holds.
    reach: Query,
    key: String,
    /// The first `offset + limit` results (every result without a limit), in order.
    top: BTreeSet<Entry>,
    /// `top` holds every match.
    complete: bool,
    subscribers: usize,
    /// Changes to the window not taken yet.
    changes: Vec<DocChange>,
}

impl LiveQueries {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Subscribes to `query`: the live query with the same key gains a subscriber, or a new one
    /// starts (its first run counts towards automatic indexes, as a `find` does).
    pub(crate) fn watch(&mut self, query: Query, view: &View<'_>, indexes: &mut Indexes) -> LiveId {
        let key = query.key();
        if let Some((id, live)) = self.queries.iter_mut().find(|(_, live)| live.key == key) {
            live.subscribers += 1;
            return *id;
        }
        self.next += 1;
        let id = LiveId(self.next);
        self.queries
            .push((id, LiveQuery::new(query, key, view, indexes)));
        id
    }

    /// Removes a subscriber; the live query ends with its last one.
    pub fn unwatch(&mut self, id: LiveId) {
        if let Some(at) = self.queries.iter().position(|(live, _)| *live == id) {
            let live = &mut self.queries[at].1;
            live.subscribers -= 1;
            if live.subscribers == 0 {
                self.queries.remove(at);
            }
        }
    }

    /// The results of the live query maintaining `query`, if there is one.
    pub(crate) fn results<'c>(&self, query: &Query, view: &View<'c>) -> Option<Vec<&'c Document>> {
        self.get(query).map(|live| live.results(view))
    }

    /// The ids of the results of the live query maintaining `query`, if there is one.
    pub(crate) fn ids(&self, query: &Query) -> Option<impl Iterator<Item = &str>> {
        self.get(query)
            .map(|live| live.window().map(|(_, id)| id.as_str()))
    }

    /// How many results the live query maintaining `query` has, if there is one.
    pub(crate) fn count(&self, query: &Query) -> Option<usize> {
        self.get(query).map(LiveQuery::len)
    }

    /// Whether a live query maintains `query`.
    pub(crate) fn maintains(&self, query: &Query) -> bool {
        self.get(query).is_some()
    }

    fn get(&self, query: &Query) -> Option<&LiveQuery> {
        if self.queries.is_empty() {
            return None;
        }
        let key = query.key();
        self.queries
            .iter()
            .find(|(_, live)| live.key == key)
            .map(|(_, live)| live)
    }

    /// Follows a change of the visible document `id` from `old` to `new` (the view already
    /// shows `new`).
    pub(crate) fn update(
        &mut self,
        collection: &str,
        id: &str,
        old: Option<&Document>,
        new: Option<&Document>,
        view: &View<'_>,
        indexes: &mut Indexes,
    ) {
        for (_, live) in &mut self.queries {
            live.update(collection, id, old, new, view, indexes);
        }
    }

    /// Runs every live query again (the documents changed without [`LiveQueries::update`], by
    /// a bulk load): subscribers are told of what left and entered each window, and that the
    /// rest may have changed.
    pub(crate) fn refresh(&mut self, collection: &str, view: &View<'_>, indexes: &mut Indexes) {
        for (_, live) in &mut self.queries {
            let mut before: Vec<DocId> = live.window().map(|(_, id)| id.clone()).collect();
            crate::sort::sort(&mut before);
            live.fill(view, indexes);
            let mut after: Vec<&DocId> = live.window().map(|(_, id)| id).collect();
            crate::sort::sort(&mut after);
            let mut changes = Vec::new();
            for id in &before {
                if after.binary_search(&id).is_err() {
                    changes.push(change(collection, id, ChangeKind::Removed, None));
                }
            }
            for id in after {
                let kind = match before.binary_search(id) {
                    Ok(_) => ChangeKind::Updated,
                    Err(_) => ChangeKind::Added,
                };
                changes.push(change(collection, id, kind, view.get(id)));
            }
            live.changes.extend(changes);
        }
    }

    /// The changes of each live query's window since the last call.
    pub fn take_changes(&mut self) -> Vec<(LiveId, Vec<DocChange>)> {
        self.queries
            .iter_mut()
            .filter(|(_, live)| !live.changes.is_empty())
            .map(|(id, live)| (*id, std::mem::take(&mut live.changes)))
            .collect()
    }
}

impl LiveQuery {
    fn new(query: Query, key: String, view: &View<'_>, indexes: &mut Indexes) -> LiveQuery {
        let reach = Query {
            offset: 0,
            limit: query.reach(),
            ..query.clone()
        };
        let mut live = LiveQuery {
            query,
            reach,
            key,
            top: BTreeSet::new(),
            complete: true,
            subscribers: 1,
            changes: Vec::new(),
        };
        // The first run comes from the application: a full scan counts towards an index.
        live.top = live.run(view, indexes, true);
        live.complete = live.reach.limit.is_none_or(|reach| live.top.len() < reach);
        live
    }

    /// Runs the query for `top`.
    fn run(&self, view: &View<'_>, indexes: &mut Indexes, track: bool) -> BTreeSet<Entry> {
        crate::sort::set(
            plan::find(&self.reach, view, indexes, track)
                .into_iter()
                .map(|doc| self.entry(doc)),
        )
    }

    /// Reads `top` again; returns the entries it gained.
    fn fill(&mut self, view: &View<'_>, indexes: &mut Indexes) -> Vec<Entry> {
        let fresh = self.run(view, indexes, false);
        let gained = fresh.difference(&self.top).cloned().collect();
        self.complete = self.reach.limit.is_none_or(|reach| fresh.len() < reach);
        self.top = fresh;
        gained
    }

    fn entry(&self, doc: &Document) -> Entry {
        (
            self.query.order_key(doc).into_boxed_slice(),
            doc.id().to_owned(),
        )
    }

    /// The window's entries: `top` past the offset, within the limit.
    fn window(&self) -> impl Iterator<Item = &Entry> {
        self.top
            .iter()
            .skip(self.query.offset)
            .take(self.query.limit.unwrap_or(usize::MAX))
    }

    fn len(&self) -> usize {
        self.query.window_len(self.top.len())
    }

    fn results<'c>(&self, view: &View<'c>) -> Vec<&'c Document> {
        self.window().filter_map(|(_, id)| view.get(id)).collect()
    }

    /// The window's first and last entries (`top` holds none past the window).
    fn bounds(&self) -> Option<(Entry, Entry)> {
        let first = self.top.iter().nth(self.query.offset)?;
        let last = self.top.last()?;
        Some((first.clone(), last.clone()))
    }

    /// Whether `entry` can join `top` now: room is left and nothing is missing from it, or it
    /// comes before the last entry.
    fn fits(&self, entry: &Entry) -> bool {
        match self.reach.limit {
            None => true,
            Some(reach) => {
                (self.complete && self.top.len() < reach)
                    || self.top.last().is_some_and(|last| entry < last)
            }
        }
    }

    fn update(
        &mut self,
        collection: &str,
        id: &str,
        old: Option<&Document>,
        new: Option<&Document>,
        view: &View<'_>,
        indexes: &mut Indexes,
    ) {
        let old = old.filter(|d| self.query.matches(d)).map(|d| self.entry(d));
        let new = new.filter(|d| self.query.matches(d)).map(|d| self.entry(d));
        if old.is_none() && new.is_none() {
            return;
        }
        let before = self.edges();
        // Entries whose membership of the window may change, with whether they were in it.
        let mut gone: Vec<(Entry, bool)> = Vec::new();
        if let Some(entry) = old {
            if self.top.remove(&entry) {
                let was = before.hold(&entry);
                gone.push((entry, was));
            }
        }
        let mut joined: Vec<Entry> = Vec::new();
        if let Some(entry) = new {
            if self.fits(&entry) {
                if self.top.insert(entry.clone()) {
                    joined.push(entry);
                }
                if self.reach.limit.is_some_and(|reach| self.top.len() > reach) {
                    let last = self.top.pop_last().expect("over the reach");
                    self.complete = false;
                    let was = before.hold(&last);
                    gone.push((last, was));
                }
            } else {
                self.complete = false;
            }
        }
        if !self.complete && self.reach.limit.is_some_and(|reach| self.top.len() < reach) {
            joined.extend(self.fill(view, indexes));
        }
        let after = self.edges();
        // Entries that stayed but crossed a moving edge of the window.
        let mut stayed = Vec::new();
        let mut edge = |a: &Entry, b: &Entry| {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let range = (Bound::Included(low), Bound::Included(high));
            stayed.extend(self.top.range::<Entry, _>(range).cloned());
        };
        match (&before, &after) {
            (Edges::Between(Some(b)), Edges::Between(Some(a))) => {
                edge(&b.0, &a.0);
                edge(&b.1, &a.1);
            }
            (Edges::Between(None), Edges::Between(Some((first, last))))
            | (Edges::Between(Some((first, last))), Edges::Between(None)) => edge(first, last),
            _ => {}
        }
        // Whether each document was, and is, in the window.
        let mut membership: Vec<(DocId, bool, bool)> = Vec::new();
        let mut note =
            |id: DocId, was: bool, is: bool| match membership.iter_mut().find(|m| m.0 == id) {
                Some(m) => {
                    m.1 |= was;
                    m.2 |= is;
                }
                None => membership.push((id, was, is)),
            };
        for (entry, was) in gone {
            note(entry.1, was, false);
        }
        for entry in stayed {
            let was = !joined.contains(&entry) && before.hold(&entry);
            let is = after.hold(&entry);
            note(entry.1, was, is);
        }
        for entry in joined {
            let is = self.top.contains(&entry) && after.hold(&entry);
            note(entry.1, false, is);
        }
        crate::sort::sort(&mut membership);
        for (doc_id, was, is) in membership {
            let kind = match (was, is) {
                (true, true) if doc_id == id => ChangeKind::Updated,
                (false, true) => ChangeKind::Added,
                (true, false) => ChangeKind::Removed,
                _ => continue,
            };
            let doc = match kind {
                ChangeKind::Removed => None,
                _ => view.get(&doc_id),
            };
            self.changes.push(change(collection, &doc_id, kind, doc));
        }
    }

    /// Where the window lies in `top`.
    fn edges(&self) -> Edges {
        match self.query.offset {
            0 => Edges::All,
            _ => Edges::Between(self.bounds()),
        }
    }
}

/// Where a window lies in its live query's `top`.
enum Edges {
    /// All of it (there is no offset).
    All,
    /// Between its first and last entries (none: the window is empty).
    Between(Option<(Entry, Entry)>),
}

impl Edges {
    /// Whether an entry of `top` lies in the window.
    fn hold(&self, entry: &Entry) -> bool {
        match self {
            Edges::All => true,
            Edges::Between(bounds) => bounds
                .as_ref()
                .is_some_and(|(first, last)| first <= entry && entry <= last),
        }
    }
}

fn change(collection: &str, id: &str, kind: ChangeKind, doc: Option<&Document>) -> DocChange {
    DocChange {
        collection: collection.to_owned(),
        id: id.to_owned(),
        kind,
        doc: doc.cloned(),
    }
}
