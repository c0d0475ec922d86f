//! The server's pure apply logic: idempotency, ordering, atomicity, conflicts, paging, clamping.

use ferrosync_core::document::parse_document;
use ferrosync_core::hlc::{Hlc, MAX_CLOCK_SKEW_MS};
use ferrosync_core::mutation::Op;
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{ErrorInfo, Outcome, WireMutation, WireTransaction};
use ferrosync_core::server::{MemoryServer, PushBounds, PushRequest, OUTCOMES_KEPT};
use ferrosync_core::MutationId;
use serde_json::json;

const NOW: u64 = 1_767_225_600_000;

fn ok(_: &WireMutation) -> Result<(), ErrorInfo> {
    Ok(())
}

fn put(id: MutationId, doc_id: &str, base: u64, n: i64) -> WireMutation {
    let (_, fields) = parse_document(json!({"_id": doc_id, "n": n})).unwrap();
    WireMutation {
        id,
        collection: "todos".into(),
        doc_id: doc_id.into(),
        op: Op::Put { fields },
        hlc: Hlc {
            wall: NOW,
            counter: id as u32,
            node: 1,
        },
        base_version: base,
    }
}

fn tx(mutations: Vec<WireMutation>) -> WireTransaction {
    WireTransaction {
        mutations,
        abandon: false,
    }
}

fn push(
    server: &mut MemoryServer,
    client: &str,
    user: &str,
    txs: &[WireTransaction],
) -> Result<Vec<Outcome>, ErrorInfo> {
    let req = PushRequest {
        client_id: client,
        user,
        now: NOW,
        head: 0,
        transactions: txs,
        bounds: PushBounds::NONE,
    };
    Ok(server
        .push(req, &ok)?
        .results
        .into_iter()
        .map(|r| r.outcome)
        .collect())
}

fn version(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Applied { doc } => doc.version(),
        other => panic!("not applied: {other:?}"),
    }
}

#[test]
fn a_replayed_push_is_answered_without_applying_again() {
    let mut s = MemoryServer::new();
    let batch = [
        tx(vec![put(1, "a", 0, 1), put(2, "b", 0, 2)]),
        tx(vec![put(3, "a", 0, 3)]),
    ];
    let first = push(&mut s, "c1", "u", &batch).unwrap();
    assert_eq!(first.iter().map(version).collect::<Vec<_>>(), [1, 2, 3]);
    let head = s.head();
    let replay = push(&mut s, "c1", "u", &batch).unwrap();
    // An applied mutation's replay carries its document as stored now: `a` as mutation 3 left
    // it, also in the answer to mutation 1.
    assert_eq!(replay, [&first[2], &first[1], &first[2]].map(Clone::clone));
    assert_eq!(s.head(), head, "no new versions");
    assert_eq!(s.last_mutation_id("c1"), 3);
}

#[test]
fn a_replay_past_the_kept_outcomes_is_unknown() {
    let mut s = MemoryServer::new();
    let mut id = 0;
    let mut txs = Vec::new();
    while id < OUTCOMES_KEPT + 2 {
        id += 1;
        txs.push(tx(vec![put(id, "a", 0, 1)]));
    }
    push(&mut s, "c1", "u", &txs).unwrap();
    let replay = push(&mut s, "c1", "u", &txs[..2]).unwrap();
    assert!(
        matches!(&replay[0], Outcome::Rejected { error } if error.code == ErrorCode::UnknownOutcome)
    );
    assert_eq!(version(&replay[1]), id, "the newest state of `a`");
}

#[test]
fn ids_must_continue_the_clients_sequence() {
    let mut s = MemoryServer::new();
    push(&mut s, "c1", "u", &[tx(vec![put(1, "a", 0, 1)])]).unwrap();
    let gap = push(&mut s, "c1", "u", &[tx(vec![put(3, "a", 1, 1)])]).unwrap_err();
    assert_eq!(gap.code, ErrorCode::MutationGap);
    assert!(!gap.retryable);
    let split = push(
        &mut s,
        "c1",
        "u",
        &[tx(vec![put(2, "a", 1, 1), put(4, "b", 0, 1)])],
    )
    .unwrap_err();
    assert_eq!(split.code, ErrorCode::BadRequest);
}

#[test]
fn a_client_id_stays_bound_to_its_first_user() {
    let mut s = MemoryServer::new();
    push(&mut s, "c1", "alice", &[tx(vec![put(1, "a", 0, 1)])]).unwrap();
    let err = push(&mut s, "c1", "mallory", &[tx(vec![put(2, "a", 1, 9)])]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert_eq!(s.last_mutation_id("c1"), 1, "0 rows applied");
}

#[test]
fn a_transaction_with_a_failing_mutation_applies_nothing() {
    let mut s = MemoryServer::new();
    let update_missing = WireMutation {
        op: Op::Update {
            patch: Default::default(),
        },
        ..put(2, "missing", 0, 0)
    };
    let out = push(
        &mut s,
        "c1",
        "u",
        &[tx(vec![put(1, "a", 0, 1), update_missing])],
    )
    .unwrap();
    assert!(matches!(&out[0], Outcome::Rejected { error } if error.code == ErrorCode::Aborted));
    assert!(matches!(&out[1], Outcome::Rejected { error } if error.code == ErrorCode::NotFound));
    assert_eq!(s.head(), 0);
    assert_eq!(
        s.last_mutation_id("c1"),
        2,
        "the ids are consumed: a re-send is answered the same"
    );
}

#[test]
fn a_newer_version_by_another_client_is_a_conflict_but_ones_own_is_not() {
    let mut s = MemoryServer::new();
    push(&mut s, "c1", "u", &[tx(vec![put(1, "a", 0, 1)])]).unwrap();
    // c1 writes again on top of its own change without having seen version 1: no conflict.
    let own = push(&mut s, "c1", "u", &[tx(vec![put(2, "a", 0, 2)])]).unwrap();
    assert_eq!(version(&own[0]), 2);
    // c2 based its write on version 1, but c1 wrote version 2 since: conflict.
    let other = push(
        &mut s,
        "c2",
        "u",
        &[tx(vec![put(1, "a", 1, 5), put(2, "b", 0, 5)])],
    )
    .unwrap();
    assert!(
        matches!(&other[0], Outcome::Conflict { doc } if doc.version() == 2 && doc.fields().get("n").unwrap() == json!(2))
    );
    assert!(matches!(&other[1], Outcome::Rejected { error } if error.code == ErrorCode::Aborted));
    assert!(s.documents().all(|d| d.doc.id() != "b"));
}

#[test]
fn a_retryable_check_stops_the_push_without_consuming_ids() {
    let mut s = MemoryServer::new();
    let busy_on_b = |m: &WireMutation| {
        if m.doc_id == "b" {
            Err(ErrorInfo::new(ErrorCode::Busy, "try later", true))
        } else {
            Ok(())
        }
    };
    let txs = [
        tx(vec![put(1, "a", 0, 1)]),
        tx(vec![put(2, "b", 0, 1)]),
        tx(vec![put(3, "c", 0, 1)]),
    ];
    let req = PushRequest {
        client_id: "c1",
        user: "u",
        now: NOW,
        head: 0,
        transactions: &txs,
        bounds: PushBounds::NONE,
    };
    let results = s.push(req, &busy_on_b).unwrap().results;
    assert_eq!(results.len(), 2, "the third transaction is not answered");
    assert!(matches!(&results[1].outcome, Outcome::Rejected { error } if error.retryable));
    assert_eq!(s.last_mutation_id("c1"), 1);
    // Later, the same ids go through.
    let out = push(&mut s, "c1", "u", &txs[1..]).unwrap();
    assert_eq!(out.iter().map(version).collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn an_abandoned_transaction_is_rejected_unless_it_was_applied() {
    let mut s = MemoryServer::new();
    let mut abandoned = tx(vec![put(1, "a", 0, 1)]);
    abandoned.abandon = true;
    let out = push(&mut s, "c1", "u", &[abandoned]).unwrap();
    assert!(matches!(&out[0], Outcome::Rejected { error } if error.code == ErrorCode::Abandoned));
    assert_eq!(s.head(), 0);
    // Abandoning something the server already applied returns the real outcome.
    let applied = push(&mut s, "c1", "u", &[tx(vec![put(2, "b", 0, 1)])]).unwrap();
    let mut late = tx(vec![put(2, "b", 0, 1)]);
    late.abandon = true;
    assert_eq!(push(&mut s, "c1", "u", &[late]).unwrap(), applied);
}

#[test]
fn pulls_page_through_changes_in_version_order() {
    let mut s = MemoryServer::new();
    let txs: Vec<_> = (1..=25)
        .map(|i| tx(vec![put(i, &format!("d{i}"), 0, i as i64)]))
        .collect();
    push(&mut s, "c1", "u", &txs).unwrap();
    // Rewriting d1 moves it to the end: the latest state is sent once, at its new version.
    push(&mut s, "c1", "u", &[tx(vec![put(26, "d1", 1, 100)])]).unwrap();
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (changes, next, has_more) = s.pull(cursor, 10);
        pages += 1;
        assert!(changes
            .windows(2)
            .all(|w| w[0].doc.version() < w[1].doc.version()));
        assert!(
            changes.iter().all(|c| c.doc.version() > cursor),
            "never behind the cursor"
        );
        seen.extend(changes.iter().map(|c| c.doc.id().to_owned()));
        cursor = next;
        if !has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    assert_eq!(seen.last().unwrap(), "d1");
    assert_eq!(cursor, 26);
    assert_eq!(s.pull(cursor, 10), (vec![], 26, false));
}

#[test]
fn timestamps_from_the_future_are_clamped_on_apply() {
    let mut s = MemoryServer::new();
    let mut m = put(1, "a", 0, 1);
    m.hlc.wall = NOW + 3 * MAX_CLOCK_SKEW_MS;
    let out = push(&mut s, "c1", "u", &[tx(vec![m])]).unwrap();
    let Outcome::Applied { doc } = &out[0] else {
        panic!()
    };
    assert_eq!(doc.hlc().wall, NOW + MAX_CLOCK_SKEW_MS);
}
