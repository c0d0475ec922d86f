//! Ferrosync's WebAssembly package: the JavaScript API of the sync engine.
//!
//! `ferrosync-core` holds every sync rule as a pure state machine; this crate runs it in the
//! browser. Layout:
//! - [`options`]: `SyncEngine.open(config)` checked into engine settings (pure, tested natively);
//! - `api/`: the classes JavaScript sees (`SyncEngine`, `Collection`, `TransactionHandle`,
//!   `Observable`, `TransactionScope`);
//! - `driver`: the leading tab feeds inputs to the core and executes its effects (storage
//!   writes, messages, timers, callbacks queued so user code never re-enters the engine
//!   mid-call); other tabs follow it, mirroring its state and forwarding their calls;
//! - `storage`: IndexedDB (one IndexedDB transaction per storage write) or memory;
//! - `tabs`: Web Locks and the `BroadcastChannel` between tabs of one database;
//! - `transport/`: WebSocket and HTTP polling, with reconnects;
//! - `js`: values to JavaScript objects (serde-wasm-bindgen), JSON in, and errors;
//! - `views`: the plain objects JavaScript receives (documents, changes, transactions,
//!   conflicts), used by the API and the driver alike.
// Unsafe code only in the `alloc-stats` build's counting allocator.
#![deny(unsafe_code)]

pub mod options;

#[cfg(all(target_arch = "wasm32", feature = "alloc-stats"))]
mod alloc_stats;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod storage;
// Natively only its message types (and their tests) are compiled.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod tabs;
#[cfg(target_arch = "wasm32")]
mod transport;
#[cfg(target_arch = "wasm32")]
mod views;

#[cfg(target_arch = "wasm32")]
pub use api::{
    create_indexeddb_storage, create_memory_storage, Collection, Observable, SyncEngine,
    TransactionCollection, TransactionHandle, TransactionScope,
};

use wasm_bindgen::prelude::*;

/// The TypeScript declarations of the whole public surface (the Rust exports skip theirs).
#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT: &str = include_str!("../js/ferrosync.d.ts");

/// The version of this package, as in `Cargo.toml`.
#[wasm_bindgen(skip_typescript)]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Makes a Rust panic surface as a readable message on the browser console
/// (`console.error` with the panic location) instead of only `RuntimeError: unreachable`.
///
/// `SyncEngine.open` installs it too; further calls do nothing.
#[wasm_bindgen(js_name = initPanicHook, skip_typescript)]
pub fn init_panic_hook() {
    console_error_panic_hook::set_once();
}
