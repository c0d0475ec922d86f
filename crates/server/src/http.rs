//! HTTP endpoints: `POST /v1/hello`, `/v1/push`, `/v1/pull` for polling clients (the client id
//! in the `x-ferrosync-client` header), `GET /v1/status` for the sync log, and the CORS policy
//! that lets pages on an `--allowed-origin` call them.

use crate::auth::{bearer, OriginPolicy, Principal};
use crate::limits::RateLimiter;
use crate::now_ms;
use crate::session::{decode, Session};
use crate::storage::{Caller, LogFilter};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum::{middleware, Router};
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{ClientMessage, ErrorInfo, ServerMessage};
use http_body_util::LengthLimitError;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

/// The header naming the client on polling requests.
pub const CLIENT_HEADER: &str = "x-ferrosync-client";

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// CORS for the HTTP endpoints: a page on one of the policy's `--allowed-origin`s (the same list,
/// compared the same way, as the 403 check of [`authorize`]) may call them with the headers the
/// engine sends. Preflights are answered here, without authentication. The server's own origin
/// needs no CORS; other origins get no `access-control-allow-origin`, and with
/// [`hide_cors_from_other_origins`] outside this layer, no CORS headers at all.
pub fn cors(origins: &OriginPolicy) -> CorsLayer {
    let origins = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|origin| origins.is_listed(origin))
        }))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(CLIENT_HEADER),
        ])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// Removes the preflight headers that the CORS layer sends whatever the origin, when it did not
/// allow the origin: an origin that is not allowed learns nothing about the API.
pub async fn hide_cors_from_other_origins(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        for name in [
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            headers.remove(name);
        }
    }
    response
}

/// A request refused before it reached the protocol: a status and a structured error.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    error: ErrorInfo,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = ServerMessage::Error {
            seq: None,
            error: self.error,
        };
        (self.status, Json(body)).into_response()
    }
}

impl Refusal {
    /// A refusal with this status and error; 429 and 503 are retryable.
    pub fn new(status: StatusCode, code: ErrorCode, message: &str) -> Self {
        let retryable = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        );
        Refusal {
            status,
            error: ErrorInfo::new(code, message, retryable),
        }
    }
}

fn refuse(status: StatusCode, code: ErrorCode, message: &str) -> Refusal {
    Refusal::new(status, code, message)
}

/// A request body as UTF-8 text, read within `--max-frame-bytes` and `--read-timeout-secs`;
/// each failure is a structured refusal (413 `too_large`, 408 `timeout`, 400 `bad_request`).
pub struct Body(pub String);

impl FromRequest<Arc<AppState>> for Body {
    type Rejection = Refusal;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Refusal> {
        let limit = state.limits.max_frame_bytes;
        let read = axum::body::to_bytes(request.into_body(), limit);
        let bytes = match tokio::time::timeout(state.limits.read_timeout(), read).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(error))
                if std::error::Error::source(&error)
                    .is_some_and(|inner| inner.is::<LengthLimitError>()) =>
            {
                let message = format!("a request body is at most {limit} bytes");
                return Err(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::TooLarge,
                    &message,
                ));
            }
            Ok(Err(_)) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    "the request body could not be read",
                ))
            }
            Err(_) => {
                return Err(refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::Timeout,
                    "the request body did not arrive in time",
                ))
            }
        };
        String::from_utf8(bytes.into()).map(Body).map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "the body is not UTF-8",
            )
        })
    }
}

/// Query parameters, or a structured 400 naming what is wrong with them.
pub fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Refusal> {
    query.map(|Query(value)| value).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            &e.body_text(),
        )
    })
}

/// Checks the Origin and the token (from `Authorization: Bearer`, or `query_token` for
/// WebSockets); the refusal is a ready response.
pub fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Principal, Refusal> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if !state.origins.allows(text(header::ORIGIN)) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            ErrorCode::ForbiddenOrigin,
            "this origin may not connect",
        ));
    }
    let token = text(header::AUTHORIZATION).and_then(bearer).or(query_token);
    let Some(token) = token else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a bearer token is required",
        ));
    };
    state
        .auth
        .authenticate(token, now_ms() / 1_000)
        .map_err(|e| {
            refuse(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                &e.to_string(),
            )
        })
}

/// Authorizes a polling request and applies the per-user rate limit.
fn admit(state: &AppState, headers: &HeaderMap) -> Result<Principal, Refusal> {
    let principal = authorize(state, headers, None)?;
    let key = format!("{}/{}", principal.tenant, principal.user);
    let mut rates = state.http_rates.lock().unwrap_or_else(|p| p.into_inner());
    let now = state.started.elapsed().as_millis() as u64;
    let limiter = rates
        .entry(key)
        .or_insert_with(|| RateLimiter::new(state.limits.messages_per_second, now));
    if !limiter.allow(now) {
        return Err(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many requests; slow down",
        ));
    }
    Ok(principal)
}

/// The answer with a status code matching its error, if any.
fn answer(message: ServerMessage) -> Response {
    let status = match &message {
        ServerMessage::Error { error, .. } => match error.code {
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::TooLarge | ErrorCode::BatchTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Storage | ErrorCode::Internal | ErrorCode::Busy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        },
        _ => StatusCode::OK,
    };
    (status, Json(message)).into_response()
}

/// Parses a request body as one client message, within the depth limit.
fn message(state: &AppState, body: &str) -> Result<ClientMessage, Refusal> {
    decode(body, &state.limits).map_err(|error| Refusal {
        status: StatusCode::BAD_REQUEST,
        error,
    })
}

/// `POST /v1/hello`.
pub async fn hello(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Refusal> {
    let principal = admit(&state, &headers)?;
    match message(&state, &body)? {
        msg @ ClientMessage::Hello { .. } => {
            let room = state.limits.max_answer_bytes;
            Ok(answer(
                Session::new(principal, 0).handle(&state, msg, room).await,
            ))
        }
        _ => Err(refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "expected a hello message",
        )),
    }
}

/// `POST /v1/push` and `POST /v1/pull`: the session is the one the client opened with hello.
pub async fn sync(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Refusal> {
    let principal = admit(&state, &headers)?;
    let msg = match message(&state, &body)? {
        msg @ (ClientMessage::Push { .. } | ClientMessage::Pull { .. }) => msg,
        _ => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "expected a push or pull message",
            ))
        }
    };
    let client_id = headers
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "the x-ferrosync-client header is required",
            )
        })?;
    let caller = Caller {
        tenant: &principal.tenant,
        user: &principal.user,
        client_id: &client_id,
    };
    let Ok(Some(collections)) = state.storage.collections(caller).await else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::HelloRequired,
            "send hello for this client first",
        ));
    };
    let mut session = Session {
        client_id: Some(client_id),
        collections,
        ..Session::new(principal, 0)
    };
    Ok(answer(
        session
            .handle(&state, msg, state.limits.max_answer_bytes)
            .await,
    ))
}

/// Query parameters of `GET /v1/status`.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    limit: Option<usize>,
    status: Option<String>,
    sync_type: Option<String>,
    collection: Option<String>,
    /// Only rows created at or after this time (ms since the epoch).
    from: Option<u64>,
    /// Only rows created at or before this time (ms since the epoch).
    to: Option<u64>,
}

/// `GET /v1/status`: the caller's tenant's recent sync runs and totals, filtered by `limit`,
/// `status`, `sync_type`, `collection` and the creation-time range `from`..=`to`.
pub async fn status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<StatusQuery>, QueryRejection>,
) -> Result<Response, Refusal> {
    let principal = admit(&state, &headers)?;
    let q = query(q)?;
    let filter = LogFilter {
        limit: q.limit.unwrap_or(50).min(1_000),
        status: q.status,
        sync_type: q.sync_type,
        collection: q.collection,
        // SQLite integers are signed: a later bound means "no bound".
        from: q.from.filter(|&t| t <= i64::MAX as u64),
        to: q.to.filter(|&t| t <= i64::MAX as u64),
    };
    match state.storage.logs(&principal.tenant, &filter).await {
        Ok(report) => Ok(Json(report).into_response()),
        Err(_) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Storage,
            "the sync log is unavailable",
        )),
    }
}

/// Any other path under `/v1/`, or any path when no `--static` directory is served.
pub async fn unknown_endpoint() -> Refusal {
    refuse(
        StatusCode::NOT_FOUND,
        ErrorCode::UnknownEndpoint,
        "no such endpoint",
    )
}

/// A method an endpoint does not take.
pub async fn method_not_allowed() -> Refusal {
    refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take this method",
    )
}

/// The `--static` directory's files. Leading slashes are collapsed first: a request for
/// `//host` would otherwise be redirected to the protocol-relative `//host/`, another site.
pub fn static_files(dir: PathBuf) -> Router {
    Router::new()
        .fallback_service(ServeDir::new(dir))
        .layer(middleware::map_request(collapse_leading_slashes))
}

async fn collapse_leading_slashes(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.starts_with("//") {
        let collapsed = format!("/{}", path.trim_start_matches('/'));
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{collapsed}?{query}"),
            None => collapsed,
        };
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = path_and_query.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}
