//! Deterministic simulation: several clients and the server's apply logic over a seeded network
//! that drops, duplicates and reorders messages (so answers are lost after commit), with storage
//! writes that a reload may lose, clients reloaded mid-transaction, links that flap, a server
//! that is sometimes busy, and skewed clocks. After the faults heal, invariants I1-I7 of the
//! brief are checked; after every step, each client's live queries equal a fresh run of their
//! query, and so do queries answered through its indexes. Clients start and stop sync, go
//! offline, and open the connections their engine asks for (or fail to); every `forceSync`,
//! `hardDelete` and `flush` they make is answered once healed. Some writes are other tabs'
//! requests the client leads for: a request whose answer a reload lost is sent again to the
//! reloaded engine, which must answer it with the transaction it made (never a second one).
//! `SIM_SEEDS` (default 1000) and
//! `SIM_STEPS` (default 200) set the size; `SIM_SEED` replays one seed.

mod common;

use common::*;
use ferrosync_core::conflict::ConflictStrategy;
use ferrosync_core::engine::{
    EngineConfig, HistoryRetention, Input, StorageTuning, SyncStatus, Ticket,
};
use ferrosync_core::mutation::MutationRequest;
use ferrosync_core::protocol::{ClientMessage, ServerMessage};
use ferrosync_core::query::Query;
use ferrosync_core::retry::RetryPolicy;
use ferrosync_core::rng::Rng;
use ferrosync_core::scheduler::MutationStrategy;
use ferrosync_core::transaction::{TxId, TxState};
use ferrosync_core::{CoreError, Millis, Version};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const CLIENTS: usize = 3;
const DOC_POOL: u64 = 12;
/// Local-only documents in `cache`, for `hardDelete`.
const CACHE_POOL: u64 = 4;
/// I7: the outbox drains within this long after the network heals.
const DRAIN_LIMIT_MS: Millis = 30_000;
/// What each client's live queries follow.
const LIVE: [&str; 5] = [
    r#"{"where": {"invalid": false}, "sort": ["-n", "w"], "limit": 3}"#,
    r#"{"where": {"n": {"$gte": 50}}, "sort": "w"}"#,
    r#"{"sort": "-_id", "offset": 2, "limit": 4}"#,
    r#"{"where": {"n": {"$lt": 30}}, "includeDeleted": true}"#,
    "{}",
];
/// Queries the indexes (`n`; `invalid`, `n`) answer.
const INDEXED: [&str; 3] = [
    r#"{"where": {"n": {"$gt": 20}}, "sort": "n", "limit": 5}"#,
    r#"{"where": {"invalid": false, "n": {"$in": [1, 2, 3, 50, 70]}}}"#,
    r#"{"where": {"invalid": true}, "sort": "-n"}"#,
];

fn parse(query: &str) -> Query {
    Query::from_json(&serde_json::from_str(query).expect("JSON")).expect("a query")
}

#[derive(Debug)]
struct Violation {
    invariant: &'static str,
    detail: String,
}

fn violation<T>(invariant: &'static str, detail: impl Into<String>) -> Result<T, Violation> {
    Err(Violation {
        invariant,
        detail: detail.into(),
    })
}

enum Packet {
    ToServer {
        from: usize,
        /// The connection it was sent on: the answers go back on it, or nowhere.
        epoch: u64,
        msg: ClientMessage,
    },
    ToClient {
        to: usize,
        epoch: u64,
        msg: ServerMessage,
    },
}

struct Node {
    client: Client,
    connected: bool,
    epoch: u64,
    skew: i64,
    /// Write tokens in the order this client committed them, per document (for I3).
    order: BTreeMap<String, Vec<String>>,
    /// The last cursor seen in this session, and the last durable one (for I5).
    cursor: Version,
    durable_cursor: Version,
    /// Documents this client has seen deleted in this session or stored deleted (for I6).
    tombstones: BTreeSet<String>,
    /// Sync runs (`start()` and not `stop()`), and the browser is online.
    running: bool,
    online: bool,
    /// The connections the engine asked for that were answered (opened or failed).
    dials_answered: usize,
    /// The requests made in this session (`forceSync`, `hardDelete`, `flush`).
    requests: Vec<Ticket>,
    /// Other tabs' commit requests this client leads for, not answered `Durable` yet.
    tabs: Vec<TabRequest>,
}

/// A commit another tab asked the leading tab for.
struct TabRequest {
    /// Its name.
    request: String,
    requests: Vec<MutationRequest>,
    /// Its write tokens, by document (for I3).
    tokens: Vec<(String, String)>,
    /// The transaction the leader answered with.
    tx: TxId,
}

/// How often each fault and outcome occurred, to show the run exercised them.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    commits: u64,
    lost: u64,
    duplicated: u64,
    reloads: u64,
    flaps: u64,
    busy_toggles: u64,
    conflicts: u64,
    failed: u64,
    completed: u64,
    torn_writes: u64,
    compactions: u64,
    requests: u64,
    dials: u64,
    stops: u64,
    /// Other tabs' requests sent again after a reload lost their answer, and those of them the
    /// engine answered from their stored origin.
    resent: u64,
    recognised: u64,
    /// History pages storage held at the end, and history entries the retention dropped.
    history_pages: u64,
    history_dropped: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.commits += o.commits;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reloads += o.reloads;
        self.flaps += o.flaps;
        self.busy_toggles += o.busy_toggles;
        self.conflicts += o.conflicts;
        self.failed += o.failed;
        self.completed += o.completed;
        self.torn_writes += o.torn_writes;
        self.compactions += o.compactions;
        self.requests += o.requests;
        self.dials += o.dials;
        self.stops += o.stops;
        self.resent += o.resent;
        self.recognised += o.recognised;
        self.history_pages += o.history_pages;
        self.history_dropped += o.history_dropped;
    }
}

struct Sim {
    counts: Counts,
    rng: Rng,
    server: Server,
    nodes: Vec<Node>,
    net: Vec<Packet>,
    now: Millis,
    writes: u64,
    ordered: bool,
    /// Names other tabs' requests.
    tab_requests: u64,
    /// The client index behind each client id (ids are per database, kept across reloads).
    owners: BTreeMap<String, usize>,
    /// See [`Options::unnamed_requests`].
    unnamed_requests: bool,
}

struct Options {
    steps: usize,
    broken_dedup: bool,
    /// A leader that does not name other tabs' requests when it commits them.
    unnamed_requests: bool,
}

fn engine_config(seed: u64, variant: u64) -> EngineConfig {
    let mut base = config(seed);
    base.collections[0].indexes = vec![vec!["n".into()], vec!["invalid".into(), "n".into()]];
    EngineConfig {
        conflict_strategy: match variant % 3 {
            0 => ConflictStrategy::LastWriteWins,
            1 => ConflictStrategy::ServerWins,
            _ => ConflictStrategy::ClientWins,
        },
        mutation_strategy: if variant % 5 == 4 {
            MutationStrategy::Parallel { merge: None }
        } else {
            MutationStrategy::Ordered
        },
        retry: RetryPolicy {
            base_delay_ms: 500,
            max_delay_ms: 8_000,
            ..RetryPolicy::default()
        },
        batch_size: 4,
        pull_page: 4,
        ack_timeout_ms: 5_000,
        batch_writes: variant % 7 < 3,
        // A log of a few records and pages of a few documents or history entries: compactions
        // and page splits happen all the time.
        storage: StorageTuning {
            log_records: 3,
            log_bytes: 4_096,
            slice_bytes: 600,
            page_bytes: 300,
            history_page_bytes: 400,
        },
        // A history that keeps everything, a few, or some dozens: its retention drops entries
        // while compaction moves the rest into history pages.
        history: HistoryRetention {
            keep: [None, Some(3), Some(40)][(variant % 3) as usize],
            max_age_ms: None,
        },
        ..base
    }
}

impl Sim {
    fn new(seed: u64, options: &Options) -> Sim {
        let mut rng = Rng::new(seed);
        let variant = rng.next_u64();
        let mut server = Server::new();
        server.broken_dedup = options.broken_dedup;
        let nodes = (0..CLIENTS)
            .map(|i| {
                let skew = match rng.up_to(3) {
                    0 => 600_000, // ten minutes ahead: clamped by others
                    1 => -60_000,
                    _ => 0,
                };
                let config = engine_config(seed.wrapping_mul(31).wrapping_add(i as u64), variant);
                let mut client =
                    Client::open(config, Store::default(), (T0 as i64 + skew) as Millis);
                for query in LIVE {
                    client.watch(parse(query));
                }
                Node {
                    client,
                    connected: false,
                    epoch: 0,
                    skew,
                    order: BTreeMap::new(),
                    cursor: 0,
                    durable_cursor: 0,
                    tombstones: BTreeSet::new(),
                    running: false,
                    online: true,
                    dials_answered: 0,
                    requests: Vec::new(),
                    tabs: Vec::new(),
                }
            })
            .collect();
        let mut sim = Sim {
            counts: Counts::default(),
            rng,
            server,
            nodes,
            net: Vec::new(),
            now: T0,
            writes: 0,
            ordered: variant % 5 != 4,
            tab_requests: 0,
            unnamed_requests: options.unnamed_requests,
            owners: BTreeMap::new(),
        };
        for i in 0..CLIENTS {
            sim.track_owner(i);
        }
        sim
    }

    fn local_now(&self, i: usize) -> Millis {
        (self.now as i64 + self.nodes[i].skew) as Millis
    }

    fn track_owner(&mut self, i: usize) {
        self.owners
            .insert(self.nodes[i].client.engine.client_id().to_owned(), i);
    }

    fn input(&mut self, i: usize, input: Input) {
        let now = self.local_now(i);
        let hangups = self.nodes[i].client.hangups;
        self.nodes[i]
            .client
            .handle(input, now)
            .expect("engine accepts driver input");
        // The engine dropped its connection (stop, offline): nothing more comes on it.
        if self.nodes[i].client.hangups > hangups {
            self.nodes[i].connected = false;
        }
        self.collect_sends(i);
    }

    /// Starts sync on a client: it asks for a connection.
    fn start(&mut self, i: usize) {
        self.nodes[i].running = true;
        self.input(i, Input::Start);
    }

    /// Opens (or fails) the connection the engine asked for, if it asked.
    fn answer_dial(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.client.dials.len() <= node.dials_answered {
            return;
        }
        node.dials_answered = node.client.dials.len();
        self.counts.dials += 1;
        if node.connected {
            return;
        }
        if self.rng.chance(0.7) {
            self.connect(i);
        } else {
            self.disconnect(i);
        }
    }

    /// A `forceSync`/`push`/`pull`, a `flush`, or a local-only write and its `hardDelete`.
    fn request(&mut self, i: usize) {
        let now = self.local_now(i);
        let cache = format!("c{}", self.rng.up_to(CACHE_POOL - 1));
        let input = match self.rng.up_to(4) {
            0 => Input::Flush,
            1 | 2 => Input::SyncNow {
                push: self.rng.chance(0.7),
                pull: self.rng.chance(0.7),
            },
            3 => Input::HardDelete {
                collection: "cache".into(),
                id: cache,
            },
            _ => {
                let doc = insert("cache", json!({"_id": cache}));
                let _ = self.nodes[i].client.commit(vec![doc], now);
                self.collect_sends(i);
                return;
            }
        };
        // A hardDelete of a document that is not there is refused (no ticket).
        if let Ok(ticket) = self.nodes[i].client.request(input, now) {
            self.counts.requests += 1;
            self.nodes[i].requests.push(ticket);
        }
        self.collect_sends(i);
    }

    /// Stops or restarts sync, or takes the browser offline or back online.
    fn toggle(&mut self, i: usize) {
        self.counts.stops += 1;
        if self.rng.chance(0.5) {
            let running = !self.nodes[i].running;
            self.nodes[i].running = running;
            self.input(i, if running { Input::Start } else { Input::Stop });
        } else {
            let online = !self.nodes[i].online;
            self.nodes[i].online = online;
            self.input(i, Input::Network { online });
        }
    }

    fn collect_sends(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        while let Some(msg) = node.client.outbox.pop_front() {
            if node.connected {
                self.net.push(Packet::ToServer {
                    from: i,
                    epoch: node.epoch,
                    msg,
                });
            }
        }
    }

    fn connect(&mut self, i: usize) {
        self.nodes[i].connected = true;
        self.nodes[i].epoch += 1;
        self.input(i, Input::Connected { live: true });
    }

    fn disconnect(&mut self, i: usize) {
        self.nodes[i].connected = false;
        self.input(
            i,
            Input::Disconnected {
                reason: "link down".into(),
            },
        );
    }

    fn local_write(&mut self, i: usize) {
        let count = 1 + self.rng.up_to(2) as usize;
        let mut requests = Vec::new();
        let mut tokens = Vec::new();
        for _ in 0..count {
            self.writes += 1;
            let token = format!("w{}", self.writes);
            let id = format!("d{}", self.rng.up_to(DOC_POOL - 1));
            let invalid = self.rng.chance(0.02);
            let fields = json!({"w": token, "n": self.rng.up_to(100), "invalid": invalid});
            let live = self.nodes[i].client.visible(&id).filter(|d| !d.deleted());
            let request = match (live, self.rng.up_to(9)) {
                (None, _) => insert("todos", json!({"_id": id, "w": token, "invalid": invalid})),
                (Some(_), 0) => delete("todos", &id),
                (Some(_), _) => update("todos", &id, fields),
            };
            if !matches!(request.op, ferrosync_core::mutation::Op::Delete) {
                tokens.push((id, token));
            }
            requests.push(request);
        }
        if self.rng.chance(0.25) {
            self.tab_requests += 1;
            let request = TabRequest {
                request: format!("tab{i}:{}", self.tab_requests),
                requests,
                tokens,
                tx: TxId(0),
            };
            if let Ok(tx) = self.commit_for_tab(i, &request) {
                self.nodes[i].tabs.push(TabRequest { tx, ..request });
            }
        } else {
            let now = self.local_now(i);
            if self.nodes[i].client.commit(requests, now).is_ok() {
                self.counts.commits += 1;
                for (id, token) in tokens {
                    self.nodes[i].order.entry(id).or_default().push(token);
                }
            }
        }
        self.collect_sends(i);
    }

    /// Commits another tab's request as the leading tab does (named, unless the leader is the
    /// broken one that does not).
    fn commit_for_tab(&mut self, i: usize, request: &TabRequest) -> Result<TxId, CoreError> {
        let now = self.local_now(i);
        let commit = Input::Commit {
            requests: request.requests.clone(),
            metadata: None,
            origin: (!self.unnamed_requests).then(|| request.request.clone()),
        };
        let known = self.nodes[i]
            .client
            .engine
            .origin(&request.request)
            .is_some();
        let tx = self.nodes[i].client.handle(commit, now)?.expect("a commit");
        if !known {
            self.counts.commits += 1;
            for (id, token) in &request.tokens {
                let order = self.nodes[i].order.entry(id.clone()).or_default();
                order.push(token.clone());
            }
        }
        Ok(tx)
    }

    /// The other tabs get the `Durable` answers the leader posted (in a later task: a reload
    /// before it loses them).
    fn answer_tabs(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let durable = &node.client.durable;
        node.tabs.retain(|t| !durable.contains(&t.tx));
    }

    /// After a reload, the other tabs send their unanswered requests again: one whose
    /// transaction was durable gets that transaction (no second one is made).
    fn resend_tab_requests(&mut self, i: usize) -> Result<(), Violation> {
        for mut request in std::mem::take(&mut self.nodes[i].tabs) {
            self.counts.resent += 1;
            let durable = self.nodes[i].client.durable.contains(&request.tx);
            let answer = self.commit_for_tab(i, &request);
            match answer {
                Ok(tx) if durable && tx != request.tx => {
                    return violation(
                        "tabs",
                        format!(
                            "client {i}: {} made {} and, sent again, {tx}",
                            request.request, request.tx
                        ),
                    )
                }
                Err(e) if durable => {
                    return violation(
                        "tabs",
                        format!(
                            "client {i}: {} sent again was refused: {e}",
                            request.request
                        ),
                    )
                }
                Ok(tx) => {
                    self.counts.recognised += u64::from(durable);
                    request.tx = tx;
                    self.nodes[i].tabs.push(request);
                }
                // Lost with the reload, and refused now: the other tab is told why.
                Err(_) => {}
            }
        }
        self.collect_sends(i);
        Ok(())
    }

    fn complete_write(&mut self, i: usize) -> Result<(), Violation> {
        let now = self.local_now(i);
        if self.nodes[i].client.complete_write(now) {
            let cursor = self.nodes[i].client.stored_cursor();
            if cursor < self.nodes[i].durable_cursor {
                return violation(
                    "I5",
                    format!(
                        "client {i}'s stored cursor went back from {} to {cursor}",
                        self.nodes[i].durable_cursor
                    ),
                );
            }
            self.nodes[i].durable_cursor = cursor;
            self.collect_sends(i);
        }
        Ok(())
    }

    fn deliver(&mut self, index: usize, keep_copy: bool) -> Result<(), Violation> {
        let packet = if keep_copy {
            match &self.net[index] {
                Packet::ToServer { from, epoch, msg } => Packet::ToServer {
                    from: *from,
                    epoch: *epoch,
                    msg: msg.clone(),
                },
                Packet::ToClient { to, epoch, msg } => Packet::ToClient {
                    to: *to,
                    epoch: *epoch,
                    msg: msg.clone(),
                },
            }
        } else {
            self.net.remove(index)
        };
        match packet {
            Packet::ToServer { from, epoch, msg } => {
                let id = self.nodes[from].client.engine.client_id().to_owned();
                self.server.now = self.now;
                let (replies, broadcast) = self.server.handle(&id, msg);
                self.check_server_tombstones()?;
                // The answers go back on the connection the request came on (a newer
                // connection, after a reload say, never gets them).
                for reply in replies {
                    self.net.push(Packet::ToClient {
                        to: from,
                        epoch,
                        msg: reply,
                    });
                }
                if let Some(b) = broadcast {
                    for j in (0..CLIENTS).filter(|j| *j != from && self.nodes[*j].connected) {
                        self.net.push(Packet::ToClient {
                            to: j,
                            epoch: self.nodes[j].epoch,
                            msg: b.clone(),
                        });
                    }
                }
            }
            Packet::ToClient { to, epoch, msg } => {
                // A message from an earlier connection never arrives on a new one.
                if self.nodes[to].connected && self.nodes[to].epoch == epoch {
                    self.input(to, Input::Server(msg));
                }
            }
        }
        Ok(())
    }

    fn tick_due(&mut self) {
        for i in 0..CLIENTS {
            self.answer_tabs(i);
            // A batched write goes out in a later task than the steps that left it.
            let now = self.local_now(i);
            if self.nodes[i].client.tick_unflushed(now) {
                self.collect_sends(i);
            }
            if self.nodes[i]
                .client
                .wake
                .is_some_and(|at| at <= self.local_now(i))
            {
                self.nodes[i].client.wake = None;
                self.input(i, Input::Tick);
            }
            self.answer_dial(i);
        }
    }

    fn reload(&mut self, i: usize) -> Result<(), Violation> {
        if self.nodes[i].connected {
            self.nodes[i].connected = false;
        }
        let now = self.local_now(i);
        self.nodes[i].client.reload(now);
        self.nodes[i].cursor = self.nodes[i].client.engine.cursor();
        // A reload restores what was durable: tombstones only held in memory are re-fetched.
        let stored = self.nodes[i]
            .client
            .engine
            .collection("todos")
            .unwrap()
            .synced_docs()
            .filter(|d| d.deleted())
            .map(|d| d.id().to_owned())
            .collect();
        self.nodes[i].tombstones = stored;
        // The page's calls died with it; the new engine starts sync as the old one had.
        self.nodes[i].requests.clear();
        self.nodes[i].dials_answered = 0;
        self.track_owner(i);
        self.collect_sends(i);
        if !self.nodes[i].online {
            self.input(i, Input::Network { online: false });
        }
        if self.nodes[i].running {
            self.input(i, Input::Start);
        }
        self.resend_tab_requests(i)
    }

    fn step(&mut self) -> Result<(), Violation> {
        let i = self.rng.up_to(CLIENTS as u64 - 1) as usize;
        match self.rng.up_to(99) {
            0..=29 => self.local_write(i),
            30..=44 => self.complete_write(i)?,
            45..=46 => {
                let now = self.local_now(i);
                self.counts.torn_writes += u64::from(self.nodes[i].client.fail_write(now));
                self.collect_sends(i);
            }
            47..=49 => {
                let now = self.local_now(i);
                self.counts.compactions += u64::from(self.nodes[i].client.compact_if_due(now));
                self.collect_sends(i);
            }
            50..=79 if !self.net.is_empty() => {
                let index = self.rng.up_to(self.net.len() as u64 - 1) as usize;
                if self.rng.chance(0.1) {
                    self.net.remove(index); // lost
                    self.counts.lost += 1;
                } else {
                    let duplicate = self.rng.chance(0.05);
                    self.counts.duplicated += u64::from(duplicate);
                    self.deliver(index, duplicate)?;
                }
            }
            80..=89 => {
                self.now += self.rng.up_to(3_000);
                self.tick_due();
            }
            90..=94 => {
                self.counts.flaps += 1;
                if self.nodes[i].connected {
                    self.disconnect(i);
                } else if self.nodes[i].running && self.nodes[i].online {
                    self.connect(i);
                }
            }
            95..=96 => {
                self.counts.reloads += 1;
                self.reload(i)?;
            }
            97 => {
                self.counts.busy_toggles += 1;
                self.server.busy = !self.server.busy;
            }
            98 => self.request(i),
            99 => self.toggle(i),
            // An empty network: nothing to deliver.
            _ => {}
        }
        self.check_client(i)?;
        self.check_queries(false)
    }

    /// The live queries, and queries through the indexes, of every client the step changed
    /// (`all`: of every client) equal a fresh run; at the end, counts too.
    fn check_queries(&mut self, all: bool) -> Result<(), Violation> {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if !std::mem::take(&mut node.client.stepped) && !all {
                continue;
            }
            if let Err(e) = node.client.check_live() {
                return violation("live queries", format!("client {i}: {e}"));
            }
            let todos = node.client.engine.collection("todos").expect("configured");
            for query in INDEXED.map(parse) {
                let found: Vec<_> = todos
                    .find(&query)
                    .iter()
                    .map(|d| d.id().to_owned())
                    .collect();
                let scanned: Vec<_> = query
                    .run(todos.docs())
                    .iter()
                    .map(|d| d.id().to_owned())
                    .collect();
                if found != scanned || (all && todos.count_matching(&query) != scanned.len()) {
                    return violation(
                        "indexes",
                        format!(
                            "client {i}: {} found {found:?}, a scan {scanned:?}",
                            query.key()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// I5 and I6 as seen by one client after each step.
    fn check_client(&mut self, i: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[i];
        let cursor = node.client.engine.cursor();
        if cursor < node.cursor {
            return violation(
                "I5",
                format!(
                    "client {i}'s cursor went back from {} to {cursor}",
                    node.cursor
                ),
            );
        }
        if cursor > self.server.mem.head() {
            return violation(
                "I5",
                format!("client {i}'s cursor {cursor} is past the server's head"),
            );
        }
        node.cursor = cursor;
        let todos = node.client.engine.collection("todos").expect("configured");
        for id in &node.tombstones {
            if todos.synced(id).is_some_and(|d| !d.deleted()) {
                return violation(
                    "I6",
                    format!("{id} came back on client {i} after it was deleted"),
                );
            }
        }
        let deleted: Vec<String> = todos
            .synced_docs()
            .filter(|d| d.deleted())
            .map(|d| d.id().to_owned())
            .collect();
        node.tombstones.extend(deleted);
        Ok(())
    }

    fn check_server_tombstones(&self) -> Result<(), Violation> {
        for node in &self.nodes {
            for id in &node.tombstones {
                if self.server.doc(id).is_some_and(|d| !d.deleted()) {
                    return violation(
                        "I6",
                        format!("{id} came back on the server after it was deleted"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Heals every fault and runs until quiet; I7 bounds how long that may take.
    fn heal(&mut self) -> Result<(), Violation> {
        self.server.busy = false;
        for i in 0..CLIENTS {
            if !self.nodes[i].online {
                self.nodes[i].online = true;
                self.input(i, Input::Network { online: true });
            }
            if !self.nodes[i].running {
                self.start(i);
            }
            if !self.nodes[i].connected {
                self.connect(i);
            }
        }
        let healed_at = self.now;
        loop {
            for i in 0..CLIENTS {
                let now = self.local_now(i);
                loop {
                    while self.nodes[i].client.complete_write(now) {
                        self.collect_sends(i);
                    }
                    // What batched steps left is written in the next task, as the driver does.
                    if !self.nodes[i].client.tick_unflushed(now) {
                        break;
                    }
                    self.collect_sends(i);
                }
            }
            while !self.net.is_empty() {
                self.deliver(0, false)?;
            }
            let busy = self.nodes.iter().any(|n| {
                !n.client.writes.is_empty() || n.client.engine.status() != SyncStatus::Idle
            });
            if !busy && self.net.is_empty() {
                return Ok(());
            }
            if self.now > healed_at + DRAIN_LIMIT_MS {
                let states: Vec<_> = self
                    .nodes
                    .iter()
                    .map(|n| {
                        (
                            n.client.engine.status(),
                            n.client.engine.stats().last_error.clone(),
                        )
                    })
                    .collect();
                let stuck: Vec<String> = self
                    .nodes
                    .iter()
                    .flat_map(|n| n.client.engine.unfinished())
                    .map(|t| {
                        format!(
                            "{} {:?} behind {:?} ids {:?}",
                            t.id,
                            t.state,
                            t.queued_behind,
                            t.mutations.iter().map(|m| m.wire_id).collect::<Vec<_>>()
                        )
                    })
                    .collect();
                return violation("I7", format!("not drained {DRAIN_LIMIT_MS} ms after healing; statuses {states:?}; unfinished {stuck:?}"));
            }
            self.now += 250;
            self.tick_due();
        }
    }

    /// Every request made is answered once healed, and a `forceSync` made then succeeds.
    fn check_requests(&mut self) -> Result<(), Violation> {
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(t) = node
                .requests
                .iter()
                .find(|t| !node.client.answers.contains_key(t))
            {
                return violation("requests", format!("client {i}'s {t:?} is unanswered"));
            }
        }
        let tickets: Vec<Ticket> = (0..CLIENTS)
            .map(|i| {
                let now = self.local_now(i);
                let sync = Input::SyncNow {
                    push: true,
                    pull: true,
                };
                let ticket = self.nodes[i].client.request(sync, now).expect("a ticket");
                self.collect_sends(i);
                ticket
            })
            .collect();
        self.heal()?;
        for (i, ticket) in tickets.iter().enumerate() {
            let answer = self.nodes[i].client.answers.get(ticket);
            if answer != Some(&Ok(())) {
                return violation(
                    "requests",
                    format!("client {i}'s forceSync once healed got {answer:?}"),
                );
            }
        }
        Ok(())
    }

    fn check_final(&self) -> Result<(), Violation> {
        // I1: every durable write ended completed or failed (acknowledged or rejected).
        for (i, node) in self.nodes.iter().enumerate() {
            for id in &node.client.durable {
                let state = node.client.last_seen.get(id).map(|t| t.state);
                if !matches!(state, Some(TxState::Completed | TxState::Failed)) {
                    return violation("I1", format!("client {i}'s durable {id} ended {state:?}"));
                }
            }
        }
        // I2: no write applied twice.
        if let Some((token, n)) = self.server.applied_tokens.iter().find(|(_, n)| **n > 1) {
            return violation("I2", format!("write {token} was applied {n} times"));
        }
        // I3: each client's writes to a document were applied in the order it made them.
        if self.ordered {
            for ((client_id, doc), applied) in &self.server.applied_order {
                let made = &self.nodes[self.owners[client_id]].order[doc];
                let mut rest = made.iter();
                if !applied.iter().all(|t| rest.any(|m| m == t)) {
                    return violation("I3", format!("{doc}: applied {applied:?}, made {made:?}"));
                }
            }
        }
        // I4: every replica converged to the server's state.
        for (i, node) in self.nodes.iter().enumerate() {
            let todos = node.client.engine.collection("todos").expect("configured");
            let server: BTreeMap<_, _> = self
                .server
                .mem
                .documents()
                .map(|d| (d.doc.id().to_owned(), &d.doc))
                .collect();
            for (id, doc) in &server {
                let mine = todos.get(id);
                if mine.map(|d| (d.fields(), d.deleted(), d.version()))
                    != Some((doc.fields(), doc.deleted(), doc.version()))
                {
                    return violation(
                        "I4",
                        format!("client {i} has {id} as {mine:?}, the server {doc:?}"),
                    );
                }
            }
            if let Some(extra) = todos.docs().find(|d| !server.contains_key(d.id())) {
                return violation(
                    "I4",
                    format!("client {i} has {} that the server does not", extra.id()),
                );
            }
            // Storage holds what memory holds (hardDelete's removals too), whatever
            // compaction has folded so far.
            let stored_engine = node.client.stored();
            for name in ["todos", "cache"] {
                let memory = node.client.engine.collection(name).expect("configured");
                let stored = stored_engine.collection(name).expect("configured");
                let mut held: Vec<_> = memory.synced_docs().collect();
                let mut kept: Vec<_> = stored.synced_docs().collect();
                held.sort_by(|a, b| a.id().cmp(b.id()));
                kept.sort_by(|a, b| a.id().cmp(b.id()));
                if held != kept {
                    return violation(
                        "storage",
                        format!("client {i} stores {kept:?} in {name} but holds {held:?}"),
                    );
                }
            }
            // The history holds each finished transaction's writes as they were when it
            // finished, whatever happened to their documents since.
            for tx in node.client.engine.transactions() {
                let writes = |t: &ferrosync_core::transaction::Transaction| {
                    let each = t.mutations.iter();
                    each.map(|m| (m.collection.clone(), m.doc_id.clone(), m.op.clone(), m.hlc))
                        .collect::<Vec<_>>()
                };
                let seen = node.client.last_seen.get(&tx.id);
                if tx.state.is_terminal() && seen.is_some_and(|seen| writes(seen) != writes(tx)) {
                    return violation(
                        "history",
                        format!(
                            "client {i} holds {} as {:?}, but it finished as {:?}",
                            tx.id,
                            writes(tx),
                            seen.map(writes)
                        ),
                    );
                }
            }
            // The history storage holds is the one memory holds, within the retention, and
            // nothing left it uncounted: every durable transaction is kept or counted dropped.
            let history = node.client.engine.transactions();
            if stored_engine.transactions() != history {
                let ids = |txs: Vec<&ferrosync_core::transaction::Transaction>| {
                    txs.iter().map(|t| t.id.0).collect::<Vec<_>>()
                };
                return violation(
                    "history",
                    format!(
                        "client {i} stores the history {:?} but holds {:?}",
                        ids(stored_engine.transactions()),
                        ids(history)
                    ),
                );
            }
            let keep = node.client.config.history.keep.unwrap_or(usize::MAX);
            let dropped = node.client.engine.stats().history_dropped as usize;
            if history.len() > keep || history.len() + dropped < node.client.durable.len() {
                return violation(
                    "history",
                    format!(
                        "client {i} keeps {} (keep {keep}), dropped {dropped}, of {} durable",
                        history.len(),
                        node.client.durable.len()
                    ),
                );
            }
        }
        Ok(())
    }
}

fn run(seed: u64, options: &Options) -> Result<Counts, Violation> {
    let mut sim = Sim::new(seed, options);
    for i in 0..CLIENTS {
        sim.start(i);
        sim.answer_dial(i);
    }
    for _ in 0..options.steps {
        sim.step()?;
    }
    sim.heal()?;
    sim.check_requests()?;
    sim.check_queries(true)?;
    sim.check_final()?;
    for node in &sim.nodes {
        sim.counts.conflicts += node.client.engine.stats().conflict_count;
        sim.counts.history_dropped += node.client.engine.stats().history_dropped;
        sim.counts.history_pages += node.client.store.snapshot().history.count() as u64;
        for tx in node.client.last_seen.values() {
            sim.counts.failed += u64::from(tx.state == TxState::Failed);
            sim.counts.completed += u64::from(tx.state == TxState::Completed);
        }
    }
    Ok(sim.counts)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn invariants_hold_under_injected_faults() {
    let steps = env("SIM_STEPS", 200) as usize;
    let options = Options {
        steps,
        broken_dedup: false,
        unnamed_requests: false,
    };
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
        Err(_) => (0..env("SIM_SEEDS", 1_000)).collect(),
    };
    let mut totals = Counts::default();
    for &seed in &seeds {
        match run(seed, &options) {
            Ok(counts) => totals += counts,
            Err(v) => panic!(
                "invariant {} violated with seed {seed}: {}\nreplay: SIM_SEED={seed} cargo test -p ferrosync-core --test simulation",
                v.invariant, v.detail
            ),
        }
    }
    println!(
        "simulation: {} seeds x {steps} steps, no invariant violated; {totals:?}",
        seeds.len()
    );
    if seeds.len() >= 100 {
        let c = totals;
        let exercised = [
            c.lost,
            c.duplicated,
            c.reloads,
            c.flaps,
            c.busy_toggles,
            c.conflicts,
            c.failed,
            c.completed,
            c.torn_writes,
            c.compactions,
            c.requests,
            c.dials,
            c.stops,
            c.history_pages,
            c.history_dropped,
            c.recognised,
        ];
        assert!(
            exercised.iter().all(|n| *n > 0),
            "every fault and outcome must occur: {totals:?}"
        );
    }
}

/// Asserts that runs of 100 seeds with a fault planted by `options` report `invariant`.
fn assert_caught(options: Options, invariant: &str) {
    let violations: Vec<Violation> = (0..100)
        .filter_map(|seed| run(seed, &options).err())
        .collect();
    assert!(
        violations.iter().any(|v| v.invariant == invariant),
        "the fault must be reported as {invariant}, got {violations:?}"
    );
}

#[test]
fn a_server_that_forgets_processed_mutations_is_caught() {
    // Re-applied mutations.
    let options = Options {
        steps: 200,
        broken_dedup: true,
        unnamed_requests: false,
    };
    assert_caught(options, "I2");
}

#[test]
fn a_leader_that_commits_a_request_sent_again_twice_is_caught() {
    let options = Options {
        steps: 200,
        broken_dedup: false,
        unnamed_requests: true,
    };
    assert_caught(options, "tabs");
}
