//! Documents keyed by their own id: a hash set whose entries are the documents, so an id is
//! held once (not again as a map key), hashed with a fast non-cryptographic hash.

use crate::document::Document;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

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

/// Documents by id.
#[derive(Debug, Clone, Default)]
pub struct DocSet(HashSet<Entry, FastBuild>);

impl DocSet {
    /// Room for `more` documents without growing.
    pub fn reserve(&mut self, more: usize) {
        self.0.reserve(more);
    }

    /// The document with this id.
    pub fn get(&self, id: &str) -> Option<&Document> {
        self.0.get(id).map(|e| &e.0)
    }

    /// Whether a document has this id.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }

    /// Stores a document; returns the one it replaces.
    pub fn insert(&mut self, doc: Document) -> Option<Document> {
        self.0.replace(Entry(doc)).map(|e| e.0)
    }

    /// Removes the document with this id.
    pub fn remove(&mut self, id: &str) -> Option<Document> {
        self.0.take(id).map(|e| e.0)
    }

    /// Every document, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Document> {
        self.0.iter().map(|e| &e.0)
    }

    /// How many documents there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
