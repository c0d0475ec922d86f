//! Storage in memory: the key-value store a driver keeps, applying each write whole. It serves
//! the tests and the simulation, and engines that keep nothing across reloads.

use super::{Origin, Snapshot, StorageWrite, StoreOp, StoredValues};
use crate::id_map::IdMap;

/// A key-value store holding log records, pages and origin records, as a driver's storage
/// would.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStore {
    records: IdMap<u64, Vec<u8>>,
    pages: Sorted<(String, u32), Vec<u8>>,
    history: IdMap<u32, Vec<u8>>,
    origins: Sorted<String, Origin>,
}

impl MemoryStore {
    /// Applies a write, all of it.
    pub fn apply(&mut self, write: &StorageWrite) {
        for op in &write.ops {
            match op {
                StoreOp::PutRecord { seq, bytes } => {
                    self.records.insert(*seq, bytes.clone());
                }
                StoreOp::PutPage {
                    collection,
                    index,
                    bytes,
                } => {
                    put(&mut self.pages, (collection.clone(), *index), bytes.clone());
                }
                StoreOp::DeleteRecords { from, to } => {
                    let doomed: Vec<u64> = self.records.range(from..=to).map(|(k, _)| *k).collect();
                    for seq in doomed {
                        self.records.remove(&seq);
                    }
                }
                StoreOp::PutHistory { index, bytes } => {
                    self.history.insert(*index, bytes.to_vec());
                }
                StoreOp::DeleteHistory { index } => {
                    self.history.remove(index);
                }
            }
        }
        for origin in &write.origins {
            put(&mut self.origins, origin.request.clone(), origin.clone());
        }
        for request in &write.dropped_origins {
            if let Ok(i) = self
                .origins
                .binary_search_by(|(k, _)| k.as_str().cmp(request))
            {
                self.origins.remove(i);
            }
        }
    }

    /// Everything stored, as the engine loads it (in key order, as a driver's storage hands
    /// it over).
    pub fn snapshot(&self) -> Snapshot {
        let values = |values: Vec<Vec<u8>>| StoredValues::from(values);
        Snapshot {
            records: values(self.records.values().cloned().collect()),
            pages: values(self.pages.iter().map(|(_, v)| v.clone()).collect()),
            history: values(self.history.values().cloned().collect()),
            origins: self.origins.iter().map(|(_, o)| o.clone()).collect(),
        }
    }

    /// How many log records it holds.
    pub fn records(&self) -> usize {
        self.records.len()
    }

    /// How many bytes it holds.
    pub fn bytes(&self) -> usize {
        self.records
            .values()
            .chain(self.pages.iter().map(|(_, v)| v))
            .chain(self.history.values())
            .map(Vec::len)
            .sum()
    }
}

/// Entries sorted by key, as storage lists them: a few pages and origins, for which a vector
/// costs the wasm less code than a `BTreeMap` of each key and value type.
type Sorted<K, V> = Vec<(K, V)>;

/// Sets `key`'s value in `entries`.
fn put<K: Ord, V>(entries: &mut Sorted<K, V>, key: K, value: V) {
    match entries.binary_search_by(|(k, _)| k.cmp(&key)) {
        Ok(i) => entries[i].1 = value,
        Err(i) => entries.insert(i, (key, value)),
    }
}
