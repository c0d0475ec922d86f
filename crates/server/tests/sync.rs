//! Protocol v1 against the real server: WebSocket and HTTP, SQLite on disk.

#[macro_use]
mod common;

use common::*;
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{ClientMessage, ServerMessage};
use ferrosync_server::limits::Limits;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

both!(healthz_answers_ok);
async fn healthz_answers_ok(db: Db) {
    let server = start(db, Limits::default()).await;
    let (status, body) = http("GET", server.addr, "/healthz", None, None, None).await;
    assert_eq!((status, body), (200, json!("ok")));
}

both!(a_ping_is_answered_with_pong_before_and_after_hello_and_never_logged);
async fn a_ping_is_answered_with_pong_before_and_after_hello_and_never_logged(db: Db) {
    let server = start(db, Limits::default()).await;
    let t = token("alice", "acme");
    let mut ws = connect(server.addr, &t).await.unwrap();
    // Before hello: the exact wire form.
    let pong = exchange_raw(&mut ws, r#"{"type":"ping"}"#.into()).await;
    assert_eq!(pong, json!({"type": "pong"}));
    let welcome = exchange(&mut ws, &hello("c1")).await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    assert_eq!(
        exchange(&mut ws, &ClientMessage::Ping).await,
        ServerMessage::Pong
    );
    // In a batch, the pong takes the ping's place among the answers.
    let batch = serde_json::to_string(&[
        ClientMessage::Ping,
        ClientMessage::Pull {
            seq: 1,
            cursor: 0,
            limit: 10,
        },
    ])
    .unwrap();
    let answers = exchange_raw(&mut ws, batch).await;
    assert_eq!(answers[0], json!({"type": "pong"}));
    assert_eq!(answers[1]["type"], "pull_page");
    // The sync log holds the pull only: pings are not sync runs.
    let (status, log) = http("GET", server.addr, "/v1/status", Some(&t), None, None).await;
    assert_eq!(status, 200);
    let types: Vec<&str> = log["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["sync_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["pull"]);
}

both!(a_ping_is_not_a_polling_request);
async fn a_ping_is_not_a_polling_request(db: Db) {
    let server = start(db, Limits::default()).await;
    let t = token("alice", "acme");
    let (status, _) = hello_over_http(server.addr, &t).await;
    assert_eq!(status, 200);
    let ping = serde_json::to_string(&ClientMessage::Ping).unwrap();
    for path in ["/v1/hello", "/v1/push", "/v1/pull"] {
        let (status, body) = http(
            "POST",
            server.addr,
            path,
            Some(&t),
            Some("poller"),
            Some(ping.clone()),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_request")),
            "{path}"
        );
    }
}

both!(a_push_is_acknowledged_and_pulled_back_over_websocket);
async fn a_push_is_acknowledged_and_pulled_back_over_websocket(db: Db) {
    let server = start(db, Limits::default()).await;
    let mut ws = session(server.addr, &token("alice", "acme"), "c1").await;
    let answer = exchange(
        &mut ws,
        &push(1, vec![put(1, "a", 0, 1), put(2, "b", 0, 2)]),
    )
    .await;
    assert_eq!(statuses(&answer), ["applied", "applied"]);
    let ServerMessage::PushResult { seq, range, .. } = answer else {
        unreachable!()
    };
    assert_eq!(seq, 1);
    assert_eq!(range.map(|r| (r.since, r.cursor)), Some((0, 2)));
    let page = exchange(
        &mut ws,
        &ClientMessage::Pull {
            seq: 2,
            cursor: 0,
            limit: 100,
        },
    )
    .await;
    let ServerMessage::PullPage {
        changes,
        cursor,
        has_more,
        ..
    } = page
    else {
        panic!("{page:?}")
    };
    assert_eq!(
        changes.iter().map(|c| c.doc.id()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!((cursor, has_more), (2, false));
    // A reconnect is welcomed with the last processed mutation id.
    let mut again = connect(server.addr, &token("alice", "acme")).await.unwrap();
    let welcome = exchange(&mut again, &hello("c1")).await;
    assert_eq!(
        welcome,
        ServerMessage::Welcome {
            client_id: "c1".into(),
            last_mutation_id: 2,
            head: 2
        }
    );
}

both!(pushes_sent_back_to_back_are_applied_and_answered_in_order);
async fn pushes_sent_back_to_back_are_applied_and_answered_in_order(db: Db) {
    let server = start(db, Limits::default()).await;
    let mut ws = session(server.addr, &token("alice", "acme"), "c1").await;
    // Six pushes of ten, sent without waiting for answers, as an engine keeps several in
    // flight; the third skips ids (a gap), so it is refused and the fourth continues from the
    // second. A pull follows in the same burst.
    let mut frames = Vec::new();
    let mut next = 1;
    for seq in 1..=6 {
        let first = if seq == 3 { next + 5 } else { next };
        let txs = (first..first + 10)
            .map(|id| put(id, &format!("d{id}"), 0, id as i64))
            .collect();
        if seq != 3 {
            next += 10;
        }
        frames.push(push(seq, txs));
    }
    frames.push(ClientMessage::Pull {
        seq: 7,
        cursor: 0,
        limit: 100,
    });
    for frame in &frames {
        let text = serde_json::to_string(frame).unwrap();
        ws.send(Message::Text(text.into())).await.unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < frames.len() {
        let frame = next_json(&mut ws).await;
        if !is_live(&frame) {
            answers.push(serde_json::from_value::<ServerMessage>(frame).unwrap());
        }
    }
    let mut ranges = Vec::new();
    for (seq, answer) in (1..).zip(&answers[..6]) {
        match answer {
            ServerMessage::Error { seq: s, error } => {
                assert_eq!((*s, error.code), (Some(3), ErrorCode::MutationGap));
            }
            ServerMessage::PushResult {
                seq: s,
                results,
                range,
            } => {
                assert_eq!(*s, seq);
                assert_eq!(statuses(answer), ["applied"; 10]);
                assert_eq!(results[0].id, 1 + 10 * (seq - 1 - u64::from(seq > 3)));
                ranges.push(range.map(|r| (r.since, r.cursor)).unwrap());
            }
            other => panic!("{other:?}"),
        }
    }
    // Applied in the order sent, each push's versions following the one before.
    assert_eq!(ranges, [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]);
    let ServerMessage::PullPage {
        seq,
        changes,
        cursor,
        ..
    } = &answers[6]
    else {
        panic!("{:?}", answers[6])
    };
    assert_eq!((*seq, changes.len(), *cursor), (7, 50, 50));
}

both!(commits_are_broadcast_to_the_tenants_other_connections_only);
async fn commits_are_broadcast_to_the_tenants_other_connections_only(db: Db) {
    let server = start(db, Limits::default()).await;
    let mut writer = session(server.addr, &token("alice", "acme"), "c1").await;
    let mut reader = session(server.addr, &token("bob", "acme"), "c2").await;
    let mut outsider = session(server.addr, &token("eve", "other"), "c3").await;
    exchange(&mut writer, &push(1, vec![put(1, "a", 0, 7)])).await;
    let live: ServerMessage = serde_json::from_value(next_json(&mut reader).await).unwrap();
    let ServerMessage::Changes { changes, range } = live else {
        panic!("{live:?}")
    };
    assert_eq!(changes[0].doc.fields().get("n").unwrap(), json!(7));
    assert_eq!((range.since, range.cursor), (0, 1));
    // The other tenant hears nothing: its next message is the answer to its own pull.
    let page = exchange(
        &mut outsider,
        &ClientMessage::Pull {
            seq: 9,
            cursor: 0,
            limit: 10,
        },
    )
    .await;
    assert!(
        matches!(page, ServerMessage::PullPage { ref changes, .. } if changes.is_empty()),
        "{page:?}"
    );
}

both!(a_re_sent_push_after_a_lost_answer_is_not_applied_again);
async fn a_re_sent_push_after_a_lost_answer_is_not_applied_again(db: Db) {
    let server = start(db, Limits::default()).await;
    let mut ws = session(server.addr, &token("alice", "acme"), "c1").await;
    let batch = push(1, vec![put(1, "a", 0, 1), put(2, "a", 0, 2)]);
    let first = exchange(&mut ws, &batch).await;
    // The connection drops before the answer is read; the client reconnects and re-sends.
    drop(ws);
    let mut ws = session(server.addr, &token("alice", "acme"), "c1").await;
    let again = exchange(&mut ws, &batch).await;
    let results = |m: &ServerMessage| match m {
        ServerMessage::PushResult { results, .. } => results.clone(),
        other => panic!("{other:?}"),
    };
    // Both applied: each replay carries `a` as stored, the state mutation 2 left.
    let (applied, replayed) = (results(&first), results(&again));
    assert_eq!(replayed.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
    for r in &replayed {
        assert_eq!(r.outcome, applied[1].outcome, "answered from the record");
    }
    assert!(
        matches!(again, ServerMessage::PushResult { range: None, .. }),
        "nothing committed"
    );
    let page = exchange(
        &mut ws,
        &ClientMessage::Pull {
            seq: 3,
            cursor: 0,
            limit: 100,
        },
    )
    .await;
    let ServerMessage::PullPage {
        changes, cursor, ..
    } = page
    else {
        panic!()
    };
    assert_eq!(
        (changes.len(), cursor),
        (1, 2),
        "one document, two versions, nothing more"
    );
    let gap = exchange(&mut ws, &push(4, vec![put(9, "b", 0, 1)])).await;
    assert!(
        matches!(gap, ServerMessage::Error { ref error, .. } if error.code == ErrorCode::MutationGap),
        "{gap:?}"
    );
}

both!(pulls_page_through_changes_over_http);
async fn pulls_page_through_changes_over_http(db: Db) {
    let server = start(db, Limits::default()).await;
    let t = token("alice", "acme");
    let (status, welcome) = hello_over_http(server.addr, &t).await;
    assert_eq!((status, welcome["type"].as_str()), (200, Some("welcome")));
    let txs = (1..=25)
        .map(|i| put(i, &format!("d{i:02}"), 0, i as i64))
        .collect();
    let body = serde_json::to_string(&push(1, txs)).unwrap();
    let (status, answer) = http(
        "POST",
        server.addr,
        "/v1/push",
        Some(&t),
        Some("poller"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"].as_array().unwrap().len(), 25);
    let (mut cursor, mut seen, mut pages) = (0, 0, 0);
    loop {
        let body = serde_json::to_string(&ClientMessage::Pull {
            seq: pages,
            cursor,
            limit: 10,
        })
        .unwrap();
        let (status, page) = http(
            "POST",
            server.addr,
            "/v1/pull",
            Some(&t),
            Some("poller"),
            Some(body),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen += page["changes"].as_array().unwrap().len();
        cursor = page["cursor"].as_u64().unwrap();
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!((pages, seen, cursor), (3, 25, 25));
    // Without hello, a polling client is told to say it first.
    let body = serde_json::to_string(&ClientMessage::Pull {
        seq: 1,
        cursor: 0,
        limit: 10,
    })
    .unwrap();
    let (status, refused) = http(
        "POST",
        server.addr,
        "/v1/pull",
        Some(&t),
        Some("stranger"),
        Some(body),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("hello_required"))
    );
}

both!(a_write_based_on_an_old_version_is_a_conflict_with_the_server_document);
async fn a_write_based_on_an_old_version_is_a_conflict_with_the_server_document(db: Db) {
    let server = start(db, Limits::default()).await;
    let mut alice = session(server.addr, &token("alice", "acme"), "c1").await;
    let mut bob = session(server.addr, &token("bob", "acme"), "c2").await;
    exchange(&mut alice, &push(1, vec![put(1, "a", 0, 1)])).await;
    let answer = exchange(&mut bob, &push(1, vec![put(1, "a", 0, 5)])).await;
    let ServerMessage::PushResult { results, .. } = &answer else {
        panic!("{answer:?}")
    };
    let outcome = serde_json::to_value(&results[0].outcome).unwrap();
    assert_eq!(outcome["status"], "conflict");
    assert_eq!(outcome["doc"]["fields"]["n"], 1);
    assert_eq!(outcome["doc"]["version"], 1);
}

both!(tenants_are_isolated_and_client_ids_bound_to_their_user);
async fn tenants_are_isolated_and_client_ids_bound_to_their_user(db: Db) {
    let server = start(db, Limits::default()).await;
    let mut alice = session(server.addr, &token("alice", "acme"), "c1").await;
    exchange(&mut alice, &push(1, vec![put(1, "secret", 0, 42)])).await;
    // Eve, in another tenant, cannot see Alice's document or write over it.
    let mut eve = session(server.addr, &token("eve", "evil"), "c9").await;
    let page = exchange(
        &mut eve,
        &ClientMessage::Pull {
            seq: 1,
            cursor: 0,
            limit: 100,
        },
    )
    .await;
    assert!(matches!(page, ServerMessage::PullPage { ref changes, .. } if changes.is_empty()));
    exchange(&mut eve, &push(2, vec![put(1, "secret", 1, 0)])).await;
    let page = exchange(
        &mut alice,
        &ClientMessage::Pull {
            seq: 2,
            cursor: 0,
            limit: 100,
        },
    )
    .await;
    let ServerMessage::PullPage { changes, .. } = page else {
        panic!()
    };
    assert_eq!(
        changes[0].doc.fields().get("n").unwrap(),
        json!(42),
        "Alice's document is untouched"
    );
    // Another user of Alice's tenant cannot take over her client id: refused at hello and at
    // push, 0 rows applied. (In another tenant, "c1" is another client: see hardening.rs.)
    let mut thief = connect(server.addr, &token("mallory", "acme"))
        .await
        .unwrap();
    let refused = exchange(&mut thief, &hello("c1")).await;
    assert!(
        matches!(refused, ServerMessage::Error { ref error, .. } if error.code == ErrorCode::Forbidden),
        "{refused:?}"
    );
    let (status, body) = http(
        "POST",
        server.addr,
        "/v1/push",
        Some(&token("mallory", "acme")),
        Some("c1"),
        Some(serde_json::to_string(&push(3, vec![put(2, "x", 0, 1)])).unwrap()),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("hello_required"))
    );
    let (_, status_log) = http(
        "GET",
        server.addr,
        "/v1/status?sync_type=push",
        Some(&token("alice", "acme")),
        None,
        None,
    )
    .await;
    assert_eq!(
        status_log["totals"]["push"]["synced"], 1,
        "only Alice's own write in her tenant"
    );
}

both!(bad_tokens_and_foreign_origins_are_refused_before_the_upgrade);
async fn bad_tokens_and_foreign_origins_are_refused_before_the_upgrade(db: Db) {
    let server = start(db, Limits::default()).await;
    let expired = ferrosync_server::auth::sign_hs256(
        &json!({"sub": "a", "tenant": "t", "exp": 1}),
        SECRET.as_bytes(),
    );
    let forged =
        ferrosync_server::auth::sign_hs256(&json!({"sub": "a", "tenant": "t"}), b"wrong secret");
    for bad in ["", "garbage", expired.as_str(), forged.as_str()] {
        let err = connect(server.addr, bad).await.expect_err("refused");
        assert!(err.to_string().contains("401"), "{bad:?}: {err}");
    }
    assert!(
        connect(server.addr, DEV).await.is_ok(),
        "the dev token works"
    );
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    for (origin, ok) in [("http://evil.example", false), ("http://app.example", true)] {
        let mut request = format!("ws://{}/v1/sync?token={DEV}", server.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        let result = tokio_tungstenite::connect_async(request).await;
        assert_eq!(result.is_ok(), ok, "{origin}");
        if let Err(e) = result {
            assert!(e.to_string().contains("403"), "{e}");
        }
    }
    let (status, body) = http("GET", server.addr, "/v1/status", None, None, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
}

both!(malformed_json_gets_a_structured_error_and_the_connection_stays_usable);
async fn malformed_json_gets_a_structured_error_and_the_connection_stays_usable(db: Db) {
    let server = start(db, Limits::default()).await;
    let mut ws = session(server.addr, DEV, "c1").await;
    for junk in ["{not json", r#"{"type": "teleport"}"#, "[]"] {
        let answer = exchange_raw(&mut ws, junk.into()).await;
        assert_eq!(answer["type"], "error", "{junk}");
        assert_eq!(answer["code"], "bad_request");
        assert_eq!(answer["retryable"], false);
    }
    let answer = exchange(&mut ws, &push(1, vec![put(1, "a", 0, 1)])).await;
    assert_eq!(statuses(&answer), ["applied"]);
    // Several messages in one frame get their answers in one frame, in order.
    let batch = serde_json::to_string(&[
        push(2, vec![put(2, "b", 0, 1)]),
        ClientMessage::Pull {
            seq: 3,
            cursor: 0,
            limit: 10,
        },
    ])
    .unwrap();
    let answers = exchange_raw(&mut ws, batch).await;
    assert_eq!(answers[0]["type"], "push_result");
    assert_eq!(answers[1]["changes"].as_array().unwrap().len(), 2);
    ws.close(None).await.unwrap();
}

both!(the_status_endpoint_lists_and_filters_sync_runs);
async fn the_status_endpoint_lists_and_filters_sync_runs(db: Db) {
    let server = start(db, Limits::default()).await;
    let t = token("alice", "acme");
    let mut ws = session(server.addr, &t, "c1").await;
    exchange(&mut ws, &push(1, vec![put(1, "a", 0, 1)])).await;
    exchange(&mut ws, &push(2, vec![put(5, "b", 0, 1)])).await; // a gap: a failed run
    exchange(
        &mut ws,
        &ClientMessage::Pull {
            seq: 3,
            cursor: 0,
            limit: 10,
        },
    )
    .await;
    let (status, all) = http("GET", server.addr, "/v1/status", Some(&t), None, None).await;
    assert_eq!(status, 200);
    let logs = all["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[0]["sync_type"], "pull", "newest first");
    assert_eq!(
        all["totals"]["push"],
        json!({"runs": 2, "failed": 1, "synced": 1, "errors": 0})
    );
    let (_, failed) = http(
        "GET",
        server.addr,
        "/v1/status?status=failed",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(failed["logs"].as_array().unwrap().len(), 1);
    assert!(failed["logs"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("mutation_gap"));
    let (_, pulls) = http(
        "GET",
        server.addr,
        "/v1/status?sync_type=pull&limit=1",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(pulls["logs"][0]["synced_count"], 1);
    let (_, other) = http(
        "GET",
        server.addr,
        "/v1/status?collection=notes",
        Some(&t),
        None,
        None,
    )
    .await;
    assert!(other["logs"].as_array().unwrap().is_empty());
    let (_, todos) = http(
        "GET",
        server.addr,
        "/v1/status?collection=todos",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(todos["logs"].as_array().unwrap().len(), 3);
    // A date range on each row's creation time.
    let created: Vec<u64> = logs
        .iter()
        .map(|l| l["created_at"].as_u64().unwrap())
        .collect();
    assert!(created.iter().all(|&at| at > 0), "{created:?}");
    let (newest, oldest) = (created[0], created[2]);
    let range = |from: u64, to: u64| format!("/v1/status?from={from}&to={to}");
    let (_, all_of_them) = http(
        "GET",
        server.addr,
        &range(oldest, newest),
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(all_of_them["logs"].as_array().unwrap().len(), 3);
    let (_, later) = http(
        "GET",
        server.addr,
        &range(newest + 1, u64::MAX),
        Some(&t),
        None,
        None,
    )
    .await;
    assert!(later["logs"].as_array().unwrap().is_empty());
    assert!(
        later["totals"].as_object().unwrap().is_empty(),
        "totals follow the range"
    );
    let (_, earlier) = http(
        "GET",
        server.addr,
        &range(0, oldest.saturating_sub(1)),
        Some(&t),
        None,
        None,
    )
    .await;
    assert!(earlier["logs"].as_array().unwrap().is_empty());
    let _ = ws.send(Message::Close(None)).await;
}

/// `POST /v1/hello` as the polling client `poller`.
async fn hello_over_http(addr: std::net::SocketAddr, token: &str) -> (u16, serde_json::Value) {
    let body = serde_json::to_string(&hello("poller")).unwrap();
    http("POST", addr, "/v1/hello", Some(token), None, Some(body)).await
}
