//! What the application can observe beyond documents: each write's original and modified
//! document and metadata, the objects in-flight transactions hold, sync progress, stats that
//! count live changes, and the sync log by date.

mod common;

use common::*;
use ferrosync_core::engine::{
    EngineConfig, Input, PullProgress, Record, StorageWrite, StoreOp, SyncLogEntry, SyncLogQuery,
    SyncLogStatus, SyncProgress, SyncType,
};
use ferrosync_core::scheduler::MutationStrategy;
use ferrosync_core::Code;
use serde_json::json;

#[test]
fn each_write_keeps_what_it_found_what_it_made_and_its_metadata() {
    let mut w = World::online(1, config);
    w.clients[0]
        .commit(
            vec![insert("todos", json!({"_id": "1", "title": "a", "n": 1}))],
            w.now,
        )
        .unwrap();
    w.settle();
    let mut edit = update("todos", "1", json!({"title": "b"}));
    edit.metadata = Some(json!({"reason": "rename"}));
    let tx = w.clients[0]
        .handle(
            Input::Commit {
                requests: vec![edit, delete("todos", "1")],
                metadata: Some(json!({"screen": "list"})),
                origin: None,
            },
            w.now,
        )
        .unwrap()
        .unwrap();
    let shown = w.clients[0].tx(tx);
    assert_eq!(shown.metadata, Some(json!({"screen": "list"})));
    let [rename, remove] = &shown.mutations[..] else {
        panic!("two writes");
    };
    assert_eq!(rename.metadata, Some(json!({"reason": "rename"})));
    let fields = |f: &ferrosync_core::document::Fields| serde_json::Value::Object(f.to_map());
    assert_eq!(
        rename.original.as_ref().map(fields),
        Some(json!({"title": "a", "n": 1}))
    );
    let modified = rename.modified().unwrap();
    assert_eq!(
        fields(&modified.fields().owned()),
        json!({"title": "b", "n": 1})
    );
    // The second write found what the first made.
    assert_eq!(
        remove.original.as_ref().map(fields),
        Some(json!({"title": "b", "n": 1}))
    );
    assert!(remove.modified().unwrap().deleted());
    w.settle();
    w.clients[0].reload(w.now);
    assert_eq!(
        w.clients[0].tx(tx).mutations,
        shown.mutations,
        "kept in the history across reloads"
    );
}

#[test]
fn in_flight_ordered_transactions_hold_their_objects_until_they_end() {
    let mut w = World::online(1, config);
    let c = &mut w.clients[0];
    let tx = c
        .commit(
            vec![
                insert("todos", json!({"_id": "1"})),
                update("todos", "1", json!({"n": 1})),
                insert("todos", json!({"_id": "2"})),
            ],
            w.now,
        )
        .unwrap();
    assert!(c.engine.locked_objects().is_empty(), "not sent yet");
    c.complete_write(w.now);
    let locked: Vec<(String, String, u64)> = c
        .engine
        .locked_objects()
        .iter()
        .map(|o| (o.collection.to_owned(), o.id.clone(), o.transaction.id.0))
        .collect();
    assert_eq!(
        locked,
        [
            ("todos".to_owned(), "1".to_owned(), tx.0),
            ("todos".to_owned(), "2".to_owned(), tx.0)
        ]
    );
    w.settle();
    assert!(w.clients[0].engine.locked_objects().is_empty());

    let mut parallel = World::online(1, |seed| EngineConfig {
        mutation_strategy: MutationStrategy::Parallel { merge: None },
        ..config(seed)
    });
    let c = &mut parallel.clients[0];
    c.commit(vec![insert("todos", json!({"_id": "1"}))], parallel.now)
        .unwrap();
    c.complete_write(parallel.now);
    assert!(
        c.engine.locked_objects().is_empty(),
        "the parallel strategy takes no locks"
    );
}

#[test]
fn pull_count_counts_changes_pushed_live_as_well_as_pulled() {
    let mut w = World::online(2, config);
    for id in ["a", "b"] {
        w.clients[0]
            .commit(vec![insert("todos", json!({ "_id": id }))], w.now)
            .unwrap();
        w.settle();
    }
    assert_eq!(w.clients[1].engine.collection("todos").unwrap().count(), 2);
    assert_eq!(
        w.clients[1].engine.stats().pull_count,
        2,
        "both arrived live"
    );
    assert_eq!(
        w.clients[0].engine.stats().pull_count,
        0,
        "own writes are not pulled"
    );
}

#[test]
fn progress_shows_unsynced_writes_and_how_far_a_pull_has_come() {
    let mut w = World::new(2, |seed| EngineConfig {
        pull_page: 100,
        ..config(seed)
    });
    w.connect(0);
    w.settle();
    for chunk in 0..5 {
        let docs = (0..50)
            .map(|i| insert("todos", json!({"_id": format!("d{}", chunk * 50 + i)})))
            .collect();
        w.clients[0].commit(docs, w.now).unwrap();
    }
    w.clients[0]
        .commit(vec![insert("cache", json!({"_id": "local"}))], w.now)
        .unwrap();
    assert_eq!(
        w.clients[0].engine.progress().unsynced_writes,
        5,
        "local-only writes never sync"
    );
    w.settle();
    assert_eq!(w.clients[0].engine.progress().unsynced_writes, 0);
    w.connect(1);
    w.settle();
    let pull = |received, total| SyncProgress {
        unsynced_writes: 0,
        pull: Some(PullProgress { received, total }),
    };
    assert_eq!(
        w.clients[1].progress,
        [
            SyncProgress::default(),
            pull(0, 250),
            pull(100, 250),
            pull(200, 250),
            SyncProgress::default()
        ]
    );
}

#[test]
fn sync_log_entries_carry_their_creation_time_and_filter_by_range() {
    let mut w = World::online(1, config);
    let start = w.now;
    for i in 0..3 {
        w.advance(1_000);
        w.clients[0]
            .commit(
                vec![insert("todos", json!({ "_id": format!("{i}") }))],
                w.now,
            )
            .unwrap();
        w.settle();
    }
    let engine = &w.clients[0].engine;
    let pushes = |from, to| -> Vec<u64> {
        let query = SyncLogQuery {
            sync_type: Some(SyncType::Push),
            from,
            to,
            ..SyncLogQuery::default()
        };
        engine
            .sync_log(&query)
            .iter()
            .map(|e| e.created_at)
            .collect()
    };
    assert_eq!(
        pushes(None, None),
        [start + 3_000, start + 2_000, start + 1_000],
        "newest first"
    );
    assert_eq!(
        pushes(Some(start + 1_500), Some(start + 2_000)),
        [start + 2_000]
    );
    assert_eq!(pushes(Some(start + 3_001), None), Vec::<u64>::new());
}

/// Entries stored before entries had a creation time read back with their start as one, so a
/// date range still finds them.
#[test]
fn sync_log_entries_stored_without_a_creation_time_take_their_start() {
    let mut w = World::online(1, config);
    w.advance(1_000);
    w.clients[0]
        .commit(vec![insert("todos", json!({ "_id": "a" }))], w.now)
        .unwrap();
    w.settle();
    let client = &mut w.clients[0];
    let mut stripped = 0;
    for bytes in client.store.snapshot().records {
        let mut record = Record::decode(&bytes).unwrap();
        for entry in &mut record.meta.sync_log {
            entry.created_at = 0;
            stripped += 1;
        }
        let ops = vec![StoreOp::PutRecord {
            seq: record.seq,
            bytes: record.encode(),
        }];
        client.store.apply(&StorageWrite {
            token: 0,
            ops,
            ..StorageWrite::default()
        });
    }
    assert!(stripped > 0, "the sync log is in the records");
    client.reload(w.now);
    let entries = client.engine.sync_log(&SyncLogQuery::default());
    assert!(!entries.is_empty());
    for entry in entries {
        assert!(
            entry.started_at > 0 && entry.created_at == entry.started_at,
            "{entry:?}"
        );
    }
}

/// Entries stored before entries had a code read back without one; a run under way when the
/// page closed reads as failed with `network`.
#[test]
fn sync_log_entries_stored_without_a_code_load_and_interrupted_runs_read_as_network() {
    let stored = json!({
        "id": 1, "syncType": "push", "status": "failed", "startedAt": 5, "completedAt": 6,
        "syncedCount": 0, "errorCount": 0, "error": "no answer from the server in time",
    });
    let entry: SyncLogEntry = serde_json::from_value(stored).unwrap();
    assert_eq!((entry.error.is_some(), entry.error_code), (true, None));

    let mut w = World::online(1, config);
    w.clients[0]
        .commit(vec![insert("todos", json!({ "_id": "a" }))], w.now)
        .unwrap();
    while w.clients[0].complete_write(w.now) {}
    let now = w.now;
    let client = &mut w.clients[0];
    client.flush(now);
    client.reload(now);
    let run = &client.engine.sync_log(&SyncLogQuery::default())[0];
    assert_eq!(
        (run.status, run.error.as_deref(), run.error_code),
        (
            SyncLogStatus::Failed,
            Some("interrupted by a reload"),
            Some(Code::Network)
        ),
        "{run:?}"
    );
}
