//! The options of `SyncEngine.open(config)` that take more than a type check, one reader each:
//! the server's URLs and transports, a custom backend, storage, history, collections and their
//! indexes, and the sync and conflict strategies.

use super::{
    bad, BackendFunctions, Callbacks, ConfigError, CustomSync, Reader, StorageKind, Transport,
};
use ferrosync_core::conflict::ConflictStrategy;
use ferrosync_core::engine::{CollectionConfig, Direction, HistoryRetention};
use ferrosync_core::scheduler::MutationStrategy;
use serde_json::{Map, Value};

/// `serverUrl`: one URL, or a non-empty list of them (failover between nodes).
pub(super) fn server_urls(value: Option<&Value>) -> Result<Option<Vec<String>>, ConfigError> {
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
pub(super) fn custom_sync(
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
pub(super) fn storage(value: Option<&Value>) -> Result<StorageKind, ConfigError> {
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
pub(super) fn history(value: Option<&Value>) -> Result<HistoryRetention, ConfigError> {
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

pub(super) fn collections(value: Option<&Value>) -> Result<Vec<CollectionConfig>, ConfigError> {
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

pub(super) fn direction(value: Option<String>) -> Result<Direction, ConfigError> {
    match value.as_deref() {
        None | Some("both") => Ok(Direction::Both),
        Some("push") => Ok(Direction::Push),
        Some("pull") => Ok(Direction::Pull),
        Some(other) => bad(format!(
            "`direction` must be 'push', 'pull' or 'both', got '{other}'"
        )),
    }
}

pub(super) fn conflict_strategy(
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

pub(super) fn mutation_strategy(
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
pub(super) fn transport(url: &str, use_websocket: bool) -> Result<Transport, ConfigError> {
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
