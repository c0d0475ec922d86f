//! Callers waiting on the engine, one type for every wait: the caller holds an [`Answer`], the
//! driver keeps the [`Pending`] end under what answers it (a transaction id for a commit's
//! durability, a ticket for a request, a sequence number for a call forwarded to the leading
//! tab). A wait dropped unanswered tells its caller the engine is gone.

use crate::js;
use futures::channel::oneshot;
use std::collections::HashMap;
use std::hash::Hash;
use wasm_bindgen::JsValue;

/// What a caller waits on: a value, or the error to reject with.
pub type Answer<T> = oneshot::Receiver<Result<T, JsValue>>;

/// The answering end of a wait.
pub struct Pending<T>(oneshot::Sender<Result<T, JsValue>>);

impl<T> Pending<T> {
    /// A wait: its answering end, and what the caller holds.
    pub fn new() -> (Pending<T>, Answer<T>) {
        let (sender, answer) = oneshot::channel();
        (Pending(sender), answer)
    }

    /// Tells the caller.
    pub fn answer(self, result: Result<T, JsValue>) {
        let _ = self.0.send(result);
    }
}

/// An answer given at once.
pub fn answered<T>(result: Result<T, JsValue>) -> Answer<T> {
    let (pending, answer) = Pending::new();
    pending.answer(result);
    answer
}

/// Waits for an answer (an error if the engine was destroyed first).
pub async fn wait<T>(answer: Answer<T>) -> Result<T, JsValue> {
    answer.await.map_err(|_| js::destroyed())?
}

/// Callers waiting, by what answers them.
pub struct Waiting<K, T> {
    waiting: HashMap<K, Vec<Pending<T>>>,
}

impl<K, T> Default for Waiting<K, T> {
    fn default() -> Self {
        Waiting {
            waiting: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash, T: Clone> Waiting<K, T> {
    /// A caller waiting for `key`.
    pub fn add(&mut self, key: K) -> Answer<T> {
        let (pending, answer) = Pending::new();
        self.waiting.entry(key).or_default().push(pending);
        answer
    }

    /// Whether a caller waits for `key`.
    pub fn is_waiting(&self, key: &K) -> bool {
        self.waiting.contains_key(key)
    }

    /// Tells the callers waiting for `key`, if any.
    pub fn answer(&mut self, key: &K, result: Result<T, JsValue>) {
        for pending in self.waiting.remove(key).unwrap_or_default() {
            pending.answer(result.clone());
        }
    }

    /// Drops every wait: the callers hear the engine is gone.
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}
