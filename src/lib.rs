//! Ferrosync's WebAssembly package: the JavaScript API of the sync engine.
//!
//! For now it exposes its version and a panic hook; the engine itself (driver loop,
//! IndexedDB storage, WebSocket/HTTP sync) wraps `ferrosync-core` in later issues.
#![forbid(unsafe_code)]

use wasm_bindgen::prelude::*;

/// The version of this package, as in `Cargo.toml`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Makes a Rust panic surface as a readable message on the browser console
/// (`console.error` with the panic location) instead of only `RuntimeError: unreachable`.
///
/// Call it once after `init()`; further calls do nothing.
#[wasm_bindgen(js_name = initPanicHook)]
pub fn init_panic_hook() {
    console_error_panic_hook::set_once();
}
