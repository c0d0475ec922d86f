//! Documents a custom backend's sync source delivers (`setup`'s data, `onUpdate`): read from
//! the application's JSON, they replace the synced state, or wait while the ordered strategy
//! holds their object under a transaction.

use super::{Engine, Object, SyncType};
use crate::document::{parse_document, Document, DELETED_FIELD};
use crate::CoreError;
use serde_json::Value;
use std::collections::BTreeSet;

impl Engine {
    /// Takes in documents from a custom backend. Under the ordered strategy, documents for
    /// locked objects wait until the lock is released.
    pub(super) fn remote(&mut self, docs: Vec<(String, Document)>, complete: Option<Vec<String>>) {
        if !self.is_custom() || !self.config.direction.pulls() {
            return;
        }
        let log = self.start_log(SyncType::Pull);
        let count = docs.len();
        let mut seen: BTreeSet<Object> = BTreeSet::new();
        for (collection, doc) in docs {
            if !self.is_synced(&collection) {
                continue;
            }
            let key = (collection, doc.id().to_owned());
            seen.insert(key.clone());
            self.take_remote(key, Some(doc));
        }
        for collection in complete.unwrap_or_default() {
            let gone: Vec<Object> = match self.collections.get(&collection) {
                Some(c) if self.is_synced(&collection) => c
                    .synced_docs()
                    .map(|d| (collection.clone(), d.id().to_owned()))
                    .filter(|key| !seen.contains(key))
                    .collect(),
                _ => continue,
            };
            for key in gone {
                self.take_remote(key, None);
            }
        }
        self.status.pulled(count, self.now);
        self.finish_log(log, count, 0, None);
    }

    fn take_remote(&mut self, key: Object, doc: Option<Document>) {
        if self.config.mutation_strategy.is_ordered() && self.is_locked(&key) {
            self.custom.deferred.insert(key, doc);
            return;
        }
        self.set_remote(key, doc);
    }

    /// Makes `doc` the synced state of an object (`None`: removes it).
    fn set_remote(&mut self, (collection, id): Object, doc: Option<Document>) {
        let merge = self.merge_fn();
        self.replacing_synced(&collection, &id);
        let c = self.collections.get_mut(&collection).expect("synced");
        let change = match doc {
            Some(mut doc) => {
                doc.set_version(c.synced(&id).map_or(1, |d| d.version() + 1));
                c.set_synced(doc, merge.as_ref())
            }
            None => c.remove(&id, merge.as_ref()),
        };
        self.out.changes.extend(change);
        self.store.docs.insert((collection, id));
    }

    /// An object's lock was released: a remote document held back for it applies now.
    pub(super) fn release_deferred(&mut self, key: &Object) {
        if !self.custom.deferred.contains_key(key) || self.is_locked(key) {
            return;
        }
        let doc = self.custom.deferred.remove(key).expect("checked");
        self.set_remote(key.clone(), doc);
    }
}

/// Documents by collection, and the collections they cover.
pub type RemoteData = (Vec<(String, Document)>, Vec<String>);

/// Reads a sync source's data (`setup`'s `data`, `onUpdate`'s argument): an array of documents
/// when the engine has one synced collection, or an object of arrays by collection name.
/// A document with `_deleted: true` is a tombstone. Returns the documents and the collections
/// the data covers.
pub fn remote_documents(data: Value, synced: &[&str]) -> Result<RemoteData, CoreError> {
    let bad = |why: String| CoreError::BadRemoteData(why);
    let groups: Vec<(String, Value)> = match data {
        Value::Array(_) if synced.len() == 1 => vec![(synced[0].to_owned(), data)],
        Value::Array(_) => {
            return Err(bad(format!(
                "with {} synced collections, give documents by collection: {{ name: [...] }}",
                synced.len()
            )))
        }
        Value::Object(map) => map.into_iter().collect(),
        other => {
            return Err(bad(format!(
                "expected an array of documents or {{ collection: [...] }}, got {}",
                crate::error::json_type(&other)
            )))
        }
    };
    let mut out = Vec::new();
    let covered = groups.iter().map(|(c, _)| c.clone()).collect();
    for (collection, docs) in groups {
        if !synced.contains(&collection.as_str()) {
            return Err(bad(format!("`{collection}` is not a synced collection")));
        }
        let Value::Array(docs) = docs else {
            return Err(bad(format!("`{collection}` must be an array of documents")));
        };
        for mut value in docs {
            let deleted = match value.as_object_mut().map(|o| o.remove(DELETED_FIELD)) {
                Some(Some(Value::Bool(deleted))) => deleted,
                Some(None) | None => false,
                Some(Some(_)) => return Err(bad("`_deleted` must be true or false".into())),
            };
            let (id, fields) = parse_document(value).map_err(|e| bad(e.to_string()))?;
            let doc = Document::new(&id, fields, 0, Default::default(), deleted);
            out.push((collection.clone(), doc));
        }
    }
    Ok((out, covered))
}
