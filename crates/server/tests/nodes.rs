//! Several server nodes on one PostgreSQL database: migrations that do not race, versions that
//! never skip under concurrent writers on different nodes, writes of one node reaching the live
//! clients of another (also after its listening connection broke), and exactly-once pushes
//! when a client moves to another node.

#[macro_use]
mod common;

use common::*;
use ferrosync_core::protocol::{ClientMessage, ServerMessage};
use ferrosync_server::limits::Limits;
use ferrosync_server::storage::{Durability, Storage, POSTGRES_SCHEMA_VERSION};
use futures_util::SinkExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn fast() -> Limits {
    Limits {
        messages_per_second: 100_000,
        ..Limits::default()
    }
}

/// A direct connection to the database behind `url`.
async fn database(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The schema a test URL's `search_path` names.
fn schema(url: &str) -> &str {
    url.rsplit_once("search_path%3D").unwrap().1
}

fn pull(seq: u64, cursor: u64, limit: u32) -> ClientMessage {
    ClientMessage::Pull { seq, cursor, limit }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_the_schema_once() {
    let url = postgres_schema().await;
    let retention = Limits::default().log_retention();
    let opened = futures_util::future::join_all(
        (0..4).map(|_| Storage::open(&url, retention, Durability::Normal)),
    )
    .await;
    for storage in &opened {
        assert!(storage.is_ok(), "{:?}", storage.as_ref().err());
    }
    let db = database(&url).await;
    let applied: Vec<i32> = db
        .query(
            "SELECT version FROM ferrosync_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i32> = (1..=POSTGRES_SCHEMA_VERSION as i32).collect();
    assert_eq!(applied, expected, "each migration applied once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_never_skips_a_change_committed_by_concurrent_writers_on_two_nodes() {
    const WRITERS: usize = 6;
    const PUSHES: u64 = 40;
    let a = start(Db::Postgres, fast()).await;
    let b = a.node(fast()).await;
    let t = token("reader", "shared");
    // Writers on both nodes insert new documents, one to three per push, as fast as they can.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let addr = if w % 2 == 0 { a.addr } else { b.addr };
            let t = token(&format!("writer{w}"), "shared");
            tokio::spawn(async move {
                let mut ws = session(addr, &t, &format!("w{w}")).await;
                let (mut next, mut applied) = (1, 0);
                for seq in 0..PUSHES {
                    let txs = (0..1 + seq % 3)
                        .map(|i| put(next + i, &format!("w{w}-{}", next + i), 0, 1))
                        .collect::<Vec<_>>();
                    next += txs.len() as u64;
                    let answer = exchange(&mut ws, &push(seq, txs)).await;
                    applied += statuses(&answer).iter().filter(|s| *s == "applied").count();
                }
                applied
            })
        })
        .collect();
    // Meanwhile a client of node B pulls in small pages, from version 0 on.
    let mut reader = session(b.addr, &t, "reader").await;
    let (mut cursor, mut seen, mut seq) = (0, Vec::new(), 0);
    let mut done = false;
    loop {
        let finished = writers.iter().all(|w| w.is_finished());
        seq += 1;
        let ServerMessage::PullPage {
            changes,
            cursor: next,
            has_more,
            ..
        } = exchange(&mut reader, &pull(seq, cursor, 7)).await
        else {
            panic!("not a page")
        };
        for change in changes {
            seen.push((change.doc.version(), change.doc.id().to_owned()));
        }
        assert!(next >= cursor, "the cursor never goes back");
        cursor = next;
        if done && !has_more {
            break;
        }
        // One more full pass after the writers finished.
        done = finished && !has_more;
    }
    let mut applied = 0;
    for writer in writers {
        applied += writer.await.unwrap();
    }
    let versions: Vec<u64> = seen.iter().map(|(v, _)| *v).collect();
    let expected: Vec<u64> = (1..=applied as u64).collect();
    assert_eq!(
        versions, expected,
        "every committed change exactly once, in version order"
    );
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), applied, "each document once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_reaches_the_live_clients_of_another() {
    let a = start(Db::Postgres, fast()).await;
    let b = a.node(fast()).await;
    let mut writer = session(a.addr, &token("alice", "acme"), "c1").await;
    let mut reader = session(b.addr, &token("bob", "acme"), "c2").await;
    exchange(&mut writer, &push(1, vec![put(1, "a", 0, 7)])).await;
    let live: ServerMessage = serde_json::from_value(next_json(&mut reader).await).unwrap();
    let ServerMessage::Changes { changes, range } = live else {
        panic!("{live:?}")
    };
    assert_eq!((range.since, range.cursor), (0, 1));
    assert_eq!(changes[0].doc.fields().get("n").unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_listening_connection_catches_up() {
    let a = start(Db::Postgres, fast()).await;
    let b = a.node(fast()).await;
    let mut writer = session(a.addr, &token("alice", "acme"), "c1").await;
    let mut reader = session(b.addr, &token("bob", "acme"), "c2").await;
    exchange(&mut writer, &push(1, vec![put(1, "a", 0, 1)])).await;
    next_json(&mut reader).await;
    // Both nodes' listening connections are cut; node A writes while they reconnect.
    let db = database(&a.url).await;
    let listen = format!("LISTEN \"ferrosync:{}\"", schema(&a.url));
    let cut = db
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1",
            &[&listen],
        )
        .await
        .unwrap();
    assert_eq!(cut.len(), 2, "one listening connection per node");
    exchange(&mut writer, &push(2, vec![put(2, "b", 0, 2)])).await;
    let mut cursor = 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    while cursor < 2 {
        assert!(Instant::now() < deadline, "node B relayed the write");
        let live: ServerMessage = serde_json::from_value(next_json(&mut reader).await).unwrap();
        if let ServerMessage::Changes { changes, range } = live {
            assert!(range.since <= cursor, "nothing is skipped: {range:?}");
            assert!(changes.iter().all(|c| c.doc.version() <= range.cursor));
            cursor = cursor.max(range.cursor);
        }
    }
    loop {
        let listening = db
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE query = $1",
                &[&listen],
            )
            .await
            .unwrap();
        if listening.len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "both nodes listen again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moving_to_another_node_mid_push_has_each_mutation_applied_once() {
    let a = start(Db::Postgres, fast()).await;
    let b = a.node(fast()).await;
    let t = token("alice", "acme");
    let batch = push(
        1,
        (1..=20).map(|i| put(i, &format!("d{i}"), 0, 1)).collect(),
    );
    // The push goes to node A, and the connection drops before its answer is read.
    let mut ws = session(a.addr, &t, "mover").await;
    ws.send(Message::Text(serde_json::to_string(&batch).unwrap().into()))
        .await
        .unwrap();
    drop(ws);
    // The client reconnects to node B and sends it again.
    let mut ws = session(b.addr, &t, "mover").await;
    let answer = exchange(&mut ws, &batch).await;
    assert_eq!(statuses(&answer), vec!["applied"; 20]);
    let again = exchange(&mut ws, &batch).await;
    assert_eq!(
        statuses(&again),
        vec!["applied"; 20],
        "answered from the record"
    );
    let ServerMessage::Welcome {
        last_mutation_id,
        head,
        ..
    } = exchange(&mut ws, &hello("mover")).await
    else {
        panic!()
    };
    assert_eq!(
        (last_mutation_id, head),
        (20, 20),
        "each mutation applied once"
    );
}
