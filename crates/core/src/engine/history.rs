//! The transaction history: finished transactions, kept in memory for `transactions()` and in
//! storage across reloads, under a retention the application configures
//! (`transactionHistory: { keep, maxAgeMs }`; by default everything is kept).
//!
//! Retention drops the oldest entries first (by id): while more than `keep` are held, or while
//! the oldest finished more than `max_age_ms` ago. What it dropped is never silent: the
//! `historyDropped` stat counts it, kept across reloads, and everything below the *floor* (the
//! lowest id still kept) is gone from storage as well (see `store`).
//!
//! An entry read back from storage stays the bytes stored until it is first read
//! ([`Archived`]), so a reload does not decode a history nobody asks for. The entries' bytes
//! are packed many to a page ([`PackedHistory`]): an entry is an 8-byte place in the history's
//! map, not an allocation of its own.
//!
//! An entry of this session is *thin* once stored: an insert or a put whose document the
//! collection holds as it wrote it (same id, fields and timestamp) leaves the document's
//! fields out, and takes them from the collection when read or stored (storage holds full
//! copies: a reload has no other source for an older state). A document a thin entry refers
//! to carries a mark; before the engine replaces or removes a marked synced document, it keeps
//! it aside ([`Engine::replacing_synced`]), and at the step's end the entries whose mutations'
//! timestamps span a document kept aside are written again, holding their own copies where the
//! collection's document changed ([`Engine::materialize_history`]). Entries loaded from storage
//! stay whole.

use super::store::{Packed, PackedHistory, StoredTx};
use super::Engine;
use crate::collection::Collection;
use crate::doc_set::FastBuild;
use crate::document::{Document, Fields};
use crate::hlc::Hlc;
use crate::mutation::{Mutation, Op};
use crate::transaction::{Transaction, TxError, TxId, TxQuery, TxState};
use crate::{DocId, Millis};
use std::cell::OnceCell;
use std::collections::HashMap;
use std::iter::Peekable;

/// A history entry: a finished transaction, decoded from its bytes when read (until the
/// engine's next input), and encoded when first stored (then thin where it can be: see the
/// module's documentation), its bytes packed with other entries' ([`PackedHistory`]). At least
/// one of the two is held; the transaction is boxed, so an entry holding only its bytes is
/// small (its id is the history's key).
#[derive(Debug)]
pub(super) struct Archived {
    packed: Option<Packed>,
    tx: OnceCell<Box<Transaction>>,
}

impl Archived {
    /// A transaction that finished in this session.
    pub(super) fn finished(tx: Transaction) -> Self {
        Archived {
            packed: None,
            tx: OnceCell::from(Box::new(tx)),
        }
    }

    /// An entry as storage held it, its bytes packed in `packed`.
    pub(super) fn from_stored(stored: &StoredTx, packed: &mut PackedHistory) -> Self {
        Archived {
            packed: Some(packed.pack(stored.updated_at, &stored.bytes)),
            tx: OnceCell::new(),
        }
    }

    /// Lets go of its bytes in `packed` (the entry leaves the history).
    pub(super) fn release(self, packed: &mut PackedHistory) {
        if let Some(at) = self.packed {
            packed.release(at);
        }
    }

    /// When it last changed.
    fn updated_at(&self, packed: &PackedHistory) -> Millis {
        match (self.tx.get(), self.packed) {
            (Some(tx), _) => tx.updated_at,
            (None, Some(at)) => packed.get(at).0,
            (None, None) => unreachable!("an entry holds its bytes or its transaction"),
        }
    }

    /// The transaction (entry `id`), a thin entry's documents found in `docs`.
    pub(super) fn tx(&self, id: TxId, docs: Docs<'_>) -> &Transaction {
        self.tx.get_or_init(|| Box::new(self.decode(id, docs)))
    }

    /// Lets go of the transaction if the bytes it decodes from are held.
    fn forget_decoded(&mut self) {
        if self.packed.is_some() {
            self.tx.take();
        }
    }

    /// The transaction its bytes hold. Bytes that cannot be read (damaged storage) read as a
    /// failed transaction whose error says so, rather than hiding it.
    fn decode(&self, id: TxId, docs: Docs<'_>) -> Transaction {
        let at = self
            .packed
            .expect("an entry holds its bytes or its transaction");
        let (updated_at, bytes) = docs.packed.get(at);
        StoredTx::decode_thin(id, updated_at, bytes, &|c, doc, hlc| {
            docs.fields(c, doc, hlc)
        })
        .unwrap_or_else(|e| {
            let mut tx = Transaction::new(id, Vec::new(), updated_at);
            tx.error = Some(TxError::new(id, e.code(), e.to_string()));
            tx.state = TxState::Failed;
            tx
        })
    }

    /// The entry (`id`) as storage holds it. From then on memory holds only its bytes, thin
    /// where the collections hold its documents: several times smaller than the transaction,
    /// decoded again when read.
    pub(super) fn store(&mut self, id: TxId, mut docs: DocsMut<'_>) -> StoredTx {
        let stored = self.stored(id, docs.docs());
        if let Some(tx) = self.tx.take() {
            match (StoredTx::thin(&tx, &mut |m| docs.thins(m)), self.packed) {
                (Some(thin), Some(at)) if docs.packed.get(at).1 == &thin[..] => {}
                (Some(thin), _) => self.repack(tx.updated_at, &thin, docs.packed),
                (None, None) => self.repack(tx.updated_at, &stored.bytes, docs.packed),
                (None, Some(_)) => {}
            }
        }
        stored
    }

    /// The entry (`id`) as storage holds it (whole), a thin entry's documents found in `docs`.
    pub(super) fn stored(&self, id: TxId, docs: Docs<'_>) -> StoredTx {
        let whole = |tx: &Transaction| StoredTx::of(tx).bytes;
        let bytes = match (self.packed, self.tx.get()) {
            (Some(at), _) if StoredTx::thin_range(docs.packed.get(at).1).is_none() => {
                return docs.packed.stored(id, at);
            }
            (_, Some(tx)) => whole(tx),
            (Some(_), None) => whole(&self.decode(id, docs)),
            (None, None) => unreachable!("an entry holds its bytes or its transaction"),
        };
        StoredTx {
            id,
            updated_at: self.updated_at(docs.packed),
            bytes,
        }
    }

    /// Packs `bytes` as its bytes from now on, letting go of those it held.
    fn repack(&mut self, updated_at: Millis, bytes: &[u8], packed: &mut PackedHistory) {
        if let Some(old) = self.packed.replace(packed.pack(updated_at, bytes)) {
            packed.release(old);
        }
    }

    /// Writes a thin entry (`id`) again if it may refer to one of the documents `docs` kept
    /// aside (whose timestamps are `retired`, sorted): it holds its own copy of those from then
    /// on.
    fn materialize(&mut self, id: TxId, retired: &[Hlc], mut docs: DocsMut<'_>) {
        let Some(at) = self.packed else {
            return;
        };
        let Some((min, max)) = StoredTx::thin_range(docs.packed.get(at).1) else {
            return;
        };
        let first = retired.partition_point(|hlc| *hlc < min);
        if retired.get(first).is_none_or(|hlc| *hlc > max) {
            return;
        }
        let tx = match self.tx.take() {
            Some(tx) => *tx,
            None => self.decode(id, docs.docs()),
        };
        let bytes =
            StoredTx::thin(&tx, &mut |m| docs.thins(m)).unwrap_or_else(|| StoredTx::of(&tx).bytes);
        self.repack(tx.updated_at, &bytes, docs.packed);
    }
}

/// The synced documents that thin history entries may refer to and that a step replaced or
/// removed, by id (and collection), until the step's end.
#[derive(Debug, Default)]
pub(super) struct Retired(HashMap<DocId, Vec<(String, Document)>, FastBuild>);

/// Where history entries find their bytes (`packed`) and thin ones the documents they leave
/// out: the collections, and what a step kept aside from them.
#[derive(Clone, Copy)]
pub(super) struct Docs<'a> {
    collections: &'a HashMap<String, Collection>,
    retired: &'a Retired,
    packed: &'a PackedHistory,
}

impl<'a> Docs<'a> {
    /// The documents of `collections`, those `retired` kept aside, and the entries' bytes.
    pub(super) fn new(
        collections: &'a HashMap<String, Collection>,
        retired: &'a Retired,
        packed: &'a PackedHistory,
    ) -> Self {
        Docs {
            collections,
            retired,
            packed,
        }
    }

    /// The fields of the document of `collection` and `id` that the write at `hlc` made.
    fn fields(&self, collection: &str, id: &str, hlc: Hlc) -> Option<Fields> {
        let retired = self.retired.0.get(id).into_iter().flatten();
        retired
            .filter(|(c, _)| c == collection)
            .map(|(_, doc)| doc)
            .chain(self.collections.get(collection).and_then(|c| c.synced(id)))
            .find(|doc| doc.hlc() == hlc)
            .map(|doc| doc.fields().owned())
    }
}

/// [`Docs`], with the collections open to marking the documents thin entries refer to, and
/// the entries' bytes to packing.
pub(super) struct DocsMut<'a> {
    collections: &'a mut HashMap<String, Collection>,
    retired: &'a Retired,
    packed: &'a mut PackedHistory,
}

impl<'a> DocsMut<'a> {
    /// The documents of `collections`, those `retired` kept aside, and the entries' bytes.
    pub(super) fn new(
        collections: &'a mut HashMap<String, Collection>,
        retired: &'a Retired,
        packed: &'a mut PackedHistory,
    ) -> Self {
        DocsMut {
            collections,
            retired,
            packed,
        }
    }

    /// The same documents and bytes, to read.
    fn docs(&self) -> Docs<'_> {
        Docs::new(self.collections, self.retired, self.packed)
    }

    /// Whether an entry may leave `m`'s fields out: it inserts or puts the document the
    /// collection holds (same fields and timestamp). The document is marked if so.
    fn thins(&mut self, m: &Mutation) -> bool {
        let (Op::Insert { fields } | Op::Put { fields }) = &m.op else {
            return false;
        };
        self.collections.get_mut(&m.collection).is_some_and(|c| {
            c.mark_synced(&m.doc_id, |doc| {
                doc.hlc() == m.hlc && !doc.deleted() && doc.fields_json() == fields.as_json()
            })
        })
    }
}

/// How much of the history is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryRetention {
    /// At most this many finished transactions (the newest); `None`: all.
    pub keep: Option<usize>,
    /// Finished transactions are dropped this long after they finished; `None`: never.
    pub max_age_ms: Option<Millis>,
}

impl HistoryRetention {
    /// Whether the oldest entry (last changed at `oldest`) must go: more than `keep` are held,
    /// or it is too old.
    fn drops(&self, held: usize, oldest: Millis, now: Millis) -> bool {
        self.keep.is_some_and(|keep| held > keep)
            || self
                .max_age_ms
                .is_some_and(|age| oldest.saturating_add(age) < now)
    }
}

impl Engine {
    /// A transaction: unfinished, or in the history.
    pub fn transaction(&self, id: TxId) -> Option<&Transaction> {
        self.txs
            .get(&id)
            .map(|e| &e.tx)
            .or_else(|| self.history.get(&id).map(|a| self.read(id, a)))
    }

    /// Whether the history keeps transaction `id`, once finished, for as long as this engine
    /// runs: its retention keeps everything (the default) and `id` is not below the floor an
    /// earlier retention left. Whoever needs the finished transaction later may then read it
    /// here instead of keeping a copy.
    pub fn history_keeps(&self, id: TxId) -> bool {
        self.config.history == HistoryRetention::default() && id.0 >= self.history_floor
    }

    /// A finished transaction as storage holds it, if the history keeps it, for whoever keeps
    /// the transaction beside it.
    pub fn stored_transaction(&self, id: TxId) -> Option<StoredTx> {
        self.history
            .get(&id)
            .map(|a| a.stored(id, self.history_docs()))
    }

    /// Every transaction the engine holds (unfinished, and the history), oldest first.
    pub fn transactions(&self) -> Vec<&Transaction> {
        let mut all: Vec<&Transaction> = self.newest_first(None).collect();
        all.reverse();
        all
    }

    /// The transactions `query` selects (see [`TxQuery`]), oldest first.
    pub fn query_transactions(&self, query: &TxQuery) -> Vec<&Transaction> {
        query.select(self.newest_first(query.before))
    }

    /// The unfinished transactions, oldest first.
    pub fn unfinished(&self) -> impl Iterator<Item = &Transaction> {
        self.txs.values().map(|e| &e.tx)
    }

    /// The `limit` newest entries of the history, oldest first.
    pub fn recent_history(&self, limit: usize) -> impl Iterator<Item = &Transaction> {
        let skip = self.history.len().saturating_sub(limit);
        let entries = self.history.iter().skip(skip);
        entries.map(|(id, a)| self.read(*id, a))
    }

    /// Transactions below `before` (all without it), newest first, lazily merged from the
    /// unfinished ones and the history.
    fn newest_first(&self, before: Option<TxId>) -> impl Iterator<Item = &Transaction> {
        let end = before.unwrap_or(TxId(u64::MAX));
        let unfinished = self.txs.range(..end).rev().map(|(_, e)| &e.tx);
        let finished = self
            .history
            .range(..end)
            .rev()
            .map(|(id, a)| self.read(*id, a));
        Descending {
            a: unfinished.peekable(),
            b: finished.peekable(),
        }
    }

    /// History entry `a`'s transaction (of id `id`). One decoded for this read is noted, and
    /// let go at the next input: an app reading its history does not keep it decoded for good.
    fn read<'a>(&'a self, id: TxId, a: &'a Archived) -> &'a Transaction {
        if a.tx.get().is_none() {
            self.decoded.borrow_mut().push(id);
        }
        a.tx(id, self.history_docs())
    }

    /// Lets go of the history entries decoded for reads since the last input.
    pub(super) fn forget_decoded(&mut self) {
        for id in std::mem::take(self.decoded.get_mut()) {
            if let Some(entry) = self.history.get_mut(&id) {
                entry.forget_decoded();
            }
        }
    }

    /// Where history entries find their bytes, and thin ones their documents.
    pub(super) fn history_docs(&self) -> Docs<'_> {
        Docs::new(&self.collections, &self.retired, &self.packed_history)
    }

    /// Keeps synced document `id` of `collection` aside if a thin history entry may refer to
    /// it: called before the document is replaced or removed.
    pub(super) fn replacing_synced(&mut self, collection: &str, id: &str) {
        let doc = self.collections.get(collection).and_then(|c| c.synced(id));
        let Some(doc) = doc.filter(|doc| doc.history_marked()) else {
            return;
        };
        let kept = self.retired.0.entry(id.to_owned()).or_default();
        // The first kept is the one an entry refers to (a replacement is not marked).
        if !kept.iter().any(|(c, _)| c == collection) {
            kept.push((collection.to_owned(), doc.clone()));
        }
    }

    /// Writes again the thin entries that may refer to documents this step replaced or
    /// removed, so each holds its own copy of those, and lets the documents go.
    pub(super) fn materialize_history(&mut self) {
        if self.retired.0.is_empty() {
            return;
        }
        let retired = std::mem::take(&mut self.retired);
        let mut hlcs: Vec<Hlc> = retired.0.values().flatten().map(|(_, d)| d.hlc()).collect();
        crate::sort::sort(&mut hlcs);
        for (id, entry) in self.history.iter_mut() {
            let docs = DocsMut::new(&mut self.collections, &retired, &mut self.packed_history);
            entry.materialize(*id, &hlcs, docs);
        }
    }

    /// Moves the transactions that finished in this step into the history (only once the step
    /// has reported them), then applies the retention.
    pub(super) fn archive_finished(&mut self) {
        for id in std::mem::take(&mut self.finished) {
            if let Some(entry) = self.txs.remove(&id) {
                let end = entry.tx.into_history();
                self.origin_ended(&end);
                if id.0 >= self.history_floor {
                    self.history.insert(id, Archived::finished(end));
                } else {
                    // Below the floor: older than what the retention keeps.
                    self.count_dropped(1);
                }
            }
        }
        self.apply_retention();
    }

    /// Drops the oldest entries the retention no longer keeps, and raises the floor past them.
    pub(super) fn apply_retention(&mut self) {
        let retention = self.config.history;
        let mut dropped = 0;
        while let Some((&id, oldest)) = self.history.first_key_value() {
            let oldest = oldest.updated_at(&self.packed_history);
            if !retention.drops(self.history.len(), oldest, self.now) {
                break;
            }
            if let Some(entry) = self.history.remove(&id) {
                entry.release(&mut self.packed_history);
            }
            self.history_floor = id.0 + 1;
            dropped += 1;
        }
        self.count_dropped(dropped);
    }

    fn count_dropped(&mut self, count: u64) {
        if count > 0 {
            self.status.history_dropped(count);
            self.store.checkpoint_dirty = true;
        }
    }
}

/// Two iterators of transactions in descending id order, merged.
struct Descending<'a, A: Iterator<Item = &'a Transaction>, B: Iterator<Item = &'a Transaction>> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<'a, A, B> Iterator for Descending<'a, A, B>
where
    A: Iterator<Item = &'a Transaction>,
    B: Iterator<Item = &'a Transaction>,
{
    type Item = &'a Transaction;

    fn next(&mut self) -> Option<&'a Transaction> {
        match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) if a.id > b.id => self.a.next(),
            (Some(_), Some(_)) | (None, _) => self.b.next(),
            (Some(_), None) => self.a.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::parse_document;
    use crate::engine::{CollectionConfig, Effect, EngineConfig, Input, MemoryStore};
    use crate::mutation::MutationRequest;
    use serde_json::{json, Value};

    fn request(id: &str, op: fn(Fields) -> Op, fields: Value) -> MutationRequest {
        let (_, fields) = parse_document(fields).unwrap();
        MutationRequest {
            collection: "cache".into(),
            doc_id: id.into(),
            op: op(fields),
            metadata: None,
        }
    }

    fn insert(id: &str) -> MutationRequest {
        let fields = json!({"_id": id, "title": format!("the document {id}")});
        request(id, |fields| Op::Insert { fields }, fields)
    }

    fn update(id: &str) -> MutationRequest {
        request(
            id,
            |patch| Op::Update { patch },
            json!({"_id": id, "done": true}),
        )
    }

    /// Feeds `input`, then completes every storage write it leads to.
    fn step(engine: &mut Engine, store: &mut MemoryStore, input: Input) -> Option<TxId> {
        let mut step = engine.handle(input, 1).unwrap();
        let id = step.transaction;
        while let Some(write) = step.effects.into_iter().find_map(|e| match e {
            Effect::Persist(write) => Some(write),
            _ => None,
        }) {
            store.apply(&write);
            let token = write.token;
            step = engine.handle(Input::Persisted { token }, 1).unwrap();
        }
        id
    }

    /// Whether entry `id` leaves documents out, and its bytes' length.
    fn thin(engine: &Engine, id: TxId) -> (bool, usize) {
        let at = engine.history[&id].packed.expect("stored");
        let bytes = engine.packed_history.get(at).1;
        (StoredTx::thin_range(bytes).is_some(), bytes.len())
    }

    /// A loaded engine of one local collection, `cache`, and its storage.
    fn loaded() -> (Engine, MemoryStore) {
        let config = EngineConfig {
            collections: vec![CollectionConfig {
                name: "cache".into(),
                sync: false,
                ..CollectionConfig::default()
            }],
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(config).unwrap();
        let mut store = MemoryStore::default();
        let loaded = Input::Loaded(store.snapshot());
        step(&mut engine, &mut store, loaded);
        (engine, store)
    }

    #[test]
    fn an_entry_leaves_out_the_documents_the_collection_holds_until_they_change() {
        let (mut engine, mut store) = loaded();
        let commit = Input::commit(vec![insert("a"), insert("b")]);
        let id = step(&mut engine, &mut store, commit).unwrap();
        let whole = engine.stored_transaction(id).unwrap();
        let (is_thin, len) = thin(&engine, id);
        assert!(is_thin);
        // Both documents' fields are left out; the timestamps' range is held instead.
        let Op::Insert { fields } = insert("a").op else {
            unreachable!("an insert")
        };
        assert_eq!(len + 2 * fields.as_json().len(), whole.bytes.len() + 33);
        assert_eq!(
            engine.history_docs().fields("cache", "a", Hlc::default()),
            None
        );
        // `a` changes: the entry holds its own copy of it from then on, and still leaves `b` out.
        step(&mut engine, &mut store, Input::commit(vec![update("a")]));
        // (The range of timestamps it holds is one timestamp then.)
        assert_eq!(thin(&engine, id), (true, len + fields.as_json().len() - 16));
        assert_eq!(engine.stored_transaction(id), Some(whole.clone()));
        assert_eq!(engine.transaction(id), Some(&whole.decode().unwrap()));
        // `b` changes too: nothing is left out.
        step(&mut engine, &mut store, Input::commit(vec![update("b")]));
        assert_eq!(thin(&engine, id), (false, whole.bytes.len()));
        assert_eq!(engine.stored_transaction(id), Some(whole));
    }

    #[test]
    fn what_a_read_decodes_is_let_go_at_the_next_input() {
        let (mut engine, mut store) = loaded();
        let first = step(&mut engine, &mut store, Input::commit(vec![insert("a")])).unwrap();
        step(&mut engine, &mut store, Input::commit(vec![insert("b")]));
        let stored = |engine: &Engine| engine.history.values().all(|a| a.tx.get().is_none());
        assert!(stored(&engine), "stored entries hold their bytes only");
        let whole = engine.stored_transaction(first).unwrap().decode().unwrap();
        assert_eq!(engine.transaction(first), Some(&whole));
        assert!(
            engine.history[&first].tx.get().is_some(),
            "decoded for the read"
        );
        step(&mut engine, &mut store, Input::Tick);
        assert!(stored(&engine), "let go at the next input");
        assert_eq!(engine.transactions().len(), 2);
        step(&mut engine, &mut store, Input::Tick);
        assert!(stored(&engine), "a listing is let go too");
        assert_eq!(engine.transaction(first), Some(&whole));
    }
}
