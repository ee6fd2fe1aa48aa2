//! Usher's storage: the domain's [`Store`](usher_domain::store::Store)
//! traits on SQLite and PostgreSQL.
//!
//! Each database has one pool of its own driver's connections
//! (`sqlite`, `postgres`): its connection set-up, its write
//! transactions, and its way of keeping the cache of keys and users exact.
//! [`SqlStore`] implements the `Store` traits once, over either: a
//! statement both databases understand is written once (`sql::Sql`) and
//! its rows decode into typed structs (`rows`); a statement that differs
//! would be written twice, under `sqlite/` and `postgres/`. Each database
//! has its own migrations folder with the same file names (a test checks
//! it), so the DDL can differ where it must. Both run the same test suite.
//!
//! Reading order: [`config`] (where the database is), `sql` and `rows`
//! (statements and rows), `write` (the write paths, and the one way to
//! change users and API keys) and `tx` (the transaction under them),
//! `cache` (keys and users in memory, and how each database keeps them
//! fresh), `sqlite` and `postgres`, then the `Store` implementation by
//! area: `users`, `api_keys`, `apps`, `forward_auth`, `sessions`, `invitations`, `resets`, `mfa`,
//! `projects`, `workflows`, `misc`. docs/architecture.md tells why.

mod api_keys;
mod apps;
mod cache;
pub mod config;
mod files;
mod forward_auth;
mod invitations;
mod ldap;
mod mfa;
mod misc;
mod postgres;
mod projects;
mod resets;
mod rows;
mod sessions;
mod sql;
mod sqlite;
mod sso;
mod tx;
mod user_search;
mod users;
mod workflows;
mod write;

use std::sync::Arc;

pub use config::DbConfig;
use usher_domain::store::{StoreError, StoreResult};

use crate::{
    cache::AuthCache,
    sql::{Record, Sql},
    write::Tx,
};

/// The store: a database, and the keys and users it answers from memory.
/// Cheap to clone: clones share the pool and the cache.
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: Db,
    cache: Arc<AuthCache>,
}

/// Connects, creates the schema when it is missing, and applies migrations.
/// The error says what failed in one line, for the start-up message.
pub async fn connect(config: &DbConfig) -> Result<SqlStore, String> {
    let (db, cache) = match config {
        DbConfig::Sqlite { path } => {
            let (db, cache) = sqlite::open_file(path).await?;
            (Db::Sqlite(db), cache)
        }
        DbConfig::Postgres { .. } => {
            let (db, cache) = postgres::open(config).await?;
            (Db::Postgres(db), cache)
        }
    };
    let store = SqlStore { db, cache };
    store
        .fill_email_skeletons()
        .await
        .map_err(|e| format!("cannot prepare the users table: {e}"))?;
    store
        .fill_personal_projects()
        .await
        .map_err(|e| format!("cannot give every user a personal project: {e}"))?;
    Ok(store)
}

/// A new, empty store of its own in memory (SQLite), migrated like a file,
/// for tests: fast, and gone when the last clone of the store is dropped.
/// It runs the same code as a SQLite file, the cache and its checks
/// included.
pub async fn connect_in_memory() -> Result<SqlStore, String> {
    let (db, cache) = sqlite::open_memory().await?;
    Ok(SqlStore {
        db: Db::Sqlite(db),
        cache,
    })
}

impl SqlStore {
    /// Stops handing out connections; later calls fail.
    pub async fn close(&self) {
        self.db.close();
    }
}

/// One of the two databases.
#[derive(Clone, Debug)]
enum Db {
    Sqlite(sqlite::Db),
    Postgres(postgres::Db),
}

/// Runs `$body` with `$db` bound to the database at hand; the body is
/// type-checked once per database.
macro_rules! on_db {
    ($value:expr, $db:ident => $body:expr) => {
        match $value {
            Db::Sqlite($db) => $body,
            Db::Postgres($db) => $body,
        }
    };
}

impl Db {
    async fn fetch_optional<R: Record>(&self, sql: &Sql<'_>) -> StoreResult<Option<R>> {
        on_db!(self, db => db.fetch_optional(sql).await)
    }

    async fn fetch_all<R: Record>(&self, sql: &Sql<'_>) -> StoreResult<Vec<R>> {
        on_db!(self, db => db.fetch_all(sql).await)
    }

    async fn execute(&self, sql: &Sql<'_>) -> StoreResult<u64> {
        on_db!(self, db => db.execute(sql).await)
    }

    async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(db) => Tx::Sqlite(db.begin().await?),
            Db::Postgres(db) => Tx::Postgres(db.begin().await?),
        })
    }

    /// Brings the cache up to date before it answers.
    async fn before_cached_read(&self) -> StoreResult<()> {
        on_db!(self, db => db.before_cached_read().await)
    }

    async fn ping(&self) -> StoreResult<()> {
        on_db!(self, db => db.ping().await)
    }

    fn close(&self) {
        on_db!(self, db => db.close())
    }
}

/// sqlx's error, sorted into what the domain can act on. Uniqueness is read
/// from the error's kind, never from a constraint name (SQLite has none).
pub(crate) fn db_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("a row with this value exists already".into())
        }
        _ => StoreError::Backend(error.to_string()),
    }
}

/// Why the pool gave no connection, as a store error.
pub(crate) fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("no database connection: {error}"))
}

/// A statement on a transaction that was committed already: a bug.
pub(crate) fn finished() -> StoreError {
    StoreError::Backend("the transaction is over".into())
}

#[cfg(test)]
mod tests {
    use usher_domain::{
        model::{Email, Role},
        store::{StoreError, UserStore},
    };

    use super::*;

    #[tokio::test]
    async fn a_store_in_memory_sees_each_change_at_once() -> Result<(), StoreError> {
        let store = connect_in_memory().await.map_err(StoreError::Backend)?;
        let (_, ada) = crate::cache::tests::ada("ada@example.com", "h1");
        store.insert_user(&ada).await?;
        for _ in 0..2 {
            let found = store.user_by_id(ada.id).await?;
            assert_eq!(found.map(|u| u.role), Some(Role::Admin));
        }
        store.set_role(ada.id, Role::Member, 2).await?;
        let found = store
            .user_by_email(
                &Email::parse("ada@example.com").map_err(|e| StoreError::Backend(e.to_string()))?,
            )
            .await?;
        assert_eq!(found.map(|u| u.role), Some(Role::Member));
        // Past the write guard, as SQL typed at a prompt would be: the
        // cache sees it through data_version.
        store
            .db
            .execute(&Sql::new("UPDATE users SET first_name = 'Augusta'"))
            .await?;
        let found = store.user_by_id(ada.id).await?;
        assert_eq!(found.map(|u| u.first_name).as_deref(), Some("Augusta"));
        let other = connect_in_memory().await.map_err(StoreError::Backend)?;
        assert!(
            other.user_by_id(ada.id).await?.is_none(),
            "each store has its own database"
        );
        Ok(())
    }

    /// On a file, a change committed by another connection (another
    /// instance, or SQL at a prompt) is seen by the next read: the cache
    /// reads the WAL index before answering.
    #[tokio::test]
    async fn a_change_made_past_the_store_to_a_file_is_seen_at_once() -> Result<(), StoreError> {
        use sqlx::{ConnectOptions as _, Executor as _};
        let folder = std::env::temp_dir().join(format!("usher-store-{}", uuid::Uuid::now_v7()));
        let path = folder.join("database.sqlite");
        let store = connect(&DbConfig::Sqlite { path: path.clone() })
            .await
            .map_err(StoreError::Backend)?;
        let (_, ada) = crate::cache::tests::ada("ada@example.com", "h1");
        store.insert_user(&ada).await?;
        for _ in 0..2 {
            let found = store.user_by_id(ada.id).await?;
            assert_eq!(found.map(|u| u.first_name).as_deref(), Some("Ada"));
        }
        let mut prompt = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .map_err(db_error)?;
        prompt
            .execute("UPDATE users SET first_name = 'Augusta'")
            .await
            .map_err(db_error)?;
        let found = store.user_by_id(ada.id).await?;
        assert_eq!(found.map(|u| u.first_name).as_deref(), Some("Augusta"));
        drop(prompt);
        store.close().await;
        drop(store);
        let _ = std::fs::remove_dir_all(folder);
        Ok(())
    }

    #[tokio::test]
    async fn a_change_to_users_outside_the_write_guard_is_refused() -> Result<(), StoreError> {
        let store = connect_in_memory().await.map_err(StoreError::Backend)?;
        let refused = store
            .execute(Sql::new("UPDATE users SET role = 'global:admin'"))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Backend(_))),
            "{refused:?}"
        );
        let mut write = store.write().await?;
        let refused = write.execute(Sql::new("DELETE FROM api_keys")).await;
        assert!(
            matches!(refused, Err(StoreError::Backend(_))),
            "{refused:?}"
        );
        Ok(())
    }
}
