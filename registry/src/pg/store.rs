//! Opening the store (the pool, on the store's own runtime thread) and running a call there from any thread.

use std::future::Future;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::error::{PgError, PgResult};
use super::schema;

/// Longest a store call may take before it is reported `unavailable`.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest opening a store (connecting and migrating the schema) may take.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections per replica.
pub const POOL_SIZE: usize = 16;

/// Whether `url` names a PostgreSQL store (rather than a data dir).
pub fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The shared store. Cheap to share between threads; dropping it stops its runtime thread.
#[derive(Debug)]
pub struct PgStore {
    pub(super) pool: Pool,
    /// For the listening connection, which is not pooled.
    pub(super) config: tokio_postgres::Config,
    pub(super) rt: tokio::runtime::Handle,
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
    pub(super) fn run<T, F, Fut>(&self, f: F) -> PgResult<T>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = PgResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.run_for(CALL_TIMEOUT, f)
    }

    /// [`PgStore::run`] with its own bound.
    pub(super) fn run_for<T, F, Fut>(&self, timeout: Duration, f: F) -> PgResult<T>
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
