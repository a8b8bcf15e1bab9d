//! Change announcements: a tool (or any code holding the server) says that the tool, prompt or
//! resource list changed or that a resource was updated, and every open 2026-07-28
//! `subscriptions/listen` stream on this instance that asked for it hears about it. Also carries
//! the shutdown signal those long-lived streams end on.

use std::sync::OnceLock;

use tokio::sync::{broadcast, mpsc, watch};

/// One announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ToolsListChanged,
    PromptsListChanged,
    ResourcesListChanged,
    /// The resource with this URI changed and may be read again.
    ResourceUpdated(String),
}

impl Change {
    /// The notification method that carries it.
    pub fn method(&self) -> &'static str {
        match self {
            Change::ToolsListChanged => "notifications/tools/list_changed",
            Change::PromptsListChanged => "notifications/prompts/list_changed",
            Change::ResourcesListChanged => "notifications/resources/list_changed",
            Change::ResourceUpdated(_) => "notifications/resources/updated",
        }
    }
}

/// Announcements a slow stream may fall behind by before it is told "everything changed".
const BACKLOG: usize = 256;

/// The hub: publishers send, listen streams subscribe.
pub struct Changes {
    tx: broadcast::Sender<Change>,
    closing: watch::Sender<bool>,
    /// Where this instance's announcements also go, to reach other instances (`shared`).
    relay: OnceLock<mpsc::UnboundedSender<Change>>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: broadcast::channel(BACKLOG).0,
            closing: watch::channel(false).0,
            relay: OnceLock::new(),
        }
    }
}

impl Changes {
    /// Announces a change to every current listener (none is fine), on this instance and,
    /// with a shared store, on every other.
    pub fn publish(&self, change: Change) {
        log::debug!("change announced: {}", change.method());
        if let Some(relay) = self.relay.get() {
            let _ = relay.send(change.clone());
        }
        self.deliver(change);
    }

    /// Hands a change to this instance's listeners only (one relayed from another instance).
    pub fn deliver(&self, change: Change) {
        let _ = self.tx.send(change);
    }

    /// Also sends every announcement made here to `relay` (set once, at startup).
    pub fn relay_to(&self, relay: mpsc::UnboundedSender<Change>) {
        let _ = self.relay.set(relay);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// Tells every listen stream to end with its final result (graceful shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Becomes true when the server shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}
