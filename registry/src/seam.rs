//! The storage seam: what the host needs from the store shared by its calls — the ledger, contracts and plugin
//! state — as traits, implemented by the embedded SQLite store under the data dir and by the PostgreSQL store a
//! cluster shares ([`crate::pg::PgStore`], `--store postgres://…`). The host holds `Arc<dyn …>` and does not know
//! which one it has.

use crate::ledger::{Ledger, LedgerError, NewEntry, Verification};
use crate::pg::{Admission, PgError, PgStore, Scope, ScopeUse};

/// A failure of either store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Pg(#[from] PgError),
}

impl StoreError {
    /// The store cannot be reached right now (a call must fail closed as `unavailable` and may be retried).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Pg(PgError::Unavailable(_)))
    }
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// The usage ledger: one hash chain of every call and event.
pub trait LedgerStore: Send + Sync + std::fmt::Debug {
    /// Appends in one transaction; durable when it returns `Ok`.
    fn append(&self, entries: &[NewEntry]) -> StoreResult<Vec<u64>>;
    /// Walks the chain and reports the first break.
    fn verify(&self) -> StoreResult<Verification>;
    /// The last sequence number (0 when empty).
    fn head_seq(&self) -> StoreResult<u64>;
}

impl LedgerStore for Ledger {
    fn append(&self, entries: &[NewEntry]) -> StoreResult<Vec<u64>> {
        Ok(Ledger::append(self, entries)?)
    }
    fn verify(&self) -> StoreResult<Verification> {
        Ok(Ledger::verify(self)?)
    }
    fn head_seq(&self) -> StoreResult<u64> {
        Ok(Ledger::head_seq(self)?)
    }
}

impl LedgerStore for PgStore {
    fn append(&self, entries: &[NewEntry]) -> StoreResult<Vec<u64>> {
        Ok(self.ledger_append(entries)?)
    }
    fn verify(&self) -> StoreResult<Verification> {
        Ok(self.ledger_verify()?)
    }
    fn head_seq(&self) -> StoreResult<u64> {
        Ok(self.ledger_head_seq()?)
    }
}

/// Contracts checked and reserved atomically by the store itself (across every process that shares it). The
/// embedded store has none: on one data dir the host's own gate counts from the ledger (`host/src/contract.rs`).
pub trait ContractStore: Send + Sync + std::fmt::Debug {
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &self,
        plugin: &str,
        tool: &str,
        principal: Option<&str>,
        cost: u64,
        now_ms: i64,
        scopes: &[Scope],
    ) -> StoreResult<Admission>;
    /// What each scope has used of its window at `now_ms`, reserving nothing.
    fn usage(&self, plugin: &str, now_ms: i64, scopes: &[Scope]) -> StoreResult<Vec<ScopeUse>>;
}

impl ContractStore for PgStore {
    fn admit(
        &self,
        plugin: &str,
        tool: &str,
        principal: Option<&str>,
        cost: u64,
        now_ms: i64,
        scopes: &[Scope],
    ) -> StoreResult<Admission> {
        Ok(PgStore::admit(
            self, plugin, tool, principal, cost, now_ms, scopes,
        )?)
    }
    fn usage(&self, plugin: &str, now_ms: i64, scopes: &[Scope]) -> StoreResult<Vec<ScopeUse>> {
        Ok(self.contract_usage(plugin, now_ms, scopes)?)
    }
}

/// Plugin state: a key/value space per plugin with a byte quota (keys + values).
pub trait StateBackend: Send + Sync + std::fmt::Debug {
    fn get(&self, plugin: &str, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// `Ok(Err((used, quota)))`: refused, nothing written.
    fn set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> StoreResult<Result<(), (u64, u64)>>;
    fn delete(&self, plugin: &str, key: &str) -> StoreResult<bool>;
    fn list_keys(&self, plugin: &str, prefix: &str) -> StoreResult<Vec<String>>;
    fn used(&self, plugin: &str) -> StoreResult<u64>;
    fn delete_plugin(&self, plugin: &str) -> StoreResult<u64>;
}

impl StateBackend for PgStore {
    fn get(&self, plugin: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.state_get(plugin, key)?)
    }
    fn set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> StoreResult<Result<(), (u64, u64)>> {
        Ok(self.state_set(plugin, key, value, quota)?)
    }
    fn delete(&self, plugin: &str, key: &str) -> StoreResult<bool> {
        Ok(self.state_delete(plugin, key)?)
    }
    fn list_keys(&self, plugin: &str, prefix: &str) -> StoreResult<Vec<String>> {
        Ok(self.state_list_keys(plugin, prefix)?)
    }
    fn used(&self, plugin: &str) -> StoreResult<u64> {
        Ok(self.state_used(plugin)?)
    }
    fn delete_plugin(&self, plugin: &str) -> StoreResult<u64> {
        Ok(self.state_delete_plugin(plugin)?)
    }
}
