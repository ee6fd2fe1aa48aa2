//! The native read pool: the database's own driver, for the reads on every
//! public API request's path (an API key with its user, a user, a page of
//! users). Writes and everything else stay on the one `Any` implementation.
//!
//! Two costs made this worth a second pool (docs/performance.md):
//! - through `Any`, each row is copied into a run-time typed row with its own
//!   copy of the column names, three quarters of a 250-user page; native rows
//!   share their columns;
//! - sqlx's pool pings every connection when it is released, a second round
//!   trip per query (to the SQLite connection's thread, or to PostgreSQL).
//!   deadpool lets the pool check a connection only after it sat idle, and a
//!   connection that failed with a broken-link error is dropped, not reused.

use std::{path::Path, time::Duration};

use deadpool::managed::{self, Metrics, Object, RecycleResult};
use sqlx::{
    ConnectOptions, Connection, Executor,
    postgres::{PgConnectOptions, PgConnection},
    sqlite::{SqliteConnectOptions, SqliteConnection},
};
use usher_domain::store::StoreError;

/// A connection idle longer than this is pinged before it is used again.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(30);
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub(crate) enum ReadPool {
    Sqlite(managed::Pool<Connector<SqliteConnection>>),
    Postgres(managed::Pool<Connector<PgConnection>>),
}

impl ReadPool {
    /// Opens nothing yet: connections are made on first use.
    pub(crate) fn sqlite(path: &Path) -> Result<Self, String> {
        let options = SqliteConnectOptions::new().filename(path);
        Ok(Self::Sqlite(build(
            options,
            Some(crate::pool::SQLITE_SETUP.to_owned()),
            8,
        )?))
    }

    /// `setup` runs on each new connection (the schema's search path).
    pub(crate) fn postgres(options: PgConnectOptions, setup: String) -> Result<Self, String> {
        Ok(Self::Postgres(build(options, Some(setup), 5)?))
    }

    pub(crate) fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close(),
            Self::Postgres(pool) => pool.close(),
        }
    }
}

fn build<C: Native>(
    options: C::Options,
    setup: Option<String>,
    size: usize,
) -> Result<managed::Pool<Connector<C>>, String> {
    managed::Pool::builder(Connector { options, setup })
        .max_size(size)
        .wait_timeout(Some(WAIT_FOR_CONNECTION))
        .create_timeout(Some(WAIT_FOR_CONNECTION))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| format!("cannot make the read pool: {e}"))
}

/// The two native connections. A plain trait, because a higher-ranked
/// `Executor` bound here makes the callers' futures fail the `Send` check.
pub(crate) trait Native: Connection {
    /// Runs one statement built by the store (from quoted names).
    fn run(&mut self, sql: String) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl Native for SqliteConnection {
    async fn run(&mut self, sql: String) -> Result<(), sqlx::Error> {
        self.execute(sqlx::AssertSqlSafe(sql)).await.map(drop)
    }
}

impl Native for PgConnection {
    async fn run(&mut self, sql: String) -> Result<(), sqlx::Error> {
        self.execute(sqlx::AssertSqlSafe(sql)).await.map(drop)
    }
}

/// Makes and checks connections for deadpool.
#[derive(Debug)]
pub(crate) struct Connector<C: Native> {
    options: C::Options,
    setup: Option<String>,
}

impl<C: Native> managed::Manager for Connector<C> {
    type Type = C;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<C, sqlx::Error> {
        let mut connection = self.options.connect().await?;
        if let Some(setup) = &self.setup {
            connection.run(setup.clone()).await?;
        }
        Ok(connection)
    }

    async fn recycle(&self, connection: &mut C, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if metrics.last_used() > CHECK_AFTER_IDLE {
            connection.ping().await?;
        }
        Ok(())
    }
}

/// Why the pool gave no connection, as a store error.
pub(crate) fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("no database connection for a read: {error}"))
}

/// An error after which the connection cannot be used again: the link broke,
/// or PostgreSQL ended the session (SQLSTATE class 08, connection exception,
/// or 57P, a shutdown or restart).
pub(crate) fn broken(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Drops a broken connection, and with it every idle one: what ended one
/// session (a database restart) most likely ended them all.
pub(crate) fn discard<C: Native>(
    pool: &managed::Pool<Connector<C>>,
    connection: Object<Connector<C>>,
) {
    drop(Object::take(connection));
    pool.retain(|_, _| false);
}

/// Runs `$fetch` with `$conn` bound to a native connection (`&mut`), then
/// `$decode` with `$rows` bound to what it fetched. Each is type-checked once
/// per database, so `sqlx::query` takes that driver and rows its row type.
/// A read that meets a broken connection drops it and runs once more on
/// another (reads are safe to repeat), so a database restart costs no
/// failed requests. Any other error returns it, as a store error, from the
/// enclosing function (which returns `StoreResult`), as `?` would.
macro_rules! on_reads {
    ($store:expr, |$conn:ident| $fetch:expr, |$rows:ident| $decode:expr) => {
        match &$store.reads {
            $crate::reads::ReadPool::Sqlite(pool) => {
                $crate::reads::on_reads!(@run pool, |$conn| $fetch, |$rows| $decode)
            }
            $crate::reads::ReadPool::Postgres(pool) => {
                $crate::reads::on_reads!(@run pool, |$conn| $fetch, |$rows| $decode)
            }
        }
    };
    (@run $pool:ident, |$conn:ident| $fetch:expr, |$rows:ident| $decode:expr) => {{
        let mut retried = false;
        let $rows = loop {
            let mut object = $pool.get().await.map_err($crate::reads::unavailable)?;
            let $conn = &mut *object;
            match $fetch {
                Ok(rows) => break rows,
                Err(error) if $crate::reads::broken(&error) => {
                    $crate::reads::discard($pool, object);
                    if retried {
                        return Err($crate::db_error(error));
                    }
                    retried = true;
                }
                Err(error) => return Err($crate::db_error(error)),
            }
        };
        $decode
    }};
}
pub(crate) use on_reads;
