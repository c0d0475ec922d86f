//! Authentication and origin checks for the handshake: bearer tokens (a development token and/or
//! HS256 JWTs) and the browser `Origin` policy.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

type HmacSha256 = Hmac<Sha256>;

/// Who is calling: the user and the tenant whose data they may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id (a JWT's `sub`).
    pub user: String,
    /// The tenant id (a JWT's `tenant`).
    pub tenant: String,
}

/// Why a token was refused. `Display` gives a message safe to send to the client (never echo the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was given.
    #[error("missing bearer token")]
    Missing,
    /// The token is not a well-formed JWT.
    #[error("malformed token")]
    Malformed,
    /// The JWT's `alg` is not HS256.
    #[error("unsupported token algorithm (only HS256 is accepted)")]
    UnsupportedAlgorithm,
    /// The token's signature does not verify (or no key could verify it).
    #[error("invalid token signature")]
    BadSignature,
    /// The JWT's `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The JWT's `nbf` is still in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The JWT lacks a required string claim.
    #[error("token lacks the `{0}` claim")]
    MissingClaim(&'static str),
}

/// Checks bearer tokens: a development token given on the command line, and/or HS256 JWTs.
pub struct Authenticator {
    /// SHA-256 of the development token, so comparing it takes the same time whatever its length.
    dev_token_digest: Option<[u8; 32]>,
    jwt_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets.
        f.debug_struct("Authenticator")
            .field("dev_token", &self.dev_token_digest.is_some())
            .field("jwt_secret", &self.jwt_secret.is_some())
            .finish()
    }
}

impl Authenticator {
    /// `dev_token`: a fixed token accepted as user "dev" in tenant "dev". `jwt_secret`: HS256 key.
    /// Empty strings count as not given.
    pub fn new(dev_token: Option<String>, jwt_secret: Option<String>) -> Self {
        Self {
            dev_token_digest: dev_token
                .filter(|token| !token.is_empty())
                .map(|token| sha256(token.as_bytes())),
            jwt_secret: jwt_secret
                .filter(|secret| !secret.is_empty())
                .map(String::into_bytes),
        }
    }

    /// Whether any way of authenticating is configured.
    pub fn is_configured(&self) -> bool {
        self.dev_token_digest.is_some() || self.jwt_secret.is_some()
    }

    /// Verifies `token` at `now_secs` (seconds since the Unix epoch).
    pub fn authenticate(&self, token: &str, now_secs: u64) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if let Some(expected) = &self.dev_token_digest {
            if ct_eq(&sha256(token.as_bytes()), expected) {
                return Ok(Principal {
                    user: "dev".into(),
                    tenant: "dev".into(),
                });
            }
        }
        match &self.jwt_secret {
            Some(secret) => verify_hs256(token, secret, now_secs),
            None => Err(AuthError::BadSignature),
        }
    }
}

/// The token of an `Authorization: Bearer TOKEN` header value, if it has that form (scheme case-insensitive).
pub fn bearer(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    if token.is_empty() || token.contains(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    Some(token)
}

/// Signs claims as an HS256 JWT (for tests, the load generator, and users minting dev tokens).
pub fn sign_hs256(claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(
        hmac(secret, signing_input.as_bytes())
            .finalize()
            .into_bytes(),
    );
    format!("{signing_input}.{signature}")
}

/// Verifies an HS256 JWT and extracts its principal. The payload is parsed only once the
/// signature has verified.
fn verify_hs256(token: &str, secret: &[u8], now_secs: u64) -> Result<Principal, AuthError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let header = decode_object(header_b64)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| AuthError::Malformed)?;
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    hmac(secret, &token.as_bytes()[..signed_len])
        .verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)?;

    let claims = decode_object(payload_b64)?;
    let user = string_claim(&claims, "sub")?;
    let tenant = string_claim(&claims, "tenant")?;
    let now = now_secs as f64;
    if let Some(exp) = time_claim(&claims, "exp")? {
        if exp <= now {
            return Err(AuthError::Expired);
        }
    }
    if let Some(nbf) = time_claim(&claims, "nbf")? {
        if nbf > now {
            return Err(AuthError::NotYetValid);
        }
    }
    Ok(Principal { user, tenant })
}

/// Decodes a base64url (no padding) JSON object.
fn decode_object(part: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::Malformed),
    }
}

/// A required, non-empty string claim.
fn string_claim(claims: &Map<String, Value>, name: &'static str) -> Result<String, AuthError> {
    match claims.get(name).and_then(Value::as_str) {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(AuthError::MissingClaim(name)),
    }
}

/// An optional numeric time claim (seconds since the epoch); any other type is malformed.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or(AuthError::Malformed),
    }
}

fn hmac(secret: &[u8], message: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares two byte strings in time that depends only on their lengths, not their contents.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Which browser origins may connect: the server's own and the `--allowed-origin`s. The
/// `Host` header is never trusted for this: a page on a rebound name (evil.example resolving
/// to the server's address) sends a `Host` that matches its own origin.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    own: Vec<String>,
}

/// The origins a browser gives pages the server itself serves on `addr`: `http://IP:PORT`, and
/// for a loopback or unspecified address the loopback names (`localhost`, `127.0.0.1`,
/// `[::1]`). Other names the server is reached by (a domain, a LAN address when listening on
/// `0.0.0.0`) are `--allowed-origin`s.
pub fn own_origins(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let ip = addr.ip();
    let mut origins = Vec::new();
    if ip.is_loopback() || ip.is_unspecified() {
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            origins.push(format!("http://{host}:{port}"));
        }
    }
    if !ip.is_unspecified() {
        origins.push(format!("http://{addr}"));
    }
    origins
}

/// An origin in the form compared: ASCII lowercase, no trailing slash, no default port.
fn normalize_origin(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let default_port = if origin.starts_with("http://") || origin.starts_with("ws://") {
        ":80"
    } else if origin.starts_with("https://") || origin.starts_with("wss://") {
        ":443"
    } else {
        return origin;
    };
    match origin.strip_suffix(default_port) {
        Some(bare) => bare.to_owned(),
        None => origin,
    }
}

impl OriginPolicy {
    /// `allowed`: exact origins like "http://localhost:5173" (`--allowed-origin`, repeatable);
    /// `own`: the server's own origins ([`own_origins`]).
    pub fn new(allowed: Vec<String>, own: Vec<String>) -> Self {
        let normalize = |list: Vec<String>| -> Vec<String> {
            list.iter()
                .map(|origin| normalize_origin(origin))
                .filter(|origin| !origin.is_empty())
                .collect()
        };
        Self {
            allowed: normalize(allowed),
            own: normalize(own),
        }
    }

    /// Whether `origin` is one of the `--allowed-origin`s (ASCII case-insensitive, default
    /// ports optional). The server's own origins are not listed: they need no CORS.
    pub fn is_listed(&self, origin: &str) -> bool {
        self.allowed.contains(&normalize_origin(origin))
    }

    /// Whether a request with this `Origin` header (None: not a browser) may proceed: no
    /// Origin, one of the server's own, or a listed one.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = normalize_origin(origin);
        self.own.contains(&origin) || self.allowed.contains(&origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "test-secret";
    const NOW: u64 = 1_700_000_000;

    fn jwt_auth() -> Authenticator {
        Authenticator::new(None, Some(SECRET.into()))
    }

    fn token(claims: Value) -> String {
        sign_hs256(&claims, SECRET.as_bytes())
    }

    /// A token with this header and payload, signed correctly with the test secret.
    fn token_with_header(header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = hmac(SECRET.as_bytes(), input.as_bytes())
            .finalize()
            .into_bytes();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn valid_jwt_yields_its_principal() {
        let t = token(json!({"sub": "alice", "tenant": "acme", "exp": NOW + 60, "nbf": NOW}));
        assert_eq!(
            jwt_auth().authenticate(&t, NOW),
            Ok(Principal {
                user: "alice".into(),
                tenant: "acme".into()
            })
        );
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // The signing input is `header.payload` and the signature is base64url(HMAC-SHA256).
        let t = token(json!({"sub": "a", "tenant": "t"}));
        let (input, sig) = t.rsplit_once('.').unwrap();
        let mut mac = HmacSha256::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(sig).unwrap(),
            mac.finalize().into_bytes().to_vec()
        );
        assert!(!t.contains('='));
    }

    #[test]
    fn tampered_payload_is_refused() {
        let t = token(json!({"sub": "alice", "tenant": "acme"}));
        let parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "alice", "tenant": "other"}).to_string());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(
            jwt_auth().authenticate(&tampered, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature_is_refused() {
        let t = token(json!({"sub": "alice", "tenant": "acme"}));
        let (input, sig) = t.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bytes[0] ^= 1;
        let tampered = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            jwt_auth().authenticate(&tampered, NOW),
            Err(AuthError::BadSignature)
        );
        // A truncated signature fails too.
        let short = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes[..16]));
        assert_eq!(
            jwt_auth().authenticate(&short, NOW),
            Err(AuthError::BadSignature)
        );
        // And so does one made with another secret.
        let other = sign_hs256(&json!({"sub": "alice", "tenant": "acme"}), b"other");
        assert_eq!(
            jwt_auth().authenticate(&other, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let claims = json!({"sub": "alice", "tenant": "acme"});
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        assert_eq!(
            jwt_auth().authenticate(&unsigned, NOW),
            Err(AuthError::UnsupportedAlgorithm)
        );
        // Even with a valid HS256 signature over it, "none" is refused.
        let signed = token_with_header(json!({"alg": "none"}), claims);
        assert_eq!(
            jwt_auth().authenticate(&signed, NOW),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let claims = json!({"sub": "alice", "tenant": "acme"});
        for header in [
            json!({"alg": "HS512"}),
            json!({"alg": "hs256"}),
            json!({"alg": "RS256"}),
            json!({"typ": "JWT"}),
        ] {
            let t = token_with_header(header.clone(), claims.clone());
            assert_eq!(
                jwt_auth().authenticate(&t, NOW),
                Err(AuthError::UnsupportedAlgorithm),
                "{header}"
            );
        }
    }

    #[test]
    fn expiry_is_enforced() {
        let auth = jwt_auth();
        let t = token(json!({"sub": "a", "tenant": "t", "exp": NOW}));
        assert_eq!(auth.authenticate(&t, NOW), Err(AuthError::Expired));
        assert!(auth.authenticate(&t, NOW - 1).is_ok());
        let past = token(json!({"sub": "a", "tenant": "t", "exp": NOW - 3600}));
        assert_eq!(auth.authenticate(&past, NOW), Err(AuthError::Expired));
    }

    #[test]
    fn not_before_is_enforced() {
        let auth = jwt_auth();
        let t = token(json!({"sub": "a", "tenant": "t", "nbf": NOW + 1}));
        assert_eq!(auth.authenticate(&t, NOW), Err(AuthError::NotYetValid));
        assert!(auth.authenticate(&t, NOW + 1).is_ok());
    }

    #[test]
    fn non_numeric_time_claims_are_malformed() {
        let t = token(json!({"sub": "a", "tenant": "t", "exp": "never"}));
        assert_eq!(jwt_auth().authenticate(&t, NOW), Err(AuthError::Malformed));
    }

    #[test]
    fn missing_sub_is_refused() {
        for claims in [
            json!({"tenant": "acme"}),
            json!({"sub": 7, "tenant": "acme"}),
            json!({"sub": "", "tenant": "acme"}),
        ] {
            assert_eq!(
                jwt_auth().authenticate(&token(claims), NOW),
                Err(AuthError::MissingClaim("sub"))
            );
        }
    }

    #[test]
    fn missing_tenant_is_refused() {
        for claims in [
            json!({"sub": "alice"}),
            json!({"sub": "alice", "tenant": null}),
        ] {
            assert_eq!(
                jwt_auth().authenticate(&token(claims), NOW),
                Err(AuthError::MissingClaim("tenant"))
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let auth = jwt_auth();
        assert_eq!(auth.authenticate("", NOW), Err(AuthError::Missing));
        for bad in [
            "not-a-jwt",
            "a.b",
            "a.b.c.d",
            "!!!.e30.e30",
            // `{"alg":"HS256"}`, then a signature that is not base64url.
            "eyJhbGciOiJIUzI1NiJ9.e30.%%%",
            // `[]` is JSON but not an object.
            "W10.e30.",
        ] {
            assert_eq!(
                auth.authenticate(bad, NOW),
                Err(AuthError::Malformed),
                "{bad}"
            );
        }
        // A padded segment is not base64url without padding.
        let t = token(json!({"sub": "a", "tenant": "t"}));
        let (input, sig) = t.rsplit_once('.').unwrap();
        assert_eq!(
            auth.authenticate(&format!("{input}.{sig}="), NOW),
            Err(AuthError::Malformed)
        );
        // A signed payload that is not JSON.
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode("nope")
        );
        let sig = hmac(SECRET.as_bytes(), input.as_bytes())
            .finalize()
            .into_bytes();
        let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(auth.authenticate(&t, NOW), Err(AuthError::Malformed));
    }

    #[test]
    fn dev_token_is_accepted_and_others_refused() {
        let dev = Principal {
            user: "dev".into(),
            tenant: "dev".into(),
        };
        let only_dev = Authenticator::new(Some("letmein".into()), None);
        assert!(only_dev.is_configured());
        assert_eq!(only_dev.authenticate("letmein", NOW), Ok(dev.clone()));
        assert_eq!(
            only_dev.authenticate("letmeout", NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            only_dev.authenticate("letmein2", NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            only_dev.authenticate("LETMEIN", NOW),
            Err(AuthError::BadSignature)
        );
        // Without a secret, a well-formed JWT is still refused.
        let jwt = token(json!({"sub": "alice", "tenant": "acme"}));
        assert_eq!(
            only_dev.authenticate(&jwt, NOW),
            Err(AuthError::BadSignature)
        );

        let both = Authenticator::new(Some("letmein".into()), Some(SECRET.into()));
        assert_eq!(both.authenticate("letmein", NOW), Ok(dev));
        assert_eq!(both.authenticate(&jwt, NOW).unwrap().user, "alice");
        assert_eq!(both.authenticate("wrong", NOW), Err(AuthError::Malformed));
    }

    #[test]
    fn configuration_is_reported() {
        assert!(!Authenticator::new(None, None).is_configured());
        assert!(!Authenticator::new(Some(String::new()), Some(String::new())).is_configured());
        assert!(jwt_auth().is_configured());
        // Nothing configured: nothing verifies, and an empty dev token never matches.
        let none = Authenticator::new(Some(String::new()), None);
        assert_eq!(none.authenticate("x", NOW), Err(AuthError::BadSignature));
        assert_eq!(none.authenticate("", NOW), Err(AuthError::Missing));
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let auth = Authenticator::new(Some("devsecret".into()), Some("jwtsecret".into()));
        let debug = format!("{auth:?}");
        assert!(
            !debug.contains("devsecret") && !debug.contains("jwtsecret"),
            "{debug}"
        );
        assert_eq!(
            AuthError::MissingClaim("tenant").to_string(),
            "token lacks the `tenant` claim"
        );
    }

    #[test]
    fn constant_time_comparison_is_correct() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"\x80bc", b"abc"));
    }

    #[test]
    fn bearer_headers_are_parsed() {
        assert_eq!(bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer("bearer tok"), Some("tok"));
        assert_eq!(bearer("BEARER   tok  "), Some("tok"));
        assert_eq!(bearer("Bearer\ttok"), Some("tok"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearertok"), None);
        assert_eq!(bearer("Bearer a b"), None);
        assert_eq!(bearer(""), None);
    }

    fn policy(allowed: &[&str]) -> OriginPolicy {
        let own = own_origins("127.0.0.1:8080".parse().unwrap());
        OriginPolicy::new(allowed.iter().map(|o| o.to_string()).collect(), own)
    }

    #[test]
    fn requests_without_origin_are_allowed() {
        assert!(policy(&[]).allows(None));
    }

    #[test]
    fn allowlisted_origins_are_allowed() {
        let policy = policy(&["http://localhost:5173"]);
        assert!(policy.allows(Some("http://localhost:5173")));
        assert!(!policy.allows(Some("http://localhost:5174")));
        assert!(!policy.allows(Some("https://localhost:5173")));
        assert!(policy.is_listed("http://localhost:5173"));
        // The server's own origin is allowed, but not listed (it needs no CORS).
        assert!(policy.allows(Some("http://localhost:8080")));
        assert!(!policy.is_listed("http://localhost:8080"));
    }

    #[test]
    fn the_servers_own_origins_come_from_its_address() {
        let loopback = own_origins("127.0.0.1:8080".parse().unwrap());
        for origin in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
        ] {
            assert!(loopback.contains(&origin.to_owned()), "{origin}");
        }
        assert_eq!(
            own_origins("10.1.2.3:80".parse().unwrap()),
            vec!["http://10.1.2.3:80".to_owned()]
        );
        let any = own_origins("0.0.0.0:8787".parse().unwrap());
        assert!(any.contains(&"http://localhost:8787".to_owned()));
        assert!(!any.iter().any(|o| o.contains("0.0.0.0")));
        // Default ports are the same origin whether written or not.
        let lan = OriginPolicy::new(vec![], own_origins("10.1.2.3:80".parse().unwrap()));
        assert!(lan.allows(Some("http://10.1.2.3")));
        assert!(lan.allows(Some("http://10.1.2.3:80")));
        assert!(!lan.allows(Some("https://10.1.2.3")));
    }

    #[test]
    fn a_rebound_name_is_not_the_same_origin() {
        // evil.example resolving to the server: its Origin and Host agree, yet it is foreign.
        let policy = policy(&[]);
        assert!(!policy.allows(Some("http://evil.example:8080")));
        assert!(!policy.allows(Some("http://localhost:8081")));
    }

    #[test]
    fn foreign_and_odd_origins_are_refused() {
        let policy = policy(&["https://app.example.com"]);
        assert!(!policy.allows(Some("https://evil.example")));
        assert!(!policy.allows(Some("https://app.example.com.evil")));
        assert!(!policy.allows(Some("null")));
        assert!(!policy.allows(Some("https://")));
        assert!(!policy.allows(Some("http://a@app.example.com")));
    }

    #[test]
    fn origin_comparison_ignores_ascii_case_and_default_ports() {
        let policy = policy(&["http://LocalHost:5173/", "https://App.Example.com:443"]);
        assert!(policy.allows(Some("HTTP://localhost:5173")));
        assert!(policy.allows(Some("https://app.example.com")));
        assert!(policy.allows(Some("HTTP://LOCALHOST:8080")));
    }
}
