//! LISTEN/NOTIFY between nodes: each commit notifies `NODE HEAD TENANT` on the schema's channel,
//! and every node listens for the others' to tell its live clients.

use crate::storage::{emit, Feed, FeedSender};
use futures_util::StreamExt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio_postgres::{AsyncMessage, NoTls};

/// The longest wait before the listening connection is tried again.
const LISTEN_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Listens on `channel` for other nodes' commits and puts them on the feed; when the listening
/// connection breaks, connects again (after a growing pause) and tells the feed that
/// notifications may have been missed, so that live clients catch up from storage.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    channel: String,
    node: String,
    feed: FeedSender,
) {
    let mut failures: u32 = 0;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (notes, mut incoming) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(note)) => {
                                let _ = notes.send(note);
                            }
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, "the listening database connection failed");
                                return;
                            }
                        }
                    }
                });
                let listen = format!("LISTEN \"{}\"", channel.replace('"', "\"\""));
                match client.batch_execute(&listen).await {
                    Ok(()) => {
                        failures = 0;
                        emit(&feed, Feed::Resubscribe);
                        while let Some(note) = incoming.recv().await {
                            if let Some(event) = notification(note.payload(), &node) {
                                emit(&feed, event);
                            }
                        }
                        tracing::warn!("lost the listening database connection; reconnecting");
                    }
                    Err(error) => tracing::warn!(%error, "cannot listen for other nodes' commits"),
                }
                driver.abort();
            }
            Err(error) => {
                tracing::warn!(%error, "cannot connect to listen for other nodes' commits")
            }
        }
        failures = failures.saturating_add(1);
        let pause = Duration::from_millis(100 << failures.min(6)).min(LISTEN_BACKOFF_CAP);
        tokio::time::sleep(pause).await;
    }
}

/// Another node's notification `NODE HEAD TENANT` as a feed event (`None`: this node's own, or
/// not one of ours).
fn notification(payload: &str, node: &str) -> Option<Feed> {
    let mut parts = payload.splitn(3, ' ');
    let (from, head, tenant) = (parts.next()?, parts.next()?, parts.next()?);
    if from == node {
        return None;
    }
    Some(Feed::Remote {
        tenant: tenant.to_owned(),
        head: head.parse().ok()?,
    })
}

/// A random id for this node (process id, time and the standard library's random hash keys).
pub(super) fn random_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_of_other_nodes_become_feed_events() {
        match notification("a1 42 acme corp", "b2") {
            Some(Feed::Remote { tenant, head }) => {
                assert_eq!((tenant.as_str(), head), ("acme corp", 42))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            notification("b2 42 acme", "b2").is_none(),
            "this node's own"
        );
        assert!(notification("a1 x acme", "b2").is_none());
        assert!(notification("garbage", "b2").is_none());
    }
}
