//! The writer: one task per node takes write requests (hellos, pushes, sync-log rows) from a
//! queue and commits all that are waiting, up to a bound, in one database transaction (group
//! commit), then answers each through its oneshot and puts what was committed on the feed. A
//! waiting request is a queue entry, never a thread.

use super::group::{self, Answer, Batch, LogPrune, Request};
use super::{emit, Backend, Feed, FeedSender, LogRetention, StorageError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Requests that may wait for the writer; submitting more waits for room.
const QUEUE: usize = 16_384;
/// The most requests in one transaction.
const MAX_REQUESTS: usize = 1_000;
/// The most mutations (a hello or log row counts one) in one transaction.
const MAX_WEIGHT: usize = 20_000;
/// A tenant's sync log is pruned after this many new rows, so it holds at most
/// `keep + PRUNE_EVERY` rows.
const PRUNE_EVERY: u64 = 100;

/// A request and where its answer goes.
struct Job {
    request: Request,
    reply: Option<oneshot::Sender<Result<Answer, StorageError>>>,
}

/// The queue to the writer task; the task ends when this is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `backend`.
    pub(super) fn spawn(
        backend: Arc<dyn Backend>,
        retention: LogRetention,
        feed: FeedSender,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(backend, retention, feed, queue));
        Self { jobs }
    }

    /// Queues `request` and waits until the transaction that carries it committed (or failed).
    pub(super) async fn submit(&self, request: Request) -> Result<Answer, StorageError> {
        self.queue(request).await?.answer().await
    }

    /// Queues `request`; its answer comes once the transaction that carries it committed (or
    /// failed). Requests are decided in the order they are queued.
    pub(super) async fn queue(&self, request: Request) -> Result<Queued, StorageError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request,
            reply: Some(reply),
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StorageError::Stopped)?;
        Ok(Queued(answer))
    }
}

/// A queued request's answer to come.
pub(super) struct Queued(oneshot::Receiver<Result<Answer, StorageError>>);

impl Queued {
    /// Waits until the transaction that carries the request committed (or failed).
    pub(super) async fn answer(self) -> Result<Answer, StorageError> {
        self.0.await.map_err(|_| StorageError::Stopped)?
    }
}

/// Commits batches until the queue closes.
async fn run(
    backend: Arc<dyn Backend>,
    retention: LogRetention,
    feed: FeedSender,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut unpruned = HashMap::new();
    // The log rows of pushes whose transaction failed, written with the next batch.
    let mut carried: Vec<Job> = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut weight = first.request.weight();
        let mut jobs = std::mem::take(&mut carried);
        jobs.push(first);
        while jobs.len() < MAX_REQUESTS && weight < MAX_WEIGHT {
            match queue.try_recv() {
                Ok(job) => {
                    weight += job.request.weight();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|job| (job.request, job.reply)).unzip();
        let prune_logs = prunes(&requests, &mut unpruned, retention);
        let batch = Arc::new(Batch {
            requests,
            prune_logs,
        });
        match backend.commit(batch.clone()).await {
            Ok(decided) => {
                for (reply, answer) in replies.into_iter().zip(decided.answers) {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(answer));
                    }
                }
                for committed in decided.committed {
                    emit(&feed, Feed::Committed(committed));
                }
            }
            Err(error) => {
                tracing::error!(%error, requests = batch.requests.len(), "a write transaction failed");
                let message = error.to_string();
                let error = Arc::new(error);
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(StorageError::Batch(error.clone())));
                }
                carried = batch
                    .requests
                    .iter()
                    .filter_map(|request| match request {
                        Request::Push { tenant, push, .. } => Some(Job {
                            request: Request::Log {
                                tenant: tenant.clone(),
                                entry: group::failed_log(push.log.clone(), &message),
                            },
                            reply: None,
                        }),
                        _ => None,
                    })
                    .collect();
                // A commit whose answer was lost may have gone through: live clients re-read.
                emit(&feed, Feed::Resubscribe);
            }
        }
    }
}

/// The sync logs to prune along with `requests`: a tenant's after every [`PRUNE_EVERY`] rows.
fn prunes(
    requests: &[Request],
    unpruned: &mut HashMap<String, u64>,
    retention: LogRetention,
) -> Vec<LogPrune> {
    let before = crate::now_ms().saturating_sub(retention.max_age_ms);
    let mut prunes = Vec::new();
    for request in requests.iter().filter(|r| r.logs()) {
        let written = unpruned.entry(request.tenant().to_owned()).or_insert(0);
        *written += 1;
        if *written >= PRUNE_EVERY {
            *written = 0;
            prunes.push(LogPrune {
                tenant: request.tenant().to_owned(),
                before,
                keep: retention.keep,
            });
        }
    }
    prunes
}
