use super::*;
use crate::hlc::Hlc;
use crate::CoreError;
use serde_json::{json, Value};

fn doc(id: &str, fields: Value, deleted: bool) -> Document {
    Document::new(
        id,
        fields.as_object().unwrap().clone().into(),
        0,
        Hlc::default(),
        deleted,
    )
}

fn query(options: Value) -> Query {
    Query::from_json(&options).unwrap()
}

fn ids<'a>(docs: impl IntoIterator<Item = &'a Document>) -> Vec<&'a str> {
    docs.into_iter().map(|d| d.id()).collect()
}

fn error(options: Value) -> String {
    match Query::from_json(&options) {
        Err(CoreError::InvalidQuery(message)) => message,
        other => panic!("{options} should be refused, got {other:?}"),
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
    let q = query(json!({"where": {"done": false}, "sort": "title"}));
    assert_eq!(ids(q.run(docs.iter())), ["2", "1"]);
    assert_eq!(q.count(docs.iter()), 2, "count agrees with run");
    let q = query(json!({"sort": "-title", "limit": 2, "includeDeleted": true}));
    assert_eq!(ids(q.run(docs.iter())), ["3", "1"]);
    assert_eq!(q.count(docs.iter()), 2, "the limit applies to count too");
    let q = query(json!({"where": {"_deleted": true}, "includeDeleted": true}));
    assert_eq!(ids(q.run(docs.iter())), ["4"]);
    let q = query(json!({"sort": "title", "offset": 1, "limit": 1}));
    assert_eq!(ids(q.run(docs.iter())), ["1"]);
    assert_eq!(q.count(docs.iter()), 1);
    let q = query(json!({"offset": 5}));
    assert_eq!((q.run(docs.iter()).len(), q.count(docs.iter())), (0, 0));
}

#[test]
fn a_window_is_cut_from_the_full_order() {
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
        let all = query(json!({ "sort": sort })).run(docs.iter());
        for (offset, limit) in [
            (0, 0),
            (0, 1),
            (3, 7),
            (0, 250),
            (250, 499),
            (10, 500),
            (0, 900),
        ] {
            let q = query(json!({"sort": sort, "offset": offset, "limit": limit}));
            let expected = &all[offset.min(all.len())..(offset + limit).min(all.len())];
            assert_eq!(q.run(docs.iter()), expected, "sort {sort} {offset}+{limit}");
            assert_eq!(q.count(docs.iter()), expected.len());
        }
    }
}

#[test]
fn without_sort_fields_a_window_holds_the_first_matches_by_id_in_any_arrival_order() {
    // A query without sort fields stops reading the fields of documents whose ids come after
    // its window's: the windows still equal those cut from the full result, with tombstones,
    // ids of unequal lengths and documents arriving in a shuffled order.
    let mut rng = crate::rng::Rng::new(11);
    let mut docs: Vec<Document> = (0..600)
        .map(|i| {
            let fields = json!({"done": rng.next_u64() % 3 == 0, "n": i});
            doc(&format!("d{i}"), fields, i % 7 == 0)
        })
        .collect();
    for i in (1..docs.len()).rev() {
        docs.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    for (filter, deleted) in [
        (json!({"done": false}), false),
        (json!({"done": true}), true),
        (json!({}), false),
        (json!({"n": {"$gte": 590}}), false),
    ] {
        let all = query(json!({"where": filter, "includeDeleted": deleted})).run(docs.iter());
        assert!(all.windows(2).all(|w| w[0].id() < w[1].id()));
        for (offset, limit) in [(0, 0), (0, 1), (0, 50), (7, 13), (40, 400), (0, 1000)] {
            let q = query(json!({
                "where": filter, "includeDeleted": deleted, "offset": offset, "limit": limit
            }));
            let expected = &all[offset.min(all.len())..(offset + limit).min(all.len())];
            assert_eq!(
                ids(q.run(docs.iter())),
                ids(expected.iter().copied()),
                "{filter} {offset}+{limit}"
            );
        }
    }
}

#[test]
fn a_scan_matches_every_document_once_whatever_batch_it_is_read_in() {
    // Counts around the read-ahead batch, with tombstones among the documents.
    for n in [0, 1, 15, 16, 17, 33, 101] {
        let docs: Vec<Document> = (0..n)
            .rev()
            .map(|i| doc(&format!("{i:03}"), json!({"odd": i % 2}), i % 5 == 0))
            .collect();
        let q = query(json!({"where": {"odd": 1}}));
        let mut expected: Vec<&Document> = docs.iter().filter(|d| q.matches(d)).collect();
        expected.sort_by(|a, b| a.id().cmp(b.id()));
        assert_eq!(q.run(docs.iter()), expected, "{n} documents");
        assert_eq!(q.count(docs.iter()), expected.len(), "{n} documents");
        let q = query(json!({"where": {"odd": 1}, "limit": 3}));
        assert_eq!(q.run(docs.iter()), &expected[..expected.len().min(3)]);
    }
}

#[test]
fn operators_compare_values_by_type() {
    let docs = [
        doc(
            "a",
            json!({"n": 1, "s": "apple", "tags": ["x"], "at": {"city": "Oslo"}}),
            false,
        ),
        doc(
            "b",
            json!({"n": 2.5, "s": "Banana", "tags": ["x", "y"], "at": {"city": "Rome"}}),
            false,
        ),
        doc(
            "c",
            json!({"n": "3", "s": null, "at": {"city": null}}),
            false,
        ),
        doc("d", json!({"n": -4e1, "at": "nowhere"}), false),
        doc("e", json!({"n": 10}), false),
    ];
    let cases = [
        (json!({"n": 1}), vec!["a"]),
        (json!({"n": {"$eq": 1.0}}), vec!["a"]),
        (json!({"n": {"$ne": 1}}), vec!["b", "c", "d", "e"]),
        // Comparisons only match values of the operand's type.
        (json!({"n": {"$gt": 1}}), vec!["b", "e"]),
        (json!({"n": {"$gte": 1, "$lt": 10}}), vec!["a", "b"]),
        (json!({"n": {"$lte": -40}}), vec!["d"]),
        (json!({"n": {"$gte": "0"}}), vec!["c"]),
        (json!({"s": {"$lt": "b"}}), vec!["a", "b"]),
        (json!({"n": {"$in": [1, "3", 99]}}), vec!["a", "c"]),
        (json!({"n": {"$nin": [1, "3"]}}), vec!["b", "d", "e"]),
        (json!({"n": {"$in": []}}), vec![]),
        // A missing field counts as null, except for `$exists`.
        (json!({"s": null}), vec!["c", "d", "e"]),
        (json!({"s": {"$ne": null}}), vec!["a", "b"]),
        (json!({"s": {"$exists": true}}), vec!["a", "b", "c"]),
        (json!({"s": {"$exists": false}}), vec!["d", "e"]),
        (
            json!({"s": {"$in": [null, "apple"]}}),
            vec!["a", "c", "d", "e"],
        ),
        // Whole arrays and objects, and dotted paths into nested objects.
        (json!({"tags": ["x", "y"]}), vec!["b"]),
        (json!({"at": {"$eq": {"city": "Oslo"}}}), vec!["a"]),
        (json!({"at.city": "Rome"}), vec!["b"]),
        (json!({"at.city": null}), vec!["c", "d", "e"]),
        (json!({"at.city": {"$exists": true}}), vec!["a", "b", "c"]),
        (json!({"at.city": {"$gte": "P"}}), vec!["b"]),
        (json!({"_id": {"$in": ["e", "a", "zz"]}}), vec!["a", "e"]),
        (json!({"_id": {"$gt": "c"}}), vec!["d", "e"]),
        (
            json!({"_deleted": false, "n": {"$exists": true}}),
            vec!["a", "b", "c", "d", "e"],
        ),
    ];
    for (filter, expected) in cases {
        let q = query(json!({ "where": filter }));
        assert_eq!(ids(q.run(docs.iter())), expected, "{filter}");
    }
}

#[test]
fn sorting_orders_types_then_values_with_missing_as_null() {
    let docs = [
        doc("a", json!({"v": "x"}), false),
        doc("b", json!({"v": 2}), false),
        doc("c", json!({}), false),
        doc("d", json!({"v": true}), false),
        doc("e", json!({"v": null}), false),
        doc("f", json!({"v": [1]}), false),
        doc("g", json!({"v": -1, "w": {"k": 2}}), false),
        doc("h", json!({"v": -1, "w": {"k": 1}}), false),
    ];
    let sorted = |sort: Value| ids(query(json!({ "sort": sort })).run(docs.iter()));
    assert_eq!(sorted(json!("v")), ["c", "e", "d", "g", "h", "b", "a", "f"]);
    assert_eq!(
        sorted(json!("-v")),
        ["f", "a", "b", "g", "h", "d", "c", "e"]
    );
    assert_eq!(
        sorted(json!(["v", "w.k"])),
        ["c", "e", "d", "h", "g", "b", "a", "f"]
    );
    assert_eq!(
        sorted(json!(["-v", "-w.k"])),
        ["f", "a", "b", "g", "h", "d", "c", "e"]
    );
}

#[test]
fn equal_queries_have_one_key() {
    let key = |options: Value| query(options).key();
    assert_eq!(
        key(json!({"where": {"a": 1, "b": {"$gt": 2, "$lt": 5}}, "sort": "a"})),
        key(json!({"sort": ["a"], "where": {"b": {"$lt": 5, "$gt": 2}, "a": {"$eq": 1}}})),
    );
    assert_eq!(
        key(json!({})),
        key(json!({"offset": 0, "includeDeleted": false}))
    );
    assert_ne!(key(json!({"limit": 5})), key(json!({"limit": 6})));
    assert_ne!(key(json!({"sort": "a"})), key(json!({"sort": "-a"})));
    assert_ne!(
        key(json!({"where": {"a": "1"}})),
        key(json!({"where": {"a": 1}}))
    );
    assert_ne!(
        key(json!({"where": {"a.b": 1}})),
        key(json!({"where": {"a": {"b": 1}}}))
    );
}

#[test]
fn bad_queries_name_the_operator_or_option() {
    let cases = [
        (json!({"wher": {}}), "unknown query option `wher`"),
        (json!({"limit": -1}), "`limit` must be a whole number"),
        (json!({"offset": 1.5}), "`offset` must be a whole number"),
        (json!({"where": []}), "`where` must be an object"),
        (
            json!({"where": {"n": {"$gt": 1, "$foo": 2}}}),
            "unknown query operator `$foo`",
        ),
        (
            json!({"where": {"$or": []}}),
            "unknown query operator `$or`",
        ),
        (
            json!({"where": {"n": {"$gt": [1]}}}),
            "`$gt` needs a number or a string, got an array",
        ),
        (
            json!({"where": {"n": {"$lte": null}}}),
            "`$lte` needs a number or a string, got null",
        ),
        (
            json!({"where": {"n": {"$in": 1}}}),
            "`$in` needs an array, got a number",
        ),
        (
            json!({"where": {"n": {"$nin": "a"}}}),
            "`$nin` needs an array, got a string",
        ),
        (
            json!({"where": {"n": {"$exists": 1}}}),
            "`$exists` needs true or false",
        ),
        (
            json!({"where": {"n": {"$eq": 1, "x": 2}}}),
            "`n` mixes operators and fields",
        ),
        (json!({"where": {"a..b": 1}}), "got `a..b`"),
        (json!({"sort": 1}), "`sort` takes field names"),
        (json!({"sort": ["a", "-"]}), "got ``"),
        (
            json!({"includeDeleted": "yes"}),
            "`includeDeleted` must be true or false",
        ),
        (json!([]), "a query must be an object"),
    ];
    for (options, expected) in cases {
        let message = error(options.clone());
        assert!(
            message.contains(expected),
            "{options}: `{message}` should say {expected}"
        );
    }
}
