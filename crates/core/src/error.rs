//! Typed errors for bad input to the core, and the stable code of every error the application
//! sees. The core never panics on user input.

use crate::protocol::ErrorCode;
use crate::DocId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
    /// A custom backend's sync source delivered data the engine cannot read.
    #[error("bad data from the sync source: {0}")]
    BadRemoteData(String),
    /// What storage holds cannot be read back.
    #[error("storage is damaged: {0}")]
    CorruptStorage(String),
}

impl CoreError {
    /// The error's stable code.
    pub fn code(&self) -> Code {
        use CoreError::*;
        match self {
            NotAnObject(_) | MissingId | InvalidId(_) | ReservedField(_) | EmptyTransaction => {
                Code::InvalidArgument
            }
            UnknownCollection(_) => Code::UnknownCollection,
            NotFound { .. } => Code::Protocol(ErrorCode::NotFound),
            AlreadyExists { .. } => Code::Protocol(ErrorCode::AlreadyExists),
            Deleted { .. } => Code::Protocol(ErrorCode::Deleted),
            HasPendingWrites { .. } => Code::PendingWrites,
            NotLoaded | AlreadyLoaded => Code::InvalidState,
            UnknownConflict(_) => Code::UnknownConflict,
            InvalidQuery(_) => Code::InvalidQuery,
            InvalidConfig(_) => Code::InvalidConfig,
            BadRemoteData(_) => Code::BadRemoteData,
            CorruptStorage(_) => Code::CorruptStorage,
        }
    }
}

/// The stable code of an error the engine reports to the application: on every error thrown or
/// rejected to JavaScript (`error.code`), on a failed transaction's `error.code`, and as
/// `getStats().lastErrorCode`. Written as its snake_case name; the engine's own codes are
/// listed in [`Code::LOCAL`], and the protocol's (docs/PROTOCOL.md) are shared with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A bad argument: a document, patch, id or callback of the wrong shape.
    InvalidArgument,
    /// A `SyncEngine.open` option is unknown or out of range.
    InvalidConfig,
    /// A query uses an unknown operator or option, or a value of the wrong type.
    InvalidQuery,
    /// The call is not allowed now: sync is stopped or has no server, or the engine was called
    /// from inside a `conflictResolver` or `merge`.
    InvalidState,
    /// The collection is not in the engine's configuration.
    UnknownCollection,
    /// No parked conflict has this id.
    UnknownConflict,
    /// A hard delete of a document with unfinished transactions.
    PendingWrites,
    /// The engine was destroyed.
    Destroyed,
    /// Storage (IndexedDB) failed; the engine writes again later.
    StorageFailed,
    /// Storage is full (the browser's quota); the engine writes again later.
    StorageQuota,
    /// What storage holds cannot be read back.
    CorruptStorage,
    /// The server is unreachable, the connection was lost, or no answer came in time.
    Network,
    /// The server's answer broke the protocol.
    ProtocolViolation,
    /// A custom backend's sync source delivered data the engine cannot read.
    BadRemoteData,
    /// A custom backend's `persist` rejected; the engine tries again under the retry policy.
    PersistFailed,
    /// A custom backend's `persist` threw a `NonRetriableError`.
    NonRetriable,
    /// A custom backend's `awaitSync` rejected.
    ConfirmFailed,
    /// Every attempt the retry policy allows failed.
    RetriesExhausted,
    /// A write met a newer version on the server, and the conflict strategy resolved it (an
    /// attempt's code: the transaction goes on).
    Conflict,
    /// A code of the protocol: the server's answer, or the same condition met locally
    /// (`not_found`, `already_exists`, `deleted`).
    Protocol(ErrorCode),
}

impl Code {
    /// The engine's own codes (those of the protocol are [`ErrorCode`]'s).
    pub const LOCAL: [Code; 19] = [
        Code::InvalidArgument,
        Code::InvalidConfig,
        Code::InvalidQuery,
        Code::InvalidState,
        Code::UnknownCollection,
        Code::UnknownConflict,
        Code::PendingWrites,
        Code::Destroyed,
        Code::StorageFailed,
        Code::StorageQuota,
        Code::CorruptStorage,
        Code::Network,
        Code::ProtocolViolation,
        Code::BadRemoteData,
        Code::PersistFailed,
        Code::NonRetriable,
        Code::ConfirmFailed,
        Code::RetriesExhausted,
        Code::Conflict,
    ];

    /// The code as JavaScript sees it.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            InvalidArgument => "invalid_argument",
            InvalidConfig => "invalid_config",
            InvalidQuery => "invalid_query",
            InvalidState => "invalid_state",
            UnknownCollection => "unknown_collection",
            UnknownConflict => "unknown_conflict",
            PendingWrites => "pending_writes",
            Destroyed => "destroyed",
            StorageFailed => "storage_failed",
            StorageQuota => "storage_quota",
            CorruptStorage => "corrupt_storage",
            Network => "network",
            ProtocolViolation => "protocol_violation",
            BadRemoteData => "bad_remote_data",
            PersistFailed => "persist_failed",
            NonRetriable => "non_retriable",
            ConfirmFailed => "confirm_failed",
            RetriesExhausted => "retries_exhausted",
            Conflict => "conflict",
            Protocol(code) => code.as_str(),
        }
    }

    /// Whether the same request may succeed later, where that applies (not to a call's bad
    /// arguments or a destroyed engine).
    pub fn retryable(self) -> Option<bool> {
        use Code::*;
        match self {
            InvalidArgument | InvalidConfig | InvalidQuery | InvalidState | UnknownCollection
            | UnknownConflict | Destroyed | Conflict => None,
            PendingWrites | StorageFailed | StorageQuota | Network | PersistFailed
            | RetriesExhausted => Some(true),
            CorruptStorage | ProtocolViolation | BadRemoteData | NonRetriable | ConfirmFailed => {
                Some(false)
            }
            Protocol(ErrorCode::HttpError | ErrorCode::Unknown) => None,
            Protocol(
                ErrorCode::TooManyConnections
                | ErrorCode::RateLimited
                | ErrorCode::Storage
                | ErrorCode::Internal
                | ErrorCode::Busy,
            ) => Some(true),
            Protocol(_) => Some(false),
        }
    }

    /// The code written `name`; a name this build does not know reads as the protocol's
    /// `unknown`.
    pub fn parse(name: &str) -> Code {
        if let Some(local) = Code::LOCAL.iter().find(|c| c.as_str() == name) {
            return *local;
        }
        let known = ErrorCode::VARIANTS.iter().find(|c| c.as_str() == name);
        Code::Protocol(known.copied().unwrap_or(ErrorCode::Unknown))
    }
}

impl Default for Code {
    /// The protocol's `unknown` (errors stored before codes were).
    fn default() -> Self {
        Code::Protocol(ErrorCode::Unknown)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(Code::parse(&name))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The members of the `ErrorCode` union in js/ferrosync.d.ts.
    fn declared_codes() -> Vec<String> {
        let types = include_str!("../../../js/ferrosync.d.ts");
        let union = types
            .split("export type ErrorCode =")
            .nth(1)
            .expect("js/ferrosync.d.ts declares ErrorCode")
            .split(';')
            .next()
            .unwrap();
        union
            .split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_declared_codes_are_the_engines_and_the_protocols_each_once() {
        let declared = declared_codes();
        let mut sorted = declared.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), declared.len(), "no code is declared twice");
        for code in &declared {
            let read = Code::parse(code);
            assert_eq!(read.as_str(), code, "{code} is declared but not a code");
            assert_eq!(serde_json::to_value(read).unwrap(), serde_json::json!(code));
        }
        for local in Code::LOCAL {
            assert!(
                declared.iter().any(|c| c == local.as_str()),
                "{local} is not declared"
            );
            assert!(
                !matches!(Code::parse(local.as_str()), Code::Protocol(_)),
                "{local} is also a protocol code"
            );
        }
        // Every protocol code: the table docs/PROTOCOL.md checks against the enum.
        let protocol = include_str!("../../../docs/PROTOCOL.md");
        let table = protocol.split("## Error codes").nth(1).unwrap();
        let documented = table
            .lines()
            .filter_map(|line| line.strip_prefix('|')?.split('|').next())
            .flat_map(|cell| cell.split('`').skip(1).step_by(2));
        let mut count = Code::LOCAL.len();
        for code in documented.chain(["unknown"]) {
            assert!(declared.iter().any(|c| c == code), "{code} is not declared");
            count += 1;
        }
        assert_eq!(count, declared.len(), "every declared code is a known one");
    }

    #[test]
    fn the_guide_documents_each_of_the_engines_codes_in_order_with_its_retryability() {
        let guide = include_str!("../../../docs/GUIDE.md");
        let section = guide.split("### Errors").nth(1).unwrap();
        let table = section
            .split("\n\n")
            .find(|p| p.starts_with("| code"))
            .unwrap();
        // Each row: the code, and whether it is retryable (`—` where that does not apply).
        let documented: Vec<(&str, &str)> = table
            .lines()
            .filter_map(|line| {
                let mut cells = line.strip_prefix("| `")?.split(" | ");
                Some((cells.next()?.trim_end_matches('`'), cells.next()?))
            })
            .collect();
        let local: Vec<(&str, &str)> = Code::LOCAL
            .iter()
            .map(|c| {
                let retryable = match c.retryable() {
                    None => "—",
                    Some(true) => "yes",
                    Some(false) => "no",
                };
                (c.as_str(), retryable)
            })
            .collect();
        assert_eq!(documented, local);
    }

    #[test]
    fn an_unknown_code_reads_as_unknown() {
        let read: Code = serde_json::from_str("\"from_a_newer_version\"").unwrap();
        assert_eq!(read, Code::Protocol(ErrorCode::Unknown));
    }
}
