//! SQLite: one pool of sqlx's native SQLite connections, write transactions
//! that take the write lock at once, and the check that keeps the cache of
//! keys and users true to the file ([`fresh`]).
//!
//! The pool is deadpool's, not sqlx's: sqlx's pool pings a connection every
//! time it is given back (sqlx-core 0.9, `pool/connection.rs`,
//! `Floating::return_to_pool`), and on SQLite a ping is a message to the
//! connection's own thread and back, for a file that does not go away.

pub(crate) mod fresh;

use std::{path::Path, sync::Arc, time::Duration};

use deadpool::managed::{self, Metrics, Object, RecycleResult};
use sqlx::{
    ConnectOptions, Connection, SqliteConnection,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};
use usher_domain::store::StoreResult;

use crate::{
    cache::{AuthCache, Freshness},
    db_error,
    sql::{Native, Record, Sql},
};

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections kept; WAL lets readers run beside the one writer.
const POOL_SIZE: usize = 8;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(10);

type Pool = managed::Pool<Connector>;

/// One SQLite database: its pool and its cache check.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pool: Pool,
    fresh: Arc<fresh::Fresh>,
    /// A connection held for as long as the store lives: a database in
    /// memory lives only while one is open, and a file's `-shm`, which the
    /// freshness check reads, is removed when the last one closes.
    _keep: Arc<std::sync::Mutex<SqliteConnection>>,
}

/// Makes connections for deadpool.
#[derive(Debug)]
pub(crate) struct Connector {
    options: SqliteConnectOptions,
}

impl managed::Manager for Connector {
    type Type = SqliteConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<SqliteConnection, sqlx::Error> {
        self.options.connect().await
    }

    /// Nothing to check: a local file does not go away.
    async fn recycle(&self, _: &mut SqliteConnection, _: &Metrics) -> RecycleResult<sqlx::Error> {
        Ok(())
    }
}

/// Opens (creating it if needed) the database file at `path` and migrates
/// it.
pub(crate) async fn open_file(path: &Path) -> Result<(Db, Arc<AuthCache>), String> {
    let cannot = |e: String| format!("cannot open SQLite database {}: {e}", path.display());
    crate::files::private_sqlite_files(path)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let (pool, keep) = open(options).await.map_err(cannot)?;
    let cache = Arc::new(AuthCache::checked_per_read());
    let fresh = fresh::Fresh::file(path, cache.clone()).map_err(cannot)?;
    Ok((Db::new(pool, fresh, keep), cache))
}

/// Opens a new private database in memory, for tests. It is SQLite's
/// `memdb` VFS under a name of its own, so that every connection of this
/// store (and only of this store) sees it, with the same locking as a file.
pub(crate) async fn open_memory() -> Result<(Db, Arc<AuthCache>), String> {
    let cannot = |e: String| format!("cannot open an SQLite database in memory: {e}");
    let name = format!("/usher-{}", uuid::Uuid::now_v7().simple());
    let options = SqliteConnectOptions::new()
        .filename(&name)
        .vfs("memdb")
        .create_if_missing(true);
    let (pool, keep) = open(options.clone()).await.map_err(cannot)?;
    let cache = Arc::new(AuthCache::checked_per_read());
    let fresh = fresh::Fresh::memory(options, cache.clone());
    Ok((Db::new(pool, fresh, keep), cache))
}

/// The pool on the database `options` name, migrated, and a connection to
/// hold.
async fn open(options: SqliteConnectOptions) -> Result<(Pool, SqliteConnection), String> {
    let options = options.busy_timeout(BUSY_TIMEOUT).foreign_keys(true);
    let keep = options.connect().await.map_err(|e| e.to_string())?;
    let pool = managed::Pool::builder(Connector { options })
        .max_size(POOL_SIZE)
        .wait_timeout(Some(WAIT_FOR_CONNECTION))
        .create_timeout(Some(WAIT_FOR_CONNECTION))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| e.to_string())?;
    let mut connection: Object<Connector> = pool.get().await.map_err(|e| e.to_string())?;
    MIGRATIONS
        .run(&mut *connection)
        .await
        .map_err(|e| format!("cannot apply database migrations: {e}"))?;
    drop(connection);
    Ok((pool, keep))
}

impl Db {
    fn new(pool: Pool, fresh: fresh::Fresh, keep: SqliteConnection) -> Self {
        Self {
            pool,
            fresh: Arc::new(fresh),
            _keep: Arc::new(std::sync::Mutex::new(keep)),
        }
    }

    async fn connection(&self) -> StoreResult<Object<Connector>> {
        self.pool.get().await.map_err(crate::unavailable)
    }

    pub(crate) async fn fetch_optional<R: Record>(&self, sql: &Sql<'_>) -> StoreResult<Option<R>> {
        let mut connection = self.connection().await?;
        connection.fetch_optional(sql).await.map_err(db_error)
    }

    pub(crate) async fn fetch_all<R: Record>(&self, sql: &Sql<'_>) -> StoreResult<Vec<R>> {
        let mut connection = self.connection().await?;
        connection.fetch_all(sql).await.map_err(db_error)
    }

    pub(crate) async fn execute(&self, sql: &Sql<'_>) -> StoreResult<u64> {
        let mut connection = self.connection().await?;
        connection.execute(sql).await.map_err(db_error)
    }

    /// A write transaction. It takes the write lock at the start
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then
    /// writes fails at once when another writer got in between.
    pub(crate) async fn begin(&self) -> StoreResult<Tx> {
        let mut connection = self.connection().await?;
        connection.run("BEGIN IMMEDIATE").await.map_err(db_error)?;
        Ok(Tx::begun(connection, self.fresh.clone()))
    }

    pub(crate) async fn before_cached_read(&self) -> StoreResult<()> {
        self.fresh.before_read().await
    }

    pub(crate) async fn ping(&self) -> StoreResult<()> {
        let mut connection = self.connection().await?;
        connection.ping().await.map_err(db_error)
    }

    pub(crate) fn close(&self) {
        self.pool.close();
    }
}

/// A write transaction on SQLite; its freshness step empties this
/// process's cache.
pub(crate) type Tx = crate::tx::Tx<Connector, fresh::Fresh>;
