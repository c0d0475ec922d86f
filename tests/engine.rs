//! The engine in real Chromium against the real sync server (started by `scripts/test.sh`):
//! sync between engines, tombstones, reloads, ordering, conflicts, status, transports.
#![cfg(target_arch = "wasm32")]

mod support;

use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use support::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn an_insert_on_one_engine_appears_on_another() {
    let tenant = unique("t");
    let a = open(&config(&tenant, json!({}))).await;
    let b = open(&config(&tenant, json!({}))).await;
    let tx = insert(
        &a,
        json!({ "_id": "1", "title": "Task", "completed": false }),
    )
    .await;
    assert_eq!(
        get(&a, "todos", "1")["title"],
        "Task",
        "visible locally at once"
    );
    let done = settled(&tx).await.unwrap();
    assert_eq!(done["state"], "completed");
    until("B has the document", || {
        get(&b, "todos", "1")["title"] == "Task"
    })
    .await;
    let (head, docs) = server_state(&tenant).await;
    assert_eq!((head, docs.len()), (1, 1));
    a.destroy();
    b.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_soft_delete_syncs_as_a_tombstone_and_hides_the_document() {
    let tenant = unique("t");
    let a = open(&config(&tenant, json!({}))).await;
    let b = open(&config(&tenant, json!({}))).await;
    insert(&a, json!({ "_id": "1", "title": "x" })).await;
    until("B has it", || !get(&b, "todos", "1").is_null()).await;
    let tx = wait(todos(&a).delete("1".into(), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert!(get(&a, "todos", "1").is_null(), "hidden at once");
    settled(&tx).await.unwrap();
    until("B hides it", || get(&b, "todos", "1").is_null()).await;
    assert_eq!(
        json(&todos(&b).find(JsValue::UNDEFINED).unwrap()),
        json!([])
    );
    let with_deleted = json(
        &todos(&b)
            .find(js(&json!({ "includeDeleted": true })))
            .unwrap(),
    );
    assert_eq!(
        with_deleted,
        json!([{ "_id": "1", "title": "x", "_deleted": true }])
    );
    assert_eq!(todos(&b).count(JsValue::UNDEFINED).unwrap(), 0);
    let (_, docs) = server_state(&tenant).await;
    assert_eq!(docs[0]["deleted"], true);
    a.destroy();
    b.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn hard_delete_removes_the_local_copy_for_good() {
    let tenant = unique("t");
    let config = config(&tenant, json!({}));
    let a = open(&config).await;
    settled(&insert(&a, json!({ "_id": "1", "title": "x" })).await)
        .await
        .unwrap();
    // Storage idle (no write under way): the removal starts a write of its own.
    sleep(200).await;
    wait(todos(&a).hard_delete("1".into())).await.unwrap();
    assert!(get(&a, "todos", "1").is_null());
    a.destroy();
    let reopened = open(&config).await;
    assert!(
        get(&reopened, "todos", "1").is_null(),
        "gone after a reload"
    );
    assert_eq!(
        server_state(&tenant).await.1.len(),
        1,
        "the server keeps it"
    );
    reopened.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn writes_made_while_offline_sync_after_reconnecting() {
    let tenant = unique("t");
    let a = open(&config(&tenant, json!({ "autoStart": false }))).await;
    let b = open(&config(&tenant, json!({}))).await;
    assert_eq!(json(&a.get_status().value().unwrap()), "offline");
    let tx = insert(&a, json!({ "_id": "1", "title": "offline" })).await;
    assert_eq!(prop(&tx, "state"), "pending");
    sleep(200).await;
    assert!(get(&b, "todos", "1").is_null());
    wait(a.start()).await.unwrap();
    settled(&tx).await.unwrap();
    until("B has it", || get(&b, "todos", "1")["title"] == "offline").await;
    a.destroy();
    b.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_reload_mid_transaction_completes_it_exactly_once() {
    let tenant = unique("t");
    // Interrupted twice: once before sending, once with the push on the wire.
    for auto_start in [false, true] {
        let config = config(&tenant, json!({ "autoStart": auto_start }));
        let a = open(&config).await;
        let prefix = if auto_start { "wire" } else { "local" };
        let body = Closure::<dyn Fn(JsValue)>::new(move |t: JsValue| {
            let todos = call(&t, "collection", &["todos".into()]);
            for i in 0..3 {
                call(
                    &todos,
                    "insert",
                    &[js(&json!({ "_id": format!("{prefix}-{i}"), "n": i }))],
                );
            }
        });
        let tx = wait(a.transaction(
            body.as_ref().unchecked_ref::<js_sys::Function>().clone(),
            JsValue::UNDEFINED,
        ))
        .await
        .unwrap();
        if auto_start {
            until("the push is on the wire", || {
                json(&prop(&tx, "transaction"))["attempts"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            })
            .await;
        }
        a.destroy();
        let again = open(&config).await;
        if !auto_start {
            wait(again.start()).await.unwrap();
        }
        wait(again.push()).await.unwrap();
        let txs = json(&again.transactions(JsValue::UNDEFINED).unwrap());
        assert!(
            txs.as_array()
                .unwrap()
                .iter()
                .all(|t| t["state"] == "completed"),
            "{txs}"
        );
        again.destroy();
    }
    let (head, docs) = server_state(&tenant).await;
    assert_eq!(docs.len(), 6);
    assert_eq!(head, 6, "six mutations, each applied once");
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_rejected_transaction_fails_the_ones_queued_behind_it() {
    let tenant = unique("t");
    let a = open(&config(&tenant, json!({}))).await;
    // Over the server's 256 KiB document limit: rejected, never retried.
    let big = "x".repeat(300 * 1024);
    // Both written before either is awaited: the second is queued behind the first before
    // the server can answer it.
    let first = todos(&a).insert(js(&json!({ "_id": "1", "blob": big })), JsValue::UNDEFINED);
    let second = todos(&a).update("1".into(), js(&json!({ "done": true })), JsValue::UNDEFINED);
    let (first, second) = (wait(first).await.unwrap(), wait(second).await.unwrap());
    let behind = json(&prop(&second, "transaction"));
    assert_eq!(behind["state"], "queued", "{behind}");
    assert_eq!(
        behind["queuedBehind"],
        json!([prop(&first, "id").as_f64().unwrap() as u64])
    );
    let error = settled(&first).await.unwrap_err();
    assert!(
        message(&error).contains("larger than the limit"),
        "{}",
        message(&error)
    );
    assert_eq!(code(&error), "too_large", "the server's code");
    assert_eq!(prop(&error, "retryable"), JsValue::FALSE);
    let cascade = settled(&second).await.unwrap_err();
    assert_eq!(
        prop(&cascade, "transactionId"),
        prop(&first, "id"),
        "names the cause"
    );
    assert_eq!(code(&cascade), "too_large", "and its code");
    assert!(get(&a, "todos", "1").is_null(), "both rolled back");
    let stats = json(&a.get_stats().value().unwrap());
    assert!(
        stats["lastError"]
            .as_str()
            .unwrap()
            .contains("larger than the limit"),
        "{stats}"
    );
    assert_eq!(stats["lastErrorCode"], "too_large", "{stats}");
    a.destroy();
}

/// A and B both change `title` of one document; B wrote last, while offline.
async fn conflict(extra: Value) -> (Value, ferrosync::SyncEngine) {
    let tenant = unique("t");
    let a = open(&config(&tenant, json!({}))).await;
    let b = open(&config(&tenant, extra)).await;
    settled(&insert(&a, json!({ "_id": "1", "title": "base", "a": 0, "b": 0 })).await)
        .await
        .unwrap();
    until("B has it", || !get(&b, "todos", "1").is_null()).await;
    wait(b.stop()).await.unwrap();
    let from_a = wait(todos(&a).update(
        "1".into(),
        js(&json!({ "title": "A", "a": 1 })),
        JsValue::UNDEFINED,
    ))
    .await
    .unwrap();
    settled(&from_a).await.unwrap();
    sleep(5).await;
    wait(todos(&b).update(
        "1".into(),
        js(&json!({ "title": "B", "b": 1 })),
        JsValue::UNDEFINED,
    ))
    .await
    .unwrap();
    wait(b.start()).await.unwrap();
    wait(b.force_sync()).await.unwrap();
    let (_, docs) = server_state(&tenant).await;
    a.destroy();
    (docs[0]["fields"].clone(), b)
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn each_conflict_strategy_decides_the_outcome() {
    let (server, b) = conflict(json!({ "conflictStrategy": "last-write-wins" })).await;
    assert_eq!(server["title"], "B", "the later write wins: {server}");
    b.destroy();

    let (server, b) = conflict(json!({ "conflictStrategy": "server-wins" })).await;
    assert_eq!(server["title"], "A", "{server}");
    until("B shows the server's document", || {
        get(&b, "todos", "1")["title"] == "A"
    })
    .await;
    assert_eq!(json(&b.get_stats().value().unwrap())["conflictCount"], 1);
    b.destroy();

    let (server, b) = conflict(json!({ "conflictStrategy": "client-wins" })).await;
    assert_eq!(
        (server["title"].clone(), server["b"].clone()),
        (json!("B"), json!(1)),
        "{server}"
    );
    b.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_custom_resolver_merges_or_parks_conflicts() {
    let tenant = unique("t");
    let parked = Rc::new(RefCell::new(false));
    let park = parked.clone();
    // A finished transaction of B's, settled (through the package's lazy `settled`) before the
    // conflicts: its handle and settled value, and their states as the resolver reads them
    // (the engine cannot be read there).
    let finished = Rc::new(RefCell::new(None::<(JsValue, JsValue)>));
    let read_inside = Rc::new(RefCell::new(Vec::<(Value, Value)>::new()));
    let (finished_seen, read) = (finished.clone(), read_inside.clone());
    // Merges titles; parks instead once `park` is set.
    let resolver = Closure::<dyn Fn(JsValue) -> JsValue>::new(move |input: JsValue| {
        let input = json(&input);
        if let Some((handle, value)) = &*finished_seen.borrow() {
            let view = json(&call(value, "_view", &[]));
            let snapshot = json(&prop(handle, "transaction"));
            read.borrow_mut()
                .push((view["state"].clone(), snapshot["state"].clone()));
        }
        if *park.borrow() {
            return JsValue::UNDEFINED;
        }
        let mut merged = input["remote"].clone();
        merged["title"] = json!(format!(
            "{}+{}",
            input["remote"]["title"].as_str().unwrap(),
            input["local"]["title"].as_str().unwrap()
        ));
        js(&merged)
    });
    let options = config(&tenant, json!({ "conflictStrategy": "custom" }));
    let engine_config = js(&options);
    js_sys::Reflect::set(
        &engine_config,
        &"conflictResolver".into(),
        resolver.as_ref(),
    )
    .unwrap();
    let a = open(&config(&tenant, json!({}))).await;
    let b = ferrosync::SyncEngine::open(engine_config).await.unwrap();
    settled(&insert(&a, json!({ "_id": "1", "title": "base" })).await)
        .await
        .unwrap();
    until("B has it", || !get(&b, "todos", "1").is_null()).await;
    let own = insert(&b, json!({ "_id": "2", "title": "B's own" })).await;
    let value = wait(call(&own, "_settledLazily", &[]).unchecked_into())
        .await
        .unwrap();
    *finished.borrow_mut() = Some((own, value));
    for (round, expected) in [(1, "A1+B1"), (2, "A2+B2")] {
        *parked.borrow_mut() = round == 2;
        wait(b.stop()).await.unwrap();
        let from_a = format!("A{round}");
        settled(
            &wait(todos(&a).update(
                "1".into(),
                js(&json!({ "title": from_a })),
                JsValue::UNDEFINED,
            ))
            .await
            .unwrap(),
        )
        .await
        .unwrap();
        wait(todos(&b).update(
            "1".into(),
            js(&json!({ "title": format!("B{round}") })),
            JsValue::UNDEFINED,
        ))
        .await
        .unwrap();
        wait(b.start()).await.unwrap();
        if round == 2 {
            until("the conflict is parked", || {
                json(&b.conflicts().unwrap()).as_array().unwrap().len() == 1
            })
            .await;
            let conflict = json(&b.conflicts().unwrap())[0].clone();
            assert_eq!(conflict["remote"]["title"], "A2");
            assert_eq!(conflict["local"]["title"], "B2");
            b.resolve_conflict(
                conflict["id"].as_str().unwrap().into(),
                js(&json!({ "title": "A2+B2" })),
            )
            .unwrap();
        }
        wait(b.force_sync()).await.unwrap();
        let (_, docs) = server_state(&tenant).await;
        let doc = docs
            .iter()
            .find(|d| d["id"] == "1")
            .expect("the server has 1");
        assert_eq!(doc["fields"]["title"], expected, "the server has the merge");
    }
    assert_eq!(json(&b.conflicts().unwrap()), json!([]));
    let completed = (json!("completed"), json!("completed"));
    let read_inside = read_inside.borrow();
    assert!(
        !read_inside.is_empty() && read_inside.iter().all(|read| *read == completed),
        "a settled transaction, read inside the resolver (its value and its handle's \
         snapshot): {read_inside:?}"
    );
    a.destroy();
    b.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn status_and_stats_follow_sync() {
    let tenant = unique("t");
    let a = open(&config(&tenant, json!({ "autoStart": false }))).await;
    let statuses = Rc::new(RefCell::new(Vec::<Value>::new()));
    let seen = statuses.clone();
    let on_status =
        Closure::<dyn Fn(JsValue)>::new(move |s: JsValue| seen.borrow_mut().push(json(&s)));
    let subscription = a
        .get_status()
        .subscribe(
            on_status
                .as_ref()
                .unchecked_ref::<js_sys::Function>()
                .clone(),
        )
        .unwrap();
    let stats = Rc::new(RefCell::new(Vec::<Value>::new()));
    let seen = stats.clone();
    let on_stats =
        Closure::<dyn Fn(JsValue)>::new(move |s: JsValue| seen.borrow_mut().push(json(&s)));
    a.get_stats()
        .subscribe(
            on_stats
                .as_ref()
                .unchecked_ref::<js_sys::Function>()
                .clone(),
        )
        .unwrap();
    assert_eq!(
        *statuses.borrow(),
        vec![json!("offline")],
        "called at once with the value"
    );
    wait(a.start()).await.unwrap();
    until("idle", || statuses.borrow().last() == Some(&json!("idle"))).await;
    assert_eq!(
        statuses.borrow()[..3],
        [json!("offline"), json!("syncing"), json!("idle")]
    );
    settled(&insert(&a, json!({ "_id": "1" })).await)
        .await
        .unwrap();
    until("idle again", || {
        statuses.borrow().last() == Some(&json!("idle"))
    })
    .await;
    let last = stats.borrow().last().cloned().unwrap();
    assert_eq!(last["pushCount"], 1, "{last}");
    assert!(last["lastSyncAt"].as_u64().unwrap() > 0);
    wait(a.stop()).await.unwrap();
    assert_eq!(statuses.borrow().last(), Some(&json!("offline")));
    call(&subscription, "unsubscribe", &[]);
    let before = statuses.borrow().len();
    wait(a.start()).await.unwrap();
    sleep(300).await;
    assert_eq!(
        statuses.borrow().len(),
        before,
        "no calls after unsubscribe"
    );
    let log = json(
        &a.sync_log(js(&json!({ "syncType": "push", "status": "completed" })))
            .unwrap(),
    );
    assert_eq!(log[0]["syncedCount"], 1, "{log}");
    a.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn http_polling_pushes_and_pulls() {
    let tenant = unique("t");
    let polling = json!({ "serverUrl": format!("http://{}/v1", server()), "pullInterval": 200 });
    let a = open(&config(&tenant, polling.clone())).await;
    let b = open(&config(&tenant, json!({}))).await;
    settled(&insert(&a, json!({ "_id": "from-a" })).await)
        .await
        .unwrap();
    until("B (WebSocket) has A's write", || {
        !get(&b, "todos", "from-a").is_null()
    })
    .await;
    settled(&insert(&b, json!({ "_id": "from-b" })).await)
        .await
        .unwrap();
    until("A polls B's write", || {
        !get(&a, "todos", "from-b").is_null()
    })
    .await;
    let ws_url_polling = json!({ "useWebSocket": false, "pullInterval": 200 });
    let c = open(&config(&tenant, ws_url_polling)).await;
    until("C pulls both", || {
        !get(&c, "todos", "from-a").is_null() && !get(&c, "todos", "from-b").is_null()
    })
    .await;
    for engine in [a, b, c] {
        engine.destroy();
    }
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn push_only_and_pull_only_engines_sync_one_way() {
    let tenant = unique("t");
    let pusher = open(&config(&tenant, json!({ "direction": "push" }))).await;
    let puller = open(&config(&tenant, json!({ "direction": "pull" }))).await;
    let both = open(&config(&tenant, json!({}))).await;
    settled(&insert(&pusher, json!({ "_id": "pushed" })).await)
        .await
        .unwrap();
    until("the pushed write arrives", || {
        !get(&puller, "todos", "pushed").is_null()
    })
    .await;
    until("and reaches the full engine", || {
        !get(&both, "todos", "pushed").is_null()
    })
    .await;
    let local = insert(&puller, json!({ "_id": "kept-local" })).await;
    settled(&insert(&both, json!({ "_id": "from-both" })).await)
        .await
        .unwrap();
    until("the puller receives", || {
        !get(&puller, "todos", "from-both").is_null()
    })
    .await;
    sleep(300).await;
    assert!(
        get(&pusher, "todos", "from-both").is_null(),
        "a push-only engine receives nothing"
    );
    assert_eq!(
        prop(&local, "state"),
        "pending",
        "a pull-only engine sends nothing"
    );
    assert!(get(&both, "todos", "kept-local").is_null());
    for engine in [pusher, puller, both] {
        engine.destroy();
    }
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn bad_configs_are_rejected_with_the_option_named() {
    for (extra, expected) in [
        (json!({ "colour": "red" }), "unknown option `colour`"),
        (json!({ "serverUrl": "ftp://x" }), "`serverUrl`"),
        (json!({ "batchSize": 0 }), "`batchSize`"),
        (
            json!({ "conflictStrategy": "custom" }),
            "`conflictResolver`",
        ),
    ] {
        let error = ferrosync::SyncEngine::open(js(&config("t", extra)))
            .await
            .err()
            .expect("refused");
        assert!(message(&error).contains(expected), "{}", message(&error));
        assert_eq!(code(&error), "invalid_config");
    }
    let mut bad = js(&config("t", json!({})));
    js_sys::Reflect::set(&bad, &"conflictResolver".into(), &"not a function".into()).unwrap();
    let error = ferrosync::SyncEngine::open(bad.clone())
        .await
        .err()
        .unwrap();
    assert!(message(&error).contains("must be a function"));
    assert_eq!(code(&error), "invalid_config");
    bad = JsValue::from(5);
    assert!(ferrosync::SyncEngine::open(bad).await.is_err());
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn local_only_collections_persist_without_syncing() {
    let tenant = unique("t");
    let config = config(&tenant, json!({}));
    let a = open(&config).await;
    let cache = a.collection("cache".into()).unwrap();
    let tx = wait(cache.insert(js(&json!({ "_id": "k", "v": 1 })), JsValue::UNDEFINED))
        .await
        .unwrap();
    assert_eq!(settled(&tx).await.unwrap()["state"], "completed");
    a.destroy();
    let again = open(&config).await;
    assert_eq!(get(&again, "cache", "k")["v"], 1, "restored from IndexedDB");
    assert_eq!(server_state(&tenant).await.0, 0, "never sent");
    again.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_transaction_body_writing_one_collection_gets_one_object_for_it() {
    let a = open(&config(&unique("t"), json!({}))).await;
    let seen: Rc<RefCell<Vec<JsValue>>> = Rc::default();
    let kept = seen.clone();
    let body = Closure::<dyn Fn(JsValue)>::new(move |t: JsValue| {
        let first = call(&t, "collection", &["cache".into()]);
        let again = call(&t, "collection", &["cache".into()]);
        call(&first, "insert", &[js(&json!({ "_id": "a" }))]);
        // An app may free it: the next call gets a new one, which still writes.
        call(&first, "free", &[]);
        let fresh = call(&t, "collection", &["cache".into()]);
        call(&fresh, "insert", &[js(&json!({ "_id": "b" }))]);
        kept.borrow_mut().extend([first, again, fresh]);
    });
    let tx = wait(a.transaction(
        body.as_ref().unchecked_ref::<js_sys::Function>().clone(),
        JsValue::UNDEFINED,
    ))
    .await
    .unwrap();
    assert_eq!(settled(&tx).await.unwrap()["state"], "completed");
    let seen = seen.borrow();
    assert!(
        seen[0] == seen[1],
        "the same object for the same collection"
    );
    assert!(seen[2] != seen[0], "a new one once the first was freed");
    let present = |id: &str| get(&a, "cache", id).is_object();
    assert!(present("a") && present("b"), "both writes committed");
    a.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_refused_token_is_reported_as_the_last_error() {
    let mut options = config(&unique("t"), json!({}));
    options["authToken"] = json!("not-a-valid-token");
    let engine = open(&options).await;
    until("the refusal reaches lastError", || {
        json(&engine.get_stats().value().unwrap())["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("unauthorized"))
    })
    .await;
    assert_eq!(
        json(&engine.get_stats().value().unwrap())["lastErrorCode"],
        "unauthorized"
    );
    assert_eq!(json(&engine.get_status().value().unwrap()), "offline");
    engine.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_query_subscription_follows_remote_writes_and_rollbacks() {
    let tenant = unique("t");
    let indexed =
        json!({ "collections": [{ "name": "todos", "indexes": ["done", ["done", "title"]] }] });
    let a = open(&config(&tenant, indexed)).await;
    let b = open(&config(&tenant, json!({}))).await;
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let sink = seen.clone();
    let on_change = Closure::<dyn Fn(JsValue)>::new(move |changes: JsValue| {
        for change in json(&changes).as_array().unwrap() {
            let (kind, id) = (&change["type"], &change["id"]);
            sink.borrow_mut().push(format!(
                "{} {}",
                kind.as_str().unwrap(),
                id.as_str().unwrap()
            ));
        }
    });
    let query = json!({ "where": { "done": false }, "sort": "title" });
    let stop = todos(&a)
        .subscribe(js(&query), on_change.as_ref().clone())
        .unwrap();
    // A remote write enters the results.
    insert(&b, json!({ "_id": "r", "title": "remote", "done": false })).await;
    until("A's query has B's write", || seen.borrow().len() == 1).await;
    // An optimistic write shows at once; rejected by the server, it rolls back out again.
    let big = "x".repeat(300 * 1024);
    let rejected = insert(
        &a,
        json!({ "_id": "big", "title": "a", "done": false, "blob": big }),
    )
    .await;
    assert_eq!(*seen.borrow(), ["added r", "added big"]);
    settled(&rejected).await.unwrap_err();
    until("the rollback leaves the results", || {
        seen.borrow().len() == 3
    })
    .await;
    assert_eq!(*seen.borrow(), ["added r", "added big", "removed big"]);
    let found = json(&todos(&a).find(js(&query)).unwrap());
    assert_eq!(
        found,
        json!([{ "_id": "r", "title": "remote", "done": false }])
    );
    assert_eq!(
        todos(&a)
            .count(js(&json!({ "where": { "done": false } })))
            .unwrap(),
        1
    );
    stop.unchecked_ref::<js_sys::Function>()
        .call0(&JsValue::UNDEFINED)
        .unwrap();
    insert(&b, json!({ "_id": "s", "title": "second", "done": false })).await;
    until("A has the next write", || !get(&a, "todos", "s").is_null()).await;
    assert_eq!(seen.borrow().len(), 3, "nothing after unsubscribing");
    a.destroy();
    b.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn documents_received_from_the_server_are_durable_once_flush_resolves() {
    let tenant = unique("t");
    let a = open(&config(&tenant, json!({}))).await;
    let b_config = config(&tenant, json!({}));
    let b = open(&b_config).await;
    settled(&insert(&a, json!({ "_id": "1", "title": "from a" })).await)
        .await
        .unwrap();
    until("B has it", || get(&b, "todos", "1")["title"] == "from a").await;
    wait(b.flush()).await.unwrap();
    b.destroy();
    // Reopened without syncing, B has the document from its own storage.
    let mut offline = b_config.clone();
    offline["autoStart"] = json!(false);
    let reopened = open(&offline).await;
    assert_eq!(get(&reopened, "todos", "1")["title"], "from a");
    wait(reopened.flush()).await.unwrap();
    a.destroy();
    reopened.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_finished_transactions_handle_answers_the_same_once_the_history_or_the_engine_is_gone() {
    // The history keeps everything (the handle reads it there), or nothing (the handle keeps
    // its own copy).
    for history in [json!({}), json!({ "transactionHistory": { "keep": 0 } })] {
        let a = open(&config(&unique("t"), history.clone())).await;
        let done = insert(&a, json!({ "_id": "1", "title": "kept" })).await;
        let big = "x".repeat(300 * 1024);
        let refused = insert(&a, json!({ "_id": "2", "blob": big })).await;
        let completed = settled(&done).await.unwrap();
        assert_eq!(completed["state"], "completed", "{history}");
        assert_eq!(json(&prop(&done, "transaction")), completed, "{history}");
        let failed = settled(&refused).await.unwrap_err();
        assert_eq!(code(&failed), "too_large", "{history}");
        let failed_view = json(&prop(&refused, "transaction"));
        assert_eq!(failed_view["state"], "failed", "{history}");
        a.destroy();
        assert_eq!(settled(&done).await.unwrap(), completed, "{history}");
        assert_eq!(json(&prop(&done, "transaction")), completed, "{history}");
        let again = settled(&refused).await.unwrap_err();
        assert_eq!(message(&again), message(&failed), "{history}");
        assert_eq!(
            json(&prop(&refused, "transaction")),
            failed_view,
            "{history}"
        );
    }
}
