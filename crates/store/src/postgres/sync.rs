//! PostgreSQL's freshness for the cache of keys and users
//! ([`crate::cache`]): every instance empties its cache *before* a change
//! to them returns, the way Keycloak invalidates its caches across a
//! cluster, with PostgreSQL as the only channel between instances:
//!
//! - every instance holds a shared advisory lock on a key of its schema, on a
//!   listening connection of its own, and uses the cache only while it holds
//!   it (the *hold*);
//! - a change to `users` or `api_keys` notifies the channel `usher_auth` (a
//!   trigger does, so changes made outside Usher count too);
//! - an instance that hears the notification empties its cache, gives up its
//!   lock and queues for it again;
//! - the instance that made the change, after its commit, notifies too and
//!   takes the same lock exclusively (the *barrier*). It gets it only when
//!   every instance that held the lock has emptied its cache, and only then
//!   does the change return;
//! - a second lock, the *turnstile*, keeps instances from taking the hold
//!   again between the barrier's notification and its exclusive request
//!   (they would otherwise hold it again before the barrier asked, and the
//!   barrier would wait for a notification that already went by): the
//!   barrier holds the turnstile throughout, and an instance passes through
//!   it to take the hold.
//!
//! When an instance cannot take part (its connection broke, or it stopped
//! answering), two bounds keep this strict: it uses its cache only within
//! [`LEASE`] of a check that its session still holds the lock (a check that
//! also delivers every notification sent before it), and the barrier waits
//! at most [`BARRIER_WAIT`], which is longer. A stalled instance has lost
//! its lease by the time a writer gives up waiting for it.
//!
//! The listening session is a connection of its own, outside the pool: it
//! holds the lock for as long as the instance runs.

use std::{
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions},
};
use usher_domain::store::{StoreError, StoreResult};

use crate::cache::{AuthCache, Freshness};

/// The channel every change to `users` and `api_keys` notifies (migration
/// `0007_auth_cache.sql`); the payload is the schema.
const CHANNEL: &str = "usher_auth";
/// First half of the hold's advisory lock key: "USHR". The second is the
/// schema's.
const LOCK_CLASS: i32 = 0x5553_4852;
/// First half of the turnstile's key: "USHT".
const TURNSTILE_CLASS: i32 = 0x5553_4854;
/// How long a successful check of the hold lets the cache be used.
pub(crate) const LEASE: Duration = Duration::from_secs(2);
/// How often the hold is checked: well within the lease.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// The longest a change waits for other instances to empty their caches.
/// Longer than the lease, so an instance that never answered has stopped
/// using its cache by then.
pub(crate) const BARRIER_WAIT: &str = "3s";
/// The longest a change waits for the turnstile: other changes may be in
/// their barriers.
const TURNSTILE_WAIT: &str = "10s";

/// The second half of the lock key: the schema's name, hashed (FNV-1a), so
/// that instances on different schemas of one database do not wait on each
/// other.
pub(crate) fn schema_key(schema: &str) -> i32 {
    let hash = schema.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// Starts the listening task of an instance on `schema`. It runs until the
/// returned cache is dropped.
pub(crate) fn start(options: PgConnectOptions, schema: String) -> Arc<AuthCache> {
    let cache = Arc::new(AuthCache::held_by_lock());
    let weak = Arc::downgrade(&cache);
    tokio::spawn(async move {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options);
        while weak.strong_count() > 0 {
            let ended = Session::listen(&pool, &weak, &schema).await;
            if let Some(cache) = weak.upgrade() {
                cache.set_held(false);
            }
            if let Err(error) = ended {
                tracing::warn!(%error, "the API key cache is off until its database connection is back");
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
        pool.close().await;
    });
    cache
}

/// One listening session of an instance.
struct Session<'a> {
    listener: PgListener,
    cache: &'a Weak<AuthCache>,
    schema: &'a str,
    key: i32,
    /// The server process of the session that took the lock: a check from
    /// any other (the listener reconnected) means the lock is gone.
    pid: i32,
}

impl Session<'_> {
    /// Takes the hold, then empties the cache on every notification for
    /// this schema and checks the hold every [`CHECK_EVERY`]. Returns when
    /// the session ends or the cache is gone.
    async fn listen(
        pool: &PgPool,
        cache: &Weak<AuthCache>,
        schema: &str,
    ) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.eager_reconnect(false);
        // PostgreSQL ends this session (and frees the lock) if this instance
        // stops answering on the network, instead of holding it for hours.
        sqlx::query(
            "SELECT set_config('tcp_keepalives_idle', '5', false), \
             set_config('tcp_keepalives_interval', '1', false), \
             set_config('tcp_keepalives_count', '3', false)",
        )
        .execute(&mut listener)
        .await?;
        listener.listen(CHANNEL).await?;
        let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut listener)
            .await?;
        let mut session = Session {
            listener,
            cache,
            schema,
            key: schema_key(schema),
            pid,
        };
        session.hold().await?;
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            let changed = tokio::select! {
                notification = session.listener.try_recv() => match notification? {
                    Some(notification) => notification.payload() == schema,
                    None => return Ok(()), // the session ended: start another
                },
                _ = tick.tick() => session.check().await?,
            };
            if changed {
                session.release().await?;
                session.hold().await?;
            }
            if session.cache.strong_count() == 0 {
                return Ok(());
            }
        }
    }

    /// Takes the shared lock, through the turnstile (so after any change in
    /// its barrier), and starts the cache afresh with a lease.
    async fn hold(&mut self) -> Result<(), sqlx::Error> {
        let asked_at = Instant::now();
        for (sql, class) in [
            ("SELECT pg_advisory_lock($1, $2)", TURNSTILE_CLASS),
            ("SELECT pg_advisory_lock_shared($1, $2)", LOCK_CLASS),
            ("SELECT pg_advisory_unlock($1, $2)", TURNSTILE_CLASS),
        ] {
            sqlx::query(sql)
                .bind(class)
                .bind(self.key)
                .execute(&mut self.listener)
                .await?;
        }
        if let Some(cache) = self.cache.upgrade() {
            cache.set_held(true);
            cache.renew(asked_at);
        }
        Ok(())
    }

    /// Empties the cache and stops using it, then lets a waiting change
    /// through.
    async fn release(&mut self) -> Result<(), sqlx::Error> {
        if let Some(cache) = self.cache.upgrade() {
            cache.set_held(false);
        }
        sqlx::query("SELECT pg_advisory_unlock_shared($1, $2)")
            .bind(LOCK_CLASS)
            .bind(self.key)
            .execute(&mut self.listener)
            .await?;
        Ok(())
    }

    /// Checks that this very session is still there (so it holds the lock).
    /// The answer comes after every notification sent before the check, so
    /// once those are seen the lease can be renewed from the time of asking.
    /// True when one of them was for this schema (the caller then releases
    /// and holds again instead).
    async fn check(&mut self) -> Result<bool, sqlx::Error> {
        let asked_at = Instant::now();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut self.listener)
            .await?;
        if pid != self.pid {
            return Err(sqlx::Error::Protocol(
                "the listening session was replaced, and its lock with it".into(),
            ));
        }
        // Whatever came in with the answer, without waiting for more (a
        // timeout of zero still looks once: what is already read or in the
        // socket is taken).
        let mut changed = false;
        while let Ok(received) =
            tokio::time::timeout(Duration::ZERO, self.listener.try_recv()).await
        {
            match received? {
                Some(notification) => changed |= notification.payload() == self.schema,
                None => {
                    return Err(sqlx::Error::Protocol("the listening session ended".into()));
                }
            }
        }
        if !changed && let Some(cache) = self.cache.upgrade() {
            cache.renew(asked_at);
        }
        Ok(changed)
    }
}

/// An instance's part in the scheme: its cache and its schema.
#[derive(Clone, Debug)]
pub(crate) struct AuthSync {
    pub(crate) cache: Arc<AuthCache>,
    schema: String,
}

impl AuthSync {
    pub(crate) fn start(options: PgConnectOptions, schema: &str) -> Self {
        Self {
            cache: start(options, schema.to_owned()),
            schema: schema.to_owned(),
        }
    }

    /// The barrier, run on `connection` after a change to `users` or
    /// `api_keys` was committed: returns once every instance has emptied its
    /// cache (or an instance did not answer within [`BARRIER_WAIT`]). An
    /// error may leave locks on the connection: the caller must close it.
    pub(crate) async fn barrier(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        let key = schema_key(&self.schema);
        let passed = async {
            timeout(connection, TURNSTILE_WAIT).await?;
            if !lock(connection, TURNSTILE_CLASS, key).await? {
                return Ok(false);
            }
            // On its own, so it goes out now, while the turnstile is shut.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&self.schema)
                .execute(&mut *connection)
                .await?;
            timeout(connection, BARRIER_WAIT).await?;
            lock(connection, LOCK_CLASS, key).await
        }
        .await?;
        if !passed {
            tracing::warn!(
                "an instance did not empty its API key cache in time; its lease has run out by now"
            );
        }
        sqlx::query("SELECT pg_advisory_unlock_all()")
            .execute(&mut *connection)
            .await?;
        sqlx::query("RESET lock_timeout")
            .execute(&mut *connection)
            .await?;
        Ok(())
    }
}

impl Freshness for AuthSync {
    type Connection = PgConnection;

    /// Nothing to ask: changes by any instance empty this cache as their
    /// notifications arrive, and whether it may answer at all is its own
    /// state (the hold and its lease).
    async fn before_read(&self) -> StoreResult<()> {
        Ok(())
    }

    /// The barrier. Its error is the caller's: the change is committed, but
    /// not every instance may have let go of what it replaced.
    async fn after_commit(&self, connection: &mut PgConnection) -> StoreResult<()> {
        self.barrier(connection).await.map_err(|error| {
            StoreError::Backend(format!(
                "waiting for every instance to empty its cache of keys and users: {error}"
            ))
        })
    }
}

async fn timeout(connection: &mut PgConnection, wait: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!("SET lock_timeout = '{wait}'")))
        .execute(connection)
        .await
        .map(drop)
}

/// Takes an exclusive session lock; false when the wait timed out
/// (SQLSTATE 55P03, lock_not_available).
async fn lock(connection: &mut PgConnection, class: i32, key: i32) -> Result<bool, sqlx::Error> {
    match sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(class)
        .bind(key)
        .execute(connection)
        .await
    {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("55P03") => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_schema() {
        assert_eq!(schema_key("public"), schema_key("public"));
        assert_ne!(schema_key("public"), schema_key("usher"));
    }
}
