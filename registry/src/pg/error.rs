//! How a store call failed: `unavailable` (fail closed, retry later), an error the server answered, or a setup
//! problem (URL, schema).

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
