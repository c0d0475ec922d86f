//! What callers wait on, decided by the engine: `forceSync`/`push`/`pull`, `hardDelete` and
//! `flush` get a ticket answered by an effect; `start`/`stop` and lost connections decide when
//! the driver connects, backing off under the retry policy.

mod common;

use common::*;
use ferrosync_core::engine::{Input, RequestError, SyncLogQuery, SyncStatus, SyncType};
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::ServerMessage;
use ferrosync_core::{Code, Millis};
use serde_json::json;

fn sync_now(w: &mut World, i: usize) -> ferrosync_core::engine::Ticket {
    let now = w.now;
    w.clients[i]
        .request(
            Input::SyncNow {
                push: true,
                pull: true,
            },
            now,
        )
        .unwrap()
}

/// A client that has started sync and is connected as the engine asked.
fn started() -> World {
    let mut w = World::new(1, config);
    w.clients[0].handle(Input::Start, w.now).unwrap();
    assert_eq!(w.clients[0].dials, [0], "start asks for a connection");
    w.connect(0);
    w.settle();
    w
}

#[test]
fn force_sync_is_answered_once_sync_is_idle() {
    let mut w = started();
    w.clients[0]
        .commit(vec![insert("todos", json!({"_id": "a"}))], w.now)
        .unwrap();
    let ticket = sync_now(&mut w, 0);
    assert!(!w.clients[0].answers.contains_key(&ticket), "not idle yet");
    w.settle();
    assert_eq!(w.clients[0].engine.status(), SyncStatus::Idle);
    assert_eq!(w.clients[0].answers[&ticket], Ok(()));
    assert!(w.server.doc("a").is_some());
}

#[test]
fn force_sync_fails_at_once_while_stopped_or_unreachable() {
    let mut w = World::new(1, config);
    let stopped = sync_now(&mut w, 0);
    assert_eq!(w.clients[0].answers[&stopped], Err(RequestError::Stopped));
    w.clients[0].handle(Input::Start, w.now).unwrap();
    // A connection is being opened: the request waits for it.
    let waiting = sync_now(&mut w, 0);
    assert!(!w.clients[0].answers.contains_key(&waiting));
    w.disconnect(0);
    assert!(
        matches!(&w.clients[0].answers[&waiting], Err(RequestError::Sync(Code::Network, e)) if e.starts_with("offline: ")),
        "{:?}",
        w.clients[0].answers
    );
    // Waiting for a reconnect, the server is unreachable: answered at once.
    let unreachable = sync_now(&mut w, 0);
    assert!(
        matches!(&w.clients[0].answers[&unreachable], Err(RequestError::Sync(Code::Network, e)) if e.starts_with("offline: "))
    );
}

#[test]
fn force_sync_fails_with_the_error_of_a_run_it_caused() {
    let mut w = started();
    let ticket = sync_now(&mut w, 0);
    let seq = w.clients[0]
        .outbox
        .iter()
        .find_map(|m| match m {
            ferrosync_core::protocol::ClientMessage::Pull { seq, .. } => Some(*seq),
            _ => None,
        })
        .expect("a pull is sent");
    w.clients[0].outbox.clear();
    let error = ferrosync_core::protocol::ErrorInfo {
        code: ErrorCode::Internal,
        message: "boom".into(),
        retryable: false,
    };
    w.clients[0]
        .handle(
            Input::Server(ServerMessage::Error {
                seq: Some(seq),
                error,
            }),
            w.now,
        )
        .unwrap();
    assert!(
        matches!(&w.clients[0].answers[&ticket], Err(RequestError::Sync(Code::Protocol(ErrorCode::Internal), e)) if e.contains("boom")),
        "{:?}",
        w.clients[0].answers
    );
}

#[test]
fn force_sync_fails_with_its_runs_code_not_the_latest_errors() {
    let mut w = started();
    // A refused transaction leaves its code as the latest error.
    w.clients[0]
        .commit(
            vec![insert("todos", json!({"_id": "a", "invalid": true}))],
            w.now,
        )
        .unwrap();
    w.settle();
    let refused = Some(Code::Protocol(ErrorCode::BadRequest));
    assert_eq!(w.clients[0].engine.stats().last_error_code, refused);
    // The pull the request started loses its connection.
    let ticket = sync_now(&mut w, 0);
    w.disconnect(0);
    assert_eq!(
        w.clients[0].answers[&ticket],
        Err(RequestError::Sync(
            Code::Network,
            "connection lost: test".into()
        ))
    );
    let run = &w.clients[0].engine.sync_log(&SyncLogQuery::default())[0];
    assert_eq!(
        (run.sync_type, run.error_code),
        (SyncType::Pull, Some(Code::Network))
    );
    assert_eq!(w.clients[0].engine.stats().last_error_code, refused);
}

#[test]
fn force_sync_made_during_a_run_fails_with_that_run_s_error() {
    let mut w = started();
    // The first request's pull is under way when the second comes: the second joins it.
    let first = sync_now(&mut w, 0);
    let second = sync_now(&mut w, 0);
    let pulls = w.clients[0]
        .outbox
        .iter()
        .filter(|m| matches!(m, ferrosync_core::protocol::ClientMessage::Pull { .. }))
        .count();
    assert_eq!(pulls, 1, "one pull run for both");
    w.disconnect(0);
    let lost = Err(RequestError::Sync(
        Code::Network,
        "connection lost: test".into(),
    ));
    assert_eq!(w.clients[0].answers[&first], lost);
    assert_eq!(w.clients[0].answers[&second], lost);
}

#[test]
fn hard_delete_and_flush_are_answered_once_storage_holds_what_they_changed() {
    let mut w = World::new(1, config);
    w.clients[0]
        .commit(vec![insert("cache", json!({"_id": "x"}))], w.now)
        .unwrap();
    w.settle();
    let nothing = w.clients[0].request(Input::Flush, w.now).unwrap();
    assert_eq!(w.clients[0].answers[&nothing], Ok(()), "nothing to write");
    // A write is under way when the removal comes: it waits for the next write.
    w.clients[0]
        .commit(vec![insert("cache", json!({"_id": "y"}))], w.now)
        .unwrap();
    assert_eq!(w.clients[0].writes.len(), 1);
    let removal = Input::HardDelete {
        collection: "cache".into(),
        id: "x".into(),
    };
    let deleted = w.clients[0].request(removal, w.now).unwrap();
    let flushed = w.clients[0].request(Input::Flush, w.now).unwrap();
    assert!(w.clients[0].complete_write(w.now));
    assert!(!w.clients[0].answers.contains_key(&deleted));
    assert!(!w.clients[0].answers.contains_key(&flushed));
    // A failed write is written again; the requests wait through it.
    assert!(w.clients[0].fail_write(w.now));
    w.advance(60_000);
    assert!(w.clients[0].complete_write(w.now));
    assert_eq!(w.clients[0].answers[&deleted], Ok(()));
    assert_eq!(w.clients[0].answers[&flushed], Ok(()));
    assert_eq!(w.clients[0].stored_docs(), 1, "only y is stored");
}

/// Advances to the engine's next wake-up; returns how long that was.
fn wake(w: &mut World) -> Millis {
    let at = w.clients[0].wake.expect("a wake-up is due");
    let waited = at - w.now;
    w.advance(waited);
    waited
}

#[test]
fn lost_connections_are_reopened_after_a_growing_jittered_backoff_round_the_servers() {
    let mut w = World::new(1, config);
    w.clients[0].handle(Input::Start, w.now).unwrap();
    let mut waits = Vec::new();
    for failure in 1..=8u32 {
        w.clients[0]
            .handle(
                Input::Disconnected {
                    reason: "unreachable".into(),
                },
                w.now,
            )
            .unwrap();
        let dials = w.clients[0].dials.len();
        let waited = wake(&mut w);
        let ceiling = (500u64 << (failure - 1)).min(30_000);
        assert!(waited <= ceiling, "{waited} ms after failure {failure}");
        assert_eq!(w.clients[0].dials.len(), dials + 1, "reconnects when due");
        waits.push(waited);
    }
    // Failover: each attempt goes to the next server.
    assert_eq!(w.clients[0].dials, (0..=8).collect::<Vec<_>>());
    assert!(waits[5..].iter().any(|&w| w > 2_000), "the ceiling grows");
    // An open connection resets the backoff.
    w.connect(0);
    w.disconnect(0);
    assert!(wake(&mut w) <= 500);
}

#[test]
fn stop_and_offline_drop_the_connection_and_open_none_until_start_or_online() {
    let mut w = started();
    w.clients[0].handle(Input::Stop, w.now).unwrap();
    assert_eq!(w.clients[0].hangups, 1);
    assert_eq!(w.clients[0].engine.status(), SyncStatus::Offline);
    w.advance(120_000);
    assert_eq!(w.clients[0].dials.len(), 1, "no reconnect while stopped");

    w.clients[0].handle(Input::Start, w.now).unwrap();
    assert_eq!(w.clients[0].dials.len(), 2);
    w.connect(0);
    let offline = Input::Network { online: false };
    w.clients[0].handle(offline, w.now).unwrap();
    assert_eq!(w.clients[0].hangups, 2);
    w.advance(120_000);
    assert_eq!(w.clients[0].dials.len(), 2, "no reconnect while offline");
    let online = Input::Network { online: true };
    w.clients[0].handle(online, w.now).unwrap();
    assert_eq!(w.clients[0].dials.len(), 3, "online: connects at once");
}
