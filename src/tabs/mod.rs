//! Several tabs of one app on one database: the tab holding the database's Web Lock leads
//! (runs the engine, writes IndexedDB, holds the connection); the others follow over a
//! `BroadcastChannel`. When the leader's tab closes, the browser releases its lock and the next
//! waiting tab takes over.

pub mod messages;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
pub use web::{new_tab_id, try_lock, wait_for_lock, Channel, Lock};
