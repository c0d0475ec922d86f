//! Size, depth, batch and rate limits on what clients send.

use crate::storage::{LogRetention, PageBounds};
use ferrosync_core::mutation::Op;
use ferrosync_core::protocol::ErrorCode;
use ferrosync_core::protocol::{json_len, ErrorInfo, WireMutation, WireTransaction};
use ferrosync_core::server::PushBounds;

/// Every bound on what one frame, connection or user may cost the server; each is a flag of
/// `ferrosync-server` (docs/PROTOCOL.md lists them with the error each produces).
#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
pub struct Limits {
    /// Largest WebSocket message or HTTP body, in bytes.
    #[arg(long, default_value_t = 1_048_576)]
    pub max_frame_bytes: usize,
    /// Largest document, in bytes of JSON.
    #[arg(long, default_value_t = 262_144)]
    pub max_doc_bytes: usize,
    /// Deepest JSON nesting accepted.
    #[arg(long, default_value_t = 32)]
    pub max_depth: usize,
    /// Most mutations per push and changes per pull page.
    #[arg(long, default_value_t = 1000)]
    pub max_batch: usize,
    /// Messages per second per connection (WebSocket) or per user (HTTP), with bursts of the
    /// same size; every frame counts, also one that does not parse.
    #[arg(long = "max-messages-per-second", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub messages_per_second: u32,
    /// Most messages in one WebSocket frame.
    #[arg(long, default_value_t = 100)]
    pub max_messages_per_frame: usize,
    /// Most bytes of answers to one frame or request: pull pages stop early, and the rest of
    /// the frame is answered `busy`.
    #[arg(long, default_value_t = 4_194_304)]
    pub max_answer_bytes: usize,
    /// Most collections one `hello` may name.
    #[arg(long, default_value_t = 100)]
    pub max_collections: usize,
    /// Most open connections; the next one is answered 503 (lowered to fit the process's
    /// open-file limit).
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most WebSocket connections of one user.
    #[arg(long, default_value_t = 100)]
    pub max_connections_per_user: usize,
    /// Seconds a client has to send a request's headers, or its body.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout_secs: u64,
    /// Sync-log rows kept per tenant (the oldest go first).
    #[arg(long, default_value_t = 10_000)]
    pub sync_log_keep: u64,
    /// Hours a sync-log row is kept.
    #[arg(long, default_value_t = 168)]
    pub sync_log_max_age_hours: u64,
}

impl Default for Limits {
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["ferrosync-server"])
    }
}

impl Limits {
    /// How long a client may take to send headers or a body.
    pub fn read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.read_timeout_secs)
    }

    /// A push's bounds, with the whole answer budget as its room.
    pub fn push_bounds(&self) -> PushBounds {
        PushBounds {
            max_doc_bytes: self.max_doc_bytes,
            answer_bytes: self.max_answer_bytes,
            answer_room: self.max_answer_bytes,
        }
    }

    /// A pull page's bounds: `limit` changes at most (capped by `max_batch`), in about
    /// `answer_bytes`.
    pub fn page_bounds(&self, limit: u32, answer_bytes: usize) -> PageBounds {
        PageBounds {
            changes: (limit as usize).clamp(1, self.max_batch),
            bytes: answer_bytes,
        }
    }

    /// How long sync-log rows are kept.
    pub fn log_retention(&self) -> LogRetention {
        LogRetention {
            keep: self.sync_log_keep,
            max_age_ms: self.sync_log_max_age_hours.saturating_mul(3_600_000),
        }
    }
}

/// Whether JSON text nests objects/arrays at most `max` deep, checked by scanning (no parsing), strings and escapes respected. Run before parsing untrusted input.
///
/// A scalar has depth 0, `[]` and `{}` depth 1, `[{}]` depth 2. Invalid JSON is not rejected here
/// (the parser does that), only over-deep nesting.
pub fn depth_within(json: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // Multi-byte UTF-8 sequences never contain ASCII bytes, so scanning bytes is exact.
    for &byte in json.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Checks one pushed mutation against the limits: its document (the op's fields/patch, serialized) must be at most `max_doc_bytes`.
/// Error: ErrorInfo { code: "too_large", message naming the document and the limit, retryable: false }.
pub fn check_mutation(m: &WireMutation, limits: &Limits) -> Result<(), ErrorInfo> {
    let document = match &m.op {
        Op::Insert { fields } | Op::Put { fields } => fields,
        Op::Update { patch } => patch,
        Op::Delete => return Ok(()),
    };
    if json_len(document, limits.max_doc_bytes).is_some() {
        return Ok(());
    }
    Err(ErrorInfo::new(
        ErrorCode::TooLarge,
        format!(
            "document {}/{} is larger than the limit of {} bytes",
            shorten(&m.collection),
            shorten(&m.doc_id),
            limits.max_doc_bytes
        ),
        false,
    ))
}

/// Checks a push's size: at most `max_batch` mutations in all. Error code "batch_too_large", not retryable.
pub fn check_push(transactions: &[WireTransaction], limits: &Limits) -> Result<(), ErrorInfo> {
    let total: usize = transactions.iter().map(|tx| tx.mutations.len()).sum();
    if total <= limits.max_batch {
        return Ok(());
    }
    Err(ErrorInfo::new(
        ErrorCode::BatchTooLarge,
        format!(
            "push has {total} mutations, over the limit of {}",
            limits.max_batch
        ),
        false,
    ))
}

/// A token bucket allowing `per_second` messages per second with bursts of the same size. Time is passed in (milliseconds, monotonic) so it is testable.
///
/// The bucket starts full. `per_second == 0` allows nothing.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Tokens per second, which is also milli-tokens gained per millisecond.
    per_second: u64,
    /// Available milli-tokens (1000 per message), at most `per_second * 1000`.
    milli_tokens: u64,
    /// When `milli_tokens` was last brought up to date.
    last_ms: u64,
}

impl RateLimiter {
    /// A full bucket for `per_second` messages per second, as of `now_ms`.
    pub fn new(per_second: u32, now_ms: u64) -> Self {
        let per_second = u64::from(per_second);
        Self {
            per_second,
            milli_tokens: per_second * 1000,
            last_ms: now_ms,
        }
    }

    /// Takes one token if available.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        // A clock that steps back refills nothing.
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let capacity = self.per_second * 1000;
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(self.per_second))
            .min(capacity);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

/// A client-supplied name, cut to a readable length for an error message.
pub fn shorten(name: &str) -> String {
    const MAX_CHARS: usize = 64;
    match name.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::document::Fields;
    use ferrosync_core::hlc::Hlc;
    use serde_json::{json, Value};

    fn fields(value: Value) -> Fields {
        match value {
            Value::Object(map) => Fields::from_map(&map),
            _ => panic!("not an object"),
        }
    }

    fn mutation(id: u64, op: Op) -> WireMutation {
        WireMutation {
            id,
            collection: "todos".into(),
            doc_id: "t1".into(),
            op,
            hlc: Hlc::default(),
            base_version: 0,
        }
    }

    fn transaction(n: usize) -> WireTransaction {
        WireTransaction {
            mutations: (1..=n as u64).map(|id| mutation(id, Op::Delete)).collect(),
            abandon: false,
        }
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let limits = Limits::default();
        assert_eq!(limits.max_frame_bytes, 1_048_576);
        assert_eq!(limits.max_doc_bytes, 262_144);
        assert_eq!(limits.max_depth, 32);
        assert_eq!(limits.max_batch, 1000);
        assert_eq!(limits.messages_per_second, 5000);
        assert_eq!(limits.max_messages_per_frame, 100);
        assert_eq!(limits.max_answer_bytes, 4_194_304);
        assert_eq!(limits.max_collections, 100);
        assert_eq!(limits.max_connections, 10_000);
        assert_eq!(limits.max_connections_per_user, 100);
        assert_eq!(limits.read_timeout_secs, 10);
        assert_eq!(limits.sync_log_keep, 10_000);
        assert_eq!(limits.sync_log_max_age_hours, 168);
    }

    #[test]
    fn every_limit_flag_is_documented_with_its_default() {
        use clap::CommandFactory;
        let protocol = include_str!("../../../docs/PROTOCOL.md");
        for arg in Limits::command().get_arguments() {
            let flag = format!("`--{}`", arg.get_long().expect("a long flag"));
            let default = arg.get_default_values()[0].to_string_lossy().into_owned();
            let row = protocol
                .lines()
                .find(|line| line.starts_with('|') && line.contains(&flag))
                .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no row for {flag}"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(
                cells[2].replace(',', ""),
                default,
                "docs/PROTOCOL.md gives {flag} another default"
            );
        }
    }

    #[test]
    fn depth_at_the_limit_passes_and_one_over_fails() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(depth_within(&nested(32), 32));
        assert!(!depth_within(&nested(33), 32));
        let objects = r#"{"a":{"b":{"c":1}}}"#;
        assert!(depth_within(objects, 3));
        assert!(!depth_within(objects, 2));
        assert!(depth_within("42", 0));
        assert!(!depth_within("{}", 0));
        // Siblings do not add up: depth returns when a container closes.
        assert!(depth_within(r#"[[1],[2],{"a":3}]"#, 2));
        assert!(!depth_within(r#"[[1],[2],{"a":[3]}]"#, 2));
    }

    #[test]
    fn brackets_inside_strings_are_ignored() {
        assert!(depth_within(r#"{"a":"[[[[{{{{"}"#, 1));
        assert!(depth_within(r#"["]]]]", "[[[["]"#, 1));
        // Closers inside strings must not lower the depth either.
        assert!(!depth_within(r#"["]]]]",["x"]]"#, 1));
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        // The string is `he said \"[[[\"` : its brackets stay inside it.
        assert!(depth_within(r#"{"k":"he said \"[[[\""}"#, 1));
        // An escaped backslash before a quote does end the string: the brackets after it count.
        assert!(!depth_within(r#"["a\\",[[1]]]"#, 2));
        assert!(depth_within(r#"["a\\",[[1]]]"#, 3));
        // Multi-byte characters pass through.
        assert!(depth_within(r#"{"é":"日本[","x":[1]}"#, 2));
    }

    #[test]
    fn small_documents_pass() {
        let limits = Limits::default();
        let insert = mutation(
            1,
            Op::Insert {
                fields: fields(json!({"title": "milk"})),
            },
        );
        assert_eq!(check_mutation(&insert, &limits), Ok(()));
        assert_eq!(check_mutation(&mutation(2, Op::Delete), &limits), Ok(()));
    }

    #[test]
    fn document_size_is_checked_exactly_at_the_limit() {
        let doc = fields(json!({"title": "x".repeat(100)}));
        let size = serde_json::to_vec(&doc).unwrap().len();
        let at = Limits {
            max_doc_bytes: size,
            ..Limits::default()
        };
        let under = Limits {
            max_doc_bytes: size - 1,
            ..Limits::default()
        };
        let put = mutation(
            1,
            Op::Put {
                fields: doc.clone(),
            },
        );
        assert_eq!(check_mutation(&put, &at), Ok(()));
        assert_eq!(
            check_mutation(&put, &under).unwrap_err().code,
            ErrorCode::TooLarge
        );
        let update = mutation(1, Op::Update { patch: doc });
        assert_eq!(check_mutation(&update, &at), Ok(()));
        assert!(check_mutation(&update, &under).is_err());
    }

    #[test]
    fn oversize_documents_are_rejected() {
        let limits = Limits::default();
        let big = fields(json!({"body": "x".repeat(limits.max_doc_bytes)}));
        let err = check_mutation(&mutation(1, Op::Insert { fields: big }), &limits).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooLarge);
        assert!(!err.retryable);
        assert!(err.message.contains("todos/t1"), "{}", err.message);
        assert!(err.message.contains("262144"), "{}", err.message);
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        let limits = Limits {
            max_doc_bytes: 1,
            ..Limits::default()
        };
        let mut m = mutation(
            1,
            Op::Insert {
                fields: fields(json!({"a": 1})),
            },
        );
        m.doc_id = "é".repeat(1000);
        let err = check_mutation(&m, &limits).unwrap_err();
        assert!(err.message.len() < 300, "{}", err.message);
        assert!(err.message.contains(&"é".repeat(64)));
    }

    #[test]
    fn batches_over_the_limit_are_rejected() {
        let limits = Limits {
            max_batch: 5,
            ..Limits::default()
        };
        assert_eq!(check_push(&[], &limits), Ok(()));
        assert_eq!(
            check_push(&[transaction(2), transaction(3)], &limits),
            Ok(())
        );
        // The limit counts mutations across all transactions.
        let err = check_push(&[transaction(3), transaction(3)], &limits).unwrap_err();
        assert_eq!(err.code, ErrorCode::BatchTooLarge);
        assert!(!err.retryable);
        assert!(
            err.message.contains('6') && err.message.contains('5'),
            "{}",
            err.message
        );
    }

    #[test]
    fn rate_limiter_allows_a_burst_then_refuses() {
        let mut limiter = RateLimiter::new(10, 1_000);
        for i in 0..10 {
            assert!(limiter.allow(1_000), "message {i}");
        }
        assert!(!limiter.allow(1_000));
        assert!(!limiter.allow(1_000));
    }

    #[test]
    fn rate_limiter_refills_over_time() {
        let mut limiter = RateLimiter::new(10, 0);
        for _ in 0..10 {
            assert!(limiter.allow(0));
        }
        // One token every 100 ms.
        assert!(!limiter.allow(99));
        assert!(limiter.allow(100));
        assert!(!limiter.allow(100));
        assert!(limiter.allow(250));
        assert!(!limiter.allow(250));
        // 50 ms left over from before plus 50 now make another token.
        assert!(limiter.allow(300));
        // A long pause refills only up to the burst size.
        for _ in 0..10 {
            assert!(limiter.allow(60_000));
        }
        assert!(!limiter.allow(60_000));
    }

    #[test]
    fn rate_limiter_survives_odd_clocks_and_rates() {
        let mut limiter = RateLimiter::new(1, 5_000);
        assert!(limiter.allow(5_000));
        // A clock stepping back refills nothing and does not reset the bucket.
        assert!(!limiter.allow(1_000));
        assert!(!limiter.allow(5_999));
        assert!(limiter.allow(6_000));

        let mut none = RateLimiter::new(0, 0);
        assert!(!none.allow(0));
        assert!(!none.allow(u64::MAX));

        let mut fast = RateLimiter::new(u32::MAX, 0);
        assert!(fast.allow(u64::MAX));
    }
}
