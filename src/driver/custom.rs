//! A custom backend as the leading tab runs it: the application's `sync.setup` and `onUpdate`
//! feed remote documents to the engine, and the engine's `Call` effects become calls to
//! `mutationFn.persist` and `mutationFn.awaitSync`.

use super::leader::Leader;
use super::Handle;
use crate::js;
use ferrosync_core::engine::{remote_documents, Call, CallOutcome, CallStep, Input};
use js_sys::{Function, Object, Promise};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The error name that makes a failure final instead of retried.
const NON_RETRIABLE: &str = "NonRetriableError";

/// The `onUpdate(data, { complete })` function handed to `sync.setup`.
pub type OnUpdate = Closure<dyn Fn(JsValue, JsValue) -> Result<(), JsValue>>;

/// The application's functions (from `sync` and `mutationFn`).
pub struct CustomBackend {
    /// The `sync` object as given, handed to `awaitSync` as `sync`.
    sync: JsValue,
    /// `sync.id`, which the source's errors name.
    id: String,
    setup: Option<Function>,
    persist: Option<Function>,
    await_sync: Option<Function>,
}

impl CustomBackend {
    /// Reads the functions of `config.sync` and `config.mutationFn` (`None` when neither is set).
    pub fn from_config(config: &JsValue) -> Result<Option<CustomBackend>, JsValue> {
        let sync = js::get(config, "sync");
        let mutation_fn = js::get(config, "mutationFn");
        let backend = CustomBackend {
            setup: js::function(&sync, "setup")?,
            persist: js::function(&mutation_fn, "persist")?,
            await_sync: js::function(&mutation_fn, "awaitSync")?,
            id: js::get(&sync, "id").as_string().unwrap_or_default(),
            sync,
        };
        let any =
            backend.setup.is_some() || backend.persist.is_some() || backend.await_sync.is_some();
        Ok(any.then_some(backend))
    }

    /// Which functions are present, for the pure config checks.
    pub fn present(backend: Option<&CustomBackend>) -> crate::options::BackendFunctions {
        crate::options::BackendFunctions {
            setup: backend.is_some_and(|b| b.setup.is_some()),
            persist: backend.is_some_and(|b| b.persist.is_some()),
            await_sync: backend.is_some_and(|b| b.await_sync.is_some()),
        }
    }
}

impl Leader {
    /// Runs `sync.setup({ onUpdate })` (if any) and, once it resolves, hands its data to the
    /// engine and lets transactions be persisted. `generation` tells this run from later ones.
    pub(super) fn start_custom(&mut self, backend: Rc<CustomBackend>, generation: u64) {
        let me = self.me.clone();
        let Some(setup) = backend.setup.clone() else {
            self.custom_ready(generation, None);
            return;
        };
        let synced: Vec<String> = self.synced_collections();
        let on_update = {
            let (me, synced, id) = (me.clone(), synced.clone(), backend.id.clone());
            OnUpdate::new(move |data: JsValue, options: JsValue| {
                let complete = js::get(&options, "complete").as_bool() == Some(true);
                let input = remote_input(&data, &synced, complete, &id)?;
                if let Some(handle) = me.upgrade() {
                    handle.with_leader(|l| {
                        if l.link.current() == Some(generation) {
                            l.feed(input);
                        }
                    });
                }
                Ok(())
            })
        };
        let arg = Object::new();
        js::set(&arg, "onUpdate", on_update.as_ref());
        self.link.on_update = Some(on_update);
        wasm_bindgen_futures::spawn_local(async move {
            let result = match setup.call1(&backend.sync, &arg) {
                Ok(value) => JsFuture::from(Promise::resolve(&value)).await,
                Err(e) => Err(e),
            };
            let input = result.and_then(|value| {
                let data = js::get(&value, "data");
                if data.is_undefined() {
                    return Ok(None);
                }
                remote_input(&data, &synced, true, &backend.id).map(Some)
            });
            let Some(handle) = me.upgrade() else {
                return;
            };
            handle.with_leader(|l| match input {
                Ok(input) => l.custom_ready(generation, input),
                Err(e) => l.custom_failed(
                    generation,
                    &format!(
                        "sync source \"{}\": setup failed: {}",
                        backend.id,
                        js::describe(&e)
                    ),
                ),
            });
        });
    }

    /// Calls the function the engine asked for, and feeds its outcome back.
    pub(super) fn call(&mut self, backend: &Rc<CustomBackend>, call: Call) {
        let Some(tx) = self.engine.transaction(call.tx) else {
            return;
        };
        let function = match call.step {
            CallStep::Persist => backend.persist.clone(),
            CallStep::AwaitSync => backend.await_sync.clone(),
        };
        let arg = Object::new();
        js::set(
            &arg,
            "changes",
            &js::to_js(&js::Json(&self.engine.call_changes(call.tx))),
        );
        js::set(&arg, "transaction", &crate::views::transaction(tx));
        js::set(&arg, "attempt", &JsValue::from(call.attempt));
        if call.step == CallStep::AwaitSync {
            js::set(&arg, "sync", &backend.sync);
            let confirm = tx
                .confirm
                .as_ref()
                .map_or(JsValue::UNDEFINED, |c| js::to_js(&js::Json(c)));
            js::set(&arg, "confirm", &confirm);
        }
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = match function {
                Some(function) => match function.call1(&JsValue::UNDEFINED, &arg) {
                    Ok(value) => JsFuture::from(Promise::resolve(&value)).await,
                    Err(e) => Err(e),
                },
                None => Ok(JsValue::UNDEFINED),
            };
            answer(&me, call, result);
        });
    }
}

/// Feeds a call's result to the engine: resolved (with any `externalIds`, and for `persist`
/// any `confirm`), or rejected.
fn answer(me: &Weak<Handle>, call: Call, result: Result<JsValue, JsValue>) {
    let Some(handle) = me.upgrade() else {
        return;
    };
    handle.with_leader(|l| {
        let outcome = match result {
            Ok(value) => {
                let what = match call.step {
                    CallStep::Persist => "persist's result",
                    CallStep::AwaitSync => "awaitSync's result",
                };
                let parsed = if value.is_object() {
                    js::to_json(&value, what).and_then(|mut json| {
                        let confirm = match call.step {
                            CallStep::Persist => json
                                .as_object_mut()
                                .and_then(|o| o.remove("confirm"))
                                .filter(|c| !c.is_null()),
                            CallStep::AwaitSync => None,
                        };
                        l.engine
                            .external_ids(call.tx, &json)
                            .map(|external_ids| (external_ids, confirm))
                            .map_err(js::core_error)
                    })
                } else {
                    Ok((Vec::new(), None))
                };
                match parsed {
                    Ok((external_ids, confirm)) => CallOutcome::Done {
                        external_ids,
                        confirm,
                    },
                    Err(e) => CallOutcome::Failed {
                        message: js::describe(&e),
                        retryable: false,
                    },
                }
            }
            Err(e) => CallOutcome::Failed {
                retryable: js::get(&e, "name").as_string().as_deref() != Some(NON_RETRIABLE),
                message: reason(&e),
            },
        };
        l.feed(Input::Called { call, outcome });
    });
}

/// A rejection as a transaction's error: an `Error`'s message, or the value's string form.
fn reason(error: &JsValue) -> String {
    match error.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => js::describe(error),
    }
}

/// The engine input for the data of sync source `source`, which its errors name.
fn remote_input(
    data: &JsValue,
    synced: &[String],
    complete: bool,
    source: &str,
) -> Result<Input, JsValue> {
    let names: Vec<&str> = synced.iter().map(String::as_str).collect();
    let (docs, covered) =
        remote_documents(js::to_json(data, "the sync data")?, &names).map_err(|e| {
            js::error(
                "TypeError",
                e.code(),
                &format!("sync source \"{source}\": {e}"),
            )
        })?;
    Ok(Input::Remote {
        docs,
        complete: complete.then_some(covered),
    })
}
