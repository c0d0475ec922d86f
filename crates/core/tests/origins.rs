//! Other tabs' commit requests as the leading tab's engine records them: a forwarded commit
//! names its request, the engine stores which transaction it created with that transaction's
//! first durable write and again with its end, and a request re-sent (to the same engine, or to
//! one loaded from storage after a takeover) is answered with that transaction, never
//! committed twice.

mod common;

use common::*;
use ferrosync_core::engine::{Input, Origin, ORIGIN_KEPT_MS};
use ferrosync_core::transaction::{TxId, TxState};
use serde_json::json;

const REQUEST: &str = "tab-b:1";

/// Commits `doc` for another tab's request `request`.
fn forwarded(c: &mut Client, request: &str, id: &str, now: u64) -> TxId {
    let commit = Input::Commit {
        requests: vec![insert("todos", json!({"_id": id}))],
        metadata: None,
        origin: Some(request.to_owned()),
    };
    c.handle(commit, now)
        .unwrap()
        .expect("a commit names its transaction")
}

/// Runs client 0 with the server until nothing moves, completing its writes in order; returns
/// the origin records those writes carried.
fn run(w: &mut World) -> Vec<Origin> {
    let mut carried = Vec::new();
    let now = w.now;
    let c = &mut w.clients[0];
    loop {
        while let Some(write) = c.writes.front() {
            carried.extend(write.origins.iter().cloned());
            c.complete_write(now);
        }
        let Some(message) = c.outbox.pop_front() else {
            return carried;
        };
        let id = c.engine.client_id().to_owned();
        for reply in w.server.handle(&id, message).0 {
            c.handle(Input::Server(reply), now).unwrap();
        }
    }
}

/// The origin records storage holds.
fn stored(c: &Client) -> Vec<Origin> {
    c.store.snapshot().origins
}

#[test]
fn an_origin_is_written_with_its_transactions_first_write_and_again_with_its_end() {
    let mut w = World::online(1, |seed| {
        let mut config = config(seed);
        config.storage.log_records = 1;
        config
    });
    w.server.busy = true;
    let tx = forwarded(&mut w.clients[0], REQUEST, "a", w.now);
    let mut carried = run(&mut w);
    // Compaction folds the record holding it, so it is written again, unfinished: its origin
    // is not.
    for id in ["b", "c"] {
        w.clients[0]
            .commit(vec![insert("todos", json!({"_id": id}))], w.now)
            .unwrap();
        carried.extend(run(&mut w));
        assert!(w.clients[0].compact_if_due(w.now));
        carried.extend(run(&mut w));
    }
    w.server.busy = false;
    let retry = w.clients[0].wake.expect("a retry is due") - w.now;
    w.advance(retry);
    carried.extend(run(&mut w));
    assert_eq!(w.clients[0].tx(tx).state, TxState::Completed);
    // Written again and settled, the origin goes twice only.
    let ends: Vec<Option<TxState>> = carried
        .iter()
        .map(|o| {
            assert_eq!((o.request.as_str(), o.tx, o.at), (REQUEST, tx, T0));
            o.finished.as_ref().map(|t| t.state)
        })
        .collect();
    assert_eq!(ends, [None, Some(TxState::Completed)]);
    assert_eq!(stored(&w.clients[0]), carried[1..]);
    // Later writes carry it no more.
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "d"}))], w.now)
        .unwrap();
    assert!(run(&mut w).is_empty());
}

#[test]
fn a_request_sent_again_gets_the_transaction_it_made() {
    let mut w = World::new(1, config);
    let tx = forwarded(&mut w.clients[0], REQUEST, "a", w.now);
    assert_eq!(forwarded(&mut w.clients[0], REQUEST, "a", w.now), tx);
    w.clients[0].flush(w.now);
    assert!(w.clients[0].durable.contains(&tx));
    assert_eq!(forwarded(&mut w.clients[0], REQUEST, "a", w.now), tx);
    assert_eq!(w.clients[0].engine.unfinished().count(), 1);
    // Another request commits anew.
    let other = forwarded(&mut w.clients[0], "tab-b:2", "b", w.now);
    assert_ne!(other, tx);
    assert_eq!(
        w.clients[0].engine.origin_of(other).unwrap().request,
        "tab-b:2"
    );
}

#[test]
fn an_engine_loaded_from_storage_answers_a_request_from_its_origin() {
    let mut w = World::new(1, config);
    let tx = forwarded(&mut w.clients[0], REQUEST, "a", w.now);
    w.clients[0].flush(w.now);
    // The leading tab is gone; the next loads storage while the request is unfinished.
    w.clients[0].reload(w.now);
    assert_eq!(forwarded(&mut w.clients[0], REQUEST, "a", w.now), tx);
    assert_eq!(w.clients[0].engine.unfinished().count(), 1);
    w.connect(0);
    let carried = run(&mut w);
    // Its end is written when it finishes, so a later leader knows it.
    assert_eq!(carried.len(), 1);
    w.clients[0].reload(w.now);
    let origin = w.clients[0].engine.origin(REQUEST).cloned().unwrap();
    assert_eq!(origin.tx, tx);
    assert_eq!(origin.finished.unwrap().state, TxState::Completed);
    assert_eq!(forwarded(&mut w.clients[0], REQUEST, "a", w.now), tx);
    assert_eq!(w.clients[0].engine.unfinished().count(), 0);
    assert_eq!(
        w.server.doc("a").map(|d| d.id().to_owned()),
        Some("a".into())
    );
}

#[test]
fn a_failed_write_or_emptied_storage_writes_the_origin_again() {
    let mut w = World::new(1, config);
    let tx = forwarded(&mut w.clients[0], REQUEST, "a", w.now);
    assert!(w.clients[0].fail_write(w.now));
    let retry = w.clients[0].wake.expect("a retry is due") - w.now;
    w.advance(retry);
    w.clients[0].flush(w.now);
    assert!(w.clients[0].durable.contains(&tx));
    assert_eq!(stored(&w.clients[0]).len(), 1);
    // The browser cleared the site's data: everything is written again, the origin with it.
    w.clients[0].store = Store::default();
    w.clients[0].handle(Input::StorageReset, w.now).unwrap();
    w.clients[0].flush(w.now);
    assert_eq!(stored(&w.clients[0])[0].tx, tx);
}

#[test]
fn origins_too_old_to_be_sent_again_are_dropped_at_load() {
    let mut w = World::online(1, config);
    let tx = forwarded(&mut w.clients[0], REQUEST, "a", w.now);
    run(&mut w);
    w.now += ORIGIN_KEPT_MS + 1;
    w.clients[0].reload(w.now);
    assert!(w.clients[0].engine.origin(REQUEST).is_none());
    assert!(w.clients[0].engine.origin_of(tx).is_none());
    // Deleted from storage with the next write.
    assert_eq!(stored(&w.clients[0]).len(), 1);
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "b"}))], w.now)
        .unwrap();
    w.clients[0].flush(w.now);
    assert!(stored(&w.clients[0]).is_empty());
}

#[test]
fn origin_records_keep_the_json_earlier_versions_stored() {
    // The `origins` store holds each record as this JSON text; earlier versions wrote the same.
    let text = format!(r#"{{"request":"{REQUEST}","tx":7,"at":{T0},"finished":null}}"#);
    let origin: Origin = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (
            origin.request.as_str(),
            origin.tx,
            origin.at,
            &origin.finished
        ),
        (REQUEST, TxId(7), T0, &None)
    );
    assert_eq!(serde_json::to_string(&origin).unwrap(), text);
    // One with its end, as stored, answers the request in an engine that loads it.
    let mut w = World::online(1, config);
    let tx = forwarded(&mut w.clients[0], REQUEST, "a", w.now);
    run(&mut w);
    let stored = serde_json::to_string(&stored(&w.clients[0])[0]).unwrap();
    let head = format!(
        r#"{{"request":"{REQUEST}","tx":{},"at":{T0},"finished":{{"#,
        tx.0
    );
    assert!(stored.starts_with(&head), "{stored}");
    let mut reloaded = Store::default();
    reloaded.apply(&ferrosync_core::engine::StorageWrite {
        origins: vec![serde_json::from_str(&stored).unwrap()],
        ..Default::default()
    });
    let engine = Client::open(config(1), reloaded, w.now).engine;
    assert_eq!(engine.origin(REQUEST).map(|o| o.tx), Some(tx));
}
