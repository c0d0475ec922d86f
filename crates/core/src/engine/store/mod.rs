//! Durability as a log: each storage write appends one record holding everything the step
//! changed (documents, transactions written, transactions settled, the checkpoint, sync-log
//! entries), and compaction folds records into snapshot pages in bounded slices when storage is
//! idle. Storage is a key-value store the driver executes [`StoreOp`]s on, all of one write in
//! one transaction; the engine is rebuilt from its records and pages on load (see `load`).
//!
//! A transaction's record is written when it is committed and again only when something a
//! reload must see changes (its wire ids, a conflict's resolution, a retry count); states that
//! follow from durability are derived on load, and its end is a `finished` entry (the history's
//! copy of it) in a later record, written with whatever comes next. Compaction moves the
//! `finished` entries of the records it folds into history pages, each holding a range of
//! transaction ids and about `history_page_bytes` (a page that grows past it is split, so a
//! compaction rewrites a page's worth of the history, not the history); pages wholly below the
//! history's floor are deleted.

mod bytes;
mod codec;
#[cfg(test)]
mod fixed_layout;
mod layout;
mod load;
mod memory;
mod packed;
mod stored_tx;
mod tx_head;

pub use codec::{doc_size, HistoryPage, Page, Pieces, Record, RecordMeta};
pub use layout::{hash, index_for};
pub use memory::MemoryStore;
pub(super) use packed::{Packed, PackedHistory};
pub use stored_tx::StoredTx;

use super::history::DocsMut;
use super::{Engine, Origin};
use crate::document::Document;
use crate::hlc::Hlc;
use crate::transaction::TxId;
use crate::{ClientId, Code, DocId, Millis, MutationId, Version};
use layout::{Log, Unfolded};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// A log this many times over its limits is compacted with ordinary writes too, so an engine
/// that is never idle still keeps its log bounded.
const LOG_OVERDUE: usize = 8;

/// When the log is compacted, and how pages are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageTuning {
    /// Compaction is due once the log holds more records than this… (Folding a record
    /// rewrites the pages it touched, which single writes spread over all of them: a log of
    /// `n` records costs a rewrite of the pages every `n` writes at most.)
    pub log_records: usize,
    /// …or more bytes than this.
    pub log_bytes: usize,
    /// About how many bytes one compaction slice rewrites: its pages, then history pages
    /// written ahead with what its pages leave (a storage write holds them all at once).
    pub slice_bytes: usize,
    /// A collection's pages are split once they average more bytes than this.
    pub page_bytes: usize,
    /// A history page is split once it would hold more bytes than this.
    pub history_page_bytes: usize,
}

impl Default for StorageTuning {
    fn default() -> Self {
        StorageTuning {
            log_records: 1024,
            log_bytes: 2 * 1024 * 1024,
            slice_bytes: 1024 * 1024,
            page_bytes: 512 * 1024,
            history_page_bytes: 64 * 1024,
        }
    }
}

/// The engine's own stored fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoint {
    /// This database's client id.
    pub client_id: ClientId,
    /// The pull cursor.
    pub cursor: Version,
    /// The next wire mutation id to assign.
    pub next_mutation_id: MutationId,
    /// The next transaction id to assign.
    pub next_tx: u64,
    /// The last clock reading, so timestamps keep increasing across reloads.
    pub clock: Hlc,
    /// The history holds no transaction with a smaller id (the retention dropped them).
    #[serde(default)]
    pub history_floor: u64,
    /// How many finished transactions the retention has dropped in all.
    #[serde(default)]
    pub history_dropped: u64,
}

crate::deserialize_object!(Checkpoint {
    "client_id" => client_id: ClientId,
    "cursor" => cursor: Version,
    "next_mutation_id" => next_mutation_id: MutationId,
    "next_tx" => next_tx: u64,
    "clock" => clock: Hlc,
    "history_floor" => history_floor: u64 = default,
    "history_dropped" => history_dropped: u64 = default,
});

/// What storage holds, handed to the engine at start: every log record and page, as stored.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The log records' bytes, in the order of their sequence numbers (their keys).
    pub records: StoredValues,
    /// The pages' bytes (in any order).
    pub pages: StoredValues,
    /// The history pages' bytes (in any order).
    pub history: StoredValues,
    /// The origin records of other tabs' requests ([`StorageWrite::origins`]).
    pub origins: Vec<Origin>,
}

/// Stored values (log records, pages or history pages) that a load takes one at a time: a
/// driver brings each into memory only when it is taken, and the load drops it once decoded,
/// so memory holds one of them at a time beside what the load builds, never all of them.
pub struct StoredValues {
    values: Box<dyn Iterator<Item = Vec<u8>>>,
    bytes: usize,
}

impl StoredValues {
    /// The values `values` yields, each produced when the load reaches it, `bytes` long in all
    /// (the load makes room for the documents by it before it has read them).
    pub fn new(values: impl Iterator<Item = Vec<u8>> + 'static, bytes: usize) -> Self {
        StoredValues {
            values: Box::new(values),
            bytes,
        }
    }

    /// How many bytes the values hold in all.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Default for StoredValues {
    /// None.
    fn default() -> Self {
        StoredValues::new(std::iter::empty(), 0)
    }
}

impl From<Vec<Vec<u8>>> for StoredValues {
    /// Values already in memory (each dropped once taken).
    fn from(values: Vec<Vec<u8>>) -> Self {
        let bytes = values.iter().map(Vec::len).sum();
        StoredValues::new(values.into_iter(), bytes)
    }
}

impl Iterator for StoredValues {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        self.values.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.values.size_hint()
    }
}

impl std::fmt::Debug for StoredValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredValues")
    }
}

/// One operation on storage.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// Store a log record under its sequence number.
    PutRecord {
        /// Its key.
        seq: u64,
        /// Its bytes ([`Record::encode`]).
        bytes: Vec<u8>,
    },
    /// Store a page under its collection and index (replacing the page there).
    PutPage {
        /// Its collection.
        collection: String,
        /// Its index.
        index: u32,
        /// Its bytes ([`Page::encode`]).
        bytes: Vec<u8>,
    },
    /// Delete the log records `from..=to`.
    DeleteRecords {
        /// The first.
        from: u64,
        /// The last.
        to: u64,
    },
    /// Store a history page under its index (replacing the page there).
    PutHistory {
        /// Its index.
        index: u32,
        /// Its bytes ([`HistoryPage::pieces`]).
        bytes: Pieces,
    },
    /// Delete the history page with this index.
    DeleteHistory {
        /// Its index.
        index: u32,
    },
}

/// One storage write: operations to apply in one storage transaction, all or nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageWrite {
    /// Report this token in `Persisted` / `PersistFailed`.
    pub token: u64,
    /// The operations, in order.
    pub ops: Vec<StoreOp>,
    /// Origin records to store (replacing those of the same request), beside the operations.
    pub origins: Vec<Origin>,
    /// The requests whose origin records to delete.
    pub dropped_origins: Vec<String>,
}

impl StorageWrite {
    /// How many bytes it stores.
    pub fn bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                StoreOp::PutRecord { bytes, .. } | StoreOp::PutPage { bytes, .. } => bytes.len(),
                StoreOp::PutHistory { bytes, .. } => bytes.len(),
                StoreOp::DeleteRecords { .. } | StoreOp::DeleteHistory { .. } => 0,
            })
            .sum()
    }
}

/// What must be written, the write under way, and the log's shape.
#[derive(Debug, Clone, Default)]
pub(super) struct StoreState {
    pub docs: BTreeSet<(String, DocId)>,
    pub txs: BTreeSet<TxId>,
    pub logs: BTreeSet<u64>,
    pub checkpoint_dirty: bool,
    /// The driver said storage is idle (`Input::Compact`): the next write may compact.
    pub compact_now: bool,
    pub tuning: StorageTuning,
    log: Log,
    /// The record each unfinished transaction's newest version is in.
    tx_home: HashMap<TxId, TxHome>,
    /// The record each kept sync-log entry's newest version is in.
    log_home: HashMap<u64, u64>,
    /// The record each history entry not yet in its history page is in, by id.
    history_home: HashMap<TxId, u64>,
    /// The history floor when `history_home` last dropped what lies below it.
    history_home_floor: u64,
    /// The history pages in storage, by the ranges they hold (a few: a vector takes less code
    /// in the wasm than a map).
    history_pages: Vec<HistoryPlace>,
    /// The write in flight: its token and what it covered.
    in_flight: Option<InFlight>,
    next_token: u64,
    failures: u32,
    pub retry_at: Option<Millis>,
}

/// Where a transaction's newest stored version is.
#[derive(Debug, Clone, Copy)]
struct TxHome {
    /// The record holding it.
    seq: u64,
    /// Its mutations' hash ([`StoredTx::mutations_hash`]), when this engine wrote it: if they
    /// are unchanged when the transaction ends, its `finished` entry is its head alone.
    mutations: Option<u64>,
}

/// A history page in storage: it holds the kept entries from `first` up to the next page's
/// `first` (the lowest page, from the lowest id), stored under `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct HistoryPlace {
    pub first: TxId,
    pub key: u32,
}

/// A history page a write rewrites: its place, and the ids of the range it holds.
type HistoryDue = (HistoryPlace, std::ops::Range<TxId>);

/// The page stored at `place`, holding `txs`.
fn history_page(place: HistoryPlace, txs: Vec<StoredTx>) -> (HistoryPlace, HistoryPage) {
    let page = HistoryPage {
        index: place.key,
        first: place.first,
        txs,
    };
    (place, page)
}

/// A transaction a write stores: the revision written (0: its end), and its mutations' hash.
type Written = (TxId, u64, Option<u64>);

#[derive(Debug, Clone)]
struct InFlight {
    token: u64,
    seq: u64,
    docs: BTreeSet<(String, DocId)>,
    /// Transactions written.
    txs: Vec<Written>,
    /// Finished transactions written as their heads, with the record holding their mutations.
    heads: HashMap<TxId, u64>,
    logs: BTreeSet<u64>,
    checkpoint: bool,
    /// Pages rewritten, with their bytes; records folded.
    pages: Vec<(String, u32, usize)>,
    folded: Vec<u64>,
    /// History pages written (a rewritten page and those split from it), the ranges of ids
    /// they hold, and the keys of those deleted.
    history_written: Vec<HistoryPlace>,
    history_covered: Vec<std::ops::Range<TxId>>,
    history_deleted: Vec<u32>,
    /// Origin records written, and requests whose records it deletes.
    origins: Vec<Origin>,
    dropped_origins: Vec<String>,
}

/// What of the engine's state is not in storage yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwritten {
    /// Nothing: storage holds everything.
    Nothing,
    /// Only what the write under way carries.
    InFlight,
    /// Changes that wait for a write not issued yet (and maybe one under way).
    Waiting,
}

impl StoreState {
    /// Nothing written yet.
    pub(super) fn new(tuning: StorageTuning) -> Self {
        StoreState {
            tuning,
            ..StoreState::default()
        }
    }

    /// Whether a write would start now: something is dirty (or compaction was asked for and is
    /// due), none is under way, no retry waits.
    pub(super) fn can_flush(&self, now: Millis) -> bool {
        self.in_flight.is_none()
            && (self.is_dirty() || (self.compact_now && self.compaction_due()))
            && self.retry_at.is_none_or(|at| at <= now)
    }

    /// The token of the write under way (0 if none).
    pub(super) fn in_flight_token(&self) -> u64 {
        self.in_flight.as_ref().map_or(0, |w| w.token)
    }

    /// The token the next write issued gets.
    pub(super) fn next_token(&self) -> u64 {
        self.next_token
    }

    fn is_dirty(&self) -> bool {
        self.checkpoint_dirty
            || !self.docs.is_empty()
            || !self.txs.is_empty()
            || !self.logs.is_empty()
    }

    /// Whether the log has grown enough to fold some of it into pages.
    pub(super) fn compaction_due(&self) -> bool {
        self.log.len() > self.tuning.log_records || self.log.bytes() > self.tuning.log_bytes
    }

    /// Whether storage is idle with compaction due: the driver should feed `Compact` when it
    /// has time to spare.
    pub(super) fn wants_compaction(&self) -> bool {
        self.in_flight.is_none() && !self.is_dirty() && self.compaction_due()
    }

    fn overdue(&self) -> bool {
        self.log.len() > self.tuning.log_records * LOG_OVERDUE
            || self.log.bytes() > self.tuning.log_bytes * LOG_OVERDUE
    }
}

impl Engine {
    /// What of the engine's state is not in storage yet (see [`Unwritten`]).
    pub fn unwritten(&self) -> Unwritten {
        if self.store.is_dirty() {
            Unwritten::Waiting
        } else if self.store.in_flight.is_some() {
            Unwritten::InFlight
        } else {
            Unwritten::Nothing
        }
    }

    /// Emits one storage write with everything changed since the last (and a compaction slice
    /// when storage was idle or the log is overdue), unless one is under way.
    pub(super) fn flush(&mut self) {
        if !self.store.can_flush(self.now) {
            return;
        }
        self.store.retry_at = None;
        let token = self.store.next_token;
        self.store.next_token += 1;
        let seq = self.store.log.next_seq.max(1);
        self.store.log.next_seq = seq + 1;
        let compact = std::mem::take(&mut self.store.compact_now) || self.store.overdue();
        let compacting = compact && self.store.compaction_due();
        let (pages, folded) = if compacting {
            self.plan_compaction()
        } else {
            (Vec::new(), Vec::new())
        };
        let folding = crate::sort::set(folded.iter().copied());
        let (history_due, history_deleted) = self.plan_history(&folding, compacting);
        let docs = std::mem::take(&mut self.store.docs);
        let tx_ids = std::mem::take(&mut self.store.txs);
        let logs = std::mem::take(&mut self.store.logs);
        // Deleting history pages below the floor goes with a checkpoint holding that floor.
        let checkpoint = std::mem::take(&mut self.store.checkpoint_dirty)
            || !folded.is_empty()
            || !history_deleted.is_empty();
        let mut record = codec::Record {
            seq,
            ..codec::Record::default()
        };
        let mut unfolded = Unfolded::default();
        // The set is in collection order: each collection's documents come one after the other.
        for (collection, id) in &docs {
            unfolded.touch(collection, layout::hash(id));
            match self.collections.get(collection).and_then(|c| c.synced(id)) {
                Some(doc) => match record.docs.last_mut() {
                    Some((c, docs)) if c == collection => docs.push(doc.clone()),
                    _ => record.docs.push((collection.clone(), vec![doc.clone()])),
                },
                None => record.removed.push((collection.clone(), id.clone())),
            }
        }
        let mut written: Vec<Written> = Vec::new();
        let mut heads = HashMap::new();
        for id in &tx_ids {
            match self.txs.get_mut(id) {
                Some(entry) if !entry.tx.state.is_terminal() => {
                    if entry.revision > entry.written_revision {
                        entry.written_revision = entry.revision;
                        let stored = StoredTx::of(&entry.tx);
                        written.push((*id, entry.revision, Some(stored.mutations_hash())));
                        record.txs.push(stored);
                    }
                }
                _ => {
                    match self.history.get_mut(id) {
                        Some(entry) => {
                            let docs = DocsMut::new(
                                &mut self.collections,
                                &self.retired,
                                &mut self.packed_history,
                            );
                            let stored = entry.store(*id, docs);
                            // Its mutations are in a record that stays: its head is enough.
                            match self.store.tx_home.get(id) {
                                Some(home)
                                    if home.mutations == Some(stored.mutations_hash())
                                        && self.store.log.contains(home.seq)
                                        && !folded.contains(&home.seq) =>
                                {
                                    heads.insert(*id, home.seq);
                                    record.finished_heads.push(stored.head());
                                }
                                _ => record.finished.push(stored),
                            }
                        }
                        None if self.store.tx_home.contains_key(id) => {
                            record.meta.settled.push(*id)
                        }
                        None => {}
                    }
                    written.push((*id, 0, None));
                }
            }
        }
        record.meta.checkpoint = checkpoint.then(|| self.checkpoint());
        record.meta.sync_log = logs
            .iter()
            .filter_map(|id| self.log_entry(*id).cloned())
            .collect();
        for (collection, docs) in &record.docs {
            if let Some(pages) = self.store.log.pages.get_mut(collection) {
                for doc in docs {
                    pages.grow(layout::hash(doc.id()), codec::doc_size(doc));
                }
            }
        }
        let bytes = record.encode();
        unfolded.bytes = bytes.len();
        self.store.log.insert(seq, unfolded);
        let mut ops = vec![StoreOp::PutRecord { seq, bytes }];
        let mut page_sizes = Vec::new();
        for (collection, index) in &pages {
            // A split adds a page: the divided one is written under the new count too.
            let count = pages
                .iter()
                .filter(|(c, _)| c == collection)
                .map(|(_, i)| *i as usize + 1)
                .chain(self.store.log.pages.get(collection).map(|p| p.count()))
                .max()
                .unwrap_or(1);
            let bytes = self.encode_page(collection, *index, seq, count);
            page_sizes.push((collection.clone(), *index, bytes.len()));
            ops.push(StoreOp::PutPage {
                collection: collection.clone(),
                index: *index,
                bytes,
            });
        }
        let mut history_written = Vec::new();
        let paged: usize = page_sizes.iter().map(|(_, _, bytes)| bytes).sum();
        let ahead = self.store.tuning.slice_bytes.saturating_sub(paged);
        let (history_pages, history_covered) =
            self.encode_history_pages(&history_due, &folding, ahead);
        for (place, page) in history_pages {
            history_written.push(place);
            ops.push(StoreOp::PutHistory {
                index: place.key,
                bytes: page.pieces(),
            });
        }
        ops.extend(
            history_deleted
                .iter()
                .map(|&index| StoreOp::DeleteHistory { index }),
        );
        if let (Some(&from), Some(&to)) = (folded.first(), folded.last()) {
            ops.push(StoreOp::DeleteRecords { from, to });
        }
        let write = StorageWrite {
            token,
            ops,
            origins: self.origins_to_write(written.iter().map(|(id, _, _)| *id)),
            dropped_origins: self.take_dropped_origins(),
        };
        self.store.in_flight = Some(InFlight {
            token,
            seq,
            docs,
            txs: written,
            heads,
            logs,
            checkpoint,
            pages: page_sizes,
            folded,
            history_written,
            history_covered,
            history_deleted,
            origins: write.origins.clone(),
            dropped_origins: write.dropped_origins.clone(),
        });
        self.out.effects.push(super::Effect::Persist(write));
    }

    /// Chooses a compaction slice: the pages to rewrite (a due split first, else the pages the
    /// oldest records left stale, laying out the first pages of collections that have none)
    /// and the records that fold once they are. What lives only in a folding record (an
    /// unfinished transaction's newest version, a kept sync-log entry) is marked to be written
    /// again with this write.
    fn plan_compaction(&mut self) -> (Vec<(String, u32)>, Vec<u64>) {
        let mut pages = self.due_split();
        if pages.is_empty() {
            self.lay_out_pages();
            pages = self.store.log.stale_pages(self.store.tuning.slice_bytes);
        }
        let folded = self.store.log.foldable(&pages);
        let folding = crate::sort::set(folded.iter().copied());
        for (id, home) in &self.store.tx_home {
            if folding.contains(&home.seq) {
                if let Some(entry) = self.txs.get_mut(id) {
                    entry.written_revision = 0;
                }
                self.store.txs.insert(*id);
            }
        }
        for (id, home) in &self.store.log_home {
            if folding.contains(home) {
                self.store.logs.insert(*id);
            }
        }
        (pages, folded)
    }

    /// The history pages this write rewrites and deletes (those wholly below the floor, or
    /// left empty). It must rewrite the pages of the entries in the records it folds (the
    /// first page when there is none yet); a compaction also writes ahead those of entries
    /// whose records stay, with what its pages leave of a slice's bytes (see
    /// `encode_history_pages`), so that when many records fold at once their entries are
    /// mostly in pages already.
    fn plan_history(
        &self,
        folding: &BTreeSet<u64>,
        compacting: bool,
    ) -> (Vec<HistoryDue>, Vec<u32>) {
        let floor = TxId(self.history_floor);
        let pages = &self.store.history_pages;
        let mut due = Vec::new();
        for (id, home) in &self.store.history_home {
            if *id >= floor && (compacting || folding.contains(home)) {
                let page = pages.partition_point(|p| p.first <= *id).max(1) - 1;
                crate::sort::insert_sorted(&mut due, page);
            }
        }
        let due = due.into_iter().map(|page| match pages.get(page) {
            Some(place) => {
                let start = if page == 0 { TxId(0) } else { place.first };
                let end = pages.get(page + 1).map_or(TxId(u64::MAX), |p| p.first);
                (*place, start..end)
            }
            None => {
                let first = TxId(0);
                (HistoryPlace { first, key: 0 }, first..TxId(u64::MAX))
            }
        });
        let (written, emptied): (Vec<HistoryDue>, Vec<HistoryDue>) =
            due.partition(|(_, range)| self.history.range(range.clone()).next().is_some());
        let below = pages
            .windows(2)
            .filter(|pair| pair[1].first <= floor)
            .map(|pair| pair[0].key);
        let deleted = below
            .chain(emptied.iter().map(|(place, _)| place.key))
            .collect();
        (written, deleted)
    }

    /// The pages `due` as this write stores them, and the ranges of ids they hold: each page
    /// with the kept entries of its range, those past `history_page_bytes` split off into
    /// pages of their own under new keys. Once `budget` bytes are written, a page ends before
    /// an entry when every entry from there on is neither in a page already nor in a record
    /// this write folds (those stay where they are until a later write).
    fn encode_history_pages(
        &self,
        due: &[HistoryDue],
        folding: &BTreeSet<u64>,
        mut budget: usize,
    ) -> (Vec<(HistoryPlace, HistoryPage)>, Vec<std::ops::Range<TxId>>) {
        let limit = self.store.tuning.history_page_bytes;
        let home = &self.store.history_home;
        let mut next_key = self.store.history_pages.iter().map(|p| p.key + 1).max();
        let mut pages: Vec<(HistoryPlace, HistoryPage)> = Vec::new();
        let mut covered = Vec::new();
        for (place, range) in due {
            // The last entry this write must hold: one in a page already, or folding.
            let must = self
                .history
                .range(range.clone())
                .rev()
                .find(|(id, _)| home.get(id).is_none_or(|seq| folding.contains(seq)))
                .map(|(id, _)| *id);
            let mut bytes = 0;
            let mut end = range.end;
            let mut current = (*place, Vec::new());
            for (id, entry) in self.history.range(range.clone()) {
                if budget == 0 && must.is_none_or(|must| *id > must) {
                    end = *id;
                    break;
                }
                let stored = entry.stored(*id, self.history_docs());
                let size = codec::txs_size(std::slice::from_ref(&stored));
                if !current.1.is_empty() && bytes + size > limit {
                    let key = next_key.unwrap_or(place.key + 1);
                    next_key = Some(key + 1);
                    let next = (HistoryPlace { first: *id, key }, Vec::new());
                    let (place, txs) = std::mem::replace(&mut current, next);
                    pages.push(history_page(place, txs));
                    bytes = 0;
                }
                bytes += size;
                budget = budget.saturating_sub(size);
                current.1.push(stored);
            }
            let (place, txs) = current;
            if !txs.is_empty() {
                pages.push(history_page(place, txs));
                covered.push(range.start..end);
            }
        }
        (pages, covered)
    }

    /// The collections the log touches, with their documents' bytes in all.
    fn logged_collections(&self) -> Vec<(String, usize)> {
        let touched = crate::sort::set(
            self.store
                .log
                .records()
                .flat_map(|(_, r)| r.touched.iter().map(|(c, _)| c.as_str())),
        );
        touched
            .into_iter()
            .filter_map(|name| {
                let collection = self.collections.get(name)?;
                let total = collection.synced_docs().map(codec::doc_size).sum();
                Some((name.to_owned(), total))
            })
            .collect()
    }

    /// A split the first collection that needs one is due for: both pages it writes.
    fn due_split(&self) -> Vec<(String, u32)> {
        for (name, total) in self.logged_collections() {
            let Some(pages) = self.store.log.pages.get(&name) else {
                continue;
            };
            if let Some((divided, new)) = pages.due_split(total, self.store.tuning.page_bytes) {
                return vec![(name.clone(), new), (name, divided)];
            }
        }
        Vec::new()
    }

    /// Lays out the first pages of every logged collection that has none (none is written
    /// yet: they are stale until compaction writes them).
    fn lay_out_pages(&mut self) {
        for (name, total) in self.logged_collections() {
            if !self.store.log.pages.contains_key(&name) {
                let pages = layout::Pages::lay_out(total, self.store.tuning.page_bytes);
                self.store.log.pages.insert(name, pages);
            }
        }
    }

    /// The bytes of page `index` of `collection` (one of `count` pages) as it will be once this
    /// write lands: every synced document whose id goes there (borrowed, not copied: a
    /// compaction slice encodes a megabyte of pages).
    fn encode_page(&self, collection: &str, index: u32, seq: u64, count: usize) -> Vec<u8> {
        let docs: Vec<&Document> = self
            .collections
            .get(collection)
            .into_iter()
            .flat_map(|c| c.synced_docs())
            .filter(|doc| index_for(count, layout::hash(doc.id())) == Some(index))
            .collect();
        Page {
            collection: collection.to_owned(),
            index,
            count: count as u32,
            as_of: seq,
            docs,
        }
        .encode()
    }

    /// A write is durable: its transactions' revisions are, the pages it rewrote include
    /// everything up to it, the records it folded are gone, and the next write may go.
    pub(super) fn persisted(&mut self, token: u64) {
        let Some(done) = self.store.in_flight.take_if(|w| w.token == token) else {
            return;
        };
        self.store.failures = 0;
        for (collection, index, bytes) in done.pages {
            self.store
                .log
                .pages
                .entry(collection)
                .or_default()
                .written(index, done.seq, bytes);
        }
        for seq in &done.folded {
            self.store.log.remove(*seq);
        }
        let kept = crate::sort::set(self.status.log_ids());
        for id in done.logs.iter().filter(|id| kept.contains(id)) {
            self.store.log_home.insert(*id, done.seq);
        }
        self.store.log_home.retain(|id, _| kept.contains(id));
        for (id, revision, mutations) in done.txs {
            // Revision 0 is a settlement: the transaction is gone from the outbox in storage
            // (and its history entry, if kept, is in this record, or its head is and its
            // mutations are in the record its last version is in).
            if revision == 0 {
                self.store.tx_home.remove(&id);
                if self.history.contains_key(&id) {
                    let home = done.heads.get(&id).copied().unwrap_or(done.seq);
                    self.store.history_home.insert(id, home);
                }
                continue;
            }
            // A transaction that finished meanwhile is still stored as written: its settlement
            // follows in the next write.
            let home = TxHome {
                seq: done.seq,
                mutations,
            };
            self.store.tx_home.insert(id, home);
            let Some(entry) = self.txs.get_mut(&id).filter(|e| !e.tx.state.is_terminal()) else {
                continue;
            };
            if revision > entry.durable_revision {
                if entry.durable_revision == 0 {
                    self.out.durable.push(id);
                }
                entry.durable_revision = revision;
            }
        }
        self.history_persisted(
            &done.history_written,
            &done.history_covered,
            &done.history_deleted,
        );
        self.origins_persisted(&done.origins);
        self.status.storage_ok();
        self.answer_writes(token);
    }

    /// History pages were written (they hold the ranges `covered`'s entries) or deleted.
    fn history_persisted(
        &mut self,
        written: &[HistoryPlace],
        covered: &[std::ops::Range<TxId>],
        deleted: &[u32],
    ) {
        let store = &mut self.store;
        store
            .history_pages
            .retain(|p| !deleted.contains(&p.key) && !written.iter().any(|w| w.key == p.key));
        for place in written {
            crate::sort::insert_sorted(&mut store.history_pages, *place);
        }
        // What the retention dropped is below the floor (it drops the oldest and raises the
        // floor past them), and a page written holds its range's entries. This runs after
        // every write and the map holds every entry since the last compaction, so it is
        // visited only when the floor moved or pages were written.
        let floor = self.history_floor;
        if floor == store.history_home_floor && written.is_empty() {
            return;
        }
        store.history_home_floor = floor;
        store
            .history_home
            .retain(|id, _| id.0 >= floor && !covered.iter().any(|range| range.contains(id)));
    }

    /// A write failed: nothing of it exists; what it covered is written again later, and the
    /// status shows the error.
    pub(super) fn persist_failed(&mut self, token: u64, message: String, quota: bool) {
        let Some(failed) = self.store.in_flight.take_if(|w| w.token == token) else {
            return;
        };
        self.store.log.remove(failed.seq);
        self.store.docs.extend(failed.docs);
        for (id, _, _) in failed.txs {
            if let Some(entry) = self.txs.get_mut(&id) {
                entry.written_revision = entry.durable_revision;
            }
            self.store.txs.insert(id);
        }
        self.store.logs.extend(failed.logs);
        self.store.checkpoint_dirty |= failed.checkpoint;
        self.origins_failed(failed.dropped_origins);
        self.store.failures += 1;
        self.store.retry_at = Some(self.now + self.config.retry.ceiling(self.store.failures));
        let code = if quota {
            Code::StorageQuota
        } else {
            Code::StorageFailed
        };
        self.status
            .storage_failed(code, format!("storage: {message}"));
    }

    /// Storage was emptied (the browser's data was cleared): the log starts over and
    /// everything is written again from memory.
    pub(super) fn storage_reset(&mut self) {
        let next_seq = self.store.log.next_seq;
        self.store.log = Log::default();
        self.store.log.next_seq = next_seq;
        self.store.tx_home.clear();
        self.store.log_home.clear();
        self.store.history_home.clear();
        self.store.history_pages.clear();
        self.store.checkpoint_dirty = true;
        self.store.txs.extend(self.history.keys());
        for (name, collection) in &self.collections {
            self.store.docs.extend(
                collection
                    .synced_docs()
                    .map(|doc| (name.clone(), doc.id().to_owned())),
            );
        }
        for (id, entry) in self.txs.iter_mut() {
            if !entry.tx.state.is_terminal() {
                entry.revision += 1;
                self.store.txs.insert(*id);
            }
        }
        self.store.logs.extend(self.status.log_ids());
        self.origins_reset();
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            client_id: self.client_id.clone(),
            cursor: self.cursor,
            next_mutation_id: self.next_mutation_id,
            next_tx: self.next_tx,
            clock: self.clock.last(),
            history_floor: self.history_floor,
            history_dropped: self.stats().history_dropped,
        }
    }
}
