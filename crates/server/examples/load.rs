//! A load generator for the reference server: how many mutations per second it acknowledges,
//! and how long a push waits for its answer, at several numbers of concurrent clients.
//!
//! ```text
//! cargo build --release -p ferrosync-server
//! cargo run --release -p ferrosync-server --example load -- [--clients 1,4,16] [--batch 100] [--seconds 5]
//! ```
//!
//! It starts the real server binary (`target/release/ferrosync-server` of the workspace, or
//! `--server-bin PATH`) on a free loopback port, with a fresh SQLite database in a temporary
//! directory and a random dev token, and stops it at the end, also when a scenario fails.
//!
//! For each concurrency level, that many WebSocket clients say `hello` (collection `todos`),
//! then each one, for `--seconds`, sends a `push` of `--batch` transactions (one `put` of a new
//! document each, mutation ids contiguous from 1, `base_version` 0) and waits for its
//! `push_result` before sending the next. `changes` frames (other clients' commits, broadcast
//! live) are skipped. Every mutation must come back `applied`: any other outcome, an `error`
//! message, a closed connection or an answer slower than 30 s fails the run.
//!
//! The server's per-connection rate limit (100 messages/s by default) closes a connection that
//! pushes faster; `--max-messages-per-second N` starts the server with a higher limit. The
//! clients set TCP_NODELAY, as browsers do.
//!
//! Everything stays on 127.0.0.1 and is bounded: at most 1000 clients per level and 600 s per
//! level, each wait has a timeout, and the server is killed when the generator exits.

use clap::Parser;
use ferrosync_core::document::Fields;
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::Op;
use ferrosync_core::protocol::{
    ClientMessage, Outcome, ServerMessage, WireMutation, WireTransaction, PROTOCOL_VERSION,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The most clients one level may open.
const MAX_CLIENTS: usize = 1000;
/// The most mutations per push (the server's default `--max-batch`).
const MAX_BATCH: usize = 1000;
/// The longest a level may run, in seconds.
const MAX_SECONDS: u64 = 600;
/// How long the server may take to answer `GET /healthz` after it starts.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one connection plus its `hello` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a push may wait for its answer before the run counts it as a stall.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The collection every mutation writes.
const COLLECTION: &str = "todos";

/// A client's WebSocket.
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Load generator for ferrosync-server: acknowledged mutations per second and push latency.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The server binary (default: target/release/ferrosync-server in the workspace).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Concurrency levels: the number of WebSocket clients of each scenario.
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        default_value = "1,4,16"
    )]
    clients: Vec<usize>,
    /// Transactions per push (one `put` mutation each).
    #[arg(long, value_name = "N", default_value_t = 100)]
    batch: usize,
    /// Duration of each scenario, in seconds.
    #[arg(long, value_name = "S", default_value_t = 5)]
    seconds: u64,
    /// Passed to the server as `--max-messages-per-second` (default: the server's own default).
    #[arg(long, value_name = "N")]
    max_messages_per_second: Option<u32>,
}

/// Parses the arguments, runs the scenarios, and exits non-zero if any failed.
#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("load: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Checks the arguments, starts the server, runs every level, and stops the server.
async fn run(args: &Args) -> Result<(), String> {
    if args.clients.is_empty() || args.clients.iter().any(|&n| n == 0 || n > MAX_CLIENTS) {
        return Err(format!("--clients takes numbers from 1 to {MAX_CLIENTS}"));
    }
    if args.batch == 0 || args.batch > MAX_BATCH {
        return Err(format!("--batch takes a number from 1 to {MAX_BATCH}"));
    }
    if args.seconds == 0 || args.seconds > MAX_SECONDS {
        return Err(format!("--seconds takes a number from 1 to {MAX_SECONDS}"));
    }
    let bin = match &args.server_bin {
        Some(path) => path.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/ferrosync-server"),
    };
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
    if !bin.is_file() {
        return Err(format!(
            "no server binary at {}: build it with `cargo build --release -p ferrosync-server` or pass --server-bin",
            bin.display()
        ));
    }
    if args.server_bin.is_none() {
        warn_if_stale(&bin);
    }
    let server = Server::start(&bin, args.max_messages_per_second).await?;
    println!(
        "machine: {} CPUs (nproc); server {} on {}; database: SQLite (WAL) in a temp dir",
        nproc(),
        bin.display(),
        server.addr
    );
    println!(
        "each push: {} transactions of one put; {} s per level; server rate limit: {}",
        args.batch,
        args.seconds,
        args.max_messages_per_second
            .map_or_else(|| "server default".to_owned(), |n| format!("{n} msg/s"))
    );
    println!(
        "{:>7}  {:>13}  {:>11}  {:>11}  {:>15}  {:>7}  {:>9}",
        "clients",
        "acked mut/s",
        "push p50 ms",
        "push p99 ms",
        "per-mut p50 ms",
        "pushes",
        "mutations"
    );
    let mut outcome = Ok(());
    for (level, &clients) in args.clients.iter().enumerate() {
        match scenario(&server, level, clients, args.batch, args.seconds).await {
            Ok(report) => report.print(args.batch),
            Err(message) => {
                outcome = Err(format!("{clients} clients: {message}"));
                break;
            }
        }
    }
    let problems = server.stop().await;
    if !problems.is_empty() {
        println!("server log, warnings and errors:");
        for line in &problems {
            println!("  {line}");
        }
    }
    outcome
}

/// The server process, its address, token and temporary directory.
struct Server {
    /// The process; killed when dropped (so also on every error path).
    child: Child,
    /// Where it listens (loopback).
    addr: SocketAddr,
    /// The dev token it accepts.
    token: String,
    /// Its stderr, inside `dir`.
    log: PathBuf,
    /// Holds the database and the log; removed when dropped, after `child`.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary on a free loopback port and waits until `/healthz` answers.
    async fn start(bin: &Path, rate: Option<u32>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let db = dir.path().join("load.db");
        let log = dir.path().join("server.log");
        let stderr = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        // Asks the OS for a free port, then frees it for the server.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?;
        let token = random_token();
        let mut command = Command::new(bin);
        command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--db")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--dev-token")
            .arg(&token)
            // Every simulated client is the dev user.
            .args(["--max-connections-per-user", "1000000"])
            .env_remove("FERROSYNC_JWT_SECRET")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true);
        if let Some(rate) = rate {
            command
                .arg("--max-messages-per-second")
                .arg(rate.to_string());
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut server = Server {
            child,
            addr,
            token,
            log,
            _dir: dir,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// Polls `GET /healthz` until it answers `ok`, the process exits, or the timeout passes.
    async fn wait_healthy(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let url = format!("http://{}/healthz", self.addr);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the server exited at start ({status}): {}",
                    self.log_tail(20).join(" | ")
                ));
            }
            if let Ok(response) = http.get(&url).send().await {
                if response.status().is_success() && response.text().await.is_ok_and(|t| t == "ok")
                {
                    return Ok(());
                }
            }
            if started.elapsed() > HEALTH_TIMEOUT {
                return Err(format!(
                    "GET {url} did not answer ok within {HEALTH_TIMEOUT:?}: {}",
                    self.log_tail(20).join(" | ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `n` lines the server wrote to stderr.
    fn log_tail(&self, n: usize) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    /// Kills the server and waits for it; returns the warnings and errors it logged (at most 50).
    async fn stop(mut self) -> Vec<String> {
        if let Err(error) = self.child.kill().await {
            eprintln!("load: could not kill the server: {error}");
        }
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .take(50)
            .map(str::to_owned)
            .collect()
    }
}

/// What one level measured.
struct Report {
    /// Concurrent clients.
    clients: usize,
    /// Mutations answered `applied`, over all clients.
    acked: u64,
    /// From the common start to the last client's last answer.
    elapsed: Duration,
    /// Every push's latency, send to answer, sorted.
    latencies: Vec<Duration>,
    /// `changes` frames the clients received and skipped.
    changes_frames: u64,
}

impl Report {
    /// Prints the level's row: throughput, push p50/p99, per-mutation p50.
    fn print(&self, batch: usize) {
        let rate = self.acked as f64 / self.elapsed.as_secs_f64();
        let p50 = ms(percentile(&self.latencies, 0.50));
        let p99 = ms(percentile(&self.latencies, 0.99));
        println!(
            "{:>7}  {:>13.0}  {:>11.2}  {:>11.2}  {:>15.4}  {:>7}  {:>9}",
            self.clients,
            rate,
            p50,
            p99,
            p50 / batch as f64,
            self.latencies.len(),
            self.acked
        );
        if self.changes_frames > 0 {
            println!(
                "{:>7}  ({} live `changes` frames received and skipped, over {:.2} s)",
                "",
                self.changes_frames,
                self.elapsed.as_secs_f64()
            );
        }
    }
}

/// What one client measured.
struct ClientStats {
    /// Mutations answered `applied`.
    acked: u64,
    /// Its pushes' latencies.
    latencies: Vec<Duration>,
    /// When its last answer arrived.
    finished: Instant,
    /// `changes` frames skipped.
    changes_frames: u64,
}

/// Runs one level: connects `clients` clients, lets them push for `seconds`, gathers the figures.
async fn scenario(
    server: &Server,
    level: usize,
    clients: usize,
    batch: usize,
    seconds: u64,
) -> Result<Report, String> {
    let mut sockets = Vec::with_capacity(clients);
    for i in 0..clients {
        let client_id = format!("load-{level}-{i}");
        let socket = timeout(CONNECT_TIMEOUT, connect(server, &client_id))
            .await
            .map_err(|_| format!("client {client_id}: no welcome within {CONNECT_TIMEOUT:?}"))??;
        sockets.push((client_id, socket));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|(client_id, socket)| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let result = client(socket, &client_id, batch, deadline, &stop).await;
                if result.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                result.map_err(|e| format!("client {client_id}: {e}"))
            })
        })
        .collect();
    let mut report = Report {
        clients,
        acked: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        changes_frames: 0,
    };
    let mut errors = Vec::new();
    let mut last = start;
    for task in tasks {
        match task.await {
            Ok(Ok(stats)) => {
                report.acked += stats.acked;
                report.latencies.extend(stats.latencies);
                report.changes_frames += stats.changes_frames;
                last = last.max(stats.finished);
            }
            Ok(Err(message)) => errors.push(message),
            Err(panic) => errors.push(format!("a client task failed: {panic}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    report.elapsed = last - start;
    report.latencies.sort_unstable();
    if report.latencies.is_empty() {
        return Err("no push was answered".to_owned());
    }
    Ok(report)
}

/// Opens a WebSocket and says `hello`; returns the socket once the server welcomed the client.
async fn connect(server: &Server, client_id: &str) -> Result<Socket, String> {
    let url = format!("ws://{}/v1/sync?token={}", server.addr, server.token);
    // TCP_NODELAY on the client side, as browsers set it: the generator adds no Nagle delay.
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
        .await
        .map_err(|e| format!("client {client_id}: cannot connect: {e}"))?;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client_id: client_id.to_owned(),
        collections: vec![COLLECTION.to_owned()],
    };
    send(&mut socket, &hello)
        .await
        .map_err(|e| format!("client {client_id}: {e}"))?;
    loop {
        let text = next_text(&mut socket)
            .await
            .map_err(|e| format!("client {client_id}: {e}"))?;
        match serde_json::from_str::<ServerMessage>(&text) {
            Ok(ServerMessage::Welcome {
                last_mutation_id: 0,
                ..
            }) => return Ok(socket),
            Ok(ServerMessage::Welcome {
                last_mutation_id, ..
            }) => {
                return Err(format!(
                    "client {client_id}: a fresh client was welcomed with last_mutation_id {last_mutation_id}"
                ))
            }
            Ok(ServerMessage::Changes { .. }) => continue,
            _ => return Err(format!("client {client_id}: answer to hello: {text}")),
        }
    }
}

/// One client's loop: push, wait for the answer, check it, until the deadline.
async fn client(
    mut socket: Socket,
    client_id: &str,
    batch: usize,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<ClientStats, String> {
    let node = fnv1a(client_id);
    let mut stats = ClientStats {
        acked: 0,
        latencies: Vec::new(),
        finished: Instant::now(),
        changes_frames: 0,
    };
    let mut next_id = 1u64;
    let mut seq = 0u64;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        seq += 1;
        let first = next_id;
        let push = ClientMessage::Push {
            seq,
            transactions: (first..first + batch as u64)
                .map(|id| put(client_id, node, id))
                .collect(),
        };
        next_id += batch as u64;
        let text = serde_json::to_string(&push).map_err(|e| format!("cannot encode: {e}"))?;
        let sent = Instant::now();
        socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| format!("push {seq}: cannot send: {e}"))?;
        let results = timeout(
            ANSWER_TIMEOUT,
            answer(&mut socket, seq, &mut stats.changes_frames),
        )
        .await
        .map_err(|_| format!("push {seq}: no answer within {ANSWER_TIMEOUT:?} (stall)"))??;
        stats.latencies.push(sent.elapsed());
        stats.finished = Instant::now();
        if results.len() != batch {
            return Err(format!(
                "push {seq}: {} results for {batch} mutations",
                results.len()
            ));
        }
        for (expected, result) in (first..).zip(&results) {
            if result.id != expected {
                return Err(format!(
                    "push {seq}: result for mutation {} where {expected} was expected",
                    result.id
                ));
            }
            match &result.outcome {
                Outcome::Applied { .. } => stats.acked += 1,
                other => {
                    return Err(format!(
                        "push {seq}: mutation {expected} was not applied: {}",
                        serde_json::to_string(other).unwrap_or_else(|e| e.to_string())
                    ))
                }
            }
        }
    }
    // A polite close; the figures are in already, so a slow or failed close does not matter.
    let _ = timeout(Duration::from_secs(2), socket.close(None)).await;
    Ok(stats)
}

/// Reads until the `push_result` for `seq`, skipping (and counting) live `changes` frames.
async fn answer(
    socket: &mut Socket,
    seq: u64,
    changes_frames: &mut u64,
) -> Result<Vec<ferrosync_core::protocol::MutationResult>, String> {
    loop {
        let text = next_text(socket)
            .await
            .map_err(|e| format!("push {seq}: {e}"))?;
        // Internally tagged messages serialize their tag first: skip broadcasts without parsing.
        if text.starts_with(r#"{"type":"changes","#) {
            *changes_frames += 1;
            continue;
        }
        match serde_json::from_str::<ServerMessage>(&text) {
            Ok(ServerMessage::PushResult {
                seq: answered,
                results,
                ..
            }) if answered == seq => return Ok(results),
            Ok(ServerMessage::Changes { .. }) => *changes_frames += 1,
            Ok(ServerMessage::Error { seq: s, error }) => {
                return Err(format!(
                    "push {seq}: error (seq {s:?}): {} (retryable: {}): {}",
                    error.code, error.retryable, error.message
                ))
            }
            Ok(_) => return Err(format!("push {seq}: unexpected message: {}", clip(&text))),
            Err(e) => {
                return Err(format!(
                    "push {seq}: unreadable message ({e}): {}",
                    clip(&text)
                ))
            }
        }
    }
}

/// The next text frame; pings and pongs are skipped, a close or a failure is an error.
async fn next_text(socket: &mut Socket) -> Result<String, String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => return Err("unexpected binary frame".to_owned()),
            Some(Ok(Message::Close(Some(frame)))) => {
                return Err(format!(
                    "the server closed the connection: {} {}",
                    u16::from(frame.code),
                    frame.reason.as_str()
                ))
            }
            Some(Ok(Message::Close(None))) => {
                return Err("the server closed the connection (no close frame)".to_owned())
            }
            Some(Err(e)) => return Err(format!("WebSocket failure: {e}")),
            None => return Err("the connection ended".to_owned()),
        }
    }
}

/// Sends one message as a text frame.
async fn send(socket: &mut Socket, message: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(message).map_err(|e| format!("cannot encode: {e}"))?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|e| format!("cannot send: {e}"))
}

/// A transaction of one `put` creating the client's document number `id`.
fn put(client_id: &str, node: u32, id: u64) -> WireTransaction {
    let fields = Fields::from(
        json!({"title": format!("load item {id}"), "completed": id % 2 == 0, "n": id})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    WireTransaction {
        mutations: vec![WireMutation {
            id,
            collection: COLLECTION.to_owned(),
            doc_id: format!("{client_id}-{id}"),
            op: Op::Put { fields },
            hlc: Hlc {
                wall: now_ms(),
                counter: (id % u64::from(u32::MAX)) as u32,
                node,
            },
            base_version: 0,
        }],
        abandon: false,
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A 32-bit FNV-1a hash: the client's HLC node number.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(2_166_136_261u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
    })
}

/// A random 128-bit hex token (from the standard library's randomly seeded hasher keys; good
/// enough for a loopback server that lives for one run).
fn random_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (0..2u8)
        .map(|i| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            hasher.write_u8(i);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// The nearest-rank percentile `q` (0 < q <= 1) of sorted, non-empty `values`.
fn percentile(values: &[Duration], q: f64) -> Duration {
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// A duration in milliseconds.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// At most 300 bytes of `text`, for error messages.
fn clip(text: &str) -> &str {
    match text.char_indices().nth(300) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The number of CPUs available to this process, as `nproc` prints it.
fn nproc() -> String {
    std::process::Command::new("nproc")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.to_string())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Warns when the server or core sources changed after the binary was built.
fn warn_if_stale(bin: &Path) {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let newest = ["server/src", "core/src"]
        .iter()
        .filter_map(|dir| newest_change(&crates.join(dir)))
        .max();
    if newest.is_some_and(|newest| newest > built) {
        eprintln!(
            "load: warning: {} is older than the sources; rebuild with `cargo build --release -p ferrosync-server`",
            bin.display()
        );
    }
}

/// The latest modification time of the files under `dir`.
fn newest_change(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_change(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(time);
    }
    newest
}
