//! Queries through indexes and live queries, against the plain scan (`Query::run`): how the
//! planner answers, the automatic index rule, live query windows, and property tests over
//! random documents, writes (local, remote, completed, rolled back, hard-deleted, renamed) and
//! queries.

use ferrosync_core::collection::{ChangeKind, Collection, DocChange};
use ferrosync_core::document::{Document, Fields};
use ferrosync_core::hlc::Hlc;
use ferrosync_core::index::{IndexInfo, AUTOMATIC_AFTER, AUTOMATIC_MAX};
use ferrosync_core::mutation::Op;
use ferrosync_core::query::{Access, Query};
use ferrosync_core::transaction::TxId;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn fields(v: &Value) -> Fields {
    Fields::from_map(v.as_object().expect("an object"))
}

fn remote(c: &mut Collection, id: &str, version: u64, v: &Value, deleted: bool) {
    let doc = Document::new(id, fields(v), version, Hlc::default(), deleted);
    c.apply_remote(doc, None);
}

fn query(options: Value) -> Query {
    Query::from_json(&options).unwrap()
}

fn ids(docs: Vec<&Document>) -> Vec<String> {
    docs.into_iter().map(|d| d.id().to_owned()).collect()
}

/// `find`, `find_ids` and `count_matching` agree with the plain scan.
fn check(c: &Collection, q: &Query) {
    let expected = ids(q.run(c.docs()));
    assert_eq!(ids(c.find(q)), expected, "find {}", q.key());
    assert_eq!(found_ids(c, q), expected, "find_ids {}", q.key());
    assert_eq!(c.count_matching(q), expected.len(), "count {}", q.key());
}

fn found_ids(c: &Collection, q: &Query) -> Vec<String> {
    let mut found = Vec::new();
    c.find_ids(q, |id| found.push(id.to_owned()));
    found
}

/// 1,000 documents `{ n: i, done: i is odd, title }` in a collection declaring `indexes`.
fn numbered(indexes: &[&[&str]]) -> Collection {
    let mut c = Collection::new("todos");
    for fields in indexes {
        c.declare_index(fields.iter().map(|f| f.to_string()).collect());
    }
    for i in 0..1000 {
        let doc = json!({"n": i, "done": i % 2 == 1, "title": format!("t{:04}", 999 - i)});
        remote(&mut c, &format!("d{i:04}"), 1, &doc, false);
    }
    c
}

fn index(fields: &[&str], ordered: bool, exact: bool) -> Access {
    Access::Index {
        fields: fields.iter().map(|f| f.to_string()).collect(),
        ordered,
        exact,
    }
}

#[test]
fn the_planner_picks_the_index_that_reads_least() {
    let c = numbered(&[&["done"], &["done", "title"], &["n"]]);
    let cases = [
        // An equality: the posting, in `_id` order, counted without reading documents.
        (
            json!({"where": {"done": false}}),
            index(&["done"], true, true),
        ),
        (
            json!({"where": {"done": false}, "limit": 5}),
            index(&["done"], true, true),
        ),
        // Equality then the sort field: read in order, stopping at the limit; backwards too.
        (
            json!({"where": {"done": false}, "sort": "title", "limit": 5}),
            index(&["done", "title"], true, true),
        ),
        (
            json!({"where": {"done": true}, "sort": ["-title"], "offset": 3, "limit": 5}),
            index(&["done", "title"], true, true),
        ),
        // A range, with a residual condition: the index narrows, every candidate is checked.
        (
            json!({"where": {"n": {"$gt": 990}}}),
            index(&["n"], false, true),
        ),
        (
            json!({"where": {"n": {"$gte": 10, "$lt": 20}}, "sort": "n"}),
            index(&["n"], true, true),
        ),
        (
            json!({"where": {"n": {"$lt": 10}, "title": {"$ne": "x"}}}),
            index(&["n"], false, false),
        ),
        (
            json!({"where": {"n": {"$in": [3, 5, 3000]}}}),
            index(&["n"], false, true),
        ),
        // `_id` lookups, and what no index serves.
        (
            json!({"where": {"_id": {"$in": ["d0001", "x"]}}}),
            Access::Ids,
        ),
        (json!({"where": {"title": "t0001"}}), Access::Scan),
        (
            json!({"where": {"done": false}, "includeDeleted": true}),
            Access::Scan,
        ),
    ];
    for (options, expected) in cases {
        let q = query(options.clone());
        assert_eq!(c.explain(&q), expected, "{options}");
        check(&c, &q);
    }
}

#[test]
fn indexes_follow_every_kind_of_change() {
    let mut c = numbered(&[&["done", "n"]]);
    let open = query(json!({"where": {"done": false, "n": {"$lt": 6}}, "sort": "n"}));
    let found = |c: &Collection| ids(c.find(&open));
    assert_eq!(found(&c), ["d0000", "d0002", "d0004"]);
    let patch = |v: Value| Op::Update { patch: fields(&v) };
    let insert = Op::Insert {
        fields: fields(&json!({"n": 1, "done": false})),
    };
    // Optimistic writes show in the index at once; rolling one back takes it out again.
    c.add_pending(
        TxId(1),
        "d0001",
        patch(json!({"done": false})),
        Hlc::default(),
        None,
    );
    c.add_pending(TxId(2), "new", insert, Hlc::default(), None);
    assert_eq!(found(&c), ["d0000", "d0001", "new", "d0002", "d0004"]);
    c.remove_pending(TxId(1), "d0001", None);
    assert_eq!(found(&c), ["d0000", "new", "d0002", "d0004"]);
    // A remote change under a pending write: the overlay is rebuilt on top of it.
    c.add_pending(
        TxId(3),
        "d0002",
        patch(json!({"title": "mine"})),
        Hlc::default(),
        None,
    );
    remote(&mut c, "d0002", 2, &json!({"n": 9, "done": false}), false);
    assert_eq!(found(&c), ["d0000", "new", "d0004"]);
    // A soft delete leaves the index, a rolled back insert too, and a hard delete.
    c.add_pending(TxId(4), "d0000", Op::Delete, Hlc::default(), None);
    c.remove_pending(TxId(2), "new", None);
    c.remove("d0004", None);
    assert_eq!(found(&c), Vec::<String>::new());
    check(
        &c,
        &query(json!({"where": {"done": false, "n": {"$lt": 6}}, "includeDeleted": true})),
    );
    assert_eq!(
        c.count_matching(&query(json!({"where": {"done": false}}))),
        498
    );
}

#[test]
fn a_field_that_scans_keep_naming_gets_an_index() {
    let c = numbered(&[]);
    let by_title = query(json!({"where": {"title": {"$gte": "t0990"}}, "sort": "-n"}));
    let expected = ids(by_title.run(c.docs()));
    for _ in 1..AUTOMATIC_AFTER {
        assert_eq!(ids(c.find(&by_title)), expected);
        // Queries with tombstones never use indexes, so they do not count.
        c.find(&query(
            json!({"where": {"title": "x"}, "includeDeleted": true}),
        ));
    }
    assert!(c.indexes().is_empty());
    assert_eq!(c.explain(&by_title), Access::Scan);
    assert_eq!(ids(c.find(&by_title)), expected);
    let automatic = |fields: &[&str]| IndexInfo {
        fields: fields.iter().map(|f| f.to_string()).collect(),
        automatic: true,
    };
    assert_eq!(c.indexes(), [automatic(&["title"])]);
    assert_eq!(c.explain(&by_title), index(&["title"], false, true));
    // Without a filter, the first sort field counts; with neither, `_id` (for a limit).
    for _ in 0..AUTOMATIC_AFTER {
        c.find(&query(json!({"sort": ["n", "title"], "limit": 3})));
        c.find(&query(json!({"limit": 3})));
    }
    assert_eq!(
        c.indexes(),
        [
            automatic(&["title"]),
            automatic(&["n"]),
            automatic(&["_id"])
        ]
    );
    assert_eq!(
        c.explain(&query(json!({"limit": 3}))),
        index(&["_id"], true, true)
    );
    // At most AUTOMATIC_MAX of them.
    for field in 0..2 * AUTOMATIC_MAX {
        for _ in 0..AUTOMATIC_AFTER {
            c.count_matching(&query(json!({"where": {format!("f{field}"): 1}})));
        }
    }
    assert_eq!(c.indexes().len(), AUTOMATIC_MAX);
}

/// Applies live query changes to a mirror of the window: id → fields.
fn mirror(window: &mut BTreeMap<String, Fields>, changes: &[DocChange]) {
    for change in changes {
        match (change.kind, &change.doc) {
            (ChangeKind::Removed, _) => {
                assert!(window.remove(&change.id).is_some(), "removed {}", change.id)
            }
            (ChangeKind::Added, Some(doc)) => assert!(
                window
                    .insert(change.id.clone(), doc.fields().owned())
                    .is_none(),
                "added {}",
                change.id
            ),
            (ChangeKind::Updated, Some(doc)) => assert!(
                window
                    .insert(change.id.clone(), doc.fields().owned())
                    .is_some(),
                "updated {}",
                change.id
            ),
            (kind, None) => panic!("{kind:?} without a document"),
        }
    }
}

fn fresh(c: &Collection, q: &Query) -> BTreeMap<String, Fields> {
    q.run(c.docs())
        .into_iter()
        .map(|d| (d.id().to_owned(), d.fields().owned()))
        .collect()
}

#[test]
fn live_queries_are_shared_and_report_exact_window_changes() {
    let mut c = numbered(&[]);
    let window = query(json!({"where": {"done": false}, "sort": "-n", "offset": 1, "limit": 3}));
    let id = c.watch(window.clone());
    assert_eq!(
        c.watch(query(
            json!({"limit": 3, "offset": 1, "sort": ["-n"], "where": {"done": {"$eq": false}}})
        )),
        id
    );
    assert_ne!(
        c.watch(query(
            json!({"where": {"done": false}, "sort": "-n", "limit": 3})
        )),
        id
    );
    assert_eq!(c.explain(&window), Access::Live);
    assert_eq!(ids(c.find(&window)), ["d0996", "d0994", "d0992"]);
    let mut shown = fresh(&c, &window);
    let mut step = |c: &mut Collection, expected: &[(&str, ChangeKind)]| {
        let all = c.take_live_changes();
        let mine: Vec<DocChange> = all
            .into_iter()
            .filter(|(live, _)| *live == id)
            .flat_map(|(_, changes)| changes)
            .collect();
        let kinds: Vec<(&str, ChangeKind)> =
            mine.iter().map(|ch| (ch.id.as_str(), ch.kind)).collect();
        assert_eq!(kinds, expected);
        mirror(&mut shown, &mine);
        assert_eq!(shown, fresh(c, &window));
        assert_eq!(ids(c.find(&window)), ids(window.run(c.docs())));
    };
    // A new first result pushes the window along: one enters at its start, one leaves its end.
    remote(&mut c, "top", 1, &json!({"n": 5000, "done": false}), false);
    step(
        &mut c,
        &[("d0992", ChangeKind::Removed), ("d0998", ChangeKind::Added)],
    );
    // A change inside the window, then one that moves a result out of it (another refills it).
    remote(
        &mut c,
        "d0996",
        2,
        &json!({"n": 996, "done": false, "x": 1}),
        false,
    );
    step(&mut c, &[("d0996", ChangeKind::Updated)]);
    remote(&mut c, "d0996", 3, &json!({"n": 996, "done": true}), false);
    step(
        &mut c,
        &[("d0992", ChangeKind::Added), ("d0996", ChangeKind::Removed)],
    );
    // Outside the window, nothing; a write that rolls back, both ways.
    remote(
        &mut c,
        "d0000",
        2,
        &json!({"n": 0, "done": false, "y": 1}),
        false,
    );
    step(&mut c, &[]);
    c.add_pending(TxId(1), "d0998", Op::Delete, Hlc::default(), None);
    step(
        &mut c,
        &[("d0990", ChangeKind::Added), ("d0998", ChangeKind::Removed)],
    );
    c.remove_pending(TxId(1), "d0998", None);
    step(
        &mut c,
        &[("d0990", ChangeKind::Removed), ("d0998", ChangeKind::Added)],
    );
    // The last subscriber gone, the query runs again.
    c.unwatch(id);
    assert_eq!(c.explain(&window), Access::Live);
    c.unwatch(id);
    assert_eq!(c.explain(&window), Access::Scan);
}

#[test]
fn rebuilding_after_a_bulk_load_keeps_indexes_and_live_queries_exact() {
    let mut c = numbered(&[&["done", "n"]]);
    let q = query(json!({"where": {"done": false, "n": {"$lt": 10}}, "sort": "-n", "limit": 3}));
    let id = c.watch(q.clone());
    remote(&mut c, "d0002", 2, &json!({"n": 2, "done": true}), false);
    c.take_live_changes();
    c.index_all();
    check(&c, &q);
    check(
        &c,
        &query(json!({"where": {"done": true, "n": {"$gt": 990}}})),
    );
    assert_eq!(c.count(), 1000);
    // The window as it stands, reported as updated (its documents may have changed).
    let changes: Vec<(String, ChangeKind)> = c
        .take_live_changes()
        .into_iter()
        .filter(|(live, _)| *live == id)
        .flat_map(|(_, changes)| changes)
        .map(|ch| (ch.id, ch.kind))
        .collect();
    let updated = |id: &str| (id.to_string(), ChangeKind::Updated);
    assert_eq!(
        changes,
        [updated("d0004"), updated("d0006"), updated("d0008")]
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

const IDS: usize = 10;

/// A write to the collection.
#[derive(Debug, Clone)]
enum Write {
    Insert(usize, Value),
    Update(usize, Value),
    Delete(usize),
    Remote(usize, Value, bool),
    /// Ends (completes or rolls back) the nth oldest unfinished write.
    Finish(usize),
    HardDelete(usize),
    Rename(usize, usize),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        prop::sample::select(vec![-2.5, 0.5, 1.5, 2.0]).prop_map(Value::from),
        prop::sample::select(vec!["", "a", "B", "b", "ab", "1", "é"]).prop_map(Value::from),
        Just(json!([1, "a"])),
        Just(json!({"k": 1})),
    ]
}

/// Documents over a few fields, each maybe missing: `n`, `s`, `b` and `o` (`{ k }` or not an
/// object).
fn doc_fields() -> impl Strategy<Value = Value> {
    let field = |s: BoxedStrategy<Value>| prop::option::weighted(0.8, s);
    (
        field(value().boxed()),
        field(value().boxed()),
        field(any::<bool>().prop_map(Value::from).boxed()),
        field(prop_oneof![value().prop_map(|k| json!({ "k": k })), value()].boxed()),
    )
        .prop_map(|(n, s, b, o)| {
            let mut doc = serde_json::Map::new();
            for (name, v) in [("n", n), ("s", s), ("b", b), ("o", o)] {
                if let Some(v) = v {
                    doc.insert(name.into(), v);
                }
            }
            Value::Object(doc)
        })
}

fn write() -> impl Strategy<Value = Write> {
    let id = 0..IDS;
    prop_oneof![
        3 => (id.clone(), doc_fields()).prop_map(|(i, v)| Write::Insert(i, v)),
        3 => (id.clone(), doc_fields()).prop_map(|(i, v)| Write::Update(i, v)),
        1 => id.clone().prop_map(Write::Delete),
        3 => (id.clone(), doc_fields(), prop::bool::weighted(0.15)).prop_map(|(i, v, d)| Write::Remote(i, v, d)),
        3 => (0..4usize).prop_map(Write::Finish),
        1 => id.clone().prop_map(Write::HardDelete),
        1 => (id.clone(), id).prop_map(|(a, b)| Write::Rename(a, b)),
    ]
}

const PATHS: [&str; 6] = ["n", "s", "b", "o", "o.k", "_id"];

fn condition() -> impl Strategy<Value = (String, Value)> {
    let path = prop::sample::select(PATHS.to_vec());
    let ordered = prop_oneof![
        (-3i64..4).prop_map(Value::from),
        prop::sample::select(vec!["", "a", "b", "d3"]).prop_map(Value::from)
    ];
    let op = prop_oneof![
        value().prop_map(|v| v),
        value().prop_map(|v| json!({ "$eq": v })),
        value().prop_map(|v| json!({ "$ne": v })),
        (
            prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]),
            ordered.clone()
        )
            .prop_map(|(op, v)| json!({ op: v })),
        (ordered.clone(), ordered).prop_map(|(a, b)| json!({ "$gte": a, "$lt": b })),
        prop::collection::vec(value(), 0..3).prop_map(|vs| json!({ "$in": vs })),
        prop::collection::vec(value(), 0..3).prop_map(|vs| json!({ "$nin": vs })),
        any::<bool>().prop_map(|b| json!({ "$exists": b })),
        prop::collection::vec(prop::sample::select(vec!["d1", "d2", "d5", "x"]), 0..3)
            .prop_map(|vs| json!({ "$in": vs })),
    ];
    (path, op).prop_map(|(p, op)| (p.to_string(), op))
}

fn query_options() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(condition(), 0..3),
        prop::collection::vec((prop::sample::select(PATHS.to_vec()), any::<bool>()), 0..3),
        prop::option::weighted(0.3, 0usize..4),
        prop::option::weighted(0.6, 0usize..6),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(conditions, sort, offset, limit, include_deleted)| {
            let sort: Vec<String> = sort.into_iter().map(|(f, desc)| format!("{}{f}", if desc { "-" } else { "" })).collect();
            let mut q = json!({ "where": conditions.into_iter().collect::<serde_json::Map<_, _>>(), "sort": sort });
            if let Some(offset) = offset {
                q["offset"] = offset.into();
            }
            if let Some(limit) = limit {
                q["limit"] = limit.into();
            }
            if include_deleted {
                q["includeDeleted"] = true.into();
            }
            q
        })
}

fn indexes() -> impl Strategy<Value = Vec<Vec<String>>> {
    let all: Vec<Vec<&str>> = vec![
        vec!["n"],
        vec!["s"],
        vec!["b"],
        vec!["o.k"],
        vec!["_id"],
        vec!["b", "n"],
        vec!["s", "n"],
        vec!["n", "o.k", "s"],
    ];
    prop::sample::subsequence(all, 0..5).prop_map(|list| {
        list.into_iter()
            .map(|f| f.into_iter().map(String::from).collect())
            .collect()
    })
}

/// Applies one write the way the engine does: optimistic writes as transactions of their own.
fn apply(c: &mut Collection, open: &mut Vec<(TxId, String)>, next: &mut u64, w: &Write) {
    let id = |i: &usize| format!("d{i}");
    let mut pending = |c: &mut Collection, i: &usize, op: Op| {
        *next += 1;
        c.add_pending(TxId(*next), &id(i), op, Hlc::default(), None);
        open.push((TxId(*next), id(i)));
    };
    match w {
        Write::Insert(i, v) => pending(c, i, Op::Insert { fields: fields(v) }),
        Write::Update(i, v) => pending(c, i, Op::Update { patch: fields(v) }),
        Write::Delete(i) => pending(c, i, Op::Delete),
        Write::Remote(i, v, deleted) => {
            *next += 1;
            remote(c, &id(i), *next, v, *deleted);
        }
        Write::Finish(nth) => {
            if !open.is_empty() {
                let (tx, doc) = open.remove(nth % open.len());
                c.remove_pending(tx, &doc, None);
            }
        }
        Write::HardDelete(i) => {
            c.remove(&id(i), None);
        }
        Write::Rename(a, b) => {
            c.rename(&id(a), &id(b), None);
            for (_, doc) in open.iter_mut().filter(|(_, doc)| *doc == id(a)) {
                *doc = id(b);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Every query, through whatever index the planner picks (declared or automatic), returns
    /// and counts what a plain scan finds, after every write.
    #[test]
    fn indexed_queries_equal_a_scan(
        declared in indexes(),
        writes in prop::collection::vec(write(), 1..40),
        queries in prop::collection::vec(query_options(), 1..6),
    ) {
        let mut c = Collection::new("todos");
        for fields in declared {
            c.declare_index(fields);
        }
        let queries: Vec<Query> = queries.iter().map(|q| query(q.clone())).collect();
        let (mut open, mut next) = (Vec::new(), 0);
        for w in &writes {
            apply(&mut c, &mut open, &mut next, w);
            for q in &queries {
                check(&c, q);
            }
        }
    }

    /// Live queries keep their results equal to a fresh run after every write, and the changes
    /// they report turn the previous window into the new one.
    #[test]
    fn live_queries_equal_a_fresh_run(
        declared in indexes(),
        writes in prop::collection::vec(write(), 1..40),
        queries in prop::collection::vec(query_options(), 1..6),
    ) {
        let mut c = Collection::new("todos");
        for fields in declared {
            c.declare_index(fields);
        }
        let (mut open, mut next) = (Vec::new(), 0);
        // Some documents before the queries start.
        for w in &writes[..writes.len() / 2] {
            apply(&mut c, &mut open, &mut next, w);
        }
        let mut live: Vec<_> = queries
            .iter()
            .map(|q| {
                let q = query(q.clone());
                let id = c.watch(q.clone());
                let shown = fresh(&c, &q);
                (q, id, shown)
            })
            .collect();
        for w in &writes[writes.len() / 2..] {
            apply(&mut c, &mut open, &mut next, w);
            let changes: BTreeMap<_, _> = c.take_live_changes().into_iter().collect();
            for (q, id, shown) in &mut live {
                mirror(shown, changes.get(id).map_or(&[][..], Vec::as_slice));
                prop_assert_eq!(&*shown, &fresh(&c, q), "changes of {}", q.key());
                prop_assert_eq!(ids(c.find(q)), ids(q.run(c.docs())), "results of {}", q.key());
                prop_assert_eq!(found_ids(&c, q), ids(q.run(c.docs())), "ids of {}", q.key());
                prop_assert_eq!(c.count_matching(q), shown.len());
            }
        }
    }
}
