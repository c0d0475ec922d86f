//! Queries over a collection's visible documents, as `find` and `count` take them:
//! `{ where, sort, offset, limit, includeDeleted }`.
//!
//! - [`parse`]: the JSON options, checked (a bad query is an error naming the operator);
//! - [`eval`]: conditions, met by values read in place from the documents' JSON text;
//! - [`key`]: order keys, the bytes indexes and live queries sort by;
//! - [`plan`]: how a collection answers a query (a live query, an index or a scan).
//!
//! [`Query::run`] is the plain scan every plan must agree with.

mod eval;
pub(crate) mod key;
mod parse;
pub(crate) mod plan;

pub use eval::{Condition, Op, Operand};
pub use plan::Access;

use crate::document::Document;
use eval::Field;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A query over one collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Conditions, all of which must hold.
    pub filter: Vec<Condition>,
    /// Sort fields, most significant first; ties are broken by `_id`.
    pub sort: Vec<SortField>,
    /// Skip this many results.
    pub offset: usize,
    /// At most this many results (after the offset).
    pub limit: Option<usize>,
    /// Include soft-deleted documents.
    pub include_deleted: bool,
}

/// One sort field.
#[derive(Debug, Clone, PartialEq)]
pub struct SortField {
    /// The field (a dotted path).
    pub field: String,
    /// Largest first.
    pub descending: bool,
}

impl Query {
    /// Whether a document passes the filter and the tombstone rule.
    pub fn matches(&self, doc: &Document) -> bool {
        self.matches_text(doc, doc.fields_json())
    }

    /// [`Query::matches`] for a document whose fields' text `fields` is already read.
    fn matches_text(&self, doc: &Document, fields: &str) -> bool {
        (self.include_deleted || !doc.deleted())
            && self
                .filter
                .iter()
                .all(|c| c.holds(Field::in_text(doc, fields, &c.path)))
    }

    /// The documents that match, in the order they come.
    fn matching<'q, 'a, I: Iterator<Item = &'a Document>>(
        &'q self,
        docs: I,
    ) -> Matching<'q, 'a, I> {
        Matching {
            query: self,
            docs,
            batch: Vec::with_capacity(BATCH),
            next: 0,
        }
    }

    /// The key ordering a document among the results (ties are broken by `_id`).
    pub fn order_key(&self, doc: &Document) -> Vec<u8> {
        let mut out = Vec::new();
        for s in &self.sort {
            let start = out.len();
            Field::of(doc, &s.field).push_key(&mut out);
            if s.descending {
                key::invert(&mut out[start..]);
            }
        }
        out
    }

    /// Orders two documents as the results are ordered: sort fields, then `_id`.
    pub fn compare(&self, a: &Document, b: &Document) -> Ordering {
        self.order_key(a)
            .cmp(&self.order_key(b))
            .then_with(|| a.id().cmp(b.id()))
    }

    /// How many leading results the query's window reaches (`offset + limit`); `None` without
    /// a limit.
    pub fn reach(&self) -> Option<usize> {
        self.limit.map(|limit| self.offset.saturating_add(limit))
    }

    /// The query's canonical text: equal for queries that select and order alike, whatever
    /// order their options were written in. Live queries are shared by it.
    pub fn key(&self) -> String {
        let mut conditions: Vec<(&str, &str, String)> = self
            .filter
            .iter()
            .map(|c| {
                let operand = match &c.op {
                    Op::Eq(v) | Op::Ne(v) | Op::Gt(v) | Op::Gte(v) | Op::Lt(v) | Op::Lte(v) => {
                        v.json().to_owned()
                    }
                    Op::In(vs) | Op::Nin(vs) => {
                        let items: Vec<&str> = vs.iter().map(Operand::json).collect();
                        format!("[{}]", items.join(","))
                    }
                    Op::Exists(b) => b.to_string(),
                };
                (c.path.as_str(), c.op.name(), operand)
            })
            .collect();
        crate::sort::sort(&mut conditions);
        let conditions: Vec<String> = conditions
            .iter()
            .map(|(path, op, operand)| format!("[{},\"{op}\",{operand}]", json_string(path)))
            .collect();
        let sort: Vec<String> = self
            .sort
            .iter()
            .map(|s| {
                json_string(&format!(
                    "{}{}",
                    if s.descending { "-" } else { "" },
                    s.field
                ))
            })
            .collect();
        format!(
            "{{\"where\":[{}],\"sort\":[{}],\"offset\":{},\"limit\":{},\"includeDeleted\":{}}}",
            conditions.join(","),
            sort.join(","),
            self.offset,
            self.limit.map_or("null".into(), |l| l.to_string()),
            self.include_deleted
        )
    }

    /// Runs the query over documents by scanning them all: filter, order, window. With a
    /// limit, the first `offset + limit` matches are kept in a heap as the documents stream by.
    pub fn run<'a>(&self, docs: impl Iterator<Item = &'a Document>) -> Vec<&'a Document> {
        match self.reach() {
            Some(reach) if self.sort.is_empty() => self.first_by_id(docs, reach),
            _ => self.select(self.matching(docs)),
        }
    }

    /// [`Query::run`] for a query without sort fields and with a limit: its results are the
    /// first `reach` matches in `_id` order, so once `reach` are held, a document whose id
    /// comes after the last of them cannot be one, and its fields are not read.
    fn first_by_id<'a>(
        &self,
        docs: impl Iterator<Item = &'a Document>,
        reach: usize,
    ) -> Vec<&'a Document> {
        if reach == 0 {
            return Vec::new();
        }
        let mut best = Best::new(reach);
        let mut matching = self.matching(docs);
        // Once the window is full, only a document whose id comes before its last can join it.
        // That last id is kept here: it changes only when a document joins.
        let mut bar: Option<&str> = None;
        while let Some(doc) = matching.next_where(|id| bar.is_none_or(|last| id < last)) {
            best.offer(Ranked {
                key: Vec::new(),
                doc,
            });
            bar = best.bar().map(|last| last.doc.id());
        }
        self.window(best.into_vec())
    }

    /// How many documents `run` would return, without collecting or sorting them.
    pub fn count<'a>(&self, docs: impl Iterator<Item = &'a Document>) -> usize {
        self.window_len(self.matching(docs).count())
    }

    /// How many results a query with `matches` matching documents returns.
    pub(crate) fn window_len(&self, matches: usize) -> usize {
        matches
            .saturating_sub(self.offset)
            .min(self.limit.unwrap_or(usize::MAX))
    }

    /// Orders matching documents and cuts the window out of them.
    pub(crate) fn select<'a>(
        &self,
        matches: impl Iterator<Item = &'a Document>,
    ) -> Vec<&'a Document> {
        let keyed = matches.map(|doc| Ranked {
            key: self.order_key(doc),
            doc,
        });
        let ranked = match self.reach() {
            Some(0) => return Vec::new(),
            Some(reach) => {
                let mut best = Best::new(reach);
                keyed.for_each(|item| best.offer(item));
                best.into_vec()
            }
            None => keyed.collect(),
        };
        self.window(ranked)
    }

    /// The window of `ranked` (every candidate for it): sorted, past the offset.
    fn window<'a>(&self, mut ranked: Vec<Ranked<'a>>) -> Vec<&'a Document> {
        ranked.sort_unstable();
        ranked
            .into_iter()
            .skip(self.offset)
            .map(|r| r.doc)
            .collect()
    }
}

/// The best `reach` documents offered so far, in a heap whose top is the worst of them.
struct Best<'a> {
    heap: BinaryHeap<Ranked<'a>>,
    reach: usize,
}

impl<'a> Best<'a> {
    fn new(reach: usize) -> Self {
        Best {
            heap: BinaryHeap::with_capacity(reach.min(1 << 16) + 1),
            reach,
        }
    }

    /// Keeps `item` if it is among the best so far.
    fn offer(&mut self, item: Ranked<'a>) {
        if self.heap.len() < self.reach {
            self.heap.push(item);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if item < *worst {
                *worst = item;
            }
        }
    }

    /// The worst held, once `reach` are: what a later document must come before to be kept.
    fn bar(&self) -> Option<&Ranked<'a>> {
        self.heap.peek().filter(|_| self.heap.len() == self.reach)
    }

    fn into_vec(self) -> Vec<Ranked<'a>> {
        self.heap.into_vec()
    }
}

/// How many documents a scan reads ahead: their texts, each in its own allocation, are read
/// first for the whole batch, so that the memory reads overlap instead of each one waiting for
/// the document before it to be matched. Taking a document's id and fields' text reads its first byte
/// (slicing the packed text checks that the fields start on a character boundary), which is
/// the read that brings the text into the cache.
const BATCH: usize = 16;

/// The documents of `docs` that match `query`, read a batch at a time.
struct Matching<'q, 'a, I> {
    query: &'q Query,
    docs: I,
    /// Documents read ahead, with their ids and their fields' text.
    batch: Vec<(&'a Document, &'a str, &'a str)>,
    /// The next one to match in `batch`.
    next: usize,
}

impl<'a, I: Iterator<Item = &'a Document>> Iterator for Matching<'_, 'a, I> {
    type Item = &'a Document;

    fn next(&mut self) -> Option<&'a Document> {
        self.next_where(|_| true)
    }
}

impl<'a, I: Iterator<Item = &'a Document>> Matching<'_, 'a, I> {
    /// The next document whose id `admit` accepts and that matches (`admit` is asked first:
    /// what it refuses is not matched).
    fn next_where(&mut self, mut admit: impl FnMut(&str) -> bool) -> Option<&'a Document> {
        loop {
            while let Some(&(doc, id, fields)) = self.batch.get(self.next) {
                self.next += 1;
                if admit(id) && self.query.matches_text(doc, fields) {
                    return Some(doc);
                }
            }
            self.batch.clear();
            self.next = 0;
            let ahead = self.docs.by_ref().take(BATCH);
            self.batch.extend(ahead.map(|doc| {
                let (id, fields) = doc.id_and_fields();
                (doc, id, fields)
            }));
            if self.batch.is_empty() {
                return None;
            }
        }
    }
}

/// A document and its order key, ordered as results are.
struct Ranked<'a> {
    key: Vec<u8>,
    doc: &'a Document,
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked<'_> {}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .cmp(&other.key)
            .then_with(|| self.doc.id().cmp(other.doc.id()))
    }
}

/// Appends the order key of `doc`'s value at `path` (missing: null).
pub(crate) fn push_field_key(doc: &Document, path: &str, out: &mut Vec<u8>) {
    Field::of(doc, path).push_key(out);
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    crate::document::write_json_string(&mut out, s);
    out
}

#[cfg(test)]
mod tests;
