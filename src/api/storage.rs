//! `createIndexedDBStorage()` and `createMemoryStorage()`: the values `SyncEngine.open({ storage })`
//! takes to choose where the engine keeps its data.

use wasm_bindgen::prelude::*;

/// The storage `SyncEngine.open({ storage })` takes: `{ kind }`, frozen.
fn storage_choice(kind: &str) -> JsValue {
    let choice = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&choice, &"kind".into(), &kind.into());
    js_sys::Object::freeze(&choice).into()
}

/// IndexedDB storage (the default): the engine's data outlives reloads and is shared by the
/// tabs of one database.
#[wasm_bindgen(js_name = createIndexedDBStorage, skip_typescript)]
pub fn create_indexeddb_storage() -> JsValue {
    storage_choice("indexeddb")
}

/// Memory storage: the engine's data lives only as long as the page, in this tab alone (for
/// tests, private browsing that refuses IndexedDB, and short-lived sessions).
#[wasm_bindgen(js_name = createMemoryStorage, skip_typescript)]
pub fn create_memory_storage() -> JsValue {
    storage_choice("memory")
}
