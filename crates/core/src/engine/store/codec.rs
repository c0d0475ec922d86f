//! The bytes of what storage holds: log records and snapshot pages, each one value of the
//! key-value store. Documents are written as their parts (the fields as the canonical JSON text
//! they are held in), so a page loads by slicing, without parsing a document's JSON.
//!
//! Layout (the parts are [`super::bytes`]'s: `varint` a variable-length integer, `text` one
//! behind its variable-length length):
//! - documents: `varint` count, then each: `u8` flags (1 deleted, 2 its timestamp's node differs
//!   from the one before), id `text`, `varint` version, the timestamp after the one before (the
//!   first after zero), fields `text`;
//! - transactions: `varint` count, then each: `varint` id, `varint` updated_at, `varint` length
//!   and its bytes ([`StoredTx`]: read only when needed, a reload decodes the unfinished ones,
//!   and the history its entries when first read);
//! - page: `FSP3`, collection `text`, `varint` index, `varint` count (of the collection's pages
//!   when it was written), `varint` as_of (the record it includes everything up to), documents;
//! - record: `FSL6`, `varint` seq, the JSON of [`RecordMeta`] as `text`, the unfinished
//!   transactions, the finished ones, those finished stored as their heads alone (their
//!   mutations are those of the transaction's copy in an earlier record), `varint` groups of
//!   (collection `text`, documents behind their `varint` length in bytes), `varint` removals of
//!   (collection `text`, id `text`);
//! - history page: `FSH5`, `varint` key, transactions (a range of ids: see `super`).
//!
//! The earlier formats still read, their transactions rewritten in the current layout as they
//! are: with the transactions' heads as JSON and the documents not behind their length,
//! records `FSL5`; with pages of 128 ids each (the same layout), history pages `FSH4`; with the
//! transactions' heads as JSON, history pages `FSH3`; with
//! fixed-width integers and strings behind a `u32` length, records `FSL4`, `FSL3` (no
//! heads) and `FSL2` (the transactions inside the JSON), pages `FSP2`, history pages `FSH2` and
//! `FSH1` (the transactions as one JSON array).

use super::bytes::{node_changed, Reader, Writer};
use super::stored_tx::StoredTx;
use crate::document::Document;
use crate::engine::{Checkpoint, SyncLogEntry};
use crate::hlc::Hlc;
use crate::transaction::{Transaction, TxId};
use crate::{CoreError, DocId, Millis};
use serde::Serialize;
use std::borrow::Borrow;
use std::rc::Rc;

const PAGE_MAGIC: &[u8; 4] = b"FSP3";
const RECORD_MAGIC: &[u8; 4] = b"FSL6";
const HISTORY_MAGIC: &[u8; 4] = b"FSH5";
/// History pages of 128 transaction ids each, keyed by the ids' 128ths (each page's range is
/// now the ids from its lowest up to the next page's lowest: the same entries, read alike).
const HISTORY_MAGIC_4: &[u8; 4] = b"FSH4";
/// The formats with the transactions' heads as JSON.
const RECORD_MAGIC_5: &[u8; 4] = b"FSL5";
const HISTORY_MAGIC_3: &[u8; 4] = b"FSH3";
/// The formats with fixed-width integers: records with heads, without, and with the
/// transactions inside the JSON; pages; history pages with transactions apart and inside JSON.
const RECORD_MAGIC_4: &[u8; 4] = b"FSL4";
const RECORD_MAGIC_3: &[u8; 4] = b"FSL3";
const RECORD_MAGIC_2: &[u8; 4] = b"FSL2";
const PAGE_MAGIC_2: &[u8; 4] = b"FSP2";
const HISTORY_MAGIC_2: &[u8; 4] = b"FSH2";
const HISTORY_MAGIC_1: &[u8; 4] = b"FSH1";

/// A snapshot page: every synced document of one collection that hashes to `index`, as of the
/// record `as_of` (later records' changes to these documents are applied over it on load).
/// Its documents are owned when read, and may be borrowed to write them (`Page<&Document>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<D = Document> {
    /// The collection.
    pub collection: String,
    /// Its place in the collection's pages (see `layout`).
    pub index: u32,
    /// How many pages the collection had when it was written.
    pub count: u32,
    /// The sequence number of the record written with it.
    pub as_of: u64,
    /// Its documents.
    pub docs: Vec<D>,
}

/// One storage write's log record: everything the step changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// Its sequence number (records apply in this order).
    pub seq: u64,
    /// What is not documents or transactions.
    pub meta: RecordMeta,
    /// Unfinished transactions written (committed, or changed in a way a reload must see).
    pub txs: Vec<StoredTx>,
    /// Transactions finished since, as the history keeps them (no longer in the outbox).
    pub finished: Vec<StoredTx>,
    /// Transactions finished since whose mutations did not change since their copy in an
    /// earlier record: their heads alone ([`StoredTx::head`]), which a load joins to that copy.
    pub finished_heads: Vec<StoredTx>,
    /// Synced documents stored, by collection.
    pub docs: Vec<(String, Vec<Document>)>,
    /// Documents removed for good (`hardDelete`).
    pub removed: Vec<(String, DocId)>,
}

/// A record's settlements, checkpoint and sync log, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordMeta {
    /// Transactions finished since that the history does not keep: no longer in the outbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<TxId>,
    /// The engine's fields, when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// Sync-log entries written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_log: Vec<SyncLogEntry>,
}

crate::deserialize_object!(RecordMeta {
    "settled" => settled: Vec<TxId> = default,
    "checkpoint" => checkpoint: Option<Checkpoint> = default,
    "sync_log" => sync_log: Vec<SyncLogEntry> = default,
});

/// A history page: the kept finished transactions whose ids fall in its range, as of the
/// write that stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Its key in storage.
    pub index: u32,
    /// The lowest id of the range it holds, as written (pages before `FSH5` held 128 ids
    /// each: their index times 128).
    pub first: TxId,
    /// Its transactions, by id.
    pub txs: Vec<StoredTx>,
}

/// The JSON of a record of format 2: the transactions were part of it.
struct RecordMeta2 {
    txs: Vec<Transaction>,
    settled: Vec<TxId>,
    finished: Vec<Transaction>,
    checkpoint: Option<Checkpoint>,
    sync_log: Vec<SyncLogEntry>,
}

crate::deserialize_object!(RecordMeta2 {
    "txs" => txs: Vec<Transaction> = default,
    "settled" => settled: Vec<TxId> = default,
    "finished" => finished: Vec<Transaction> = default,
    "checkpoint" => checkpoint: Option<Checkpoint> = default,
    "sync_log" => sync_log: Vec<SyncLogEntry> = default,
});

/// Bytes in pieces, stored as the pieces one after the other. A history page goes to storage
/// this way: it can hold much of the history, whose transactions' bytes it then shares rather
/// than copies into one buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pieces(pub Vec<Rc<[u8]>>);

impl Pieces {
    /// How many bytes they make.
    pub fn len(&self) -> usize {
        self.0.iter().map(|piece| piece.len()).sum()
    }

    /// Whether they make none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes they make, in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.concat()
    }
}

impl HistoryPage {
    /// The page's bytes, in pieces: each transaction's bytes are shared with it.
    pub fn pieces(&self) -> Pieces {
        let mut pieces = Vec::with_capacity(2 * self.txs.len() + 1);
        let mut head = Writer(Vec::with_capacity(32));
        head.0.extend_from_slice(HISTORY_MAGIC);
        head.varint(self.index.into());
        head.varint(self.first.0);
        head.varint(self.txs.len() as u64);
        // As `Writer::txs` lays them out.
        for tx in &self.txs {
            head.tx_head(tx);
            pieces.push(Rc::from(std::mem::take(&mut head.0)));
            pieces.push(tx.bytes.clone());
        }
        if !head.0.is_empty() {
            pieces.push(head.0.into());
        }
        Pieces(pieces)
    }

    /// A history page from its bytes, taken. Each transaction's bytes are copied out from the
    /// last one back, and the page's bytes cut short before each once it is copied, so a page
    /// and its transactions' copies are not held whole side by side (a bulk load's
    /// transactions make pages of megabytes).
    pub fn decode(mut bytes: Vec<u8>) -> Result<HistoryPage, CoreError> {
        let formats = [
            HISTORY_MAGIC,
            HISTORY_MAGIC_4,
            HISTORY_MAGIC_3,
            HISTORY_MAGIC_2,
            HISTORY_MAGIC_1,
        ];
        let (mut r, magic) = open(&bytes, &formats, "history page")?;
        if magic == HISTORY_MAGIC || magic == HISTORY_MAGIC_4 {
            let index = r.varint32()?;
            let first = match magic == HISTORY_MAGIC {
                true => TxId(r.varint()?),
                false => old_first(index),
            };
            let count = r.varint()?;
            let mut places = Vec::with_capacity(r.capped(count) / 4);
            for _ in 0..count {
                let (id, updated_at, tx) = r.tx_entry()?;
                places.push((id, updated_at, r.position() - tx.len()..r.position()));
            }
            r.end()?;
            let mut txs = Vec::with_capacity(places.len());
            for (id, updated_at, place) in places.into_iter().rev() {
                let start = place.start;
                let bytes_of_tx = bytes[place].into();
                txs.push(StoredTx {
                    id,
                    updated_at,
                    bytes: bytes_of_tx,
                });
                bytes.truncate(start);
                bytes.shrink_to_fit();
            }
            txs.reverse();
            return Ok(HistoryPage { index, first, txs });
        }
        // The older formats: pages of 128 ids, each starting at its index times 128.
        let (index, txs) = if magic == HISTORY_MAGIC_3 {
            (r.varint32()?, r.txs(true)?)
        } else if magic == HISTORY_MAGIC_2 {
            (r.u32()?, r.fixed_txs()?)
        } else {
            let index = r.u32()?;
            let txs: Vec<Transaction> = serde_json::from_str(r.str()?)
                .map_err(|e| corrupt("history page", &format!("unreadable transactions: {e}")))?;
            (index, txs.iter().map(StoredTx::of).collect())
        };
        r.end()?;
        Ok(HistoryPage {
            index,
            first: old_first(index),
            txs,
        })
    }
}

impl<D: Borrow<Document>> Page<D> {
    /// The page's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(
            32 + self
                .docs
                .iter()
                .map(|d| doc_size(d.borrow()))
                .sum::<usize>(),
        ));
        out.0.extend_from_slice(PAGE_MAGIC);
        out.text(&self.collection);
        out.varint(self.index.into());
        out.varint(self.count.into());
        out.varint(self.as_of);
        out.docs(&self.docs);
        out.0
    }
}

/// The lowest id of a history page of a format before `FSH5` (128 ids a page).
fn old_first(index: u32) -> TxId {
    TxId(u64::from(index) * 128)
}

impl Page {
    /// A page from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<Page, CoreError> {
        let (mut r, magic) = open(bytes, &[PAGE_MAGIC, PAGE_MAGIC_2], "page")?;
        let page = if magic == PAGE_MAGIC {
            Page {
                collection: r.text()?.to_owned(),
                index: r.varint32()?,
                count: r.varint32()?,
                as_of: r.varint()?,
                docs: r.docs()?,
            }
        } else {
            Page {
                collection: r.string()?,
                index: r.u32()?,
                count: r.u32()?,
                as_of: r.u64()?,
                docs: r.fixed_docs()?,
            }
        };
        r.end()?;
        Ok(page)
    }
}

impl Record {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let meta = serde_json::to_string(&self.meta).expect("engine state serializes");
        let docs: usize = self
            .docs
            .iter()
            .flat_map(|(_, docs)| docs)
            .map(doc_size)
            .sum();
        let txs = txs_size(&self.txs) + txs_size(&self.finished) + txs_size(&self.finished_heads);
        let mut out = Writer(Vec::with_capacity(32 + meta.len() + txs + docs));
        out.0.extend_from_slice(RECORD_MAGIC);
        out.varint(self.seq);
        out.text(&meta);
        out.txs(&self.txs);
        out.txs(&self.finished);
        out.txs(&self.finished_heads);
        out.varint(self.docs.len() as u64);
        for (collection, docs) in &self.docs {
            out.text(collection);
            out.prefixed(|out| out.docs(docs));
        }
        out.varint(self.removed.len() as u64);
        for (collection, id) in &self.removed {
            out.text(collection);
            out.text(id);
        }
        out.0
    }

    /// A record from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<Record, CoreError> {
        let formats = [
            RECORD_MAGIC,
            RECORD_MAGIC_5,
            RECORD_MAGIC_4,
            RECORD_MAGIC_3,
            RECORD_MAGIC_2,
        ];
        let (mut r, magic) = open(bytes, &formats, "log record")?;
        // The formats differ in their integers and strings (compact, or fixed-width), in where
        // the transactions are and in their heads.
        let compact = magic == RECORD_MAGIC || magic == RECORD_MAGIC_5;
        let count = |r: &mut Reader<'_>| match compact {
            true => r.varint(),
            false => r.u32().map(u64::from),
        };
        let name = |r: &mut Reader<'_>| match compact {
            true => r.text().map(str::to_owned),
            false => r.string(),
        };
        let txs = |r: &mut Reader<'_>| match compact {
            true => r.txs(magic == RECORD_MAGIC_5),
            false => r.fixed_txs(),
        };
        let seq = if compact { r.varint()? } else { r.u64()? };
        let meta = if compact { r.text()? } else { r.str()? };
        let mut record = if magic == RECORD_MAGIC_2 {
            Record::with_json_txs(seq, meta)?
        } else {
            Record {
                seq,
                meta: serde_json::from_str(meta).map_err(unreadable_meta)?,
                txs: txs(&mut r)?,
                finished: txs(&mut r)?,
                finished_heads: match magic == RECORD_MAGIC_3 {
                    true => Vec::new(),
                    false => txs(&mut r)?,
                },
                ..Record::default()
            }
        };
        let groups = count(&mut r)?;
        record.docs.reserve(r.capped(groups));
        for _ in 0..groups {
            let collection = name(&mut r)?;
            let docs = match magic {
                RECORD_MAGIC => {
                    let mut block = Reader::new(r.prefixed()?, "log record");
                    let docs = block.docs()?;
                    block.end()?;
                    docs
                }
                RECORD_MAGIC_5 => r.docs()?,
                _ => r.fixed_docs()?,
            };
            record.docs.push((collection, docs));
        }
        let removals = count(&mut r)?;
        record.removed.reserve(r.capped(removals));
        for _ in 0..removals {
            record.removed.push((name(&mut r)?, name(&mut r)?));
        }
        r.end()?;
        Ok(record)
    }

    /// A record of format 2 (its transactions inside its JSON), without its documents yet.
    fn with_json_txs(seq: u64, meta: &str) -> Result<Record, CoreError> {
        let old: RecordMeta2 = serde_json::from_str(meta).map_err(unreadable_meta)?;
        let stored = |txs: Vec<Transaction>| txs.iter().map(StoredTx::of).collect();
        Ok(Record {
            seq,
            meta: RecordMeta {
                settled: old.settled,
                checkpoint: old.checkpoint,
                sync_log: old.sync_log,
            },
            txs: stored(old.txs),
            finished: stored(old.finished),
            ..Record::default()
        })
    }
}

fn unreadable_meta(e: serde_json::Error) -> CoreError {
    corrupt("log record", &format!("unreadable metadata: {e}"))
}

/// About how many bytes a document takes in a page or record.
pub fn doc_size(doc: &Document) -> usize {
    12 + doc.id().len() + doc.fields().as_json().len()
}

/// About how many bytes transactions take in a record or history page.
pub(super) fn txs_size(txs: &[StoredTx]) -> usize {
    txs.iter().map(|tx| 12 + tx.bytes.len()).sum()
}

/// The error for damaged stored bytes.
pub(super) fn corrupt(what: &str, why: &str) -> CoreError {
    CoreError::CorruptStorage(format!("a stored {what} is damaged: {why}"))
}

/// A reader past the format magic of `bytes`, and which of `formats` it is.
fn open<'a>(
    bytes: &'a [u8],
    formats: &[&'static [u8; 4]],
    what: &'static str,
) -> Result<(Reader<'a>, &'static [u8; 4]), CoreError> {
    let magic = formats
        .iter()
        .find(|m| bytes.get(..4) == Some(m.as_slice()))
        .ok_or_else(|| corrupt(what, "unknown format"))?;
    let mut r = Reader::new(bytes, what);
    r.take(4)?;
    Ok((r, magic))
}

/// A document's flags byte: a tombstone.
const DELETED: u8 = 1;
/// A document's or mutation's flags byte: its timestamp's node differs from the one before.
const NODE_CHANGED: u8 = 2;

impl Writer {
    /// Each transaction's id, time and bytes (the bytes shared, see [`HistoryPage::pieces`]).
    fn txs(&mut self, txs: &[StoredTx]) {
        self.varint(txs.len() as u64);
        for tx in txs {
            self.tx_head(tx);
            self.0.extend_from_slice(&tx.bytes);
        }
    }

    /// A transaction's id, time and length: what comes before its bytes.
    fn tx_head(&mut self, tx: &StoredTx) {
        self.varint(tx.id.0);
        self.varint(tx.updated_at);
        self.varint(tx.bytes.len() as u64);
    }

    /// Documents: each a flags byte, id, version, timestamp (after the one before) and fields.
    fn docs<D: Borrow<Document>>(&mut self, docs: &[D]) {
        self.varint(docs.len() as u64);
        let mut previous = Hlc::default();
        for doc in docs {
            let doc = doc.borrow();
            let node = if node_changed(doc.hlc(), previous) {
                NODE_CHANGED
            } else {
                0
            };
            self.0.push((u8::from(doc.deleted()) * DELETED) | node);
            self.text(doc.id());
            self.varint(doc.version());
            self.hlc_after(doc.hlc(), previous);
            self.text(doc.fields().as_json());
            previous = doc.hlc();
        }
    }
}

impl<'a> Reader<'a> {
    /// One transaction of a list [`Writer::txs`] wrote: its id, time and bytes.
    fn tx_entry(&mut self) -> Result<(TxId, Millis, &'a [u8]), CoreError> {
        Ok((TxId(self.varint()?), self.varint()?, self.prefixed()?))
    }

    /// What [`Writer::txs`] wrote; with `json_heads`, the transactions' heads as the formats
    /// before the binary head wrote them.
    fn txs(&mut self, json_heads: bool) -> Result<Vec<StoredTx>, CoreError> {
        let count = self.varint()?;
        let mut txs = Vec::with_capacity(self.capped(count) / 4);
        for _ in 0..count {
            let (id, updated_at, bytes) = self.tx_entry()?;
            txs.push(match json_heads {
                true => StoredTx::from_json_head(id, updated_at, bytes, false)?,
                false => StoredTx {
                    id,
                    updated_at,
                    bytes: bytes.into(),
                },
            });
        }
        Ok(txs)
    }

    /// Transactions as the formats before the compact one wrote them: fixed-width parts, and
    /// the transactions' bytes in their first layout, rewritten in the current one.
    fn fixed_txs(&mut self) -> Result<Vec<StoredTx>, CoreError> {
        let count = self.u32()?;
        let mut txs = Vec::with_capacity(self.capped(count.into()) / 20);
        for _ in 0..count {
            let (id, updated_at) = (TxId(self.u64()?), self.u64()?);
            txs.push(StoredTx::from_json_head(
                id,
                updated_at,
                self.bytes()?,
                true,
            )?);
        }
        Ok(txs)
    }

    /// What [`Writer::docs`] wrote.
    fn docs(&mut self) -> Result<Vec<Document>, CoreError> {
        let count = self.varint()?;
        let mut docs = Vec::with_capacity(self.capped(count) / 6);
        let mut previous = Hlc::default();
        for _ in 0..count {
            let flags = self.u8()?;
            if flags & !(DELETED | NODE_CHANGED) != 0 {
                return Err(corrupt(self.what, "a document's flags are unknown"));
            }
            let id = self.prefixed()?;
            let version = self.varint()?;
            let hlc = self.hlc_after(previous, flags & NODE_CHANGED != 0)?;
            let fields = self.object_bytes()?;
            let doc = Document::from_utf8(id, fields, version, hlc, flags & DELETED != 0);
            docs.push(doc.ok_or_else(|| corrupt(self.what, "text is not UTF-8"))?);
            previous = hlc;
        }
        Ok(docs)
    }

    /// Documents as the formats before the compact one wrote them.
    fn fixed_docs(&mut self) -> Result<Vec<Document>, CoreError> {
        let count = self.u32()?;
        let mut docs = Vec::with_capacity(self.capped(count.into()) / 33);
        for _ in 0..count {
            let id = self.str()?;
            let version = self.u64()?;
            let hlc = self.hlc()?;
            let deleted = self.u8()? != 0;
            docs.push(Document::new(id, self.fields()?, version, hlc, deleted));
        }
        Ok(docs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixed_layout::{fixed_tx, json_head_tx};
    use super::*;
    use crate::document::Fields;
    use crate::mutation::{Mutation, Op};
    use serde_json::json;

    fn doc(id: &str, n: i64, deleted: bool) -> Document {
        Document::new(
            id,
            Fields::from_map(json!({"n": n, "t": "é\"x"}).as_object().unwrap()),
            n as u64,
            Hlc {
                wall: 1_700_000_000_000 + n as u64,
                counter: 3,
                node: 7,
            },
            deleted,
        )
    }

    #[test]
    fn pages_and_records_read_back_as_written() {
        let page = Page {
            collection: "todos".into(),
            index: 5,
            count: 8,
            as_of: 42,
            docs: vec![doc("a", 1, false), doc("日本", 2, true)],
        };
        assert_eq!(Page::decode(&page.encode()).unwrap(), page);
        let tx = Transaction::new(
            TxId(9),
            vec![Mutation {
                wire_id: Some(3),
                metadata: Some(json!({"by": "test"})),
                ..Mutation::new("todos".into(), "a".into(), Op::Delete, Hlc::default(), 1)
            }],
            5,
        );
        let record = Record {
            seq: 43,
            meta: RecordMeta {
                settled: vec![TxId(4)],
                checkpoint: None,
                sync_log: Vec::new(),
            },
            txs: vec![StoredTx::of(&tx)],
            finished: vec![StoredTx::of(&tx)],
            finished_heads: vec![StoredTx::of(&tx).head()],
            docs: vec![("todos".into(), vec![doc("b", 3, false)])],
            removed: vec![("notes".into(), "x".into())],
        };
        let read = Record::decode(&record.encode()).unwrap();
        assert_eq!(read, record);
        assert_eq!(read.txs[0].decode().unwrap(), tx);
        assert_eq!((read.txs[0].id, read.txs[0].updated_at), (TxId(9), 5));
        let joined = read.finished_heads[0].with_mutations_of(&read.txs[0]);
        assert_eq!(joined.decode().unwrap(), tx);
        // The same record as format 5 wrote it: the transactions' heads as JSON.
        let json_heads = |txs: &[StoredTx]| txs.iter().map(json_head_tx).collect::<Vec<_>>();
        let mut old = Writer(Vec::new());
        old.0.extend_from_slice(RECORD_MAGIC_5);
        old.varint(record.seq);
        old.text(&serde_json::to_string(&record.meta).unwrap());
        old.txs(&json_heads(&record.txs));
        old.txs(&json_heads(&record.finished));
        old.txs(&json_heads(&record.finished_heads));
        old.varint(1);
        old.text("todos");
        old.docs(&record.docs[0].1);
        old.varint(1);
        old.text("notes");
        old.text("x");
        assert_eq!(Record::decode(&old.0).unwrap(), record, "format 5");
        // As formats 4 and 3 wrote it (3: no heads), with fixed-width parts.
        let fixed = |tx: &StoredTx| (tx.clone(), fixed_tx(&tx.decode().unwrap()));
        for (magic, heads) in [(RECORD_MAGIC_4, true), (RECORD_MAGIC_3, false)] {
            let mut old = Writer(Vec::new());
            old.0.extend_from_slice(magic);
            old.u64(record.seq);
            old.str(&serde_json::to_string(&record.meta).unwrap());
            old.fixed_txs(&record.txs.iter().map(fixed).collect::<Vec<_>>());
            old.fixed_txs(&record.finished.iter().map(fixed).collect::<Vec<_>>());
            if heads {
                let head = &record.finished_heads[0];
                old.fixed_txs(&[(head.clone(), json_head_tx(head).bytes.to_vec())]);
            }
            old.u32(1);
            old.str("todos");
            old.fixed_docs(&record.docs[0].1);
            old.u32(1);
            old.str("notes");
            old.str("x");
            let read = Record::decode(&old.0).unwrap();
            let expected = Record {
                finished_heads: if heads {
                    record.finished_heads.clone()
                } else {
                    Vec::new()
                },
                ..record.clone()
            };
            assert_eq!(read, expected, "format {magic:?}");
            assert_eq!(read.txs[0].decode().unwrap(), tx);
        }
        // A page of format 2.
        let mut old = Writer(Vec::new());
        old.0.extend_from_slice(PAGE_MAGIC_2);
        old.str(&page.collection);
        old.u32(page.index);
        old.u32(page.count);
        old.u64(page.as_of);
        old.fixed_docs(&page.docs);
        assert_eq!(Page::decode(&old.0).unwrap(), page);
        assert_eq!(
            Record::decode(&Record::default().encode()).unwrap(),
            Record::default()
        );
        let history = HistoryPage {
            index: 3,
            // Where pages of 128 ids put index 3, so the older formats below read alike.
            first: TxId(3 * 128),
            txs: vec![StoredTx::of(&tx)],
        };
        assert_eq!(
            HistoryPage::decode(history.pieces().to_vec()).unwrap(),
            history
        );
        // Transactions of different sizes, copied out from the last back.
        let several = HistoryPage {
            index: 0,
            first: TxId(0),
            txs: (1..=3)
                .map(|i| StoredTx {
                    id: TxId(i),
                    updated_at: i * 10,
                    bytes: vec![i as u8; 100 * i as usize].into(),
                })
                .collect(),
        };
        assert_eq!(
            HistoryPage::decode(several.pieces().to_vec()).unwrap(),
            several
        );
        // A history page of format 3: the transactions' heads as JSON.
        let mut old = Writer(Vec::new());
        old.0.extend_from_slice(HISTORY_MAGIC_3);
        old.varint(3);
        old.txs(&json_heads(&history.txs));
        assert_eq!(HistoryPage::decode(old.0).unwrap(), history);
        // A history page of format 2: fixed-width parts.
        let mut old = Writer(Vec::new());
        old.0.extend_from_slice(HISTORY_MAGIC_2);
        old.u32(3);
        old.fixed_txs(&[fixed(&history.txs[0])]);
        assert_eq!(HistoryPage::decode(old.0).unwrap(), history);
        // A history page of format 1: the transactions as one JSON array.
        let mut old = Writer(Vec::new());
        old.0.extend_from_slice(HISTORY_MAGIC_1);
        old.u32(3);
        old.str(&serde_json::to_string(&[&tx]).unwrap());
        assert_eq!(HistoryPage::decode(old.0).unwrap(), history);
        // A history page of format 4: the same layout without the range's first id.
        let mut old = Writer(Vec::new());
        old.0.extend_from_slice(HISTORY_MAGIC_4);
        old.varint(3);
        old.txs(&history.txs);
        assert_eq!(HistoryPage::decode(old.0).unwrap(), history);
    }

    /// A record as schema 2 wrote it, before the history: no `finished`, no history fields in
    /// the checkpoint, no creation time on sync-log entries, no metadata on writes.
    #[test]
    fn records_written_before_the_history_still_read() {
        let tx = Transaction::new(
            TxId(2),
            vec![Mutation::new(
                "todos".into(),
                "a".into(),
                Op::Delete,
                Hlc::default(),
                1,
            )],
            5,
        );
        let checkpoint = Checkpoint {
            client_id: "c".into(),
            cursor: 7,
            next_mutation_id: 1,
            next_tx: 3,
            clock: Hlc::default(),
            history_floor: 0,
            history_dropped: 0,
        };
        let entry = SyncLogEntry {
            id: 1,
            sync_type: crate::engine::SyncType::Pull,
            status: crate::engine::SyncLogStatus::Completed,
            created_at: 0,
            started_at: 4,
            completed_at: Some(6),
            synced_count: 2,
            error_count: 0,
            error: None,
            error_code: None,
        };
        let mut old = json!({
            "txs": [tx],
            "settled": [1],
            "checkpoint": checkpoint,
            "sync_log": [entry],
        });
        old["checkpoint"]
            .as_object_mut()
            .unwrap()
            .remove("history_floor");
        old["checkpoint"]
            .as_object_mut()
            .unwrap()
            .remove("history_dropped");
        old["sync_log"][0]
            .as_object_mut()
            .unwrap()
            .remove("createdAt");
        let text = old.to_string();
        assert!(!text.contains("history") && !text.contains("metadata"));
        let mut bytes = Writer(Vec::new());
        bytes.0.extend_from_slice(RECORD_MAGIC_2);
        bytes.u64(9);
        bytes.str(&text);
        bytes.u32(0);
        bytes.u32(0);
        let record = Record::decode(&bytes.0).unwrap();
        assert_eq!(record.txs, vec![StoredTx::of(&tx)]);
        assert_eq!(record.meta.settled, vec![TxId(1)]);
        assert!(record.finished.is_empty());
        assert_eq!(record.meta.checkpoint, Some(checkpoint));
        assert_eq!(record.meta.sync_log, vec![entry]);
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let bytes = Page {
            collection: "todos".into(),
            index: 0,
            count: 1,
            as_of: 1,
            docs: vec![doc("a", 1, false)],
        }
        .encode();
        for len in 0..bytes.len() {
            assert!(Page::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Page::decode(&longer).is_err());
        let mut huge_count = bytes;
        huge_count[4 + 1 + 5 + 1 + 1 + 1] = 0x7f; // the document count
        assert!(Page::decode(&huge_count).is_err());
        assert!(Record::decode(b"FSL2").is_err());
        assert!(Record::decode(b"FSL3").is_err());
        assert!(Record::decode(b"FSL5").is_err());
        let record = Record {
            seq: 2,
            docs: vec![("todos".into(), vec![doc("a", 1, false)])],
            ..Record::default()
        }
        .encode();
        for len in 0..record.len() {
            assert!(Record::decode(&record[..len]).is_err(), "cut at {len}");
        }
        assert!(HistoryPage::decode(b"FSH1\x00\x00\x00\x00\x02\x00\x00\x00[{".to_vec()).is_err());
        assert!(HistoryPage::decode(b"FSH2\x00\x00\x00\x00\x02\x00\x00\x00".to_vec()).is_err());
        assert!(HistoryPage::decode(b"FSH3\x00\x02".to_vec()).is_err());
        assert!(HistoryPage::decode(b"FSH4\x00\x02".to_vec()).is_err());
        assert!(HistoryPage::decode(b"FSH5\x00\x02".to_vec()).is_err());
    }

    #[test]
    fn a_document_whose_text_is_not_utf8_is_an_error() {
        let page = |id: &str| {
            Page {
                collection: "todos".into(),
                index: 0,
                count: 1,
                as_of: 1,
                docs: vec![doc(id, 1, false)],
            }
            .encode()
        };
        let (id, t) = ("日本", "é");
        let bytes = page(id);
        let find = |part: &str| {
            let part = part.as_bytes();
            bytes.windows(part.len()).position(|w| w == part).unwrap()
        };
        let (in_id, in_fields) = (find(id), find(t));
        for (at, byte) in [
            (in_id, 0xff),
            (in_id + 2, b'a'),
            (in_fields, 0xa9),
            (in_fields + 1, b'a'),
        ] {
            let mut damaged = bytes.clone();
            damaged[at] = byte;
            let error = Page::decode(&damaged).unwrap_err().to_string();
            assert!(error.contains("not UTF-8"), "{at}: {error}");
        }
        // The id's last character cut short: what follows it, the fields' brace, cannot continue it.
        let mut cut = page("é");
        let at = cut.iter().position(|&b| b == 0xa9).unwrap();
        cut[at] = b'{';
        assert!(Page::decode(&cut).is_err());
        assert_eq!(Page::decode(&bytes).unwrap().docs, vec![doc(id, 1, false)]);
    }
}
