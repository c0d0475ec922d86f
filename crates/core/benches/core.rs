//! Core benchmarks (criterion): applying many mutations to a large collection, the latency of an
//! optimistic insert reaching 1 and 100 live queries (BRIEF section 6 target: p50 <= 0.1 ms at
//! 100k documents for one), and reads by scan and through indexes. `cargo bench -p
//! ferrosync-core`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ferrosync_core::document::{parse_document, parse_patch, Document};
use ferrosync_core::engine::{
    hash, index_for, CollectionConfig, Effect, Engine, EngineConfig, Input, Page, Snapshot,
};
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::{MutationRequest, Op};
use ferrosync_core::protocol::{Change, CursorRange, ServerMessage};
use ferrosync_core::query::Query;
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};

const NOW: u64 = 1_767_225_600_000;
const DOCS: usize = 100_000;
const MUTATIONS: usize = 10_000;

fn doc(i: usize, version: u64) -> Document {
    let (id, fields) = parse_document(
        json!({"_id": format!("d{i:06}"), "title": format!("title {i:06}"), "done": i % 2 == 0}),
    )
    .unwrap();
    Document::new(
        &id,
        fields,
        version,
        Hlc {
            wall: NOW,
            counter: 0,
            node: 7,
        },
        false,
    )
}

/// A loaded engine holding `n` synced documents in `todos`.
fn engine(n: usize) -> Engine {
    engine_with(n, 100, &[])
}

/// A loaded engine holding `n` synced documents in `todos`, which declares `indexes`.
fn engine_with(n: usize, batch_size: usize, indexes: &[&[&str]]) -> Engine {
    let mut engine = Engine::new(config(batch_size, indexes)).unwrap();
    engine.handle(Input::Loaded(stored(pages(n))), NOW).unwrap();
    engine
}

/// The configuration of those engines: one synced collection, `todos`.
fn config(batch_size: usize, indexes: &[&[&str]]) -> EngineConfig {
    EngineConfig {
        collections: vec![CollectionConfig {
            name: "todos".into(),
            sync: true,
            indexes: indexes
                .iter()
                .map(|fields| fields.iter().map(|f| f.to_string()).collect())
                .collect(),
        }],
        batch_size,
        ..EngineConfig::default()
    }
}

/// Storage holding these pages alone.
fn stored(pages: Vec<Vec<u8>>) -> Snapshot {
    Snapshot {
        pages: pages.into(),
        ..Snapshot::default()
    }
}

/// The pages of storage holding `n` synced documents in `todos`, about 2,000 a page.
fn pages(n: usize) -> Vec<Vec<u8>> {
    let docs: Vec<Document> = (0..n).map(|i| doc(i, i as u64 + 1)).collect();
    let count = n.div_ceil(2_000).max(1);
    let mut pages: Vec<Vec<Document>> = vec![Vec::new(); count];
    for doc in docs {
        pages[index_for(count, hash(doc.id())).unwrap() as usize].push(doc);
    }
    pages
        .into_iter()
        .enumerate()
        .map(|(index, docs)| {
            Page {
                collection: "todos".into(),
                index: index as u32,
                count: count as u32,
                as_of: 1,
                docs,
            }
            .encode()
        })
        .collect()
}

fn update(i: usize) -> Input {
    Input::commit(vec![MutationRequest {
        collection: "todos".into(),
        doc_id: format!("d{i:06}"),
        op: Op::Update {
            patch: parse_patch(json!({"done": true})).unwrap(),
        },
        metadata: None,
    }])
}

/// Completes every storage write the step asked for, and those that follow.
fn persist_all(e: &mut Engine, mut effects: Vec<Effect>) {
    while let Some(token) = effects.iter().find_map(|effect| match effect {
        Effect::Persist(write) => Some(write.token),
        _ => None,
    }) {
        effects = e.handle(Input::Persisted { token }, NOW).unwrap().effects;
    }
}

/// A connected engine (batches of 1000) with 4000 transactions on the wire, unanswered.
fn syncing_engine() -> Engine {
    let mut e = engine_with(DOCS, 1000, &[]);
    e.handle(Input::Connected { live: true }, NOW).unwrap();
    let welcome = ServerMessage::Welcome {
        client_id: e.client_id().to_owned(),
        last_mutation_id: 0,
        head: DOCS as u64,
    };
    e.handle(Input::Server(welcome), NOW).unwrap();
    let mut effects = Vec::new();
    for i in 0..5_000 {
        effects.extend(e.handle(update(i), NOW).unwrap().effects);
    }
    persist_all(&mut e, effects);
    e
}

fn apply_mutations(c: &mut Criterion) {
    let mut group = c.benchmark_group("100k_docs");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("commit_10k_local_updates", |b| {
        b.iter_batched(
            || engine(DOCS),
            |mut e| {
                for i in 0..MUTATIONS {
                    black_box(e.handle(update(i * 7), NOW).unwrap());
                }
                e
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("commit_10k_updates_while_syncing", |b| {
        b.iter_batched(
            syncing_engine,
            |mut e| {
                for i in 0..MUTATIONS {
                    black_box(e.handle(update(5_000 + i), NOW).unwrap());
                }
                e
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("apply_10k_remote_changes", |b| {
        b.iter_batched(
            || {
                let changes = (0..MUTATIONS)
                    .map(|i| Change {
                        collection: "todos".into(),
                        doc: doc(i * 7, (DOCS + i + 1) as u64),
                    })
                    .collect();
                let range = CursorRange {
                    since: DOCS as u64,
                    cursor: (DOCS + MUTATIONS) as u64,
                };
                (
                    engine(DOCS),
                    Input::Server(ServerMessage::Changes { changes, range }),
                )
            },
            |(mut e, input)| {
                black_box(e.handle(input, NOW).unwrap());
                e
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Commits one insert; returns whether each of the `queries` live queries reported it.
fn insert_into_live_queries(e: &mut Engine, queries: usize, i: usize) -> bool {
    // Each new title sorts first, so every insert lands in every query's window.
    let title = format!("a {:09}", 999_999_999 - i);
    let id = format!("new{i}");
    let doc = json!({"_id": id, "title": title, "done": false});
    e.handle(
        Input::commit(vec![MutationRequest::insert("todos", doc).unwrap()]),
        NOW,
    )
    .unwrap();
    let live = e.take_live_changes();
    live.len() == queries && live.iter().all(|l| l.changes.iter().any(|c| c.id == id))
}

/// An engine of `DOCS` documents with `queries` live queries over the open ones, sorted by
/// title, each with its own limit.
fn watched_engine(queries: usize) -> Engine {
    let mut e = engine(DOCS);
    for q in 0..queries {
        let query = json!({"where": {"done": false}, "sort": "title", "limit": 50 + q});
        e.watch("todos", Query::from_json(&query).unwrap()).unwrap();
    }
    e
}

fn optimistic_insert_to_live_queries(c: &mut Criterion) {
    for queries in [1, 100] {
        let mut e = watched_engine(queries);
        let mut i = 0;
        let name = format!("100k_docs/optimistic_insert_visible_to_{queries}_live_queries");
        c.bench_function(&name, |b| {
            b.iter(|| {
                i += 1;
                assert!(insert_into_live_queries(&mut e, queries, i));
            })
        });
        // The per-operation distribution, from a fresh engine: inserts timed one by one.
        let mut e = watched_engine(queries);
        let mut samples: Vec<Duration> = (0..MUTATIONS / 10)
            .map(|i| {
                let start = Instant::now();
                assert!(insert_into_live_queries(&mut e, queries, i));
                start.elapsed()
            })
            .collect();
        samples.sort_unstable();
        let pct = |p: usize| samples[samples.len() * p / 100];
        println!(
            "optimistic insert -> {queries} live queries at {DOCS} docs: p50 {:?}, p99 {:?}, max {:?}",
            pct(50),
            pct(99),
            samples[samples.len() - 1]
        );
    }
}

/// Reads over 100k documents, by scanning (`Query::run`, the reference every plan must agree
/// with) and through declared indexes.
fn reads(c: &mut Criterion) {
    let e = engine_with(DOCS, 100, &[&["done"], &["done", "title"], &["title"]]);
    let todos = e.collection("todos").unwrap();
    let queries = [
        (
            "find_where_sort_limit_50",
            json!({"where": {"done": false}, "sort": "title", "limit": 50}),
        ),
        (
            "find_where_limit_50",
            json!({"where": {"done": false}, "limit": 50}),
        ),
        (
            "find_where_limit_3000",
            json!({"where": {"done": false}, "limit": 3000}),
        ),
        (
            "find_range_limit_100",
            json!({"where": {"title": {"$gt": "title 05"}}, "limit": 100}),
        ),
    ];
    for (label, query) in queries {
        let query = Query::from_json(&query).unwrap();
        c.bench_function(&format!("100k_docs/{label}/scan"), |b| {
            b.iter(|| black_box(query.run(todos.docs()).len()))
        });
        c.bench_function(&format!("100k_docs/{label}/index"), |b| {
            b.iter(|| black_box(todos.find(&query).len()))
        });
    }
    let open = Query::from_json(&json!({"where": {"done": false}})).unwrap();
    c.bench_function("100k_docs/count_where/scan", |b| {
        b.iter(|| black_box(open.count(todos.docs())))
    });
    c.bench_function("100k_docs/count_where/index", |b| {
        b.iter(|| black_box(todos.count_matching(&open)))
    });
}

/// Loading 100k documents from storage (pages of 2,000): the core's part of a cold start.
fn load(c: &mut Criterion) {
    let pages = pages(DOCS);
    c.bench_function("100k_docs/load_from_pages", |b| {
        b.iter_batched(
            || (Engine::new(config(100, &[])).unwrap(), pages.clone()),
            |(mut e, pages)| {
                e.handle(Input::Loaded(stored(pages)), NOW).unwrap();
                black_box(e)
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(
    benches,
    apply_mutations,
    optimistic_insert_to_live_queries,
    reads,
    load
);
criterion_main!(benches);
