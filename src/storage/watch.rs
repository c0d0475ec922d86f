//! A second connection to the database that only listens. The browser closes every connection
//! when the site's data is cleared and fires `close` on each; rexie does not expose that event
//! on its own connection, so this one hears it for the engine. On `versionchange` (another tab
//! upgrading the schema) it closes itself, as rexie's connection does, so the upgrade can go on.

use futures::channel::oneshot;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::IdbDatabase;

/// The listening connection; dropping it closes it.
pub struct Watcher {
    db: IdbDatabase,
    _on_close: Closure<dyn FnMut()>,
    _on_version_change: Closure<dyn FnMut()>,
}

impl Watcher {
    /// Opens a connection to `name` (at its current version) that calls `on_close` when the
    /// browser closes it.
    pub async fn open(name: &str, on_close: impl Fn() + 'static) -> Result<Watcher, String> {
        let cannot = |why: &str| format!("cannot watch IndexedDB database `{name}`: {why}");
        let factory = web_sys::window()
            .and_then(|w| w.indexed_db().ok().flatten())
            .ok_or_else(|| cannot("IndexedDB is unavailable"))?;
        let request = factory
            .open(name)
            .map_err(|e| cannot(&crate::js::describe(&e)))?;
        let (sender, opened) = oneshot::channel::<bool>();
        let sender = Rc::new(RefCell::new(Some(sender)));
        let answer = |ok: bool| {
            let sender = sender.clone();
            Closure::<dyn FnMut()>::new(move || {
                if let Some(sender) = sender.borrow_mut().take() {
                    let _ = sender.send(ok);
                }
            })
        };
        let (on_success, on_error) = (answer(true), answer(false));
        request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
        request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let ok = opened.await.unwrap_or(false);
        request.set_onsuccess(None);
        request.set_onerror(None);
        if !ok {
            return Err(cannot("the connection was refused"));
        }
        let db: IdbDatabase = request
            .result()
            .map_err(|e| cannot(&crate::js::describe(&e)))?
            .unchecked_into();
        let on_close = Closure::<dyn FnMut()>::new(on_close);
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let closing = db.clone();
        let on_version_change = Closure::<dyn FnMut()>::new(move || closing.close());
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        Ok(Watcher {
            db,
            _on_close: on_close,
            _on_version_change: on_version_change,
        })
    }
}

impl Watcher {
    /// The listening connection, for probes (see `quota`).
    pub fn connection(&self) -> &IdbDatabase {
        &self.db
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.db.set_onclose(None);
        self.db.set_onversionchange(None);
        self.db.close();
    }
}
