//! `ferrosync-server`: the command-line entry point of Ferrosync's reference server.

use clap::Parser;
use ferrosync_server::auth::{self, Authenticator};
use ferrosync_server::{limits::Limits, router, serve, shutdown_signal, storage, ws, Config};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};
use tracing_subscriber::EnvFilter;

/// Ferrosync's reference sync server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Database: sqlite://PATH, or postgres://USER:PASS@HOST:PORT/DB (several nodes may share
    /// one PostgreSQL database).
    #[arg(long, value_name = "URL", default_value = "sqlite://ferrosync.db")]
    db: String,
    /// Directory to serve over HTTP (for example the demo app).
    #[arg(long = "static", value_name = "DIR")]
    static_dir: Option<PathBuf>,
    /// A fixed token accepted as user "dev" in tenant "dev" (development only).
    #[arg(long, value_name = "TOKEN", env = "FERROSYNC_DEV_TOKEN")]
    dev_token: Option<String>,
    /// Secret for HS256 JWTs (claims: `sub` = user, `tenant`).
    #[arg(long, value_name = "SECRET", env = "FERROSYNC_JWT_SECRET")]
    jwt_secret: Option<String>,
    /// A browser origin allowed besides the server's own (repeatable).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// How far a SQLite commit is on disk before it is acknowledged: `normal` (WAL,
    /// synchronous=NORMAL: survives a server crash, may lose the last commits on power loss)
    /// or `full` (synchronous=FULL: an fsync per group commit, survives power loss).
    #[arg(long, value_enum, default_value_t = storage::Durability::Normal)]
    durability: storage::Durability,
    /// Bounds on what clients may cost.
    #[command(flatten)]
    limits: Limits,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(dir) = &args.static_dir {
        if !dir.is_dir() {
            tracing::error!(dir = %dir.display(), "--static is not a directory");
            return ExitCode::FAILURE;
        }
    }
    let auth = Authenticator::new(args.dev_token, args.jwt_secret);
    if !auth.is_configured() {
        tracing::error!("no way to authenticate: pass --dev-token or --jwt-secret");
        return ExitCode::FAILURE;
    }
    let storage = match storage::Storage::open(
        &args.db,
        args.limits.log_retention(),
        args.durability,
    )
    .await
    {
        Ok(storage) => Arc::new(storage),
        Err(error) => {
            tracing::error!(%error, "cannot open the database");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(addr = %args.listen, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(%addr, db = %storage::redacted(&args.db), "listening");
    let (app, stop) = router(Config {
        storage,
        auth,
        allowed_origins: args.allowed_origins,
        own_origins: auth::own_origins(addr),
        limits: args.limits.clone(),
        static_dir: args.static_dir,
        heartbeat: ws::DEFAULT_HEARTBEAT,
    });
    let stop = Arc::new(stop);
    let signal = stop.clone();
    let graceful = async move {
        shutdown_signal().await;
        // WebSockets close; in-flight requests and storage transactions finish first.
        let _ = signal.send(true);
    };
    serve::run(listener, app, &args.limits, graceful).await;
    // Upgraded WebSockets outlive the accept loop: each holds a shutdown receiver until it has
    // sent its close frame, so wait (bounded) until they are all gone before the runtime stops.
    if tokio::time::timeout(Duration::from_secs(10), stop.closed())
        .await
        .is_err()
    {
        tracing::warn!("some WebSocket connections did not close within 10 s");
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
