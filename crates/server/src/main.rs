//! `ferrosync-server`: the command-line entry point of Ferrosync's reference server.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;
use ferrosync_server::{router, shutdown_signal, Config};
use tracing_subscriber::EnvFilter;

/// Ferrosync's reference sync server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Directory to serve over HTTP (for example the demo app).
    #[arg(long = "static", value_name = "DIR")]
    static_dir: Option<PathBuf>,
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

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(addr = %args.listen, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let app = router(&Config {
        static_dir: args.static_dir,
    });
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(error) => tracing::warn!(%error, "listening on an unknown address"),
    }

    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
