//! Clients writing at a fixed rate, in tenants of a given size, over the nodes (spread: client
//! `i` on node `i mod nodes`, so each tenant spans every node; or by tenant, as a load balancer
//! routing on the tenant would): how long each write waits for its acknowledgement, and how
//! long it takes to reach every other client of its tenant.
//!
//! Each client sends one `push` of one new document every `1/rate` seconds (evenly phased
//! across clients), with at most one push in flight; a write's latency counts from when it was
//! due, so a server that falls behind is charged for the wait. Every client tracks its cursor
//! as the engine does: a `changes` frame whose range starts at or before its cursor delivers
//! every version up to the range's end; one that starts after it is a gap (or a resync), and
//! the client pulls. A version reaches a client when its cursor passes it; its delivery time
//! counts from when its writer was due to send it. After the run every client must have every
//! other client's writes of its tenant, or they count as missing.

use crate::cluster::Cluster;
use crate::socket::{send, Socket};
use crate::stats::{micros, round, CpuUse, CpuWindow, Histogram, Summary};
use ferrosync_core::document::Fields;
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::Op;
use ferrosync_core::protocol::{
    ClientMessage, CursorRange, WireMutation, WireTransaction, PROTOCOL_VERSION,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A write holds if its acknowledgement's p99 is within this.
pub const ACK_P99_MS: f64 = 250.0;
/// A live update holds if it reaches every client within this.
pub const DELIVERY_MS: u64 = 1_000;
/// How long connecting one client (and its `hello`) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Clients connecting at once.
const CONNECTING: usize = 64;
/// How long after the last write the clients may take to catch up.
const GRACE: Duration = Duration::from_secs(10);
/// The collection written.
const COLLECTION: &str = "todos";

/// One run's shape.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Config {
    /// Clients in all.
    pub clients: usize,
    /// Clients per tenant (the last tenant may have fewer).
    pub tenant_size: usize,
    /// Writes per second per client.
    pub rate: f64,
    /// Seconds of writing.
    pub seconds: u64,
    /// Client `i` connects to node `i mod nodes`, so each tenant spans every node; otherwise a
    /// tenant's clients share one node (a load balancer routing by tenant).
    pub spread: bool,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Its shape.
    #[serde(flatten)]
    pub config: Config,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Server nodes.
    pub nodes: usize,
    /// Writes acknowledged `applied`.
    pub writes: u64,
    /// Acknowledged writes per second.
    pub writes_per_second: f64,
    /// From when a write was due to its acknowledgement.
    pub ack: Summary,
    /// From when a write was due to when another client of its tenant had it, per write and
    /// client.
    pub delivery: Summary,
    /// Deliveries owed: each acknowledged write to each other client of its tenant.
    pub deliveries_expected: u64,
    /// Deliveries that never happened (within the grace period after the run).
    pub deliveries_missing: u64,
    /// Deliveries within [`DELIVERY_MS`], in percent of those owed.
    pub delivered_within_1s_pct: f64,
    /// `changes` frames received (an array of several counts once).
    pub live_frames: u64,
    /// Pulls the clients made to fill gaps or after a resync.
    pub pulls: u64,
    /// CPU use during the writing.
    pub cpu: CpuUse,
    /// Whether it held: ack p99 within [`ACK_P99_MS`], and every delivery within
    /// [`DELIVERY_MS`].
    pub holds: bool,
}

/// One tenant's acknowledged writes, and when its writers are done.
#[derive(Default)]
struct Tenant {
    /// (version, when it was due in µs since the start, writing member).
    writes: Mutex<Vec<(u64, u64, usize)>>,
    /// Writers that sent their last write and got its answer.
    stopped: AtomicUsize,
    /// The newest acknowledged version.
    head: AtomicU64,
    /// Members.
    size: usize,
}

/// When the run writes.
#[derive(Clone, Copy)]
struct Plan {
    start: Instant,
    interval: Duration,
    deadline: Instant,
}

/// What one client saw.
struct Outcome {
    tenant: usize,
    member: usize,
    acks: Histogram,
    /// The cursor moved from `.0` to `.1` at `.2` µs since the start (by live frames or pulls).
    deliveries: Vec<(u64, u64, u64)>,
    frames: u64,
    pulls: u64,
}

/// Runs one configuration on `cluster`.
pub async fn run(
    cluster: &Cluster,
    database: &str,
    config: Config,
    postgres_pid: Option<u32>,
) -> Result<Report, String> {
    let addrs = cluster.addrs();
    let tenants: Vec<Arc<Tenant>> = (0..config.clients.div_ceil(config.tenant_size))
        .map(|t| {
            Arc::new(Tenant {
                size: config
                    .tenant_size
                    .min(config.clients - t * config.tenant_size),
                ..Tenant::default()
            })
        })
        .collect();
    let sockets = connect_all(cluster, &addrs, config).await?;
    let interval = Duration::from_secs_f64(1.0 / config.rate);
    let start = Instant::now() + Duration::from_millis(500);
    let plan = Plan {
        start,
        interval,
        deadline: start + Duration::from_secs(config.seconds),
    };
    let cpu = CpuWindow::start(cluster.pids(), postgres_pid);
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, socket)| {
            let tenant = tenants[i / config.tenant_size].clone();
            // Evenly phased over one interval.
            let offset = interval.mul_f64(i as f64 / config.clients as f64);
            tokio::spawn(client(socket, i, config.tenant_size, tenant, plan, offset))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    let mut cpu_use = None;
    for task in tasks {
        let outcome = task
            .await
            .map_err(|e| format!("a client task failed: {e}"))??;
        cpu_use.get_or_insert_with(|| cpu.finish());
        outcomes.push(outcome);
    }
    let cpu_use = cpu_use.unwrap_or_else(|| cpu.finish());
    Ok(report(
        config,
        database,
        addrs.len(),
        &tenants,
        outcomes,
        cpu_use,
    ))
}

/// Connects every client (a JWT per user `u{i}` of tenant `t{i / tenant_size}`) and says hello.
async fn connect_all(
    cluster: &Cluster,
    addrs: &[SocketAddr],
    config: Config,
) -> Result<Vec<Socket>, String> {
    let mut sockets = Vec::with_capacity(config.clients);
    for chunk in (0..config.clients).collect::<Vec<_>>().chunks(CONNECTING) {
        let connecting = chunk.iter().map(|&i| {
            let tenant = i / config.tenant_size;
            let addr = addrs[if config.spread { i } else { tenant } % addrs.len()];
            let token = cluster.token(&format!("u{i}"), &format!("t{tenant}"));
            async move {
                timeout(CONNECT_TIMEOUT, connect(addr, &token, &format!("c{i}")))
                    .await
                    .map_err(|_| format!("client {i}: no welcome within {CONNECT_TIMEOUT:?}"))?
            }
        });
        for socket in futures_util::future::join_all(connecting).await {
            sockets.push(socket?);
        }
    }
    Ok(sockets)
}

async fn connect(addr: SocketAddr, token: &str, client_id: &str) -> Result<Socket, String> {
    let url = format!("ws://{addr}/v1/sync?token={token}");
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
        .await
        .map_err(|e| format!("{client_id}: cannot connect: {e}"))?;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client_id: client_id.to_owned(),
        collections: vec![COLLECTION.to_owned()],
    };
    send(&mut socket, &hello).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<Answer>(&text) {
                Ok(Answer::Welcome {}) => return Ok(socket),
                Ok(Answer::Changes {}) => continue,
                _ => return Err(format!("{client_id}: answer to hello: {text}")),
            },
            Some(Ok(_)) => continue,
            other => return Err(format!("{client_id}: no welcome: {other:?}")),
        }
    }
}

/// What the clients read of server messages (the rest is skipped unparsed).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Answer {
    Welcome {},
    PushResult {
        seq: u64,
        results: Vec<Result_>,
        range: Option<CursorRange>,
    },
    PullPage {
        cursor: u64,
        has_more: bool,
    },
    Changes {},
    Pong {},
    Error {
        code: String,
        message: String,
    },
}

/// A mutation's result.
#[derive(Deserialize)]
struct Result_ {
    status: String,
    doc: Option<Version>,
}

/// A document's version.
#[derive(Deserialize)]
struct Version {
    version: u64,
}

/// A client's cursor, moved as the engine moves it.
struct Cursor {
    at: u64,
    pulling: bool,
    pull_again: bool,
    pulls: u64,
    seq: u64,
}

impl Cursor {
    /// A range of changes arrived at `now` (µs): the cursor moves, or a pull is due.
    async fn range(
        &mut self,
        socket: &mut Socket,
        since: u64,
        cursor: u64,
        now: u64,
        deliveries: &mut Vec<(u64, u64, u64)>,
    ) -> Result<(), String> {
        if since <= self.at {
            if cursor > self.at {
                deliveries.push((self.at, cursor, now));
                self.at = cursor;
            }
            return Ok(());
        }
        if self.pulling {
            self.pull_again = true;
            return Ok(());
        }
        self.pull(socket).await
    }

    async fn pull(&mut self, socket: &mut Socket) -> Result<(), String> {
        self.pulling = true;
        self.pulls += 1;
        self.seq += 1;
        let pull = ClientMessage::Pull {
            seq: self.seq,
            cursor: self.at,
            limit: 1_000,
        };
        send(socket, &pull).await
    }
}

/// One client: writes on schedule, follows its tenant's changes, and stops once its tenant's
/// writers stopped and it has every other client's writes (or the grace period ends).
async fn client(
    mut socket: Socket,
    index: usize,
    tenant_size: usize,
    tenant: Arc<Tenant>,
    plan: Plan,
    offset: Duration,
) -> Result<Outcome, String> {
    let member = index % tenant_size;
    let node = fnv1a(&format!("c{index}"));
    let mut outcome = Outcome {
        tenant: index / tenant_size,
        member,
        acks: Histogram::default(),
        deliveries: Vec::new(),
        frames: 0,
        pulls: 0,
    };
    let mut cursor = Cursor {
        at: 0,
        pulling: false,
        pull_again: false,
        pulls: 0,
        seq: 1 << 32,
    };
    // As the engine does after its welcome (not counted among the pulls that fill gaps).
    cursor.pull(&mut socket).await?;
    cursor.pulls = 0;
    let mut own: Vec<u64> = Vec::new();
    let mut next_write = plan.start + offset;
    let mut in_flight: Option<(u64, Instant)> = None;
    let (mut next_id, mut seq, mut stopped) = (1u64, 0u64, false);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let give_up = plan.deadline + GRACE;
    let since_start = |at: Instant| micros(at.saturating_duration_since(plan.start));
    loop {
        let due = in_flight.is_none() && !stopped;
        tokio::select! {
            () = sleep_until(next_write), if due => {
                seq += 1;
                send(&mut socket, &push(seq, index, node, next_id)).await?;
                in_flight = Some((seq, next_write));
                next_id += 1;
                next_write += plan.interval;
            }
            frame = socket.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(close))) => return Err(format!("c{index}: closed by the server: {close:?}")),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("c{index}: {e}")),
                    None => return Err(format!("c{index}: the connection ended")),
                };
                let now = since_start(Instant::now());
                if is_live(&text) {
                    outcome.frames += 1;
                    for (since, to) in ranges(&text) {
                        cursor.range(&mut socket, since, to, now, &mut outcome.deliveries).await?;
                    }
                    continue;
                }
                match serde_json::from_str::<Answer>(&text) {
                    Ok(Answer::PushResult { seq: answered, results, range }) => {
                        let Some((expected, due_at)) = in_flight.take() else {
                            return Err(format!("c{index}: an unexpected push result"));
                        };
                        if answered != expected || results.len() != 1 || results[0].status != "applied" {
                            return Err(format!("c{index}: push {expected} was answered: {text}"));
                        }
                        outcome.acks.record(micros(Instant::now().saturating_duration_since(due_at)));
                        if let Some(version) = results[0].doc.as_ref().map(|d| d.version) {
                            own.push(version);
                            tenant.writes.lock().unwrap_or_else(|p| p.into_inner()).push((version, since_start(due_at), member));
                            tenant.head.fetch_max(version, Ordering::Relaxed);
                        }
                        if let Some(range) = range.filter(|r| r.since <= cursor.at) {
                            cursor.at = cursor.at.max(range.cursor);
                        }
                        if next_write >= plan.deadline {
                            stopped = true;
                            tenant.stopped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(Answer::PullPage { cursor: to, has_more }) => {
                        if to > cursor.at {
                            outcome.deliveries.push((cursor.at, to, now));
                            cursor.at = to;
                        }
                        if has_more || std::mem::take(&mut cursor.pull_again) {
                            cursor.pull(&mut socket).await?;
                        } else {
                            cursor.pulling = false;
                        }
                    }
                    Ok(Answer::Error { code, message }) => return Err(format!("c{index}: error {code}: {message}")),
                    Ok(_) => {}
                    Err(e) => return Err(format!("c{index}: unreadable message ({e}): {}", clip(&text))),
                }
            }
            _ = tick.tick() => {}
        }
        let head = tenant.head.load(Ordering::Relaxed);
        let writers_done = tenant.stopped.load(Ordering::Relaxed) == tenant.size;
        let missing = head.saturating_sub(cursor.at)
            - own.iter().filter(|&&v| v > cursor.at && v <= head).count() as u64;
        if (stopped && writers_done && !cursor.pulling && missing == 0) || Instant::now() > give_up
        {
            break;
        }
    }
    outcome.pulls = cursor.pulls;
    let _ = timeout(Duration::from_secs(2), socket.close(None)).await;
    Ok(outcome)
}

/// Whether a frame holds live `changes` (one message, or an array of them).
fn is_live(text: &str) -> bool {
    text.starts_with(r#"{"type":"changes""#) || text.starts_with(r#"[{"type":"changes""#)
}

/// The ranges of the `changes` messages of a frame, in order. The server writes each message's
/// range first; the pattern cannot occur inside a document (quotes in strings are escaped).
fn ranges(text: &str) -> Vec<(u64, u64)> {
    const SINCE: &str = r#""range":{"since":"#;
    const CURSOR: &str = r#","cursor":"#;
    text.match_indices(SINCE)
        .filter_map(|(at, _)| {
            let rest = &text[at + SINCE.len()..];
            let (since, rest) = rest.split_once(CURSOR)?;
            let end = rest.find('}')?;
            Some((since.parse().ok()?, rest[..end].parse().ok()?))
        })
        .collect()
}

/// A push of one `put` of the client's document number `id`.
fn push(seq: u64, client: usize, node: u32, id: u64) -> ClientMessage {
    let mut fields = Fields::new();
    fields.insert("title", serde_json::json!(format!("load item {id}")));
    fields.insert("n", serde_json::json!(id));
    ClientMessage::Push {
        seq,
        transactions: vec![WireTransaction {
            mutations: vec![WireMutation {
                id,
                collection: COLLECTION.into(),
                doc_id: format!("c{client}-{id}"),
                op: Op::Put { fields },
                hlc: Hlc {
                    wall: crate::stats::now_ms(),
                    counter: 0,
                    node,
                },
                base_version: 0,
            }],
            abandon: false,
        }],
    }
}

/// The figures of a run.
fn report(
    config: Config,
    database: &str,
    nodes: usize,
    tenants: &[Arc<Tenant>],
    outcomes: Vec<Outcome>,
    cpu: CpuUse,
) -> Report {
    let mut acks = Histogram::default();
    let mut delivery = Histogram::default();
    let (mut expected, mut delivered, mut frames, mut pulls) = (0, 0, 0, 0);
    // Per tenant, each version's due time and writer.
    let written: Vec<Vec<Option<(u64, usize)>>> = tenants
        .iter()
        .map(|t| {
            let writes = t.writes.lock().unwrap_or_else(|p| p.into_inner());
            let head = writes.iter().map(|w| w.0).max().unwrap_or(0);
            let mut by_version = vec![None; head as usize + 1];
            for &(version, due, member) in writes.iter() {
                by_version[version as usize] = Some((due, member));
            }
            by_version
        })
        .collect();
    for outcome in &outcomes {
        acks.merge(&outcome.acks);
        frames += outcome.frames;
        pulls += outcome.pulls;
        let versions = &written[outcome.tenant];
        expected += versions
            .iter()
            .flatten()
            .filter(|(_, member)| *member != outcome.member)
            .count() as u64;
        for &(from, to, at) in &outcome.deliveries {
            for version in from + 1..=to.min(versions.len() as u64 - 1) {
                if let Some((due, member)) = versions[version as usize] {
                    if member != outcome.member {
                        delivery.record(at.saturating_sub(due));
                        delivered += 1;
                    }
                }
            }
        }
    }
    let writes = acks.count();
    let within = delivery.at_most(DELIVERY_MS * 1_000);
    let ack = acks.summary();
    let delivery_summary = delivery.summary();
    let missing = expected - delivered;
    Report {
        config,
        database: database.to_owned(),
        nodes,
        writes,
        writes_per_second: round(writes as f64 / config.seconds as f64),
        ack,
        delivery: delivery_summary,
        deliveries_expected: expected,
        deliveries_missing: missing,
        delivered_within_1s_pct: if expected == 0 {
            100.0
        } else {
            round(within as f64 / expected as f64 * 100.0)
        },
        live_frames: frames,
        pulls,
        cpu,
        holds: ack.p99_ms <= ACK_P99_MS
            && missing == 0
            && delivery_summary.max_ms <= DELIVERY_MS as f64,
    }
}

/// A 32-bit FNV-1a hash: the client's HLC node number.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(2_166_136_261u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
    })
}

/// At most 300 bytes of `text`, for error messages.
fn clip(text: &str) -> &str {
    match text.char_indices().nth(300) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}
