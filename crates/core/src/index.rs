//! Secondary indexes in memory: for one field, or several (`['done', 'title']`), the documents
//! by the order key of their values. Each distinct key holds its documents' ids in id order
//! (one id inline, several in a set), so an equality lookup finds its documents, and their
//! number, without reading them; ranges and sorted reads walk the keys in order.
//!
//! Indexes hold the visible documents that are not soft-deleted, and follow every change to
//! them ([`Indexes::update`], called for each change the collection shows). An index is built
//! when a query first needs it. Besides those the application declares, a field that full
//! scans keep filtering or sorting on gets an index of its own ([`Indexes::note_scan`]).

use crate::collection::View;
use crate::document::Document;
use crate::query::key;
use std::collections::btree_map::Range;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

/// Full scans that name a field (see [`Indexes::note_scan`]) before it gets an index.
pub const AUTOMATIC_AFTER: u32 = 3;
/// At most this many automatic indexes per collection.
pub const AUTOMATIC_MAX: usize = 8;

/// A collection's indexes.
#[derive(Debug, Clone, Default)]
pub struct Indexes {
    list: Vec<Index>,
    /// Full scans per field, towards an automatic index.
    scans: HashMap<String, u32>,
}

/// What an index covers, as [`Indexes::info`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// Its fields, most significant first.
    pub fields: Vec<String>,
    /// Created by the engine (not declared).
    pub automatic: bool,
}

/// One index.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    fields: Vec<String>,
    automatic: bool,
    /// The entries; `None` until a query first needs them.
    entries: Option<Entries>,
}

/// An index's entries: each key and the ids of the documents it holds.
pub(crate) type Entries = BTreeMap<Box<[u8]>, Posting>;

/// The ids of the documents under one key, in id order.
#[derive(Debug, Clone)]
pub(crate) enum Posting {
    One(Box<str>),
    Many(BTreeSet<Box<str>>),
}

impl Posting {
    /// The ids, in order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Posting::One(id) => (Some(&**id), None),
            Posting::Many(ids) => (None, Some(ids.iter().map(|id| &**id))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// How many ids.
    pub(crate) fn len(&self) -> usize {
        match self {
            Posting::One(_) => 1,
            Posting::Many(ids) => ids.len(),
        }
    }

    fn insert(&mut self, id: &str) {
        match self {
            Posting::One(only) if **only == *id => {}
            Posting::One(only) => {
                let only = std::mem::take(only);
                *self = Posting::Many(crate::sort::set([only, id.into()]));
            }
            Posting::Many(ids) => {
                ids.insert(id.into());
            }
        }
    }

    /// Removes `id`; returns whether none are left.
    fn remove(&mut self, id: &str) -> bool {
        match self {
            Posting::One(only) => **only == *id,
            Posting::Many(ids) => {
                ids.remove(id);
                if ids.len() == 1 {
                    let last = ids.pop_first().expect("one left");
                    *self = Posting::One(last);
                }
                false
            }
        }
    }
}

impl Index {
    fn new(fields: Vec<String>, automatic: bool) -> Index {
        Index {
            fields,
            automatic,
            entries: None,
        }
    }

    /// Its fields.
    pub(crate) fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Its entries (built, see [`Indexes::build`]).
    pub(crate) fn entries(&self) -> &Entries {
        self.entries.as_ref().expect("built before use")
    }

    /// The key of a document: its values of the fields, in order (missing: null).
    fn key(&self, doc: &Document) -> Box<[u8]> {
        let mut out = Vec::with_capacity(32);
        self.push_key(doc, &mut out);
        out.into_boxed_slice()
    }

    fn push_key(&self, doc: &Document, out: &mut Vec<u8>) {
        for field in &self.fields {
            crate::query::push_field_key(doc, field, out);
        }
    }

    fn build(&mut self, view: &View<'_>) {
        let mut scratch = Vec::with_capacity(64);
        let mut pairs: Vec<(Box<[u8]>, &str)> = view
            .docs()
            .filter(|doc| !doc.deleted())
            .map(|doc| {
                scratch.clear();
                self.push_key(doc, &mut scratch);
                (Box::from(scratch.as_slice()), doc.id())
            })
            .collect();
        pairs.sort_unstable();
        let mut entries = Vec::new();
        let mut pairs = pairs.into_iter().peekable();
        while let Some((key, id)) = pairs.next() {
            let mut ids = vec![id];
            while let Some((_, next)) = pairs.next_if(|(next, _)| *next == key) {
                ids.push(next);
            }
            let posting = match ids.as_slice() {
                [one] => Posting::One((*one).into()),
                many => Posting::Many(many.iter().map(|id| Box::from(*id)).collect()),
            };
            entries.push((key, posting));
        }
        self.entries = Some(entries.into_iter().collect());
    }

    fn update(&mut self, id: &str, old: Option<&Document>, new: Option<&Document>) {
        if self.entries.is_none() {
            return;
        }
        let old_key = old.filter(|d| !d.deleted()).map(|d| self.key(d));
        let new_key = new.filter(|d| !d.deleted()).map(|d| self.key(d));
        if old_key == new_key {
            return;
        }
        let entries = self.entries.as_mut().expect("built");
        if let Some(key) = old_key {
            if entries.get_mut(&key).is_some_and(|p| p.remove(id)) {
                entries.remove(&key);
            }
        }
        if let Some(key) = new_key {
            match entries.get_mut(&key) {
                Some(posting) => posting.insert(id),
                None => {
                    entries.insert(key, Posting::One(id.into()));
                }
            }
        }
    }
}

impl Indexes {
    /// Declares an index on `fields` (a no-op if there is one already).
    pub fn declare(&mut self, fields: Vec<String>) {
        match self.list.iter_mut().find(|i| i.fields == fields) {
            Some(existing) => existing.automatic = false,
            None => self.list.push(Index::new(fields, false)),
        }
    }

    /// The indexes, in the order they were made.
    pub fn info(&self) -> Vec<IndexInfo> {
        self.list
            .iter()
            .map(|i| IndexInfo {
                fields: i.fields.clone(),
                automatic: i.automatic,
            })
            .collect()
    }

    /// The indexes, for planning.
    pub(crate) fn list(&self) -> &[Index] {
        &self.list
    }

    /// Builds every index not built yet.
    pub(crate) fn build(&mut self, view: &View<'_>) {
        for index in self.list.iter_mut().filter(|i| i.entries.is_none()) {
            index.build(view);
        }
    }

    /// Follows a change of the visible document `id` from `old` to `new`.
    pub fn update(&mut self, id: &str, old: Option<&Document>, new: Option<&Document>) {
        for index in &mut self.list {
            index.update(id, old, new);
        }
    }

    /// Drops what the indexes hold: each is built again when a query next needs it (after the
    /// documents changed without [`Indexes::update`], by a bulk load).
    pub fn reset(&mut self) {
        for index in &mut self.list {
            index.entries = None;
        }
    }

    /// Counts a full scan of the collection that filtered or sorted on `field`. The
    /// [`AUTOMATIC_AFTER`]th such scan gives the field an index of its own (up to
    /// [`AUTOMATIC_MAX`] per collection), unless an index already starts with it. Returns
    /// whether it did.
    pub fn note_scan(&mut self, field: &str) -> bool {
        let automatic = self.list.iter().filter(|i| i.automatic).count();
        if automatic >= AUTOMATIC_MAX || self.list.iter().any(|i| i.fields[0] == field) {
            return false;
        }
        let scans = self.scans.entry(field.to_owned()).or_default();
        *scans += 1;
        if *scans < AUTOMATIC_AFTER {
            return false;
        }
        self.scans.remove(field);
        self.list.push(Index::new(vec![field.to_owned()], true));
        true
    }
}

/// The entries of `entries` within `range`.
pub(crate) fn range<'e>(entries: &'e Entries, range: &KeyRange) -> Range<'e, Box<[u8]>, Posting> {
    entries.range::<[u8], _>((as_slice(&range.0), as_slice(&range.1)))
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A range of keys.
pub(crate) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The keys starting with `prefix`.
pub(crate) fn prefix_range(prefix: Vec<u8>) -> KeyRange {
    let mut end = prefix.clone();
    end.push(key::AFTER);
    (Bound::Included(prefix), Bound::Excluded(end))
}
