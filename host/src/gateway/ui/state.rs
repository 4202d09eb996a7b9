//! What every view and the guard share.

use std::sync::Arc;

use plughost_registry::ledger::{Ledger, Verification};

use crate::gateway::Gateway;

#[derive(Clone)]
pub(super) struct Ui {
    pub gateway: Arc<Gateway>,
    /// The page's own connections to `ledger.db`: its queries never wait on (or hold) the call path's reader.
    pub ledger: Option<Arc<Ledger>>,
    pub token: Option<Arc<str>>,
    pub allowed_hosts: Arc<[String]>,
    pub allowed_origins: Arc<[String]>,
    pub live: Arc<tokio::sync::Semaphore>,
    /// Ends the live streams when the gateway shuts down (they would hold its graceful shutdown open).
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The last verification the ledger view ran, and the lock that keeps it to one at a time.
    pub verified: Arc<std::sync::Mutex<Option<Verified>>>,
    pub verifying: Arc<tokio::sync::Mutex<()>>,
}

/// A verification of the whole chain and when it finished (Unix ms).
#[derive(Debug, Clone)]
pub(super) struct Verified {
    pub at_ms: i64,
    pub result: Verification,
}

impl Ui {
    /// The page's ledger, or why there is none.
    pub fn ledger(&self) -> Result<&Arc<Ledger>, &'static str> {
        self.ledger
            .as_ref()
            .ok_or("the ledger could not be opened for reading")
    }
}
