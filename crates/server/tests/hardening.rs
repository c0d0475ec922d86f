//! What an attacker holding a valid token can make the real server do, bounded: each test is one
//! finding of the security probe (frames that amplify, floods of invalid frames, slow clients,
//! out-of-range numbers, unbounded growth, claimed client ids, a trusted `Host`, an off-site
//! redirect, unstructured refusals) and fails without its fix.

#[macro_use]
mod common;

use common::*;
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::Op;
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{ClientMessage, ServerMessage, WireMutation, WireTransaction};
use ferrosync_server::limits::Limits;
use ferrosync_server::storage::{Durability, Storage, SCHEMA_VERSION};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Limits that let a test send many messages quickly.
fn fast() -> Limits {
    Limits {
        messages_per_second: 100_000,
        ..Limits::default()
    }
}

fn pull(seq: u64, cursor: u64) -> ClientMessage {
    ClientMessage::Pull {
        seq,
        cursor,
        limit: 1000,
    }
}

/// Pushes `count` documents of about `size` bytes each, ten per push.
async fn seed(ws: &mut Socket, count: u64, size: usize) {
    let ids: Vec<u64> = (1..=count).collect();
    for (seq, chunk) in ids.chunks(10).enumerate() {
        let txs = chunk
            .iter()
            .map(|&id| {
                let mut tx = put(id, &format!("doc{id}"), 0, id as i64);
                if let Op::Put { fields } = &mut tx.mutations[0].op {
                    fields.insert("body", json!("x".repeat(size)));
                }
                tx
            })
            .collect();
        let answer = exchange(ws, &push(seq as u64, txs)).await;
        assert!(
            statuses(&answer).iter().all(|s| s == "applied"),
            "{answer:?}"
        );
    }
}

/// Sends raw bytes on a new TCP connection and reads until the server closes it (or `wait`).
async fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, tcp.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The JSON body of a raw HTTP answer.
fn body(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {answer}"))
}

both!(one_frame_of_many_pulls_gets_an_answer_within_the_answer_limit);
async fn one_frame_of_many_pulls_gets_an_answer_within_the_answer_limit(db: Db) {
    let limits = Limits {
        max_answer_bytes: 64 * 1024,
        ..fast()
    };
    let server = start(db, limits.clone()).await;
    let mut ws = session(server.addr, DEV, "c1").await;
    seed(&mut ws, 40, 4_000).await;
    let pulls: Vec<_> = (1..=100).map(|seq| pull(seq, 0)).collect();
    ws.send(Message::Text(serde_json::to_string(&pulls).unwrap().into()))
        .await
        .unwrap();
    let frame = next_text(&mut ws).await;
    // The budget, plus the one change a page always carries, plus 99 short refusals.
    assert!(
        frame.len() < limits.max_answer_bytes + 5_000 + 99 * 200,
        "an answer of {} bytes",
        frame.len()
    );
    let answers: Vec<Value> = serde_json::from_str(&frame).unwrap();
    assert_eq!(answers.len(), 100, "one answer per message, in order");
    assert_eq!(answers[0]["type"], "pull_page");
    assert_eq!(answers[0]["has_more"], true);
    let busy = answers.last().unwrap();
    assert_eq!(
        (&busy["code"], &busy["retryable"]),
        (&json!("busy"), &json!(true))
    );
    // Paging on from the first page's cursor still delivers every document once.
    let (mut cursor, mut seen) = (0, 0);
    for seq in 200.. {
        let ServerMessage::PullPage {
            changes,
            cursor: next,
            has_more,
            ..
        } = exchange(&mut ws, &pull(seq, cursor)).await
        else {
            panic!("a page")
        };
        seen += changes.len();
        cursor = next;
        if !has_more {
            break;
        }
    }
    assert_eq!(seen, 40);
}

both!(a_frame_over_the_message_limit_is_refused_whole);
async fn a_frame_over_the_message_limit_is_refused_whole(db: Db) {
    let server = start(db, fast()).await;
    let mut ws = session(server.addr, DEV, "c1").await;
    let pulls: Vec<_> = (1..=101).map(|seq| pull(seq, 0)).collect();
    let answer = exchange_raw(&mut ws, serde_json::to_string(&pulls).unwrap()).await;
    assert_eq!(answer["code"], "too_many_messages");
    // 100 are fine.
    let answer = exchange_raw(&mut ws, serde_json::to_string(&pulls[..100]).unwrap()).await;
    assert_eq!(answer.as_array().map(Vec::len), Some(100));
}

both!(push_answers_and_merged_documents_stay_within_their_limits);
async fn push_answers_and_merged_documents_stay_within_their_limits(db: Db) {
    let limits = Limits {
        max_doc_bytes: 3_000,
        max_answer_bytes: 20_000,
        ..fast()
    };
    let server = start(db, limits).await;
    let mut ws = session(server.addr, DEV, "c1").await;
    // Ten 2.5 KB documents fit the documents' limit, not one answer.
    let txs: Vec<_> = (1..=10)
        .map(|id| {
            let mut tx = put(id, &format!("d{id}"), 0, 0);
            if let Op::Put { fields } = &mut tx.mutations[0].op {
                fields.insert("body", json!("y".repeat(2_500)));
            }
            tx
        })
        .collect();
    let answer = exchange(&mut ws, &push(1, txs.clone())).await;
    let first = statuses(&answer);
    let applied = first.iter().filter(|s| *s == "applied").count();
    assert!((1..10).contains(&applied), "{first:?}");
    let ServerMessage::PushResult { results, .. } = &answer else {
        unreachable!()
    };
    let stopped = serde_json::to_value(&results[applied].outcome).unwrap();
    assert_eq!(
        stopped["error"]["code"], "busy",
        "the rest is sent again later"
    );
    assert_eq!(results.len(), applied + 1);
    // Sent again, the rest applies: nothing was lost or recorded for it.
    let rest = txs[applied..].to_vec();
    let again = exchange(&mut ws, &push(2, rest)).await;
    assert!(statuses(&again).iter().all(|s| s == "applied"), "{again:?}");
    // Updates may not grow a document past the limit: a 1.4 KB patch on top of a 2.5 KB
    // document is refused with too_large.
    let grow = |id: u64, key: &str| WireTransaction {
        mutations: vec![WireMutation {
            id,
            collection: "todos".into(),
            doc_id: "d1".into(),
            op: Op::Update {
                patch: serde_json::from_value(json!({ key: "z".repeat(1_400) })).unwrap(),
            },
            hlc: Hlc::default(),
            base_version: 0,
        }],
        abandon: false,
    };
    let answer = exchange(&mut ws, &push(3, vec![grow(11, "a")])).await;
    let ServerMessage::PushResult { results, .. } = &answer else {
        panic!("{answer:?}")
    };
    let outcome = serde_json::to_value(&results[0].outcome).unwrap();
    assert_eq!(outcome["error"]["code"], "too_large", "{outcome}");
}

both!(malformed_frames_count_against_the_rate_limit);
async fn malformed_frames_count_against_the_rate_limit(db: Db) {
    let server = start(
        db,
        Limits {
            messages_per_second: 5,
            ..Limits::default()
        },
    )
    .await;
    let mut ws = connect(server.addr, DEV).await.unwrap();
    for _ in 0..20 {
        if ws.send(Message::Text("{not json".into())).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut ws).await, 1008);
}

both!(slow_clients_are_cut_off_and_a_full_server_answers_503);
async fn slow_clients_are_cut_off_and_a_full_server_answers_503(db: Db) {
    let limits = Limits {
        read_timeout_secs: 1,
        max_connections: 8,
        ..Limits::default()
    };
    let server = start(db, limits).await;
    // Eight connections that never finish their headers hold every place.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The next one is told at once, in a structured error, instead of waiting.
    let refused = raw(
        server.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert_eq!(body(&refused)["code"], "too_many_connections");
    // The server closes the slow connections after the read timeout...
    for mut tcp in slow {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a slow connection is closed");
    }
    // ...which frees the places for real clients.
    let (status, _) = http("GET", server.addr, "/healthz", None, None, None).await;
    assert_eq!(status, 200);
    // A body that does not arrive in time is refused with 408.
    let partial = raw(
        server.addr,
        b"POST /v1/hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-token\r\n\
          Content-Length: 100\r\n\r\n{\"type\":",
        Duration::from_secs(5),
    )
    .await;
    assert!(partial.starts_with("HTTP/1.1 408"), "{partial}");
    assert_eq!(body(&partial)["code"], "timeout");
}

both!(a_user_may_hold_only_so_many_websockets);
async fn a_user_may_hold_only_so_many_websockets(db: Db) {
    let server = start(
        db,
        Limits {
            max_connections_per_user: 2,
            ..Limits::default()
        },
    )
    .await;
    let first = connect(server.addr, DEV).await.unwrap();
    let _second = connect(server.addr, DEV).await.unwrap();
    let refused = connect(server.addr, DEV)
        .await
        .expect_err("a third is refused");
    assert!(refused.to_string().contains("429"), "{refused}");
    // Another user is not affected, and a closed connection frees its place.
    connect(server.addr, &token("bob", "acme")).await.unwrap();
    drop(first);
    for _ in 0..50 {
        if connect(server.addr, DEV).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the place of a closed connection was not freed");
}

both!(out_of_range_numbers_are_bad_requests_not_server_errors);
async fn out_of_range_numbers_are_bad_requests_not_server_errors(db: Db) {
    let server = start(db, fast()).await;
    let mut ws = session(server.addr, DEV, "c1").await;
    let answer = exchange(&mut ws, &pull(1, 1 << 63)).await;
    assert!(
        matches!(&answer, ServerMessage::Error { error, seq: Some(1) } if error.code == ErrorCode::BadRequest),
        "{answer:?}"
    );
    // Ids that wrap around are not contiguous.
    let mut wrapping = put(u64::MAX, "a", 0, 1);
    wrapping
        .mutations
        .push(put(0, "b", 0, 1).mutations.remove(0));
    let answer = exchange(&mut ws, &push(2, vec![wrapping])).await;
    assert!(
        matches!(&answer, ServerMessage::Error { error, seq: Some(2) } if error.code == ErrorCode::BadRequest),
        "{answer:?}"
    );
    // Nor does an id past 2^63 - 1 slip in as a first mutation.
    let answer = exchange(&mut ws, &push(3, vec![put(1 << 63, "c", 0, 1)])).await;
    assert!(
        matches!(&answer, ServerMessage::Error { error, .. } if error.code == ErrorCode::BadRequest),
        "{answer:?}"
    );
    let answer = exchange(&mut ws, &push(4, vec![put(1, "d", 0, 1)])).await;
    assert_eq!(statuses(&answer), ["applied"], "the client carries on");
}

both!(hello_names_a_bounded_number_of_collections);
async fn hello_names_a_bounded_number_of_collections(db: Db) {
    let server = start(
        db,
        Limits {
            max_collections: 3,
            ..fast()
        },
    )
    .await;
    let mut ws = connect(server.addr, DEV).await.unwrap();
    let hello = |collections: Vec<String>| ClientMessage::Hello {
        protocol: 1,
        client_id: "c1".into(),
        collections,
    };
    let names = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
    let answer = exchange(&mut ws, &hello(names(4))).await;
    assert!(
        matches!(&answer, ServerMessage::Error { error, .. } if error.code == ErrorCode::TooManyCollections),
        "{answer:?}"
    );
    let answer = exchange(&mut ws, &hello(vec!["x".repeat(129)])).await;
    assert!(
        matches!(&answer, ServerMessage::Error { error, .. } if error.code == ErrorCode::BadRequest),
        "{answer:?}"
    );
    let answer = exchange(&mut ws, &hello(names(3))).await;
    assert!(
        matches!(answer, ServerMessage::Welcome { .. }),
        "{answer:?}"
    );
}

both!(the_sync_log_is_pruned_to_its_retention);
async fn the_sync_log_is_pruned_to_its_retention(db: Db) {
    let server = start(
        db,
        Limits {
            sync_log_keep: 10,
            ..fast()
        },
    )
    .await;
    let mut ws = session(server.addr, DEV, "c1").await;
    for seq in 0..250 {
        exchange(&mut ws, &pull(seq, 0)).await;
    }
    let (status, log) = http(
        "GET",
        server.addr,
        "/v1/status?limit=1000",
        Some(DEV),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let rows = log["logs"].as_array().unwrap();
    // At most `keep` plus the rows written since the last pruning (one per 100).
    assert!(
        (10..=10 + 100).contains(&rows.len()),
        "{} rows kept",
        rows.len()
    );
    assert_eq!(log["totals"]["pull"]["runs"], rows.len());
    assert_eq!(rows[0]["id"], 250, "the newest rows are the ones kept");
}

both!(client_ids_are_scoped_per_tenant);
async fn client_ids_are_scoped_per_tenant(db: Db) {
    let server = start(db, fast()).await;
    // Eve, in her tenant, claims the id Alice's browser will use; it is Eve's own client.
    let mut eve = session(server.addr, &token("eve", "evil"), "c1").await;
    exchange(
        &mut eve,
        &push(1, vec![put(1, "e", 0, 1), put(2, "f", 0, 1)]),
    )
    .await;
    // Alice, in hers, is welcomed as a new client, and her ids start at 1.
    let mut alice = connect(server.addr, &token("alice", "acme")).await.unwrap();
    let welcome = exchange(&mut alice, &hello("c1")).await;
    assert!(
        matches!(
            welcome,
            ServerMessage::Welcome {
                last_mutation_id: 0,
                head: 0,
                ..
            }
        ),
        "{welcome:?}"
    );
    let answer = exchange(&mut alice, &push(1, vec![put(1, "a", 0, 1)])).await;
    assert_eq!(statuses(&answer), ["applied"]);
}

#[tokio::test]
async fn a_database_of_the_first_schema_is_migrated_with_its_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    // The first release's schema and a client of it with a recorded outcome.
    db.execute_batch(
        "CREATE TABLE tenants (tenant TEXT PRIMARY KEY, head INTEGER NOT NULL);
         CREATE TABLE documents (tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
           version INTEGER NOT NULL, writer TEXT NOT NULL, deleted INTEGER NOT NULL, hlc TEXT NOT NULL,
           fields TEXT NOT NULL, PRIMARY KEY (tenant, collection, id));
         CREATE INDEX documents_by_version ON documents (tenant, version);
         CREATE TABLE clients (client_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
           last_mutation_id INTEGER NOT NULL, collections TEXT NOT NULL);
         CREATE TABLE outcomes (client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL, outcome TEXT NOT NULL,
           PRIMARY KEY (client_id, mutation_id));
         CREATE TABLE sync_logs (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL,
           sync_type TEXT NOT NULL, status TEXT NOT NULL, user_id TEXT NOT NULL, client_id TEXT NOT NULL,
           started_at INTEGER NOT NULL, completed_at INTEGER NOT NULL, synced_count INTEGER NOT NULL,
           error_count INTEGER NOT NULL, collections TEXT NOT NULL, results TEXT NOT NULL, error TEXT);
         CREATE INDEX sync_logs_by_tenant ON sync_logs (tenant, id);
         PRAGMA user_version = 1;
         INSERT INTO clients VALUES ('c1', 'dev', 'dev', 7, '[\"todos\"]');
         INSERT INTO outcomes VALUES ('c1', 7, '{\"status\":\"rejected\",\"error\":{\"code\":\"deleted\",\"message\":\"gone\",\"retryable\":false}}');",
    )
    .unwrap();
    drop(db);
    let url = format!("sqlite://{}", path.display());
    Storage::open(&url, Limits::default().log_retention(), Durability::Normal)
        .await
        .unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: usize = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let (tenant, last): (String, u64) = db
        .query_row(
            "SELECT tenant, last_mutation_id FROM clients WHERE client_id = 'c1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((tenant.as_str(), last), ("dev", 7));
    let outcomes: u64 = db
        .query_row(
            "SELECT COUNT(*) FROM outcomes WHERE tenant = 'dev' AND client_id = 'c1' AND mutation_id = 7",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        outcomes, 1,
        "the recorded outcome is kept, now under its tenant"
    );
}

both!(the_same_origin_is_not_taken_from_the_host_header);
async fn the_same_origin_is_not_taken_from_the_host_header(db: Db) {
    let server = start(db, Limits::default()).await;
    let port = server.addr.port();
    // evil.example resolving to the server: its page's Origin and Host agree.
    let rebound = raw(
        server.addr,
        format!(
            "GET /v1/status HTTP/1.1\r\nHost: evil.example:{port}\r\nOrigin: http://evil.example:{port}\r\n\
             Authorization: Bearer {DEV}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert_eq!(body(&rebound)["code"], "forbidden_origin");
    // The server's own origin is still welcome.
    let own = raw(
        server.addr,
        format!(
            "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
             Authorization: Bearer {DEV}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(own.starts_with("HTTP/1.1 200"), "{own}");
}

both!(a_double_slash_path_is_not_redirected_to_another_site);
async fn a_double_slash_path_is_not_redirected_to_another_site(db: Db) {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("dir")).unwrap();
    std::fs::write(site.path().join("dir/index.html"), "hi").unwrap();
    let server = start_with(db, Limits::default(), Some(site.path().to_owned())).await;
    let answer = raw(
        server.addr,
        b"GET //dir HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let location = answer
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("location: ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("a redirect: {answer}"));
    assert_eq!(location, "/dir/");
}

both!(every_refusal_is_a_structured_error);
async fn every_refusal_is_a_structured_error(db: Db) {
    let server = start(
        db,
        Limits {
            max_frame_bytes: 1_000,
            ..Limits::default()
        },
    )
    .await;
    let request = |head: &str, body: &[u8]| {
        let mut bytes = format!(
            "{head}\r\nHost: x\r\nAuthorization: Bearer {DEV}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    };
    let cases: [(&str, &[u8], &str, &str); 6] = [
        (
            "POST /v1/hello HTTP/1.1",
            &[b'x'; 2_000],
            "413",
            "too_large",
        ),
        (
            "POST /v1/hello HTTP/1.1",
            b"{\"type\":\"\xff\"}",
            "400",
            "bad_request",
        ),
        ("GET /v1/nothing HTTP/1.1", b"", "404", "unknown_endpoint"),
        ("GET /v1/push HTTP/1.1", b"", "405", "method_not_allowed"),
        (
            "GET /v1/status?limit=many HTTP/1.1",
            b"",
            "400",
            "bad_request",
        ),
        ("GET /v1/sync HTTP/1.1", b"", "400", "bad_request"),
    ];
    for (head, payload, status, code) in cases {
        let answer = raw(server.addr, &request(head, payload), Duration::from_secs(5)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{head}: {answer}"
        );
        assert_eq!(body(&answer)["code"], code, "{head}");
    }
}

/// The next text frame, whole (skipping pings).
async fn next_text(ws: &mut Socket) -> String {
    use futures_util::StreamExt;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time");
        match frame.expect("open").expect("a frame") {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}
