//! What IndexedDB holds, in real Chromium, with no server: an insert is stored once its promise
//! resolves; a database whose log was compacted into pages and history pages, and written to
//! since, reopens with every document and transaction; a stored value that is not bytes, or
//! bytes that do not decode, is an error at open that says so, never a value skipped.
#![cfg(target_arch = "wasm32")]

mod support;

use ferrosync::SyncEngine;
use serde_json::{json, Value};
use support::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{IdbDatabase, IdbTransactionMode};

wasm_bindgen_test_configure!(run_in_browser);

/// The object stores of the engine's schema (version 3), the first schema's included.
const STORES: [&str; 8] = [
    "log",
    "pages",
    "history",
    "origins",
    "documents",
    "transactions",
    "sync_log",
    "meta",
];

/// A local-only engine's options for database `name`.
fn options(name: &str) -> Value {
    json!({
        "name": name,
        "collections": [{ "name": "notes", "sync": false }],
        "requestPersistence": false,
    })
}

/// Opens database `name` as it is (any version), or creates it at version 3 with the engine's
/// stores.
async fn connect(name: &str) -> Result<IdbDatabase, JsValue> {
    let factory = web_sys::window().unwrap().indexed_db()?.unwrap();
    let request = factory.open_with_u32(name, 3)?;
    let on_upgrade = {
        let request = request.clone();
        Closure::<dyn FnMut()>::new(move || {
            let db: IdbDatabase = request.result().unwrap().unchecked_into();
            for store in STORES {
                db.create_object_store(store).unwrap();
            }
        })
    };
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    Ok(idb_result(&request).await?.unchecked_into())
}

/// How many values the store `store` of database `name` holds.
async fn stored(name: &str, store: &str) -> u32 {
    let db = connect(name).await.unwrap();
    let read = db.transaction_with_str(store).unwrap();
    let count = idb_result(&read.object_store(store).unwrap().count().unwrap())
        .await
        .unwrap();
    db.close();
    count.as_f64().unwrap() as u32
}

/// Inserts notes `from..to`, each its own transaction, each awaited until durable.
async fn insert_notes(engine: &SyncEngine, from: u32, to: u32) {
    let notes = engine.collection("notes".into()).unwrap();
    for i in from..to {
        let doc = json!({ "_id": format!("n{i}"), "body": format!("note {i}") });
        wait(notes.insert(js(&doc), JsValue::UNDEFINED))
            .await
            .expect("the insert is durable");
    }
}

/// Whether a value of the `log` or `pages` store of database `name` holds `text` (documents'
/// fields are stored as their JSON text), read through a connection of its own.
async fn holds(name: &str, text: &str) -> bool {
    let db = connect(name).await.unwrap();
    let read = db
        .transaction_with_str_sequence(&js_sys::Array::of2(&"log".into(), &"pages".into()))
        .unwrap();
    let mut found = false;
    for store in ["log", "pages"] {
        let values = idb_result(&read.object_store(store).unwrap().get_all().unwrap())
            .await
            .unwrap();
        found |= js_sys::Array::from(&values).iter().any(|value| {
            let bytes = js_sys::Uint8Array::new(&value).to_vec();
            bytes.windows(text.len()).any(|w| w == text.as_bytes())
        });
    }
    db.close();
    found
}

#[wasm_bindgen_test]
async fn an_insert_is_in_indexeddb_once_its_promise_resolves() {
    let name = unique("storage");
    let engine = open(&options(&name)).await;
    let notes = engine.collection("notes".into()).unwrap();
    for i in 0..20 {
        let body = format!("durable note {i}");
        // As the fields' JSON text holds it, quotes included (so note 1 is not found in 10).
        let stored_text = format!("\"{body}\"");
        assert!(
            !holds(&name, &stored_text).await,
            "insert {i} not yet stored"
        );
        let doc = json!({ "_id": format!("n{i}"), "body": body });
        wait(notes.insert(js(&doc), JsValue::UNDEFINED))
            .await
            .expect("the insert is durable");
        assert!(
            holds(&name, &stored_text).await,
            "insert {i} stored when it resolved"
        );
    }
    engine.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn documents_received_live_reach_indexeddb_without_a_flush() {
    let tenant = unique("t");
    let writer = open(&config(&tenant, json!({}))).await;
    let reader_config = config(&tenant, json!({}));
    let reader = open(&reader_config).await;
    let title = unique("received live");
    insert(&writer, json!({ "_id": "live", "title": title })).await;
    until("the reader has it", || {
        get(&reader, "todos", "live")["title"] == title
    })
    .await;
    // Nothing waits on a received change's write, so nothing here asks for it: the engine
    // writes it on its own, a while later, when the page is idle.
    let name = reader_config["name"].as_str().unwrap();
    let mut stored = false;
    for _ in 0..200 {
        stored = holds(name, &title).await;
        if stored {
            break;
        }
        sleep(50).await;
    }
    assert!(stored, "the received document is in IndexedDB");
    writer.destroy();
    reader.destroy();
}

#[wasm_bindgen_test]
async fn a_compacted_database_written_to_since_reopens_with_everything() {
    let name = unique("storage");
    let engine = open(&options(&name)).await;
    // More records than the log keeps: compaction folds them into pages and history pages
    // once storage is idle.
    insert_notes(&engine, 0, 1_100).await;
    for _ in 0..500 {
        if stored(&name, "pages").await > 0 && stored(&name, "history").await > 0 {
            break;
        }
        sleep(20).await;
    }
    assert!(stored(&name, "pages").await > 0, "pages written");
    assert!(stored(&name, "history").await > 0, "history pages written");
    insert_notes(&engine, 1_100, 1_110).await;
    assert!(stored(&name, "log").await > 0, "records over the pages");
    engine.destroy();

    let reopened = open(&options(&name)).await;
    let notes = reopened.collection("notes".into()).unwrap();
    assert_eq!(notes.count(JsValue::UNDEFINED).unwrap(), 1_110);
    for i in [0, 550, 1_099, 1_100, 1_109] {
        assert_eq!(
            get(&reopened, "notes", &format!("n{i}"))["body"],
            format!("note {i}")
        );
    }
    let history = json(&reopened.transactions(JsValue::UNDEFINED).unwrap());
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 1_110, "every transaction in the history");
    assert!(history.iter().all(|t| t["state"] == "completed"));
    reopened.destroy();
}

#[wasm_bindgen_test]
async fn a_stored_value_that_is_not_bytes_or_does_not_decode_fails_the_open() {
    let junk = js_sys::Uint8Array::from(&b"junk"[..]);
    let page_key = js_sys::Array::of2(&"notes".into(), &0.into());
    let cases: [(&str, JsValue, JsValue, &str, &str); 4] = [
        (
            "log",
            1.into(),
            "text".into(),
            "a stored record is not bytes",
            "storage_failed",
        ),
        (
            "log",
            1.into(),
            junk.clone().into(),
            "a stored log record is damaged",
            "corrupt_storage",
        ),
        (
            "pages",
            page_key.into(),
            junk.clone().into(),
            "a stored page is damaged",
            "corrupt_storage",
        ),
        (
            "history",
            0.into(),
            junk.into(),
            "a stored history page is damaged",
            "corrupt_storage",
        ),
    ];
    for (store, key, value, says, error_code) in cases {
        let name = unique("damaged");
        let db = connect(&name).await.unwrap();
        let write = db
            .transaction_with_str_and_mode(store, IdbTransactionMode::Readwrite)
            .unwrap();
        write
            .object_store(store)
            .unwrap()
            .put_with_key(&value, &key)
            .unwrap();
        committed(&write).await.unwrap();
        db.close();
        let error = SyncEngine::open(js(&options(&name)))
            .await
            .err()
            .unwrap_or_else(|| panic!("a damaged `{store}` value opens"));
        assert!(message(&error).contains(says), "{}", message(&error));
        assert_eq!(code(&error), error_code, "{}", message(&error));
    }
}
