//! The real server process: `kill -9` while a client pushes loses no acknowledged mutation and
//! applies none twice after a restart (on PostgreSQL, the restarted process is another node of
//! the same database); SIGTERM shuts down gracefully.

#[macro_use]
mod common;

use common::*;
use ferrosync_core::protocol::{ClientMessage, Outcome, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

const PER_PUSH: u64 = 10;

/// Starts `ferrosync-server` on `db` (a `--db` URL), with `args` added, on a free port.
pub async fn launch(db: &str, args: &[&str]) -> (Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ferrosync-server"))
        .args([
            "--listen",
            &addr.to_string(),
            "--db",
            db,
            "--dev-token",
            DEV,
        ])
        .args(["--max-messages-per-second", "100000"])
        .args(args)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return (child, addr);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server did not listen on {addr}");
}

/// The push carrying mutations `first..first + PER_PUSH`, one new document each.
fn batch(seq: u64) -> ClientMessage {
    let first = seq * PER_PUSH + 1;
    push(
        seq,
        (first..first + PER_PUSH)
            .map(|id| put(id, &format!("doc{id}"), 0, id as i64))
            .collect(),
    )
}

both!(acknowledged_writes_survive_kill_9_exactly_once);
async fn acknowledged_writes_survive_kill_9_exactly_once(db: Db) {
    kill_9_mid_stream(db, &[]).await;
}

#[tokio::test]
async fn with_durability_full_acknowledged_writes_survive_kill_9_exactly_once() {
    kill_9_mid_stream(Db::Sqlite, &["--durability", "full"]).await;
}

/// Kills the server (started with `args`) while a client pushes, restarts it, and checks every
/// acknowledged write is there once and a re-send applies nothing twice.
async fn kill_9_mid_stream(db: Db, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let db = db.fresh(dir.path()).await;
    let (mut server, addr) = launch(&db, args).await;
    let ws = session(addr, DEV, "crasher").await;
    let (mut tx, mut rx) = ws.split();
    // Pipelined: pushes go out without waiting, answers are counted as they come.
    let sender = tokio::spawn(async move {
        for seq in 0..10_000u64 {
            let text = serde_json::to_string(&batch(seq)).unwrap();
            if tx.send(Message::Text(text.into())).await.is_err() {
                return seq;
            }
            tokio::task::yield_now().await;
        }
        10_000
    });
    let mut acked = BTreeSet::new();
    while acked.len() < 300 {
        let frame = tokio::time::timeout(Duration::from_secs(30), rx.next())
            .await
            .expect("answers keep coming");
        let Some(Ok(Message::Text(text))) = frame else {
            continue;
        };
        match serde_json::from_str(&text).unwrap() {
            ServerMessage::PushResult { results, .. } => {
                for r in results {
                    assert!(matches!(r.outcome, Outcome::Applied { .. }), "{r:?}");
                    acked.insert(r.id);
                }
            }
            // Live changes the server sends on its own (docs/PROTOCOL.md): catching up from
            // storage, its fan-out may relay this client's own writes back to it.
            ServerMessage::Changes { .. } => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    server.start_kill().unwrap(); // SIGKILL, mid-stream
    server.wait().await.unwrap();
    let sent = sender.await.unwrap();
    assert!(acked.len() >= 300);

    let (_server, addr) = launch(&db, args).await;
    let mut ws = connect(addr, DEV).await.unwrap();
    let ServerMessage::Welcome {
        last_mutation_id,
        head,
        ..
    } = exchange(&mut ws, &hello("crasher")).await
    else {
        panic!()
    };
    assert!(
        last_mutation_id >= *acked.last().unwrap(),
        "every acknowledged id is recorded"
    );
    assert_eq!(last_mutation_id % PER_PUSH, 0, "pushes commit whole");
    assert_eq!(
        head, last_mutation_id,
        "one version per applied mutation, none twice"
    );
    let mut cursor = 0;
    let mut seen = BTreeSet::new();
    loop {
        let ServerMessage::PullPage {
            changes,
            cursor: next,
            has_more,
            ..
        } = exchange(
            &mut ws,
            &ClientMessage::Pull {
                seq: 0,
                cursor,
                limit: 1_000,
            },
        )
        .await
        else {
            panic!()
        };
        for c in changes {
            assert!(
                seen.insert(c.doc.id().to_owned()),
                "{} appears once",
                c.doc.id()
            );
        }
        cursor = next;
        if !has_more {
            break;
        }
    }
    for id in &acked {
        assert!(
            seen.contains(&format!("doc{id}")),
            "acknowledged mutation {id} survived"
        );
    }
    assert_eq!(seen.len() as u64, last_mutation_id);
    // Re-sending what was on the wire when the server died: the recorded part is answered from
    // the record, the rest is applied now, and nothing is applied twice.
    let resend_from = last_mutation_id / PER_PUSH;
    let resend_to = (resend_from + 3).min(sent);
    for seq in resend_from.saturating_sub(2)..resend_to {
        let answer = exchange(&mut ws, &batch(seq)).await;
        assert_eq!(statuses(&answer), vec!["applied"; PER_PUSH as usize]);
    }
    let ServerMessage::Welcome {
        last_mutation_id: after,
        head: new_head,
        ..
    } = exchange(&mut ws, &hello("crasher")).await
    else {
        panic!()
    };
    assert_eq!(new_head, after, "still one version per mutation");
    assert_eq!(after, resend_to * PER_PUSH);
}

both!(sigterm_closes_websockets_with_1001_and_exits_cleanly);
async fn sigterm_closes_websockets_with_1001_and_exits_cleanly(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = launch(&db.fresh(dir.path()).await, &[]).await;
    let mut ws = session(addr, DEV, "c1").await;
    let pid = server.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let code = close_code(&mut ws).await;
    assert_eq!(code, 1001);
    drop(ws);
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("exits in time")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
