//! Typed errors for bad input to the core. The core never panics on user input.

use crate::{DocId, MutationId};
use thiserror::Error;

/// Why the core refused an input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    /// A document was not a JSON object.
    #[error("a document must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// A document had no `_id` field.
    #[error("a document must have an `_id` field")]
    MissingId,
    /// A document's `_id` was not a non-empty string.
    #[error("`_id` must be a non-empty string, got {0}")]
    InvalidId(String),
    /// A document or patch used a field the engine reserves.
    #[error("`{0}` is reserved by the engine; use delete() for soft deletes")]
    ReservedField(String),
    /// The collection is not in the engine's configuration.
    #[error("unknown collection `{0}`")]
    UnknownCollection(String),
    /// An update, delete or hard delete named a document that does not exist.
    #[error("document `{id}` not found in collection `{collection}`")]
    NotFound {
        /// The collection searched.
        collection: String,
        /// The missing document.
        id: DocId,
    },
    /// An insert used an `_id` that is already taken.
    #[error("document `{id}` already exists in collection `{collection}`")]
    AlreadyExists {
        /// The collection.
        collection: String,
        /// The existing document.
        id: DocId,
    },
    /// A write named a soft-deleted document; deletes are final.
    #[error("document `{id}` in collection `{collection}` is deleted")]
    Deleted {
        /// The collection.
        collection: String,
        /// The tombstoned document.
        id: DocId,
    },
    /// A hard delete named a document that still has unfinished transactions.
    #[error("document `{id}` in collection `{collection}` has unfinished transactions")]
    HasPendingWrites {
        /// The collection.
        collection: String,
        /// The document.
        id: DocId,
    },
    /// A transaction had no mutations.
    #[error("a transaction needs at least one mutation")]
    EmptyTransaction,
    /// An input arrived before the engine loaded its stored state.
    #[error("the engine has not loaded its stored state yet")]
    NotLoaded,
    /// `Loaded` arrived twice.
    #[error("the engine is already loaded")]
    AlreadyLoaded,
    /// A conflict id named no parked conflict.
    #[error("no parked conflict with id `{0}`")]
    UnknownConflict(String),
    /// A query used an unknown operator or option, or a value of the wrong type.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A configuration value was out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The server's reply broke the protocol (wrong ids, missing results).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A custom backend's sync source delivered data the engine cannot read.
    #[error("bad data from the sync source: {0}")]
    BadRemoteData(String),
    /// What storage holds cannot be read back.
    #[error("storage is damaged: {0}")]
    CorruptStorage(String),
    /// A mutation id was sent out of order.
    #[error("mutation id {0} is out of order")]
    MutationOrder(MutationId),
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
