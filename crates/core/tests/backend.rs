//! Custom backends: transactions persisted through the application's functions, retried under
//! the policy, remote documents from its sync source, locks, reloads and backend-assigned ids.

mod common;

use common::*;
use ferrosync_core::document::{parse_document, Document};
use ferrosync_core::engine::{
    Backend, Call, CallOutcome, CallStep, EngineConfig, Input, SyncLogEntry, SyncLogQuery,
    SyncLogStatus,
};
use ferrosync_core::hlc::Hlc;
use ferrosync_core::scheduler::MutationStrategy;
use ferrosync_core::transaction::TxState;
use ferrosync_core::Code;
use serde_json::json;

fn custom(await_sync: bool) -> EngineConfig {
    EngineConfig {
        backend: Backend::Custom { await_sync },
        ..config(7)
    }
}

/// A client whose backend is ready and storage flushed.
fn ready(config: EngineConfig) -> Client {
    let mut c = Client::open(config, Store::default(), T0);
    c.handle(Input::BackendReady, T0).unwrap();
    c.flush(T0);
    c
}

fn doc(value: serde_json::Value) -> Document {
    let (id, fields) = parse_document(value).unwrap();
    Document::new(&id, fields, 0, Hlc::default(), false)
}

fn remote(c: &mut Client, docs: Vec<serde_json::Value>, now: u64) {
    let docs = docs.into_iter().map(|d| ("todos".into(), doc(d))).collect();
    c.handle(
        Input::Remote {
            docs,
            complete: None,
        },
        now,
    )
    .unwrap();
}

fn answer(c: &mut Client, call: Call, outcome: CallOutcome, now: u64) {
    c.handle(Input::Called { call, outcome }, now).unwrap();
    c.flush(now);
}

fn done() -> CallOutcome {
    CallOutcome::Done {
        external_ids: vec![],
        confirm: None,
    }
}

fn failed(retryable: bool) -> CallOutcome {
    CallOutcome::Failed {
        message: "API down".into(),
        retryable,
    }
}

/// The newest sync-log run.
fn last_run(c: &Client) -> SyncLogEntry {
    c.engine.sync_log(&SyncLogQuery::default())[0].clone()
}

fn title(c: &Client, id: &str) -> Option<serde_json::Value> {
    c.visible(id).and_then(|d| d.field("title"))
}

fn synced_title(c: &Client, id: &str) -> Option<serde_json::Value> {
    let todos = c.engine.collection("todos").unwrap();
    todos.synced(id).and_then(|d| d.field("title"))
}

#[test]
fn persist_is_called_once_durable_and_its_success_completes_the_transaction() {
    let mut c = Client::open(custom(false), Store::default(), T0);
    let tx = c
        .commit(vec![insert("todos", json!({"_id": "1", "title": "a"}))], T0)
        .unwrap();
    c.handle(Input::BackendReady, T0).unwrap();
    assert!(c.calls.is_empty(), "not called before the write is durable");
    c.flush(T0);
    let call = c.calls.pop_front().expect("persist called");
    assert_eq!(
        (call.tx, call.attempt, call.step),
        (tx, 1, CallStep::Persist)
    );
    assert_eq!(c.tx(tx).state, TxState::Persisting);
    answer(&mut c, call, done(), T0 + 5);
    assert_eq!(c.tx(tx).state, TxState::Completed);
    assert_eq!(synced_title(&c, "1"), Some(json!("a")));
    assert!(c
        .stored()
        .collection("todos")
        .unwrap()
        .synced("1")
        .is_some());
    assert!(
        c.stored().unfinished().next().is_none(),
        "finished transactions leave the stored outbox"
    );
    assert_eq!(
        c.stored().transaction(tx).map(|t| t.state),
        Some(TxState::Completed),
        "and are stored in the history"
    );
}

#[test]
fn await_sync_holds_the_transaction_until_it_resolves() {
    let mut c = ready(custom(true));
    let tx = c
        .commit(vec![insert("todos", json!({"_id": "1", "title": "a"}))], T0)
        .unwrap();
    c.flush(T0);
    let call = c.calls.pop_front().unwrap();
    answer(&mut c, call, done(), T0 + 1);
    assert_eq!(c.tx(tx).state, TxState::PersistedAwaitingSync);
    let wait = c.calls.pop_front().expect("awaitSync called");
    assert_eq!(wait.step, CallStep::AwaitSync);
    answer(&mut c, wait, done(), T0 + 2);
    assert_eq!(c.tx(tx).state, TxState::Completed);
}

#[test]
fn after_a_reload_persisted_transactions_are_done_and_unpersisted_ones_retried() {
    let mut c = ready(custom(true));
    let persisted = c
        .commit(vec![insert("todos", json!({"_id": "1", "title": "a"}))], T0)
        .unwrap();
    let unpersisted = c
        .commit(vec![insert("todos", json!({"_id": "2", "title": "b"}))], T0)
        .unwrap();
    c.flush(T0);
    let first = c.calls.pop_front().unwrap();
    assert_eq!(first.tx, persisted);
    answer(&mut c, first, done(), T0 + 1);
    c.reload(T0 + 2);
    assert_eq!(c.tx(persisted).state, TxState::Completed);
    assert_eq!(synced_title(&c, "1"), Some(json!("a")));
    assert_eq!(c.tx(unpersisted).state, TxState::Pending);
    c.handle(Input::BackendReady, T0 + 3).unwrap();
    let retried = c.calls.pop_front().expect("retried after reload");
    assert_eq!((retried.tx, retried.attempt), (unpersisted, 2));
    let interrupted = &c.tx(unpersisted).attempts[0];
    assert_eq!(
        (interrupted.error.as_deref(), interrupted.error_code),
        (Some("interrupted by a reload"), Some(Code::Network))
    );
}

#[test]
fn a_retryable_failure_backs_off_then_a_new_attempt_succeeds() {
    let mut c = ready(custom(false));
    let tx = c
        .commit(vec![insert("todos", json!({"_id": "1", "title": "a"}))], T0)
        .unwrap();
    c.flush(T0);
    let call = c.calls.pop_front().unwrap();
    answer(&mut c, call, failed(true), T0 + 10);
    let t = c.tx(tx);
    assert_eq!(t.state, TxState::Pending);
    assert_eq!(
        (t.attempts[0].error.as_deref(), t.attempts[0].error_code),
        (Some("API down"), Some(Code::PersistFailed))
    );
    let run = last_run(&c);
    assert_eq!(
        (run.status, run.error_code),
        (SyncLogStatus::Failed, Some(Code::PersistFailed))
    );
    let retry_at = t.attempts[0].retry_scheduled_for.expect("retry scheduled");
    assert!((T0 + 10..=T0 + 1010).contains(&retry_at), "{retry_at}");
    assert_eq!(c.wake, Some(retry_at));
    assert_eq!(
        title(&c, "1"),
        Some(json!("a")),
        "still visible while retrying"
    );
    c.handle(Input::Tick, retry_at).unwrap();
    let again = c.calls.pop_front().expect("retried");
    assert_eq!(again.attempt, 2);
    answer(&mut c, again, done(), retry_at + 1);
    assert_eq!(c.tx(tx).state, TxState::Completed);
    assert_eq!(c.tx(tx).attempts.len(), 2);
    assert_eq!(c.tx(tx).attempts[1].error_code, None);
    let run = last_run(&c);
    assert_eq!(
        (run.status, run.error_code),
        (SyncLogStatus::Completed, None)
    );
}

#[test]
fn a_non_retriable_failure_fails_at_once_and_rolls_back_its_dependents() {
    let mut c = ready(custom(false));
    let first = c
        .commit(vec![insert("todos", json!({"_id": "1", "title": "a"}))], T0)
        .unwrap();
    let second = c
        .commit(vec![update("todos", "1", json!({"title": "b"}))], T0)
        .unwrap();
    c.flush(T0);
    assert_eq!(c.tx(second).state, TxState::Queued);
    let call = c.calls.pop_front().unwrap();
    assert!(
        c.calls.is_empty(),
        "the queued transaction waits for the lock"
    );
    answer(&mut c, call, failed(false), T0 + 1);
    assert_eq!(c.tx(first).state, TxState::Failed);
    assert_eq!(c.tx(first).attempts.len(), 1);
    assert_eq!(c.tx(second).state, TxState::Failed);
    let error = c.tx(second).error.unwrap();
    assert_eq!(error.transaction_id, first);
    assert_eq!((error.code, error.retryable), (Code::NonRetriable, false));
    assert_eq!(c.tx(first).attempts[0].error_code, Some(Code::NonRetriable));
    assert_eq!(last_run(&c).error_code, Some(Code::NonRetriable));
    assert_eq!(c.visible("1"), None, "rolled back");
}

#[test]
fn retries_give_up_after_the_limit() {
    let mut c = ready(EngineConfig {
        retry: ferrosync_core::retry::RetryPolicy {
            max_retries: 1,
            ..Default::default()
        },
        ..custom(false)
    });
    let tx = c
        .commit(vec![insert("todos", json!({"_id": "1", "title": "a"}))], T0)
        .unwrap();
    c.flush(T0);
    let call = c.calls.pop_front().unwrap();
    answer(&mut c, call, failed(true), T0);
    let at = c.wake.unwrap();
    c.handle(Input::Tick, at).unwrap();
    let call = c.calls.pop_front().unwrap();
    answer(&mut c, call, failed(true), at);
    let t = c.tx(tx);
    assert_eq!(t.state, TxState::Failed);
    let error = t.error.unwrap();
    assert_eq!(error.message, "gave up after 2 attempts: API down");
    assert_eq!(
        (error.code, error.retryable),
        (Code::RetriesExhausted, true)
    );
    assert_eq!(
        c.engine.stats().last_error_code,
        Some(Code::RetriesExhausted)
    );
}

#[test]
fn ordered_remote_updates_to_a_locked_object_wait_for_its_transaction() {
    let mut c = ready(custom(false));
    remote(&mut c, vec![json!({"_id": "1", "title": "server"})], T0);
    let tx = c
        .commit(vec![update("todos", "1", json!({"title": "mine"}))], T0)
        .unwrap();
    c.flush(T0);
    let call = c.calls.pop_front().unwrap();
    remote(&mut c, vec![json!({"_id": "1", "title": "later"})], T0 + 1);
    assert_eq!(synced_title(&c, "1"), Some(json!("server")), "held back");
    assert_eq!(title(&c, "1"), Some(json!("mine")));
    answer(&mut c, call, done(), T0 + 2);
    assert_eq!(c.tx(tx).state, TxState::Completed);
    assert_eq!(
        title(&c, "1"),
        Some(json!("later")),
        "applied after the lock"
    );
}

#[test]
fn parallel_remote_updates_apply_at_once_under_pending_writes() {
    let mut c = ready(EngineConfig {
        mutation_strategy: MutationStrategy::Parallel { merge: None },
        ..custom(false)
    });
    remote(
        &mut c,
        vec![json!({"_id": "1", "title": "server", "n": 1})],
        T0,
    );
    c.commit(vec![update("todos", "1", json!({"title": "mine"}))], T0)
        .unwrap();
    c.flush(T0);
    remote(
        &mut c,
        vec![json!({"_id": "1", "title": "later", "n": 2})],
        T0 + 1,
    );
    let shown = c.visible("1").unwrap();
    assert_eq!(
        shown.field("n"),
        Some(json!(2)),
        "the remote update applied"
    );
    assert_eq!(shown.field("title"), Some(json!("mine")), "pending on top");
}

#[test]
fn backend_ids_replace_temporary_ids_in_documents_and_queued_writes() {
    let mut c = ready(custom(false));
    let create = c
        .commit(
            vec![insert("todos", json!({"_id": "tmp-1", "title": "a"}))],
            T0,
        )
        .unwrap();
    let edit = c
        .commit(vec![update("todos", "tmp-1", json!({"title": "b"}))], T0)
        .unwrap();
    c.flush(T0);
    let call = c.calls.pop_front().unwrap();
    answer(
        &mut c,
        call,
        CallOutcome::Done {
            external_ids: vec![(0, "srv-9".into())],
            confirm: None,
        },
        T0 + 1,
    );
    assert_eq!(c.tx(create).state, TxState::Completed);
    assert_eq!(c.visible("tmp-1"), None);
    assert_eq!(title(&c, "srv-9"), Some(json!("b")));
    assert_eq!(c.tx(edit).mutations[0].doc_id, "srv-9");
    let next = c.calls.pop_front().expect("the queued write runs");
    assert_eq!(next.tx, edit);
    answer(&mut c, next, done(), T0 + 2);
    assert_eq!(synced_title(&c, "srv-9"), Some(json!("b")));
    let engine = c.stored();
    let mut stored: Vec<&str> = engine
        .collection("todos")
        .unwrap()
        .synced_docs()
        .map(|d| d.id())
        .collect();
    stored.sort();
    assert_eq!(stored, ["srv-9"]);
}

#[test]
fn a_complete_snapshot_removes_documents_the_backend_no_longer_has() {
    let mut c = ready(custom(false));
    remote(
        &mut c,
        vec![
            json!({"_id": "1", "title": "a"}),
            json!({"_id": "2", "title": "b"}),
        ],
        T0,
    );
    c.handle(
        Input::Remote {
            docs: vec![("todos".into(), doc(json!({"_id": "2", "title": "B"})))],
            complete: Some(vec!["todos".into()]),
        },
        T0 + 1,
    )
    .unwrap();
    c.flush(T0 + 1);
    assert_eq!(c.visible("1"), None);
    assert_eq!(title(&c, "2"), Some(json!("B")));
    assert_eq!(c.stored_docs(), 1);
}

#[test]
fn late_answers_to_superseded_calls_are_ignored() {
    let mut c = ready(custom(false));
    let tx = c
        .commit(vec![insert("todos", json!({"_id": "1", "title": "a"}))], T0)
        .unwrap();
    c.flush(T0);
    let call = c.calls.pop_front().unwrap();
    answer(&mut c, call, failed(true), T0);
    answer(&mut c, call, done(), T0 + 1);
    assert_eq!(
        c.tx(tx).state,
        TxState::Pending,
        "a stale answer changes nothing"
    );
}

#[test]
fn writes_confirmed_later_wait_in_await_sync_across_reloads_and_take_the_confirmed_ids() {
    let mut c = ready(custom(true));
    let tx = c
        .commit(
            vec![insert("todos", json!({"_id": "tmp-1", "title": "a"}))],
            T0,
        )
        .unwrap();
    c.flush(T0);
    let persist = c.calls.pop_front().unwrap();
    let accepted = CallOutcome::Done {
        external_ids: vec![],
        confirm: Some(json!({ "tx-1/0": { "ticket": "t-9" } })),
    };
    answer(&mut c, persist, accepted, T0 + 1);
    assert_eq!(c.tx(tx).state, TxState::PersistedAwaitingSync);
    assert_eq!(
        c.tx(tx).confirm,
        Some(json!({ "tx-1/0": { "ticket": "t-9" } }))
    );
    assert!(c
        .calls
        .pop_front()
        .is_some_and(|call| call.step == CallStep::AwaitSync));
    assert_eq!(
        c.engine.locked_objects().len(),
        1,
        "an unconfirmed write holds its object"
    );
    // A reload while the write waits for its confirmation: it is not done, and awaitSync is
    // called again (with what persist said) once the backend is ready.
    c.reload(T0 + 2);
    assert_eq!(c.tx(tx).state, TxState::PersistedAwaitingSync);
    assert_eq!(
        c.tx(tx).confirm,
        Some(json!({ "tx-1/0": { "ticket": "t-9" } }))
    );
    assert!(c.calls.is_empty());
    c.handle(Input::BackendReady, T0 + 3).unwrap();
    let resumed = c.calls.pop_front().expect("awaitSync called again");
    assert_eq!((resumed.tx, resumed.step), (tx, CallStep::AwaitSync));
    let confirmed = CallOutcome::Done {
        external_ids: vec![(0, "srv-1".into())],
        confirm: None,
    };
    answer(&mut c, resumed, confirmed, T0 + 4);
    assert_eq!(c.tx(tx).state, TxState::Completed);
    assert_eq!(
        synced_title(&c, "srv-1"),
        Some(json!("a")),
        "the confirmed id"
    );
    assert!(title(&c, "tmp-1").is_none());
    assert_eq!(
        c.tx(tx).confirm,
        None,
        "the history keeps no confirmation data"
    );
}

#[test]
fn a_refused_or_timed_out_confirmation_fails_the_transaction_with_its_reason() {
    let mut c = ready(custom(true));
    let tx = c
        .commit(
            vec![insert("todos", json!({"_id": "tmp-1", "title": "a"}))],
            T0,
        )
        .unwrap();
    c.flush(T0);
    let persist = c.calls.pop_front().unwrap();
    let accepted = CallOutcome::Done {
        external_ids: vec![],
        confirm: Some(json!({})),
    };
    answer(&mut c, persist, accepted, T0 + 1);
    let wait = c.calls.pop_front().unwrap();
    let timed_out = CallOutcome::Failed {
        message: "not confirmed within 100 ms".into(),
        retryable: false,
    };
    answer(&mut c, wait, timed_out, T0 + 2);
    let failed = c.tx(tx);
    assert_eq!(failed.state, TxState::Failed);
    let error = failed.error.unwrap();
    assert!(error.message.contains("not confirmed within 100 ms"));
    assert_eq!(error.code, Code::ConfirmFailed);
    assert!(title(&c, "tmp-1").is_none(), "rolled back");
}

#[test]
fn a_confirmation_without_await_sync_to_wait_for_it_fails_the_transaction() {
    let mut c = ready(custom(false));
    let tx = c
        .commit(vec![insert("todos", json!({"_id": "1", "title": "a"}))], T0)
        .unwrap();
    c.flush(T0);
    let persist = c.calls.pop_front().unwrap();
    let accepted = CallOutcome::Done {
        external_ids: vec![],
        confirm: Some(json!({})),
    };
    answer(&mut c, persist, accepted, T0 + 1);
    let failed = c.tx(tx);
    assert_eq!(failed.state, TxState::Failed);
    assert!(failed.error.unwrap().message.contains("no `awaitSync`"));
}
