//! Protocol v1 messages between an engine and the sync server (JSON, tagged by `type`).
//! docs/PROTOCOL.md describes each with an example.

use crate::document::Document;
use crate::hlc::Hlc;
use crate::mutation::Op;
use crate::tagged::{self, Head, Tagged};
use crate::{ClientId, MutationId, Version};
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The protocol version this core speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest mutation id, version or cursor on the wire: 2^63 - 1, so that every one fits
/// the signed 64-bit integers databases store.
pub const MAX_WIRE_INT: u64 = i64::MAX as u64;

/// Clients send at most this many messages in one WebSocket frame; servers accept at least
/// this many.
pub const FRAME_MESSAGES: usize = 64;

/// The length of `value` as JSON, counted without building the text, or `None` once it passes
/// `cap` (counting stops there).
pub fn json_len<T: Serialize + ?Sized>(value: &T, cap: usize) -> Option<usize> {
    struct Counter {
        count: usize,
        cap: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.count = self.count.saturating_add(buf.len());
            if self.count > self.cap {
                return Err(std::io::Error::other("over the cap"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { count: 0, cap };
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.count)
}

/// A message from an engine to the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Opens a session: who the client is and which collections it syncs.
    Hello {
        /// Must be [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The client's id (one per browser database).
        client_id: ClientId,
        /// The collections to receive changes for.
        collections: Vec<String>,
    },
    /// Transactions to apply, in mutation-id order.
    Push {
        /// Echoed in the answer.
        seq: u64,
        /// The transactions, each applied all-or-nothing.
        transactions: Vec<WireTransaction>,
    },
    /// Asks for the changes after `cursor`.
    Pull {
        /// Echoed in the answer.
        seq: u64,
        /// The last version the client has.
        cursor: Version,
        /// At most this many changes.
        limit: u32,
    },
    /// A heartbeat: the server answers `pong`, so a silent dead connection is noticed.
    Ping,
}

crate::deserialize_tagged!(ClientMessage, "type" {
    "hello" => Hello { protocol: u32, client_id: ClientId, collections: Vec<String> },
    "push" => Push { seq: u64, transactions: Vec<WireTransaction> },
    "pull" => Pull { seq: u64, cursor: Version, limit: u32 },
    "ping" => Ping,
});

/// A transaction on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireTransaction {
    /// Its mutations, with contiguous ids.
    pub mutations: Vec<WireMutation>,
    /// The client gave up on it: record it as rejected unless it was already applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abandon: bool,
}

crate::deserialize_object!(WireTransaction {
    "mutations" => mutations: Vec<WireMutation>,
    "abandon" => abandon: bool = default,
});

/// A mutation on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireMutation {
    /// The client's mutation id.
    pub id: MutationId,
    /// The collection written.
    pub collection: String,
    /// The document written.
    pub doc_id: String,
    /// What it does.
    pub op: Op,
    /// When it was made.
    pub hlc: Hlc,
    /// The server version the client last saw for the document (0: none).
    pub base_version: Version,
}

crate::deserialize_object!(WireMutation {
    "id" => id: MutationId,
    "collection" => collection: String,
    "doc_id" => doc_id: String,
    "op" => op: Op,
    "hlc" => hlc: Hlc,
    "base_version" => base_version: Version,
});

/// A message from the server to an engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answers `ping`.
    Pong,
    /// Answers `hello`.
    Welcome {
        /// The client id, confirmed.
        client_id: ClientId,
        /// The last mutation id the server has processed for this client (0: none).
        last_mutation_id: MutationId,
        /// The tenant's newest version.
        head: Version,
    },
    /// Answers `push`, per mutation, in order. Stops early after a retryable failure: the
    /// unanswered mutations were not processed.
    PushResult {
        /// The push's `seq`.
        seq: u64,
        /// One result per processed mutation.
        results: Vec<MutationResult>,
        /// The versions this push committed, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        range: Option<CursorRange>,
    },
    /// Answers `pull`.
    PullPage {
        /// The pull's `seq`.
        seq: u64,
        /// Changed documents (latest state), by increasing version.
        changes: Vec<Change>,
        /// The cursor to pull from next.
        cursor: Version,
        /// More changes are waiting.
        has_more: bool,
    },
    /// Changes another connection of the tenant just committed.
    Changes {
        /// The changed documents.
        changes: Vec<Change>,
        /// All of the tenant's changes in this version range are included.
        range: CursorRange,
    },
    /// Something went wrong.
    Error {
        /// The request it answers, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// What went wrong.
        #[serde(flatten)]
        error: ErrorInfo,
    },
}

crate::deserialize_tagged!(ServerMessage, "type" {
    "pong" => Pong,
    "welcome" => Welcome { client_id: ClientId, last_mutation_id: MutationId, head: Version },
    "push_result" => PushResult {
        seq: u64,
        results: Vec<MutationResult>,
        range: Option<CursorRange>,
    },
    "pull_page" => PullPage { seq: u64, changes: Vec<Change>, cursor: Version, has_more: bool },
    "changes" => Changes { changes: Vec<Change>, range: CursorRange },
    // `error` is flattened: its fields sit next to `seq`.
    "error" => Error { seq: Option<u64>, code: ErrorCode, message: String, retryable: bool }
        => ServerMessage::Error { seq, error: ErrorInfo { code, message, retryable } },
});

/// Reads a frame from the server: one message, or an array of them (parsed directly, without
/// buffering the frame to guess its shape).
pub fn server_frame(text: &str) -> serde_json::Result<Vec<ServerMessage>> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
    } else {
        serde_json::from_str(text).map(|message| vec![message])
    }
}

/// A half-open version range `(since, cursor]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CursorRange {
    /// Exclusive lower bound.
    pub since: Version,
    /// Inclusive upper bound.
    pub cursor: Version,
}

crate::deserialize_object!(CursorRange {
    "since" => since: Version,
    "cursor" => cursor: Version,
});

/// A changed document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Its collection.
    pub collection: String,
    /// Its latest state, with its version.
    pub doc: Document,
}

crate::deserialize_object!(Change {
    "collection" => collection: String,
    "doc" => doc: Document,
});

/// What happened to one mutation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MutationResult {
    /// The mutation's id.
    pub id: MutationId,
    /// Its outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl<'de> Deserialize<'de> for MutationResult {
    /// `outcome` is flattened: its `status` and fields follow `id` (see [`crate::tagged`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ResultVisitor;
        impl<'de> Visitor<'de> for ResultVisitor {
            type Value = MutationResult;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mutation result")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MutationResult, A::Error> {
                match tagged::read_head(map, ["id", "status"])? {
                    Head::InOrder([id, status], fields) => Ok(MutationResult {
                        id: MutationId::deserialize(id).map_err(A::Error::custom)?,
                        outcome: Outcome::variant(
                            &tagged::tag_name::<A::Error>(status, "status")?,
                            fields,
                        )?,
                    }),
                    Head::Reordered(text) => tagged::reread(&text),
                }
            }
        }
        deserializer.deserialize_map(ResultVisitor)
    }
}

/// A mutation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Applied: the document's new state and version.
    Applied {
        /// The document after the mutation.
        doc: Document,
    },
    /// Not applied: another client changed the document since `base_version`.
    Conflict {
        /// The server's document.
        doc: Document,
    },
    /// Not applied, for the reason given.
    Rejected {
        /// Why.
        error: ErrorInfo,
    },
}

crate::deserialize_tagged!(Outcome, "status" {
    "applied" => Applied { doc: Document },
    "conflict" => Conflict { doc: Document },
    "rejected" => Rejected { error: ErrorInfo },
});

/// Every error code of the protocol (`docs/PROTOCOL.md`, *Error codes*), one list for the
/// server that sends them and the client that reads them. On the wire each is its snake_case
/// name; a code this build does not know (from a newer server) reads as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// An update or delete of a document the server does not have.
    NotFound,
    /// An insert of a document that exists.
    AlreadyExists,
    /// A write to a tombstone.
    Deleted,
    /// Another mutation of the same transaction was not applied.
    Aborted,
    /// The client gave up; the transaction was never applied.
    Abandoned,
    /// A replay of a mutation whose outcome is no longer kept.
    UnknownOutcome,
    /// The push does not continue the client's id sequence.
    MutationGap,
    /// A malformed message, body or query.
    BadRequest,
    /// The client id belongs to another user of the tenant.
    Forbidden,
    /// A document, an answer or an HTTP body exceeds its size limit.
    TooLarge,
    /// The message nests deeper than the limit.
    TooDeep,
    /// A push carries more mutations than the limit.
    BatchTooLarge,
    /// A push or pull before `hello`.
    HelloRequired,
    /// A WebSocket frame carries more messages than the limit.
    TooManyMessages,
    /// `hello` names more collections than the limit.
    TooManyCollections,
    /// The server or the user has as many connections as allowed.
    TooManyConnections,
    /// An HTTP body did not arrive within the read timeout.
    Timeout,
    /// No such endpoint.
    UnknownEndpoint,
    /// The endpoint does not take this method.
    MethodNotAllowed,
    /// `hello` with a protocol version the server does not speak.
    UnsupportedProtocol,
    /// A missing, invalid or expired token.
    Unauthorized,
    /// The browser origin is not allowed.
    ForbiddenOrigin,
    /// Too many requests.
    RateLimited,
    /// The server's storage failed.
    Storage,
    /// The server failed.
    Internal,
    /// The server cannot process the request now.
    Busy,
    /// Set by the client: an HTTP answer that is not a protocol message (from a proxy, say).
    HttpError,
    /// A code this build does not know.
    Unknown,
}
crate::deserialize_unit_enum!(ErrorCode {
    NotFound = "not_found",
    AlreadyExists = "already_exists",
    Deleted = "deleted",
    Aborted = "aborted",
    Abandoned = "abandoned",
    UnknownOutcome = "unknown_outcome",
    MutationGap = "mutation_gap",
    BadRequest = "bad_request",
    Forbidden = "forbidden",
    TooLarge = "too_large",
    TooDeep = "too_deep",
    BatchTooLarge = "batch_too_large",
    HelloRequired = "hello_required",
    TooManyMessages = "too_many_messages",
    TooManyCollections = "too_many_collections",
    TooManyConnections = "too_many_connections",
    Timeout = "timeout",
    UnknownEndpoint = "unknown_endpoint",
    MethodNotAllowed = "method_not_allowed",
    UnsupportedProtocol = "unsupported_protocol",
    Unauthorized = "unauthorized",
    ForbiddenOrigin = "forbidden_origin",
    RateLimited = "rate_limited",
    Storage = "storage",
    Internal = "internal",
    Busy = "busy",
    HttpError = "http_error",
    Unknown = "unknown",
} other Unknown);

impl ErrorCode {
    /// The code as the wire writes it.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            NotFound => "not_found",
            AlreadyExists => "already_exists",
            Deleted => "deleted",
            Aborted => "aborted",
            Abandoned => "abandoned",
            UnknownOutcome => "unknown_outcome",
            MutationGap => "mutation_gap",
            BadRequest => "bad_request",
            Forbidden => "forbidden",
            TooLarge => "too_large",
            TooDeep => "too_deep",
            BatchTooLarge => "batch_too_large",
            HelloRequired => "hello_required",
            TooManyMessages => "too_many_messages",
            TooManyCollections => "too_many_collections",
            TooManyConnections => "too_many_connections",
            Timeout => "timeout",
            UnknownEndpoint => "unknown_endpoint",
            MethodNotAllowed => "method_not_allowed",
            UnsupportedProtocol => "unsupported_protocol",
            Unauthorized => "unauthorized",
            ForbiddenOrigin => "forbidden_origin",
            RateLimited => "rate_limited",
            Storage => "storage",
            Internal => "internal",
            Busy => "busy",
            HttpError => "http_error",
            Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A structured error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    /// A stable machine-readable code.
    pub code: ErrorCode,
    /// A readable message.
    pub message: String,
    /// Whether the same request may succeed later.
    pub retryable: bool,
}

crate::deserialize_object!(ErrorInfo {
    "code" => code: ErrorCode,
    "message" => message: String,
    "retryable" => retryable: bool,
});

impl ErrorInfo {
    /// An error with these parts.
    pub fn new(code: ErrorCode, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            code,
            message: message.into(),
            retryable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The codes of the error table in docs/PROTOCOL.md.
    fn documented_codes() -> Vec<String> {
        let protocol = include_str!("../../../docs/PROTOCOL.md");
        let table = protocol.split("## Error codes").nth(1).unwrap();
        table
            .lines()
            .filter_map(|line| line.strip_prefix('|')?.split('|').next())
            .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned))
            .collect()
    }

    #[test]
    fn every_documented_error_code_is_one_code_of_the_enum() {
        let codes = documented_codes();
        assert!(codes.len() > 20, "{codes:?}");
        let mut known = Vec::new();
        for code in &codes {
            let read: ErrorCode = serde_json::from_value(json!(code)).unwrap();
            assert_ne!(
                read,
                ErrorCode::Unknown,
                "{code} is documented but not in the enum"
            );
            assert_eq!(read.as_str(), code);
            assert_eq!(serde_json::to_value(read).unwrap(), json!(code));
            known.push(read);
        }
        known.sort_by_key(|c| c.as_str());
        known.dedup();
        assert_eq!(known.len(), codes.len(), "no code is documented twice");
        let newer: ErrorCode = serde_json::from_value(json!("from_a_newer_server")).unwrap();
        assert_eq!(newer, ErrorCode::Unknown);
    }

    #[test]
    fn server_messages_read_back_as_written() {
        let doc = Document::new(
            "1",
            json!({"title": "a"}).as_object().unwrap().clone().into(),
            4,
            Hlc {
                wall: 10,
                counter: 1,
                node: 2,
            },
            false,
        );
        let messages = [
            ServerMessage::Pong,
            ServerMessage::Welcome {
                client_id: "c".into(),
                last_mutation_id: 3,
                head: 9,
            },
            ServerMessage::PushResult {
                seq: 2,
                results: vec![
                    MutationResult {
                        id: 1,
                        outcome: Outcome::Applied { doc: doc.clone() },
                    },
                    MutationResult {
                        id: 2,
                        outcome: Outcome::Conflict { doc: doc.clone() },
                    },
                    MutationResult {
                        id: 3,
                        outcome: Outcome::Rejected {
                            error: ErrorInfo::new(ErrorCode::NotFound, "gone", false),
                        },
                    },
                ],
                range: Some(CursorRange {
                    since: 1,
                    cursor: 2,
                }),
            },
            ServerMessage::PullPage {
                seq: 3,
                changes: vec![Change {
                    collection: "todos".into(),
                    doc,
                }],
                cursor: 4,
                has_more: true,
            },
            ServerMessage::Changes {
                changes: vec![],
                range: CursorRange {
                    since: 4,
                    cursor: 5,
                },
            },
            ServerMessage::Error {
                seq: None,
                error: ErrorInfo::new(ErrorCode::BadRequest, "no", false),
            },
        ];
        for message in messages {
            let text = serde_json::to_string(&message).unwrap();
            assert_eq!(
                serde_json::from_str::<ServerMessage>(&text).unwrap(),
                message
            );
            // A `Value` sorts its keys: `type` and `status` no longer come first.
            let value = serde_json::to_value(&message).unwrap();
            assert_eq!(
                serde_json::from_value::<ServerMessage>(value).unwrap(),
                message
            );
        }
        let unknown = serde_json::from_str::<ServerMessage>(r#"{"type":"hi"}"#).unwrap_err();
        assert!(unknown.to_string().starts_with("unknown variant `hi`"));
    }

    #[test]
    fn messages_have_a_stable_tagged_json_form() {
        let msg = ServerMessage::Error {
            seq: Some(3),
            error: ErrorInfo::new(ErrorCode::RateLimited, "slow down", true),
        };
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            json!({"type": "error", "seq": 3, "code": "rate_limited", "message": "slow down", "retryable": true})
        );
        let pull: ClientMessage =
            serde_json::from_value(json!({"type": "pull", "seq": 1, "cursor": 5, "limit": 100}))
                .unwrap();
        assert_eq!(
            pull,
            ClientMessage::Pull {
                seq: 1,
                cursor: 5,
                limit: 100
            }
        );
    }
}
