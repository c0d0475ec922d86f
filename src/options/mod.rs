//! `SyncEngine.open(config)`: the configuration object, checked and turned into the engine's
//! settings. Pure Rust (the config arrives as JSON, functions passed separately), so every rule
//! is tested natively.

use ferrosync_core::conflict::ResolverFn;
use ferrosync_core::engine::{Backend, EngineConfig};
use ferrosync_core::retry::RetryPolicy;
use ferrosync_core::scheduler::MergeFn;
use serde_json::{Map, Value};
use std::fmt;

mod fields;
use fields::{
    collections, conflict_strategy, custom_sync, direction, history, mutation_strategy,
    server_urls, storage, transport,
};

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

#[cfg(test)]
mod tests;
