//! The configuration's rules, each checked through `parse`.

use super::*;
use ferrosync_core::conflict::ConflictStrategy;
use ferrosync_core::engine::{CollectionConfig, Direction, HistoryRetention};
use serde_json::json;
use std::rc::Rc;

fn base() -> Value {
    json!({ "name": "app", "collections": [{ "name": "todos" }] })
}

fn with(extra: Value) -> Value {
    let mut config = base();
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config
}

fn error(config: Value) -> String {
    parse(&config, Callbacks::default()).unwrap_err().0
}

#[test]
fn defaults_match_the_documented_ones() {
    let options = parse(&base(), Callbacks::default()).unwrap();
    assert_eq!(options.name, "app");
    assert_eq!(
        options.engine.collections,
        vec![CollectionConfig {
            name: "todos".into(),
            sync: true,
            indexes: Vec::new(),
        }]
    );
    assert_eq!(options.engine.direction, Direction::Both);
    assert_eq!(options.engine.batch_size, 100);
    assert_eq!(options.engine.pull_interval_ms, 30_000);
    assert_eq!(options.engine.retry, RetryPolicy::default());
    assert!(options.engine.mutation_strategy.is_ordered());
    assert!(options.remote.is_none());
    assert!(options.auto_start && options.request_persistence);
    assert_eq!(options.storage, StorageKind::IndexedDb);
    assert_eq!(options.engine.history, HistoryRetention::default());
}

#[test]
fn every_option_is_read() {
    let options = parse(
        &with(json!({
            "collections": [
                { "name": "todos", "sync": true, "indexes": ["done", ["done", "title"]] },
                { "name": "cache", "sync": false },
            ],
            "serverUrl": "wss://sync.example.com/v1/sync",
            "authToken": "t",
            "direction": "pull",
            "conflictStrategy": "server-wins",
            "mutationStrategy": { "type": "parallel" },
            "autoRetry": false, "retryDelay": 50, "maxRetryAttempts": 2, "maxRetryDelay": 400,
            "pullInterval": 500, "batchSize": 1000, "ackTimeout": 2000,
            "autoStart": false, "requestPersistence": false,
            "storage": { "kind": "memory" },
            "transactionHistory": { "keep": 50, "maxAgeMs": 86_400_000 },
        })),
        Callbacks::default(),
    )
    .unwrap();
    assert!(!options.engine.collections[1].sync);
    assert_eq!(
        options.engine.collections[0].indexes,
        [
            vec!["done".to_string()],
            vec!["done".into(), "title".into()]
        ]
    );
    assert_eq!(options.engine.direction, Direction::Pull);
    assert!(matches!(
        options.engine.conflict_strategy,
        ConflictStrategy::ServerWins
    ));
    assert!(!options.engine.mutation_strategy.is_ordered());
    assert_eq!(
        options.engine.retry,
        RetryPolicy {
            auto_retry: false,
            base_delay_ms: 50,
            max_retries: 2,
            max_delay_ms: 400
        }
    );
    assert_eq!(options.engine.pull_interval_ms, 500);
    assert_eq!(options.engine.batch_size, 1000);
    assert_eq!(options.engine.ack_timeout_ms, 2000);
    assert_eq!(
        options.remote,
        Some(Remote {
            transports: vec![Transport::WebSocket {
                url: "wss://sync.example.com/v1/sync".into(),
                base: "https://sync.example.com/v1".into(),
            }],
            auth_token: Some("t".into()),
        })
    );
    assert!(!options.auto_start && !options.request_persistence);
    assert_eq!(options.storage, StorageKind::Memory);
    assert_eq!(
        options.engine.history,
        HistoryRetention {
            keep: Some(50),
            max_age_ms: Some(86_400_000)
        }
    );
    let all = with(json!({ "transactionHistory": { "keep": "all" } }));
    let all = parse(&all, Callbacks::default()).unwrap();
    assert_eq!(all.engine.history.keep, None);
}

#[test]
fn urls_pick_the_transport() {
    let remote = |url: &str, ws: bool| {
        parse(
            &with(json!({ "serverUrl": url, "useWebSocket": ws })),
            Callbacks::default(),
        )
        .unwrap()
        .remote
        .unwrap()
        .transports
        .remove(0)
    };
    let polling = |base: &str| Transport::Polling { base: base.into() };
    assert_eq!(
        remote("ws://127.0.0.1:8787/v1/sync", false),
        polling("http://127.0.0.1:8787/v1")
    );
    assert_eq!(remote("wss://h/v1/sync", false), polling("https://h/v1"));
    assert_eq!(remote("http://h:1", true), polling("http://h:1/v1"));
    assert_eq!(
        remote("https://h/api/v1/", true),
        polling("https://h/api/v1")
    );
    assert_eq!(
        remote("WS://h/v1/sync", true),
        Transport::WebSocket {
            url: "ws://h/v1/sync".into(),
            base: "http://h/v1".into(),
        }
    );
}

#[test]
fn a_list_of_server_urls_is_tried_in_order() {
    let options = parse(
        &with(json!({
            "serverUrl": ["ws://a:1/v1/sync", "ws://b:2/v1/sync", "http://c:3"],
            "authToken": "t",
        })),
        Callbacks::default(),
    )
    .unwrap();
    let remote = options.remote.unwrap();
    assert_eq!(
        remote.transports,
        vec![
            Transport::WebSocket {
                url: "ws://a:1/v1/sync".into(),
                base: "http://a:1/v1".into(),
            },
            Transport::WebSocket {
                url: "ws://b:2/v1/sync".into(),
                base: "http://b:2/v1".into(),
            },
            Transport::Polling {
                base: "http://c:3/v1".into(),
            },
        ]
    );
    assert_eq!(remote.auth_token.as_deref(), Some("t"));
    for (urls, expected) in [
        (json!([]), "non-empty array"),
        (json!(["ws://a/v1/sync", 3]), "array of strings"),
        (json!(["ws://a/v1/sync", "ftp://b"]), "'ftp://b'"),
    ] {
        let message = error(with(json!({ "serverUrl": urls })));
        assert!(message.contains(expected), "{urls}: {message}");
    }
}

#[test]
fn bad_values_are_errors_naming_the_option() {
    let cases = [
        (json!({ "colour": 1 }), "unknown option `colour`"),
        (json!({ "name": "" }), "`name`"),
        (json!({ "collections": [] }), "`collections`"),
        (
            json!({ "collections": [{ "name": "a", "synced": true }] }),
            "`synced`",
        ),
        (
            json!({ "collections": [{ "name": "a" }, { "name": "a" }] }),
            "listed twice",
        ),
        (
            json!({ "collections": [{ "name": "a", "indexes": "done" }] }),
            "`collections[0].indexes` must be a list",
        ),
        (
            json!({ "collections": [{ "name": "a", "indexes": [[]] }] }),
            "`collections[0].indexes` must be a list",
        ),
        (
            json!({ "collections": [{ "name": "a", "indexes": [["a", 1]] }] }),
            "`collections[0].indexes` must be a list",
        ),
        (
            json!({ "collections": [{ "name": "a", "indexes": ["a..b"] }] }),
            "index field `a..b`",
        ),
        (json!({ "serverUrl": "ftp://h" }), "`serverUrl`"),
        (json!({ "serverUrl": "ws://" }), "must name a host"),
        (json!({ "serverUrl": "ws://h:99999/" }), "bad port"),
        (json!({ "serverUrl": "ws://h/?x=1" }), "query"),
        (json!({ "serverUrl": 5 }), "`serverUrl` must be a string"),
        (json!({ "authToken": "t" }), "`serverUrl` is not"),
        (json!({ "direction": "sideways" }), "`direction`"),
        (
            json!({ "conflictStrategy": "newest" }),
            "`conflictStrategy`",
        ),
        (
            json!({ "conflictStrategy": "custom" }),
            "`conflictResolver`",
        ),
        (
            json!({ "mutationStrategy": { "type": "random" } }),
            "`mutationStrategy.type`",
        ),
        (
            json!({ "mutationStrategy": "ordered" }),
            "`mutationStrategy`",
        ),
        (json!({ "batchSize": 0 }), "`batchSize`"),
        (json!({ "batchSize": 1001 }), "`batchSize`"),
        (json!({ "batchSize": 1.5 }), "`batchSize`"),
        (
            json!({ "retryDelay": "1s" }),
            "`retryDelay` must be a number",
        ),
        (
            json!({ "retryDelay": 5000, "maxRetryDelay": 10 }),
            "retry delay",
        ),
        (json!({ "autoRetry": "yes" }), "`autoRetry`"),
        (json!({ "storage": "memory" }), "createMemoryStorage()"),
        (json!({ "storage": { "kind": "disk" } }), "`storage`"),
        (
            json!({ "transactionHistory": { "keep": -1 } }),
            "`transactionHistory.keep`",
        ),
        (
            json!({ "transactionHistory": { "keep": "some" } }),
            "`transactionHistory.keep`",
        ),
        (
            json!({ "transactionHistory": { "maxAgeMs": 0 } }),
            "`maxAgeMs`",
        ),
        (
            json!({ "transactionHistory": { "max": 1 } }),
            "unknown option `max`",
        ),
    ];
    for (config, expected) in cases {
        let message = error(with(config.clone()));
        assert!(
            message.contains(expected),
            "{config}: `{message}` should mention {expected}"
        );
    }
    assert!(error(json!([])).contains("expected an object"));
}

#[test]
fn functions_must_match_their_strategy() {
    let resolver: ResolverFn = Rc::new(|_| None);
    let merge: MergeFn = Rc::new(|synced, _| synced.clone());
    let custom = parse(
        &with(json!({ "conflictStrategy": "custom" })),
        Callbacks {
            resolver: Some(resolver.clone()),
            ..Callbacks::default()
        },
    )
    .unwrap();
    assert!(matches!(
        custom.engine.conflict_strategy,
        ConflictStrategy::Custom(_)
    ));
    let stray_resolver = parse(
        &base(),
        Callbacks {
            resolver: Some(resolver),
            ..Callbacks::default()
        },
    );
    assert!(stray_resolver.unwrap_err().0.contains("only used with"));
    let parallel = parse(
        &with(json!({ "mutationStrategy": { "type": "parallel" } })),
        Callbacks {
            merge: Some(merge.clone()),
            ..Callbacks::default()
        },
    )
    .unwrap();
    assert!(parallel.engine.mutation_strategy.merge().is_some());
    let stray_merge = parse(
        &base(),
        Callbacks {
            merge: Some(merge),
            ..Callbacks::default()
        },
    );
    assert!(stray_merge.unwrap_err().0.contains("only used with"));
}

#[test]
fn a_custom_backend_needs_its_functions_and_excludes_server_url() {
    let all = BackendFunctions {
        setup: true,
        persist: true,
        await_sync: true,
    };
    let parse_with = |extra: Value, backend: BackendFunctions| {
        parse(
            &with(extra),
            Callbacks {
                backend,
                ..Callbacks::default()
            },
        )
    };
    let custom = json!({ "sync": { "id": "api" }, "mutationFn": {} });
    let options = parse_with(custom.clone(), all).unwrap();
    assert_eq!(
        options.custom,
        Some(CustomSync {
            id: Some("api".into())
        })
    );
    assert_eq!(options.engine.backend, Backend::Custom { await_sync: true });
    let push_only = parse_with(
        json!({ "mutationFn": {} }),
        BackendFunctions {
            persist: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(push_only.custom, Some(CustomSync { id: None }));
    assert_eq!(
        push_only.engine.backend,
        Backend::Custom { await_sync: false }
    );
    let read_only = parse_with(
        json!({ "sync": { "id": "feed" }, "direction": "pull" }),
        BackendFunctions {
            setup: true,
            ..Default::default()
        },
    );
    assert!(read_only.is_ok());
    let cases = [
        (custom.clone(), BackendFunctions::default(), "sync.setup"),
        (
            json!({ "sync": { "id": "" }, "mutationFn": {} }),
            all,
            "sync.id",
        ),
        (
            json!({ "sync": { "id": "a", "url": "x" }, "mutationFn": {} }),
            all,
            "unknown option `url`",
        ),
        (
            json!({ "mutationFn": {} }),
            BackendFunctions::default(),
            "mutationFn.persist",
        ),
        (
            json!({ "sync": { "id": "a" } }),
            all,
            "without `mutationFn`",
        ),
        (json!({ "mutationFn": 3 }), all, "must be an object"),
        (
            json!({ "mutationFn": {}, "serverUrl": "ws://h/v1/sync" }),
            all,
            "not both",
        ),
    ];
    for (extra, backend, expected) in cases {
        let message = parse_with(extra.clone(), backend).unwrap_err().0;
        assert!(
            message.contains(expected),
            "{extra}: `{message}` should mention {expected}"
        );
    }
}
