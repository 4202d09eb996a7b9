//! Live across replicas: a change committed through any replica or CLI is announced with `NOTIFY
//! plughost_changes`, and every replica holds one connection that LISTENs on it. A subscriber gets a payload per
//! notification and a `*` each time its listening connection is (re)established — it may have missed changes while
//! it was not listening, so `*` means "reload everything". The channel is bounded: when the subscriber is behind,
//! further signals are dropped (it reloads everything it has not yet anyway).

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::error::PgResult;
use super::store::PgStore;

/// The channel every replica listens on.
pub const CHANNEL: &str = "plughost_changes";
/// Signals a slow subscriber may have pending.
const BACKLOG: usize = 64;
/// Wait between attempts to reconnect the listening connection.
const RETRY: Duration = Duration::from_millis(250);

impl PgStore {
    /// Announces a change (`what`: a plugin id, or `*`) to every replica.
    pub fn notify_change(&self, what: &str) -> PgResult<()> {
        let what = what.to_string();
        self.run(|pool| async move {
            let c = pool.get().await?;
            c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &what])
                .await?;
            Ok(())
        })
    }

    /// Listens for changes until the receiver is dropped; reconnects by itself when the server goes away. Read it
    /// with `recv().await` in async code, `blocking_recv()` outside a runtime.
    pub fn subscribe(&self) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        let config = self.config.clone();
        self.rt.spawn(async move {
            loop {
                if let Ok((client, mut conn)) = config.connect(NoTls).await {
                    let (tx2, ended) = (tx.clone(), tokio::sync::oneshot::channel::<()>());
                    let (done, mut ended_rx) = ended;
                    let pump = tokio::spawn(async move {
                        let mut messages =
                            futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                        while let Some(Ok(m)) = messages.next().await {
                            if let AsyncMessage::Notification(n) = m
                                && matches!(
                                    tx2.try_send(n.payload().to_string()),
                                    Err(mpsc::error::TrySendError::Closed(_))
                                )
                            {
                                break;
                            }
                        }
                        let _ = done.send(());
                    });
                    if client
                        .batch_execute(&format!("LISTEN {CHANNEL}"))
                        .await
                        .is_ok()
                        && matches!(
                            tx.try_send("*".to_string()),
                            Ok(()) | Err(mpsc::error::TrySendError::Full(_))
                        )
                    {
                        // Listening: wait until the connection ends (the client stays alive meanwhile).
                        let _ = (&mut ended_rx).await;
                    }
                    pump.abort();
                    drop(client);
                }
                tokio::time::sleep(RETRY).await;
                if tx.is_closed() {
                    return;
                }
            }
        });
        rx
    }
}
