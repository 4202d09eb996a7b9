//! The PostgreSQL store: what a cluster of plughost replicas shares (`--store postgres://…`). SQLite under the data
//! dir stays the embedded default; this is the backend beside it, behind the traits in [`crate::seam`].
//!
//! The driver is async (tokio-postgres with a deadpool pool) while the registry's API is synchronous and is called
//! from inside the host's tokio runtime, where blocking on another runtime panics. So the store owns its own small
//! runtime on its own thread, and every call is a future spawned there whose result comes back over a std channel:
//! safe from async and sync code alike, and bounded by [`CALL_TIMEOUT`] (a store that does not answer is
//! `unavailable`, never a hang).
//!
//! By area: `schema.rs` holds the versioned migrations, `ledger.rs` the one shared hash chain, `contracts.rs` the
//! exact cross-replica admission of calls, `state.rs` plugin state, `notify.rs` change signals between replicas
//! (LISTEN/NOTIFY), `migrate.rs` moving a data dir's ledger in. This file opens the pool and runs calls.

mod contracts;
mod ledger;
mod migrate;
mod notify;
mod schema;
mod state;

use std::future::Future;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use contracts::{Admission, Scope};
pub use notify::CHANNEL;
pub use schema::PG_SCHEMA_VERSION;

/// Longest a store call may take before it is reported `unavailable`.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest opening a store (connecting and migrating the schema) may take.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections per replica.
pub const POOL_SIZE: usize = 16;

/// A failure of the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The server cannot be reached, went away mid-call, or did not answer in time: fail closed, retry later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The server answered with an error.
    #[error("store error: {0}")]
    Db(String),
    /// The URL or the schema is not one this plughost can use.
    #[error("store: {0}")]
    Setup(String),
}

pub type PgResult<T> = std::result::Result<T, PgError>;

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> PgError {
        // Connection failures have no SQLSTATE; class 08 (connection), 57P (shutdown) and 53 (resources) are the
        // server going away. All of these are transient: `unavailable`.
        let transient = match e.code() {
            None => true,
            Some(c) => {
                let c = c.code();
                c.starts_with("08") || c.starts_with("57P") || c.starts_with("53")
            }
        };
        if transient || e.is_closed() {
            PgError::Unavailable(e.to_string())
        } else {
            PgError::Db(match e.as_db_error() {
                Some(d) => format!("{} ({})", d.message(), d.code().code()),
                None => e.to_string(),
            })
        }
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> PgError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => PgError::Unavailable(other.to_string()),
        }
    }
}

/// Whether `url` names a PostgreSQL store (rather than a data dir).
pub fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The shared store. Cheap to share between threads; dropping it stops its runtime thread.
#[derive(Debug)]
pub struct PgStore {
    pool: Pool,
    /// For the listening connection, which is not pooled.
    config: tokio_postgres::Config,
    rt: tokio::runtime::Handle,
    // Dropped with the store: the runtime thread sees the channel close and shuts its runtime down there (a
    // runtime must not be dropped inside another runtime's worker).
    _stop: mpsc::Sender<()>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and migrates the schema.
    pub fn open(url: &str) -> PgResult<PgStore> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| PgError::Setup(format!("bad store URL: {e}")))?;
        let mut config = config;
        config.connect_timeout(Duration::from_secs(3));
        config.application_name("plughost");
        let (handle_tx, handle_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("plughost-pg".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("plughost-pg-io")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                // Returns when the store is dropped (the sender goes away).
                let _ = stop_rx.recv();
                rt.shutdown_background();
            })
            .map_err(|e| PgError::Setup(format!("cannot start the store's thread: {e}")))?;
        let rt = handle_rx
            .recv()
            .map_err(|_| PgError::Setup("the store's thread died".into()))?
            .map_err(|e| PgError::Setup(format!("cannot start the store's runtime: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|e| PgError::Setup(e.to_string()))?;
        let store = PgStore {
            pool,
            config,
            rt,
            _stop: stop_tx,
        };
        store.run_for(
            OPEN_TIMEOUT,
            |pool| async move { schema::migrate(&pool).await },
        )?;
        Ok(store)
    }

    /// Runs `f` on the store's runtime and waits for it (from any thread, in or outside a runtime).
    pub(crate) fn run<T, F, Fut>(&self, f: F) -> PgResult<T>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = PgResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.run_for(CALL_TIMEOUT, f)
    }

    /// [`PgStore::run`] with its own bound.
    fn run_for<T, F, Fut>(&self, timeout: Duration, f: F) -> PgResult<T>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = PgResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let fut = f(self.pool.clone());
        let task = self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => {
                // Abandoned: a transaction left open is rolled back when its connection is dropped.
                task.abort();
                Err(PgError::Unavailable(format!(
                    "no answer within {} s",
                    timeout.as_secs()
                )))
            }
        }
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> PgResult<i64> {
        self.run(|pool| async move {
            let c = pool.get().await?;
            let row = c
                .query_one("SELECT max(version) FROM plughost_schema", &[])
                .await?;
            Ok(row.get::<_, Option<i32>>(0).unwrap_or(0) as i64)
        })
    }
}
