//! Queries answered from memory: `where` equality, sort, limit and tombstone visibility.

use crate::document::{Document, ID_FIELD};
use crate::error::json_type;
use crate::CoreError;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A query over one collection, as `find({ where, sort, limit, includeDeleted })` takes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Field equality conditions, all of which must hold: each field and the canonical JSON
    /// text of its value (equal values have equal text).
    pub filter: Vec<(String, String)>,
    /// Sort fields, most significant first; ties are broken by `_id`.
    pub sort: Vec<SortField>,
    /// At most this many results.
    pub limit: Option<usize>,
    /// Include soft-deleted documents.
    pub include_deleted: bool,
}

/// One sort field.
#[derive(Debug, Clone, PartialEq)]
pub struct SortField {
    /// The field name.
    pub field: String,
    /// Largest first.
    pub descending: bool,
}

impl Query {
    /// Parses `{ where?: {field: value}, sort?: "f" | "-f" | ["a", "-b"], limit?: n,
    /// includeDeleted?: bool }`. Unknown keys and wrong types are errors naming the key.
    pub fn from_json(value: &Value) -> Result<Query, CoreError> {
        let bad = |what: String| CoreError::InvalidConfig(format!("query: {what}"));
        let Value::Object(options) = value else {
            return Err(bad(format!("expected an object, got {}", json_type(value))));
        };
        let mut query = Query::default();
        for (key, value) in options {
            match (key.as_str(), value) {
                ("where", Value::Object(conditions)) => {
                    query.filter = conditions
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect();
                }
                ("sort", Value::String(field)) => query.sort = vec![SortField::parse(field)],
                ("sort", Value::Array(fields)) => {
                    query.sort = fields
                        .iter()
                        .map(|f| match f {
                            Value::String(f) => Ok(SortField::parse(f)),
                            other => Err(bad(format!(
                                "sort fields must be strings, got {}",
                                json_type(other)
                            ))),
                        })
                        .collect::<Result<_, _>>()?;
                }
                ("limit", Value::Number(n)) if n.as_u64().is_some() => {
                    query.limit = n.as_u64().map(|n| n as usize);
                }
                ("includeDeleted", Value::Bool(b)) => query.include_deleted = *b,
                ("where" | "sort" | "limit" | "includeDeleted", other) => {
                    return Err(bad(format!(
                        "`{key}` has the wrong type ({})",
                        json_type(other)
                    )));
                }
                _ => return Err(bad(format!("unknown option `{key}`"))),
            }
        }
        Ok(query)
    }

    /// Whether a document passes the filter and tombstone rule.
    pub fn matches(&self, doc: &Document) -> bool {
        (self.include_deleted || !doc.deleted)
            && self
                .filter
                .iter()
                .all(|(field, want)| doc.raw_field(field).as_deref().unwrap_or("null") == want)
    }

    /// Orders two documents as the query's results are ordered (sort fields, then `_id`).
    pub fn compare(&self, a: &Document, b: &Document) -> Ordering {
        for s in &self.sort {
            let (x, y) = (a.field(&s.field), b.field(&s.field));
            let order = compare_json(
                x.as_ref().unwrap_or(&Value::Null),
                y.as_ref().unwrap_or(&Value::Null),
            );
            let order = if s.descending { order.reverse() } else { order };
            if order != Ordering::Equal {
                return order;
            }
        }
        a.id.cmp(&b.id)
    }

    /// The key ordering a document in this query's results.
    pub fn sort_key(&self, doc: &Document) -> SortKey {
        SortKey(
            self.sort
                .iter()
                .map(|s| (doc.field(&s.field).unwrap_or(Value::Null), s.descending))
                .collect(),
        )
    }

    /// How many documents `run` would return (the limit applies), without collecting or
    /// sorting them.
    pub fn count<'a>(&self, docs: impl Iterator<Item = &'a Document>) -> usize {
        let matching = docs.filter(|d| self.matches(d));
        match self.limit {
            Some(limit) => matching.take(limit).count(),
            None => matching.count(),
        }
    }

    /// Runs the query over documents: filter, sort (then `_id`), limit. With a limit, the
    /// first `limit` matches are kept in a heap as the documents stream by (one comparison for
    /// most documents), and only those are sorted.
    pub fn run<'a>(&self, docs: impl Iterator<Item = &'a Document>) -> Vec<&'a Document> {
        let matching = docs.filter(|d| self.matches(d));
        let mut hits: Vec<&Document> = match self.limit {
            Some(0) => return Vec::new(),
            Some(limit) => {
                let mut best = BinaryHeap::with_capacity(limit + 1);
                for doc in matching {
                    if best.len() < limit {
                        best.push(Ranked { query: self, doc });
                    } else if let Some(mut worst) = best.peek_mut() {
                        if self.compare(doc, worst.doc) == Ordering::Less {
                            *worst = Ranked { query: self, doc };
                        }
                    }
                }
                best.into_iter().map(|r| r.doc).collect()
            }
            None => matching.collect(),
        };
        hits.sort_unstable_by(|a, b| self.compare(a, b));
        hits
    }
}

/// A document ordered as a query orders its results (for the top-`limit` heap).
struct Ranked<'q, 'a> {
    query: &'q Query,
    doc: &'a Document,
}

impl PartialEq for Ranked<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked<'_, '_> {}

impl PartialOrd for Ranked<'_, '_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked<'_, '_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.query.compare(self.doc, other.doc)
    }
}

impl SortField {
    fn parse(spec: &str) -> SortField {
        match spec.strip_prefix('-') {
            Some(field) => SortField {
                field: field.into(),
                descending: true,
            },
            None => SortField {
                field: if spec.is_empty() { ID_FIELD } else { spec }.into(),
                descending: false,
            },
        }
    }
}

/// Sort-field values with their directions, totally ordered.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey(pub Vec<(Value, bool)>);

impl Eq for SortKey {}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        for ((a, desc), (b, _)) in self.0.iter().zip(&other.0) {
            let order = compare_json(a, b);
            let order = if *desc { order.reverse() } else { order };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

/// A total order on JSON values: null < booleans < numbers < strings < arrays < objects.
pub fn compare_json(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .map(|(x, y)| compare_json(x, y))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Object(x), Value::Object(y)) => compare_objects(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn compare_objects(x: &Map<String, Value>, y: &Map<String, Value>) -> Ordering {
    x.iter()
        .zip(y)
        .map(|((kx, vx), (ky, vy))| kx.cmp(ky).then_with(|| compare_json(vx, vy)))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or_else(|| x.len().cmp(&y.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use serde_json::json;

    fn doc(id: &str, fields: Value, deleted: bool) -> Document {
        Document {
            id: id.into(),
            fields: fields.as_object().unwrap().clone().into(),
            version: 0,
            hlc: Hlc::default(),
            deleted,
        }
    }

    #[test]
    fn filters_sorts_limits_and_hides_tombstones() {
        let docs = [
            doc("1", json!({"done": false, "title": "b"}), false),
            doc("2", json!({"done": false, "title": "a"}), false),
            doc("3", json!({"done": true, "title": "c"}), false),
            doc("4", json!({"done": false, "title": "0"}), true),
        ];
        let q = Query::from_json(&json!({"where": {"done": false}, "sort": "title"})).unwrap();
        let ids: Vec<_> = q.run(docs.iter()).iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["2", "1"]);
        assert_eq!(q.count(docs.iter()), 2, "count agrees with run");
        let q = Query::from_json(&json!({"sort": "-title", "limit": 2, "includeDeleted": true}))
            .unwrap();
        let ids: Vec<_> = q.run(docs.iter()).iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["3", "1"]);
        assert_eq!(q.count(docs.iter()), 2, "the limit applies to count too");
        let q = Query::from_json(&json!({"where": {"_deleted": true}, "includeDeleted": true}))
            .unwrap();
        assert_eq!(q.run(docs.iter()).len(), 1);
    }

    #[test]
    fn a_limit_gives_the_first_results_of_the_full_order() {
        let mut rng = crate::rng::Rng::new(7);
        let docs: Vec<Document> = (0..500)
            .map(|i| {
                let rank = rng.next_u64() % 20;
                doc(
                    &format!("{i:03}"),
                    json!({"rank": rank, "odd": i % 2}),
                    false,
                )
            })
            .collect();
        for sort in [json!("rank"), json!(["-rank", "odd"]), json!("-_id")] {
            let all = Query::from_json(&json!({"sort": sort}))
                .unwrap()
                .run(docs.iter());
            for limit in [0, 1, 7, 250, 499, 500, 900] {
                let q = Query::from_json(&json!({"sort": sort, "limit": limit})).unwrap();
                let expected = &all[..limit.min(all.len())];
                assert_eq!(q.run(docs.iter()), expected, "sort {sort} limit {limit}");
            }
        }
    }

    #[test]
    fn bad_queries_name_the_option() {
        let err = Query::from_json(&json!({"wher": {}})).unwrap_err();
        assert!(err.to_string().contains("unknown option `wher`"));
        let err = Query::from_json(&json!({"limit": -1})).unwrap_err();
        assert!(err.to_string().contains("`limit` has the wrong type"));
    }

    #[test]
    fn json_values_are_totally_ordered_across_types() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1.5),
            json!(2),
            json!("a"),
            json!([1]),
            json!({"a": 1}),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(compare_json(&pair[0], &pair[1]), Ordering::Less, "{pair:?}");
        }
    }
}
