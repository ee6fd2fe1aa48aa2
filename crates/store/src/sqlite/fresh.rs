//! SQLite's freshness check: before the cache answers, a connection asks
//! `PRAGMA data_version`, which changes when any other connection, of any
//! process, committed since it last asked. If it changed, the cache is
//! emptied. Every instance on a database file runs on the same machine and
//! asks the file itself, so each sees every change at once, made by Usher or
//! typed at a prompt.

use std::sync::Arc;

use sqlx::{ConnectOptions, SqliteConnection, sqlite::SqliteConnectOptions};
use tokio::sync::Mutex;
use usher_domain::store::StoreResult;

use crate::{
    cache::{AuthCache, Freshness},
    db_error,
};

#[derive(Debug)]
pub(crate) struct DataVersion {
    options: SqliteConnectOptions,
    /// The connection that asks, and what it was told last time.
    checker: Mutex<Option<(SqliteConnection, i64)>>,
    cache: Arc<AuthCache>,
}

impl DataVersion {
    pub(crate) fn file(path: &std::path::Path, cache: Arc<AuthCache>) -> Self {
        Self::new(SqliteConnectOptions::new().filename(path), cache)
    }

    pub(crate) fn memory(name: &str, cache: Arc<AuthCache>) -> Self {
        Self::new(
            SqliteConnectOptions::new().filename(name).vfs("memdb"),
            cache,
        )
    }

    fn new(options: SqliteConnectOptions, cache: Arc<AuthCache>) -> Self {
        Self {
            options,
            checker: Mutex::new(None),
            cache,
        }
    }

    pub(crate) fn close(&self) {
        if let Ok(mut checker) = self.checker.try_lock() {
            *checker = None;
        }
    }
}

impl Freshness for DataVersion {
    type Connection = SqliteConnection;

    async fn before_read(&self) -> StoreResult<()> {
        let mut checker = self.checker.lock().await;
        let (connection, seen) = match checker.take() {
            Some((connection, seen)) => (connection, Some(seen)),
            None => (self.options.connect().await.map_err(db_error)?, None),
        };
        let mut connection = connection;
        let version: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut connection)
            .await
            .map_err(db_error)?;
        if seen != Some(version) {
            self.cache.empty();
        }
        *checker = Some((connection, version));
        Ok(())
    }

    async fn after_commit(&self, _: &mut SqliteConnection) -> StoreResult<()> {
        // Other processes see the change in the file; this one's connections
        // do not see their own commits in `data_version`.
        self.cache.empty();
        Ok(())
    }
}
