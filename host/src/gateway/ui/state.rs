//! What every view and the guard share.

use std::sync::Arc;

use plughost_registry::ledger::{Entry, Filter, Ledger, LedgerError, Verification};
use plughost_registry::pg::{PgError, PgStore};

use crate::gateway::Gateway;

#[derive(Clone)]
pub(super) struct Ui {
    pub gateway: Arc<Gateway>,
    /// The ledger the page reads: its own connections to `ledger.db` (its queries never wait on, or hold, the call
    /// path's reader), or on a cluster's replica the shared store.
    pub ledger: Option<PageLedger>,
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

/// The ledger the page reads: the data dir's, or on a cluster's replica the shared store's — the whole cluster's
/// calls (a replica writes none to its data dir).
#[derive(Clone)]
pub(super) enum PageLedger {
    Local(Arc<Ledger>),
    Shared(Arc<PgStore>),
}

/// A read of the page's ledger that failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum PageLedgerError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] PgError),
}

impl PageLedger {
    /// The entries `f` selects, the newest `f.limit` of them, oldest first.
    pub fn entries(&self, f: &Filter) -> Result<Vec<Entry>, PageLedgerError> {
        Ok(match self {
            PageLedger::Local(l) => l.entries(f)?,
            PageLedger::Shared(pg) => pg.ledger_entries(f)?,
        })
    }

    /// The entry with sequence number `seq`, if there is one.
    pub fn entry(&self, seq: u64) -> Result<Option<Entry>, PageLedgerError> {
        Ok(match self {
            PageLedger::Local(l) => l.entry(seq)?,
            PageLedger::Shared(pg) => pg.ledger_entry(seq)?,
        })
    }

    /// The newest entry's sequence number (0 when there is none).
    pub fn head_seq(&self) -> Result<u64, PageLedgerError> {
        Ok(match self {
            PageLedger::Local(l) => l.head_seq()?,
            PageLedger::Shared(pg) => pg.ledger_head_seq()?,
        })
    }

    /// Walks the whole chain, as `plughost ledger verify` does.
    pub fn verify(&self) -> Result<Verification, PageLedgerError> {
        Ok(match self {
            PageLedger::Local(l) => l.verify()?,
            PageLedger::Shared(pg) => pg.ledger_verify()?,
        })
    }
}

impl Ui {
    /// The page's ledger, or why there is none.
    pub fn ledger(&self) -> Result<&PageLedger, &'static str> {
        self.ledger
            .as_ref()
            .ok_or("the ledger could not be opened for reading")
    }
}
