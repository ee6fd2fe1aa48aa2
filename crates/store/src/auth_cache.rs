//! PostgreSQL only: API keys and the users the public API reads, kept in
//! memory, and dropped on every instance before a change to them returns.
//!
//! Issue 6 asks two things of the public API: a key loses its rights at once
//! when its user is demoted or deleted, on every instance, and a single-user
//! read runs at no less than half the rate of `/healthz`. A query to
//! PostgreSQL per request cannot meet the second on two cores; a cache that
//! is emptied "soon" cannot meet the first. This one is emptied *before* the
//! change is answered, the way Keycloak invalidates its caches across a
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
//! A read that began before a change and finishes after the cache was
//! emptied must not put its old answer in the cache: each emptying starts a
//! new generation, and an answer is kept only if the generation it was read
//! in is still current.
//!
//! On SQLite the same cache is checked on every read instead
//! ([`AuthCache::checked_per_read`]): every instance on a database file runs
//! on the same machine, and SQLite tells a connection whether anyone
//! committed since it last looked (`PRAGMA data_version`), which costs less
//! than the lookup it saves (see [`crate::inline`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions},
};
use usher_domain::{
    clock::Millis,
    model::{User, UserId},
    store::{ApiKey, KeyUse, UserRef},
};

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
/// Entries kept at most, per map; past that the cache starts over.
const CAPACITY: usize = 10_000;

/// The second half of the lock key: the schema's name, hashed (FNV-1a), so
/// that instances on different schemas of one database do not wait on each
/// other.
pub(crate) fn schema_key(schema: &str) -> i32 {
    let hash = schema.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

#[derive(Debug, Default)]
struct Entries {
    /// SQLite: the caller checks the database before every lookup, so
    /// neither hold nor lease applies.
    checked_per_read: bool,
    /// Whether the listening session holds the shared lock.
    held: bool,
    /// Until when the last successful check lets the cache be used.
    lease_until: Option<Instant>,
    generation: u64,
    keys: HashMap<String, (ApiKey, User)>,
    users: HashMap<UserId, User>,
    emails: HashMap<String, UserId>,
}

impl Entries {
    fn usable(&self) -> bool {
        self.checked_per_read
            || (self.held && self.lease_until.is_some_and(|until| Instant::now() < until))
    }

    fn empty(&mut self) {
        self.generation += 1;
        self.keys.clear();
        self.users.clear();
        self.emails.clear();
    }

    fn user(&self, target: &UserRef) -> Option<&User> {
        let id = match target {
            UserRef::Id(id) => id,
            UserRef::Email(email) => self.emails.get(email.as_str())?,
        };
        self.users.get(id)
    }

    fn keep_user(&mut self, user: &User) {
        if self.users.len() >= CAPACITY {
            self.users.clear();
            self.emails.clear();
        }
        if let Some(email) = &user.email {
            self.emails.insert(email.as_str().to_owned(), user.id);
        }
        self.users.insert(user.id, user.clone());
    }
}

/// The cache of one instance. Cheap to share: the listening task holds it
/// weakly and ends when the store is gone.
#[derive(Debug, Default)]
pub(crate) struct AuthCache {
    entries: Mutex<Entries>,
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// Everything the request needs.
    Hit(Box<KeyUse>),
    /// Read the database; keep the answer with [`AuthCache::keep`] under
    /// this generation.
    Miss(u64),
    /// The cache may not be used now: read the database, keep nothing.
    Off,
}

impl AuthCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding this lock leaves plain maps behind: usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cache whose caller finds out on every read whether anything
    /// changed, and empties it if so (SQLite).
    pub(crate) fn checked_per_read() -> Self {
        Self {
            entries: Mutex::new(Entries {
                checked_per_read: true,
                ..Entries::default()
            }),
        }
    }

    /// Forgets everything, for a caller that saw the database change.
    pub(crate) fn empty(&self) {
        self.lock().empty();
    }

    pub(crate) fn lookup(&self, key_hash: &str, target: Option<&UserRef>) -> Lookup {
        let entries = self.lock();
        if !entries.usable() {
            return Lookup::Off;
        }
        let Some((key, user)) = entries.keys.get(key_hash) else {
            return Lookup::Miss(entries.generation);
        };
        let target = match target {
            None => None,
            Some(target) => match entries.user(target) {
                Some(found) => Some(found.clone()),
                None => return Lookup::Miss(entries.generation),
            },
        };
        Lookup::Hit(Box::new(KeyUse {
            key: key.clone(),
            user: user.clone(),
            target,
        }))
    }

    /// Keeps what a read of `generation` found, unless the cache was emptied
    /// since.
    pub(crate) fn keep(&self, generation: u64, found: &KeyUse) {
        let mut entries = self.lock();
        if entries.generation != generation || !entries.usable() {
            return;
        }
        if entries.keys.len() >= CAPACITY {
            entries.keys.clear();
        }
        entries.keys.insert(
            found.key.key_hash.clone(),
            (found.key.clone(), found.user.clone()),
        );
        entries.keep_user(&found.user);
        if let Some(target) = &found.target {
            entries.keep_user(target);
        }
    }

    /// Records a key's use, written to the database once a minute, so the
    /// cached key does not ask for that write on every request.
    pub(crate) fn used(&self, key_hash: &str, at: Millis) {
        if let Some((key, _)) = self.lock().keys.get_mut(key_hash) {
            key.last_used_at = Some(at);
        }
    }

    fn set_held(&self, held: bool) {
        let mut entries = self.lock();
        entries.empty();
        entries.held = held;
        entries.lease_until = None;
    }

    fn renew(&self, checked_at: Instant) {
        self.lock().lease_until = Some(checked_at + LEASE);
    }
}

/// Starts the listening task of an instance on `schema`. It runs until the
/// returned cache is dropped.
pub(crate) fn start(options: PgConnectOptions, schema: String) -> Arc<AuthCache> {
    let cache = Arc::new(AuthCache::default());
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
    use usher_domain::model::{Email, Role};

    use super::*;

    fn found(email: &str, hash: &str) -> KeyUse {
        let user = User {
            id: UserId::new(),
            email: Email::parse(email).ok(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            role: Role::Admin,
            password_hash: Some("hash".into()),
            password_change_required: false,
            mfa_enabled: false,
            invited_by: None,
            invited_at: None,
            created_at: 1,
            updated_at: 1,
        };
        KeyUse {
            key: ApiKey {
                id: uuid::Uuid::now_v7(),
                user_id: user.id,
                label: "k".into(),
                key_hash: hash.into(),
                last_chars: "abcd".into(),
                scopes: vec!["user:read".into()],
                expires_at: None,
                created_at: 1,
                last_used_at: None,
            },
            target: Some(user.clone()),
            user,
        }
    }

    fn held() -> AuthCache {
        let cache = AuthCache::default();
        cache.set_held(true);
        cache.renew(Instant::now());
        cache
    }

    fn generation(lookup: Lookup) -> u64 {
        match lookup {
            Lookup::Miss(generation) => generation,
            Lookup::Hit(_) => panic!("a hit where a miss was due"),
            Lookup::Off => panic!("the cache is off"),
        }
    }

    #[test]
    fn keeps_what_it_read_and_finds_it_by_key_id_and_email() {
        let cache = held();
        let ada = found("ada@example.com", "h1");
        let target = UserRef::Id(ada.user.id);
        cache.keep(generation(cache.lookup("h1", Some(&target))), &ada);
        let Lookup::Hit(hit) = cache.lookup("h1", Some(&target)) else {
            panic!("no hit");
        };
        assert_eq!(hit.user.id, ada.user.id);
        let email =
            UserRef::Email(Email::parse("ada@example.com").unwrap_or_else(|e| panic!("{e}")));
        assert!(matches!(cache.lookup("h1", Some(&email)), Lookup::Hit(_)));
        assert!(matches!(cache.lookup("h2", None), Lookup::Miss(_)));
        let nobody = UserRef::Id(UserId::new());
        assert!(
            matches!(cache.lookup("h1", Some(&nobody)), Lookup::Miss(_)),
            "unknown targets are read, not remembered"
        );
    }

    #[test]
    fn a_read_from_before_an_emptying_is_not_kept() {
        let cache = held();
        let ada = found("ada@example.com", "h1");
        let before = generation(cache.lookup("h1", None));
        // A change arrives while the read is under way.
        cache.set_held(false);
        cache.set_held(true);
        cache.renew(Instant::now());
        cache.keep(before, &ada);
        assert!(matches!(cache.lookup("h1", None), Lookup::Miss(_)));
    }

    #[test]
    fn is_off_without_the_lock_or_past_its_lease() {
        let cache = AuthCache::default();
        assert!(
            matches!(cache.lookup("h1", None), Lookup::Off),
            "off until the lock is held"
        );
        let cache = held();
        cache.set_held(false);
        assert!(
            matches!(cache.lookup("h1", None), Lookup::Off),
            "off once let go"
        );
        let cache = AuthCache::default();
        cache.set_held(true);
        cache.renew(Instant::now() - LEASE);
        assert!(
            matches!(cache.lookup("h1", None), Lookup::Off),
            "off when the lease ran out"
        );
    }

    #[test]
    fn lock_keys_differ_by_schema() {
        assert_eq!(schema_key("public"), schema_key("public"));
        assert_ne!(schema_key("public"), schema_key("usher"));
    }
}
