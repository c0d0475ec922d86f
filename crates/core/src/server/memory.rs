//! The in-memory server: the rules of [`super::apply_push`] over maps.

use super::{
    apply_push, page, ClientRecord, MutationCheck, PushCommit, PushRequest, ServerDoc, ServerView,
};
use crate::protocol::{Change, ErrorInfo, Outcome};
use crate::{ClientId, MutationId, Version};
use std::collections::{BTreeMap, HashMap};

/// One tenant's server state in memory: the reference for tests and the simulation, and the
/// model the storage-backed server must behave like.
#[derive(Debug, Clone, Default)]
pub struct MemoryServer {
    docs: HashMap<(String, String), ServerDoc>,
    by_version: BTreeMap<Version, (String, String)>,
    clients: HashMap<ClientId, ClientRecord>,
    outcomes: HashMap<(ClientId, MutationId), Outcome>,
    head: Version,
}

impl ServerView for MemoryServer {
    fn client(&self, client: &str) -> Option<ClientRecord> {
        self.clients.get(client).cloned()
    }
    fn document(&self, collection: &str, id: &str) -> Option<ServerDoc> {
        self.docs
            .get(&(collection.to_owned(), id.to_owned()))
            .cloned()
    }
    fn outcome(&self, client: &str, id: MutationId) -> Option<Outcome> {
        self.outcomes.get(&(client.to_owned(), id)).cloned()
    }
}

impl MemoryServer {
    /// An empty server.
    pub fn new() -> Self {
        Self::default()
    }

    /// The newest committed version.
    pub fn head(&self) -> Version {
        self.head
    }

    /// The last mutation id processed for a client.
    pub fn last_mutation_id(&self, client: &str) -> MutationId {
        self.clients.get(client).map_or(0, |c| c.last_mutation_id)
    }

    /// Every stored document.
    pub fn documents(&self) -> impl Iterator<Item = &ServerDoc> {
        self.docs.values()
    }

    /// Applies a push and commits it; returns the commit (its results and range).
    pub fn push(
        &mut self,
        req: PushRequest<'_>,
        check: MutationCheck<'_>,
    ) -> Result<PushCommit, ErrorInfo> {
        let req = PushRequest {
            head: self.head,
            ..req
        };
        let commit = apply_push(self, req, check)?;
        self.commit(req.client_id, &commit);
        Ok(commit)
    }

    /// Stores what [`apply_push`] decided, as one atomic step.
    pub fn commit(&mut self, client_id: &str, commit: &PushCommit) {
        for write in &commit.writes {
            let key = (write.collection.clone(), write.doc.id().to_owned());
            if let Some(old) = self.docs.insert(key.clone(), write.clone()) {
                self.by_version.remove(&old.doc.version());
            }
            self.by_version.insert(write.doc.version(), key);
        }
        for r in &commit.outcomes {
            self.outcomes
                .insert((client_id.to_owned(), r.id), r.outcome.clone());
        }
        self.clients
            .insert(client_id.to_owned(), commit.client.clone());
        self.head = self.head.max(commit.head);
    }

    /// The changes after `cursor`: at most `limit`, the next cursor, and whether more wait.
    pub fn pull(&self, cursor: Version, limit: usize) -> (Vec<Change>, Version, bool) {
        let rows = self
            .by_version
            .range(cursor + 1..)
            .take(limit + 1)
            .map(|(_, key)| {
                let stored = &self.docs[key];
                Change {
                    collection: stored.collection.clone(),
                    doc: stored.doc.clone(),
                }
            })
            .collect();
        page(rows, cursor, limit)
    }
}
