//! API keys in use, users and app tokens, kept in memory, and the one
//! interface by which each database keeps them true to what is stored.
//!
//! Every public API request finds its key and the key's user, and most then
//! read a user; the pages read the signed-in user's record again and again.
//! A key must lose its rights *at once* when its user is demoted or deleted
//! or the key is changed, on every instance, also when the change is made in
//! SQL behind Usher's back, and the single-user read should run at no less
//! than half the rate of `/healthz` (docs/performance.md). So the store
//! answers these reads from memory under a rule that keeps them exact:
//!
//! - before each answer from the cache, [`Freshness::before_read`] brings it
//!   up to date (SQLite asks the file whether anyone committed since:
//!   `crate::sqlite::fresh`);
//! - after each change to `users` or `api_keys` this process commits,
//!   [`Freshness::after_commit`] runs before the change returns (SQLite
//!   empties this process's cache; PostgreSQL returns once every instance has
//!   emptied its own: `crate::postgres::sync`). The write guard
//!   ([`crate::write::AuthWrite`]) is the only way to run such a change, and
//!   it calls this in its `commit`, so no write can forget it.
//!
//! A read that began before an emptying must not put its old answer in the
//! cache: each emptying starts a new generation, and an answer is kept only
//! if the generation it was read under is still current. Nothing is cached
//! for keys or users that do not exist.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::Instant,
};

use usher_domain::{
    apps::App,
    clock::Millis,
    model::{User, UserId},
    store::{ApiKey, ForwardAccess, OidcGrant, OidcToken, StoreResult, UserRef},
};

/// How a database keeps this process's cache true to what is stored.
pub(crate) trait Freshness {
    /// The connection a change was committed on.
    type Connection;

    /// Runs before the cache answers: after it, the cache holds nothing
    /// older than the last change committed anywhere.
    fn before_read(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Runs after this process committed a change to `users` or `api_keys`
    /// on `connection`, before the change returns: after it, no instance
    /// answers from what the change replaced.
    fn after_commit(
        &self,
        connection: &mut Self::Connection,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Entries kept at most, per map; past that the map starts over.
const CAPACITY: usize = 10_000;

/// When the cache may answer.
#[derive(Debug)]
enum Mode {
    /// SQLite: the store checks the database before every answer.
    CheckedPerRead,
    /// PostgreSQL: while the instance holds the shared lock and within the
    /// lease of its last check (`crate::postgres::sync`).
    Held {
        held: bool,
        lease_until: Option<Instant>,
    },
}

#[derive(Debug)]
struct Entries {
    mode: Mode,
    generation: u64,
    /// Shared, so that a lookup holds the lock only to count a reference
    /// and copies the record after letting go.
    keys: HashMap<String, Arc<(ApiKey, User)>>,
    users: HashMap<UserId, Arc<User>>,
    emails: HashMap<String, UserId>,
    /// Forward authentication: the apps with a door, and per cookie and
    /// app, who the cookie names and their place in the app.
    forward_apps: Option<(Arc<[App]>, bool)>,
    forward: HashMap<String, Arc<ForwardAccess>>,
    /// App tokens by hash, with their grants: UserInfo and introspection.
    tokens: HashMap<String, Arc<(OidcToken, OidcGrant)>>,
}

impl Entries {
    fn usable(&self) -> bool {
        match self.mode {
            Mode::CheckedPerRead => true,
            Mode::Held { held, lease_until } => {
                held && lease_until.is_some_and(|until| Instant::now() < until)
            }
        }
    }

    fn empty(&mut self) {
        self.generation += 1;
        self.keys.clear();
        self.users.clear();
        self.emails.clear();
        self.forward_apps = None;
        self.forward.clear();
        self.tokens.clear();
    }

    fn lookup<T>(&self, find: impl FnOnce(&Self) -> Option<T>) -> Lookup<T> {
        if !self.usable() {
            return Lookup::Off;
        }
        match find(self) {
            Some(found) => Lookup::Hit(found),
            None => Lookup::Miss(self.generation),
        }
    }

    /// Whether an answer read under `generation` may be kept.
    fn current(&self, generation: u64) -> bool {
        self.generation == generation && self.usable()
    }

    fn keep_user(&mut self, user: &User) {
        if self.users.len() >= CAPACITY {
            self.users.clear();
            self.emails.clear();
        }
        if let Some(email) = &user.email {
            self.emails.insert(email.as_str().to_owned(), user.id);
        }
        self.users.insert(user.id, Arc::new(user.clone()));
    }
}

/// What the cache holds for a question.
#[derive(Debug)]
pub(crate) enum Lookup<T> {
    Hit(T),
    /// Read the database; keep the answer under this generation.
    Miss(u64),
    /// The cache may not be used now: read the database, keep nothing.
    Off,
}

impl<T> Lookup<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        match self {
            Lookup::Hit(found) => Lookup::Hit(f(found)),
            Lookup::Miss(generation) => Lookup::Miss(generation),
            Lookup::Off => Lookup::Off,
        }
    }
}

/// The cache of one instance. Lookups take the lock for reading, so the
/// runtime's threads do not wait on each other to answer.
#[derive(Debug)]
pub(crate) struct AuthCache {
    entries: RwLock<Entries>,
}

impl AuthCache {
    fn with_mode(mode: Mode) -> Self {
        Self {
            entries: RwLock::new(Entries {
                mode,
                generation: 0,
                keys: HashMap::new(),
                users: HashMap::new(),
                emails: HashMap::new(),
                forward_apps: None,
                forward: HashMap::new(),
                tokens: HashMap::new(),
            }),
        }
    }

    /// A cache whose store checks the database before every answer
    /// (SQLite).
    pub(crate) fn checked_per_read() -> Self {
        Self::with_mode(Mode::CheckedPerRead)
    }

    /// A cache that answers only while its instance holds the lock, within
    /// a lease (PostgreSQL); off until then.
    pub(crate) fn held_by_lock() -> Self {
        Self::with_mode(Mode::Held {
            held: false,
            lease_until: None,
        })
    }

    // A panic while holding this lock leaves plain maps behind: usable.
    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets everything: the database changed.
    pub(crate) fn empty(&self) {
        self.lock().empty();
    }

    /// The key with this hash and its user.
    pub(crate) fn key(&self, key_hash: &str) -> Lookup<(ApiKey, User)> {
        let found = self
            .read()
            .lookup(|entries| entries.keys.get(key_hash).cloned());
        found.map(|found| found.as_ref().clone())
    }

    /// The user named by id or email.
    pub(crate) fn user(&self, target: &UserRef) -> Lookup<User> {
        let found = self.read().lookup(|entries| {
            let id = match target {
                UserRef::Id(id) => id,
                UserRef::Email(email) => entries.emails.get(email.as_str())?,
            };
            entries.users.get(id).cloned()
        });
        found.map(|user| user.as_ref().clone())
    }

    /// Keeps a key and its user read under `generation`, unless the cache
    /// was emptied since.
    pub(crate) fn keep_key(&self, generation: u64, key: &ApiKey, user: &User) {
        let mut entries = self.lock();
        if !entries.current(generation) {
            return;
        }
        if entries.keys.len() >= CAPACITY {
            entries.keys.clear();
        }
        entries
            .keys
            .insert(key.key_hash.clone(), Arc::new((key.clone(), user.clone())));
        entries.keep_user(user);
    }

    /// The app token with this hash and its grant.
    pub(crate) fn token(&self, token_hash: &str) -> Lookup<(OidcToken, OidcGrant)> {
        let found = self
            .read()
            .lookup(|entries| entries.tokens.get(token_hash).cloned());
        found.map(|found| found.as_ref().clone())
    }

    /// Keeps an app token and its grant read under `generation`, unless the
    /// cache was emptied since.
    pub(crate) fn keep_token(&self, generation: u64, token: &OidcToken, grant: &OidcGrant) {
        let mut entries = self.lock();
        if !entries.current(generation) {
            return;
        }
        if entries.tokens.len() >= CAPACITY {
            entries.tokens.clear();
        }
        entries.tokens.insert(
            token.token_hash.clone(),
            Arc::new((token.clone(), grant.clone())),
        );
    }

    /// Keeps a user read under `generation`, unless the cache was emptied
    /// since.
    pub(crate) fn keep_user(&self, generation: u64, user: &User) {
        let mut entries = self.lock();
        if entries.current(generation) {
            entries.keep_user(user);
        }
    }

    /// The apps with forward authentication.
    /// With whether the owner requires two-factor of everyone.
    pub(crate) fn forward_apps(&self) -> Lookup<(Arc<[App]>, bool)> {
        self.read().lookup(|entries| entries.forward_apps.clone())
    }

    pub(crate) fn keep_forward_apps(&self, generation: u64, apps: (Arc<[App]>, bool)) {
        let mut entries = self.lock();
        if entries.current(generation) {
            entries.forward_apps = Some(apps);
        }
    }

    /// Who a forward-auth cookie names and their place in one app, under
    /// `key` (the cookie's kind, hash and the app).
    pub(crate) fn forward(&self, key: &str) -> Lookup<ForwardAccess> {
        let found = self
            .read()
            .lookup(|entries| entries.forward.get(key).cloned());
        found.map(|access| access.as_ref().clone())
    }

    pub(crate) fn keep_forward(&self, generation: u64, key: String, access: &ForwardAccess) {
        let mut entries = self.lock();
        if !entries.current(generation) {
            return;
        }
        if entries.forward.len() >= CAPACITY {
            entries.forward.clear();
        }
        entries.forward.insert(key, Arc::new(access.clone()));
    }

    /// Records a key's use, written to the database once a minute, so the
    /// cached key does not ask for that write on every request.
    pub(crate) fn used(&self, key_hash: &str, at: Millis) {
        if let Some(entry) = self.lock().keys.get_mut(key_hash) {
            Arc::make_mut(entry).0.last_used_at = Some(at);
        }
    }

    /// PostgreSQL: the instance took or gave up its lock. Either way what
    /// the cache holds may be old now.
    pub(crate) fn set_held(&self, now_held: bool) {
        let mut entries = self.lock();
        entries.empty();
        if let Mode::Held { held, lease_until } = &mut entries.mode {
            *held = now_held;
            *lease_until = None;
        }
    }

    /// PostgreSQL: a check asked at `checked_at` found the lock still held.
    pub(crate) fn renew(&self, checked_at: Instant) {
        if let Mode::Held { lease_until, .. } = &mut self.lock().mode {
            *lease_until = Some(checked_at + crate::postgres::sync::LEASE);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use usher_domain::model::{Email, Role};

    use super::*;

    /// A key with hash `hash` of a new admin at `email`.
    pub(crate) fn ada(email: &str, hash: &str) -> (ApiKey, User) {
        let user = User {
            id: UserId::new(),
            email: Email::parse(email).ok(),
            email_verified: true,
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
            last_active_at: None,
            ldap_id: None,
            disabled: false,
        };
        let key = ApiKey {
            id: uuid::Uuid::now_v7(),
            user_id: user.id,
            label: "k".into(),
            key_hash: hash.into(),
            last_chars: "abcd".into(),
            scopes: vec!["user:read".into()],
            expires_at: None,
            created_at: 1,
            last_used_at: None,
        };
        (key, user)
    }

    fn held() -> AuthCache {
        let cache = AuthCache::held_by_lock();
        cache.set_held(true);
        cache.renew(Instant::now());
        cache
    }

    fn generation<T>(lookup: Lookup<T>) -> u64 {
        match lookup {
            Lookup::Miss(generation) => generation,
            Lookup::Hit(_) => panic!("a hit where a miss was due"),
            Lookup::Off => panic!("the cache is off"),
        }
    }

    #[test]
    fn keeps_what_it_read_and_finds_it_by_key_id_and_email() {
        let cache = held();
        let (key, user) = ada("ada@example.com", "h1");
        cache.keep_key(generation(cache.key("h1")), &key, &user);
        let Lookup::Hit((_, found)) = cache.key("h1") else {
            panic!("no hit");
        };
        assert_eq!(found.id, user.id);
        assert!(matches!(cache.user(&UserRef::Id(user.id)), Lookup::Hit(_)));
        let email =
            UserRef::Email(Email::parse("ada@example.com").unwrap_or_else(|e| panic!("{e}")));
        assert!(matches!(cache.user(&email), Lookup::Hit(_)));
        assert!(matches!(cache.key("h2"), Lookup::Miss(_)));
        assert!(
            matches!(cache.user(&UserRef::Id(UserId::new())), Lookup::Miss(_)),
            "unknown users are read, not remembered"
        );
    }

    #[test]
    fn a_read_from_before_an_emptying_is_not_kept() {
        for cache in [held(), AuthCache::checked_per_read()] {
            let (key, user) = ada("ada@example.com", "h1");
            let before = generation(cache.key("h1"));
            // A change arrives while the read is under way.
            cache.empty();
            cache.keep_key(before, &key, &user);
            cache.keep_user(before, &user);
            assert!(matches!(cache.key("h1"), Lookup::Miss(_)));
            assert!(matches!(cache.user(&UserRef::Id(user.id)), Lookup::Miss(_)));
        }
    }

    #[test]
    fn a_held_cache_is_off_without_the_lock_or_past_its_lease() {
        let cache = AuthCache::held_by_lock();
        assert!(
            matches!(cache.key("h1"), Lookup::Off),
            "off until the lock is held"
        );
        let cache = held();
        cache.set_held(false);
        assert!(matches!(cache.key("h1"), Lookup::Off), "off once let go");
        let cache = AuthCache::held_by_lock();
        cache.set_held(true);
        cache.renew(Instant::now() - crate::postgres::sync::LEASE);
        assert!(
            matches!(cache.key("h1"), Lookup::Off),
            "off when the lease ran out"
        );
    }
}
