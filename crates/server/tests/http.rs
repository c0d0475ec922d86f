//! Starts the real router on an ephemeral loopback port and talks HTTP/1.1 to it.

use std::net::SocketAddr;

use ferrosync_server::{router, Config};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Serves `config` on 127.0.0.1 with a port the OS picks; the server lives as long as the test runtime.
async fn serve(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(&config)).await.unwrap() });
    addr
}

/// A response as it came off the wire.
struct Response {
    status: u16,
    headers: String,
    body: String,
}

/// Sends `GET path` with `Connection: close` and reads the whole response.
async fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .expect("a complete HTTP response");
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    Response {
        status,
        headers: headers.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn healthz_answers_ok() {
    let addr = serve(Config::default()).await;
    let response = get(addr, "/healthz").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "ok");
}

#[tokio::test]
async fn serves_the_static_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>Ferrosync</h1>").unwrap();
    std::fs::create_dir(dir.path().join("pkg")).unwrap();
    std::fs::write(dir.path().join("pkg/ferrosync_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let addr = serve(Config {
        static_dir: Some(dir.path().to_owned()),
    })
    .await;

    let index = get(addr, "/").await;
    assert_eq!(index.status, 200);
    assert_eq!(index.body, "<h1>Ferrosync</h1>");
    assert!(
        index.headers.contains("content-type: text/html"),
        "{}",
        index.headers
    );

    // Browsers only stream-compile wasm served with its own media type.
    let wasm = get(addr, "/pkg/ferrosync_bg.wasm").await;
    assert_eq!(wasm.status, 200);
    assert!(
        wasm.headers.contains("content-type: application/wasm"),
        "{}",
        wasm.headers
    );

    assert_eq!(get(addr, "/missing.js").await.status, 404);
    assert_eq!(get(addr, "/healthz").await.body, "ok");
}

#[tokio::test]
async fn without_a_static_directory_other_paths_are_not_found() {
    let addr = serve(Config::default()).await;
    assert_eq!(get(addr, "/index.html").await.status, 404);
}
