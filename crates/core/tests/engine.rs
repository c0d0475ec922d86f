//! The client engine against the reference server, with storage and delivery driven by hand.

mod common;

use common::*;
use ferrosync_core::conflict::ConflictStrategy;
use ferrosync_core::document::Document;
use ferrosync_core::engine::{
    ConflictId, Engine, EngineConfig, Input, Snapshot, SyncLogQuery, SyncLogStatus, SyncStatus,
    SyncType,
};
use ferrosync_core::protocol::{
    ClientMessage, CursorRange, ErrorCode, ServerMessage, MAX_WIRE_INT,
};
use ferrosync_core::query::Query;
use ferrosync_core::scheduler::{MergeFn, MutationStrategy};
use ferrosync_core::transaction::TxState::*;
use ferrosync_core::{Code, CoreError};
use serde_json::json;
use std::rc::Rc;

fn world(n: usize) -> World {
    World::new(n, config)
}

fn field(doc: &Option<Document>, name: &str) -> serde_json::Value {
    doc.as_ref()
        .and_then(|d| d.fields().get(name))
        .unwrap_or_default()
}

#[test]
fn a_write_is_visible_at_once_durable_then_completed_through_each_state() {
    let mut w = World::online(1, config);
    let tx = w.clients[0]
        .commit(
            vec![insert("todos", json!({"_id": "1", "title": "Task"}))],
            w.now,
        )
        .unwrap();
    // Optimistic: visible before anything is durable.
    assert_eq!(field(&w.clients[0].visible("1"), "title"), json!("Task"));
    assert!(!w.clients[0].durable.contains(&tx));
    // Nothing is sent before the write is durable.
    assert!(w.clients[0].outbox.is_empty());
    w.settle();
    let c = &w.clients[0];
    assert!(c.durable.contains(&tx));
    assert_eq!(c.history[&tx], [Pending, Persisting, Completed]);
    assert_eq!(c.tx(tx).attempts.len(), 1);
    assert_eq!(c.tx(tx).attempts[0].error, None);
    assert_eq!(
        w.server.doc("1").unwrap().fields().get("title").unwrap(),
        json!("Task")
    );
    assert_eq!(
        c.engine
            .collection("todos")
            .unwrap()
            .synced("1")
            .unwrap()
            .version(),
        1
    );
    assert!(
        c.stored().unfinished().next().is_none(),
        "a completed transaction leaves the durable outbox"
    );
}

#[test]
fn inserts_reach_other_clients_and_soft_deletes_hide_documents() {
    let mut w = World::online(2, config);
    w.clients[0]
        .commit(
            vec![insert("todos", json!({"_id": "a", "done": false}))],
            w.now,
        )
        .unwrap();
    w.settle();
    assert_eq!(field(&w.clients[1].visible("a"), "done"), json!(false));
    w.clients[1]
        .commit(vec![delete("todos", "a")], w.now)
        .unwrap();
    w.settle();
    for c in &w.clients {
        let todos = c.engine.collection("todos").unwrap();
        assert!(todos.get("a").unwrap().deleted());
        assert!(todos.find(&Query::default()).is_empty());
        assert_eq!(
            todos
                .find(&Query {
                    include_deleted: true,
                    ..Query::default()
                })
                .len(),
            1
        );
        assert_eq!(todos.count(), 0);
    }
    assert!(
        w.server.doc("a").unwrap().deleted(),
        "the tombstone is on the server"
    );
    // Deletes are final: an update of the tombstone is refused locally.
    let err = w.clients[0]
        .commit(vec![update("todos", "a", json!({"done": true}))], w.now)
        .unwrap_err();
    assert!(matches!(err, CoreError::Deleted { .. }));
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let mut w = world(1);
    let c = &mut w.clients[0];
    let now = T0;
    assert!(matches!(
        c.commit(vec![], now),
        Err(CoreError::EmptyTransaction)
    ));
    assert!(matches!(
        c.commit(vec![insert("nope", json!({"_id": "1"}))], now),
        Err(CoreError::UnknownCollection(name)) if name == "nope"
    ));
    assert!(matches!(
        c.commit(vec![update("todos", "missing", json!({"x": 1}))], now),
        Err(CoreError::NotFound { .. })
    ));
    assert!(matches!(
        c.commit(vec![delete("todos", "missing")], now),
        Err(CoreError::NotFound { .. })
    ));
    // All or nothing: the valid first write is not applied when the second is bad.
    let err = c.commit(
        vec![
            insert("todos", json!({"_id": "ok"})),
            update("todos", "missing", json!({})),
        ],
        now,
    );
    assert!(err.is_err());
    assert!(c.visible("ok").is_none());
    c.commit(vec![insert("todos", json!({"_id": "ok"}))], now)
        .unwrap();
    assert!(matches!(
        c.commit(vec![insert("todos", json!({"_id": "ok"}))], now),
        Err(CoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        c.handle(
            Input::HardDelete {
                collection: "todos".into(),
                id: "ok".into()
            },
            now
        ),
        Err(CoreError::HasPendingWrites { .. })
    ));
    assert!(matches!(
        c.handle(Input::Loaded(Default::default()), now),
        Err(CoreError::AlreadyLoaded)
    ));
    // An input before `Loaded` is refused.
    let mut fresh = ferrosync_core::engine::Engine::new(config(9)).unwrap();
    assert!(matches!(
        fresh.handle(Input::Tick, now),
        Err(CoreError::NotLoaded)
    ));
}

#[test]
fn a_welcome_leaving_no_mutation_id_is_refused_not_obeyed() {
    // Found by fuzzing: a `last_mutation_id` of 2^64 - 1 overflowed the next id (in a release
    // build it wrapped to 0, and ids the server had seen would have been sent again).
    let mut c = Client::open(config(3), Store::default(), T0);
    c.commit(vec![insert("todos", json!({"_id": "a"}))], T0)
        .unwrap();
    while c.complete_write(T0) {}
    c.handle(Input::Connected { live: true }, T0).unwrap();
    let client_id = c.engine.client_id().to_owned();
    let welcome = |last_mutation_id| {
        Input::Server(ServerMessage::Welcome {
            client_id: client_id.clone(),
            last_mutation_id,
            head: 0,
        })
    };
    for last in [u64::MAX, MAX_WIRE_INT] {
        c.handle(welcome(last), T0).unwrap();
        assert_eq!(c.statuses.last(), Some(&SyncStatus::Error));
        assert!(!c
            .outbox
            .iter()
            .any(|m| matches!(m, ClientMessage::Push { .. })));
    }
    // A sound welcome afterwards is obeyed: the write goes out as mutation 1.
    c.handle(welcome(0), T0).unwrap();
    let pushed: Vec<u64> = c
        .outbox
        .iter()
        .filter_map(|m| match m {
            ClientMessage::Push { transactions, .. } => Some(transactions[0].mutations[0].id),
            _ => None,
        })
        .collect();
    assert_eq!(pushed, [1]);
}

#[test]
fn a_push_result_answering_no_push_in_flight_leaves_the_cursor() {
    // Found by fuzzing: an answer to a push never sent, with an empty result list, moved the
    // cursor over a range of writes the engine had never seen.
    let mut c = Client::open(config(3), Store::default(), T0);
    c.handle(Input::Connected { live: true }, T0).unwrap();
    let client_id = c.engine.client_id().to_owned();
    let welcome = ServerMessage::Welcome {
        client_id,
        last_mutation_id: 0,
        head: 0,
    };
    c.handle(Input::Server(welcome), T0).unwrap();
    let stray = ServerMessage::PushResult {
        seq: 999,
        results: Vec::new(),
        range: Some(CursorRange {
            since: 0,
            cursor: 40,
        }),
    };
    c.handle(Input::Server(stray), T0).unwrap();
    assert_eq!(c.engine.cursor(), 0);
}

#[test]
fn a_multi_mutation_transaction_applies_atomically_on_the_server() {
    let mut w = World::online(1, config);
    let tx = w.clients[0]
        .commit(
            vec![
                insert("todos", json!({"_id": "a"})),
                insert("todos", json!({"_id": "b", "invalid": true})),
            ],
            w.now,
        )
        .unwrap();
    w.settle();
    let t = w.clients[0].tx(tx);
    assert_eq!(t.state, Failed);
    assert!(t.error.unwrap().message.contains("invalid"));
    assert!(
        w.server.doc("a").is_none(),
        "no part of a rejected transaction is applied"
    );
    assert!(w.clients[0].visible("a").is_none(), "rolled back locally");
}

/// The newest push run in the sync log.
fn last_push(c: &Client) -> ferrosync_core::engine::SyncLogEntry {
    let query = SyncLogQuery {
        limit: Some(1),
        sync_type: Some(SyncType::Push),
        ..SyncLogQuery::default()
    };
    c.engine.sync_log(&query)[0].clone()
}

#[test]
fn attempts_and_push_runs_carry_the_code_of_why_they_failed() {
    let mut w = World::online(1, config);
    // The connection drops under a push: the attempt and its run end with `network`.
    let tx = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    while w.clients[0].complete_write(w.now) {}
    assert!(matches!(
        w.clients[0].outbox.back(),
        Some(ClientMessage::Push { .. })
    ));
    w.disconnect(0);
    let lost = &w.clients[0].tx(tx).attempts[0];
    assert_eq!(lost.error_code, Some(Code::Network), "{lost:?}");
    assert_eq!(lost.error.as_deref(), Some("connection lost: test"));
    let run = last_push(&w.clients[0]);
    assert_eq!(
        (run.status, run.error_code, run.error.as_deref()),
        (
            SyncLogStatus::Failed,
            Some(Code::Network),
            Some("connection lost: test")
        )
    );
    // A busy server: the attempt has the server's retryable code and a retry time.
    w.server.busy = true;
    w.connect(0);
    w.settle();
    let busy = &w.clients[0].tx(tx).attempts[1];
    assert_eq!(busy.error_code, Some(Code::Protocol(ErrorCode::Busy)));
    let retry_at = busy.retry_scheduled_for.expect("a retry is scheduled");
    w.server.busy = false;
    w.advance(retry_at - w.now);
    w.settle();
    let t = w.clients[0].tx(tx);
    assert_eq!(t.state, Completed);
    assert_eq!(
        (t.attempts[2].error_code, t.attempts[2].error.as_deref()),
        (None, None)
    );
    assert_eq!(
        last_push(&w.clients[0]).error_code,
        None,
        "{:?}",
        last_push(&w.clients[0])
    );
    // A refusal: the attempt has the server's code; the run worked, counting one error.
    let bad = w.clients[0]
        .commit(
            vec![insert("todos", json!({"_id": "b", "invalid": true}))],
            w.now,
        )
        .unwrap();
    w.settle();
    let t = w.clients[0].tx(bad);
    assert_eq!(t.state, Failed);
    let refused = Code::Protocol(ErrorCode::BadRequest);
    assert_eq!(t.attempts[0].error_code, Some(refused));
    assert_eq!(t.error.unwrap().code, refused);
    let run = last_push(&w.clients[0]);
    assert_eq!(
        (run.status, run.error_count, run.error_code),
        (SyncLogStatus::Completed, 1, None)
    );
}

#[test]
fn an_attempt_that_met_a_conflict_carries_the_conflict_code() {
    let mut w = World::online(2, config);
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a", "n": 0}))], w.now)
        .unwrap();
    w.settle();
    // Client 1 writes offline while client 0's write lands first.
    w.disconnect(1);
    let tx = w.clients[1]
        .commit(vec![update("todos", "a", json!({"n": 1}))], w.now)
        .unwrap();
    w.clients[0]
        .commit(vec![update("todos", "a", json!({"n": 2}))], w.now)
        .unwrap();
    w.settle();
    w.connect(1);
    w.settle();
    let t = w.clients[1].tx(tx);
    assert_eq!(t.state, Completed);
    assert_eq!(
        t.attempts[0].error_code,
        Some(Code::Conflict),
        "{:?}",
        t.attempts
    );
    assert!(t.attempts[0]
        .error
        .as_deref()
        .unwrap()
        .starts_with("conflict on 1 document"));
}

#[test]
fn ordered_transactions_queue_per_object_and_a_failure_cascades_to_dependents() {
    let mut w = World::online(1, config);
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a", "n": 0}))], w.now)
        .unwrap();
    w.settle();
    let bad = w.clients[0]
        .commit(vec![update("todos", "a", json!({"invalid": true}))], w.now)
        .unwrap();
    let dependent = w.clients[0]
        .commit(
            vec![
                update("todos", "a", json!({"n": 2})),
                insert("todos", json!({"_id": "b"})),
            ],
            w.now,
        )
        .unwrap();
    let second = w.clients[0]
        .commit(vec![update("todos", "b", json!({"n": 3}))], w.now)
        .unwrap();
    let independent = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "c"}))], w.now)
        .unwrap();
    let c = &w.clients[0];
    assert_eq!(c.tx(dependent).state, Queued);
    assert_eq!(c.tx(dependent).queued_behind, [bad]);
    assert_eq!(
        c.tx(second).queued_behind,
        [dependent],
        "b is touched by the queued transaction"
    );
    assert_eq!(c.tx(independent).state, Pending);
    assert_eq!(field(&c.visible("a"), "n"), json!(2));
    w.settle();
    let c = &w.clients[0];
    assert_eq!(c.tx(bad).state, Failed);
    for id in [bad, dependent, second] {
        let t = c.tx(id);
        assert_eq!(t.state, Failed);
        let error = t.error.unwrap();
        assert_eq!(error.transaction_id, bad, "the error names the root cause");
        assert_eq!(
            (error.code, error.retryable),
            (Code::Protocol(ErrorCode::BadRequest), false),
            "with the server's code"
        );
    }
    assert_eq!(c.tx(independent).state, Completed);
    assert_eq!(
        field(&c.visible("a"), "n"),
        json!(0),
        "optimistic state rolled back"
    );
    assert!(c.visible("b").is_none());
    assert!(w.server.doc("b").is_none());
    assert_eq!(
        c.engine.stats().last_error.as_deref(),
        Some("the document is marked invalid")
    );
    assert_eq!(
        c.engine.stats().last_error_code,
        Some(Code::Protocol(ErrorCode::BadRequest))
    );
}

#[test]
fn a_queued_transaction_runs_after_the_one_it_waits_for_completes() {
    let mut w = World::online(1, config);
    let first = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a", "n": 1}))], w.now)
        .unwrap();
    let second = w.clients[0]
        .commit(vec![update("todos", "a", json!({"n": 2}))], w.now)
        .unwrap();
    assert_eq!(w.clients[0].tx(second).state, Queued);
    w.settle();
    // Unblocked and sent in the same step: Queued -> Pending -> Persisting, reported once.
    assert_eq!(
        w.clients[0].history[&second],
        [Queued, Persisting, Completed]
    );
    assert_eq!(w.clients[0].tx(first).state, Completed);
    assert_eq!(
        w.server.doc("a").unwrap().fields().get("n").unwrap(),
        json!(2)
    );
}

#[test]
fn parallel_transactions_do_not_queue_and_a_merge_shapes_the_view_over_remote_updates() {
    let merge: MergeFn = Rc::new(|synced: &Document, pending: &Document| {
        // Show the server's title with the pending count.
        let mut doc = pending.clone();
        let mut fields = doc.fields().owned();
        fields.insert("title", synced.fields().get("title").unwrap());
        fields.insert("merged", json!(true));
        doc.set_fields(fields);
        doc
    });
    let mut w = World::online(2, |seed| ferrosync_core::engine::EngineConfig {
        mutation_strategy: MutationStrategy::Parallel {
            merge: Some(merge.clone()),
        },
        ..config(seed)
    });
    w.clients[0]
        .commit(
            vec![insert("todos", json!({"_id": "a", "title": "old", "n": 0}))],
            w.now,
        )
        .unwrap();
    w.settle();
    // Two writes to the same document: neither waits for the other.
    let t1 = w.clients[1]
        .commit(vec![update("todos", "a", json!({"n": 1}))], w.now)
        .unwrap();
    let t2 = w.clients[1]
        .commit(vec![update("todos", "a", json!({"n": 5}))], w.now)
        .unwrap();
    for t in [t1, t2] {
        assert_eq!(w.clients[1].tx(t).state, Pending);
        assert!(w.clients[1].tx(t).queued_behind.is_empty());
    }
    w.clients[1].flush(w.now);
    // Client 0's update reaches client 1 while client 1's writes are unanswered.
    w.clients[0]
        .commit(
            vec![update("todos", "a", json!({"title": "server"}))],
            w.now,
        )
        .unwrap();
    w.clients[0].flush(w.now);
    let push = w.clients[0].outbox.pop_front().unwrap();
    let id = w.clients[0].engine.client_id().to_owned();
    let (replies, broadcast) = w.server.handle(&id, push);
    w.clients[1]
        .handle(Input::Server(broadcast.unwrap()), w.now)
        .unwrap();
    let visible = w.clients[1].visible("a").unwrap();
    assert_eq!(visible.fields().get("title").unwrap(), json!("server"));
    assert_eq!(visible.fields().get("n").unwrap(), json!(5));
    assert_eq!(visible.fields().get("merged").unwrap(), json!(true));
    for reply in replies {
        w.clients[0].handle(Input::Server(reply), w.now).unwrap();
    }
    // Everything settles and both replicas match the server.
    w.settle();
    for t in [t1, t2] {
        assert!(w.clients[1].tx(t).state.is_terminal());
    }
    converged(&w);
}

/// Two clients edit the same document while one is offline; returns (world, offline client's tx).
fn concurrent_edit(
    strategy: ConflictStrategy,
    offline_is_newer: bool,
) -> (World, ferrosync_core::transaction::TxId) {
    let mut w = World::new(2, move |seed| ferrosync_core::engine::EngineConfig {
        conflict_strategy: strategy.clone(),
        ..config(seed)
    });
    w.connect(0);
    w.connect(1);
    w.settle();
    w.clients[0]
        .commit(
            vec![insert(
                "todos",
                json!({"_id": "a", "title": "base", "n": 0}),
            )],
            w.now,
        )
        .unwrap();
    w.settle();
    w.disconnect(1);
    let (first, second) = if offline_is_newer { (0, 1) } else { (1, 0) };
    let mut tx = None;
    for i in [first, second] {
        w.advance(1_000);
        let id = w.clients[i]
            .commit(
                vec![update(
                    "todos",
                    "a",
                    json!({"title": format!("by {i}"), "n": i + 1}),
                )],
                w.now,
            )
            .unwrap();
        if i == 1 {
            tx = Some(id);
        }
        w.settle();
    }
    w.connect(1);
    w.settle();
    (w, tx.unwrap())
}

fn converged(w: &World) -> serde_json::Value {
    let server = w.server.doc("a").unwrap();
    for c in &w.clients {
        let d = c.visible("a").unwrap();
        assert_eq!(
            d.fields(),
            server.fields(),
            "replicas converge to the server"
        );
    }
    server.fields().get("title").unwrap().clone()
}

#[test]
fn last_write_wins_keeps_the_later_write_either_way() {
    let (w, tx) = concurrent_edit(ConflictStrategy::LastWriteWins, true);
    assert_eq!(converged(&w), json!("by 1"));
    assert_eq!(w.clients[1].tx(tx).state, Completed);
    assert_eq!(w.clients[1].engine.stats().conflict_count, 1);
    assert_eq!(
        w.clients[1].tx(tx).attempts.len(),
        2,
        "conflict, then the re-send"
    );
    let (w, tx) = concurrent_edit(ConflictStrategy::LastWriteWins, false);
    assert_eq!(converged(&w), json!("by 0"));
    assert_eq!(
        w.clients[1].tx(tx).state,
        Completed,
        "the older write is overruled, not failed"
    );
}

#[test]
fn server_wins_drops_the_local_write() {
    let (w, tx) = concurrent_edit(ConflictStrategy::ServerWins, true);
    assert_eq!(converged(&w), json!("by 0"));
    assert_eq!(w.clients[1].tx(tx).state, Completed);
    assert_eq!(w.clients[1].engine.stats().conflict_count, 1);
}

#[test]
fn client_wins_reapplies_the_local_write_on_the_server_version() {
    let (w, _) = concurrent_edit(ConflictStrategy::ClientWins, false);
    assert_eq!(converged(&w), json!("by 1"));
    assert_eq!(
        w.server.doc("a").unwrap().fields().get("n").unwrap(),
        json!(2)
    );
}

#[test]
fn a_custom_resolver_merges_local_remote_and_base() {
    let resolver = ConflictStrategy::Custom(Rc::new(
        |c: &ferrosync_core::conflict::ConflictInput<'_>| {
            let local = c.local?;
            let mut fields = c.remote.fields().owned();
            let base_n = c
                .base
                .map_or(0, |b| b.fields().get("n").unwrap().as_i64().unwrap());
            let sum = local.fields().get("n").unwrap().as_i64().unwrap()
                + c.remote.fields().get("n").unwrap().as_i64().unwrap()
                - base_n;
            fields.insert("n", json!(sum));
            Some(fields)
        },
    ));
    let (w, _) = concurrent_edit(resolver, true);
    assert_eq!(converged(&w), json!("by 0"));
    assert_eq!(
        w.server.doc("a").unwrap().fields().get("n").unwrap(),
        json!(3),
        "both increments kept"
    );
}

#[test]
fn an_unresolved_custom_conflict_waits_in_the_inbox_until_resolved() {
    let resolver = ConflictStrategy::Custom(Rc::new(
        |_: &ferrosync_core::conflict::ConflictInput<'_>| None,
    ));
    let (mut w, tx) = concurrent_edit(resolver, true);
    let conflicts = w.clients[1].engine.conflicts();
    assert_eq!(conflicts.len(), 1);
    let conflict = &conflicts[0];
    assert_eq!(conflict.id, ConflictId { tx, index: 0 });
    assert_eq!(
        conflict.remote.fields().get("title").unwrap(),
        json!("by 0")
    );
    assert_eq!(
        conflict
            .local
            .as_ref()
            .unwrap()
            .fields()
            .get("title")
            .unwrap(),
        json!("by 1")
    );
    assert_eq!(w.clients[1].tx(tx).state, Pending);
    let mut fields = conflict.remote.fields().owned();
    fields.insert("title", json!("resolved"));
    w.clients[1]
        .handle(
            Input::ResolveConflict {
                id: conflict.id,
                fields,
            },
            w.now,
        )
        .unwrap();
    w.settle();
    assert!(w.clients[1].engine.conflicts().is_empty());
    assert_eq!(converged(&w), json!("resolved"));
    let unknown = w.clients[1].handle(
        Input::ResolveConflict {
            id: conflict.id,
            fields: Default::default(),
        },
        w.now,
    );
    assert!(matches!(unknown, Err(CoreError::UnknownConflict(_))));
}

#[test]
fn retryable_failures_back_off_within_the_jitter_bounds_then_give_up() {
    let mut w = World::online(1, config);
    w.server.busy = true;
    let tx = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    w.settle();
    let policy = ferrosync_core::retry::RetryPolicy::default();
    for retry in 1..=4u32 {
        let t = w.clients[0].tx(tx);
        let last = t.attempts.last().unwrap();
        let at = last.retry_scheduled_for.expect("a retry is scheduled");
        let failed_at = last.completed_at.unwrap();
        assert!(
            at >= failed_at && at <= failed_at + policy.ceiling(retry),
            "retry {retry} at +{}",
            at - failed_at
        );
        assert_eq!(t.state, Pending);
        assert_eq!(w.clients[0].engine.status(), SyncStatus::Error);
        // Nothing is sent before the scheduled time.
        w.now = at.saturating_sub(1).max(w.now);
        w.settle();
        assert_eq!(w.clients[0].tx(tx).attempts.len(), retry as usize);
        w.advance(at + 1 - w.now.min(at + 1));
        w.clients[0].handle(Input::Tick, w.now).unwrap();
        w.settle();
    }
    // Five attempts failed: the client gives up and the server records it as rejected.
    let t = w.clients[0].tx(tx);
    assert_eq!(t.state, Failed);
    assert_eq!(t.attempts.len(), 6, "5 attempts plus the abandon request");
    let error = t.error.unwrap();
    assert!(error.message.starts_with("gave up after 5 attempts"));
    assert_eq!(
        (error.code, error.retryable),
        (Code::RetriesExhausted, true)
    );
    w.server.busy = false;
    assert!(w.server.doc("a").is_none());
    assert!(w.clients[0].visible("a").is_none());
}

#[test]
fn a_non_retriable_rejection_fails_at_once() {
    let mut w = World::online(1, config);
    let tx = w.clients[0]
        .commit(
            vec![insert("todos", json!({"_id": "a", "invalid": true}))],
            w.now,
        )
        .unwrap();
    w.settle();
    let t = w.clients[0].tx(tx);
    assert_eq!(t.state, Failed);
    assert_eq!(t.attempts.len(), 1);
    assert_eq!(t.attempts[0].retry_scheduled_for, None);
}

#[test]
fn a_retry_succeeds_once_the_server_recovers() {
    let mut w = World::online(1, config);
    w.server.busy = true;
    let tx = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    w.settle();
    w.server.busy = false;
    w.advance(policy_ceiling(1) + 1);
    w.settle();
    let t = w.clients[0].tx(tx);
    assert_eq!(t.state, Completed);
    assert_eq!(t.attempts.len(), 2);
    assert_eq!(
        w.clients[0].engine.status(),
        SyncStatus::Idle,
        "a success clears the error"
    );
}

fn policy_ceiling(retry: u32) -> u64 {
    ferrosync_core::retry::RetryPolicy::default().ceiling(retry)
}

#[test]
fn offline_writes_sync_after_reconnecting_without_counting_as_retries() {
    let mut w = world(2);
    w.connect(1);
    let tx = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    w.settle();
    assert_eq!(w.clients[0].engine.status(), SyncStatus::Offline);
    assert_eq!(w.clients[0].tx(tx).state, Pending);
    w.connect(0);
    w.settle();
    assert_eq!(w.clients[0].tx(tx).state, Completed);
    assert!(w.clients[1].visible("a").is_some());
    // A connection lost mid-push: the transaction goes back to pending and is re-sent.
    let tx2 = w.clients[0]
        .commit(vec![update("todos", "a", json!({"n": 1}))], w.now)
        .unwrap();
    w.clients[0].flush(w.now);
    assert_eq!(w.clients[0].tx(tx2).state, Persisting);
    w.disconnect(0);
    assert_eq!(w.clients[0].tx(tx2).state, Pending);
    w.connect(0);
    w.settle();
    let t = w.clients[0].tx(tx2);
    assert_eq!(t.state, Completed);
    assert_eq!(t.retries, 0);
    assert!(t.attempts[0]
        .error
        .as_deref()
        .unwrap()
        .starts_with("connection lost"));
}

#[test]
fn a_lost_answer_is_resent_and_applied_exactly_once() {
    let mut w = World::online(1, config);
    let tx = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a", "w": "t1"}))], w.now)
        .unwrap();
    w.clients[0].flush(w.now);
    // The server commits, but the answer is lost.
    let push = w.clients[0].outbox.pop_front().unwrap();
    let id = w.clients[0].engine.client_id().to_owned();
    w.server.handle(&id, push);
    // No answer within the timeout: sync shows as failing, and the push is re-sent with the
    // same ids.
    w.advance(10_001);
    assert_eq!(w.clients[0].engine.status(), SyncStatus::Error);
    assert_eq!(
        w.clients[0].engine.stats().last_error.as_deref(),
        Some("no answer from the server in time")
    );
    assert_eq!(
        w.clients[0].engine.stats().last_error_code,
        Some(Code::Network)
    );
    w.settle();
    assert_eq!(w.clients[0].engine.status(), SyncStatus::Idle);
    assert_eq!(w.clients[0].tx(tx).state, Completed);
    assert_eq!(w.server.applied_tokens["t1"], 1);
    assert_eq!(w.server.mem.head(), 1);
}

#[test]
fn a_reload_mid_transaction_completes_it_exactly_once() {
    let mut w = World::online(1, config);
    let tx = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a", "w": "t1"}))], w.now)
        .unwrap();
    w.clients[0].flush(w.now);
    let push = w.clients[0].outbox.pop_front().unwrap();
    let id = w.clients[0].engine.client_id().to_owned();
    w.server.handle(&id, push);
    // The page reloads before the answer: the engine is rebuilt from storage.
    w.clients[0].reload(w.now);
    assert_eq!(w.clients[0].engine.client_id(), id);
    assert_eq!(
        field(&w.clients[0].visible("a"), "w"),
        json!("t1"),
        "the optimistic view is restored"
    );
    assert_eq!(w.clients[0].tx(tx).state, Pending);
    w.connect(0);
    w.settle();
    assert_eq!(w.clients[0].tx(tx).state, Completed);
    assert_eq!(w.server.applied_tokens["t1"], 1);
    // A write that never became durable is gone after a reload, and was never sent.
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "lost"}))], w.now)
        .unwrap();
    w.clients[0].reload(w.now);
    assert!(w.clients[0].visible("lost").is_none());
}

/// A load replays the records in the order storage hands them over (its keys', their sequence
/// numbers): records out of that order, or one that does not decode, fail the load and say
/// so, rather than leave an engine built wrong or from part of what is stored.
#[test]
fn stored_records_out_of_order_or_damaged_fail_the_load() {
    let mut c = Client::open(config(1), Store::default(), T0);
    for id in ["a", "b"] {
        c.commit(vec![insert("cache", json!({ "_id": id }))], T0)
            .unwrap();
        c.flush(T0);
    }
    let records: Vec<Vec<u8>> = c.store.snapshot().records.collect();
    assert!(records.len() >= 2, "{} records", records.len());
    let load = |records: Vec<Vec<u8>>| {
        let snapshot = Snapshot {
            records: records.into(),
            ..Snapshot::default()
        };
        let mut engine = Engine::new(config(1)).unwrap();
        engine.handle(Input::Loaded(snapshot), T0).map(|_| engine)
    };
    let failure = |records| match load(records) {
        Err(CoreError::CorruptStorage(message)) => message,
        other => panic!("loaded: {:?}", other.map(|_| ())),
    };
    let reversed = records.iter().rev().cloned().collect();
    let message = failure(reversed);
    assert!(message.contains("out of order"), "{message}");
    let mut cut = records.clone();
    cut.last_mut().unwrap().pop();
    let message = failure(cut);
    assert!(message.contains("log record is damaged"), "{message}");
    let loaded = load(records).expect("in order, they load");
    let cache = loaded.collection("cache").unwrap();
    assert!(cache.get("a").is_some() && cache.get("b").is_some());
}

#[test]
fn pulls_come_in_pages_and_the_cursor_advances() {
    let mut w = World::new(2, |seed| ferrosync_core::engine::EngineConfig {
        batch_size: 100,
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
    w.settle();
    assert_eq!(w.server.mem.head(), 250);
    w.connect(1);
    w.settle();
    let c = &w.clients[1];
    assert_eq!(c.engine.collection("todos").unwrap().count(), 250);
    assert_eq!(c.engine.cursor(), 250);
    assert_eq!(c.engine.stats().pull_count, 250);
    let pulls = c
        .engine
        .sync_log(&SyncLogQuery::default())
        .into_iter()
        .filter(|e| e.sync_type == SyncType::Pull)
        .collect::<Vec<_>>();
    assert_eq!(pulls.len(), 1, "one pull run of three pages");
    assert_eq!(pulls[0].synced_count, 250);
    assert_eq!(pulls[0].status, SyncLogStatus::Completed);
    assert_eq!(c.stored().cursor(), 250, "the cursor is durable");
}

#[test]
fn status_goes_offline_syncing_idle_and_stats_count() {
    let mut w = world(2);
    assert_eq!(w.clients[0].statuses, [SyncStatus::Offline]);
    w.connect(0);
    w.connect(1);
    w.settle();
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    w.settle();
    assert_eq!(
        w.clients[0].statuses,
        [
            SyncStatus::Offline,
            SyncStatus::Syncing,
            SyncStatus::Idle,
            SyncStatus::Syncing,
            SyncStatus::Idle
        ]
    );
    let stats = w.clients[0].engine.stats();
    assert_eq!(stats.push_count, 1);
    assert_eq!(stats.last_sync_at, Some(w.now));
    w.disconnect(0);
    assert_eq!(w.clients[0].engine.status(), SyncStatus::Offline);
    let log = w.clients[0].engine.sync_log(&SyncLogQuery {
        limit: Some(1),
        status: Some(SyncLogStatus::Completed),
        ..SyncLogQuery::default()
    });
    assert_eq!(log[0].sync_type, SyncType::Push);
    assert_eq!(log[0].synced_count, 1);
}

#[test]
fn storage_failures_show_as_errors_and_are_written_again() {
    let mut w = world(1);
    let tx = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    let write = w.clients[0].writes.pop_front().unwrap();
    w.connect(0);
    w.clients[0]
        .handle(
            Input::PersistFailed {
                token: write.token,
                message: "QuotaExceededError".into(),
                quota: true,
            },
            w.now,
        )
        .unwrap();
    assert_eq!(w.clients[0].engine.status(), SyncStatus::Error);
    assert_eq!(
        w.clients[0].engine.stats().last_error.as_deref(),
        Some("storage: QuotaExceededError")
    );
    assert_eq!(
        w.clients[0].engine.stats().last_error_code,
        Some(Code::StorageQuota)
    );
    assert!(!w.clients[0].durable.contains(&tx));
    w.advance(policy_ceiling(1));
    w.settle();
    assert!(w.clients[0].durable.contains(&tx));
    assert_eq!(w.clients[0].tx(tx).state, Completed);
}

#[test]
fn local_only_collections_complete_once_durable_and_never_sync() {
    let mut w = World::online(1, config);
    let tx = w.clients[0]
        .commit(vec![insert("cache", json!({"_id": "x", "v": 1}))], w.now)
        .unwrap();
    w.settle();
    let c = &w.clients[0];
    assert_eq!(c.tx(tx).state, Completed);
    assert_eq!(c.history[&tx], [Pending, Completed]);
    assert!(c
        .stored()
        .collection("cache")
        .unwrap()
        .synced("x")
        .is_some());
    assert_eq!(w.server.mem.head(), 0);
    w.clients[0]
        .handle(
            Input::HardDelete {
                collection: "cache".into(),
                id: "x".into(),
            },
            w.now,
        )
        .unwrap();
    w.settle();
    assert!(w.clients[0]
        .engine
        .collection("cache")
        .unwrap()
        .get("x")
        .is_none());
    assert!(
        w.clients[0].stored_docs() == 0,
        "hardDelete removes the stored copy"
    );
}

#[test]
fn hard_delete_removes_a_synced_document_locally_only() {
    let mut w = World::online(1, config);
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    w.settle();
    w.clients[0]
        .handle(
            Input::HardDelete {
                collection: "todos".into(),
                id: "a".into(),
            },
            w.now,
        )
        .unwrap();
    w.settle();
    assert!(w.clients[0].visible("a").is_none());
    assert!(w.server.doc("a").is_some());
    let missing = w.clients[0].handle(
        Input::HardDelete {
            collection: "todos".into(),
            id: "a".into(),
        },
        w.now,
    );
    assert!(matches!(missing, Err(CoreError::NotFound { .. })));
}

#[test]
fn push_only_and_pull_only_clients_send_or_receive_only() {
    use ferrosync_core::engine::Direction;
    let mut w = World::new(2, |seed| ferrosync_core::engine::EngineConfig {
        direction: if seed == 1 {
            Direction::Push
        } else {
            Direction::Pull
        },
        ..config(seed)
    });
    w.connect(0);
    w.connect(1);
    w.settle();
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    let pending = w.clients[1]
        .commit(vec![insert("todos", json!({"_id": "b"}))], w.now)
        .unwrap();
    w.settle();
    assert!(w.server.doc("a").is_some());
    assert!(w.clients[1].visible("a").is_some(), "pull-only receives");
    assert!(w.server.doc("b").is_none(), "pull-only never pushes");
    assert_eq!(w.clients[1].tx(pending).state, Pending);
    // A change made elsewhere does not reach the push-only client.
    w.server.mem.pull(0, 10);
    assert_eq!(w.clients[0].engine.cursor(), 0);
}

#[test]
fn future_timestamps_are_clamped_by_the_server() {
    let mut w = World::online(1, config);
    // This client's clock runs an hour ahead.
    let skewed = w.now + 3_600_000;
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], skewed)
        .unwrap();
    w.settle();
    let stored = w.server.doc("a").unwrap();
    assert_eq!(
        stored.hlc().wall,
        w.now + ferrosync_core::hlc::MAX_CLOCK_SKEW_MS
    );
}

#[test]
fn conflict_ids_read_back_from_their_text() {
    let id = ConflictId {
        tx: ferrosync_core::transaction::TxId(12),
        index: 3,
    };
    assert_eq!(id.to_string(), "tx-12/3");
    assert_eq!("tx-12/3".parse::<ConflictId>(), Ok(id));
    for bad in ["", "12/3", "tx-12", "tx-a/3", "tx-1/-1"] {
        assert_eq!(
            bad.parse::<ConflictId>(),
            Err(CoreError::UnknownConflict(bad.into()))
        );
    }
}

#[test]
fn after_a_storage_reset_everything_is_written_again() {
    let mut w = World::online(2, config);
    w.clients[1]
        .commit(vec![insert("todos", json!({"_id": "synced"}))], w.now)
        .unwrap();
    w.settle();
    w.disconnect(0);
    let pending = w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "pending"}))], w.now)
        .unwrap();
    w.settle();
    let before = w.clients[0].stored();
    assert_eq!(w.clients[0].stored_docs(), 1);
    assert_eq!(before.unfinished().count(), 1);
    // The browser cleared the site's data under the open engine.
    w.clients[0].store = Default::default();
    w.clients[0].handle(Input::StorageReset, w.now).unwrap();
    w.settle();
    let after = w.clients[0].stored();
    assert_eq!(
        (after.client_id(), after.cursor()),
        (before.client_id(), before.cursor())
    );
    assert_eq!(w.clients[0].stored_docs(), 1);
    assert_eq!(
        after.unfinished().map(|t| t.id).collect::<Vec<_>>(),
        [pending]
    );
    w.clients[0].reload(w.now);
    w.connect(0);
    w.settle();
    assert_eq!(w.clients[0].tx(pending).state, Completed);
    assert_eq!(w.server.mem.head(), 2, "nothing applied twice");
}

#[test]
fn a_step_finishing_many_transactions_reports_every_one_and_the_history_keeps_them() {
    let mut w = World::new(1, |seed| EngineConfig {
        batch_size: 1000,
        ..config(seed)
    });
    let ids: Vec<_> = (0..900)
        .map(|i| {
            w.clients[0]
                .commit(
                    vec![insert("todos", json!({ "_id": format!("d{i}") }))],
                    w.now,
                )
                .unwrap()
        })
        .collect();
    w.connect(0);
    w.settle();
    let c = &w.clients[0];
    for id in ids {
        assert_eq!(c.history[&id].last(), Some(&Completed), "{id}");
    }
    assert_eq!(
        c.engine.transactions().len(),
        900,
        "the history keeps every one by default"
    );
    assert_eq!(c.stored().transactions().len(), 900, "and so does storage");
}

#[test]
fn batched_writes_put_a_burst_of_commits_and_the_last_burst_s_compaction_in_one_write() {
    let batched = |seed| EngineConfig {
        batch_writes: true,
        ..config(seed)
    };
    let mut c = Client::open(batched(1), Store::default(), T0);
    c.flush(T0);
    let burst = |c: &mut Client, from: usize| -> Vec<_> {
        (from..from + 3)
            .map(|i| {
                let id = c
                    .commit(vec![insert("cache", json!({"_id": format!("{i}")}))], T0)
                    .unwrap();
                assert!(c.writes.is_empty(), "a commit does not write at once");
                id
            })
            .collect()
    };
    let first = burst(&mut c, 0);
    assert!(c.tick_unflushed(T0));
    assert_eq!(c.writes.len(), 1, "one write for the burst");
    assert_eq!(record_of(&c.writes[0]).txs.len(), 3);
    assert!(c.complete_write(T0));
    assert!(first.iter().all(|id| c.durable.contains(id)));
    // Durable local-only transactions complete; storing their documents and settling them
    // waits for the next write, which the next burst's commits join.
    assert!(first.iter().all(|id| c.tx(*id).state == Completed));
    assert!(c.writes.is_empty() && c.unflushed);
    let second = burst(&mut c, 3);
    assert!(c.tick_unflushed(T0));
    assert_eq!(c.writes.len(), 1);
    let record = record_of(&c.writes[0]);
    assert_eq!(record.txs.len(), 3);
    let finished: Vec<_> = record.finished_heads.iter().map(|t| t.id).collect();
    assert_eq!(
        finished, first,
        "their ends: their heads alone, since the record before holds their mutations"
    );
    assert!(record.finished.is_empty());
    assert_eq!(record.docs.iter().map(|(_, d)| d.len()).sum::<usize>(), 3);
    c.flush(T0);
    assert!(second.iter().all(|id| c.durable.contains(id)));
    assert!(
        c.stored().unfinished().next().is_none(),
        "everything settled once ticked"
    );
    assert_eq!(c.stored_docs(), 6);
    // What a reload finds: every document, nothing left to redo.
    c.reload(T0);
    assert_eq!(c.engine.collection("cache").unwrap().count(), 6);
    let history = c.engine.transactions();
    for id in first.iter().chain(&second) {
        let tx = history.iter().find(|t| t.id == *id).expect("kept");
        assert_eq!((tx.state, tx.mutations.len()), (Completed, 1), "{id}");
    }
}

#[test]
fn a_reload_before_a_batched_compaction_is_written_finishes_the_stored_transaction_once() {
    let mut c = Client::open(
        EngineConfig {
            batch_writes: true,
            ..config(1)
        },
        Store::default(),
        T0,
    );
    c.flush(T0);
    let tx = c
        .commit(vec![insert("cache", json!({"_id": "a"}))], T0)
        .unwrap();
    c.flush(T0);
    assert!(c.durable.contains(&tx));
    // The compaction was not ticked out before the reload: the stored transaction is
    // finished again from storage, once.
    let tx2 = c
        .commit(vec![insert("cache", json!({"_id": "b"}))], T0)
        .unwrap();
    c.tick_unflushed(T0);
    c.complete_write(T0);
    assert!(c.durable.contains(&tx2));
    c.reload(T0);
    c.flush(T0);
    assert_eq!(c.engine.collection("cache").unwrap().count(), 2);
    assert!(c.stored().unfinished().next().is_none());
}

#[test]
fn batched_writes_store_a_push_s_settlements_with_the_next_commits_and_a_reload_before_sends_them_again(
) {
    let mut w = World::online(1, |seed| EngineConfig {
        batch_writes: true,
        ..config(seed)
    });
    let now = w.now;
    let c = &mut w.clients[0];
    let a = c
        .commit(vec![insert("todos", json!({"_id": "a"}))], now)
        .unwrap();
    assert!(c.tick_unflushed(now));
    w.settle();
    let c = &mut w.clients[0];
    assert_eq!(c.tx(a).state, Completed, "settled from the answer");
    assert!(
        c.writes.is_empty() && c.unflushed,
        "its end waits for a write"
    );
    // A commit its settlement lets the caller make: one write holds both.
    let b = c
        .commit(vec![insert("todos", json!({"_id": "b"}))], now)
        .unwrap();
    assert!(c.tick_unflushed(now));
    assert_eq!(c.writes.len(), 1);
    let record = record_of(&c.writes[0]);
    assert_eq!(record.txs.iter().map(|t| t.id).collect::<Vec<_>>(), [b]);
    let ended: Vec<_> = record.finished_heads.iter().map(|t| t.id).collect();
    assert_eq!(ended, [a], "with the end of the one answered");
    // Reloaded before that write: `a` is stored unsettled, so it is sent again with its ids and
    // the server answers it from its record, without applying it again (`b` was never durable).
    c.reload(now);
    assert_eq!(c.tx(a).state, Pending, "unsettled, as storage holds it");
    w.connect(0);
    w.settle();
    let c = &mut w.clients[0];
    assert_eq!(c.tx(a).state, Completed);
    assert_eq!(c.history[&a].last(), Some(&Completed));
    c.flush(now);
    assert!(c.stored().unfinished().next().is_none());
    assert_eq!(w.server.mem.head(), 1, "applied once");
    assert!(w.server.doc("a").is_some() && w.server.doc("b").is_none());
}

#[test]
fn pushes_stop_growing_at_their_byte_size_so_frames_stay_under_the_server_limit() {
    let mut w = World::online(1, config);
    let big = "x".repeat(60_000);
    for i in 0..10 {
        w.clients[0]
            .commit(
                vec![insert(
                    "todos",
                    json!({"_id": format!("d{i}"), "body": big}),
                )],
                w.now,
            )
            .unwrap();
    }
    while w.clients[0].complete_write(w.now) {}
    let pushes: Vec<usize> = w.clients[0]
        .outbox
        .iter()
        .filter(|m| matches!(m, ClientMessage::Push { .. }))
        .map(|m| serde_json::to_string(m).unwrap().len())
        .collect();
    assert!(pushes.len() >= 3, "split into several pushes: {pushes:?}");
    assert!(
        pushes.iter().all(|&bytes| bytes < 256 * 1024),
        "each about 192 KB at most: {pushes:?}"
    );
    w.settle();
    assert_eq!(w.server.mem.head(), 10, "all of them applied");
}

#[test]
fn batched_writes_leave_changes_received_live_for_a_later_write_and_a_reload_before_it_pulls_them()
{
    let mut w = World::online(2, |seed| EngineConfig {
        batch_writes: seed == 2,
        ..config(seed)
    });
    let now = w.now;
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], now)
        .unwrap();
    w.settle();
    let b = &mut w.clients[1];
    assert!(b.visible("a").is_some(), "subscribers see it from memory");
    assert!(b.writes.is_empty() && b.unflushed, "its write waits");
    assert_eq!(b.stored_docs(), 0);
    // Reloaded before that write: the stored cursor is behind, so the pull brings it again.
    b.reload(now);
    w.connect(1);
    w.settle();
    assert!(w.clients[1].visible("a").is_some());
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "b"}))], now)
        .unwrap();
    w.settle();
    let b = &mut w.clients[1];
    assert!(b.visible("b").is_some());
    b.flush(now);
    assert_eq!(b.stored_docs(), 2, "one write stores what was received");
    assert_eq!(b.stored_cursor(), b.engine.cursor(), "with the cursor");
}
