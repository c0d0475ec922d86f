//! Browser tests, run in headless Chromium and Firefox by `wasm-pack test --headless --chrome`
//! and `--firefox`; unlike those of engine.rs and tabs.rs, they need no server.
//!
//! They check what the engine needs from the browser: the package loads, and IndexedDB can
//! create a database, commit a record and read it back from a fresh connection.
#![cfg(target_arch = "wasm32")]

mod support;

use std::{cell::Cell, rc::Rc};

use js_sys::{Object, Reflect};
use support::{committed, idb_result};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{IdbDatabase, IdbFactory, IdbTransactionMode};

wasm_bindgen_test_configure!(run_in_browser);

const STORE: &str = "docs";

#[wasm_bindgen_test]
fn version_is_the_crate_version() {
    assert_eq!(ferrosync::version(), env!("CARGO_PKG_VERSION"));
}

#[wasm_bindgen_test]
async fn indexeddb_commits_a_record_and_reads_it_back() -> Result<(), JsValue> {
    let factory = web_sys::window()
        .expect("a window")
        .indexed_db()?
        .expect("IndexedDB is available");
    let name = format!(
        "ferrosync-test-{}-{}",
        js_sys::Date::now(),
        js_sys::Math::random()
    );

    let (db, upgraded) = open(&factory, &name).await?;
    assert!(upgraded, "a new database runs its upgrade");

    let record = Object::new();
    Reflect::set(&record, &"_id".into(), &"1".into())?;
    Reflect::set(&record, &"title".into(), &"Task".into())?;
    let tx = db.transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)?;
    tx.object_store(STORE)?.put_with_key(&record, &"1".into())?;
    committed(&tx).await?;
    db.close();

    // A second connection sees the committed record: it is in the database, not in memory.
    let (db, upgraded) = open(&factory, &name).await?;
    assert!(
        !upgraded,
        "an existing database at the same version is not upgraded"
    );
    let tx = db.transaction_with_str(STORE)?;
    let read = idb_result(&tx.object_store(STORE)?.get(&"1".into())?).await?;
    assert_eq!(
        Reflect::get(&read, &"title".into())?.as_string().as_deref(),
        Some("Task")
    );
    let missing = idb_result(&tx.object_store(STORE)?.get(&"2".into())?).await?;
    assert!(missing.is_undefined());
    db.close();

    let deleted = factory.delete_database(&name)?;
    idb_result(&deleted).await?;
    Ok(())
}

/// Opens database `name` at version 1, creating the object store on first open.
/// Also tells whether the upgrade ran.
async fn open(factory: &IdbFactory, name: &str) -> Result<(IdbDatabase, bool), JsValue> {
    let request = factory.open_with_u32(name, 1)?;
    let upgraded = Rc::new(Cell::new(false));
    let on_upgrade = {
        let request = request.clone();
        let upgraded = Rc::clone(&upgraded);
        Closure::<dyn FnMut()>::new(move || {
            let db: IdbDatabase = request.result().expect("an open database").unchecked_into();
            db.create_object_store(STORE).expect("a new object store");
            upgraded.set(true);
        })
    };
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let db = idb_result(&request).await?.unchecked_into();
    request.set_onupgradeneeded(None);
    Ok((db, upgraded.get()))
}

/// The sync core runs on wasm32 in the browser: an engine loads, commits a write optimistically
/// and asks for it to be persisted, with time given by the browser clock.
#[wasm_bindgen_test]
fn the_core_engine_commits_a_write_in_the_browser() {
    use ferrosync_core::document::parse_document;
    use ferrosync_core::engine::{
        CollectionConfig, Effect, Engine, EngineConfig, Input, Snapshot, StoreOp,
    };
    use ferrosync_core::mutation::{MutationRequest, Op};

    let now = js_sys::Date::now() as u64;
    let config = EngineConfig {
        collections: vec![CollectionConfig {
            name: "todos".into(),
            sync: true,
            ..CollectionConfig::default()
        }],
        seed: (js_sys::Math::random() * u32::MAX as f64) as u64,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config).unwrap();
    let loaded = engine
        .handle(Input::Loaded(Snapshot::default()), now)
        .unwrap();
    // A new database first stores its checkpoint; one write is in flight at a time.
    let token = loaded
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Persist(w) => Some(w.token),
            _ => None,
        })
        .expect("the new client id is persisted");
    engine.handle(Input::Persisted { token }, now).unwrap();
    let (doc_id, fields) =
        parse_document(serde_json::json!({"_id": "1", "title": "Task"})).unwrap();
    let request = MutationRequest {
        collection: "todos".into(),
        doc_id,
        op: Op::Insert { fields },
        metadata: None,
    };
    let step = engine.handle(Input::commit(vec![request]), now).unwrap();
    assert!(step.transaction.is_some());
    assert!(step.effects.iter().any(
        |e| matches!(e, Effect::Persist(w) if matches!(w.ops[..], [StoreOp::PutRecord { .. }]))
    ));
    assert_eq!(engine.collection("todos").unwrap().count(), 1);
    let bad = engine.handle(Input::commit(vec![]), now);
    assert!(bad.is_err(), "bad input is an error, not a panic");
}
