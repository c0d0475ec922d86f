//! CORS on the HTTP endpoints, against the real router: a page on an `--allowed-origin` may call
//! them from the browser; other origins are granted nothing.

#[macro_use]
mod common;

use common::*;
use ferrosync_server::limits::Limits;
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// The origin the test server lists with `--allowed-origin`.
const ALLOWED: &str = "http://app.example";
/// An origin the test server does not know.
const FOREIGN: &str = "http://evil.example";

/// The endpoints a page calls with fetch, and the method it calls each with.
const ENDPOINTS: [(&str, &str); 5] = [
    ("/healthz", "GET"),
    ("/v1/hello", "POST"),
    ("/v1/push", "POST"),
    ("/v1/pull", "POST"),
    ("/v1/status", "GET"),
];

/// The preflight a browser sends before calling `path` with `method` and the engine's headers.
async fn preflight(addr: SocketAddr, path: &str, method: &str, origin: &str) -> Response {
    Client::new()
        .request(Method::OPTIONS, format!("http://{addr}{path}"))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-ferrosync-client",
        )
        .send()
        .await
        .unwrap()
}

/// A `POST /v1/hello` as the engine sends it, from `origin`, with or without a token.
async fn hello_from(addr: SocketAddr, origin: &str, token: Option<&str>) -> Response {
    let mut request = Client::new()
        .post(format!("http://{addr}/v1/hello"))
        .header("origin", origin)
        .header("content-type", "application/json")
        .body(serde_json::to_string(&hello("browser")).unwrap());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// The names of the `access-control-*` headers of a response.
fn cors_headers(headers: &HeaderMap) -> Vec<&str> {
    headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// A comma-separated header value as lowercase items.
fn items(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

both!(a_preflight_from_an_allowed_origin_is_granted_without_a_token);
async fn a_preflight_from_an_allowed_origin_is_granted_without_a_token(db: Db) {
    let server = start(db, Limits::default()).await;
    for (path, method) in ENDPOINTS {
        let answer = preflight(server.addr, path, method, ALLOWED).await;
        assert_eq!(answer.status(), 200, "{path}");
        let headers = answer.headers();
        assert_eq!(
            header(headers, "access-control-allow-origin"),
            Some(ALLOWED),
            "{path}"
        );
        let methods = items(header(headers, "access-control-allow-methods"));
        assert!(
            methods.contains(&method.to_ascii_lowercase()),
            "{path}: {methods:?}"
        );
        let allowed = items(header(headers, "access-control-allow-headers"));
        for name in ["authorization", "content-type", "x-ferrosync-client"] {
            assert!(
                allowed.iter().any(|a| a == name),
                "{path}: {name} in {allowed:?}"
            );
        }
        assert_eq!(header(headers, "access-control-max-age"), Some("600"));
        // Answers depend on the Origin, so caches must keep them apart.
        assert!(
            items(header(headers, "vary")).contains(&"origin".into()),
            "{path}"
        );
    }
}

both!(a_preflight_from_a_foreign_origin_gets_no_cors_headers);
async fn a_preflight_from_a_foreign_origin_gets_no_cors_headers(db: Db) {
    let server = start(db, Limits::default()).await;
    for (path, method) in ENDPOINTS {
        let answer = preflight(server.addr, path, method, FOREIGN).await;
        assert_eq!(cors_headers(answer.headers()), Vec::<&str>::new(), "{path}");
    }
}

both!(requests_from_an_allowed_origin_carry_the_allow_origin_header);
async fn requests_from_an_allowed_origin_carry_the_allow_origin_header(db: Db) {
    let server = start(db, Limits::default()).await;
    let answer = hello_from(server.addr, ALLOWED, Some(DEV)).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        header(answer.headers(), "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let welcome: Value = answer.json().await.unwrap();
    assert_eq!(welcome["type"], "welcome");
    // Refusals carry it too, so the page can read the structured error.
    let refused = hello_from(server.addr, ALLOWED, None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        header(refused.headers(), "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "unauthorized");
    // A GET endpoint as well.
    let status = Client::new()
        .get(format!("http://{}/v1/status", server.addr))
        .header("origin", ALLOWED)
        .bearer_auth(DEV)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    assert_eq!(
        header(status.headers(), "access-control-allow-origin"),
        Some(ALLOWED)
    );
}

both!(requests_from_a_foreign_origin_are_refused_without_cors_headers);
async fn requests_from_a_foreign_origin_are_refused_without_cors_headers(db: Db) {
    let server = start(db, Limits::default()).await;
    let answer = hello_from(server.addr, FOREIGN, Some(DEV)).await;
    assert_eq!(answer.status(), 403);
    assert_eq!(cors_headers(answer.headers()), Vec::<&str>::new());
    let error: Value = answer.json().await.unwrap();
    assert_eq!(error["code"], json!("forbidden_origin"));
}

both!(same_origin_requests_need_no_cors);
async fn same_origin_requests_need_no_cors(db: Db) {
    let server = start(db, Limits::default()).await;
    let own = format!("http://{}", server.addr);
    let answer = hello_from(server.addr, &own, Some(DEV)).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(cors_headers(answer.headers()), Vec::<&str>::new());
}
