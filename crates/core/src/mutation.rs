//! Mutations: what a write does to one document, and how it applies.

use crate::document::{parse_document, Document, Fields, DELETED_FIELD};
use crate::hlc::Hlc;
use crate::protocol::ErrorCode;
use crate::{CoreError, DocId, Millis, MutationId, Version};
use serde::Serialize;
use serde_json::{Map, Value};

/// The change a mutation makes to its document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// Create a document that does not exist.
    Insert {
        /// The new document's fields.
        fields: Fields,
    },
    /// Shallow-merge fields into an existing document.
    Update {
        /// The fields to set.
        patch: Fields,
    },
    /// Soft-delete: turn the document into a tombstone.
    Delete,
    /// Replace the document's fields, creating it if needed (conflict resolutions use this).
    Put {
        /// The document's new fields.
        fields: Fields,
    },
}

crate::deserialize_tagged!(Op, "type" {
    "insert" => Insert { fields: Fields },
    "update" => Update { patch: Fields },
    "delete" => Delete,
    "put" => Put { fields: Fields },
});

/// Why an op could not apply to a document's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpError {
    /// The document does not exist.
    NotFound,
    /// An insert found a live document.
    AlreadyExists,
    /// The document is a tombstone; deletes are final.
    Deleted,
}

impl OpError {
    /// The protocol's error code for this failure.
    pub fn code(self) -> ErrorCode {
        match self {
            OpError::NotFound => ErrorCode::NotFound,
            OpError::AlreadyExists => ErrorCode::AlreadyExists,
            OpError::Deleted => ErrorCode::Deleted,
        }
    }

    /// The engine's error for this failure of a write to document `id` of `collection`.
    pub fn refusal(self, collection: &str, id: &str) -> CoreError {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        match self {
            OpError::NotFound => CoreError::NotFound { collection, id },
            OpError::AlreadyExists => CoreError::AlreadyExists { collection, id },
            OpError::Deleted => CoreError::Deleted { collection, id },
        }
    }
}

impl Op {
    /// The document after this op, stamped with `hlc`, keeping the current server version.
    pub fn apply(
        &self,
        id: &str,
        current: Option<&Document>,
        hlc: Hlc,
    ) -> Result<Document, OpError> {
        if current.is_some_and(|doc| doc.deleted()) {
            return Err(OpError::Deleted);
        }
        let version = current.map_or(0, |doc| doc.version());
        let merged;
        let (fields, deleted) = match (self, current) {
            (Op::Insert { .. }, Some(_)) => return Err(OpError::AlreadyExists),
            (Op::Insert { fields } | Op::Put { fields }, _) => (fields.view(), false),
            (Op::Update { .. } | Op::Delete, None) => return Err(OpError::NotFound),
            (Op::Update { patch }, Some(doc)) => {
                merged = doc.fields().merge(patch);
                (merged.view(), false)
            }
            (Op::Delete, Some(doc)) => (doc.fields(), true),
        };
        Ok(Document::new(id, fields, version, hlc, deleted))
    }

    /// The op to re-send when the local change wins a conflict: an insert that met an existing
    /// document becomes a replacement; other ops keep their meaning on the newer document.
    pub fn rebased(&self) -> Op {
        match self {
            Op::Insert { fields } => Op::Put {
                fields: fields.clone(),
            },
            other => other.clone(),
        }
    }
}

/// A write to one document, as the application asked for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MutationRequest {
    /// The collection written.
    pub collection: String,
    /// The document written.
    pub doc_id: DocId,
    /// What the write does.
    pub op: Op,
    /// The application's data about the write (`{ metadata }` of `insert`, `update`, `delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl MutationRequest {
    /// An insert of `doc` (a JSON object with its `_id`) into `collection`.
    pub fn insert(collection: &str, doc: Value) -> Result<Self, CoreError> {
        let (doc_id, fields) = parse_document(doc)?;
        Ok(MutationRequest {
            collection: collection.into(),
            doc_id,
            op: Op::Insert { fields },
            metadata: None,
        })
    }
}

/// A write inside a transaction, with what the engine tracks for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mutation {
    /// The collection written.
    pub collection: String,
    /// The document written.
    pub doc_id: DocId,
    /// What the write does.
    pub op: Op,
    /// When the write was made (orders last-write-wins).
    pub hlc: Hlc,
    /// The server version of the document this write was made against (0: none); a newer
    /// version by another client on the server is a conflict.
    pub base_version: Version,
    /// The synced document this write was made against, kept for custom conflict resolvers
    /// (boxed, as the parked conflict: most writes have neither, and a mutation stays small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Box<Document>>,
    /// The wire id, assigned when the transaction is first sent and kept across re-sends.
    pub wire_id: Option<MutationId>,
    /// A conflict waiting in the inbox for `resolveConflict`, if any.
    pub parked: Option<Box<ParkedConflict>>,
    /// The document's fields as the application saw them when it made the write (the synced
    /// document with earlier pending writes applied); `None` when there was no document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Fields>,
    /// The application's data about the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// When the write was last changed after it was made (a conflict's resolution, an id the
    /// backend assigned); `None` while it is as made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<Millis>,
}

crate::deserialize_object!(MutationRequest {
    "collection" => collection: String,
    "doc_id" => doc_id: DocId,
    "op" => op: Op,
    "metadata" => metadata: Option<Value> = default,
});

crate::deserialize_object!(Mutation {
    "collection" => collection: String,
    "doc_id" => doc_id: DocId,
    "op" => op: Op,
    "hlc" => hlc: Hlc,
    "base_version" => base_version: Version,
    "base" => base: Option<Box<Document>> = default,
    "wire_id" => wire_id: Option<MutationId> = default,
    "parked" => parked: Option<Box<ParkedConflict>> = default,
    "original" => original: Option<Fields> = default,
    "metadata" => metadata: Option<Value> = default,
    "changed_at" => changed_at: Option<Millis> = default,
});

impl Mutation {
    /// A write made against `base_version`, holding nothing else yet.
    pub fn new(collection: String, doc_id: DocId, op: Op, hlc: Hlc, base_version: Version) -> Self {
        Mutation {
            collection,
            doc_id,
            op,
            hlc,
            base_version,
            base: None,
            wire_id: None,
            parked: None,
            original: None,
            metadata: None,
            changed_at: None,
        }
    }

    /// The document after this write, from `original` (`None` if the write cannot apply to it).
    pub fn modified(&self) -> Option<Document> {
        let original = self
            .original
            .as_ref()
            .map(|fields| Document::new(&self.doc_id, fields.view(), 0, Hlc::default(), false));
        self.op
            .apply(&self.doc_id, original.as_ref(), self.hlc)
            .ok()
    }

    /// The fields this write changed, with their new values: those it set to a different
    /// value, `null` for those it removed (a replacement), and `_deleted: true` for a delete.
    pub fn changes(&self) -> Map<String, Value> {
        let before = self
            .original
            .as_ref()
            .map(Fields::to_map)
            .unwrap_or_default();
        let Some(after) = self.modified() else {
            return Map::new();
        };
        // Inserted one by one: `collect()` into a map compiles a stable sort of its entries in.
        let mut changes = Map::new();
        for (name, value) in after.fields().to_map() {
            if before.get(&name) != Some(&value) {
                changes.insert(name, value);
            }
        }
        for name in before.keys() {
            if !after.fields().contains_key(name) {
                changes.insert(name.clone(), Value::Null);
            }
        }
        if after.deleted() {
            changes.insert(DELETED_FIELD.into(), Value::Bool(true));
        }
        changes
    }
}

/// A conflict the custom resolver left unresolved, kept until the application resolves it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParkedConflict {
    /// The document as this client wanted it.
    pub local: Option<Document>,
    /// The server's document.
    pub remote: Document,
    /// The document both sides started from, if known.
    pub base: Option<Document>,
}

crate::deserialize_object!(ParkedConflict {
    "local" => local: Option<Document> = default,
    "remote" => remote: Document,
    "base" => base: Option<Document> = default,
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: serde_json::Value) -> Fields {
        value.as_object().unwrap().clone().into()
    }

    #[test]
    fn ops_are_tagged_by_type() {
        let ops = [
            (
                Op::Insert {
                    fields: fields(json!({"a": 1})),
                },
                json!({"type": "insert", "fields": {"a": 1}}),
            ),
            (
                Op::Update {
                    patch: fields(json!({"a": 2})),
                },
                json!({"type": "update", "patch": {"a": 2}}),
            ),
            (Op::Delete, json!({"type": "delete"})),
            (
                Op::Put {
                    fields: fields(json!({})),
                },
                json!({"type": "put", "fields": {}}),
            ),
        ];
        for (op, wire) in ops {
            assert_eq!(serde_json::to_value(&op).unwrap(), wire);
            assert_eq!(serde_json::from_value::<Op>(wire).unwrap(), op);
        }
    }

    #[test]
    fn a_write_reports_the_fields_it_changed() {
        let write = |op: Op, original: Option<serde_json::Value>| Mutation {
            original: original.map(fields),
            ..Mutation::new("todos".into(), "x".into(), op, Hlc::default(), 0)
        };
        let update = write(
            Op::Update {
                patch: fields(json!({"a": 1, "b": 3})),
            },
            Some(json!({"a": 1, "b": 2})),
        );
        assert_eq!(Value::Object(update.changes()), json!({"b": 3}));
        assert_eq!(
            update.modified().map(|d| d.fields().owned()),
            Some(fields(json!({"a": 1, "b": 3})))
        );
        let put = write(
            Op::Put {
                fields: fields(json!({"c": 1})),
            },
            Some(json!({"a": 1})),
        );
        assert_eq!(Value::Object(put.changes()), json!({"a": null, "c": 1}));
        let delete = write(Op::Delete, Some(json!({"a": 1})));
        assert_eq!(Value::Object(delete.changes()), json!({"_deleted": true}));
        let insert = write(
            Op::Insert {
                fields: fields(json!({"a": 1})),
            },
            None,
        );
        assert_eq!(Value::Object(insert.changes()), json!({"a": 1}));
        assert_eq!(
            write(Op::Delete, None).changes(),
            Map::new(),
            "cannot apply"
        );
    }

    #[test]
    fn ops_apply_with_their_documented_meaning() {
        let hlc = Hlc::default();
        let inserted = Op::Insert {
            fields: fields(json!({"a": 1, "b": 2})),
        }
        .apply("x", None, hlc)
        .unwrap();
        let updated = Op::Update {
            patch: fields(json!({"b": 3})),
        }
        .apply("x", Some(&inserted), hlc)
        .unwrap();
        assert_eq!(updated.fields(), fields(json!({"a": 1, "b": 3})));
        let deleted = Op::Delete.apply("x", Some(&updated), hlc).unwrap();
        assert!(deleted.deleted());
        assert_eq!(
            Op::Update {
                patch: Fields::new()
            }
            .apply("x", Some(&deleted), hlc),
            Err(OpError::Deleted)
        );
        assert_eq!(Op::Delete.apply("x", None, hlc), Err(OpError::NotFound));
        assert_eq!(
            Op::Insert {
                fields: Fields::new()
            }
            .apply("x", Some(&inserted), hlc),
            Err(OpError::AlreadyExists)
        );
        let put = Op::Put {
            fields: fields(json!({"c": 1})),
        }
        .apply("x", Some(&inserted), hlc)
        .unwrap();
        assert_eq!(put.fields(), fields(json!({"c": 1})));
    }
}
