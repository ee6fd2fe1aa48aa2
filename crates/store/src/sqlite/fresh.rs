//! SQLite's freshness check: before the cache answers, a connection asks
//! `PRAGMA data_version`, which changes when any other connection, of any
//! process, committed since it last asked. If it changed, the cache is
//! emptied. Every instance on a database file runs on the same machine and
//! asks the file itself, so each sees every change at once, made by Usher or
//! typed at a prompt. This process's own commits do not show in the
//! `data_version` of the connection that made them, so the write guard
//! empties the cache after each of those ([`Freshness::after_commit`]).
//!
//! The question runs on the calling thread, through rusqlite, not through
//! sqlx: sqlx runs each SQLite connection on a thread of its own, and a
//! question there is a message to that thread and an answer back, two
//! thread wake-ups that cost more than the answer. Asked that way, the
//! single-user read ran at 26–30 % of `/healthz` (docs/performance.md);
//! asked here, where it takes microseconds (readers never wait for the
//! writer in WAL mode), the aim of half is met. The busy timeout covers the
//! rare moments a reader must wait (a connection recovering the WAL after a
//! crash) and is short, so a runtime thread is never held long. rusqlite
//! links the same bundled SQLite as sqlx (one `libsqlite3-sys`), and asks
//! nothing else: every read and write of data goes through sqlx.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};
use sqlx::SqliteConnection;
use usher_domain::store::{StoreError, StoreResult};

use crate::cache::{AuthCache, Freshness};

/// The longest the question waits for a lock.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);
/// Connections kept for the question. A thread takes the first that no
/// other thread holds, without waiting (two threads waiting on one lock
/// cost a sleep and a wake-up each, more than the question); when every
/// one is taken, it opens another for the moment.
const KEEP: usize = 4;

/// Asks the database whether anyone committed, and empties the cache if so.
#[derive(Debug)]
pub(crate) struct DataVersion {
    /// What rusqlite opens: a file's path, or a `file:` URI in memory.
    target: String,
    askers: [Mutex<Option<Asker>>; KEEP],
    cache: Arc<AuthCache>,
}

/// A connection that asks, and what it was told last time.
#[derive(Debug)]
struct Asker {
    connection: Connection,
    seen: Option<i64>,
}

impl DataVersion {
    pub(crate) fn file(path: &std::path::Path, cache: Arc<AuthCache>) -> Self {
        Self::new(path.display().to_string(), cache)
    }

    /// The `memdb` database `name` (which starts with `/`, so that every
    /// connection of the process shares it).
    pub(crate) fn memory(name: &str, cache: Arc<AuthCache>) -> Self {
        Self::new(format!("file:{name}?vfs=memdb"), cache)
    }

    fn new(target: String, cache: Arc<AuthCache>) -> Self {
        Self {
            target,
            askers: Default::default(),
            cache,
        }
    }

    /// Opened read-write but made query-only: a read-only connection cannot
    /// recreate the WAL's shared-memory file when the last other connection
    /// closed and removed it.
    fn open(&self) -> rusqlite::Result<Asker> {
        let connection = Connection::open_with_flags(
            &self.target,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(Asker {
            connection,
            seen: None,
        })
    }

    /// Whether anyone committed since the connection at hand last asked
    /// (true the first time: it has not seen the database before).
    fn changed(&self) -> rusqlite::Result<bool> {
        for slot in &self.askers {
            if let Ok(mut slot) = slot.try_lock() {
                let asker = match slot.take() {
                    Some(asker) => asker,
                    None => self.open()?,
                };
                // A connection that failed is not kept.
                let (asker, changed) = asker.ask()?;
                *slot = Some(asker);
                return Ok(changed);
            }
        }
        Ok(self.open()?.ask()?.1)
    }

    pub(crate) fn close(&self) {
        for slot in &self.askers {
            if let Ok(mut slot) = slot.lock() {
                *slot = None;
            }
        }
    }
}

impl Asker {
    /// Asks, and says whether the answer differs from the last one.
    fn ask(mut self) -> rusqlite::Result<(Self, bool)> {
        let version: i64 = self
            .connection
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        let changed = self.seen != Some(version);
        self.seen = Some(version);
        Ok((self, changed))
    }
}

impl Freshness for DataVersion {
    type Connection = SqliteConnection;

    async fn before_read(&self) -> StoreResult<()> {
        let changed = self
            .changed()
            .map_err(|e| StoreError::Backend(format!("SQLite data_version: {e}")))?;
        if changed {
            self.cache.empty();
        }
        Ok(())
    }

    async fn after_commit(&self, _: &mut SqliteConnection) -> StoreResult<()> {
        self.cache.empty();
        Ok(())
    }
}
