//! Rebuilding the engine from storage: the pages are read in, then the log records are replayed
//! over them in order, each change skipped where the document's page already includes it.
//! Documents are not parsed: their fields stay the JSON text stored.

use super::codec::{HistoryPage, Page, Record};
use super::layout::{hash, Pages, Unfolded};
use super::{HistoryPlace, Snapshot, StoredTx, StoredValues, TxHome};
use crate::engine::history::Archived;
use crate::engine::{Engine, SyncLogEntry, TxEntry, INTERRUPTED};
use crate::hlc::{node_of, Hlc, HybridClock};
use crate::id_map::IdMap;
use crate::transaction::{Transaction, TxId, TxState};
use crate::{Code, CoreError};
use std::collections::HashMap;

/// A collection's pages as read: its page count, and each written page's `as_of` and bytes.
type Layout = (usize, IdMap<u32, (u64, usize)>);

impl Engine {
    /// Rebuilds the engine from storage. Transactions that were on the wire go back to pending
    /// with their ids and are re-sent; the server's idempotency makes that safe. With a custom
    /// backend, those persisted and awaiting sync count as done.
    pub(in crate::engine) fn load(&mut self, snapshot: Snapshot) -> Result<(), CoreError> {
        if self.loaded {
            return Err(CoreError::AlreadyLoaded);
        }
        // Each stored value is taken from storage when the load reaches it and dropped once
        // decoded, so its memory serves what is decoded next: a load holds one stored value
        // beside what it has built, never everything stored. Records come in the order of
        // their sequence numbers (storage's key order), the order they are replayed in.
        let Snapshot {
            records,
            pages,
            history,
            origins,
        } = snapshot;
        self.load_pages(pages)?;
        // Transactions stay their stored bytes: only those still unfinished at the end are
        // decoded here; the history's entries are decoded when first read.
        let mut txs: IdMap<TxId, StoredTx> = IdMap::new();
        let mut history = self.load_history_pages(history)?;
        let mut logs: IdMap<u64, SyncLogEntry> = IdMap::new();
        let mut checkpoint = None;
        let mut unread = records.bytes();
        for stored in records {
            let mut record = Record::decode(&stored)?;
            let (seq, bytes) = (record.seq, stored.len());
            drop(stored);
            if seq < self.store.log.next_seq {
                return Err(CoreError::CorruptStorage(format!(
                    "the log records are out of order: record {seq} comes after record {}",
                    self.store.log.next_seq - 1
                )));
            }
            self.reserve_for_log(&record, bytes, unread);
            unread = unread.saturating_sub(bytes);
            let unfolded = Unfolded {
                bytes,
                ..self.replay_docs(&mut record)
            };
            self.store.log.insert(seq, unfolded);
            self.store.log.next_seq = seq + 1;
            for tx in record.txs {
                let home = TxHome {
                    seq,
                    mutations: None,
                };
                self.store.tx_home.insert(tx.id, home);
                txs.insert(tx.id, tx);
            }
            for id in record.meta.settled {
                self.store.tx_home.remove(&id);
                txs.remove(&id);
            }
            for tx in record.finished {
                self.store.tx_home.remove(&tx.id);
                txs.remove(&tx.id);
                self.store.history_home.insert(tx.id, seq);
                self.load_entry(&mut history, &tx);
            }
            for head in record.finished_heads {
                // Its mutations are in the record its last version is in, unless compaction
                // folded that record: then its history page holds it whole.
                let (Some(body), Some(home)) =
                    (txs.remove(&head.id), self.store.tx_home.remove(&head.id))
                else {
                    continue;
                };
                self.store.history_home.insert(head.id, home.seq);
                self.load_entry(&mut history, &head.with_mutations_of(&body));
            }
            for mut entry in record.meta.sync_log {
                if entry.created_at == 0 {
                    entry.created_at = entry.started_at;
                }
                self.store.log_home.insert(entry.id, seq);
                logs.insert(entry.id, entry);
            }
            checkpoint = record.meta.checkpoint.or(checkpoint);
        }
        // The documents went in without `show`: what is derived from them follows at once.
        for collection in self.collections.values_mut() {
            collection.index_all();
        }
        match checkpoint {
            Some(cp) => {
                self.client_id = cp.client_id;
                self.cursor = cp.cursor;
                self.next_mutation_id = cp.next_mutation_id;
                self.next_tx = cp.next_tx;
                self.clock = HybridClock::new(node_of(&self.client_id), cp.clock);
                self.history_floor = cp.history_floor;
                self.status.load_history_dropped(cp.history_dropped);
            }
            None => {
                self.client_id = format!("c{:016x}", self.rng.next_u64());
                self.clock = HybridClock::new(node_of(&self.client_id), Hlc::default());
                self.store.checkpoint_dirty = true;
            }
        }
        let txs = txs
            .values()
            .map(StoredTx::decode)
            .collect::<Result<Vec<_>, _>>()?;
        self.load_transactions(txs.into_iter())?;
        let floor = TxId(self.history_floor);
        while let Some((&id, _)) = history.first_key_value().filter(|(id, _)| **id < floor) {
            if let Some(entry) = history.remove(&id) {
                entry.release(&mut self.packed_history);
            }
        }
        self.history = history;
        self.store.history_home.retain(|id, _| *id >= floor);
        // The retention may keep less than when these were stored.
        self.apply_retention();
        let kept = logs.len().saturating_sub(super::super::SYNC_LOG_KEPT);
        self.load_log(logs.into_values().skip(kept).collect());
        let kept_logs: Vec<u64> = self.status.log_ids().collect();
        self.store.log_home.retain(|id, _| kept_logs.contains(id));
        self.load_origins(origins);
        self.loaded = true;
        Ok(())
    }

    /// Reads the history pages: finished transactions by id.
    fn load_history_pages(
        &mut self,
        stored: StoredValues,
    ) -> Result<IdMap<TxId, Archived>, CoreError> {
        let mut history = IdMap::new();
        for bytes in stored {
            let page = HistoryPage::decode(bytes)?;
            // A page's range starts where it was written to start.
            let place = HistoryPlace {
                first: page.first,
                key: page.index,
            };
            crate::sort::insert_sorted(&mut self.store.history_pages, place);
            for tx in page.txs {
                self.load_entry(&mut history, &tx);
            }
        }
        Ok(history)
    }

    /// Puts `stored` in `history`, the history being loaded, in place of an older version of
    /// it there.
    fn load_entry(&mut self, history: &mut IdMap<TxId, Archived>, stored: &StoredTx) {
        let entry = Archived::from_stored(stored, &mut self.packed_history);
        if let Some(older) = history.insert(stored.id, entry) {
            older.release(&mut self.packed_history);
        }
    }

    /// Reads the pages into the collections (pages of collections no longer configured stay
    /// in storage untouched). A collection has as many pages as the newest page says; those
    /// not written yet hold nothing.
    fn load_pages(&mut self, stored: StoredValues) -> Result<(), CoreError> {
        let mut layouts: HashMap<String, Layout> = HashMap::new();
        for bytes in stored {
            let page = Page::decode(&bytes)?;
            drop(bytes);
            let Some(collection) = self.collections.get_mut(&page.collection) else {
                continue;
            };
            if !layouts.contains_key(&page.collection) {
                // Pages divide the documents by hash evenly: the first one read tells about
                // how many the collection's pages hold.
                collection.reserve_loaded(page.docs.len() * page.count as usize);
            }
            // Their size is counted as they go in, while each is in the cache.
            let mut bytes = 0;
            for doc in page.docs {
                bytes += super::codec::doc_size(&doc);
                collection.load_synced(doc);
            }
            let (count, written) = layouts.entry(page.collection).or_default();
            *count = (*count).max(page.count as usize);
            written.insert(page.index, (page.as_of, bytes));
        }
        for (collection, (count, written)) in layouts {
            if written.keys().any(|&index| index as usize >= count) {
                return Err(CoreError::CorruptStorage(format!(
                    "a page of collection `{collection}` lies past its page count"
                )));
            }
            let mut loaded = Pages::new(vec![0; count]);
            for (index, (as_of, bytes)) in written {
                loaded.written(index, as_of, bytes);
            }
            self.store.log.pages.insert(collection, loaded);
        }
        Ok(())
    }

    /// Makes room in each collection that `record` (`bytes` long) is the first to fill (no
    /// page or earlier record did) for the documents of the records left, `unread` bytes with
    /// this one, if they hold documents as densely as it does. Filling a set without room
    /// grows it by doubling, each time hashing every document again.
    fn reserve_for_log(&mut self, record: &Record, bytes: usize, unread: usize) {
        for (name, docs) in &record.docs {
            let Some(collection) = self.collections.get_mut(name) else {
                continue;
            };
            if collection.synced_docs().next().is_none() {
                // At most one document a byte, so the estimate stays below `unread`.
                let expected = docs.len() as u128 * unread as u128 / bytes.max(1) as u128;
                collection.reserve_loaded(expected.min(unread as u128) as usize);
            }
        }
    }

    /// Applies a record's documents (moved out of it) where their pages do not include them
    /// already; returns what it touched (in configured collections).
    fn replay_docs(&mut self, record: &mut Record) -> Unfolded {
        let mut unfolded = Unfolded::default();
        let seq = record.seq;
        for (name, docs) in std::mem::take(&mut record.docs) {
            let Some(collection) = self.collections.get_mut(&name) else {
                continue;
            };
            let pages = self.store.log.pages.get(&name);
            let touched = unfolded.group(&name, docs.len());
            for doc in docs {
                let h = hash(doc.id());
                touched.push(h);
                if !pages.is_some_and(|p| p.covers(h, seq)) {
                    collection.load_synced(doc);
                }
            }
        }
        for (name, id) in std::mem::take(&mut record.removed) {
            let Some(collection) = self.collections.get_mut(&name) else {
                continue;
            };
            let h = hash(&id);
            unfolded.touch(&name, h);
            if !self
                .store
                .log
                .pages
                .get(&name)
                .is_some_and(|p| p.covers(h, seq))
            {
                collection.unload(&id);
            }
        }
        unfolded
    }

    /// Takes the unfinished transactions back onto the overlay and into the outbox.
    fn load_transactions(
        &mut self,
        txs: impl Iterator<Item = Transaction>,
    ) -> Result<(), CoreError> {
        let merge = self.merge_fn();
        let mut persisted = Vec::new();
        for mut tx in txs.filter(|t| !t.state.is_terminal()) {
            if let Some(m) = tx
                .mutations
                .iter()
                .find(|m| !self.collections.contains_key(&m.collection))
            {
                return Err(CoreError::UnknownCollection(format!(
                    "{} (used by stored transaction {}; keep it in the configuration)",
                    m.collection, tx.id
                )));
            }
            if tx.state == TxState::PersistedAwaitingSync && self.is_custom() {
                persisted.push(tx.id);
            } else if tx.state != TxState::Queued {
                if tx.state != TxState::Pending {
                    let why = (Code::Network, INTERRUPTED.to_owned());
                    tx.finish_attempt(self.now, Some(why), None);
                }
                tx.state = TxState::Pending;
            }
            for m in &tx.mutations {
                self.collections
                    .get_mut(&m.collection)
                    .expect("checked")
                    .add_pending(tx.id, &m.doc_id, m.op.clone(), m.hlc, merge.as_ref());
                if let Some(wire) = m.wire_id {
                    self.wire_index.insert(wire, tx.id);
                    self.next_mutation_id = self.next_mutation_id.max(wire + 1);
                }
            }
            self.next_tx = self.next_tx.max(tx.id.0 + 1);
            let local_only = tx.mutations.iter().all(|m| !self.is_synced(&m.collection));
            if !local_only {
                self.unsynced += 1;
            }
            let id = tx.id;
            self.txs.insert(
                id,
                TxEntry {
                    tx,
                    revision: 1,
                    written_revision: 1,
                    durable_revision: 1,
                    local_only,
                    in_flight: None,
                    retry_at: None,
                    abandon: false,
                },
            );
            self.track(id);
        }
        self.finish_persisted_on_load(persisted);
        Ok(())
    }
}
