//! Fuzzes the engine's inbound handling: each input is a server frame, read as the WebSocket
//! transport reads it (`protocol::server_frame`) and fed message by message to an engine that
//! has local writes on the wire. Checked for every frame: no panic, bounded allocation, an
//! unreadable frame is a parse error with a message, every message is handled without error,
//! the cursor never goes back, a local-only collection is never touched, a finished
//! transaction stays finished, a message answering nothing the engine sent changes nothing,
//! and what the engine persisted reloads to what it shows.

mod common;

use arbitrary::Arbitrary;
use bolero::check;
use common::{allocation_bound, T0, TEST_TIME};
use ferrosync_core::document::{parse_document, parse_patch, Document};
use ferrosync_core::engine::{
    CollectionConfig, Effect, Engine, EngineConfig, Input, MemoryStore, Snapshot,
};
use ferrosync_core::mutation::{MutationRequest, Op};
use ferrosync_core::protocol::{server_frame, ClientMessage, Outcome, ServerMessage, MAX_WIRE_INT};
use ferrosync_core::transaction::{TxId, TxState};
use ferrosync_fuzz::{alloc, frame_text, server::ServerFrame};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

#[test]
fn any_server_frame_is_handled_within_the_invariants() {
    check!().with_test_time(TEST_TIME).for_each(|bytes: &[u8]| {
        let mut client = Client::new();
        let id = client.engine.client_id().to_owned();
        let Some(text) = frame_text(bytes, |u| Ok(ServerFrame::arbitrary(u)?.text(&id, T0))) else {
            return;
        };
        // The corpus's frames name the engine's client as `$client_id`.
        let text = text.replace("$client_id", &id);
        let (messages, peak) = alloc::peak_during(|| server_frame(&text));
        assert!(
            peak <= allocation_bound(text.len()),
            "{peak} bytes held at once to read a frame of {} bytes",
            text.len()
        );
        let Ok(messages) = messages.map_err(|e| assert!(!e.to_string().is_empty())) else {
            return;
        };
        for message in messages {
            let ((), peak) = alloc::peak_during(|| client.receive(message));
            assert!(
                peak <= allocation_bound(text.len()),
                "{peak} bytes held at once for a message of a {}-byte frame",
                text.len()
            );
        }
        client.check_reload();
    });
}

/// An engine with `todos` and `notes` synced and `cache` local, its storage, and what it sent.
struct Client {
    engine: Engine,
    store: MemoryStore,
    now: u64,
    /// The `seq` of every request sent.
    seqs: BTreeSet<u64>,
    /// The id of every mutation sent.
    mutation_ids: BTreeSet<u64>,
    /// Each transaction's last state seen.
    states: BTreeMap<TxId, TxState>,
}

impl Client {
    /// An engine loaded from `snapshot` at `now`.
    fn loaded(snapshot: Snapshot, now: u64) -> Self {
        let sync = |name: &str, sync| CollectionConfig {
            name: name.into(),
            sync,
            indexes: Vec::new(),
        };
        let config = EngineConfig {
            collections: vec![
                sync("todos", true),
                sync("notes", true),
                sync("cache", false),
            ],
            seed: 7,
            ..EngineConfig::default()
        };
        let mut client = Client {
            engine: Engine::new(config).expect("a valid config"),
            store: MemoryStore::default(),
            now,
            seqs: BTreeSet::new(),
            mutation_ids: BTreeSet::new(),
            states: BTreeMap::new(),
        };
        client.input(Input::Loaded(snapshot));
        client
    }

    /// Loaded, with three transactions durable (one on the local-only collection), connected.
    fn new() -> Self {
        let mut client = Client::loaded(Default::default(), T0);
        let insert = |collection: &str, doc| {
            let (doc_id, fields) = parse_document(doc).expect("a valid document");
            MutationRequest {
                collection: collection.into(),
                doc_id,
                op: Op::Insert { fields },
                metadata: None,
            }
        };
        client.input(Input::commit(vec![
            insert("todos", json!({"_id": "a", "title": "one"})),
            insert("notes", json!({"_id": "b", "text": "two"})),
        ]));
        client.input(Input::commit(vec![MutationRequest {
            collection: "todos".into(),
            doc_id: "a".into(),
            op: Op::Update {
                patch: parse_patch(json!({"title": "three"})).expect("a valid patch"),
            },
            metadata: None,
        }]));
        client.input(Input::commit(vec![insert(
            "cache",
            json!({"_id": "c", "n": 1}),
        )]));
        client.input(Input::Connected { live: true });
        client
    }

    /// Feeds `input`, then runs its effects: storage writes complete at once, and what is sent
    /// is noted.
    fn input(&mut self, input: Input) {
        let mut inputs = vec![input];
        while let Some(input) = inputs.pop() {
            let step = self
                .engine
                .handle(input, self.now)
                .unwrap_or_else(|e| panic!("an input refused: {e}"));
            for effect in step.effects {
                match effect {
                    Effect::Persist(write) => {
                        self.store.apply(&write);
                        inputs.push(Input::Persisted { token: write.token });
                    }
                    Effect::Send(ClientMessage::Push { seq, transactions }) => {
                        self.seqs.insert(seq);
                        let ids = transactions.iter().flat_map(|t| &t.mutations);
                        self.mutation_ids.extend(ids.map(|m| m.id));
                    }
                    Effect::Send(ClientMessage::Pull { seq, .. }) => {
                        self.seqs.insert(seq);
                    }
                    _ => {}
                }
            }
            self.check_transactions();
        }
    }

    /// Handles a server message and checks what it did.
    fn receive(&mut self, message: ServerMessage) {
        let answers_nothing = self.answers_nothing(&message);
        let before = self.view();
        self.now += 1;
        self.input(Input::Server(message));
        let after = self.view();
        assert!(after.0 >= before.0, "the cursor went back");
        assert_eq!(
            after.2, before.2,
            "a server message changed a local-only collection"
        );
        if answers_nothing {
            assert_eq!(
                after, before,
                "a message answering nothing changed the state"
            );
        }
    }

    /// Whether `message` is one the engine must ignore: an answer to a request it never sent,
    /// or a welcome to another client or leaving no mutation id to send.
    fn answers_nothing(&self, message: &ServerMessage) -> bool {
        match message {
            ServerMessage::Welcome {
                client_id,
                last_mutation_id,
                ..
            } => client_id != self.engine.client_id() || *last_mutation_id >= MAX_WIRE_INT,
            ServerMessage::PullPage { seq, .. } => !self.seqs.contains(seq),
            ServerMessage::Error { seq: Some(seq), .. } => !self.seqs.contains(seq),
            ServerMessage::PushResult { seq, results, .. } => {
                !self.seqs.contains(seq)
                    && results.iter().all(|r| !self.mutation_ids.contains(&r.id))
                    && results
                        .iter()
                        .all(|r| matches!(r.outcome, Outcome::Rejected { .. }))
            }
            _ => false,
        }
    }

    /// The cursor, the synced collections' documents and the local-only one's.
    fn view(&self) -> (u64, Vec<Document>, Vec<Document>) {
        let docs = |name: &str| -> Vec<Document> {
            let collection = self.engine.collection(name).expect("configured");
            collection.docs().cloned().collect()
        };
        let mut synced = docs("todos");
        synced.extend(docs("notes"));
        (self.engine.cursor(), synced, docs("cache"))
    }

    /// A finished transaction (completed or failed) stays as it finished.
    fn check_transactions(&mut self) {
        for tx in self.engine.transactions() {
            if let Some(before) = self.states.insert(tx.id, tx.state) {
                assert!(
                    !before.is_terminal() || before == tx.state,
                    "{} went from {before:?} to {:?}",
                    tx.id,
                    tx.state
                );
            }
        }
    }

    /// A new engine loaded from what this one stored shows the same documents and cursor.
    fn check_reload(&self) {
        let again = Client::loaded(self.store.snapshot(), self.now);
        assert_eq!(
            again.view(),
            self.view(),
            "what the engine stored reloads differently"
        );
    }
}
