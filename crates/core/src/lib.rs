//! Ferrosync's pure sync core.
//!
//! Everything here is deterministic and free of I/O: time, randomness seeds, storage results and
//! network messages come in as [`engine::Input`]s, and what should happen comes out as
//! [`engine::Effect`]s. The wasm crate and the reference server only execute effects, so every
//! sync rule is tested natively with a seeded clock, network and storage.
//!
//! Layout:
//! - [`document`], [`hlc`], [`mutation`]: the data model and its clock;
//! - [`collection`], [`query`], [`index`], [`live_query`]: in-memory state, optimistic overlay,
//!   queries, secondary indexes and live queries;
//! - [`transaction`], [`scheduler`], [`retry`], [`conflict`]: the write lifecycle;
//! - [`protocol`], [`server`]: wire messages and the server's apply logic ([`tagged`] reads the
//!   tagged ones, [`object`] the structs);
//! - [`engine`]: the client state machine tying it together.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod collection;
pub mod conflict;
pub mod doc_set;
pub mod document;
pub mod engine;
pub mod error;
pub mod fields;
pub mod hlc;
pub mod id_map;
pub mod index;
pub mod live_query;
pub mod mutation;
pub mod object;
pub mod protocol;
pub mod query;
pub mod retry;
pub mod rng;
pub mod scheduler;
pub mod server;
pub mod sort;
pub mod tagged;
pub mod transaction;
pub mod unit_enum;

pub use error::{Code, CoreError};

/// Milliseconds since the Unix epoch, as given by the driver.
pub type Millis = u64;
/// A client's identity: one per IndexedDB database.
pub type ClientId = String;
/// A document's `_id`.
pub type DocId = String;
/// A client's mutation sequence number; contiguous per client on the wire.
pub type MutationId = u64;
/// A server-assigned, monotonically increasing change version (also the pull cursor).
pub type Version = u64;
