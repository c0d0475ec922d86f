//! Helpers for the browser tests: the real sync server started by `scripts/test.sh`, one
//! tenant per test (a JWT signed with the server's secret), engines on fresh databases, and
//! waiting for conditions.
#![allow(dead_code)]

use ferrosync::SyncEngine;
use hmac::{Hmac, Mac};
use js_sys::Promise;
use serde_json::{json, Value};
use sha2::Sha256;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `host:port` of the server `scripts/test.sh` started.
pub fn server() -> &'static str {
    match option_env!("FERROSYNC_TEST_SERVER") {
        Some(address) => address,
        None => {
            panic!("run the browser tests through `npm test` (scripts/test.sh starts the server)")
        }
    }
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e9) as u64
    )
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A token for user `user` of `tenant`, valid for an hour.
pub fn token(tenant: &str, user: &str) -> String {
    let Some(secret) = option_env!("FERROSYNC_TEST_JWT_SECRET") else {
        panic!("run the browser tests through `npm test` (scripts/test.sh sets the secret)");
    };
    let exp = js_sys::Date::now() as u64 / 1000 + 3600;
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = base64url(
        json!({ "sub": user, "tenant": tenant, "exp": exp })
            .to_string()
            .as_bytes(),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{header}.{claims}").as_bytes());
    let signature = base64url(&mac.finalize().into_bytes());
    format!("{header}.{claims}.{signature}")
}

/// An engine config for a fresh database in `tenant`, over WebSocket, with `extra` options.
pub fn config(tenant: &str, extra: Value) -> Value {
    let mut config = json!({
        "name": unique("db"),
        "collections": [{ "name": "todos" }, { "name": "cache", "sync": false }],
        "serverUrl": format!("ws://{}/v1/sync", server()),
        "authToken": token(tenant, &unique("user")),
        "retryDelay": 50,
        "maxRetryDelay": 200,
        "ackTimeout": 3000,
        "requestPersistence": false,
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config
}

/// A JSON value as a JavaScript one.
pub fn js(value: &Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap()
}

/// A JavaScript value as JSON.
pub fn json(value: &JsValue) -> Value {
    if value.is_undefined() {
        return Value::Null;
    }
    serde_json::from_str(&String::from(js_sys::JSON::stringify(value).unwrap())).unwrap()
}

/// Opens an engine.
pub async fn open(config: &Value) -> SyncEngine {
    SyncEngine::open(js(config))
        .await
        .expect("the engine opens")
}

/// Awaits a promise.
pub async fn wait(promise: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

/// Sleeps.
pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Waits (up to 10 s) until `check()` holds.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        sleep(20).await;
    }
    panic!("timed out waiting until {what}");
}

/// A document's JSON, or null.
pub fn get(engine: &SyncEngine, collection: &str, id: &str) -> Value {
    json(
        &engine
            .collection(collection.into())
            .unwrap()
            .get(id)
            .unwrap(),
    )
}

/// A message's error text.
pub fn message(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{error:?}"))
}

/// An error's `code`.
pub fn code(error: &JsValue) -> String {
    prop(error, "code").as_string().unwrap_or_default()
}

/// POSTs `body` to `/v1/{path}` on the test server; the answer as JSON.
async fn post(path: &str, token: &str, client: &str, body: Value) -> Value {
    let request = gloo_net::http::Request::post(&format!("http://{}/v1/{path}", server()))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("x-ferrosync-client", client)
        .body(body.to_string())
        .unwrap();
    let text = request.send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

/// What the server holds for `tenant`: `(head version, documents)`, asked over HTTP as a
/// brand-new client.
pub async fn server_state(tenant: &str) -> (u64, Vec<Value>) {
    let token = token(tenant, "inspector");
    let client = unique("inspector");
    let hello =
        json!({ "type": "hello", "protocol": 1, "client_id": client, "collections": ["todos"] });
    let welcome = post("hello", &token, &client, hello).await;
    let pull = json!({ "type": "pull", "seq": 1, "cursor": 0, "limit": 1000 });
    let page = post("pull", &token, &client, pull).await;
    let docs = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["doc"].clone())
        .collect();
    (welcome["head"].as_u64().unwrap(), docs)
}

/// The `todos` collection.
pub fn todos(engine: &SyncEngine) -> ferrosync::Collection {
    engine.collection("todos".into()).unwrap()
}

/// Inserts `doc` into `todos`; the transaction handle once durable.
pub async fn insert(engine: &SyncEngine, doc: Value) -> JsValue {
    wait(todos(engine).insert(js(&doc), JsValue::UNDEFINED))
        .await
        .expect("the insert is durable")
}

/// Calls `target.method(...args)` as JavaScript would.
pub fn call(target: &JsValue, method: &str, args: &[JsValue]) -> JsValue {
    let f: js_sys::Function = js_sys::Reflect::get(target, &method.into())
        .unwrap()
        .dyn_into()
        .unwrap_or_else(|_| panic!("`{method}` is a method"));
    f.apply(target, &args.iter().collect::<js_sys::Array>())
        .unwrap_or_else(|e| panic!("`{method}` threw {}", message(&e)))
}

/// A property as JavaScript sees it.
pub fn prop(target: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(target, &name.into()).unwrap()
}

/// `handle.settled()`: the finished transaction, or its error.
pub async fn settled(handle: &JsValue) -> Result<Value, JsValue> {
    wait(call(handle, "settled", &[]).unchecked_into())
        .await
        .map(|v| json(&v))
}

/// Waits for an IndexedDB request: its result on success, its error otherwise.
pub async fn idb_result(request: &web_sys::IdbRequest) -> Result<JsValue, JsValue> {
    let done = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    match JsFuture::from(done).await {
        Ok(_) => request.result(),
        Err(event) => Err(request.error()?.map_or(event, JsValue::from)),
    }
}

/// Waits until an IndexedDB transaction commits; fails if it errors or aborts.
pub async fn committed(tx: &web_sys::IdbTransaction) -> Result<(), JsValue> {
    let done = Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    match JsFuture::from(done).await {
        Ok(_) => Ok(()),
        Err(event) => Err(tx.error().map_or(event, JsValue::from)),
    }
}
