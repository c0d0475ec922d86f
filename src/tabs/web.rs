//! The browser side of tab coordination: the database's Web Lock and its `BroadcastChannel`.

use super::messages::TabMessage;
use js_sys::{Function, Object, Promise};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, BroadcastChannel, MessageEvent};

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, options, callback)`.
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request, catch)]
    fn request_lock(name: &str, options: &JsValue, callback: &JsValue) -> Result<Promise, JsValue>;
}

/// The lock and channel names of a database.
fn name_of(database: &str) -> String {
    format!("ferrosync:{database}")
}

/// A held lock; dropping it (or closing the tab) lets the next tab have it.
pub struct Lock {
    release: Function,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::UNDEFINED);
    }
}

/// Asks for `database`'s lock; `on_acquired` gets it (or `None` when `if_available` and it is
/// taken). The lock is held until released. The returned controller cancels a waiting request.
fn request(
    database: &str,
    if_available: bool,
    on_acquired: impl FnOnce(Option<Lock>) + 'static,
) -> Result<AbortController, JsValue> {
    let controller = AbortController::new()?;
    let options = Object::new();
    crate::js::set(&options, "ifAvailable", &if_available.into());
    if !if_available {
        crate::js::set(&options, "signal", &controller.signal().into());
    }
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        if lock.is_null() {
            on_acquired(None);
            return JsValue::UNDEFINED;
        }
        let mut release = None;
        let held = Promise::new(&mut |resolve, _| release = Some(resolve));
        on_acquired(release.map(|release| Lock { release }));
        held.into()
    });
    let pending = request_lock(&name_of(database), &options, &callback)?;
    // Settles when the lock is released, or rejects when a waiting request is cancelled.
    wasm_bindgen_futures::spawn_local(async move {
        let _ = JsFuture::from(pending).await;
    });
    Ok(controller)
}

/// Takes `database`'s lock if no other tab holds it.
pub async fn try_lock(database: &str) -> Result<Option<Lock>, JsValue> {
    let (tx, rx) = futures::channel::oneshot::channel();
    request(database, true, move |lock| {
        let _ = tx.send(lock);
    })?;
    Ok(rx.await.ok().flatten())
}

/// Waits for `database`'s lock in the background; `on_acquired` runs once this tab has it.
/// Aborting the returned controller withdraws the request.
pub fn wait_for_lock(
    database: &str,
    on_acquired: impl FnOnce(Lock) + 'static,
) -> Result<AbortController, JsValue> {
    request(database, false, move |lock| {
        if let Some(lock) = lock {
            on_acquired(lock);
        }
    })
}

/// A database's `BroadcastChannel`; dropping it closes the channel.
pub struct Channel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Channel {
    /// Opens the channel; `receive` gets every message from the other tabs.
    pub fn open(
        database: &str,
        receive: impl Fn(TabMessage) + 'static,
    ) -> Result<Rc<Channel>, JsValue> {
        let channel = BroadcastChannel::new(&name_of(database))?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(message) = event
                .data()
                .as_string()
                .as_deref()
                .and_then(TabMessage::decode)
            {
                receive(message);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Ok(Rc::new(Channel {
            channel,
            _on_message: on_message,
        }))
    }

    /// Sends to every other tab.
    pub fn post(&self, message: &TabMessage) {
        if let Err(e) = self
            .channel
            .post_message(&JsValue::from_str(&message.encode()))
        {
            web_sys::console::error_2(&"ferrosync: cannot reach the other tabs".into(), &e);
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

/// A fresh id for this tab's engine.
pub fn new_tab_id() -> String {
    format!(
        "tab-{:x}-{:x}",
        crate::js::now(),
        (js_sys::Math::random() * 4_294_967_296.0) as u64
    )
}
