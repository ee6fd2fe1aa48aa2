//! A write transaction on a pooled native connection, the same on both
//! databases: what differs (how it begins, and the freshness step after a
//! change to users or API keys) is the backend's.

use std::sync::Arc;

use deadpool::managed::{Manager, Object};
use usher_domain::store::StoreResult;

use crate::{
    cache::Freshness,
    db_error,
    sql::{Native, Record, Sql},
};

/// Where a transaction is, for what dropping it must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not committed: roll back.
    Open,
    /// Committed, in the freshness step, which on PostgreSQL takes session
    /// locks: close the connection rather than hand it on with a lock held.
    Fresh,
}

/// An open write transaction. Dropped before its commit, it rolls back.
pub(crate) struct Tx<M: Manager + 'static, F>
where
    M::Type: Native,
{
    /// None once committed.
    connection: Option<Object<M>>,
    stage: Stage,
    fresh: Arc<F>,
}

impl<M, F> Tx<M, F>
where
    M: Manager + 'static,
    M::Type: Native,
    F: Freshness<Connection = M::Type> + Send + Sync,
{
    /// Takes over `connection`, on which the backend began a transaction.
    pub(crate) fn begun(connection: Object<M>, fresh: Arc<F>) -> Self {
        Self {
            connection: Some(connection),
            stage: Stage::Open,
            fresh,
        }
    }

    fn connection(&mut self) -> StoreResult<&mut M::Type> {
        match self.connection.as_mut() {
            Some(connection) => Ok(connection),
            None => Err(crate::finished()),
        }
    }

    pub(crate) async fn fetch_optional<R: Record>(
        &mut self,
        sql: &Sql<'_>,
    ) -> StoreResult<Option<R>> {
        let found = self.connection()?.fetch_optional(sql).await;
        found.map_err(db_error)
    }

    /// Runs a statement; how many rows it changed.
    pub(crate) async fn execute(&mut self, sql: &Sql<'_>) -> StoreResult<u64> {
        self.connection()?.execute(sql).await.map_err(db_error)
    }

    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        self.connection()?.run("COMMIT").await.map_err(db_error)?;
        // Back to the pool.
        self.connection = None;
        Ok(())
    }

    /// Commits a change to `users` or `api_keys`, then runs the freshness
    /// step on the same connection and returns its error.
    pub(crate) async fn commit_auth(mut self) -> StoreResult<()> {
        self.connection()?.run("COMMIT").await.map_err(db_error)?;
        self.stage = Stage::Fresh;
        let fresh = self.fresh.clone();
        fresh.after_commit(self.connection()?).await?;
        self.connection = None;
        Ok(())
    }
}

impl<M: Manager + 'static, F> Drop for Tx<M, F>
where
    M::Type: Native,
{
    fn drop(&mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        let runtime = tokio::runtime::Handle::try_current();
        match (self.stage, runtime) {
            // Rolled back on a task of its own; only then does the
            // connection go back to the pool, or, if that failed, close.
            (Stage::Open, Ok(runtime)) => {
                runtime.spawn(async move {
                    if connection.run("ROLLBACK").await.is_err() {
                        drop(Object::take(connection));
                    }
                });
            }
            // Closing the connection ends its transaction (and, on
            // PostgreSQL, its session and locks).
            _ => drop(Object::take(connection)),
        }
    }
}
