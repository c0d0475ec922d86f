//! The bytes of what storage holds: log records and snapshot pages, each one value of the
//! key-value store. Documents are written as their parts (the fields as the canonical JSON text
//! they are held in), so a page loads by slicing, without parsing a document's JSON.
//!
//! Layout (integers little-endian, a string is a `u32` length and its UTF-8 bytes):
//! - document: id, `u64` version, `u64` wall, `u32` counter, `u32` node, `u8` deleted, fields;
//! - page: `FSP2`, collection, `u32` index, `u32` count (of the collection's pages when it was
//!   written), `u64` as_of (the record it includes everything up to), `u32` documents and
//!   the documents;
//! - transaction: `u64` id, `u64` updated_at, its bytes ([`StoredTx`]: read only when needed,
//!   a reload decodes the unfinished ones, and the history its entries when first read);
//! - record: `FSL4`, `u64` seq, the JSON of [`RecordMeta`], `u32` unfinished transactions,
//!   `u32` finished transactions, `u32` finished transactions stored as their heads alone (their
//!   mutations are those of the transaction's copy in an earlier record), `u32` groups of
//!   (collection, `u32` count, documents), `u32` removals of (collection, id);
//! - history page: `FSH2`, `u32` index, `u32` transactions.
//!
//! Records and history pages of the earlier formats still read: `FSL3` (no heads), `FSL2` and
//! `FSH1` (the transactions inside the JSON).

use super::stored_tx::StoredTx;
use crate::document::{Document, Fields};
use crate::engine::{Checkpoint, SyncLogEntry};
use crate::hlc::Hlc;
use crate::transaction::{Transaction, TxId};
use crate::{CoreError, DocId};
use serde::{Deserialize, Serialize};
use std::rc::Rc;

const PAGE_MAGIC: &[u8; 4] = b"FSP2";
const RECORD_MAGIC: &[u8; 4] = b"FSL4";
const HISTORY_MAGIC: &[u8; 4] = b"FSH2";
/// The format before finished transactions could be stored as their heads.
const RECORD_MAGIC_3: &[u8; 4] = b"FSL3";
/// The formats before transactions were stored apart from the JSON.
const RECORD_MAGIC_2: &[u8; 4] = b"FSL2";
const HISTORY_MAGIC_1: &[u8; 4] = b"FSH1";

/// A snapshot page: every synced document of one collection that hashes to `index`, as of the
/// record `as_of` (later records' changes to these documents are applied over it on load).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The collection.
    pub collection: String,
    /// Its place in the collection's pages (see `layout`).
    pub index: u32,
    /// How many pages the collection had when it was written.
    pub count: u32,
    /// The sequence number of the record written with it.
    pub as_of: u64,
    /// Its documents.
    pub docs: Vec<Document>,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

/// A history page: the kept finished transactions whose ids fall in its range (see
/// [`history_page_of`]), as of the write that stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Its index.
    pub index: u32,
    /// Its transactions, by id.
    pub txs: Vec<StoredTx>,
}

/// The JSON of a record of format 2: the transactions were part of it.
#[derive(Deserialize)]
struct RecordMeta2 {
    #[serde(default)]
    txs: Vec<Transaction>,
    #[serde(default)]
    settled: Vec<TxId>,
    #[serde(default)]
    finished: Vec<Transaction>,
    #[serde(default)]
    checkpoint: Option<Checkpoint>,
    #[serde(default)]
    sync_log: Vec<SyncLogEntry>,
}

/// How many transaction ids one history page covers.
pub const HISTORY_PAGE_TXS: u64 = 128;

/// The history page of transaction `id`.
pub fn history_page_of(id: TxId) -> u32 {
    (id.0 / HISTORY_PAGE_TXS) as u32
}

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
        head.u32(self.index);
        head.u32(self.txs.len() as u32);
        // As `Writer::txs` lays them out: each transaction's id, time and length, then its bytes.
        for tx in &self.txs {
            head.u64(tx.id.0);
            head.u64(tx.updated_at);
            head.u32(tx.bytes.len() as u32);
            pieces.push(Rc::from(std::mem::take(&mut head.0)));
            pieces.push(tx.bytes.clone());
        }
        if !head.0.is_empty() {
            pieces.push(head.0.into());
        }
        Pieces(pieces)
    }

    /// A history page from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<HistoryPage, CoreError> {
        let mut r = Reader::new(bytes, &[HISTORY_MAGIC, HISTORY_MAGIC_1], "history page")?;
        let index = r.u32()?;
        let txs = if r.magic == Some(HISTORY_MAGIC) {
            r.txs()?
        } else {
            let txs: Vec<Transaction> = serde_json::from_str(r.str()?)
                .map_err(|e| corrupt("history page", &format!("unreadable transactions: {e}")))?;
            txs.iter().map(StoredTx::of).collect()
        };
        r.end()?;
        Ok(HistoryPage { index, txs })
    }
}

impl Page {
    /// The page's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(
            64 + self.docs.iter().map(doc_size).sum::<usize>(),
        ));
        out.0.extend_from_slice(PAGE_MAGIC);
        out.str(&self.collection);
        out.u32(self.index);
        out.u32(self.count);
        out.u64(self.as_of);
        out.docs(&self.docs);
        out.0
    }

    /// The collection of a page's bytes and how many documents they hold, read without
    /// decoding the documents (a load makes room for them all first).
    pub fn peek(bytes: &[u8]) -> Result<(String, usize), CoreError> {
        let mut r = Reader::new(bytes, &[PAGE_MAGIC], "page")?;
        let collection = r.string()?;
        r.u32()?;
        r.u32()?;
        r.u64()?;
        Ok((collection, r.u32()? as usize))
    }

    /// A page from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<Page, CoreError> {
        let mut r = Reader::new(bytes, &[PAGE_MAGIC], "page")?;
        let page = Page {
            collection: r.string()?,
            index: r.u32()?,
            count: r.u32()?,
            as_of: r.u64()?,
            docs: r.docs()?,
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
        let mut out = Writer(Vec::with_capacity(40 + meta.len() + txs + docs));
        out.0.extend_from_slice(RECORD_MAGIC);
        out.u64(self.seq);
        out.str(&meta);
        out.txs(&self.txs);
        out.txs(&self.finished);
        out.txs(&self.finished_heads);
        out.u32(self.docs.len() as u32);
        for (collection, docs) in &self.docs {
            out.str(collection);
            out.docs(docs);
        }
        out.u32(self.removed.len() as u32);
        for (collection, id) in &self.removed {
            out.str(collection);
            out.str(id);
        }
        out.0
    }

    /// A record from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<Record, CoreError> {
        let mut r = Reader::new(
            bytes,
            &[RECORD_MAGIC, RECORD_MAGIC_3, RECORD_MAGIC_2],
            "log record",
        )?;
        let seq = r.u64()?;
        let meta = r.str()?;
        let unreadable =
            |e: serde_json::Error| corrupt("log record", &format!("unreadable metadata: {e}"));
        let (meta, txs, finished, finished_heads) = if r.magic != Some(RECORD_MAGIC_2) {
            (
                serde_json::from_str(meta).map_err(unreadable)?,
                r.txs()?,
                r.txs()?,
                if r.magic == Some(RECORD_MAGIC) {
                    r.txs()?
                } else {
                    Vec::new()
                },
            )
        } else {
            let old: RecordMeta2 = serde_json::from_str(meta).map_err(unreadable)?;
            let meta = RecordMeta {
                settled: old.settled,
                checkpoint: old.checkpoint,
                sync_log: old.sync_log,
            };
            let stored = |txs: Vec<Transaction>| txs.iter().map(StoredTx::of).collect();
            (meta, stored(old.txs), stored(old.finished), Vec::new())
        };
        let groups = r.u32()?;
        let mut docs = Vec::with_capacity(r.capped(groups));
        for _ in 0..groups {
            docs.push((r.string()?, r.docs()?));
        }
        let count = r.u32()?;
        let mut removed = Vec::with_capacity(r.capped(count));
        for _ in 0..count {
            removed.push((r.string()?, r.string()?));
        }
        r.end()?;
        Ok(Record {
            seq,
            meta,
            txs,
            finished,
            finished_heads,
            docs,
            removed,
        })
    }
}

/// About how many bytes a document takes in a page or record.
pub fn doc_size(doc: &Document) -> usize {
    33 + doc.id().len() + doc.fields().as_json().len()
}

/// About how many bytes transactions take in a record or history page.
fn txs_size(txs: &[StoredTx]) -> usize {
    txs.iter().map(|tx| 20 + tx.bytes.len()).sum()
}

/// The error for damaged stored bytes.
pub(super) fn corrupt(what: &str, why: &str) -> CoreError {
    CoreError::CorruptStorage(format!("a stored {what} is damaged: {why}"))
}

/// Writes the layout's parts.
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn u32(&mut self, n: u32) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }
    pub(super) fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    pub(super) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    pub(super) fn hlc(&mut self, hlc: Hlc) {
        self.u64(hlc.wall);
        self.u32(hlc.counter);
        self.u32(hlc.node);
    }
    fn txs(&mut self, txs: &[StoredTx]) {
        self.u32(txs.len() as u32);
        for tx in txs {
            self.u64(tx.id.0);
            self.u64(tx.updated_at);
            self.bytes(&tx.bytes);
        }
    }
    fn docs(&mut self, docs: &[Document]) {
        self.u32(docs.len() as u32);
        for doc in docs {
            self.str(doc.id());
            self.u64(doc.version);
            self.hlc(doc.hlc);
            self.0.push(u8::from(doc.deleted));
            self.str(doc.fields().as_json());
        }
    }
}

/// Reads the layout's parts; every damage is an error naming `what` was read.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    pub(super) what: &'static str,
    /// Which of the accepted formats it is (`None`: bytes without one).
    magic: Option<&'static [u8; 4]>,
}

impl<'a> Reader<'a> {
    /// A reader of bytes in one of the `formats` (by their magic).
    fn new(
        bytes: &'a [u8],
        formats: &[&'static [u8; 4]],
        what: &'static str,
    ) -> Result<Self, CoreError> {
        let magic = formats
            .iter()
            .find(|m| bytes.get(..4) == Some(m.as_slice()))
            .ok_or_else(|| corrupt(what, "unknown format"))?;
        Ok(Reader {
            bytes,
            at: 4,
            what,
            magic: Some(magic),
        })
    }

    /// A reader of bytes that start with no format magic.
    pub(super) fn body(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            at: 0,
            what,
            magic: None,
        }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], CoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| corrupt(self.what, "it ends early"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub(super) fn u32(&mut self) -> Result<u32, CoreError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    pub(super) fn u64(&mut self) -> Result<u64, CoreError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self) -> Result<&'a [u8], CoreError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub(super) fn str(&mut self) -> Result<&'a str, CoreError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| corrupt(self.what, "text is not UTF-8"))
    }

    pub(super) fn string(&mut self) -> Result<String, CoreError> {
        self.str().map(str::to_owned)
    }

    pub(super) fn hlc(&mut self) -> Result<Hlc, CoreError> {
        Ok(Hlc {
            wall: self.u64()?,
            counter: self.u32()?,
            node: self.u32()?,
        })
    }

    /// A document's fields: canonical JSON text this crate wrote (an object).
    pub(super) fn fields(&mut self) -> Result<Fields<&'a str>, CoreError> {
        let fields = self.str()?;
        if !(fields.starts_with('{') && fields.ends_with('}')) {
            return Err(corrupt(self.what, "a document's fields are not an object"));
        }
        Ok(Fields::from_canonical(fields))
    }

    /// A capacity for `count` items that a damaged count cannot blow up.
    pub(super) fn capped(&self, count: u32) -> usize {
        (count as usize).min(self.bytes.len() - self.at)
    }

    fn txs(&mut self) -> Result<Vec<StoredTx>, CoreError> {
        let count = self.u32()?;
        let mut txs = Vec::with_capacity(self.capped(count) / 20);
        for _ in 0..count {
            txs.push(StoredTx {
                id: TxId(self.u64()?),
                updated_at: self.u64()?,
                bytes: self.bytes()?.into(),
            });
        }
        Ok(txs)
    }

    fn docs(&mut self) -> Result<Vec<Document>, CoreError> {
        let count = self.u32()?;
        let mut docs = Vec::with_capacity(self.capped(count) / 33);
        for _ in 0..count {
            let id = self.str()?;
            let version = self.u64()?;
            let hlc = self.hlc()?;
            let deleted = self.take(1)?[0] != 0;
            docs.push(Document::new(id, self.fields()?, version, hlc, deleted));
        }
        Ok(docs)
    }

    pub(super) fn end(&self) -> Result<(), CoreError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(corrupt(self.what, "it has bytes left over"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                collection: "todos".into(),
                doc_id: "a".into(),
                op: Op::Delete,
                hlc: Hlc::default(),
                base_version: 1,
                base: None,
                wire_id: Some(3),
                parked: None,
                original: None,
                metadata: Some(json!({"by": "test"})),
                changed_at: None,
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
        // The same record as format 3 wrote it: no heads.
        let mut old = Writer(Vec::new());
        old.0.extend_from_slice(RECORD_MAGIC_3);
        old.u64(record.seq);
        old.str(&serde_json::to_string(&record.meta).unwrap());
        old.txs(&record.txs);
        old.txs(&record.finished);
        old.u32(1);
        old.str("todos");
        old.docs(&record.docs[0].1);
        old.u32(1);
        old.str("notes");
        old.str("x");
        let read = Record::decode(&old.0).unwrap();
        assert_eq!(
            read,
            Record {
                finished_heads: Vec::new(),
                ..record.clone()
            }
        );
        assert_eq!(
            Record::decode(&Record::default().encode()).unwrap(),
            Record::default()
        );
        let history = HistoryPage {
            index: 3,
            txs: vec![StoredTx::of(&tx)],
        };
        assert_eq!(
            HistoryPage::decode(&history.pieces().to_vec()).unwrap(),
            history
        );
        // A history page of format 1: the transactions as one JSON array.
        let mut old = Writer(Vec::new());
        old.0.extend_from_slice(HISTORY_MAGIC_1);
        old.u32(3);
        old.str(&serde_json::to_string(&[&tx]).unwrap());
        assert_eq!(HistoryPage::decode(&old.0).unwrap(), history);
        assert_eq!(history_page_of(TxId(HISTORY_PAGE_TXS * 3 + 5)), 3);
    }

    /// A record as schema 2 wrote it, before the history: no `finished`, no history fields in
    /// the checkpoint, no creation time on sync-log entries, no metadata on writes.
    #[test]
    fn records_written_before_the_history_still_read() {
        let tx = Transaction::new(
            TxId(2),
            vec![Mutation {
                collection: "todos".into(),
                doc_id: "a".into(),
                op: Op::Delete,
                hlc: Hlc::default(),
                base_version: 1,
                base: None,
                wire_id: None,
                parked: None,
                original: None,
                metadata: None,
                changed_at: None,
            }],
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
        huge_count[4 + 4 + 5 + 4 + 4 + 8] = 0xff; // the document count
        assert!(Page::decode(&huge_count).is_err());
        assert!(Record::decode(b"FSL2").is_err());
        assert!(Record::decode(b"FSL3").is_err());
        assert!(HistoryPage::decode(b"FSH1\x00\x00\x00\x00\x02\x00\x00\x00[{").is_err());
        assert!(HistoryPage::decode(b"FSH2\x00\x00\x00\x00\x02\x00\x00\x00").is_err());
    }
}
