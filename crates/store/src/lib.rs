//! Usher's storage: the domain's [`Store`](usher_domain::store::Store) on
//! SQLite and PostgreSQL.
//!
//! One implementation serves both databases through sqlx's `Any` driver: the
//! schema keeps to types both share (text, BIGINT, BOOLEAN; ids and times made
//! in Rust), the SQL to what both understand (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`), and what differs lives in [`Backend`]. Each database has its
//! own migrations folder with the same file names (a test checks it), so the
//! DDL can diverge where it must. Both backends run the same test suite.
//!
//! Reading order: [`config`] (where the database is), [`pool`] (connecting
//! and migrating), then the `Store` implementation in [`users`], [`sessions`],
//! [`misc`].

mod api_keys;
mod auth_cache;
pub mod config;
mod files;
mod inline;
mod invitations;
mod mfa;
mod misc;
mod pool;
mod projects;
mod reads;
mod resets;
mod rows;
mod sessions;
mod users;
mod workflows;

pub use config::DbConfig;
pub use pool::{Backend, SqlStore, connect};

use usher_domain::store::StoreError;

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
