//! Ferrosync's reference sync server: protocol v1 (docs/PROTOCOL.md) over WebSocket and HTTP,
//! SQLite or PostgreSQL storage (several nodes on one PostgreSQL database), live fan-out, token
//! authentication, limits, and the demo app's static files.
//!
//! The sync rules come from `ferrosync_core::server`; this crate adds storage, network and
//! access control.

pub mod auth;
pub mod fanout;
pub mod http;
pub mod limits;
pub mod serve;
pub mod session;
pub mod storage;
pub mod ws;

use axum::extract::Request;
use axum::routing::{any, get, post};
use axum::{middleware, Router};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::trace::TraceLayer;

/// Everything the handlers share.
pub struct AppState {
    /// Durable state.
    pub storage: Arc<storage::Storage>,
    /// Token checks.
    pub auth: auth::Authenticator,
    /// Origin checks.
    pub origins: auth::OriginPolicy,
    /// Size, depth, batch and rate limits.
    pub limits: limits::Limits,
    /// Live fan-out.
    pub fanout: fanout::Fanout,
    /// WebSocket ping interval; a connection silent for three of them is closed.
    pub heartbeat: Duration,
    /// Flips to `true` when the server stops: WebSocket connections close.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Per-user rate limiters of polling requests.
    pub http_rates: Mutex<HashMap<String, limits::RateLimiter>>,
    /// Open WebSocket connections per user.
    pub user_connections: ws::UserConnections,
    /// When the server started (the rate limiters' clock).
    pub started: Instant,
}

impl AppState {
    /// The state the handlers share for `config` (its `static_dir` is the router's), with the
    /// fan-out of the storage's commits started (call it within a Tokio runtime), and the
    /// sender that tells open WebSockets to close (send `true`).
    pub fn start(config: Config) -> (Arc<Self>, tokio::sync::watch::Sender<bool>) {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState {
            fanout: fanout::Fanout::start(config.storage.clone()),
            storage: config.storage,
            auth: config.auth,
            origins: auth::OriginPolicy::new(config.allowed_origins, config.own_origins),
            heartbeat: config.heartbeat,
            shutdown,
            http_rates: Mutex::new(HashMap::new()),
            user_connections: ws::UserConnections::default(),
            started: Instant::now(),
            limits: config.limits,
        });
        (state, stop)
    }
}

/// What the router serves.
pub struct Config {
    /// Durable state.
    pub storage: Arc<storage::Storage>,
    /// Token checks.
    pub auth: auth::Authenticator,
    /// Allowed browser origins besides the server's own.
    pub allowed_origins: Vec<String>,
    /// The server's own origins (see [`auth::own_origins`]).
    pub own_origins: Vec<String>,
    /// Limits.
    pub limits: limits::Limits,
    /// Directory served for every other path (`index.html` for directories).
    pub static_dir: Option<PathBuf>,
    /// WebSocket ping interval.
    pub heartbeat: Duration,
}

/// Builds the router (and starts the fan-out of the storage's commits: call it within a Tokio
/// runtime), and the sender that tells open WebSockets to close (send `true`).
pub fn router(mut config: Config) -> (Router, tokio::sync::watch::Sender<bool>) {
    let static_dir = config.static_dir.take();
    let (state, stop) = AppState::start(config);
    // The endpoints a browser page may call with fetch, from its own or an allowed origin.
    let fetchable = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/hello", post(http::hello))
        .route("/v1/push", post(http::sync))
        .route("/v1/pull", post(http::sync))
        .route("/v1/status", get(http::status))
        .route("/v1/{*rest}", any(http::unknown_endpoint))
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(http::cors(&state.origins))
        .layer(middleware::map_response(http::hide_cors_from_other_origins));
    let router = Router::new()
        .route("/v1/sync", get(ws::upgrade))
        .merge(fetchable)
        .with_state(state);
    let router = match static_dir {
        Some(dir) => router.fallback_service(http::static_files(dir)),
        None => router.fallback(http::unknown_endpoint),
    };
    // Spans name the path only: the query may hold a token, which never reaches the logs.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| tracing::debug_span!("request", method = %req.method(), path = %req.uri().path()));
    (router.layer(trace), stop)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> ferrosync_core::Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as ferrosync_core::Millis)
}

/// Liveness probe: the process is up and serving requests.
async fn healthz() -> &'static str {
    "ok"
}

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM on Unix.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}
