//! Documents keyed by their own id: hash sets whose entries are the documents, so an id is
//! held once (not again as a map key), hashed with a fast non-cryptographic hash. The documents
//! are spread over [`SHARDS`] sets that grow one at a time, so growing never holds a whole
//! table twice (a hash table keeps its old table until the new one is filled), and a load
//! needs no room made ahead.

use crate::document::Document;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// A fast hash for in-memory tables (FxHash's multiply-rotate): ids are short, and the tables
/// never leave the engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// What builds a [`FastHasher`].
pub type FastBuild = BuildHasherDefault<FastHasher>;

/// A document in a [`DocSet`]: equal, and hashed, by its id.
#[derive(Debug, Clone)]
struct Entry(Document);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}

impl Eq for Entry {}

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id().hash(state);
    }
}

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        self.0.id()
    }
}

/// How many hash sets a [`DocSet`] spreads its documents over: growing one copies a
/// sixteenth of the documents' table, and wasm memory, which never shrinks, keeps that peak.
const SHARDS: usize = 16;

/// Documents by id.
#[derive(Debug, Clone, Default)]
pub struct DocSet([HashSet<Entry, FastBuild>; SHARDS]);

impl DocSet {
    /// The set holding the document with this id: chosen by bits of its hash that the set's
    /// own table does not use (it takes the lowest for the slot and the highest seven as the
    /// slot's tag).
    fn shard(&self, id: &str) -> usize {
        (FastBuild::default().hash_one(id) >> 40) as usize % SHARDS
    }

    /// The document with this id.
    pub fn get(&self, id: &str) -> Option<&Document> {
        self.0[self.shard(id)].get(id).map(|e| &e.0)
    }

    /// Whether a document has this id.
    pub fn contains(&self, id: &str) -> bool {
        self.0[self.shard(id)].contains(id)
    }

    /// Stores a document; returns the one it replaces.
    pub fn insert(&mut self, doc: Document) -> Option<Document> {
        let shard = self.shard(doc.id());
        self.0[shard].replace(Entry(doc)).map(|e| e.0)
    }

    /// Marks the document with this id for the history if `held` accepts it; returns whether
    /// it did (see [`Document::history_marked`]). A set hands out no `&mut` to its entries (a
    /// change could move one's hash), so a document to mark is taken out and put back: its
    /// slot is free again when it returns, so the set never grows for it.
    pub(crate) fn mark_for_history(
        &mut self,
        id: &str,
        held: impl FnOnce(&Document) -> bool,
    ) -> bool {
        let set = &mut self.0[self.shard(id)];
        match set.get(id) {
            Some(entry) if held(&entry.0) => {
                if !entry.0.history_marked() {
                    let Entry(mut doc) = set.take(id).expect("just found");
                    doc.mark_for_history();
                    set.insert(Entry(doc));
                }
                true
            }
            _ => false,
        }
    }

    /// Removes the document with this id.
    pub fn remove(&mut self, id: &str) -> Option<Document> {
        let shard = self.shard(id);
        self.0[shard].take(id).map(|e| e.0)
    }

    /// Every document, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Document> {
        Iter {
            sets: self.0[1..].iter(),
            set: self.0[0].iter(),
        }
    }

    /// Makes room for about `additional` more documents at once (spread evenly over the shards),
    /// so that a load of known size does not grow the tables by doubling: wasm's allocator
    /// keeps the tables each doubling leaves behind as free space, and the load may end before
    /// other allocations fill it.
    pub fn reserve(&mut self, additional: usize) {
        for shard in &mut self.0 {
            shard.reserve(additional / SHARDS);
        }
    }

    /// How many documents there are.
    pub fn len(&self) -> usize {
        self.0.iter().map(HashSet::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(HashSet::is_empty)
    }
}

/// The documents of a [`DocSet`], a set after another (a plain loop: `flatten` would also
/// carry the state for iterating from the back, in every scan's copy of the code).
struct Iter<'a> {
    sets: std::slice::Iter<'a, HashSet<Entry, FastBuild>>,
    set: std::collections::hash_set::Iter<'a, Entry>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Document;

    fn next(&mut self) -> Option<&'a Document> {
        loop {
            if let Some(entry) = self.set.next() {
                return Some(&entry.0);
            }
            self.set = self.sets.next()?.iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;

    /// Document `d{i}` at version `i`.
    fn doc(i: u64) -> Document {
        let fields = serde_json::json!({ "n": i }).as_object().unwrap().clone();
        Document::new(&format!("d{i}"), fields.into(), i, Hlc::default(), false)
    }

    /// Each shard's capacity.
    fn capacities(set: &DocSet) -> Vec<usize> {
        set.0.iter().map(HashSet::capacity).collect()
    }

    #[test]
    fn a_reserved_set_takes_that_many_documents_without_growing() {
        let mut set = DocSet::default();
        set.reserve(10_000);
        let capacity = capacities(&set);
        for i in 0..10_000 {
            set.insert(doc(i));
        }
        let after = capacities(&set);
        assert_eq!(after, capacity, "no shard grew");
    }

    #[test]
    fn marking_a_document_keeps_it_in_place_and_only_when_it_is_held() {
        let mut set = DocSet::default();
        for i in 0..1_000 {
            set.insert(doc(i));
        }
        let capacity = capacities(&set);
        assert!(!set.mark_for_history("d5", |d| d.version() == 6));
        assert!(!set.mark_for_history("nope", |_| true));
        assert!(!set.get("d5").unwrap().history_marked());
        for i in 0..1_000 {
            assert!(set.mark_for_history(&format!("d{i}"), |d| d.version() == i));
        }
        assert!(set.mark_for_history("d5", |_| true), "marked already");
        assert!(set.iter().all(Document::history_marked));
        assert_eq!(set.get("d5"), Some(&doc(5)));
        assert_eq!(set.len(), 1_000);
        let after = capacities(&set);
        assert_eq!(after, capacity, "no shard grew");
    }

    #[test]
    fn documents_spread_over_every_shard_and_are_found_again() {
        let mut set = DocSet::default();
        for i in 0..10_000 {
            assert!(set.insert(doc(i)).is_none());
        }
        assert_eq!(
            set.insert(doc(7)).map(|d| d.version()),
            Some(7),
            "a replacement"
        );
        assert_eq!(set.len(), 10_000);
        // Evenly enough that no shard's growth copies much more than its share.
        for shard in &set.0 {
            assert!(
                (400..=850).contains(&shard.len()),
                "{} in a shard",
                shard.len()
            );
        }
        assert!((0..10_000).all(|i| set.get(&format!("d{i}")).is_some_and(|d| d.version() == i)));
        assert_eq!(set.remove("d42").map(|d| d.version()), Some(42));
        assert!(!set.contains("d42") && set.contains("d43"));
        assert_eq!(set.iter().count(), 9_999);
    }
}
