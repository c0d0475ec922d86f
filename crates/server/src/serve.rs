//! The accept loop: at most `--max-connections` open connections (the next one is answered
//! `503` at once instead of waiting), a deadline for every request's headers, WebSocket
//! upgrades, and a graceful stop.

use crate::limits::Limits;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// File descriptors kept free of connections: the database, its journal, logs, the listener.
const RESERVED_FILES: u64 = 64;

/// How long a refused connection gets to take its `503`.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// What a connection over the cap is told before it is closed.
const BUSY: &str = r#"{"type":"error","code":"too_many_connections","message":"the server is at its connection limit","retryable":true}"#;

/// Serves `app` on `listener` until `stop` resolves, then lets open requests finish.
/// Upgraded WebSockets keep their place under the cap until they close.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    stop: impl Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(connection_cap(limits.max_connections)));
    let (closing, closed) = watch::channel(false);
    let mut stop = pin!(stop);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    // Out of file descriptors, or the peer gave up: try again shortly.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot disable Nagle's algorithm");
        }
        match places.clone().try_acquire_owned() {
            Ok(place) => {
                let io = Counted { tcp, _place: place };
                let service = TowerToHyperService::new(app.clone());
                tokio::spawn(serve_connection(
                    io,
                    service,
                    limits.read_timeout(),
                    closed.clone(),
                ));
            }
            Err(_) => {
                tokio::spawn(refuse(tcp));
            }
        }
    }
    let _ = closing.send(true);
    drop(closed);
    // Every connection task holds a receiver until its requests are done.
    closing.closed().await;
}

async fn serve_connection(
    io: Counted,
    service: TowerToHyperService<Router>,
    read_timeout: Duration,
    mut closing: watch::Receiver<bool>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    let mut connection = pin!(builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades());
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = closing.wait_for(|closing| *closing) => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Tells a connection over the cap that the server is busy, and closes it.
async fn refuse(mut tcp: TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BUSY}",
        BUSY.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await;
}

/// `wanted`, lowered so that connections fit the process's open-file limit (raised first as
/// far as the hard limit allows).
fn connection_cap(wanted: usize) -> usize {
    let needed = wanted as u64 + RESERVED_FILES;
    let available = open_file_limit(needed);
    let cap = available.saturating_sub(RESERVED_FILES).max(1) as usize;
    if cap < wanted {
        tracing::warn!(
            wanted,
            cap,
            open_files = available,
            "--max-connections lowered to fit the open-file limit"
        );
    }
    cap.min(wanted)
}

/// The open-file limit after raising it towards `wanted`.
#[cfg(unix)]
fn open_file_limit(wanted: u64) -> u64 {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if (limit.rlim_cur as u64) < wanted {
            let raised = libc::rlimit {
                rlim_cur: (wanted as libc::rlim_t).min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        limit.rlim_cur as u64
    }
}

#[cfg(not(unix))]
fn open_file_limit(wanted: u64) -> u64 {
    wanted
}

/// A connection holding its place under the cap for as long as it is open, also after an
/// upgrade to a WebSocket (hyper hands this very stream to the upgraded connection).
struct Counted {
    tcp: TcpStream,
    _place: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_is_a_structured_error() {
        let error: serde_json::Value = serde_json::from_str(BUSY).unwrap();
        assert_eq!(error["code"], "too_many_connections");
        assert_eq!(error["retryable"], true);
    }
}
