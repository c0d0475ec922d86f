//! A transaction as storage holds it, apart from the JSON around it, so a reload reads only
//! what it needs: the id and the time it last changed are beside it, and its bytes are decoded
//! when the transaction is wanted (an unfinished one at load, a history entry when first read).
//!
//! Bytes (the parts are [`super::bytes`]'s): its head ([`super::tx_head`]: the transaction
//! without its mutations), then `varint` mutations, each: `u8` flags (the op in the low two
//! bits: 0 insert, 1 update, 2 delete, 3 put; then which parts follow), the collection `text`
//! unless the one before's, the document id `text`, its fields `text` unless a delete, the
//! timestamp after the one before, `varint` base version, then those the flags name: `varint`
//! wire id, `varint` changed-at, original fields `text`, and the JSON of the rarely set parts
//! (base, parked conflict, metadata) as `text`.
//!
//! In memory, a finished transaction may be *thin* (see the engine's history): its bytes are
//! `u8` 0 and the fixed-width timestamps of the first and the last mutation it leaves the
//! fields out of (or `u8` 1 and the one timestamp of those, when they have one), then the
//! layout above with an empty `text` for those fields (valid fields are never
//! empty). Storage never holds this form.
//!
//! The formats before stored the head as JSON, and before that the mutations with fixed-width
//! parts too (see [`StoredTx::from_json_head`]); a load rewrites those in this layout.

use super::bytes::{node_changed, Reader, Writer};
use super::codec::corrupt;
use super::tx_head;
use crate::doc_set::FastHasher;
use crate::document::{Document, Fields};
use crate::hlc::Hlc;
use crate::mutation::{Mutation, Op, ParkedConflict};
use crate::transaction::{Transaction, TxError, TxId};
use crate::{CoreError, Millis};
use serde::Serialize;
use serde_json::Value;
use std::hash::Hasher;
use std::rc::Rc;

/// A mutation's flags: its op's bits.
const OP: u8 = 0b11;
/// The collection is the mutation before's.
const SAME_COLLECTION: u8 = 1 << 2;
/// The timestamp's node differs from the mutation before's.
const NODE_CHANGED: u8 = 1 << 3;
/// A wire id follows.
const WIRE_ID: u8 = 1 << 4;
/// A changed-at time follows.
const CHANGED_AT: u8 = 1 << 5;
/// Original fields follow.
const ORIGINAL: u8 = 1 << 6;
/// The rare parts' JSON follows.
const RARE: u8 = 1 << 7;

/// A stored transaction: its id and the time it last changed, and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTx {
    /// Its id.
    pub id: TxId,
    /// When it last changed (the history's retention reads it).
    pub updated_at: Millis,
    /// The transaction's bytes (see the module's documentation), shared: the record and the
    /// history page storing it hold one copy (the history's memory packs its own,
    /// [`super::PackedHistory`]).
    pub bytes: Rc<[u8]>,
}

/// What a mutation or a transaction's head rarely holds, as JSON: a mutation's base, parked
/// conflict and metadata, a transaction's error, metadata and what is left to confirm.
#[derive(Default, Serialize)]
pub(super) struct Rare {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) base: Option<Box<Document>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parked: Option<Box<ParkedConflict>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<TxError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) confirm: Option<Value>,
}

crate::deserialize_object!(Rare {
    "base" => base: Option<Box<Document>> = default,
    "parked" => parked: Option<Box<ParkedConflict>> = default,
    "metadata" => metadata: Option<Value> = default,
    "error" => error: Option<TxError> = default,
    "confirm" => confirm: Option<Value> = default,
});

/// An op's tag (the low two bits of a mutation's flags) and its fields, if it has any.
pub(super) fn op_tag(op: &Op) -> (u8, Option<&Fields>) {
    match op {
        Op::Insert { fields } => (0, Some(fields)),
        Op::Update { patch } => (1, Some(patch)),
        Op::Delete => (2, None),
        Op::Put { fields } => (3, Some(fields)),
    }
}

impl StoredTx {
    /// A transaction's stored form.
    pub fn of(tx: &Transaction) -> Self {
        let mut out = Writer(Vec::with_capacity(32 + 64 * tx.mutations.len()));
        write(&mut out, tx, &[]);
        StoredTx {
            id: tx.id,
            updated_at: tx.updated_at,
            bytes: out.0.into(),
        }
    }

    /// A finished transaction's thin form (see the module's documentation), if `thins` leaves
    /// out the fields of any of its mutations (an insert's or a put's whose document the
    /// collection holds as it wrote it).
    pub(in crate::engine) fn thin(
        tx: &Transaction,
        thins: &mut dyn FnMut(&Mutation) -> bool,
    ) -> Option<Rc<[u8]>> {
        let thin: Vec<bool> = tx.mutations.iter().map(thins).collect();
        let hlcs = || {
            tx.mutations
                .iter()
                .zip(&thin)
                .filter(|t| *t.1)
                .map(|t| t.0.hlc)
        };
        let (min, max) = (hlcs().min()?, hlcs().max()?);
        let mut out = Writer(Vec::with_capacity(64 + 16 * tx.mutations.len()));
        out.0.push(if min == max { THIN_ONE } else { THIN });
        out.fixed_hlc(min);
        if min != max {
            out.fixed_hlc(max);
        }
        write(&mut out, tx, &thin);
        Some(out.0.into())
    }

    /// The timestamps of the first and the last mutation that `bytes` (a transaction's, thin
    /// or not) leaves the fields out of, if any.
    pub(in crate::engine) fn thin_range(bytes: &[u8]) -> Option<(Hlc, Hlc)> {
        thin_parts(bytes).map(|(range, _)| range)
    }

    /// The transaction `bytes` hold, thin or not, the fields a thin one leaves out given by
    /// `fill` (of a mutation's collection, document and timestamp: the document it wrote).
    pub(in crate::engine) fn decode_thin(
        id: TxId,
        updated_at: Millis,
        bytes: &[u8],
        fill: &Fill<'_>,
    ) -> Result<Transaction, CoreError> {
        match thin_parts(bytes) {
            Some((_, rest)) => read(id, updated_at, rest, Some(fill)),
            None => read(id, updated_at, bytes, None),
        }
    }

    /// A transaction stored by the formats before the binary head, in the current layout: its
    /// head was its JSON behind a `u32` length, its mutations compact or, before those
    /// (`fixed`), with fixed-width parts. The head is written again, compact mutations are kept
    /// as they are, fixed-width ones are read and written again; a head alone stays alone.
    pub(super) fn from_json_head(
        id: TxId,
        updated_at: Millis,
        bytes: &[u8],
        fixed: bool,
    ) -> Result<Self, CoreError> {
        let mut r = Reader::new(bytes, WHAT);
        let mut tx: Transaction =
            serde_json::from_str(r.str()?).map_err(|e| Self::unreadable(id, e))?;
        (tx.id, tx.updated_at) = (id, updated_at);
        // A head alone, or compact mutations: the new head, then the rest as it is.
        if r.at_end() || !fixed {
            let head = StoredTx::of(&tx).head();
            let mut joined = head.bytes.to_vec();
            joined.extend_from_slice(&bytes[r.position()..]);
            return Ok(StoredTx {
                bytes: joined.into(),
                ..head
            });
        }
        let count = r.u32()?;
        tx.mutations.reserve(r.capped(count.into()) / 40);
        for _ in 0..count {
            let (collection, doc_id) = (r.string()?, r.string()?);
            let op = read_op(r.u8()?, &mut r, Reader::fields)?;
            let mut m = Mutation::new(collection, doc_id, op, r.hlc()?, r.u64()?);
            m.wire_id = r.maybe(Reader::u64)?;
            m.changed_at = r.maybe(Reader::u64)?;
            m.original = r.maybe(|r| r.fields().map(|f| f.owned()))?;
            let json = r.str()?;
            if !json.is_empty() {
                Rare::of(id, json)?.fill(&mut m);
            }
            tx.mutations.push(m);
        }
        r.end()?;
        Ok(StoredTx::of(&tx))
    }

    /// The length of its head (with the head's length before it); all of it when damaged.
    fn head_len(&self) -> usize {
        let mut r = Reader::new(&self.bytes, WHAT);
        r.prefixed().map_or(self.bytes.len(), |_| r.position())
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

    /// The error for the damaged JSON of transaction `id`.
    fn unreadable(id: TxId, e: serde_json::Error) -> CoreError {
        corrupt(WHAT, &format!("{id} is unreadable: {e}"))
    }

    /// The transaction it holds.
    pub fn decode(&self) -> Result<Transaction, CoreError> {
        read(self.id, self.updated_at, &self.bytes, None)
    }
}

/// The first byte of a thin transaction's bytes whose left-out mutations have two timestamps
/// or more (a head's length, which starts the others, is never 0 nor 1: a head holds 6 bytes
/// or more).
const THIN: u8 = 0;

/// The first byte of a thin transaction's bytes whose left-out mutations have one timestamp.
const THIN_ONE: u8 = 1;

/// A thin transaction's range of timestamps, and the rest of its bytes: `None` if it is not
/// thin.
fn thin_parts(bytes: &[u8]) -> Option<((Hlc, Hlc), &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    let mut r = Reader::new(rest, WHAT);
    let min = match first {
        THIN | THIN_ONE => r.hlc().ok()?,
        _ => return None,
    };
    let max = if first == THIN { r.hlc().ok()? } else { min };
    Some(((min, max), &rest[r.position()..]))
}

/// Writes `tx` (its head, then its mutations), leaving out the fields of the mutations whose
/// places `thin` marks (none past its end).
fn write(out: &mut Writer, tx: &Transaction, thin: &[bool]) {
    tx_head::write(out, tx);
    out.varint(tx.mutations.len() as u64);
    let mut previous: Option<&Mutation> = None;
    for (at, m) in tx.mutations.iter().enumerate() {
        let (op, fields) = op_tag(&m.op);
        let before = previous.map_or(Hlc::default(), |p| p.hlc);
        let same_collection = previous.is_some_and(|p| p.collection == m.collection);
        // Most mutations hold none of the rare parts: nothing is cloned or encoded then.
        let rare = (m.base.is_some() || m.parked.is_some() || m.metadata.is_some()).then(|| {
            let rare = Rare {
                base: m.base.clone(),
                parked: m.parked.clone(),
                metadata: m.metadata.clone(),
                ..Rare::default()
            };
            serde_json::to_string(&rare).expect("mutations serialize")
        });
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        out.0.push(
            op | flag(same_collection, SAME_COLLECTION)
                | flag(node_changed(m.hlc, before), NODE_CHANGED)
                | flag(m.wire_id.is_some(), WIRE_ID)
                | flag(m.changed_at.is_some(), CHANGED_AT)
                | flag(m.original.is_some(), ORIGINAL)
                | flag(rare.is_some(), RARE),
        );
        if !same_collection {
            out.text(&m.collection);
        }
        out.text(&m.doc_id);
        if let Some(fields) = fields {
            let left_out = thin.get(at).is_some_and(|&thin| thin);
            out.text(if left_out { "" } else { fields.as_json() });
        }
        out.hlc_after(m.hlc, before);
        out.varint(m.base_version);
        m.wire_id.into_iter().for_each(|id| out.varint(id));
        m.changed_at.into_iter().for_each(|at| out.varint(at));
        if let Some(original) = &m.original {
            out.text(original.as_json());
        }
        if let Some(rare) = &rare {
            out.text(rare);
        }
        previous = Some(m);
    }
}

/// What gives the fields a thin transaction leaves out: of a mutation's collection, document
/// and timestamp, the fields of the document it wrote.
pub(in crate::engine) type Fill<'a> = dyn Fn(&str, &str, Hlc) -> Option<Fields> + 'a;

/// Reads what [`write`] wrote; `fill` gives the fields a thin transaction left out (none
/// may be left out without it).
fn read(
    id: TxId,
    updated_at: Millis,
    bytes: &[u8],
    fill: Option<&Fill<'_>>,
) -> Result<Transaction, CoreError> {
    let mut r = Reader::new(bytes, WHAT);
    let mut tx = tx_head::read(&mut r, id, updated_at)?;
    let count = r.varint()?;
    tx.mutations.reserve(r.capped(count) / 8);
    let fields = if fill.is_some() {
        Reader::thin_fields
    } else {
        Reader::text_fields
    };
    for _ in 0..count {
        let flags = r.u8()?;
        let previous = tx.mutations.last();
        let collection = match (previous, flags & SAME_COLLECTION != 0) {
            (Some(previous), true) => previous.collection.clone(),
            (None, true) => return Err(corrupt(WHAT, "a collection refers to nothing")),
            (_, false) => r.text()?.to_owned(),
        };
        let before = previous.map_or(Hlc::default(), |p| p.hlc);
        let doc_id = r.text()?.to_owned();
        let mut op = read_op(flags & OP, &mut r, fields)?;
        let hlc = r.hlc_after(before, flags & NODE_CHANGED != 0)?;
        if let (
            Op::Insert { fields } | Op::Put { fields } | Op::Update { patch: fields },
            Some(fill),
        ) = (&mut op, fill)
        {
            if fields.as_json().is_empty() {
                *fields = fill(&collection, &doc_id, hlc)
                    .ok_or_else(|| corrupt(WHAT, "a thin mutation's document is gone"))?;
            }
        }
        let mut m = Mutation::new(collection, doc_id, op, hlc, r.varint()?);
        if flags & WIRE_ID != 0 {
            m.wire_id = Some(r.varint()?);
        }
        if flags & CHANGED_AT != 0 {
            m.changed_at = Some(r.varint()?);
        }
        if flags & ORIGINAL != 0 {
            m.original = Some(r.text_fields()?.owned());
        }
        if flags & RARE != 0 {
            Rare::of(id, r.text()?)?.fill(&mut m);
        }
        tx.mutations.push(m);
    }
    r.end()?;
    Ok(tx)
}

/// What the bytes are called in errors.
const WHAT: &str = "transaction";

/// The op `tag` names, its fields read by `fields`.
fn read_op<'a>(
    tag: u8,
    r: &mut Reader<'a>,
    fields: fn(&mut Reader<'a>) -> Result<Fields<&'a str>, CoreError>,
) -> Result<Op, CoreError> {
    let mut read = || fields(r).map(|f| f.owned());
    Ok(match tag {
        0 => Op::Insert { fields: read()? },
        1 => Op::Update { patch: read()? },
        2 => Op::Delete,
        3 => Op::Put { fields: read()? },
        _ => return Err(corrupt(WHAT, "an unknown op")),
    })
}

impl Rare {
    /// The rare parts of transaction `id` (or of one of its mutations) from their JSON.
    pub(super) fn of(id: TxId, json: &str) -> Result<Rare, CoreError> {
        serde_json::from_str(json).map_err(|e| StoredTx::unreadable(id, e))
    }

    /// Puts these parts into `m`.
    fn fill(self, m: &mut Mutation) {
        (m.base, m.parked, m.metadata) = (self.base, self.parked, self.metadata);
    }
}

impl Reader<'_> {
    /// An optional value of the fixed-width layout: `0`, or `1` and the value.
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
    use super::super::fixed_layout::{fixed_tx, json_head, json_head_tx};
    use super::*;
    use crate::hlc::Hlc;
    use crate::transaction::{Attempt, TxError, TxState};
    use crate::Code;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::from_map(value.as_object().unwrap())
    }

    fn mutation(doc_id: &str, op: Op) -> Mutation {
        let hlc = Hlc {
            wall: 1_700_000_000_000,
            counter: 2,
            node: 9,
        };
        Mutation::new("todos".into(), doc_id.into(), op, hlc, 4)
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
        tx.confirm = Some(json!({"etag": 3}));
        tx.queued_behind = vec![TxId(5), TxId(300)];
        tx.current_attempt = Some(2);
        tx.retries = 1;
        tx.attempts = vec![
            Attempt {
                id: 1,
                started_at: 6,
                completed_at: Some(7),
                error: Some("offline".into()),
                error_code: Some(Code::Network),
                retry_scheduled_for: Some(1_000_000),
            },
            Attempt {
                id: 2,
                // A clock set back: earlier than the transaction's creation.
                started_at: 2,
                completed_at: None,
                error: None,
                error_code: None,
                retry_scheduled_for: None,
            },
        ];
        let stored = StoredTx::of(&tx);
        assert_eq!((stored.id, stored.updated_at), (TxId(7), 8));
        let read = stored.decode().unwrap();
        assert_eq!(read, tx);
        assert_eq!(read.state, TxState::Failed);
        // A head alone joins the mutations of another copy.
        let head = stored.head();
        assert_eq!(head.with_mutations_of(&stored), stored);
        // As earlier formats stored it (head as JSON; mutations compact or fixed-width):
        // rewritten in the current layout.
        let compact = json_head_tx(&stored).bytes.to_vec();
        for (fixed, bytes) in [(false, compact), (true, fixed_tx(&tx))] {
            assert!(bytes.len() > stored.bytes.len());
            let read = StoredTx::from_json_head(tx.id, 8, &bytes, fixed).unwrap();
            assert_eq!(read, stored);
        }
    }

    #[test]
    fn a_head_alone_of_an_earlier_format_is_rewritten_alone() {
        let mut tx = Transaction::new(TxId(3), vec![mutation("a", Op::Delete)], 5);
        tx.state = TxState::Completed;
        let stored = StoredTx::of(&tx);
        let fixed = fixed_tx(&tx);
        let json_len = json_head(&tx).len();
        for fixed_parts in [false, true] {
            let head = StoredTx::from_json_head(tx.id, 5, &fixed[..json_len], fixed_parts);
            assert_eq!(head.unwrap(), stored.head());
        }
        // Every other cut is an error.
        for len in (0..fixed.len()).filter(|&len| len != json_len) {
            assert!(StoredTx::from_json_head(tx.id, 5, &fixed[..len], true).is_err());
        }
    }

    #[test]
    fn a_plain_head_takes_a_few_bytes() {
        let mut tx = Transaction::new(TxId(1_000_000), vec![], 1_764_450_000_000);
        tx.state = TxState::Completed;
        tx.attempts.push(Attempt {
            id: 1,
            started_at: tx.created_at + 3,
            completed_at: Some(tx.created_at + 40),
            error: None,
            error_code: None,
            retry_scheduled_for: None,
        });
        // Its length, then: state, flags, creation time (6), retries, 1 attempt (id, start,
        // flags, end), 0 queued behind.
        assert_eq!(StoredTx::of(&tx).head().bytes.len(), 1 + 15);
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
