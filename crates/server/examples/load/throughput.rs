//! Push throughput: clients pushing as fast as they are answered, each in a tenant of its own
//! (no fan-out), spread over the nodes. Each client sends pushes of `batch` transactions (one
//! `put` of a new document each, mutation ids contiguous from 1), keeping `in_flight` of them
//! unanswered on its connection (an engine keeps up to 4); every mutation must come back
//! `applied`.

use crate::cluster::{Cluster, Database};
use crate::socket::{send, Socket};
use crate::stats::{micros, round, CpuUse, CpuWindow, Histogram, Summary};
use ferrosync_core::document::Fields;
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::Op;
use ferrosync_core::protocol::{
    ClientMessage, Outcome, ServerMessage, WireMutation, WireTransaction, PROTOCOL_VERSION,
};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// How long a push may wait for its answer before the run counts it as a stall.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// One run's shape.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Config {
    /// Concurrent clients.
    pub clients: usize,
    /// Transactions (of one mutation) per push.
    pub batch: usize,
    /// Pushes each client keeps unanswered.
    pub in_flight: usize,
    /// Seconds of pushing.
    pub seconds: u64,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Its shape.
    #[serde(flatten)]
    pub config: Config,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The server's `--durability` (`normal` or `full`; SQLite's only).
    pub durability: String,
    /// Server nodes.
    pub nodes: usize,
    /// Mutations acknowledged `applied`, per second.
    pub mutations_per_second: f64,
    /// Each push, from sending it to its answer.
    pub push: Summary,
    /// CPU use during the run.
    pub cpu: CpuUse,
}

/// Runs one configuration on `cluster`.
pub async fn run(
    cluster: &Cluster,
    database: &Database,
    config: Config,
    postgres_pid: Option<u32>,
) -> Result<Report, String> {
    let addrs = cluster.addrs();
    let mut sockets = Vec::new();
    for i in 0..config.clients {
        let addr = addrs[i % addrs.len()];
        let token = cluster.token(&format!("u{i}"), &format!("tp{i}"));
        sockets.push(connect(addr, &token, &format!("p{i}")).await?);
    }
    let cpu = CpuWindow::start(cluster.pids(), postgres_pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(config.seconds);
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, socket)| tokio::spawn(client(socket, i, config, deadline)))
        .collect();
    let mut latencies = Histogram::default();
    let (mut acked, mut last) = (0, started);
    for task in tasks {
        let (client_acked, client_latencies, finished) = task
            .await
            .map_err(|e| format!("a client task failed: {e}"))??;
        acked += client_acked;
        latencies.merge(&client_latencies);
        last = last.max(finished);
    }
    let cpu: CpuUse = cpu.finish();
    Ok(Report {
        config,
        database: database.name().to_owned(),
        durability: database.durability().to_owned(),
        nodes: addrs.len(),
        mutations_per_second: round(acked as f64 / (last - started).as_secs_f64()),
        push: latencies.summary(),
        cpu,
    })
}

async fn connect(
    addr: std::net::SocketAddr,
    token: &str,
    client_id: &str,
) -> Result<Socket, String> {
    let url = format!("ws://{addr}/v1/sync?token={token}");
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
        .await
        .map_err(|e| format!("{client_id}: cannot connect: {e}"))?;
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client_id: client_id.to_owned(),
        collections: vec!["todos".to_owned()],
    };
    send(&mut socket, &hello).await?;
    match next_message(&mut socket).await? {
        ServerMessage::Welcome { .. } => Ok(socket),
        other => Err(format!("{client_id}: answer to hello: {other:?}")),
    }
}

/// One client's loop: keeps `in_flight` pushes unanswered, checks each answer as it comes (in
/// order), until the deadline. Returns the mutations acknowledged, each push's latency, and when
/// the last answer came.
async fn client(
    mut socket: Socket,
    index: usize,
    config: Config,
    deadline: Instant,
) -> Result<(u64, Histogram, Instant), String> {
    let batch = config.batch;
    let mut latencies = Histogram::default();
    let (mut acked, mut next_id, mut seq, mut finished) = (0, 1u64, 0u64, Instant::now());
    let mut unanswered = VecDeque::new();
    loop {
        while unanswered.len() < config.in_flight && Instant::now() < deadline {
            seq += 1;
            let first = next_id;
            let push = ClientMessage::Push {
                seq,
                transactions: (first..first + batch as u64)
                    .map(|id| put(index, id))
                    .collect(),
            };
            next_id += batch as u64;
            unanswered.push_back((seq, Instant::now()));
            send(&mut socket, &push).await?;
        }
        let Some((seq, sent)) = unanswered.pop_front() else {
            break;
        };
        let answer = timeout(ANSWER_TIMEOUT, next_message(&mut socket))
            .await
            .map_err(|_| format!("push {seq}: no answer within {ANSWER_TIMEOUT:?} (stall)"))??;
        latencies.record(micros(sent.elapsed()));
        finished = Instant::now();
        let ServerMessage::PushResult {
            seq: answered,
            results,
            ..
        } = answer
        else {
            return Err(format!("push {seq}: answered {answer:?}"));
        };
        if answered != seq
            || results.len() != batch
            || !results
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Applied { .. }))
        {
            return Err(format!(
                "push {seq}: not every mutation was applied (answer to {answered})"
            ));
        }
        acked += batch as u64;
    }
    let _ = timeout(Duration::from_secs(2), socket.close(None)).await;
    Ok((acked, latencies, finished))
}

/// The next message that is not a live `changes` frame.
async fn next_message(socket: &mut Socket) -> Result<ServerMessage, String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                if text.starts_with(r#"{"type":"changes""#) || text.starts_with('[') {
                    continue;
                }
                return serde_json::from_str(&text).map_err(|e| format!("unreadable answer: {e}"));
            }
            Some(Ok(Message::Close(close))) => {
                return Err(format!("closed by the server: {close:?}"))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("WebSocket failure: {e}")),
            None => return Err("the connection ended".to_owned()),
        }
    }
}

/// A transaction of one `put` creating the client's document number `id`.
fn put(client: usize, id: u64) -> WireTransaction {
    let mut fields = Fields::new();
    fields.insert("title", serde_json::json!(format!("load item {id}")));
    fields.insert("completed", serde_json::json!(id % 2 == 0));
    fields.insert("n", serde_json::json!(id));
    WireTransaction {
        mutations: vec![WireMutation {
            id,
            collection: "todos".to_owned(),
            doc_id: format!("p{client}-{id}"),
            op: Op::Put { fields },
            hlc: Hlc {
                wall: crate::stats::now_ms(),
                counter: (id % u64::from(u32::MAX)) as u32,
                node: client as u32,
            },
            base_version: 0,
        }],
        abandon: false,
    }
}
