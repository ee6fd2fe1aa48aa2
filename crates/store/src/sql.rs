//! A statement and its parameters, written once and run by either
//! database's own driver.
//!
//! The SQL the two databases share is most of it (`$n` parameters,
//! `ON CONFLICT`, `RETURNING`, row values), so a store method writes its
//! statement once as a [`Sql`] and hands it to the store, which binds the
//! parameters on the native connection of the database at hand
//! ([`crate::sqlite`] or [`crate::postgres`]). Rows come back as typed
//! structs ([`crate::rows`]) that both drivers decode. Only text and
//! integers are bound: ids and times are made in Rust and stored as text
//! and BIGINT milliseconds on both databases, flags as BIGINT 0/1.

use std::borrow::Cow;

use sqlx::{
    Database, Encode, FromRow, PgConnection, Postgres, Sqlite, SqliteConnection, Type,
    postgres::PgRow, query::Query, sqlite::SqliteRow,
};
use usher_domain::model::UserId;

/// One statement: its text, fixed at compile time, and its parameters in
/// `$1, $2, …` order.
#[derive(Debug)]
pub(crate) struct Sql<'a> {
    text: &'static str,
    params: Vec<Param<'a>>,
}

/// A bound value: text or a 64-bit integer, either of them maybe NULL.
#[derive(Debug)]
pub(crate) enum Param<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
}

impl<'a> Sql<'a> {
    pub(crate) fn new(text: &'static str) -> Self {
        Self {
            text,
            params: Vec::new(),
        }
    }

    /// Binds the next `$n`.
    pub(crate) fn bind(mut self, value: impl Into<Param<'a>>) -> Self {
        self.params.push(value.into());
        self
    }

    pub(crate) fn text(&self) -> &'static str {
        self.text
    }

    /// The statement for `DB`'s driver, for what it changes.
    pub(crate) fn query<'q, DB>(&'q self) -> Query<'q, DB, <DB as Database>::Arguments>
    where
        DB: Database,
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
        Option<i64>: Encode<'q, DB> + Type<DB>,
    {
        let mut query = sqlx::query(self.text);
        for param in &self.params {
            query = match param {
                Param::Text(text) => query.bind(text.as_deref()),
                Param::Int(number) => query.bind(*number),
            };
        }
        query
    }
}

/// What the store runs on a native connection of either database: the same
/// four calls on `SqliteConnection` and `PgConnection`, so that the pools
/// and write transactions are written once over them.
pub(crate) trait Native: Send {
    fn fetch_optional<R: Record>(
        &mut self,
        sql: &Sql<'_>,
    ) -> impl Future<Output = Result<Option<R>, sqlx::Error>> + Send;

    /// All rows are fetched before any is decoded, and freed together
    /// after. On SQLite they are made on the connection's own thread:
    /// decoding each while that thread still made more freed blocks it was
    /// allocating from, and mimalloc's collection of those cross-thread
    /// frees took a tenth of a 250-user page (docs/performance.md).
    fn fetch_all<R: Record>(
        &mut self,
        sql: &Sql<'_>,
    ) -> impl Future<Output = Result<Vec<R>, sqlx::Error>> + Send;

    /// Runs a statement; how many rows it changed.
    fn execute(&mut self, sql: &Sql<'_>) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Runs a statement without parameters (`BEGIN`, `COMMIT`, …).
    fn run(
        &mut self,
        statement: &'static str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// Implements [`Native`] for `$connection` of `$database`: one body,
/// type-checked for each driver (a generic one needs a higher-ranked
/// `Executor` bound, which makes the callers' futures fail the `Send`
/// check).
macro_rules! native {
    ($connection:ty, $database:ty) => {
        impl Native for $connection {
            async fn fetch_optional<R: Record>(
                &mut self,
                sql: &Sql<'_>,
            ) -> Result<Option<R>, sqlx::Error> {
                let row = sql.query::<$database>().fetch_optional(self).await?;
                row.as_ref().map(R::from_row).transpose()
            }

            async fn fetch_all<R: Record>(&mut self, sql: &Sql<'_>) -> Result<Vec<R>, sqlx::Error> {
                let rows = sql.query::<$database>().fetch_all(self).await?;
                rows.iter().map(R::from_row).collect()
            }

            async fn execute(&mut self, sql: &Sql<'_>) -> Result<u64, sqlx::Error> {
                let done = sql.query::<$database>().execute(self).await?;
                Ok(done.rows_affected())
            }

            async fn run(&mut self, statement: &'static str) -> Result<(), sqlx::Error> {
                sqlx::Executor::execute(self, statement).await.map(drop)
            }
        }
    };
}

native!(SqliteConnection, Sqlite);
native!(PgConnection, Postgres);

/// A row type both drivers decode (a `#[derive(sqlx::FromRow)]` struct, or
/// a tuple of scalars).
pub(crate) trait Record:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Record for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(text: &'a str) -> Self {
        Self::Text(Some(Cow::Borrowed(text)))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(text: &'a String) -> Self {
        Self::Text(Some(Cow::Borrowed(text)))
    }
}

impl From<String> for Param<'_> {
    fn from(text: String) -> Self {
        Self::Text(Some(Cow::Owned(text)))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(text: Option<&'a str>) -> Self {
        Self::Text(text.map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Param<'_> {
    fn from(text: Option<String>) -> Self {
        Self::Text(text.map(Cow::Owned))
    }
}

impl From<i64> for Param<'_> {
    fn from(number: i64) -> Self {
        Self::Int(Some(number))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(number: Option<i64>) -> Self {
        Self::Int(number)
    }
}

/// Flags are BIGINT 0/1 on both databases.
impl From<bool> for Param<'_> {
    fn from(flag: bool) -> Self {
        Self::Int(Some(i64::from(flag)))
    }
}

/// Ids are stored as their text.
impl From<UserId> for Param<'_> {
    fn from(id: UserId) -> Self {
        Self::Text(Some(Cow::Owned(id.to_string())))
    }
}

impl From<Option<UserId>> for Param<'_> {
    fn from(id: Option<UserId>) -> Self {
        Self::Text(id.map(|id| Cow::Owned(id.to_string())))
    }
}

impl From<uuid::Uuid> for Param<'_> {
    fn from(id: uuid::Uuid) -> Self {
        Self::Text(Some(Cow::Owned(id.to_string())))
    }
}
