//! Every limit, enforced by the real server: frame size (1009), rate (1008), document size,
//! JSON depth, batch length, and the HTTP equivalents (413, 429).

#[macro_use]
mod common;

use common::*;
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{ClientMessage, ServerMessage};
use ferrosync_server::limits::Limits;
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn small() -> Limits {
    Limits {
        max_frame_bytes: 2_048,
        max_doc_bytes: 100,
        max_depth: 10,
        max_batch: 3,
        messages_per_second: 5,
        ..Limits::default()
    }
}

both!(an_oversized_frame_closes_the_connection_with_1009);
async fn an_oversized_frame_closes_the_connection_with_1009(db: Db) {
    let server = start(db, small()).await;
    let mut ws = session(server.addr, DEV, "c1").await;
    ws.send(Message::Text(
        format!(
            r#"{{"type":"pull","seq":1,"cursor":0,"limit":1,"pad":"{}"}}"#,
            "x".repeat(3_000)
        )
        .into(),
    ))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, 1009);
}

both!(too_many_messages_close_the_connection_with_1008);
async fn too_many_messages_close_the_connection_with_1008(db: Db) {
    let server = start(db, small()).await;
    let mut ws = session(server.addr, DEV, "c1").await;
    let pulls: Vec<_> = (0..10)
        .map(|seq| ClientMessage::Pull {
            seq,
            cursor: 0,
            limit: 1,
        })
        .collect();
    ws.send(Message::Text(serde_json::to_string(&pulls).unwrap().into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 1008);
}

both!(oversized_documents_deep_json_and_long_batches_are_refused_with_structured_errors);
async fn oversized_documents_deep_json_and_long_batches_are_refused_with_structured_errors(db: Db) {
    let server = start(db, small()).await;
    let mut ws = session(server.addr, DEV, "c1").await;
    let mut big = put(1, "big", 0, 0);
    if let ferrosync_core::mutation::Op::Put { fields } = &mut big.mutations[0].op {
        fields.insert("text", json!("y".repeat(200)));
    }
    let answer = exchange(&mut ws, &push(1, vec![big])).await;
    let ServerMessage::PushResult { results, .. } = &answer else {
        panic!("{answer:?}")
    };
    let outcome = serde_json::to_value(&results[0].outcome).unwrap();
    assert_eq!(
        (
            outcome["status"].as_str(),
            outcome["error"]["code"].as_str()
        ),
        (Some("rejected"), Some("too_large"))
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await; // stay under the rate limit
    let deep = format!("{}{}", "[".repeat(20), "]".repeat(20));
    let answer = exchange_raw(&mut ws, deep).await;
    assert_eq!(answer["code"], "too_deep");
    let long = push(2, (2..6).map(|i| put(i, &format!("d{i}"), 0, 1)).collect());
    let answer = exchange(&mut ws, &long).await;
    assert!(
        matches!(answer, ServerMessage::Error { ref error, seq: Some(2) } if error.code == ErrorCode::BatchTooLarge),
        "{answer:?}"
    );
    // The connection is still usable, and nothing of the refused push was applied.
    let page = exchange(
        &mut ws,
        &ClientMessage::Pull {
            seq: 3,
            cursor: 0,
            limit: 3,
        },
    )
    .await;
    assert!(
        matches!(page, ServerMessage::PullPage { ref changes, .. } if changes.is_empty()),
        "{page:?}"
    );
}

both!(http_bodies_over_the_limit_get_413_and_floods_get_429);
async fn http_bodies_over_the_limit_get_413_and_floods_get_429(db: Db) {
    let server = start(db, small()).await;
    let hello = serde_json::to_string(&hello("c1")).unwrap();
    assert_eq!(
        http(
            "POST",
            server.addr,
            "/v1/hello",
            Some(DEV),
            None,
            Some(hello)
        )
        .await
        .0,
        200
    );
    let body = format!(
        r#"{{"type":"pull","seq":1,"cursor":0,"limit":1,"pad":"{}"}}"#,
        "x".repeat(3_000)
    );
    let (status, _) = http(
        "POST",
        server.addr,
        "/v1/pull",
        Some(DEV),
        Some("c1"),
        Some(body),
    )
    .await;
    assert_eq!(status, 413);
    let pull = serde_json::to_string(&ClientMessage::Pull {
        seq: 1,
        cursor: 0,
        limit: 1,
    })
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            http(
                "POST",
                server.addr,
                "/v1/pull",
                Some(DEV),
                Some("c1"),
                Some(pull.clone()),
            )
            .await,
        );
    }
    let limited = statuses
        .iter()
        .find(|(s, _)| *s == 429)
        .expect("some requests are refused");
    assert_eq!(limited.1["code"], "rate_limited");
    assert_eq!(limited.1["retryable"], true);
}
