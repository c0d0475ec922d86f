//! Fuzzes the server's decoding and apply path: each input is a client frame, answered by the
//! WebSocket endpoint's frame handler (`ws::answer_frame`: limits, decoding, the session, the
//! writer's group commit, the core's rules) over a real SQLite file, as a tenant of its own.
//! Checked for every frame: no panic, the connection stays open, bounded allocation, one
//! well-formed answer per message with documented error codes, and the tenant's data changed
//! by exactly the mutations answered `applied` (a refused message or mutation leaves none).

mod common;

use arbitrary::Arbitrary;
use bolero::check;
use common::{allocation_bound, documented_codes, T0, TEST_TIME};
use ferrosync_core::protocol::{server_frame, Outcome, ServerMessage};
use ferrosync_fuzz::{alloc, client::ClientFrame, frame_text};
use ferrosync_server::auth::{Authenticator, Principal};
use ferrosync_server::limits::{Limits, RateLimiter};
use ferrosync_server::session::Session;
use ferrosync_server::storage::{Durability, PageBounds, Storage};
use ferrosync_server::{ws, AppState, Config};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

#[test]
fn any_frame_is_answered_within_the_invariants() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fuzz.db").display());
    let state = runtime.block_on(async {
        let limits = Limits::default();
        let storage = Storage::open(&url, limits.log_retention(), Durability::Normal)
            .await
            .unwrap();
        AppState::start(Config {
            storage: Arc::new(storage),
            auth: Authenticator::new(Some("unused".into()), None),
            allowed_origins: Vec::new(),
            own_origins: Vec::new(),
            limits,
            static_dir: None,
            heartbeat: ws::DEFAULT_HEARTBEAT,
        })
        .0
    });
    let codes = documented_codes();
    let tenants = AtomicU64::new(0);
    // A panic fails the run (bolero reports the input), so no state outlives a broken invariant.
    let state = AssertUnwindSafe(state);
    check!().with_test_time(TEST_TIME).for_each(|bytes: &[u8]| {
        let Some(text) = frame_text(bytes, |u| Ok(ClientFrame::arbitrary(u)?.text(T0))) else {
            return;
        };
        // The endpoint closes the connection on a larger frame before reading it.
        if text.len() > state.limits.max_frame_bytes {
            return;
        }
        let state = &*state;
        let tenant = format!("fuzz-{}", tenants.fetch_add(1, Ordering::Relaxed) + 1);
        let principal = Principal {
            user: "fuzzer".into(),
            tenant: tenant.clone(),
        };
        let mut session = Session::new(principal, 1);
        let mut rate = RateLimiter::new(state.limits.messages_per_second, 0);
        let (answer, peak) = alloc::peak_during(|| {
            runtime.block_on(ws::answer_frame(state, &mut session, &mut rate, 0, &text))
        });
        let answer = answer.unwrap_or_else(|close| panic!("the connection closed: {close:?}"));
        assert!(
            peak <= allocation_bound(text.len()),
            "{peak} bytes held at once for a frame of {} bytes",
            text.len()
        );
        let messages = server_frame(&answer)
            .unwrap_or_else(|e| panic!("an unreadable answer ({e}): {answer}"));
        let applied = check_answers(&messages, &codes);
        let stored = runtime.block_on(stored(&state.storage, &tenant));
        check_data(&applied, &stored);
    });
}

/// Checks each answer; returns the documents answered `applied` by version (a replayed
/// mutation's outcome carries the version it was first applied at).
fn check_answers(messages: &[ServerMessage], codes: &[String]) -> BTreeMap<u64, (String, String)> {
    let mut applied = BTreeMap::new();
    for message in messages {
        match message {
            ServerMessage::Error { error, .. } => {
                assert!(
                    codes.iter().any(|c| c == error.code.as_str()),
                    "an undocumented code: {error:?}"
                );
                assert!(!error.message.is_empty(), "an error without a message");
            }
            ServerMessage::PushResult { results, .. } => {
                for result in results {
                    match &result.outcome {
                        Outcome::Applied { doc } => {
                            let key = (doc.id().to_owned(), doc.fields().as_json().to_owned());
                            if let Some(earlier) = applied.insert(doc.version(), key.clone()) {
                                assert_eq!(earlier, key, "two writes at version {}", doc.version());
                            }
                        }
                        Outcome::Rejected { error } => {
                            assert!(
                                codes.iter().any(|c| c == error.code.as_str()),
                                "an undocumented code: {error:?}"
                            );
                        }
                        Outcome::Conflict { .. } => {}
                    }
                }
            }
            ServerMessage::Welcome { .. }
            | ServerMessage::PullPage { .. }
            | ServerMessage::Pong => {}
            ServerMessage::Changes { .. } => panic!("live changes in answer to a frame"),
        }
    }
    applied
}

/// The tenant's head and every document it stores: (version, id, fields).
async fn stored(storage: &Storage, tenant: &str) -> (u64, Vec<(u64, String, String)>) {
    let head = storage.head(tenant).await.unwrap();
    let bounds = PageBounds {
        changes: 100_000,
        bytes: usize::MAX,
    };
    let page = storage.pull(tenant, 0, bounds, None).await.unwrap();
    assert!(!page.has_more);
    let docs = page
        .changes
        .into_iter()
        .map(|c| {
            (
                c.doc.version(),
                c.doc.id().to_owned(),
                c.doc.fields().as_json().to_owned(),
            )
        })
        .collect();
    (head, docs)
}

/// The tenant started empty: every version up to its head was answered `applied` once, and
/// every stored document is the one its version's answer said.
fn check_data(
    applied: &BTreeMap<u64, (String, String)>,
    (head, docs): &(u64, Vec<(u64, String, String)>),
) {
    let versions: Vec<u64> = applied.keys().copied().collect();
    assert_eq!(
        versions,
        (1..=*head).collect::<Vec<_>>(),
        "versions answered applied against the head"
    );
    for (version, id, fields) in docs {
        let answered = applied
            .get(version)
            .unwrap_or_else(|| panic!("{id} stored at version {version}, never answered"));
        assert_eq!(
            answered,
            &(id.clone(), fields.clone()),
            "the stored document differs from the answer"
        );
    }
}
