//! The servers under load: one or more `ferrosync-server` processes on free loopback ports,
//! over a fresh database (a SQLite file in a temporary directory, or a new database on the
//! PostgreSQL server given), each killed when the run ends or fails.

use ferrosync_server::auth::sign_hs256;
use ferrosync_server::storage::Durability;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a node may take to answer `GET /healthz` after it starts.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the data goes.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file in a temporary directory (one node only), committing with this durability.
    Sqlite(Durability),
    /// A new database on this PostgreSQL server (URL of a database to connect to first).
    Postgres(String),
}

impl Database {
    /// `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// The server's `--durability` argument: SQLite's, or `normal` (PostgreSQL ignores it).
    pub fn durability(&self) -> &'static str {
        match self {
            Database::Sqlite(Durability::Full) => "full",
            Database::Sqlite(Durability::Normal) | Database::Postgres(_) => "normal",
        }
    }

    /// A `--db` URL of a fresh database of this kind.
    async fn fresh(&self, dir: &Path) -> Result<String, String> {
        match self {
            Database::Sqlite(_) => Ok(format!("sqlite://{}", dir.join("load.db").display())),
            Database::Postgres(base) => {
                let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("cannot connect to {base}: {e}"))?;
                tokio::spawn(connection);
                let name = format!("load_{}_{}", std::process::id(), crate::stats::now_ms());
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .map_err(|e| format!("cannot create database {name}: {e}"))?;
                let (url, query) = base.split_once('?').unwrap_or((base, ""));
                let server = url.rsplit_once('/').map_or(url, |(server, _)| server);
                Ok(if query.is_empty() {
                    format!("{server}/{name}")
                } else {
                    format!("{server}/{name}?{query}")
                })
            }
        }
    }
}

/// A running node.
struct Node {
    /// Killed when dropped.
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

/// The nodes of one run, their JWT secret, and the temporary directory of their files.
pub struct Cluster {
    nodes: Vec<Node>,
    secret: String,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `nodes` servers of `bin` on one fresh `database`, with `--max-messages-per-second
    /// rate` (every simulated client may be the same user: the per-user cap is lifted).
    pub async fn start(
        bin: &Path,
        database: &Database,
        nodes: usize,
        rate: u32,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let url = database.fresh(dir.path()).await?;
        let secret = crate::stats::random_hex();
        let mut started = Vec::new();
        for n in 0..nodes {
            let log = dir.path().join(format!("node{n}.log"));
            let stderr = std::fs::File::create(&log)
                .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map_err(|e| format!("no free loopback port: {e}"))?;
            let child = Command::new(bin)
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--db")
                .arg(&url)
                .arg("--jwt-secret")
                .arg(&secret)
                .args(["--durability", database.durability()])
                .args(["--max-connections-per-user", "1000000"])
                .arg("--max-messages-per-second")
                .arg(rate.to_string())
                .env_remove("FERROSYNC_DEV_TOKEN")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            let mut node = Node { child, addr, log };
            node.wait_healthy().await?;
            started.push(node);
        }
        Ok(Self {
            nodes: started,
            secret,
            _dir: dir,
        })
    }

    /// The nodes' addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// The nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.child.id()).collect()
    }

    /// A token for `user` in `tenant`, valid for a day.
    pub fn token(&self, user: &str, tenant: &str) -> String {
        let exp = crate::stats::now_ms() / 1_000 + 86_400;
        let claims = serde_json::json!({ "sub": user, "tenant": tenant, "exp": exp });
        sign_hs256(&claims, self.secret.as_bytes())
    }

    /// Kills the nodes; returns the warnings and errors they logged (at most 20 per node).
    pub async fn stop(self) -> Vec<String> {
        let mut lines = Vec::new();
        for (n, mut node) in self.nodes.into_iter().enumerate() {
            let _ = node.child.kill().await;
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            lines.extend(
                text.lines()
                    .filter(|line| !line.trim().is_empty())
                    .take(20)
                    .map(|line| format!("node {n}: {line}")),
            );
        }
        lines
    }
}

impl Node {
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
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("the server exited at start ({status}): {log}"));
            }
            if let Ok(response) = http.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > HEALTH_TIMEOUT {
                return Err(format!(
                    "GET {url} did not answer within {HEALTH_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
