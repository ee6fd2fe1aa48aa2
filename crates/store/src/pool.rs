//! Connecting, migrating, and the few places where the two databases differ.

use std::time::Duration;

use sqlx::{AnyPool, Executor as _, any::AnyPoolOptions, migrate::Migrator};
use usher_domain::store::{StoreError, StoreResult};

use crate::{
    DbConfig, auth_cache::AuthSync, db_error, inline::InlineSqlite, reads, reads::ReadPool,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Run on every new SQLite connection, of both pools. WAL lets readers run
/// beside the one writer; the busy timeout makes a second writer wait
/// instead of failing.
pub(crate) const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store: a pool on one of the two databases, and a second, native
/// pool on the same database for the hot reads (see [`crate::reads`]).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) reads: ReadPool,
    /// SQLite only: the API key lookup on the calling thread (see
    /// [`crate::inline`]).
    pub(crate) inline: Option<InlineSqlite>,
    /// PostgreSQL only: the cache of API keys and users, emptied on every
    /// instance before a change returns (see [`crate::auth_cache`]).
    pub(crate) auth: Option<AuthSync>,
    pub(crate) backend: Backend,
}

/// Connects, creates the schema when it is missing, and applies migrations.
/// The error says what failed in one line, for the start-up message.
pub async fn connect(config: &DbConfig) -> Result<SqlStore, String> {
    sqlx::any::install_default_drivers();
    let (backend, pool, reads, inline, auth) = match config {
        DbConfig::Sqlite { path } => {
            crate::files::private_sqlite_files(path)?;
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                // A ping before every query is a round trip to the
                // connection's thread for nothing: a local file does not go
                // away.
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(SQLITE_SETUP).await?;
                        Ok(())
                    })
                })
                .connect(&config.url())
                .await
                .map_err(|e| format!("cannot open SQLite database {}: {e}", path.display()))?;
            let reads = ReadPool::sqlite(path)?;
            (
                Backend::Sqlite,
                pool,
                reads,
                Some(InlineSqlite::new(path)),
                None,
            )
        }
        DbConfig::Postgres { schema, .. } => {
            let set_path = format!("SET search_path TO {}", quote_ident(schema));
            let reads_path = set_path.clone();
            let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
            let pool = AnyPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _| {
                    let set_path = set_path.clone();
                    Box::pin(async move {
                        // The schema name is the operator's, quoted by quote_ident.
                        sqlx::query(sqlx::AssertSqlSafe(set_path))
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                })
                .connect(&config.url())
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL at {config}: {e}"))?;
            sqlx::query(sqlx::AssertSqlSafe(create))
                .execute(&pool)
                .await
                .map_err(|e| format!("cannot create schema {schema}: {e}"))?;
            let options: sqlx::postgres::PgConnectOptions = config
                .url()
                .parse()
                .map_err(|e| format!("cannot connect to PostgreSQL at {config}: {e}"))?;
            let auth = AuthSync::start(options.clone(), schema);
            let reads = ReadPool::postgres(options, reads_path)?;
            (Backend::Postgres, pool, reads, None, Some(auth))
        }
    };
    let migrator = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator
        .run(&pool)
        .await
        .map_err(|e| format!("cannot apply database migrations: {e}"))?;
    Ok(SqlStore {
        pool,
        reads,
        inline,
        auth,
        backend,
    })
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl SqlStore {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. SQLite must take the write lock at the
    /// start (`BEGIN IMMEDIATE`): a deferred transaction that reads and then
    /// writes fails at once when another writer got in between.
    pub(crate) async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let begin = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        begin.map_err(db_error)
    }

    /// The in-memory cache of API keys and users: checked against the file
    /// on SQLite, kept in step across instances on PostgreSQL.
    pub(crate) fn key_cache(&self) -> Option<&crate::auth_cache::AuthCache> {
        match (&self.inline, &self.auth) {
            (Some(inline), _) => Some(inline.cache()),
            (None, Some(auth)) => Some(&auth.cache),
            (None, None) => None,
        }
    }

    /// After a change to `users` or `api_keys` was committed: on PostgreSQL,
    /// returns once every instance has emptied its API key cache. The change
    /// is made either way; a failure here is logged, and instances that did
    /// not hear of it stop using their caches when their leases run out.
    pub(crate) async fn auth_changed(&self) {
        let (Some(auth), ReadPool::Postgres(pool)) = (&self.auth, &self.reads) else {
            return;
        };
        let done = match pool.get().await {
            Ok(mut connection) => match auth.barrier(&mut connection).await {
                Ok(()) => Ok(()),
                Err(error) => {
                    // It may still hold the barrier's locks: close it.
                    drop(deadpool::managed::Object::take(connection));
                    Err(error.to_string())
                }
            },
            Err(error) => Err(reads::unavailable(error).to_string()),
        };
        if let Err(error) = done {
            tracing::warn!(%error, "could not wait for other instances to empty their API key caches");
        }
    }

    pub async fn close(&self) {
        self.reads.close();
        if let Some(inline) = &self.inline {
            inline.close();
        }
        self.pool.close().await;
    }
}

pub(crate) fn backend_error(context: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{context}: {error}"))
}
