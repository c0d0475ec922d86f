//! Several engines on one database, as tabs of one app open it: the first leads, the others
//! follow through the leader; when the leader goes, a follower takes over and finishes every
//! write exactly once. Real Web Locks, BroadcastChannel, IndexedDB and server.
#![cfg(target_arch = "wasm32")]

mod support;

use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use support::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::BroadcastChannel;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_second_engine_on_one_database_follows_the_first() {
    let tenant = unique("t");
    let config = config(&tenant, json!({}));
    let leader = open(&config).await;
    settled(&insert(&leader, json!({ "_id": "before", "n": 1 })).await)
        .await
        .unwrap();
    let follower = open(&config).await;
    assert_eq!(
        follower.client_id().unwrap(),
        leader.client_id().unwrap(),
        "one client"
    );
    assert_eq!(
        get(&follower, "todos", "before")["n"],
        1,
        "snapshot at open"
    );

    let seen = Rc::new(RefCell::new(Vec::<Value>::new()));
    let sink = seen.clone();
    let on_change =
        Closure::<dyn Fn(JsValue)>::new(move |c: JsValue| sink.borrow_mut().push(json(&c)));
    todos(&follower)
        .subscribe(on_change.as_ref().clone(), JsValue::UNDEFINED)
        .unwrap();

    let pending =
        todos(&follower).insert(js(&json!({ "_id": "from-follower" })), JsValue::UNDEFINED);
    assert!(
        !get(&follower, "todos", "from-follower").is_null(),
        "visible at once"
    );
    let tx = wait(pending).await.unwrap();
    assert!(
        !get(&leader, "todos", "from-follower").is_null(),
        "the leader has it"
    );
    assert_eq!(settled(&tx).await.unwrap()["state"], "completed");

    settled(&insert(&leader, json!({ "_id": "from-leader" })).await)
        .await
        .unwrap();
    until("the follower sees the leader's write", || {
        !get(&follower, "todos", "from-leader").is_null()
    })
    .await;
    assert!(seen
        .borrow()
        .iter()
        .flat_map(|batch| batch.as_array().unwrap().iter())
        .any(|c| c["id"] == "from-leader"));
    let refused =
        wait(todos(&follower).insert(js(&json!({ "_id": "before" })), JsValue::UNDEFINED)).await;
    assert!(message(&refused.unwrap_err()).contains("already exists"));
    until("the follower mirrors idle status", || {
        json(&follower.get_status().value().unwrap()) == "idle"
    })
    .await;
    let txs = json(&follower.transactions(JsValue::UNDEFINED).unwrap());
    assert!(txs.as_array().unwrap().len() >= 3, "{txs}");
    assert_eq!(server_state(&tenant).await.0, 3);
    follower.destroy();
    leader.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn when_the_leader_closes_a_follower_takes_over_and_finishes_every_write_once() {
    let tenant = unique("t");
    // Offline: nothing is sent until the follower has taken over and starts syncing.
    let config = config(&tenant, json!({ "autoStart": false }));
    let leader = open(&config).await;
    let follower = open(&config).await;
    let mut handles = Vec::new();
    for i in 0..3 {
        handles.push(insert(&follower, json!({ "_id": format!("f{i}") })).await);
    }
    for i in 0..2 {
        insert(&leader, json!({ "_id": format!("l{i}") })).await;
    }
    // A write the leader never answers: it is gone before reading it.
    let unanswered = todos(&follower).insert(js(&json!({ "_id": "f-last" })), JsValue::UNDEFINED);
    leader.destroy();
    handles.push(wait(unanswered).await.expect("finished by the new leader"));
    for id in ["f0", "f1", "f2", "f-last", "l0", "l1"] {
        assert!(!get(&follower, "todos", id).is_null(), "{id} survived");
    }
    wait(follower.start()).await.unwrap();
    wait(follower.push()).await.unwrap();
    for handle in &handles {
        assert_eq!(settled(handle).await.unwrap()["state"], "completed");
    }
    let (head, docs) = server_state(&tenant).await;
    assert_eq!((head, docs.len()), (6, 6), "every write applied once");
    follower.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_commit_request_sent_twice_or_to_a_new_leader_creates_one_transaction() {
    let tenant = unique("t");
    let config = config(&tenant, json!({ "autoStart": false }));
    let name = config["name"].as_str().unwrap().to_owned();
    let leader = open(&config).await;
    // Posing as a follower tab: the same request twice.
    let channel = BroadcastChannel::new(&format!("ferrosync:{name}")).unwrap();
    let replies = Rc::new(RefCell::new(Vec::<Value>::new()));
    let sink = replies.clone();
    let on_message =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let message: Value = serde_json::from_str(&e.data().as_string().unwrap()).unwrap();
            if message["type"] == "reply" {
                sink.borrow_mut().push(message);
            }
        });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let request = json!({
        "type": "request", "tab": "posing", "seq": 1,
        "request": { "kind": "commit", "requests": [
            { "collection": "todos", "doc_id": "once", "op": { "type": "insert", "fields": { "n": 1 } } }
        ] }
    })
    .to_string();
    let durable = |replies: &[Value]| -> Vec<Value> {
        replies
            .iter()
            .filter(|r| r["result"]["Ok"]["kind"] == "durable")
            .map(|r| r["result"]["Ok"]["tx"].clone())
            .collect()
    };
    channel.post_message(&request.clone().into()).unwrap();
    until("durable", || durable(&replies.borrow()).len() == 1).await;
    channel.post_message(&request.clone().into()).unwrap();
    until("answered again", || durable(&replies.borrow()).len() == 2).await;
    leader.destroy();
    // The next leader knows the request from IndexedDB.
    let next = open(&config).await;
    channel.post_message(&request.into()).unwrap();
    until("answered by the new leader", || {
        durable(&replies.borrow()).len() == 3
    })
    .await;
    let ids = durable(&replies.borrow());
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one transaction: {ids:?}"
    );
    assert_eq!(
        json(&next.transactions(JsValue::UNDEFINED).unwrap())
            .as_array()
            .unwrap()
            .len(),
        1
    );
    wait(next.start()).await.unwrap();
    wait(next.push()).await.unwrap();
    assert_eq!(server_state(&tenant).await.0, 1);
    channel.close();
    next.destroy();
}

#[wasm_bindgen_test]
async fn a_request_the_leader_refuses_rejects_in_the_follower_with_the_same_code() {
    // No server: the leader refuses to sync, and says why.
    let config = json!({
        "name": unique("db"),
        "collections": [{ "name": "todos" }],
        "requestPersistence": false,
    });
    let leader = open(&config).await;
    let follower = open(&config).await;
    let refused = wait(follower.force_sync()).await.unwrap_err();
    assert_eq!(code(&refused), "invalid_state", "{}", message(&refused));
    assert!(
        message(&refused).contains("no serverUrl"),
        "{}",
        message(&refused)
    );
    follower.destroy();
    leader.destroy();
}
