//! Who is told about what: subscribers of collections, transactions, status and stats, and the
//! queue their callbacks wait in until the engine is no longer borrowed.

use crate::api::views;
use ferrosync_core::collection::DocChange;
use ferrosync_core::transaction::Transaction;
use js_sys::Function;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// Callbacks waiting to run once the engine is no longer borrowed.
#[derive(Default)]
pub struct CallbackQueue {
    queue: RefCell<VecDeque<Box<dyn FnOnce()>>>,
    draining: Cell<bool>,
}

impl CallbackQueue {
    /// Calls `f(arg)` later; an exception is reported on the console, not swallowed.
    fn call(&self, f: &Function, arg: JsValue) {
        let f = f.clone();
        self.queue.borrow_mut().push_back(Box::new(move || {
            if let Err(e) = f.call1(&JsValue::UNDEFINED, &arg) {
                web_sys::console::error_2(&"ferrosync: a callback threw".into(), &e);
            }
        }));
    }

    /// Runs queued callbacks (and those they queue) unless an outer call is already doing so.
    pub fn drain(&self) {
        if self.draining.replace(true) {
            return;
        }
        loop {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(callback) => callback(),
                None => break,
            }
        }
        self.draining.set(false);
    }
}

/// The status, the stats or the progress (`getStatus()`, `getStats()`, `getProgress()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// `getStatus()`.
    Status,
    /// `getStats()`.
    Stats,
    /// `getProgress()`.
    Progress,
}

enum Listener {
    Collection(String, Function),
    Transactions(Function),
    Topic(Topic, Function),
}

/// The subscribers of one engine; moves with it when a follower tab takes over as leader.
pub struct Hub {
    listeners: BTreeMap<u64, Listener>,
    next: u64,
    callbacks: Rc<CallbackQueue>,
}

impl Hub {
    /// A hub whose callbacks wait in `callbacks`.
    pub fn new(callbacks: Rc<CallbackQueue>) -> Hub {
        Hub {
            listeners: BTreeMap::new(),
            next: 1,
            callbacks,
        }
    }

    fn add(&mut self, listener: Listener) -> u64 {
        let id = self.next;
        self.next += 1;
        self.listeners.insert(id, listener);
        id
    }

    /// Subscribes `f` to a collection's changes.
    pub fn listen_collection(&mut self, name: &str, f: Function) -> u64 {
        self.add(Listener::Collection(name.to_owned(), f))
    }

    /// Subscribes `f` to transaction updates.
    pub fn listen_transactions(&mut self, f: Function) -> u64 {
        self.add(Listener::Transactions(f))
    }

    /// Subscribes `f` to the status or stats, calling it at once with `current`.
    pub fn listen_topic(&mut self, topic: Topic, f: Function, current: JsValue) -> u64 {
        self.callbacks.call(&f, current);
        self.add(Listener::Topic(topic, f))
    }

    /// Removes a subscriber.
    pub fn unlisten(&mut self, id: u64) {
        self.listeners.remove(&id);
    }

    /// Removes every subscriber.
    pub fn clear(&mut self) {
        self.listeners.clear();
    }

    /// Tells each collection's subscribers about its changes.
    pub fn changes(&self, changes: &[DocChange]) {
        for listener in self.listeners.values() {
            if let Listener::Collection(name, f) = listener {
                let mut mine = changes.iter().filter(|c| &c.collection == name).peekable();
                if mine.peek().is_some() {
                    self.callbacks.call(f, views::changes(mine));
                }
            }
        }
    }

    /// Tells transaction subscribers about these transactions.
    pub fn transactions(&self, txs: &[Transaction]) {
        let subscribers: Vec<&Function> = self
            .listeners
            .values()
            .filter_map(|l| match l {
                Listener::Transactions(f) => Some(f),
                _ => None,
            })
            .collect();
        if subscribers.is_empty() {
            return;
        }
        for tx in txs {
            let view = views::transaction(tx);
            for f in &subscribers {
                self.callbacks.call(f, view.clone());
            }
        }
    }

    /// Tells the topic's subscribers its new value.
    pub fn topic(&self, topic: Topic, value: &JsValue) {
        for listener in self.listeners.values() {
            if let Listener::Topic(t, f) = listener {
                if *t == topic {
                    self.callbacks.call(f, value.clone());
                }
            }
        }
    }
}
