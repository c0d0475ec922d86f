//! When the leading tab's batched storage writes go: what a task's commits changed, and the
//! commits a completed write left waiting, in a microtask (one IndexedDB transaction for a burst
//! of writes), what else a completed write or a push's answer leaves in the next task, changes
//! received live once the page is idle, and compaction when it has time to spare (see
//! [`Leader::input`]).

use super::leader::Leader;
use crate::js::{self, now};
use ferrosync_core::engine::Input;
use gloo_timers::callback::Timeout;

/// How long changes received live wait to be written, so a stream of them shares one write a
/// second and the engines of a page tell their subscribers first (nothing waits on their
/// durability: a reload before the write pulls them again). Each IndexedDB write costs the
/// page's thread about 0.4 ms whatever it holds: at 100 ms, 32 engines in one page receiving
/// a write every 20 ms spent a sixth of the thread on these writes, started together every
/// 100 ms, so one write in five met their burst (scenario 5b).
const RECEIVED_WRITE_DELAY_MS: u32 = 1_000;

impl Leader {
    /// Flushes in a microtask (once for any number of calls before it runs).
    pub(super) fn flush_soon(&mut self) {
        if std::mem::replace(&mut self.flush_queued, true) {
            return;
        }
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(handle) = me.upgrade() {
                handle.with_leader(|l| {
                    if std::mem::take(&mut l.flush_queued) {
                        l.feed(Input::Tick);
                    }
                });
            }
        });
    }

    /// Lets storage compact its log when the page has time to spare (once for any number of
    /// calls before it runs).
    pub(super) fn compact_when_idle(&mut self) {
        if std::mem::replace(&mut self.compact_queued, true) {
            return;
        }
        let me = self.me.clone();
        js::when_idle(move || {
            if let Some(handle) = me.upgrade() {
                handle.with_leader(|l| {
                    l.compact_queued = false;
                    l.feed(Input::Compact);
                });
            }
        });
    }

    /// Flushes in the next task or, `lazy`, after [`RECEIVED_WRITE_DELAY_MS`] once the page is
    /// idle (so the writes of many engines never hold up a message), unless a flush is due
    /// sooner.
    pub(super) fn flush_later(&mut self, lazy: bool) {
        let delay = if lazy { RECEIVED_WRITE_DELAY_MS } else { 0 };
        let due = now() + u64::from(delay);
        if self.flush_due <= due || (lazy && self.flush_idle) {
            return;
        }
        self.flush_due = due;
        self.flush_idle = false;
        self.flush_ticket += 1;
        let (ticket, me) = (self.flush_ticket, self.me.clone());
        let tick = move || {
            if let Some(handle) = me.upgrade() {
                handle.with_leader(|l| {
                    if l.flush_ticket == ticket {
                        l.flush_timer = None;
                        l.flush_due = u64::MAX;
                        l.flush_idle = false;
                        l.feed(Input::Tick);
                    }
                });
            }
        };
        let me = self.me.clone();
        self.flush_timer = Some(Timeout::new(delay, move || {
            if !lazy {
                return tick();
            }
            // An idle callback cannot be cancelled: until it runs, a flush due sooner is
            // scheduled anew (and this one then does nothing).
            if let Some(handle) = me.upgrade() {
                handle.with_leader(|l| {
                    if l.flush_ticket == ticket {
                        l.flush_due = u64::MAX;
                        l.flush_idle = true;
                    }
                });
            }
            js::when_idle(tick);
        }));
    }
}
