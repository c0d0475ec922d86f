//! Values across the JavaScript boundary: JSON in (as `JSON.stringify` sees it), plain objects
//! out (serde-wasm-bindgen), and errors as JavaScript `Error`s with a stable `code`.

use ferrosync_core::{Code, CoreError};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

/// A JavaScript value as JSON, with `JSON.stringify`'s rules (functions and `undefined` fields
/// are dropped, dates become strings).
pub fn to_json(value: &JsValue, what: &str) -> Result<Value, JsValue> {
    let text = json_text(value, what)?;
    serde_json::from_str(&text).map_err(|e| invalid(&format!("{what}: {e}")))
}

/// A JavaScript value as JSON text (`JSON.stringify`).
pub fn json_text(value: &JsValue, what: &str) -> Result<String, JsValue> {
    let text = js_sys::JSON::stringify(value)
        .map_err(|e| invalid(&format!("{what} is not JSON: {}", describe(&e))))?;
    text.as_string()
        .ok_or_else(|| invalid(&format!("{what} is not JSON")))
}

/// A Rust value as a plain JavaScript value, built directly (serde-wasm-bindgen): objects,
/// arrays, and `null` for what is missing, as `JSON.parse` would give for the value's JSON.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .expect("engine values have no numbers beyond 2^53")
}

/// A JSON value, serialized as `JSON.parse` reads its text: every number a double (so integers
/// beyond 2^53 round instead of failing).
pub struct Json<'a>(pub &'a Value);

/// Serializes a JSON value as [`Json`] does (for `#[serde(serialize_with)]`).
pub fn json<S: serde::Serializer>(value: &Value, s: S) -> Result<S::Ok, S::Error> {
    Json(value).serialize(s)
}

impl Serialize for Json<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => s.serialize_f64(n.as_f64().unwrap_or(f64::NAN)),
            Value::Array(items) => s.collect_seq(items.iter().map(Json)),
            Value::Object(fields) => s.collect_map(fields.iter().map(|(k, v)| (k, Json(v)))),
            // Each arm as `Value` serializes it, without compiling its serializer for `s`.
            Value::String(text) => s.serialize_str(text),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Null => s.serialize_unit(),
        }
    }
}

/// A JavaScript `Error` with this `name`, `message` and stable `code`, and `retryable` where
/// the code tells whether trying again may help. Every error the engine throws, rejects with
/// or reports as a value is made here.
pub fn error(name: &str, code: Code, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name(name);
    set(&error, "code", &JsValue::from_str(code.as_str()));
    if let Some(retryable) = code.retryable() {
        set(&error, "retryable", &JsValue::from_bool(retryable));
    }
    error.into()
}

/// A refusal of a call: a `TypeError` for a bad argument, query or configuration, otherwise an
/// `Error`.
pub fn refusal(code: Code, message: &str) -> JsValue {
    let name = match code {
        Code::InvalidArgument | Code::InvalidConfig | Code::InvalidQuery => "TypeError",
        _ => "Error",
    };
    error(name, code, message)
}

/// A `TypeError` for a bad argument (`invalid_argument`).
pub fn invalid(message: &str) -> JsValue {
    refusal(Code::InvalidArgument, message)
}

/// The error of every call, and every wait, on a destroyed engine.
pub fn destroyed() -> JsValue {
    error("Error", Code::Destroyed, "this SyncEngine was destroyed")
}

/// The core's refusal as a JavaScript error, with the code of its kind.
pub fn core_error(e: CoreError) -> JsValue {
    refusal(e.code(), &e.to_string())
}

/// The `code` (`unknown` if it carries none) and message of a thrown JavaScript value.
pub fn code_and_message(value: &JsValue) -> (Code, String) {
    let code = get(value, "code").as_string();
    let message = get(value, "message").as_string();
    (
        code.map_or_else(Code::default, |name| Code::parse(&name)),
        message.unwrap_or_else(|| describe(value)),
    )
}

/// Sets `key` on a JavaScript object.
pub fn set(target: &JsValue, key: &str, value: &JsValue) {
    // Only fails on frozen objects or proxies, which this crate never passes.
    let _ = js_sys::Reflect::set(target, &JsValue::from_str(key), value);
}

/// Reads `key` of a JavaScript object (`undefined` when absent).
pub fn get(target: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A thrown JavaScript value as text: an `Error`'s message, or its string form.
pub fn describe(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return format!(
            "{}: {}",
            String::from(error.name()),
            String::from(error.message())
        );
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// Runs `f` once the page has time to spare: an idle callback (at most a second away), or a
/// short timeout where the browser has none.
pub fn when_idle(f: impl FnOnce() + 'static) {
    let callback = wasm_bindgen::closure::Closure::once_into_js(f);
    let window = js_sys::global();
    let idle = get(&window, "requestIdleCallback");
    if let Some(idle) = idle.dyn_ref::<js_sys::Function>() {
        let options = js_sys::Object::new();
        set(&options, "timeout", &JsValue::from_f64(1_000.0));
        if idle.call2(&window, &callback, &options).is_ok() {
            return;
        }
    }
    let timeout = get(&window, "setTimeout");
    if let Some(timeout) = timeout.dyn_ref::<js_sys::Function>() {
        let _ = timeout.call2(&window, &callback, &JsValue::from_f64(50.0));
    }
}

/// The current time in milliseconds since the epoch.
pub fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// An optional function-valued field of a config object; anything else there is a `TypeError`.
pub fn function(target: &JsValue, key: &str) -> Result<Option<js_sys::Function>, JsValue> {
    if !target.is_object() {
        return Ok(None);
    }
    let value = get(target, key);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value.dyn_into::<js_sys::Function>().map(Some).map_err(|_| {
        refusal(
            Code::InvalidConfig,
            &format!("invalid SyncEngine config: `{key}` must be a function"),
        )
    })
}
