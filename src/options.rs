//! `SyncEngine.open(config)`: the configuration object, checked and turned into the engine's
//! settings. Pure Rust (the config arrives as JSON, functions passed separately), so every rule
//! is tested natively.

use ferrosync_core::conflict::{ConflictStrategy, ResolverFn};
use ferrosync_core::engine::{
    Backend, CollectionConfig, Direction, EngineConfig, HistoryRetention,
};
use ferrosync_core::retry::RetryPolicy;
use ferrosync_core::scheduler::{MergeFn, MutationStrategy};
use serde_json::{Map, Value};
use std::fmt;

/// The largest `batchSize`: the reference server's default `--max-batch`.
pub const MAX_BATCH_SIZE: u64 = 1000;

/// A configuration the engine cannot run with; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid SyncEngine config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The functions a config may carry (JSON cannot).
#[derive(Default, Clone)]
pub struct Callbacks {
    /// `conflictResolver`.
    pub resolver: Option<ResolverFn>,
    /// `mutationStrategy.merge`.
    pub merge: Option<MergeFn>,
    /// Which custom backend functions are present.
    pub backend: BackendFunctions,
}

/// Which functions of a custom backend the config carries (the driver holds the functions).
#[derive(Debug, Default, Clone, Copy)]
pub struct BackendFunctions {
    /// `sync.setup`.
    pub setup: bool,
    /// `mutationFn.persist`.
    pub persist: bool,
    /// `mutationFn.awaitSync`.
    pub await_sync: bool,
}

/// A custom backend (`sync` and/or `mutationFn`) instead of the reference server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomSync {
    /// `sync.id`: names the sync source; `None` without a `sync` source (push only).
    pub id: Option<String>,
}

/// How the engine reaches the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A WebSocket at this URL (without the token).
    WebSocket {
        /// `ws://` or `wss://` URL.
        url: String,
        /// The same server's HTTP endpoints (`http(s)://host[:port]/path`), asked why when the
        /// WebSocket is refused (browsers hide the refusal's status).
        base: String,
    },
    /// HTTP polling: `POST {base}/hello|push|pull`.
    Polling {
        /// `http(s)://host[:port]/path`, without a trailing slash.
        base: String,
    },
}

/// Where and how to sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The servers (nodes of one service), in the order they are tried: the engine starts with
    /// the first and moves to the next whenever a connection fails or breaks.
    pub transports: Vec<Transport>,
    /// `authToken`: bearer token over HTTP, `token` query parameter on the WebSocket.
    pub auth_token: Option<String>,
}

/// Where the engine keeps its data (`storage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorageKind {
    /// IndexedDB (`createIndexedDBStorage()`, the default): kept across reloads.
    #[default]
    IndexedDb,
    /// Memory (`createMemoryStorage()`): gone when the page closes; private to its tab.
    Memory,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// The database name.
    pub name: String,
    /// Where the data is kept.
    pub storage: StorageKind,
    /// The core engine's settings.
    pub engine: EngineConfig,
    /// The server, if the engine syncs with one.
    pub remote: Option<Remote>,
    /// The custom backend, if the engine syncs through the application's functions.
    pub custom: Option<CustomSync>,
    /// Start syncing when opened.
    pub auto_start: bool,
    /// Ask the browser to keep the database under storage pressure.
    pub request_persistence: bool,
}

/// Every option `SyncEngine.open` accepts.
const KNOWN: &[&str] = &[
    "name",
    "collections",
    "serverUrl",
    "authToken",
    "direction",
    "conflictStrategy",
    "conflictResolver",
    "mutationStrategy",
    "autoRetry",
    "retryDelay",
    "maxRetryAttempts",
    "maxRetryDelay",
    "useWebSocket",
    "pullInterval",
    "batchSize",
    "ackTimeout",
    "autoStart",
    "requestPersistence",
    "sync",
    "mutationFn",
    "storage",
    "transactionHistory",
];

fn bad<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

/// Reads one optional option of the config object.
struct Reader<'a>(&'a Map<String, Value>);

impl Reader<'_> {
    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => bad(format!("`{key}` must be a string, got {other}")),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => bad(format!("`{key}` must be true or false, got {other}")),
        }
    }

    /// A whole number in `min..=max`.
    fn integer(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(v),
                _ => bad(format!(
                    "`{key}` must be a whole number in {min}..={max}, got {n}"
                )),
            },
            Some(other) => bad(format!("`{key}` must be a number, got {other}")),
        }
    }
}

/// Checks `config` (the JSON part of the object given to `SyncEngine.open`) and builds the
/// options. `callbacks` holds the function-valued options.
pub fn parse(config: &Value, callbacks: Callbacks) -> Result<Options, ConfigError> {
    let Value::Object(map) = config else {
        return bad("expected an object");
    };
    if let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return bad(format!(
            "unknown option `{unknown}` (known: {})",
            KNOWN.join(", ")
        ));
    }
    let read = Reader(map);
    let name = match read.string("name")? {
        Some(name) if !name.trim().is_empty() => name,
        _ => return bad("`name` (the IndexedDB database name) is required"),
    };
    let retry = RetryPolicy {
        auto_retry: read.bool("autoRetry", true)?,
        base_delay_ms: read.integer("retryDelay", 1_000, 1, 3_600_000)?,
        max_retries: read.integer("maxRetryAttempts", 4, 0, 100)? as u32,
        max_delay_ms: read.integer("maxRetryDelay", 30_000, 1, 86_400_000)?,
    };
    let mut engine = EngineConfig {
        collections: collections(map.get("collections"))?,
        direction: direction(read.string("direction")?)?,
        conflict_strategy: conflict_strategy(read.string("conflictStrategy")?, &callbacks)?,
        mutation_strategy: mutation_strategy(map.get("mutationStrategy"), &callbacks)?,
        retry,
        batch_size: read.integer("batchSize", 100, 1, MAX_BATCH_SIZE)? as usize,
        pull_page: EngineConfig::default().pull_page,
        pull_interval_ms: read.integer("pullInterval", 30_000, 100, 86_400_000)?,
        ack_timeout_ms: read.integer("ackTimeout", 10_000, 100, 600_000)?,
        seed: 0,
        backend: Backend::Server,
        // The leader flushes after the current task's commits (see `Leader::input`).
        batch_writes: true,
        storage: Default::default(),
        history: history(map.get("transactionHistory"))?,
    };
    let custom = custom_sync(map, callbacks.backend, engine.direction)?;
    if custom.is_some() {
        if map.contains_key("serverUrl") {
            return bad(
                "use either `serverUrl` or a custom backend (`sync`, `mutationFn`), not both",
            );
        }
        engine.backend = Backend::Custom {
            await_sync: callbacks.backend.await_sync,
        };
    }
    engine
        .validate()
        .or_else(|e| bad(e.to_string().replace("invalid configuration: ", "")))?;
    let remote = match server_urls(map.get("serverUrl"))? {
        Some(urls) => {
            let use_websocket = read.bool("useWebSocket", true)?;
            Some(Remote {
                transports: urls
                    .iter()
                    .map(|url| transport(url, use_websocket))
                    .collect::<Result<_, _>>()?,
                auth_token: read.string("authToken")?,
            })
        }
        None if map.contains_key("authToken") => {
            return bad("`authToken` is set but `serverUrl` is not")
        }
        None => None,
    };
    Ok(Options {
        name,
        storage: storage(map.get("storage"))?,
        engine,
        remote,
        custom,
        auto_start: read.bool("autoStart", true)?,
        request_persistence: read.bool("requestPersistence", true)?,
    })
}

/// `serverUrl`: one URL, or a non-empty list of them (failover between nodes).
fn server_urls(value: Option<&Value>) -> Result<Option<Vec<String>>, ConfigError> {
    let invalid = |got: &Value| {
        ConfigError(format!(
            "`serverUrl` must be a string or a non-empty array of strings, got {got}"
        ))
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) => Ok(Some(vec![url.clone()])),
        Some(list @ Value::Array(urls)) => {
            if urls.is_empty() {
                return Err(invalid(list));
            }
            urls.iter()
                .map(|url| match url {
                    Value::String(url) => Ok(url.clone()),
                    _ => Err(invalid(list)),
                })
                .collect::<Result<_, _>>()
                .map(Some)
        }
        Some(other) => Err(invalid(other)),
    }
}

/// `sync: { id, setup }` and `mutationFn: { persist, awaitSync }` (functions are checked through
/// `present`, as JSON drops them).
fn custom_sync(
    map: &Map<String, Value>,
    present: BackendFunctions,
    direction: Direction,
) -> Result<Option<CustomSync>, ConfigError> {
    let object = |key: &str, known: &[&str]| -> Result<Option<&Map<String, Value>>, ConfigError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(inner)) => match inner.keys().find(|k| !known.contains(&k.as_str()))
            {
                Some(unknown) => bad(format!(
                    "`{key}` has an unknown option `{unknown}` (known: {})",
                    known.join(", ")
                )),
                None => Ok(Some(inner)),
            },
            Some(other) => bad(format!("`{key}` must be an object, got {other}")),
        }
    };
    let sync = object("sync", &["id", "setup"])?;
    let mutation_fn = object("mutationFn", &["persist", "awaitSync"])?;
    let id = match sync {
        None => None,
        Some(sync) => {
            let id = match Reader(sync).string("id") {
                Ok(Some(id)) if !id.trim().is_empty() => id,
                _ => return bad("`sync.id` must be a non-empty string naming the sync source"),
            };
            if !present.setup {
                return bad("`sync.setup` must be a function ({ onUpdate }) => Promise<{ data }>");
            }
            Some(id)
        }
    };
    match mutation_fn {
        Some(_) if !present.persist => {
            bad("`mutationFn.persist` must be a function ({ changes, attempt, transaction }) => Promise")
        }
        None if id.is_some() && direction.pushes() => bad(
            "`sync` without `mutationFn` cannot write local changes anywhere: add \
             `mutationFn: { persist }`, or set `direction: 'pull'`",
        ),
        None if id.is_none() => Ok(None),
        _ => Ok(Some(CustomSync { id })),
    }
}

/// `storage`: what `createIndexedDBStorage()` or `createMemoryStorage()` returned.
fn storage(value: Option<&Value>) -> Result<StorageKind, ConfigError> {
    const HINT: &str = "`storage` must be createIndexedDBStorage() or createMemoryStorage()";
    match value {
        None | Some(Value::Null) => Ok(StorageKind::IndexedDb),
        Some(Value::Object(map)) => match map.get("kind").and_then(Value::as_str) {
            Some("indexeddb") if map.len() == 1 => Ok(StorageKind::IndexedDb),
            Some("memory") if map.len() == 1 => Ok(StorageKind::Memory),
            _ => bad(HINT),
        },
        Some(_) => bad(HINT),
    }
}

/// `transactionHistory: { keep: N | 'all', maxAgeMs }`: by default everything is kept.
fn history(value: Option<&Value>) -> Result<HistoryRetention, ConfigError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(HistoryRetention::default()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return bad(format!(
                "`transactionHistory` must be {{ keep, maxAgeMs }}, got {other}"
            ))
        }
    };
    if let Some(key) = map.keys().find(|k| *k != "keep" && *k != "maxAgeMs") {
        return bad(format!(
            "`transactionHistory` has an unknown option `{key}` (known: keep, maxAgeMs)"
        ));
    }
    let keep = match map.get("keep") {
        None | Some(Value::Null) => None,
        Some(Value::String(all)) if all == "all" => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().map(|n| n as usize),
        Some(other) => {
            return bad(format!(
                "`transactionHistory.keep` must be a whole number or 'all', got {other}"
            ))
        }
    };
    let read = Reader(map);
    let max_age_ms = match map.get("maxAgeMs") {
        None | Some(Value::Null) => None,
        Some(_) => Some(read.integer("maxAgeMs", 0, 1, u64::MAX >> 11)?),
    };
    Ok(HistoryRetention { keep, max_age_ms })
}

fn collections(value: Option<&Value>) -> Result<Vec<CollectionConfig>, ConfigError> {
    let Some(Value::Array(list)) = value else {
        return bad("`collections` must be an array like [{ name: 'todos', sync: true }]");
    };
    if list.is_empty() {
        return bad("`collections` must name at least one collection");
    }
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let Value::Object(entry) = entry else {
                return bad(format!(
                    "`collections[{i}]` must be an object with a `name`"
                ));
            };
            if let Some(key) = entry
                .keys()
                .find(|k| !["name", "sync", "indexes"].contains(&k.as_str()))
            {
                return bad(format!(
                    "`collections[{i}]` has an unknown option `{key}` (known: name, sync, indexes)"
                ));
            }
            let read = Reader(entry);
            let name = match read.string("name")? {
                Some(name) if !name.is_empty() => name,
                _ => {
                    return bad(format!(
                        "`collections[{i}].name` must be a non-empty string"
                    ))
                }
            };
            Ok(CollectionConfig {
                name,
                sync: read.bool("sync", true)?,
                indexes: indexes(i, entry.get("indexes"))?,
            })
        })
        .collect()
}

/// `indexes: ['done', ['done', 'title']]`: each a field, or a list of fields.
fn indexes(collection: usize, value: Option<&Value>) -> Result<Vec<Vec<String>>, ConfigError> {
    let wrong = || {
        ConfigError(format!(
            "`collections[{collection}].indexes` must be a list of fields and lists of fields, \
             like ['done', ['done', 'title']]"
        ))
    };
    let fields = |value: &Value| match value {
        Value::String(field) => Some(vec![field.clone()]),
        Value::Array(fields) if !fields.is_empty() => fields
            .iter()
            .map(|f| f.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|entry| fields(entry).ok_or_else(wrong))
            .collect(),
        Some(_) => Err(wrong()),
    }
}

fn direction(value: Option<String>) -> Result<Direction, ConfigError> {
    match value.as_deref() {
        None | Some("both") => Ok(Direction::Both),
        Some("push") => Ok(Direction::Push),
        Some("pull") => Ok(Direction::Pull),
        Some(other) => bad(format!(
            "`direction` must be 'push', 'pull' or 'both', got '{other}'"
        )),
    }
}

fn conflict_strategy(
    value: Option<String>,
    callbacks: &Callbacks,
) -> Result<ConflictStrategy, ConfigError> {
    let strategy = match value.as_deref() {
        None | Some("last-write-wins") => ConflictStrategy::LastWriteWins,
        Some("server-wins") => ConflictStrategy::ServerWins,
        Some("client-wins") => ConflictStrategy::ClientWins,
        Some("custom") => match &callbacks.resolver {
            Some(resolver) => return Ok(ConflictStrategy::Custom(resolver.clone())),
            None => return bad("`conflictStrategy: 'custom'` needs a `conflictResolver` function"),
        },
        Some(other) => {
            return bad(format!(
                "`conflictStrategy` must be 'last-write-wins', 'server-wins', 'client-wins' or \
                 'custom', got '{other}'"
            ))
        }
    };
    if callbacks.resolver.is_some() {
        return bad("`conflictResolver` is only used with `conflictStrategy: 'custom'`");
    }
    Ok(strategy)
}

fn mutation_strategy(
    value: Option<&Value>,
    callbacks: &Callbacks,
) -> Result<MutationStrategy, ConfigError> {
    let kind = match value {
        None | Some(Value::Null) => "ordered",
        Some(Value::Object(map)) => {
            if let Some(key) = map.keys().find(|k| *k != "type" && *k != "merge") {
                return bad(format!(
                    "`mutationStrategy` has an unknown option `{key}` (known: type, merge)"
                ));
            }
            match map.get("type") {
                Some(Value::String(kind)) => kind.as_str(),
                _ => return bad("`mutationStrategy.type` must be 'ordered' or 'parallel'"),
            }
        }
        Some(other) => {
            return bad(format!(
                "`mutationStrategy` must be {{ type: 'ordered' }} or {{ type: 'parallel' }}, got \
                 {other}"
            ))
        }
    };
    match kind {
        "ordered" if callbacks.merge.is_some() => {
            bad("`mutationStrategy.merge` is only used with `type: 'parallel'`")
        }
        "ordered" => Ok(MutationStrategy::Ordered),
        "parallel" => Ok(MutationStrategy::Parallel {
            merge: callbacks.merge.clone(),
        }),
        other => bad(format!(
            "`mutationStrategy.type` must be 'ordered' or 'parallel', got '{other}'"
        )),
    }
}

/// `ws(s)://` → WebSocket (or polling on the same host when `use_websocket` is false);
/// `http(s)://` → polling. Polling's base path is the URL's path without a trailing `/sync`,
/// or `/v1` when the URL has no path.
fn transport(url: &str, use_websocket: bool) -> Result<Transport, ConfigError> {
    let invalid = |why: &str| bad(format!("`serverUrl` {why}, got '{url}'"));
    let Some((scheme, rest)) = url.split_once("://") else {
        return invalid("must start with ws://, wss://, http:// or https://");
    };
    let scheme = scheme.to_ascii_lowercase();
    let http_scheme = match scheme.as_str() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return invalid("must start with ws://, wss://, http:// or https://"),
    };
    if rest.contains(['?', '#', ' ']) {
        return invalid("must not contain a query, a fragment or spaces");
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() || authority.contains('@') {
        return invalid("must name a host (and no user info)");
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        if port.parse::<u16>().is_err() {
            return invalid("has a bad port");
        }
    }
    let base_path = path.trim_end_matches('/');
    let base_path = base_path.strip_suffix("/sync").unwrap_or(base_path);
    let base_path = if base_path.is_empty() {
        "/v1"
    } else {
        base_path
    };
    let base = format!("{http_scheme}://{authority}{base_path}");
    if scheme.starts_with("ws") && use_websocket {
        return Ok(Transport::WebSocket {
            url: format!("{scheme}://{authority}{path}"),
            base,
        });
    }
    Ok(Transport::Polling { base })
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
