//! Storage in memory: the key-value store a driver keeps, applying each write whole. It serves
//! the tests and the simulation, and engines that keep nothing across reloads.

use super::{Origin, Snapshot, StorageWrite, StoreOp, StoredValues};
use crate::id_map::IdMap;
use std::collections::BTreeMap;

/// A key-value store holding log records, pages and origin records, as a driver's storage
/// would.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStore {
    records: IdMap<u64, Vec<u8>>,
    pages: BTreeMap<(String, u32), Vec<u8>>,
    history: IdMap<u32, Vec<u8>>,
    origins: BTreeMap<String, Origin>,
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
                    self.pages
                        .insert((collection.clone(), *index), bytes.clone());
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
            self.origins.insert(origin.request.clone(), origin.clone());
        }
        for request in &write.dropped_origins {
            self.origins.remove(request);
        }
    }

    /// Everything stored, as the engine loads it (in key order, as a driver's storage hands
    /// it over).
    pub fn snapshot(&self) -> Snapshot {
        let values = |values: Vec<Vec<u8>>| StoredValues::from(values);
        Snapshot {
            records: values(self.records.values().cloned().collect()),
            pages: values(self.pages.values().cloned().collect()),
            history: values(self.history.values().cloned().collect()),
            origins: self.origins.values().cloned().collect(),
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
            .chain(self.pages.values())
            .chain(self.history.values())
            .map(Vec::len)
            .sum()
    }
}
