//! SQLite's freshness check: before the cache answers, the store finds out
//! whether anyone (any connection, of any process) committed since it last
//! looked, and empties the cache if so. Every instance on a database file
//! runs on the same machine and asks the file itself, so each sees every
//! change at once, made by Usher or typed at a prompt.
//!
//! In WAL mode (every database file Usher opens), SQLite publishes each
//! commit in the WAL-index header at the start of the `-shm` file: two
//! copies of a 48-byte header whose change counter, last frame and salts
//! change with every commit, written when the commit becomes visible
//! (`walIndexWriteHdr`, second copy first). That header is what
//! `PRAGMA data_version` is derived from: a connection that starts a read
//! transaction compares it with what it saw before. The store reads the two
//! copies itself, with one `pread`, and compares them with what it read
//! last; if they differ from each other (a commit is being published) or
//! from the last read, something changed. Asked as `PRAGMA data_version`,
//! the question took SQLite's shared-memory mutex and two file-lock system
//! calls, and with two questions per single-user read (the key, then the
//! user) the runtime's two threads queued on that mutex: the read fell to
//! 48–59 % of `/healthz` (docs/performance.md). Read this way nothing
//! waits on anything, and the read is back near where it was.
//!
//! A database in memory (`connect_in_memory`, SQLite's `memdb` VFS) has no
//! WAL, so there the store asks `PRAGMA data_version` on a connection of its
//! own: tests do not need the speed.
//!
//! Either way this process's own commits are not guaranteed to show before
//! the next answer (a connection does not see its own commits in
//! `data_version`), so the write guard empties the cache after each of
//! those ([`Freshness::after_commit`]).

use std::{
    fs::File,
    path::Path,
    sync::{Arc, Mutex},
};

use sqlx::{ConnectOptions, SqliteConnection, sqlite::SqliteConnectOptions};
use usher_domain::store::{StoreError, StoreResult};

use crate::{
    cache::{AuthCache, Freshness},
    db_error,
};

/// The WAL-index header's size; two copies of it start the `-shm` file.
const HEADER: usize = 48;
/// The header's version field (`WALINDEX_MAX_VERSION`), the only one SQLite
/// has written since WAL mode came (3.7.0). Another means another layout.
const WAL_INDEX_VERSION: u32 = 3_007_000;

/// Finds out whether the database changed, and empties the cache if so.
#[derive(Debug)]
pub(crate) struct Fresh {
    how: How,
    cache: Arc<AuthCache>,
}

#[derive(Debug)]
enum How {
    /// A database file in WAL mode: its `-shm` file, and the header read
    /// last (None before the first read, or after a read of a header being
    /// written).
    WalIndex {
        shm: File,
        last: Mutex<Option<[u8; HEADER]>>,
    },
    /// A database in memory: a connection that asks `PRAGMA data_version`,
    /// and its last answer.
    DataVersion {
        options: Box<SqliteConnectOptions>,
        asker: tokio::sync::Mutex<Option<(SqliteConnection, i64)>>,
    },
}

impl Fresh {
    /// For the WAL-mode database file at `path`, opened already (so its
    /// `-shm` file exists, and stays while the store keeps a connection).
    pub(crate) fn file(path: &Path, cache: Arc<AuthCache>) -> Result<Self, String> {
        let mut shm = path.as_os_str().to_owned();
        shm.push("-shm");
        let shm = File::open(&shm)
            .map_err(|e| format!("cannot read {}: {e}", Path::new(&shm).display()))?;
        Ok(Self {
            how: How::WalIndex {
                shm,
                last: Mutex::new(None),
            },
            cache,
        })
    }

    /// For a database in memory, opened with `options`.
    pub(crate) fn memory(options: SqliteConnectOptions, cache: Arc<AuthCache>) -> Self {
        Self {
            how: How::DataVersion {
                options: Box::new(options),
                asker: tokio::sync::Mutex::new(None),
            },
            cache,
        }
    }

    /// Empties the cache if anything was committed since the last look.
    async fn refresh(&self) -> StoreResult<()> {
        match &self.how {
            How::WalIndex { shm, last } => {
                let mut copies = [0_u8; 2 * HEADER];
                read_start(shm, &mut copies)
                    .map_err(|e| StoreError::Backend(format!("SQLite WAL index: {e}")))?;
                let (first, second) = copies.split_at(HEADER);
                let header = (first == second && published(first))
                    .then(|| <[u8; HEADER]>::try_from(first).ok())
                    .flatten();
                // A panic while holding this lock leaves a plain value.
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                // Emptied under the lock: a thread that finds the header
                // unchanged after this one saw it change must find the cache
                // emptied too.
                if header.is_none() || *last != header {
                    self.cache.empty();
                }
                *last = header;
            }
            How::DataVersion { options, asker } => {
                let mut asker = asker.lock().await;
                let (mut connection, seen) = match asker.take() {
                    Some((connection, seen)) => (connection, Some(seen)),
                    None => (options.connect().await.map_err(db_error)?, None),
                };
                let version: i64 = sqlx::query_scalar("PRAGMA data_version")
                    .fetch_one(&mut connection)
                    .await
                    .map_err(db_error)?;
                if seen != Some(version) {
                    self.cache.empty();
                }
                *asker = Some((connection, version));
            }
        }
        Ok(())
    }
}

/// Fills `buffer` from the start of `file`, in one system call where it
/// can, without moving a shared file position.
#[cfg(unix)]
fn read_start(file: &File, buffer: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, 0)
}

#[cfg(windows)]
fn read_start(file: &File, buffer: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buffer.len() {
        match std::os::windows::fs::FileExt::seek_read(file, &mut buffer[done..], done as u64)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            read => done += read,
        }
    }
    Ok(())
}

/// Whether a WAL-index header is one SQLite published: initialised, and of
/// the layout read here (else every look counts as a change: slower, never
/// stale).
fn published(header: &[u8]) -> bool {
    let version = header
        .get(..4)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(u32::from_ne_bytes);
    // `isInit`, after the version, a padding field and the change counter.
    version == Some(WAL_INDEX_VERSION) && header.get(12) == Some(&1)
}

impl Freshness for Fresh {
    type Connection = SqliteConnection;

    async fn before_read(&self) -> StoreResult<()> {
        self.refresh().await
    }

    async fn after_commit(&self, _: &mut SqliteConnection) -> StoreResult<()> {
        self.cache.empty();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u32, init: u8) -> [u8; HEADER] {
        let mut header = [0_u8; HEADER];
        header[..4].copy_from_slice(&version.to_ne_bytes());
        header[12] = init;
        header
    }

    #[test]
    fn only_an_initialised_header_of_the_known_layout_counts_as_published() {
        assert!(published(&header(WAL_INDEX_VERSION, 1)));
        assert!(!published(&header(WAL_INDEX_VERSION, 0)));
        assert!(!published(&header(WAL_INDEX_VERSION + 1, 1)));
    }
}
