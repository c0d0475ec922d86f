//! Opening an engine: this tab leads when the database's lock is free; otherwise it follows
//! the leading tab and waits in line for the lock, taking over when it is granted.

use super::follower::{Caller, Follower};
use super::leader::Leader;
use super::serving::Outcome;
use super::{Handle, Role, Shared, Source};
use crate::js;
use crate::options::{Options, StorageKind};
use crate::storage::Storage;
use crate::tabs::{self, Channel, Lock};
use ferrosync_core::collection::{ChangeKind, Collection, DocChange};
use ferrosync_core::document::Document;
use ferrosync_core::engine::{Engine, Input, Snapshot};
use ferrosync_core::Code;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsValue;

/// Opens the engine `options` describe, as leader or follower.
pub async fn open(options: Options, source: Option<Source>) -> Result<Shared, JsValue> {
    let tab = tabs::new_tab_id();
    // A memory database is this tab's own: it takes a lock and channel no other tab shares.
    let scope = match options.storage {
        StorageKind::IndexedDb => options.name.clone(),
        StorageKind::Memory => format!("{}#{tab}", options.name),
    };
    let Some(lock) = tabs::try_lock(&scope).await? else {
        return follow(options, source, tab).await;
    };
    let (storage, snapshot) = load(&options).await?;
    let engine = Engine::new(options.engine.clone()).map_err(js::core_error)?;
    let handle = Handle::new(|me, hub| {
        let channel = Channel::open(&scope, route(me.clone()))?;
        let leader = Leader::new(engine, hub, me, storage, source, tab, channel, lock);
        Ok(Box::new(leader))
    })?;
    handle
        .with(|role| role.leader().map(|l| begin(l, snapshot, &options)))?
        .transpose()?;
    Ok(handle)
}

/// Follows the leading tab: waits for its snapshot (or to lead, if it closes first).
async fn follow(options: Options, source: Option<Source>, tab: String) -> Result<Shared, JsValue> {
    let name = options.name.clone();
    let handle = Handle::new(|me, hub| {
        let channel = Channel::open(&name, route(me.clone()))?;
        Ok(Box::new(Follower::new(hub, tab, channel, options, source)))
    })?;
    let me = Rc::downgrade(&handle);
    let waiting = tabs::wait_for_lock(&name, move |lock| {
        wasm_bindgen_futures::spawn_local(take_over(me, lock));
    })?;
    let ready = handle.with(|role| {
        role.follower().map(|f| {
            f.waiting_lock = Some(waiting);
            f.ready()
        })
    })?;
    if let Some(ready) = ready {
        // Also ends when this tab takes over (the follower is gone).
        let _ = ready.await;
    }
    Ok(handle)
}

/// Opens the storage and reads what the engine starts from.
async fn load(options: &Options) -> Result<(Storage, Snapshot), JsValue> {
    let storage = Storage::open(&options.name, options.storage)
        .await
        .map_err(|e| js::error("StorageError", Code::StorageFailed, &e))?;
    let snapshot = storage
        .load()
        .await
        .map_err(|e| js::error("StorageError", Code::StorageFailed, &e))?;
    Ok((storage, snapshot))
}

/// Starts a leader: loads its engine, tells the other tabs, starts syncing.
fn begin(leader: &mut Leader, snapshot: Snapshot, options: &Options) -> Result<(), JsValue> {
    leader
        .input(Input::Loaded(snapshot))
        .map_err(js::core_error)?;
    leader.announce();
    if options.auto_start && (options.remote.is_some() || options.custom.is_some()) {
        leader.start_sync()?;
    }
    Ok(())
}

/// Routes a message from another tab to this tab's role.
fn route(me: Weak<Handle>) -> impl Fn(tabs::messages::TabMessage) + 'static {
    move |message| {
        if let Some(handle) = me.upgrade() {
            let _ = handle.with(|role| role.on_tab_message(message));
        }
    }
}

/// This follower was granted the lock: it opens the database and leads, finishing what it
/// had asked the old leader to do (commits it had recorded are recognised, not repeated).
async fn take_over(me: Weak<Handle>, lock: Lock) {
    let options = me.upgrade().and_then(|handle| {
        handle
            .with(|role| {
                role.follower()
                    .map(|f| (f.options.clone(), f.source.clone()))
            })
            .ok()
            .flatten()
    });
    // Returning without leading drops `lock`, which releases it.
    let Some((options, source)) = options else {
        return;
    };
    let opened = match load(&options).await {
        Ok(loaded) => Engine::new(options.engine.clone())
            .map(|engine| (engine, loaded))
            .map_err(js::core_error),
        Err(e) => Err(e),
    };
    let Some(handle) = me.upgrade() else {
        return;
    };
    let (engine, (storage, snapshot)) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            web_sys::console::error_2(&"ferrosync: this tab cannot take over".into(), &e);
            return;
        }
    };
    handle.replace(|role| {
        let follower = match role.into_follower() {
            Ok(follower) => follower,
            Err(leader) => {
                drop(lock);
                return Some(leader);
            }
        };
        let parts = follower.into_parts();
        let mut leader = Leader::new(
            engine,
            parts.hub,
            me.clone(),
            storage,
            source,
            parts.tab.clone(),
            parts.channel,
            lock,
        );
        if let Err(e) = begin(&mut leader, snapshot, &options) {
            // Unusable: say why, fail what waits, and let another tab lead.
            web_sys::console::error_2(&"ferrosync: this tab cannot take over".into(), &e);
            for (_, pending) in parts.pending {
                pending.caller.reject(e.clone());
            }
            leader.destroy();
            return None;
        }
        // Subscribers saw the mirror: they hear how the engine differs from it once it has
        // run this tab's unanswered requests, not every step on the way.
        leader.hub.hold_changes(true);
        rewatch(&mut leader);
        for (tx, settlement) in parts.settlements {
            leader.adopt_settlement(tx, settlement);
        }
        for (seq, pending) in parts.pending {
            let outcome = leader.run(&format!("{}:{seq}", parts.tab), pending.request);
            finish(&mut leader, outcome, pending.caller);
        }
        leader.hub.hold_changes(false);
        reconcile(&leader, &parts.mirror);
        Some(Box::new(leader))
    });
}

/// Follows the queries of the follower's subscribers in the new leader's engine.
fn rewatch(leader: &mut Leader) {
    for (listener, collection, query) in leader.hub.live_queries() {
        if let Ok(id) = leader.engine.watch(&collection, (*query).clone()) {
            leader.hub.relisten(listener, id);
        }
    }
}

/// Tells subscribers how the engine's documents, and their queries' results, differ from what
/// the mirror showed.
fn reconcile(leader: &Leader, mirror: &HashMap<String, Collection>) {
    leader.hub.changes(&differences(mirror, &leader.engine));
    for (listener, collection, query) in leader.hub.live_queries() {
        let before = mirror
            .get(&collection)
            .map(|c| c.find(&query))
            .unwrap_or_default();
        let after = leader
            .engine
            .collection(&collection)
            .map(|c| c.find(&query))
            .unwrap_or_default();
        leader
            .hub
            .tell(listener, &window_changes(&collection, &before, &after));
    }
}

/// Answers one of this tab's own requests that the old leader left unanswered.
fn finish(leader: &mut Leader, outcome: Outcome, caller: Caller) {
    let committed = match &outcome {
        Outcome::Durable(tx, _, finished) => {
            let settlement = leader.settlement(*tx).unwrap_or_default();
            if let Some(finished) = finished {
                settlement.settle(finished);
            }
            Some((*tx, settlement))
        }
        _ => None,
    };
    wasm_bindgen_futures::spawn_local(async move {
        let result = match outcome.reply().await {
            Some(result) => result,
            None => Err(js::destroyed()),
        };
        match (caller, committed) {
            (Caller::Commit(caller), Some(committed)) => caller.answer(result.map(|_| committed)),
            (Caller::Commit(caller), None) => caller.answer(result.and(Err(js::refusal(
                Code::InvalidState,
                "the commit was refused",
            )))),
            (Caller::Done(caller), _) => caller.answer(result.map(|_| ())),
        }
    });
}

/// What `mirror` shows differently from `engine`'s view (when a follower takes over).
fn differences(
    mirror: &HashMap<String, Collection>,
    engine: &ferrosync_core::engine::Engine,
) -> Vec<DocChange> {
    let mut changes = Vec::new();
    for (name, shown) in mirror {
        let Ok(actual) = engine.collection(name) else {
            continue;
        };
        for doc in actual.docs() {
            changes.extend(change(name, shown.get(doc.id()), Some(doc)));
        }
        for doc in shown.docs().filter(|d| actual.get(d.id()).is_none()) {
            changes.extend(change(name, Some(doc), None));
        }
    }
    changes
}

/// How a query's results `after` differ from its results `before` (when a follower takes over).
fn window_changes(collection: &str, before: &[&Document], after: &[&Document]) -> Vec<DocChange> {
    let old: HashMap<&str, &Document> = before.iter().map(|d| (d.id(), *d)).collect();
    let new: HashMap<&str, &Document> = after.iter().map(|d| (d.id(), *d)).collect();
    let gone = before
        .iter()
        .filter(|d| !new.contains_key(d.id()))
        .filter_map(|d| change(collection, Some(d), None));
    let came = after
        .iter()
        .filter_map(|d| change(collection, old.get(d.id()).copied(), Some(d)));
    gone.chain(came).collect()
}

/// The change from `old` to `new` of one document, if users can see one.
fn change(collection: &str, old: Option<&Document>, new: Option<&Document>) -> Option<DocChange> {
    let kind = match (old, new) {
        (None, Some(_)) => ChangeKind::Added,
        (Some(a), Some(b)) if a.fields() != b.fields() || a.deleted() != b.deleted() => {
            ChangeKind::Updated
        }
        (Some(_), None) => ChangeKind::Removed,
        _ => return None,
    };
    let doc = new.or(old).expect("one side exists");
    Some(DocChange {
        collection: collection.to_owned(),
        id: doc.id().to_owned(),
        kind,
        doc: new.cloned(),
    })
}
