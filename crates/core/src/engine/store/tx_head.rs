//! A stored transaction's head: everything of it but its mutations, its id and the time it
//! last changed (those two are stored beside its bytes).
//!
//! Bytes, behind their `varint` length: `u8` state (its index in [`TxState::VARIANTS`]),
//! `u8` flags (which optional parts follow), created-at, `varint` retries, `varint` attempts,
//! each: `varint` id, started-at after created-at, `u8` flags, then those the flags name:
//! completed-at after started-at, error `text`, the error's code (its name) as `text`, retry
//! time after started-at; `varint` ids it is
//! queued behind; then those the head's flags name: `varint` current attempt, and the JSON of
//! the rarely set parts (error, metadata, what is left to confirm) as `text`. Times after
//! another are [`Writer::after`] it.
//!
//! The formats before stored the head as the transaction's JSON behind a `u32` length
//! ([`StoredTx::from_json_head`](super::StoredTx::from_json_head) rewrites it).

use super::bytes::{Reader, Writer};
use super::codec::corrupt;
use super::stored_tx::Rare;
use crate::transaction::{Attempt, Transaction, TxId, TxState};
use crate::{Code, CoreError, Millis};

/// A head's flags: a current attempt follows.
const CURRENT_ATTEMPT: u8 = 1;
/// A head's flags: the rare parts' JSON follows.
const RARE: u8 = 2;
/// An attempt's flags: when it was answered follows.
const COMPLETED: u8 = 1;
/// An attempt's flags: its error follows.
const ERROR: u8 = 2;
/// An attempt's flags: when its retry is due follows.
const RETRY: u8 = 4;
/// An attempt's flags: its error's code follows.
const CODE: u8 = 8;

/// What the bytes are called in errors.
const WHAT: &str = "transaction";

/// Writes `tx`'s head, behind its length.
pub(super) fn write(out: &mut Writer, tx: &Transaction) {
    // Every field named, so that a new one is not left out of the head.
    let Transaction {
        id: _,
        updated_at: _,
        mutations: _,
        state,
        created_at,
        attempts,
        current_attempt,
        queued_behind,
        error,
        retries,
        metadata,
        confirm,
    } = tx;
    let rare = (error.is_some() || metadata.is_some() || confirm.is_some()).then(|| {
        let rare = Rare {
            error: error.clone(),
            metadata: metadata.clone(),
            confirm: confirm.clone(),
            ..Rare::default()
        };
        serde_json::to_string(&rare).expect("transactions serialize")
    });
    out.prefixed(|out| {
        let state = TxState::VARIANTS.iter().position(|s| s == state);
        out.0.push(state.expect("every state is listed") as u8);
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        out.0
            .push(flag(current_attempt.is_some(), CURRENT_ATTEMPT) | flag(rare.is_some(), RARE));
        out.varint(*created_at);
        out.varint((*retries).into());
        out.varint(attempts.len() as u64);
        for attempt in attempts {
            write_attempt(out, attempt, *created_at);
        }
        out.varint(queued_behind.len() as u64);
        queued_behind.iter().for_each(|id| out.varint(id.0));
        if let Some(current) = current_attempt {
            out.varint((*current).into());
        }
        if let Some(rare) = &rare {
            out.text(rare);
        }
    });
}

fn write_attempt(out: &mut Writer, attempt: &Attempt, created_at: Millis) {
    let Attempt {
        id,
        started_at,
        completed_at,
        error,
        error_code,
        retry_scheduled_for,
    } = attempt;
    out.varint((*id).into());
    out.after(*started_at, created_at);
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    out.0.push(
        flag(completed_at.is_some(), COMPLETED)
            | flag(error.is_some(), ERROR)
            | flag(retry_scheduled_for.is_some(), RETRY)
            | flag(error_code.is_some(), CODE),
    );
    if let Some(at) = completed_at {
        out.after(*at, *started_at);
    }
    if let Some(error) = error {
        out.text(error);
    }
    if let Some(code) = error_code {
        out.text(code.as_str());
    }
    if let Some(at) = retry_scheduled_for {
        out.after(*at, *started_at);
    }
}

/// Reads the head [`write`] wrote, of the transaction `id` last changed at `updated_at`: the
/// transaction without its mutations.
pub(super) fn read(
    r: &mut Reader<'_>,
    id: TxId,
    updated_at: Millis,
) -> Result<Transaction, CoreError> {
    let mut head = Reader::new(r.prefixed()?, WHAT);
    let state = *TxState::VARIANTS
        .get(usize::from(head.u8()?))
        .ok_or_else(|| corrupt(WHAT, "an unknown state"))?;
    let flags = head.u8()?;
    let mut tx = Transaction::new(id, Vec::new(), head.varint()?);
    (tx.state, tx.updated_at, tx.retries) = (state, updated_at, head.varint32()?);
    let attempts = head.varint()?;
    tx.attempts.reserve(head.capped(attempts) / 3);
    for _ in 0..attempts {
        let attempt = read_attempt(&mut head, tx.created_at)?;
        tx.attempts.push(attempt);
    }
    let queued = head.varint()?;
    tx.queued_behind.reserve(head.capped(queued));
    for _ in 0..queued {
        tx.queued_behind.push(TxId(head.varint()?));
    }
    if flags & CURRENT_ATTEMPT != 0 {
        tx.current_attempt = Some(head.varint32()?);
    }
    if flags & RARE != 0 {
        let rare = Rare::of(id, head.text()?)?;
        (tx.error, tx.metadata, tx.confirm) = (rare.error, rare.metadata, rare.confirm);
    }
    head.end()?;
    Ok(tx)
}

fn read_attempt(r: &mut Reader<'_>, created_at: Millis) -> Result<Attempt, CoreError> {
    let id = r.varint32()?;
    let started_at = r.after(created_at)?;
    let flags = r.u8()?;
    Ok(Attempt {
        id,
        started_at,
        completed_at: (flags & COMPLETED != 0)
            .then(|| r.after(started_at))
            .transpose()?,
        error: (flags & ERROR != 0)
            .then(|| r.text().map(str::to_owned))
            .transpose()?,
        error_code: (flags & CODE != 0)
            .then(|| r.text().map(Code::parse))
            .transpose()?,
        retry_scheduled_for: (flags & RETRY != 0)
            .then(|| r.after(started_at))
            .transpose()?,
    })
}
