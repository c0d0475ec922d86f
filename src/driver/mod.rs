//! The driver: runs the core engine in the page.
//!
//! Everything runs on the page's one thread. [`Handle`] owns the engine's [`Role`] in a
//! `RefCell`: the [`Leader`] (this tab holds the database's lock: it feeds inputs to the core
//! engine and executes its effects) or a [`Follower`] (another tab leads: it mirrors the
//! leader's state and forwards calls). Every entry point borrows the role, acts, and releases
//! it; user callbacks queued meanwhile run only after that, so user code never re-enters a
//! borrowed engine. Tasks (a storage write, a connection, a tab message) report back through a
//! `Weak<Handle>`.
//!
//! Modules, by layer: `role` (what the API calls, whichever tab leads); `leading` and
//! `forwarding` (what the leading and a following tab do when called); `leader` (the one loop:
//! an input in, its effects out), `batching` (when batched storage writes go), `durability`
//! (commits and their settlements), `connection` (the connection the engine asks for), `custom`
//! (custom backends), `serving` (requests from other tabs); `follower` (the mirror of the
//! leading tab); `opening` (leading, following, taking over); `hub` (subscribers), `pending`
//! (every wait), `settlement` (a transaction's end).

mod batching;
mod connection;
mod custom;
mod durability;
mod follower;
mod forwarding;
mod hub;
mod leader;
mod leading;
mod opening;
mod pending;
mod role;
mod serving;
mod settlement;

pub use custom::CustomBackend;
pub use follower::Follower;
pub use hub::{CallbackQueue, Hub, Topic};
pub use leader::Leader;
pub use opening::open;
pub use pending::{wait, Answer};
pub use role::{Committed, Role};
pub use settlement::Settlement;

use crate::js;
use ferrosync_core::Code;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsValue;

/// Where the leading tab syncs.
#[derive(Clone)]
pub enum Source {
    /// The reference server.
    Server(crate::options::Remote),
    /// The application's own functions.
    Custom(Rc<CustomBackend>),
}

/// The engine and its driver, shared by the JavaScript objects and the tasks.
pub struct Handle {
    /// This tab's role (`None` once destroyed).
    role: RefCell<Option<Box<dyn Role>>>,
    callbacks: Rc<CallbackQueue>,
}

/// What JavaScript objects hold.
pub type Shared = Rc<Handle>;

impl Handle {
    /// A handle around the role `build` makes (given its weak self-reference and hub).
    pub fn new(
        build: impl FnOnce(Weak<Handle>, Hub) -> Result<Box<dyn Role>, JsValue>,
    ) -> Result<Shared, JsValue> {
        let callbacks = Rc::new(CallbackQueue::default());
        let mut failed = None;
        let handle = Rc::new_cyclic(|me| {
            let role = build(me.clone(), Hub::new(callbacks.clone()))
                .map_err(|e| failed = Some(e))
                .ok();
            Handle {
                role: RefCell::new(role),
                callbacks,
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(handle),
        }
    }

    /// Runs `f` on the role, then the callbacks it queued.
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn Role) -> R) -> Result<R, JsValue> {
        let result = {
            let mut role = self.role.try_borrow_mut().map_err(|_| {
                js::refusal(
                    Code::InvalidState,
                    "the engine cannot be called from inside conflictResolver or merge; they \
                     must be pure",
                )
            })?;
            let role = role.as_deref_mut().ok_or_else(js::destroyed)?;
            f(role)
        };
        self.callbacks.drain();
        Ok(result)
    }

    /// Runs `f` if this tab leads (tasks of a leader use it; they stop mattering otherwise).
    pub fn with_leader(&self, f: impl FnOnce(&mut Leader)) {
        let _ = self.with(|role| role.leader().map(f));
    }

    /// Replaces the role (a follower taking over as leader; `None`: it could not).
    pub fn replace(&self, f: impl FnOnce(Box<dyn Role>) -> Option<Box<dyn Role>>) {
        if let Ok(mut role) = self.role.try_borrow_mut() {
            *role = role.take().and_then(f);
        }
        self.callbacks.drain();
    }

    /// Stops everything; later calls fail. Idempotent.
    pub fn destroy(&self) {
        self.replace(|mut role| {
            role.destroy();
            None
        });
    }
}
