//! Databases written by earlier schemas open under the current one (3) with every document and
//! unfinished transaction intact, and each transaction then completes exactly once, in real
//! Chromium against the real sync server: the first schema (IndexedDB version 1: a record per
//! document and per transaction, as JSON text), and the second (version 2: the log and pages,
//! before the `history` store), whose finished transactions are then kept in the history.
#![cfg(target_arch = "wasm32")]

mod support;

use ferrosync::SyncEngine;
use ferrosync_core::document::{parse_document, Document};
use ferrosync_core::engine::{Checkpoint, Record, RecordMeta, StoredTx};
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::{Mutation, Op};
use ferrosync_core::transaction::{Transaction, TxId};
use serde_json::{json, Value};
use support::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{IdbDatabase, IdbTransactionMode};

wasm_bindgen_test_configure!(run_in_browser);

/// The first schema's object stores.
const STORES: [&str; 5] = ["documents", "transactions", "sync_log", "meta", "origins"];

fn doc(value: Value) -> (String, ferrosync_core::document::Fields) {
    parse_document(value).expect("a valid document")
}

/// Creates database `name` at IndexedDB `version` with `stores`, as an earlier schema did.
async fn create_database(
    name: &str,
    version: u32,
    stores: &[&'static str],
) -> Result<IdbDatabase, JsValue> {
    let factory = web_sys::window().unwrap().indexed_db()?.unwrap();
    let request = factory.open_with_u32(name, version)?;
    let on_upgrade = {
        let (request, stores) = (request.clone(), stores.to_vec());
        Closure::<dyn FnMut()>::new(move || {
            let db: IdbDatabase = request.result().unwrap().unchecked_into();
            for store in &stores {
                db.create_object_store(store).unwrap();
            }
        })
    };
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    Ok(idb_result(&request).await?.unchecked_into())
}

/// What an earlier schema's database holds: a synced document, an unfinished transaction
/// inserting another, and the engine's checkpoint (`version` names the schema in the titles).
fn contents(version: u32) -> (Document, Transaction, Checkpoint) {
    let now = js_sys::Date::now() as u64;
    let (id, fields) =
        doc(json!({ "_id": "synced", "title": format!("kept from version {version}") }));
    let synced = Document::new(
        &id,
        fields,
        0,
        Hlc {
            wall: now,
            counter: 0,
            node: 1,
        },
        false,
    );
    let (pending_id, fields) =
        doc(json!({ "_id": "pending", "title": format!("queued in version {version}") }));
    let tx = Transaction::new(
        TxId(1),
        vec![Mutation::new(
            "todos".into(),
            pending_id,
            Op::Insert { fields },
            Hlc {
                wall: now,
                counter: 1,
                node: 1,
            },
            0,
        )],
        now,
    );
    let checkpoint = Checkpoint {
        client_id: unique("c"),
        cursor: 0,
        next_mutation_id: 1,
        next_tx: 2,
        clock: Hlc {
            wall: now,
            counter: 1,
            node: 1,
        },
        history_floor: 0,
        history_dropped: 0,
    };
    (synced, tx, checkpoint)
}

/// Writes a database as the first schema did.
async fn write_first_schema(name: &str) -> Result<(), JsValue> {
    let db = create_database(name, 1, &STORES).await?;
    let (synced, tx, checkpoint) = contents(1);
    let text = |value: String| JsValue::from_str(&value);
    let stores = js_sys::Array::of3(&"documents".into(), &"transactions".into(), &"meta".into());
    let write =
        db.transaction_with_str_sequence_and_mode(&stores, IdbTransactionMode::Readwrite)?;
    write.object_store("documents")?.put_with_key(
        &text(serde_json::to_string(&("todos", &synced)).unwrap()),
        &js_sys::Array::of2(&"todos".into(), &synced.id().into()),
    )?;
    write
        .object_store("transactions")?
        .put_with_key(&text(serde_json::to_string(&tx).unwrap()), &1.into())?;
    write.object_store("meta")?.put_with_key(
        &text(serde_json::to_string(&checkpoint).unwrap()),
        &"checkpoint".into(),
    )?;
    committed(&write).await?;
    db.close();
    Ok(())
}

/// Writes a database as the second schema did: one log record holding everything.
async fn write_second_schema(name: &str) -> Result<(), JsValue> {
    let stores = [
        "log",
        "pages",
        "origins",
        "documents",
        "transactions",
        "sync_log",
        "meta",
    ];
    let db = create_database(name, 2, &stores).await?;
    let (synced, tx, checkpoint) = contents(2);
    let record = Record {
        seq: 1,
        meta: RecordMeta {
            checkpoint: Some(checkpoint),
            ..RecordMeta::default()
        },
        txs: vec![StoredTx::of(&tx)],
        docs: vec![("todos".into(), vec![synced])],
        ..Record::default()
    };
    let write = db.transaction_with_str_and_mode("log", IdbTransactionMode::Readwrite)?;
    write.object_store("log")?.put_with_key(
        &js_sys::Uint8Array::from(record.encode().as_slice()),
        &1.into(),
    )?;
    committed(&write).await?;
    db.close();
    Ok(())
}

/// Opens the database written as schema `version` and checks its documents are there and its
/// transaction completes once; returns the engine.
async fn opens_and_completes_once(tenant: &str, config: &Value, version: u32) -> SyncEngine {
    let engine = open(config).await;
    assert_eq!(
        get(&engine, "todos", "synced")["title"],
        format!("kept from version {version}")
    );
    assert_eq!(
        get(&engine, "todos", "pending")["title"],
        format!("queued in version {version}")
    );
    until_server(tenant, 1).await;
    until("the transaction completed", || {
        json(&engine.transactions(JsValue::UNDEFINED).unwrap())
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "completed")
    })
    .await;
    engine
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_second_schema_database_opens_intact_and_keeps_its_history_from_then_on() {
    let tenant = unique("t");
    let config = config(&tenant, json!({}));
    let name = config["name"].as_str().unwrap().to_owned();
    write_second_schema(&name).await.unwrap();
    let engine = opens_and_completes_once(&tenant, &config, 2).await;
    sleep(300).await; // the transaction's end reaches storage
    engine.destroy();

    // Reopened, the finished transaction is in the history, nothing is sent again.
    let reopened = open(&config).await;
    let history = json(&reopened.transactions(JsValue::UNDEFINED).unwrap());
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["state"], "completed");
    assert_eq!(history[0]["mutations"][0]["id"], "pending");
    sleep(500).await;
    let (head, docs) = server_state(&tenant).await;
    assert_eq!((head, docs.len()), (1, 1), "applied once: {docs:?}");
    reopened.destroy();
}

#[wasm_bindgen_test]
#[cfg_attr(not(ferrosync_test_server), ignore = "needs the server npm test runs")]
async fn a_first_schema_database_opens_intact_and_finishes_its_transactions_once() {
    let tenant = unique("t");
    let config = config(&tenant, json!({}));
    let name = config["name"].as_str().unwrap().to_owned();
    write_first_schema(&name).await.unwrap();
    let engine = opens_and_completes_once(&tenant, &config, 1).await;
    engine.destroy();

    // Reopened, nothing is left to send and nothing was applied twice.
    let reopened = open(&config).await;
    assert_eq!(
        get(&reopened, "todos", "synced")["title"],
        "kept from version 1"
    );
    assert_eq!(
        get(&reopened, "todos", "pending")["title"],
        "queued in version 1"
    );
    let unfinished = json(&reopened.transactions(JsValue::UNDEFINED).unwrap());
    assert!(
        unfinished
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "completed"),
        "{unfinished}"
    );
    sleep(500).await;
    let (head, docs) = server_state(&tenant).await;
    assert_eq!((head, docs.len()), (1, 1), "applied once: {docs:?}");
    reopened.destroy();
}

/// Waits until the server's head for `tenant` reaches `head`.
async fn until_server(tenant: &str, head: u64) {
    for _ in 0..250 {
        if server_state(tenant).await.0 >= head {
            return;
        }
        sleep(40).await;
    }
    panic!("the server never reached version {head}");
}
