//! The leading tab's connection. The core engine decides when to connect, to which server, and
//! when to give up on a connection (`Connect`, `Disconnect`, reconnect backoff); this module
//! opens what it asks for (a WebSocket or HTTP polling to the reference server, or a run of the
//! custom backend's `setup`), drops it when told, and hands what happens on it back to the
//! engine as inputs. It also tells the engine when the browser goes online or offline.

use super::custom::OnUpdate;
use super::leader::Leader;
use super::Source;
use crate::js;
use crate::transport::{Connection, Event};
use ferrosync_core::engine::Input;
use ferrosync_core::Code;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// Why an engine without `serverUrl` or custom backend cannot sync.
pub(super) const NO_SOURCE: &str =
    "this engine has no serverUrl or custom backend, so it cannot sync";

/// A browser event listener and the event it listens to.
type WindowListener = (&'static str, Closure<dyn FnMut()>);

/// The connection the engine asked for, if any.
#[derive(Default)]
pub(super) struct Link {
    /// Numbers the connections opened, so events of one already dropped are ignored.
    generation: u64,
    /// The generation of the connection open or opening (`None`: none is).
    current: Option<u64>,
    /// The WebSocket or poller.
    connection: Option<Connection>,
    /// The `onUpdate` function handed to the custom backend's `setup`, kept alive while that
    /// run is current.
    pub on_update: Option<OnUpdate>,
    /// The browser's `online`/`offline` listeners.
    online_listeners: Vec<WindowListener>,
}

impl Link {
    /// The current connection's generation (or run of the custom backend's `setup`), if any.
    pub fn current(&self) -> Option<u64> {
        self.current
    }

    /// Sends messages on the connection, if one is open.
    pub fn send(&self, messages: Vec<ferrosync_core::protocol::ClientMessage>) {
        if let Some(connection) = &self.connection {
            connection.send(messages);
        }
    }
}

impl Leader {
    /// `start()`: the engine asks for a connection, and for another after each loss.
    pub fn start_sync(&mut self) -> Result<(), JsValue> {
        if self.source.is_none() {
            return Err(js::refusal(Code::InvalidState, NO_SOURCE));
        }
        if matches!(self.source, Some(Source::Server(_))) && self.link.online_listeners.is_empty() {
            self.watch_online();
            if !browser_online() {
                self.feed(Input::Network { online: false });
            }
        }
        self.feed(Input::Start);
        Ok(())
    }

    /// `stop()`: the engine drops the connection; local reads and writes go on.
    pub fn stop_sync(&mut self) {
        self.feed(Input::Stop);
    }

    /// Opens the connection the engine asked for (`Connect`): server number `server`, or a run
    /// of the custom backend's `setup`.
    pub(super) fn open_link(&mut self, server: usize) {
        self.close_link();
        let link = &mut self.link;
        link.generation += 1;
        link.current = Some(link.generation);
        let (generation, me) = (link.generation, self.me.clone());
        match self.source.clone() {
            Some(Source::Server(remote)) => {
                let events = Rc::new(move |event| {
                    if let Some(handle) = me.upgrade() {
                        handle.with_leader(|l| l.connection_event(generation, event));
                    }
                });
                let client_id = self.engine.client_id();
                self.link.connection = Some(Connection::open(&remote, server, client_id, events));
            }
            Some(Source::Custom(backend)) => self.start_custom(backend, generation),
            None => {}
        }
    }

    /// Drops the connection (`Disconnect`): nothing more is heard from it.
    pub(super) fn close_link(&mut self) {
        self.link.current = None;
        self.link.connection = None;
        self.link.on_update = None;
    }

    fn connection_event(&mut self, generation: u64, event: Event) {
        if self.link.current != Some(generation) {
            return;
        }
        match event {
            Event::Open { live } => self.feed(Input::Connected { live }),
            Event::Received(messages) => {
                for message in messages {
                    self.feed(Input::Server(message));
                }
            }
            Event::Closed { reason } => {
                self.close_link();
                self.feed(Input::Disconnected { reason });
            }
        }
    }

    /// The custom backend's `setup` run `generation` resolved: its data (if any) goes in, and
    /// transactions may be persisted.
    pub(super) fn custom_ready(&mut self, generation: u64, data: Option<Input>) {
        if self.link.current != Some(generation) {
            return;
        }
        if let Some(data) = data {
            self.feed(data);
        }
        self.feed(Input::BackendReady);
    }

    /// The custom backend's `setup` run `generation` failed: the engine asks again after a
    /// backoff.
    pub(super) fn custom_failed(&mut self, generation: u64, reason: &str) {
        if self.link.current != Some(generation) {
            return;
        }
        self.close_link();
        web_sys::console::error_1(&format!("ferrosync: {reason}").into());
        self.feed(Input::Disconnected {
            reason: reason.into(),
        });
    }

    /// Tells the engine when the browser goes online or offline.
    fn watch_online(&mut self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        for (event, online) in [("online", true), ("offline", false)] {
            let me = self.me.clone();
            let callback = Closure::<dyn FnMut()>::new(move || {
                if let Some(handle) = me.upgrade() {
                    handle.with_leader(|l| l.feed(Input::Network { online }));
                }
            });
            let _ =
                window.add_event_listener_with_callback(event, callback.as_ref().unchecked_ref());
            self.link.online_listeners.push((event, callback));
        }
    }

    /// Stops listening to the browser's `online`/`offline` events.
    pub(super) fn unwatch_online(&mut self) {
        if let Some(window) = web_sys::window() {
            for (event, callback) in self.link.online_listeners.drain(..) {
                let _ = window
                    .remove_event_listener_with_callback(event, callback.as_ref().unchecked_ref());
            }
        }
    }
}

fn browser_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}
