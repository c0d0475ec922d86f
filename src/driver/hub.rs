//! Who is told about what: subscribers of collections, live queries, transactions, status and
//! stats, and the queue their callbacks wait in until the engine is no longer borrowed.

use crate::views;
use ferrosync_core::collection::DocChange;
use ferrosync_core::document::write_json_string;
use ferrosync_core::id_map::IdMap;
use ferrosync_core::live_query::{LiveChanges, LiveId};
use ferrosync_core::query::Query;
use ferrosync_core::transaction::Transaction;
use js_sys::Function;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
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
    /// A subscriber of a query: told of the changes to its results.
    Live {
        collection: String,
        query: Rc<Query>,
        id: LiveId,
        f: Function,
    },
    /// Told at once (not queued) of the ids of changed documents, so a cache of documents
    /// never serves a stale one to a callback that runs before it heard.
    Invalidate(String, Function),
    Transactions(Function),
    Topic(Topic, Function),
}

/// The subscribers of one engine; moves with it when a follower tab takes over as leader.
pub struct Hub {
    listeners: IdMap<u64, Listener>,
    next: u64,
    callbacks: Rc<CallbackQueue>,
    /// Changes are not reported (see [`Hub::hold_changes`]).
    held: bool,
}

impl Hub {
    /// A hub whose callbacks wait in `callbacks`.
    pub fn new(callbacks: Rc<CallbackQueue>) -> Hub {
        Hub {
            listeners: IdMap::new(),
            next: 1,
            callbacks,
            held: false,
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

    /// Subscribes `f` to the changes of live query `id` (following `query`).
    pub fn listen_live(
        &mut self,
        collection: &str,
        query: Rc<Query>,
        id: LiveId,
        f: Function,
    ) -> u64 {
        self.add(Listener::Live {
            collection: collection.to_owned(),
            query,
            id,
            f,
        })
    }

    /// Calls `f(ids)` at once whenever documents of the collection change.
    pub fn listen_invalidate(&mut self, collection: &str, f: Function) -> u64 {
        self.add(Listener::Invalidate(collection.to_owned(), f))
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

    /// Removes a subscriber; for a query's, returns the live query it followed.
    pub fn unlisten(&mut self, id: u64) -> Option<(String, LiveId)> {
        match self.listeners.remove(&id)? {
            Listener::Live { collection, id, .. } => Some((collection, id)),
            _ => None,
        }
    }

    /// The subscribers of queries: each one's id, collection and query.
    pub fn live_queries(&self) -> Vec<(u64, String, Rc<Query>)> {
        self.listeners
            .iter()
            .filter_map(|(listener, l)| match l {
                Listener::Live {
                    collection, query, ..
                } => Some((*listener, collection.clone(), query.clone())),
                _ => None,
            })
            .collect()
    }

    /// Moves a query's subscriber to live query `id` (of a new engine).
    pub fn relisten(&mut self, listener: u64, id: LiveId) {
        if let Some(Listener::Live { id: old, .. }) = self.listeners.get_mut(&listener) {
            *old = id;
        }
    }

    /// Tells one query's subscriber `changes` to its results.
    pub fn tell(&self, listener: u64, changes: &[DocChange]) {
        if let (Some(Listener::Live { f, .. }), false) =
            (self.listeners.get(&listener), changes.is_empty())
        {
            self.callbacks.call(f, views::changes(changes.iter()));
        }
    }

    /// Stops (`true`) or resumes reporting changes of documents and of query results: while a
    /// tab takes over, what its subscribers saw is compared with the new engine once, at the
    /// end, instead.
    pub fn hold_changes(&mut self, held: bool) {
        self.held = held;
    }

    /// Removes every subscriber.
    pub fn clear(&mut self) {
        self.listeners.clear();
    }

    /// Tells each collection's subscribers about its changes (caches first, at once).
    pub fn changes(&self, changes: &[DocChange]) {
        if self.held {
            return;
        }
        for listener in self.listeners.values() {
            if let Listener::Invalidate(name, f) = listener {
                let mut ids = String::from("[");
                for change in changes.iter().filter(|c| &c.collection == name) {
                    if ids.len() > 1 {
                        ids.push(',');
                    }
                    write_json_string(&mut ids, &change.id);
                }
                ids.push(']');
                if ids.len() > 2 {
                    let ids = js_sys::JSON::parse(&ids).expect("ids are JSON");
                    if let Err(e) = f.call1(&JsValue::UNDEFINED, &ids) {
                        web_sys::console::error_2(&"ferrosync: a cache update threw".into(), &e);
                    }
                }
            }
        }
        for listener in self.listeners.values() {
            if let Listener::Collection(name, f) = listener {
                let mut mine = changes.iter().filter(|c| &c.collection == name).peekable();
                if mine.peek().is_some() {
                    self.callbacks.call(f, views::changes(mine));
                }
            }
        }
    }

    /// Tells the subscribers of live queries about the changes to their results. Every list of
    /// a step crosses to JavaScript in one piece; those of one query share their array.
    pub fn live_changes(&self, live: &[LiveChanges]) {
        if self.held || live.is_empty() {
            return;
        }
        let told: Vec<(usize, &Function)> = self
            .listeners
            .values()
            .filter_map(|listener| match listener {
                Listener::Live {
                    collection, id, f, ..
                } => live
                    .iter()
                    .position(|l| l.id == *id && l.collection == *collection)
                    .map(|i| (i, f)),
                _ => None,
            })
            .collect();
        if told.is_empty() {
            return;
        }
        let lists = views::change_lists(live.iter().map(|l| l.changes.as_slice()));
        for (i, f) in told {
            self.callbacks.call(f, lists.get(i as u32));
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

    /// Tells the topic's subscribers its new value, built by `value` only if there are any
    /// (every received change moves the stats, and most engines have no one listening).
    pub fn topic(&self, topic: Topic, value: impl FnOnce() -> JsValue) {
        let mut told = self
            .listeners
            .values()
            .filter_map(|l| match l {
                Listener::Topic(t, f) if *t == topic => Some(f),
                _ => None,
            })
            .peekable();
        if told.peek().is_none() {
            return;
        }
        let value = value();
        for f in told {
            self.callbacks.call(f, value.clone());
        }
    }
}
