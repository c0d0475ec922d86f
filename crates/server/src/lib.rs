//! Ferrosync's reference sync server.
//!
//! For now it answers health checks and serves a static directory (the demo app);
//! the sync protocol, storage and authentication come later.

use std::path::PathBuf;

use axum::{routing::get, Router};
use tower_http::{services::ServeDir, trace::TraceLayer};

/// What the HTTP router serves.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Directory served for every path no other route claims (`index.html` for directories).
    pub static_dir: Option<PathBuf>,
}

/// Builds the server's router: `GET /healthz` and, when configured, the static directory.
pub fn router(config: &Config) -> Router {
    let router = Router::new().route("/healthz", get(healthz));
    let router = match &config.static_dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir)),
        None => router,
    };
    router.layer(TraceLayer::new_for_http())
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
