//! Live queries: a query's results kept up to date from change events, in O(log n) per change,
//! so an optimistic write reaches a subscribed query without rescanning the collection.

use crate::collection::{Collection, DocChange};
use crate::document::Document;
use crate::query::{Query, SortKey};
use crate::DocId;
use std::collections::{BTreeSet, HashMap};

/// A query whose ordered result set follows the collection's changes.
#[derive(Debug, Clone)]
pub struct LiveQuery {
    collection: String,
    query: Query,
    order: BTreeSet<(SortKey, DocId)>,
    keys: HashMap<DocId, SortKey>,
}

impl LiveQuery {
    /// Runs `query` once over `collection` and starts following it.
    pub fn new(query: Query, collection: &Collection) -> Self {
        let mut live = Self {
            collection: collection.name().to_owned(),
            query,
            order: BTreeSet::new(),
            keys: HashMap::new(),
        };
        for doc in collection.docs() {
            if live.query.matches(doc) {
                live.insert(doc);
            }
        }
        live
    }

    /// Applies change events; returns whether the visible results (within the limit) changed.
    pub fn apply(&mut self, changes: &[DocChange]) -> bool {
        let mut changed = false;
        for change in changes {
            if change.collection != self.collection {
                continue;
            }
            let old = self.keys.remove(&change.id);
            let old_in_window = old.as_ref().is_some_and(|k| self.in_window(k, &change.id));
            if let Some(key) = old {
                self.order.remove(&(key, change.id.clone()));
            }
            let new_in_window = match &change.doc {
                Some(doc) if self.query.matches(doc) => {
                    let key = self.insert(doc);
                    self.in_window(&key, &doc.id)
                }
                _ => false,
            };
            changed |= old_in_window || new_in_window;
        }
        changed
    }

    /// The ids of the current results, in order, within the limit.
    pub fn ids(&self) -> impl Iterator<Item = &DocId> {
        self.order
            .iter()
            .take(self.query.limit.unwrap_or(usize::MAX))
            .map(|(_, id)| id)
    }

    /// The current results, in order, within the limit.
    pub fn results<'a>(&'a self, collection: &'a Collection) -> impl Iterator<Item = &'a Document> {
        self.ids().filter_map(|id| collection.get(id))
    }

    fn insert(&mut self, doc: &Document) -> SortKey {
        let key = self.query.sort_key(doc);
        self.order.insert((key.clone(), doc.id.clone()));
        self.keys.insert(doc.id.clone(), key.clone());
        key
    }

    /// Whether an entry at `key` sits within the first `limit` results.
    fn in_window(&self, key: &SortKey, id: &DocId) -> bool {
        match self.query.limit {
            None => true,
            Some(limit) => self
                .order
                .iter()
                .nth(limit.saturating_sub(1))
                .is_none_or(|last| (key, id) <= (&last.0, &last.1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::mutation::Op;
    use crate::transaction::TxId;
    use serde_json::json;

    fn insert(c: &mut Collection, tx: u64, id: &str, v: serde_json::Value) -> DocChange {
        let op = Op::Insert {
            fields: v.as_object().unwrap().clone().into(),
        };
        c.add_pending(TxId(tx), id, op, Hlc::default(), None)
            .unwrap()
    }

    #[test]
    fn follows_inserts_updates_and_removals_in_sort_order() {
        let mut c = Collection::new("todos");
        insert(&mut c, 1, "a", json!({"title": "b", "done": false}));
        let q = Query::from_json(&json!({"where": {"done": false}, "sort": "title"})).unwrap();
        let mut live = LiveQuery::new(q.clone(), &c);
        let change = insert(&mut c, 2, "b", json!({"title": "a", "done": false}));
        assert!(live.apply(&[change]));
        assert_eq!(live.ids().collect::<Vec<_>>(), ["b", "a"]);
        let done = c
            .add_pending(
                TxId(3),
                "b",
                Op::Update {
                    patch: json!({"done": true}).as_object().unwrap().clone().into(),
                },
                Hlc::default(),
                None,
            )
            .unwrap();
        assert!(live.apply(&[done]));
        assert_eq!(live.ids().collect::<Vec<_>>(), ["a"]);
        // The incremental result equals a fresh run of the query.
        let fresh: Vec<_> = q.run(c.docs()).into_iter().map(|d| d.id.clone()).collect();
        assert_eq!(live.ids().cloned().collect::<Vec<_>>(), fresh);
    }

    #[test]
    fn changes_outside_the_limit_window_do_not_count_as_changes() {
        let mut c = Collection::new("todos");
        for (i, t) in ["a", "b", "c"].iter().enumerate() {
            insert(&mut c, i as u64, t, json!({"title": t}));
        }
        let q = Query::from_json(&json!({"sort": "title", "limit": 2})).unwrap();
        let mut live = LiveQuery::new(q, &c);
        let late = insert(&mut c, 9, "z", json!({"title": "z"}));
        assert!(!live.apply(&[late]));
        let early = insert(&mut c, 10, "0", json!({"title": "0"}));
        assert!(live.apply(&[early]));
        assert_eq!(live.ids().collect::<Vec<_>>(), ["0", "a"]);
    }
}
