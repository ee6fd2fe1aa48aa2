//! Inline SQLite reads: the API key lookup on every public API request runs
//! on the calling thread, through rusqlite, instead of through sqlx, and
//! answers from a cache while the database has not changed.
//!
//! sqlx runs each SQLite connection on a thread of its own; a query is a
//! message to that thread and an answer back, two thread wake-ups that cost
//! more than the primary-key lookup itself (docs/performance.md). Here the
//! connection asks `PRAGMA data_version` (did anyone commit since I last
//! asked?) and, only if so or on a miss, runs the lookup. Both read pages
//! SQLite already holds and take microseconds, less than the hop, so
//! blocking the runtime's thread for them is the cheaper way (the same
//! judgement as a `Mutex` held briefly). Only such point reads come here:
//! pages of users stay on the native pool, where a longer read does not hold
//! up other requests.
//!
//! Readers never wait for the writer in WAL mode. The busy timeout covers
//! the moments a reader must (a connection recovering the WAL after a crash)
//! and is short, so a runtime thread is never held long.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, Params, Row, types::FromSql};
use usher_domain::store::{StoreError, StoreResult};

use crate::{auth_cache::AuthCache, rows::Readable};

/// The longest a read waits for a lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);
/// Idle connections kept for reuse; more are opened when more threads read
/// at once, and closed after.
const KEEP: usize = 8;

/// Read-only connections to one SQLite database, opened on first use.
#[derive(Clone, Debug)]
pub(crate) struct InlineSqlite {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Pooled>>>,
    /// Keys in use, their users and the users they read, emptied whenever a
    /// connection finds the database changed (see [`Self::refresh_cache`]).
    cache: Arc<AuthCache>,
}

/// A connection, and the column names of each statement it ran: rows are
/// read by name, and asking SQLite for names on every read cost more than
/// the read itself (docs/performance.md).
#[derive(Debug)]
struct Pooled {
    connection: Connection,
    /// What `PRAGMA data_version` said when this connection last asked.
    data_version: Option<i64>,
    /// By the address and length of the statement's text (hashing the text
    /// would cost as much as the lookup), each column's index by name.
    columns: HashMap<(usize, usize), HashMap<String, usize>>,
}

impl InlineSqlite {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Arc::default(),
            cache: Arc::new(AuthCache::checked_per_read()),
        }
    }

    /// The cache of keys in use, their users and the users they read.
    pub(crate) fn cache(&self) -> &AuthCache {
        &self.cache
    }

    /// Empties the cache if anything was committed to the database since
    /// the connection at hand last asked (`PRAGMA data_version`, which
    /// changes when any other connection, of any process, committed), so
    /// the cache is emptied at the first read after any change, made by
    /// Usher or not.
    pub(crate) fn refresh_cache(&self) -> StoreResult<()> {
        self.on_connection(|pooled| {
            if pooled.changed()? {
                self.cache.empty();
            }
            Ok(())
        })
    }

    /// Runs `sql` and decodes its first row, if any, with `decode`.
    pub(crate) fn query_row<T>(
        &self,
        sql: &'static str,
        params: impl Params,
        decode: impl FnOnce(&Lite<'_, '_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.on_connection(|pooled| pooled.query_row(sql, params, decode))
    }

    /// Runs `run` on an idle connection (or a new one). A connection that
    /// gave an error is closed rather than kept.
    fn on_connection<T>(&self, run: impl FnOnce(&mut Pooled) -> StoreResult<T>) -> StoreResult<T> {
        let idle = self.idle.lock().map(|mut idle| idle.pop()).ok().flatten();
        let mut pooled = match idle {
            Some(pooled) => pooled,
            None => self.open().map_err(lite_error)?,
        };
        let result = run(&mut pooled);
        if result.is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP
        {
            idle.push(pooled);
        }
        result
    }

    /// Opened read-write but made query-only: a read-only connection cannot
    /// recreate the WAL's shared-memory file when the last other connection
    /// closed and removed it.
    fn open(&self) -> rusqlite::Result<Pooled> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(Pooled {
            connection,
            data_version: None,
            columns: HashMap::new(),
        })
    }

    pub(crate) fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

impl Pooled {
    /// Whether anyone committed since this connection last asked (true the
    /// first time: it has not seen the database before).
    fn changed(&mut self) -> StoreResult<bool> {
        let version: i64 = self
            .connection
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(lite_error)?;
        let changed = self.data_version != Some(version);
        self.data_version = Some(version);
        Ok(changed)
    }

    fn query_row<T>(
        &mut self,
        sql: &'static str,
        params: impl Params,
        decode: impl FnOnce(&Lite<'_, '_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let mut statement = self.connection.prepare_cached(sql).map_err(lite_error)?;
        let names = self
            .columns
            .entry((sql.as_ptr() as usize, sql.len()))
            .or_insert_with(|| {
                (statement.column_names().into_iter())
                    .enumerate()
                    .map(|(index, name)| (name.to_owned(), index))
                    .collect()
            });
        let mut rows = statement.query(params).map_err(lite_error)?;
        match rows.next().map_err(lite_error)? {
            Some(row) => decode(&Lite { row, names }).map(Some),
            None => Ok(None),
        }
    }
}

/// A rusqlite row, readable by the record readers in [`crate::rows`].
pub(crate) struct Lite<'a, 'r> {
    row: &'a Row<'r>,
    names: &'a HashMap<String, usize>,
}

impl Lite<'_, '_> {
    fn get<T: FromSql>(&self, column: &str) -> StoreResult<T> {
        let index = *self
            .names
            .get(column)
            .ok_or_else(|| StoreError::Backend(format!("SQLite read: no column {column}")))?;
        self.row.get(index).map_err(lite_error)
    }
}

impl Readable for Lite<'_, '_> {
    fn text(&self, column: &str) -> StoreResult<String> {
        self.get(column)
    }
    fn maybe_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.get(column)
    }
    fn number(&self, column: &str) -> StoreResult<i64> {
        self.get(column)
    }
    fn maybe_number(&self, column: &str) -> StoreResult<Option<i64>> {
        self.get(column)
    }
}

pub(crate) fn lite_error(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("SQLite read: {error}"))
}
