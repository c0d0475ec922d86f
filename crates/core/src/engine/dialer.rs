//! The connection's lifecycle: whether sync runs, when the driver opens a connection (or runs a
//! custom backend's `setup`) and to which server, and how reconnects back off.
//!
//! The driver opens a connection on [`Effect::Connect`] and reports `Connected` (or
//! `BackendReady`), or `Disconnected` once it closes or cannot open; it drops the connection on
//! [`Effect::Disconnect`]. A lost connection is opened again after a delay drawn by the retry
//! policy (full jitter below a ceiling that doubles per failure), to the next server of the
//! list.

use super::{Effect, Engine, Link};
use crate::retry::{FailureKind, RetryDecision, RetryPolicy};
use crate::Millis;

/// How reconnects back off: from half a second up to 30 s, for as long as sync runs.
const RECONNECT: RetryPolicy = RetryPolicy {
    auto_retry: true,
    base_delay_ms: 500,
    max_retries: u32::MAX,
    max_delay_ms: 30_000,
};

/// The connection's lifecycle state.
#[derive(Debug, Default)]
pub(super) struct Dialer {
    /// `Start` came and not `Stop`.
    running: bool,
    /// The browser says it is offline: no connection is opened until it is online.
    offline: bool,
    /// A `Connect` was issued and not answered yet.
    dialing: bool,
    /// Connections that failed since the last that opened.
    failures: u32,
    /// When the next connection is opened.
    pub retry_at: Option<Millis>,
    /// Which server (counted round the list) the next connection goes to.
    server: usize,
}

impl Dialer {
    /// Whether sync runs (`start()` and not `stop()`).
    pub fn running(&self) -> bool {
        self.running
    }

    /// Whether a connection is being opened.
    pub fn dialing(&self) -> bool {
        self.dialing
    }
}

impl Engine {
    /// `start()`: connects, and reconnects after losses until `Stop`.
    pub(super) fn start(&mut self) {
        if !self.dialer.running {
            self.dialer.running = true;
            self.dialer.failures = 0;
            self.dial();
        }
    }

    /// `stop()`: closes the connection; local reads and writes go on.
    pub(super) fn stop(&mut self) {
        self.dialer.running = false;
        self.dialer.retry_at = None;
        self.hang_up("sync stopped");
    }

    /// The browser went online (connect at once) or offline (close the connection).
    pub(super) fn network(&mut self, online: bool) {
        self.dialer.offline = !online;
        self.dialer.retry_at = None;
        if online {
            self.dialer.failures = 0;
            self.dial();
        } else {
            self.hang_up("the browser is offline");
        }
    }

    /// A connection opened (or the custom backend is ready).
    pub(super) fn dialed(&mut self) {
        self.dialer.dialing = false;
        self.dialer.failures = 0;
        self.dialer.retry_at = None;
    }

    /// The connection closed or could not open: the next one goes to the next server, after
    /// a backoff.
    pub(super) fn dial_failed(&mut self) {
        self.dialer.dialing = false;
        self.dialer.server = self.dialer.server.wrapping_add(1);
        if !self.dialer.running || self.dialer.retry_at.is_some() {
            return;
        }
        self.dialer.failures = self.dialer.failures.saturating_add(1);
        let decision = RECONNECT.decide(
            self.dialer.failures,
            FailureKind::Retryable,
            self.now,
            &mut self.rng,
        );
        if let RetryDecision::RetryAt(at) = decision {
            self.dialer.retry_at = Some(at);
        }
    }

    /// Opens a connection if sync runs and none is open or opening (and a backoff is over).
    pub(super) fn dial(&mut self) {
        let d = &mut self.dialer;
        if !d.running || d.offline || d.dialing || self.link != Link::Down {
            return;
        }
        if d.retry_at.is_some_and(|at| at > self.now) {
            return;
        }
        d.retry_at = None;
        d.dialing = true;
        self.out.effects.push(Effect::Connect { server: d.server });
    }

    /// Drops the connection (open or opening), if any.
    fn hang_up(&mut self, reason: &str) {
        let up = std::mem::take(&mut self.dialer.dialing) || self.link != Link::Down;
        if up {
            self.out.effects.push(Effect::Disconnect);
            self.disconnected(reason);
        }
    }
}
