//! Starts the real router on an ephemeral loopback port over a fresh database (a SQLite file, or
//! a new schema on the PostgreSQL cluster `FERROSYNC_TEST_POSTGRES` names), and speaks to it
//! with a real WebSocket client and real HTTP. `both!(test)` runs a test on each backend.
#![allow(dead_code, unused_macros)] // each test binary uses a different part

use ferrosync_core::document::parse_document;
use ferrosync_core::hlc::Hlc;
use ferrosync_core::mutation::Op;
use ferrosync_core::protocol::{ClientMessage, ServerMessage, WireMutation, WireTransaction};
use ferrosync_server::auth::{own_origins, sign_hs256, Authenticator};
use ferrosync_server::limits::Limits;
use ferrosync_server::storage::{Durability, Storage};
use ferrosync_server::{router, serve, Config};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

pub const SECRET: &str = "test-secret";
pub const DEV: &str = "dev-token";

/// Generates the tests `NAME::sqlite` and `NAME::postgres`, each running `NAME(db)`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::common::Db::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name($crate::common::Db::Postgres).await
            }
        }
    };
}

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file.
    Sqlite,
    /// A schema of the test cluster.
    Postgres,
}

impl Db {
    /// A `--db` URL of a fresh, empty database of this kind: a file in `dir`, or a new schema.
    pub async fn fresh(self, dir: &Path) -> String {
        match self {
            Db::Sqlite => format!("sqlite://{}", dir.join("test.db").display()),
            Db::Postgres => postgres_schema().await,
        }
    }
}

/// The PostgreSQL database the tests create their schemas in.
pub fn postgres_url() -> String {
    std::env::var("FERROSYNC_TEST_POSTGRES").expect(
        "FERROSYNC_TEST_POSTGRES must name a PostgreSQL database the tests may create schemas in \
         (npm test starts a cluster and sets it; see scripts/postgres.sh)",
    )
}

/// A new, empty schema on the test cluster, as a `--db` URL whose `search_path` names it.
pub async fn postgres_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = postgres_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "t{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("the test cluster answers");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{name}")
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// The `--db` URL it runs on.
    pub url: String,
    _dir: Arc<tempfile::TempDir>,
}

impl TestServer {
    /// Another node on the same database (a PostgreSQL schema, or the same SQLite file).
    pub async fn node(&self, limits: Limits) -> TestServer {
        serve_on(self.url.clone(), self._dir.clone(), limits, None).await
    }
}

/// A token for `user` in `tenant`, valid for an hour.
pub fn token(user: &str, tenant: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3_600;
    sign_hs256(
        &json!({"sub": user, "tenant": tenant, "exp": exp}),
        SECRET.as_bytes(),
    )
}

pub async fn start(db: Db, limits: Limits) -> TestServer {
    start_with(db, limits, None).await
}

/// A server as `ferrosync-server` runs it (the same accept loop), serving `static_dir` too.
pub async fn start_with(db: Db, limits: Limits, static_dir: Option<PathBuf>) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh(dir.path()).await;
    serve_on(url, Arc::new(dir), limits, static_dir).await
}

async fn serve_on(
    url: String,
    dir: Arc<tempfile::TempDir>,
    limits: Limits,
    static_dir: Option<PathBuf>,
) -> TestServer {
    let storage = Storage::open(&url, limits.log_retention(), Durability::Normal)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (app, stop) = router(Config {
        storage: Arc::new(storage),
        auth: Authenticator::new(Some(DEV.into()), Some(SECRET.into())),
        allowed_origins: vec!["http://app.example".into()],
        own_origins: own_origins(addr),
        limits: limits.clone(),
        static_dir,
        heartbeat: Duration::from_secs(20),
    });
    tokio::spawn(async move {
        let _keep = stop;
        serve::run(listener, app, &limits, std::future::pending()).await
    });
    TestServer {
        addr,
        url,
        _dir: dir,
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket with `token` (as the browser does: a query parameter).
pub async fn connect(
    addr: SocketAddr,
    token: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let request = format!("ws://{addr}/v1/sync?token={token}")
        .into_client_request()
        .unwrap();
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// Sends raw text and reads the next text answer (skipping pings).
pub async fn exchange_raw(socket: &mut Socket, text: String) -> Value {
    socket.send(Message::Text(text.into())).await.unwrap();
    next_json(socket).await
}

pub async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time");
        match frame.expect("open").expect("a frame") {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Whether a frame holds live `changes` only (one message, or several coalesced in an array).
pub fn is_live(frame: &Value) -> bool {
    match frame {
        Value::Array(messages) => messages.iter().all(|m| m["type"] == "changes"),
        message => message["type"] == "changes",
    }
}

/// Sends a message and returns its answer, skipping live `changes` that arrive meanwhile.
pub async fn exchange(socket: &mut Socket, message: &ClientMessage) -> ServerMessage {
    let mut answer = exchange_raw(socket, serde_json::to_string(message).unwrap()).await;
    while is_live(&answer) {
        answer = next_json(socket).await;
    }
    serde_json::from_value(answer).unwrap()
}

pub fn hello(client_id: &str) -> ClientMessage {
    ClientMessage::Hello {
        protocol: 1,
        client_id: client_id.into(),
        collections: vec!["todos".into()],
    }
}

/// Opens a socket and says hello as `client_id`.
pub async fn session(addr: SocketAddr, token: &str, client_id: &str) -> Socket {
    let mut socket = connect(addr, token).await.unwrap();
    let welcome = exchange(&mut socket, &hello(client_id)).await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    socket
}

/// A one-mutation transaction replacing `doc_id` with `{"n": n}`.
pub fn put(id: u64, doc_id: &str, base_version: u64, n: i64) -> WireTransaction {
    let (_, fields) = parse_document(json!({"_id": doc_id, "n": n})).unwrap();
    WireTransaction {
        mutations: vec![WireMutation {
            id,
            collection: "todos".into(),
            doc_id: doc_id.into(),
            op: Op::Put { fields },
            hlc: Hlc {
                wall: 1_767_225_600_000,
                counter: id as u32,
                node: 1,
            },
            base_version,
        }],
        abandon: false,
    }
}

pub fn push(seq: u64, transactions: Vec<WireTransaction>) -> ClientMessage {
    ClientMessage::Push { seq, transactions }
}

/// The statuses of a push answer, in order.
pub fn statuses(answer: &ServerMessage) -> Vec<String> {
    let ServerMessage::PushResult { results, .. } = answer else {
        panic!("not a push result: {answer:?}")
    };
    results
        .iter()
        .map(|r| {
            serde_json::to_value(&r.outcome).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// An HTTP request with a bearer token and optional client header; returns (status, JSON body).
pub async fn http(
    method: &str,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    client: Option<&str>,
    body: Option<String>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http.request(method.parse().unwrap(), format!("http://{addr}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(client) = client {
        req = req.header("x-ferrosync-client", client);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Reads until the server closes; returns the close code.
pub async fn close_code(ws: &mut Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
