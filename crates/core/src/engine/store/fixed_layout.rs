//! Writes the layouts of earlier formats (fixed-width parts, heads as JSON), so tests can build
//! the bytes an older version stored and check that they still read.

use super::bytes::{Reader, Writer};
use super::stored_tx::{op_tag, StoredTx};
use super::tx_head;
use crate::document::{Document, Fields};
use crate::transaction::Transaction;

impl Writer {
    /// `0`, or `1` and the value.
    fn fixed_maybe<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            Some(v) => {
                self.0.push(1);
                write(self, v);
            }
            None => self.0.push(0),
        }
    }

    /// Documents: `u32` count, each: id, `u64` version, timestamp, `u8` deleted, fields.
    pub(super) fn fixed_docs(&mut self, docs: &[Document]) {
        self.u32(docs.len() as u32);
        for doc in docs {
            self.str(doc.id());
            self.u64(doc.version());
            self.fixed_hlc(doc.hlc());
            self.0.push(u8::from(doc.deleted()));
            self.str(doc.fields().as_json());
        }
    }

    /// Transactions: `u32` count, each: `u64` id, `u64` updated_at, its bytes behind a `u32`
    /// length, in the layout [`fixed_tx`] writes (heads as they are).
    pub(super) fn fixed_txs(&mut self, txs: &[(StoredTx, Vec<u8>)]) {
        self.u32(txs.len() as u32);
        for (tx, bytes) in txs {
            self.u64(tx.id.0);
            self.u64(tx.updated_at);
            self.bytes(bytes);
        }
    }
}

/// A transaction's bytes in the fixed-width layout: its head, `u32` mutations, each:
/// collection, document id, `u8` op and its fields unless a delete, timestamp, `u64` base
/// version, optional wire id, changed-at and original fields, the rare parts' JSON (empty for
/// none).
pub(super) fn fixed_tx(tx: &Transaction) -> Vec<u8> {
    let mut out = Writer(json_head(tx));
    out.u32(tx.mutations.len() as u32);
    for m in &tx.mutations {
        out.str(&m.collection);
        out.str(&m.doc_id);
        let (tag, fields) = op_tag(&m.op);
        out.0.push(tag);
        fields.into_iter().for_each(|f| out.str(f.as_json()));
        out.fixed_hlc(m.hlc);
        out.u64(m.base_version);
        out.fixed_maybe(m.wire_id, Writer::u64);
        out.fixed_maybe(m.changed_at, Writer::u64);
        out.fixed_maybe(m.original.as_ref().map(Fields::as_json), Writer::str);
        let rare = if m.base.is_none() && m.parked.is_none() && m.metadata.is_none() {
            String::new()
        } else {
            serde_json::json!({"base": m.base, "parked": m.parked, "metadata": m.metadata})
                .to_string()
        };
        out.str(&rare);
    }
    out.0
}

/// A transaction's head as the formats before the binary head wrote it: its JSON without its
/// mutations, behind a `u32` length.
pub(super) fn json_head(tx: &Transaction) -> Vec<u8> {
    let head = Transaction {
        mutations: Vec::new(),
        ..tx.clone()
    };
    let mut out = Writer(Vec::new());
    out.str(&serde_json::to_string(&head).unwrap());
    out.0
}

/// A stored transaction as the formats with compact mutations and a JSON head wrote it (a head
/// alone when `stored` is one).
pub(super) fn json_head_tx(stored: &StoredTx) -> StoredTx {
    let mut bytes = json_head(&stored.decode_head());
    bytes.extend_from_slice(&stored.bytes[stored.head().bytes.len()..]);
    StoredTx {
        bytes: bytes.into(),
        ..stored.clone()
    }
}

impl StoredTx {
    /// The transaction without its mutations, read from its head.
    fn decode_head(&self) -> Transaction {
        let mut r = Reader::new(&self.bytes, "transaction");
        tx_head::read(&mut r, self.id, self.updated_at).unwrap()
    }
}
