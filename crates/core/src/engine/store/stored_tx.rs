//! A transaction as storage holds it, apart from the JSON around it, so a reload reads only
//! what it needs: the id and the time it last changed are beside it, and its bytes are decoded
//! when the transaction is wanted (an unfinished one at load, a history entry when first read).
//!
//! Bytes: the transaction's JSON without its mutations, then `u32` mutations, each: collection,
//! document id, `u8` op (0 insert, 1 update, 2 delete, 3 put) and its fields unless a delete,
//! the hlc (`u64` wall, `u32` counter, `u32` node), `u64` base version, the optional `u64` wire
//! id, `u64` changed-at and original fields (each `u8` 0 or 1, then the value), and the JSON of
//! the rarely set parts (base, parked conflict, metadata), empty when none is.

use super::codec::{corrupt, Reader, Writer};
use crate::doc_set::FastHasher;
use crate::document::{Document, Fields};
use crate::mutation::{Mutation, Op, ParkedConflict};
use crate::transaction::{Transaction, TxId};
use crate::{CoreError, Millis};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::hash::Hasher;
use std::rc::Rc;

/// A stored transaction: its id and the time it last changed, and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTx {
    /// Its id.
    pub id: TxId,
    /// When it last changed (the history's retention reads it).
    pub updated_at: Millis,
    /// The transaction's bytes (see the module's documentation), shared: the history's entry,
    /// the record and the history page storing it hold one copy.
    pub bytes: Rc<[u8]>,
}

/// What a mutation rarely holds, as JSON.
#[derive(Default, Serialize, Deserialize)]
struct Rare {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<Box<Document>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parked: Option<Box<ParkedConflict>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
}

impl StoredTx {
    /// A transaction's stored form.
    pub fn of(tx: &Transaction) -> Self {
        let shell = serde_json::to_string(&tx.without_mutations()).expect("transactions serialize");
        let mut out = Writer(Vec::with_capacity(
            8 + shell.len() + 96 * tx.mutations.len(),
        ));
        out.str(&shell);
        out.u32(tx.mutations.len() as u32);
        for m in &tx.mutations {
            out.str(&m.collection);
            out.str(&m.doc_id);
            match &m.op {
                Op::Insert { fields } => out.tagged(0, fields.as_json()),
                Op::Update { patch } => out.tagged(1, patch.as_json()),
                Op::Delete => out.0.push(2),
                Op::Put { fields } => out.tagged(3, fields.as_json()),
            }
            out.hlc(m.hlc);
            out.u64(m.base_version);
            out.maybe(m.wire_id, Writer::u64);
            out.maybe(m.changed_at, Writer::u64);
            out.maybe(m.original.as_ref().map(Fields::as_json), Writer::str);
            // Most mutations hold none of the rare parts: nothing is cloned or encoded then.
            let rare = if m.base.is_none() && m.parked.is_none() && m.metadata.is_none() {
                String::new()
            } else {
                let rare = Rare {
                    base: m.base.clone(),
                    parked: m.parked.clone(),
                    metadata: m.metadata.clone(),
                };
                serde_json::to_string(&rare).expect("mutations serialize")
            };
            out.str(&rare);
        }
        StoredTx {
            id: tx.id,
            updated_at: tx.updated_at,
            bytes: out.0.into(),
        }
    }

    /// The length of its head: the transaction's JSON without its mutations.
    fn head_len(&self) -> usize {
        let len = self.bytes.get(..4).map_or(0, |b| {
            u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
        });
        (4 + len).min(self.bytes.len())
    }

    /// Its head alone (the transaction without its mutations): what a record stores for a
    /// transaction that ended with the mutations an earlier record holds (see
    /// [`StoredTx::mutations_hash`]).
    pub fn head(&self) -> StoredTx {
        StoredTx {
            bytes: self.bytes[..self.head_len()].into(),
            ..self.clone()
        }
    }

    /// This head with the mutations of `body` (an earlier stored version of the transaction).
    pub fn with_mutations_of(&self, body: &StoredTx) -> StoredTx {
        let mut bytes = Vec::with_capacity(self.bytes.len() + body.bytes.len());
        bytes.extend_from_slice(&self.bytes[..self.head_len()]);
        bytes.extend_from_slice(&body.bytes[body.head_len()..]);
        StoredTx {
            bytes: bytes.into(),
            ..self.clone()
        }
    }

    /// A fingerprint of its mutations' bytes: two versions of a transaction with the same one
    /// hold the same mutations (a 64-bit hash; its own encodings are all it is compared with).
    pub fn mutations_hash(&self) -> u64 {
        let mut hasher = FastHasher::default();
        hasher.write(&self.bytes[self.head_len()..]);
        hasher.finish()
    }

    /// The transaction it holds.
    pub fn decode(&self) -> Result<Transaction, CoreError> {
        const WHAT: &str = "transaction";
        let unreadable =
            |e: serde_json::Error| corrupt(WHAT, &format!("{} is unreadable: {e}", self.id));
        let mut r = Reader::body(&self.bytes, WHAT);
        let mut tx: Transaction = serde_json::from_str(r.str()?).map_err(unreadable)?;
        let count = r.u32()?;
        tx.mutations.reserve(r.capped(count) / 40);
        for _ in 0..count {
            let collection = r.string()?;
            let doc_id = r.string()?;
            let op = match r.u8()? {
                0 => Op::Insert {
                    fields: r.fields()?.owned(),
                },
                1 => Op::Update {
                    patch: r.fields()?.owned(),
                },
                2 => Op::Delete,
                3 => Op::Put {
                    fields: r.fields()?.owned(),
                },
                _ => return Err(corrupt(WHAT, "an unknown op")),
            };
            let hlc = r.hlc()?;
            let base_version = r.u64()?;
            let wire_id = r.maybe(Reader::u64)?;
            let changed_at = r.maybe(Reader::u64)?;
            let original = r.maybe(Reader::fields)?.map(|f| f.owned());
            let rare = match r.str()? {
                "" => Rare::default(),
                json => serde_json::from_str(json).map_err(unreadable)?,
            };
            tx.mutations.push(Mutation {
                collection,
                doc_id,
                op,
                hlc,
                base_version,
                base: rare.base,
                wire_id,
                parked: rare.parked,
                original,
                metadata: rare.metadata,
                changed_at,
            });
        }
        r.end()?;
        Ok(tx)
    }
}

impl Writer {
    /// A tag byte, then text.
    fn tagged(&mut self, tag: u8, text: &str) {
        self.0.push(tag);
        self.str(text);
    }

    /// `0`, or `1` and the value.
    fn maybe<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            Some(v) => {
                self.0.push(1);
                write(self, v);
            }
            None => self.0.push(0),
        }
    }
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, CoreError> {
        Ok(self.take(1)?[0])
    }

    /// What [`Writer::maybe`] wrote.
    fn maybe<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, CoreError>,
    ) -> Result<Option<T>, CoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(corrupt(self.what, "a damaged optional value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::transaction::{TxError, TxState};
    use crate::Code;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::from_map(value.as_object().unwrap())
    }

    fn mutation(doc_id: &str, op: Op) -> Mutation {
        Mutation {
            collection: "todos".into(),
            doc_id: doc_id.into(),
            op,
            hlc: Hlc {
                wall: 1_700_000_000_000,
                counter: 2,
                node: 9,
            },
            base_version: 4,
            base: None,
            wire_id: None,
            parked: None,
            original: None,
            metadata: None,
            changed_at: None,
        }
    }

    #[test]
    fn every_kind_of_mutation_reads_back_as_written() {
        let doc = Document::new("b", fields(json!({"n": 1})), 3, Hlc::default(), false);
        let mut tx = Transaction::new(
            TxId(7),
            vec![
                mutation(
                    "a",
                    Op::Insert {
                        fields: fields(json!({"t": "é\"x", "n": 1})),
                    },
                ),
                Mutation {
                    wire_id: Some(12),
                    changed_at: Some(99),
                    original: Some(fields(json!({"n": 1}))),
                    base: Some(Box::new(doc.clone())),
                    metadata: Some(json!({"by": "test"})),
                    parked: Some(Box::new(ParkedConflict {
                        local: None,
                        remote: doc.clone(),
                        base: Some(doc),
                    })),
                    ..mutation(
                        "b",
                        Op::Update {
                            patch: fields(json!({"n": 2})),
                        },
                    )
                },
                mutation("日本", Op::Delete),
                mutation(
                    "d",
                    Op::Put {
                        fields: Fields::new(),
                    },
                ),
            ],
            5,
        );
        tx.fail(
            TxError::new(
                TxId(7),
                Code::Protocol(crate::protocol::ErrorCode::TooLarge),
                "refused".into(),
            ),
            8,
        );
        tx.metadata = Some(json!({"kind": "bulk"}));
        let stored = StoredTx::of(&tx);
        assert_eq!((stored.id, stored.updated_at), (TxId(7), 8));
        let read = stored.decode().unwrap();
        assert_eq!(read, tx);
        assert_eq!(read.state, TxState::Failed);
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let tx = Transaction::new(TxId(1), vec![mutation("a", Op::Delete)], 5);
        let stored = StoredTx::of(&tx);
        for len in 0..stored.bytes.len() {
            let cut = StoredTx {
                bytes: stored.bytes[..len].into(),
                ..stored.clone()
            };
            assert!(cut.decode().is_err(), "cut at {len}");
        }
    }
}
