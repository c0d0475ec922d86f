//! The transaction history: finished transactions kept across reloads and compaction, paged by
//! queries, and dropped only by the configured retention, which counts what it drops.

mod common;

use common::*;
use ferrosync_core::engine::{
    Engine, EngineConfig, HistoryPage, HistoryRetention, Input, Pieces, Record, StorageTuning,
    StorageWrite, StoreOp,
};
use ferrosync_core::transaction::{Transaction, TxId, TxQuery, TxState};
use serde_json::json;

/// A client whose log compacts after a few records, with this retention.
fn compacting(keep: Option<usize>, max_age_ms: Option<u64>) -> Client {
    let config = EngineConfig {
        storage: StorageTuning {
            log_records: 4,
            history_page_bytes: 2_048,
            ..StorageTuning::default()
        },
        history: HistoryRetention { keep, max_age_ms },
        ..config(3)
    };
    Client::open(config, Store::default(), T0)
}

/// Commits `n` local-only inserts, each its own transaction, finishing and compacting them.
fn write_local(c: &mut Client, n: usize, now: u64) -> Vec<TxId> {
    (0..n)
        .map(|i| {
            let doc = json!({ "_id": format!("{now}-{i}") });
            let id = c.commit(vec![insert("cache", doc)], now).unwrap();
            c.flush(now);
            c.compact_if_due(now);
            c.flush(now);
            id
        })
        .collect()
}

fn ids(txs: Vec<&Transaction>) -> Vec<u64> {
    txs.into_iter().map(|t| t.id.0).collect()
}

#[test]
fn finished_transactions_survive_a_reload_with_their_states_and_attempts() {
    let mut w = World::online(1, config);
    let done = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "ok"}))], w.now)
        .unwrap();
    let refused = w.clients[0]
        .commit(
            vec![insert("todos", json!({"_id": "bad", "invalid": true}))],
            w.now,
        )
        .unwrap();
    w.server.busy = true;
    let retried = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "later"}))], w.now)
        .unwrap();
    w.settle();
    w.server.busy = false;
    w.advance(60_000);
    w.settle();
    let before: Vec<Transaction> = w.clients[0]
        .engine
        .transactions()
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(before.len(), 3);
    assert_eq!(before[1].state, TxState::Failed);
    assert!(before[2].attempts.len() >= 2, "{:?}", before[2].attempts);
    w.clients[0].reload(w.now);
    let after = &w.clients[0].engine;
    for (id, state) in [
        (done, TxState::Completed),
        (refused, TxState::Failed),
        (retried, TxState::Completed),
    ] {
        assert_eq!(after.transaction(id).map(|t| t.state), Some(state), "{id}");
    }
    let reloaded: Vec<Transaction> = after.transactions().into_iter().cloned().collect();
    assert_eq!(reloaded, before, "states, attempts and errors as they were");
}

#[test]
fn compaction_moves_the_history_into_pages_that_a_reload_reads() {
    let mut c = compacting(None, None);
    let written = write_local(&mut c, 300, T0);
    let pages = c.store.snapshot().history.count();
    assert!(pages >= 2, "history pages: {pages}");
    assert!(c.store.records() < 20, "the log stays short");
    let reloaded = c.stored();
    assert_eq!(
        ids(reloaded.transactions()),
        written.iter().map(|id| id.0).collect::<Vec<_>>()
    );
    assert!(reloaded
        .transactions()
        .iter()
        .all(|t| t.state == TxState::Completed));
}

/// The bytes of `page` as format 4 wrote them: format 5's without the range's first id.
fn format_4(page: &HistoryPage) -> Vec<u8> {
    let bytes = page.pieces().to_vec();
    // After the magic come the index and the first id, each a varint (ending below 0x80).
    let end_of = |at: usize| at + bytes[at..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    let first_at = end_of(4);
    let rest = end_of(first_at);
    [b"FSH4".as_slice(), &bytes[4..first_at], &bytes[rest..]].concat()
}

/// The history pages `c`'s storage holds.
fn history_pages(c: &Client) -> Vec<HistoryPage> {
    let pages = c.store.snapshot().history;
    pages
        .map(|bytes| HistoryPage::decode(bytes).unwrap())
        .collect()
}

/// The ids of the entries the history pages hold, sorted.
fn paged_ids(c: &Client) -> Vec<u64> {
    let mut ids: Vec<u64> = history_pages(c)
        .iter()
        .flat_map(|page| page.txs.iter().map(|tx| tx.id.0))
        .collect();
    ids.sort_unstable();
    ids
}

/// The ids in history pages, after checking that none is in two pages and that more than
/// `at_least` are paged.
fn paged_once(c: &Client, at_least: usize) -> Vec<u64> {
    let paged = paged_ids(c);
    let mut deduped = paged.clone();
    deduped.dedup();
    assert_eq!(paged, deduped, "no entry in two pages");
    assert!(
        paged.len() > at_least,
        "most entries are in pages: {}",
        paged.len()
    );
    paged
}

#[test]
fn history_pages_hold_about_their_size_in_bytes_each_entry_once() {
    let mut c = compacting(None, None);
    let written = write_local(&mut c, 300, T0);
    let pages = c.store.snapshot().history;
    // A page takes entries up to 2 KiB (beside its own few bytes).
    assert!(pages.map(|page| page.len()).all(|len| len <= 2_048 + 16));
    let paged = paged_once(&c, 250);
    assert!(paged.iter().all(|id| written.contains(&TxId(*id))));
}

/// Pages of format 4 (128 ids each, keyed by the ids' 128ths) are read, and compaction writes
/// after them without losing or repeating an entry.
#[test]
fn history_pages_of_128_ids_are_read_and_written_after() {
    let mut c = compacting(None, None);
    let mut written = write_local(&mut c, 300, T0);
    // Storage as format 4 held it: the same entries, paged by their ids' 128ths.
    let pages = history_pages(&c);
    let mut ops: Vec<StoreOp> = pages
        .iter()
        .map(|page| StoreOp::DeleteHistory { index: page.index })
        .collect();
    let mut by_128: Vec<HistoryPage> = Vec::new();
    for tx in pages.into_iter().flat_map(|page| page.txs) {
        let index = (tx.id.0 / 128) as u32;
        match by_128.iter_mut().find(|page| page.index == index) {
            Some(page) => page.txs.push(tx),
            None => by_128.push(HistoryPage {
                index,
                first: TxId(u64::from(index) * 128),
                txs: vec![tx],
            }),
        }
    }
    assert!(by_128.len() >= 2, "pages of format 4: {}", by_128.len());
    for page in &mut by_128 {
        page.txs.sort_by_key(|tx| tx.id);
        let bytes = format_4(page);
        ops.push(StoreOp::PutHistory {
            index: page.index,
            bytes: Pieces(vec![bytes.into()]),
        });
    }
    let expected = paged_ids(&c);
    c.store.apply(&StorageWrite {
        ops,
        ..StorageWrite::default()
    });
    assert_eq!(paged_ids(&c), expected);
    c.reload(T0);
    assert_eq!(
        ids(c.engine.transactions()),
        written.iter().map(|id| id.0).collect::<Vec<_>>()
    );
    written.extend(write_local(&mut c, 300, T0 + 1));
    paged_once(&c, 550);
    let reloaded = c.stored();
    assert_eq!(
        ids(reloaded.transactions()),
        written.iter().map(|id| id.0).collect::<Vec<_>>()
    );
}

#[test]
fn keep_holds_the_newest_and_every_drop_is_counted_and_gone_from_storage() {
    let mut c = compacting(Some(10), None);
    let written = write_local(&mut c, 300, T0);
    let kept: Vec<u64> = written[290..].iter().map(|id| id.0).collect();
    assert_eq!(ids(c.engine.transactions()), kept);
    assert_eq!(c.engine.stats().history_dropped, 290);
    assert_eq!(
        c.store.snapshot().history.count(),
        1,
        "pages below the kept ids are deleted"
    );
    c.reload(T0);
    assert_eq!(
        ids(c.engine.transactions()),
        kept,
        "the same after a reload"
    );
    assert_eq!(
        c.engine.stats().history_dropped,
        290,
        "and the count is kept"
    );
    // Opened again with a smaller `keep`: the drop is counted once more, not silently.
    c.config.history.keep = Some(4);
    c.reload(T0);
    assert_eq!(ids(c.engine.transactions()), kept[6..]);
    assert_eq!(c.engine.stats().history_dropped, 296);
}

#[test]
fn max_age_drops_entries_once_they_finished_longer_ago() {
    let mut c = compacting(None, Some(60_000));
    let old = write_local(&mut c, 3, T0);
    let recent = write_local(&mut c, 2, T0 + 50_000);
    assert_eq!(c.engine.transactions().len(), 5);
    c.handle(Input::Tick, T0 + 70_000).unwrap();
    c.flush(T0 + 70_000);
    assert_eq!(
        ids(c.engine.transactions()),
        recent.iter().map(|id| id.0).collect::<Vec<_>>()
    );
    assert_eq!(c.engine.stats().history_dropped, old.len() as u64);
    assert_eq!(c.stored_at(T0 + 70_000).transactions().len(), 2);
}

#[test]
fn queries_page_back_from_the_newest_and_filter_by_state() {
    let mut w = World::new(1, config);
    for i in 0..8 {
        w.clients[0]
            .commit(
                vec![insert("cache", json!({ "_id": format!("c{i}") }))],
                w.now,
            )
            .unwrap();
    }
    let offline: Vec<TxId> = (0..2)
        .map(|i| {
            w.clients[0]
                .commit(
                    vec![insert("todos", json!({ "_id": format!("t{i}") }))],
                    w.now,
                )
                .unwrap()
        })
        .collect();
    w.settle();
    let engine = &w.clients[0].engine;
    let page = |query: TxQuery| ids(engine.query_transactions(&query));
    let first = page(TxQuery {
        limit: Some(4),
        ..TxQuery::default()
    });
    assert_eq!(first, [7, 8, 9, 10], "the newest, oldest first");
    let second = page(TxQuery {
        limit: Some(4),
        before: Some(TxId(first[0])),
        ..TxQuery::default()
    });
    assert_eq!(second, [3, 4, 5, 6]);
    let pending = page(TxQuery {
        state: Some(TxState::Pending),
        ..TxQuery::default()
    });
    assert_eq!(pending, offline.iter().map(|id| id.0).collect::<Vec<_>>());
    assert_eq!(ids(engine.transactions()), (1..=10).collect::<Vec<_>>());
}

/// A reload decodes history entries only when they are read; one whose stored bytes are damaged
/// then reads as a failed transaction that says so, and the rest of the history is intact.
#[test]
fn a_damaged_history_entry_reads_as_failed_and_says_so() {
    let mut c = Client::open(config(3), Store::default(), T0);
    let ids = write_local(&mut c, 2, T0);
    c.flush(T0);
    let mut snapshot = c.store.snapshot();
    let mut damaged = 0;
    let records: Vec<Vec<u8>> = snapshot
        .records
        .map(|bytes| {
            let mut record = Record::decode(&bytes).unwrap();
            let ends = record.finished.iter_mut().chain(&mut record.finished_heads);
            for tx in ends.filter(|t| t.id == ids[0]) {
                tx.bytes = b"\x06\x00\x00\x00{\"id\":".to_vec().into();
                damaged += 1;
            }
            record.encode()
        })
        .collect();
    snapshot.records = records.into();
    assert_eq!(damaged, 1, "the first transaction's end is in one record");
    let mut engine = Engine::new(config(3)).unwrap();
    engine.handle(Input::Loaded(snapshot), T0).expect("loads");
    let first = engine.transaction(ids[0]).unwrap();
    assert_eq!(first.state, TxState::Failed);
    let message = &first.error.as_ref().unwrap().message;
    assert!(message.contains("damaged"), "{message}");
    assert_eq!(
        engine.transaction(ids[1]).unwrap().state,
        TxState::Completed
    );
    assert_eq!(engine.transaction(ids[1]).unwrap().mutations.len(), 1);
}

/// The finished transaction `id` as storage holds it (a new engine loaded from it).
fn as_stored(c: &Client, id: TxId) -> Transaction {
    c.stored().transaction(id).cloned().expect("stored")
}

#[test]
fn finished_inserts_read_as_written_after_their_documents_change_or_go() {
    let mut c = compacting(None, None);
    let docs = ["a", "b", "c", "d"].map(|id| insert("cache", json!({"_id": id, "title": id})));
    let first = c.commit(docs.to_vec(), T0).unwrap();
    c.flush(T0);
    let written = as_stored(&c, first);
    assert_eq!(written.state, TxState::Completed);
    // Each document changes, or goes, in a step of its own, before anything reads the history.
    c.commit(vec![update("cache", "a", json!({"title": "A"}))], T0 + 1)
        .unwrap();
    c.commit(vec![delete("cache", "b")], T0 + 2).unwrap();
    let removal = Input::HardDelete {
        collection: "cache".into(),
        id: "c".into(),
    };
    c.request(removal, T0 + 3).unwrap();
    c.flush(T0 + 3);
    let cache = c.engine.collection("cache").unwrap();
    assert_eq!(
        cache.get("a").unwrap().fields().get("title"),
        Some(json!("A"))
    );
    assert!(cache.get("c").is_none());
    assert_eq!(c.engine.transaction(first), Some(&written));
    let stored = c.engine.stored_transaction(first).unwrap();
    assert_eq!(
        stored.decode().unwrap(),
        written,
        "storage is given whole copies"
    );
    // The one left unchanged changes once the history was read; several in one step.
    c.commit(
        vec![
            update("cache", "d", json!({"title": "D"})),
            insert("cache", json!({"_id": "e"})),
        ],
        T0 + 4,
    )
    .unwrap();
    c.commit(vec![delete("cache", "a")], T0 + 5).unwrap();
    assert_eq!(c.engine.transaction(first), Some(&written));
    // Compaction writes the history into pages: whole, as a reload reads them.
    write_local(&mut c, 40, T0 + 6);
    assert!(c.store.snapshot().history.next().is_some(), "history pages");
    assert_eq!(as_stored(&c, first), written);
    assert_eq!(
        ids(c.engine.transactions()),
        ids(c.stored().transactions()),
        "the same history"
    );
    for (live, stored) in c
        .engine
        .transactions()
        .into_iter()
        .zip(c.stored().transactions())
    {
        assert_eq!(live, stored);
    }
}

#[test]
fn a_finished_insert_reads_as_written_after_another_client_changes_its_document() {
    let mut w = World::online(2, config);
    let first = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "x", "n": 1}))], w.now)
        .unwrap();
    w.settle();
    let written = as_stored(&w.clients[0], first);
    assert_eq!(written.state, TxState::Completed);
    w.clients[1]
        .commit(vec![update("todos", "x", json!({"n": 2}))], w.now)
        .unwrap();
    w.settle();
    let c = &w.clients[0];
    assert_eq!(c.visible("x").unwrap().fields().get("n"), Some(json!(2)));
    assert_eq!(c.engine.transaction(first), Some(&written));
    w.clients[1]
        .commit(vec![delete("todos", "x")], w.now)
        .unwrap();
    w.settle();
    assert_eq!(w.clients[0].engine.transaction(first), Some(&written));
    assert_eq!(as_stored(&w.clients[0], first), written);
}
