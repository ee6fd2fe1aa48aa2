//! PostgreSQL: one pool of sqlx's native PostgreSQL connections, each on
//! the schema from `DB_POSTGRESDB_SCHEMA`, reads that survive a database
//! restart, and the scheme that empties every instance's cache of keys and
//! users before a change to them returns ([`sync`]).
//!
//! The pool is deadpool's, not sqlx's: sqlx's pool pings a connection every
//! time it is given back (sqlx-core 0.9, `pool/connection.rs`,
//! `Floating::return_to_pool`), a second round trip per statement. Here a
//! connection is pinged only after it sat idle for [`CHECK_AFTER_IDLE`], and
//! one that failed with a broken-link error is dropped with every idle one
//! (what ended one session, a restart, most likely ended them all).

pub(crate) mod sync;

use std::{sync::Arc, time::Duration};

use deadpool::managed::{self, Metrics, Object, RecycleResult};
use sqlx::{
    ConnectOptions, Connection, PgConnection, migrate::Migrator, postgres::PgConnectOptions,
};
use usher_domain::store::StoreResult;

use crate::{
    DbConfig,
    cache::{AuthCache, Freshness},
    db_error,
    sql::{Native, Record, Sql},
};

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections kept (and one more listens: [`sync`]).
pub(crate) const POOL_SIZE: usize = 10;
/// A connection idle longer than this is pinged before it is used again.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(30);
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(10);

type Pool = managed::Pool<Connector>;

/// One PostgreSQL database: its pool and this instance's part in keeping
/// the caches of all instances exact.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pool: Pool,
    sync: Arc<sync::AuthSync>,
}

/// Makes and checks connections for deadpool.
#[derive(Debug)]
pub(crate) struct Connector {
    options: PgConnectOptions,
    /// `SET search_path TO <schema>`, with the schema quoted.
    set_path: String,
}

impl managed::Manager for Connector {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        let mut connection = self.options.connect().await?;
        // The schema name is the operator's, quoted by quote_ident.
        let set_path = sqlx::AssertSqlSafe(self.set_path.as_str());
        sqlx::Executor::execute(&mut connection, set_path).await?;
        Ok(connection)
    }

    async fn recycle(
        &self,
        connection: &mut PgConnection,
        metrics: &Metrics,
    ) -> RecycleResult<sqlx::Error> {
        if metrics.last_used() > CHECK_AFTER_IDLE {
            connection.ping().await?;
        }
        Ok(())
    }
}

/// Connects, creates the schema when it is missing, migrates, and starts
/// listening for changes to keys and users.
pub(crate) async fn open(config: &DbConfig) -> Result<(Db, Arc<AuthCache>), String> {
    let DbConfig::Postgres { schema, .. } = config else {
        return Err("not a PostgreSQL configuration".into());
    };
    let cannot_connect =
        |e: &dyn std::fmt::Display| format!("cannot connect to PostgreSQL at {config}: {e}");
    let options: PgConnectOptions = config.url().parse().map_err(|e| cannot_connect(&e))?;
    let pool = managed::Pool::builder(Connector {
        options: options.clone(),
        set_path: format!("SET search_path TO {}", quote_ident(schema)),
    })
    .max_size(POOL_SIZE)
    .wait_timeout(Some(WAIT_FOR_CONNECTION))
    .create_timeout(Some(WAIT_FOR_CONNECTION))
    .runtime(deadpool::Runtime::Tokio1)
    .build()
    .map_err(|e| cannot_connect(&e))?;
    let mut connection: Object<Connector> = pool.get().await.map_err(|e| cannot_connect(&e))?;
    let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
    sqlx::Executor::execute(&mut *connection, sqlx::AssertSqlSafe(create))
        .await
        .map_err(|e| format!("cannot create schema {schema}: {e}"))?;
    MIGRATIONS
        .run(&mut *connection)
        .await
        .map_err(|e| format!("cannot apply database migrations: {e}"))?;
    drop(connection);
    let sync = sync::AuthSync::start(options, schema);
    let cache = sync.cache.clone();
    Ok((
        Db {
            pool,
            sync: Arc::new(sync),
        },
        cache,
    ))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An error after which the connection cannot be used again: the link broke,
/// or PostgreSQL ended the session (SQLSTATE class 08, connection exception,
/// or 57P, a shutdown or restart).
fn broken(error: &sqlx::Error) -> bool {
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

/// A read is safe to run again on another connection after any broken link.
fn read(_: &sqlx::Error) -> bool {
    true
}

/// A change is run again only when PostgreSQL said it had ended the session
/// (57P: shut down, restarted, or ended by an administrator) in answer to
/// it: the session was gone before the statement, so it did not run.
fn ended_before(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().is_some_and(|code| code.starts_with("57P")))
}

impl Db {
    async fn connection(&self) -> StoreResult<Object<Connector>> {
        self.pool.get().await.map_err(crate::unavailable)
    }

    /// Drops a broken connection, and with it every idle one.
    fn discard(&self, connection: Object<Connector>) {
        drop(Object::take(connection));
        self.pool.retain(|_, _| false);
    }

    /// After `error` on `connection`: drops the connection if the error
    /// broke it (and every idle one with it), and says whether to run the
    /// work once more on a new connection (`Ok`), so a database restart
    /// costs no failed requests: once, and only when `again` says the work
    /// is safe to repeat.
    fn run_again(
        &self,
        error: sqlx::Error,
        connection: Object<Connector>,
        again: fn(&sqlx::Error) -> bool,
        retried: &mut bool,
    ) -> StoreResult<()> {
        if !broken(&error) {
            return Err(db_error(error));
        }
        self.discard(connection);
        if *retried || !again(&error) {
            return Err(db_error(error));
        }
        *retried = true;
        Ok(())
    }

    pub(crate) async fn fetch_optional<R: Record>(&self, sql: &Sql<'_>) -> StoreResult<Option<R>> {
        let mut retried = false;
        loop {
            let mut connection = self.connection().await?;
            match connection.fetch_optional(sql).await {
                Ok(row) => return Ok(row),
                Err(error) => self.run_again(error, connection, read, &mut retried)?,
            }
        }
    }

    pub(crate) async fn fetch_all<R: Record>(&self, sql: &Sql<'_>) -> StoreResult<Vec<R>> {
        let mut retried = false;
        loop {
            let mut connection = self.connection().await?;
            match connection.fetch_all(sql).await {
                Ok(rows) => return Ok(rows),
                Err(error) => self.run_again(error, connection, read, &mut retried)?,
            }
        }
    }

    pub(crate) async fn execute(&self, sql: &Sql<'_>) -> StoreResult<u64> {
        let mut retried = false;
        loop {
            let mut connection = self.connection().await?;
            match connection.execute(sql).await {
                Ok(changed) => return Ok(changed),
                Err(error) => self.run_again(error, connection, ended_before, &mut retried)?,
            }
        }
    }

    /// A write transaction. Its `BEGIN` is safe to repeat on another
    /// connection.
    pub(crate) async fn begin(&self) -> StoreResult<Tx> {
        let mut retried = false;
        loop {
            let mut connection = self.connection().await?;
            match connection.run("BEGIN").await {
                Ok(()) => return Ok(Tx::begun(connection, self.sync.clone())),
                Err(error) => self.run_again(error, connection, read, &mut retried)?,
            }
        }
    }

    /// Nothing to do: other instances' changes empty this cache as they
    /// happen (see [`sync`]), and whether it may answer is its own state.
    pub(crate) async fn before_cached_read(&self) -> StoreResult<()> {
        self.sync.before_read().await
    }

    pub(crate) async fn ping(&self) -> StoreResult<()> {
        let mut retried = false;
        loop {
            let mut connection = self.connection().await?;
            match connection.ping().await {
                Ok(()) => return Ok(()),
                Err(error) => self.run_again(error, connection, read, &mut retried)?,
            }
        }
    }

    pub(crate) fn close(&self) {
        self.pool.close();
    }
}

/// A write transaction on PostgreSQL; its freshness step is the barrier.
pub(crate) type Tx = crate::tx::Tx<Connector, sync::AuthSync>;
