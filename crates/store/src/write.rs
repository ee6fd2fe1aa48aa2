//! The write paths, and the rule that keeps the cache of keys, users and
//! app tokens exact: a change to `users`, `api_keys`, or the rows of
//! `oidc_grants` and `oidc_tokens` runs only inside an
//! [`AuthWrite`], whose [`commit`](AuthWrite::commit) runs the database's
//! freshness step ([`crate::cache::Freshness::after_commit`]) and returns
//! its error.
//!
//! Everything else that runs a statement refuses one that writes those
//! tables ([`writes_auth_tables`]): the store's plain statements
//! ([`SqlStore::fetch_optional`] and friends) and a [`Write`], the
//! transaction for the other tables. A unit test below also reads the
//! store's sources and fails when such a statement sits in a function that
//! has no `AuthWrite`, and one that nothing outside `sql.rs`, `sqlite/` and
//! `postgres/` hands SQL to sqlx, so there is no way around these paths.
//!
//! One statement is let through on purpose: recording when a key was last
//! used ([`STAMP_KEY_USE`]). It changes nothing the cache holds (the cached
//! key is stamped in memory too), PostgreSQL's trigger ignores that column,
//! and it runs at most once a minute per key on a read path.

use usher_domain::store::{StoreError, StoreResult};

use crate::{
    SqlStore,
    sql::{Record, Sql},
};

/// A change to `users` or `api_keys`, and what goes with it in the same
/// transaction. Dropped without [`commit`](Self::commit), it rolls back.
#[must_use = "a write that is not committed is rolled back"]
pub(crate) struct AuthWrite {
    tx: Tx,
}

/// A transaction on the other tables: it refuses statements that write
/// `users` or `api_keys`.
#[must_use = "a write that is not committed is rolled back"]
pub(crate) struct Write {
    tx: Tx,
}

/// An open write transaction on either database.
pub(crate) enum Tx {
    Sqlite(crate::sqlite::Tx),
    Postgres(crate::postgres::Tx),
}

/// Runs `$body` with `$tx` bound to the backend's transaction; the body is
/// type-checked once per database.
macro_rules! on_tx {
    ($value:expr, $tx:ident => $body:expr) => {
        match $value {
            Tx::Sqlite($tx) => $body,
            Tx::Postgres($tx) => $body,
        }
    };
}

impl Tx {
    async fn fetch_optional<R: Record>(&mut self, sql: &Sql<'_>) -> StoreResult<Option<R>> {
        on_tx!(self, tx => tx.fetch_optional(sql).await)
    }

    async fn execute(&mut self, sql: &Sql<'_>) -> StoreResult<u64> {
        on_tx!(self, tx => tx.execute(sql).await)
    }
}

/// What both write transactions run, for a helper that serves both.
pub(crate) trait Statements {
    /// Runs a statement; how many rows it changed.
    fn execute(&mut self, sql: Sql<'_>) -> impl Future<Output = StoreResult<u64>> + Send;
}

impl Statements for AuthWrite {
    fn execute(&mut self, sql: Sql<'_>) -> impl Future<Output = StoreResult<u64>> + Send {
        AuthWrite::execute(self, sql)
    }
}

impl Statements for Write {
    fn execute(&mut self, sql: Sql<'_>) -> impl Future<Output = StoreResult<u64>> + Send {
        Write::execute(self, sql)
    }
}

impl AuthWrite {
    pub(crate) async fn fetch_optional<R: Record>(
        &mut self,
        sql: Sql<'_>,
    ) -> StoreResult<Option<R>> {
        self.tx.fetch_optional(&sql).await
    }

    /// Runs a statement; how many rows it changed.
    pub(crate) async fn execute(&mut self, sql: Sql<'_>) -> StoreResult<u64> {
        self.tx.execute(&sql).await
    }

    /// Commits, then returns once no instance answers from a cache that
    /// predates the change. An error from either step is returned: the
    /// caller cannot tell "changed" apart from "every instance knows".
    pub(crate) async fn commit(self) -> StoreResult<()> {
        on_tx!(self.tx, tx => tx.commit_auth().await)
    }
}

impl Write {
    /// Runs a statement; how many rows it changed.
    pub(crate) async fn execute(&mut self, sql: Sql<'_>) -> StoreResult<u64> {
        refuse_auth_write(&sql)?;
        self.tx.execute(&sql).await
    }

    pub(crate) async fn commit(self) -> StoreResult<()> {
        on_tx!(self.tx, tx => tx.commit().await)
    }
}

/// Statements run on their own (each its own transaction), on the pool.
impl SqlStore {
    /// A write transaction that may change `users` and `api_keys`.
    pub(crate) async fn auth_write(&self) -> StoreResult<AuthWrite> {
        Ok(AuthWrite {
            tx: self.db.begin().await?,
        })
    }

    /// A write transaction on the other tables.
    pub(crate) async fn write(&self) -> StoreResult<Write> {
        Ok(Write {
            tx: self.db.begin().await?,
        })
    }

    pub(crate) async fn fetch_optional<R: Record>(&self, sql: Sql<'_>) -> StoreResult<Option<R>> {
        refuse_auth_write(&sql)?;
        self.db.fetch_optional(&sql).await
    }

    pub(crate) async fn fetch_all<R: Record>(&self, sql: Sql<'_>) -> StoreResult<Vec<R>> {
        refuse_auth_write(&sql)?;
        self.db.fetch_all(&sql).await
    }

    /// Runs a statement; how many rows it changed.
    pub(crate) async fn execute(&self, sql: Sql<'_>) -> StoreResult<u64> {
        refuse_auth_write(&sql)?;
        self.db.execute(&sql).await
    }

    /// Records that the key `id` was used at `now`: the one write to
    /// `api_keys` outside an [`AuthWrite`] (see the module's comment).
    pub(crate) async fn stamp_key_use(&self, id: uuid::Uuid, now: i64) -> StoreResult<()> {
        let sql = Sql::new(STAMP_KEY_USE).bind(now).bind(id);
        self.db.execute(&sql).await.map(drop)
    }
}

/// The statement behind [`SqlStore::stamp_key_use`].
const STAMP_KEY_USE: &str = "UPDATE api_keys SET last_used_at = $1 WHERE id = $2";

/// An error (never run) for a statement that writes `users` or `api_keys`
/// outside an [`AuthWrite`]: a bug in the store, caught by its tests.
fn refuse_auth_write(sql: &Sql<'_>) -> StoreResult<()> {
    if writes_auth_tables(sql.text()) {
        return Err(StoreError::Backend(format!(
            "refused to run a change to users or api_keys outside AuthWrite: {}",
            sql.text()
        )));
    }
    Ok(())
}

/// The tables whose rows the cache holds, and whether an insert into them
/// counts as a change: a new user or key can take an email or be looked
/// up by what it replaced, but a new grant or token changes no answer the
/// cache gave (nothing is cached for what does not exist). `apps` is here
/// for its deletion only, which takes grants and tokens with it
/// (`ON DELETE CASCADE`).
const CACHED_TABLES: [(&str, Verbs); 5] = [
    ("USERS", Verbs::All),
    ("API_KEYS", Verbs::All),
    ("OIDC_GRANTS", Verbs::NotInsert),
    ("OIDC_TOKENS", Verbs::NotInsert),
    ("APPS", Verbs::DeleteOnly),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verbs {
    All,
    NotInsert,
    DeleteOnly,
}

/// Whether `sql` changes a row the cache may hold (see [`CACHED_TABLES`]),
/// anywhere in the statement (a subquery or CTE included). Words are
/// compared without regard to case; `ONLY` and `TABLE` before the name are
/// skipped. It runs before every statement, so it allocates nothing.
pub(crate) fn writes_auth_tables(sql: &str) -> bool {
    let words = || {
        sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| !word.is_empty())
    };
    let is = |word: Option<&str>, expected: &str| {
        word.is_some_and(|word| word.eq_ignore_ascii_case(expected))
    };
    words().enumerate().any(|(at, word)| {
        let mut next = words().skip(at + 1);
        let deletes = (word.eq_ignore_ascii_case("DELETE") && is(next.next(), "FROM"))
            || word.eq_ignore_ascii_case("TRUNCATE");
        let inserts = word.eq_ignore_ascii_case("INTO");
        let updates = word.eq_ignore_ascii_case("UPDATE");
        if !(deletes || inserts || updates) {
            return false;
        }
        let mut table = next.next();
        if is(table, "ONLY") || is(table, "TABLE") {
            table = next.next();
        }
        CACHED_TABLES.iter().any(|(cached, verbs)| {
            is(table, cached)
                && match verbs {
                    Verbs::All => true,
                    Verbs::NotInsert => !inserts,
                    Verbs::DeleteOnly => deletes,
                }
        })
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn statements_that_write_users_or_api_keys_are_recognised() {
        for sql in [
            "INSERT INTO users (id) VALUES ($1)",
            "update Users set role = $1",
            "DELETE FROM api_keys WHERE id = $1",
            "delete from ONLY users",
            "TRUNCATE TABLE api_keys",
            "WITH gone AS (DELETE FROM users RETURNING id) SELECT count(*) FROM gone",
            "INSERT OR REPLACE INTO api_keys (id) VALUES ($1)",
            STAMP_KEY_USE,
        ] {
            assert!(writes_auth_tables(sql), "{sql}");
        }
        for sql in [
            "SELECT * FROM users WHERE id = $1",
            "SELECT u.* FROM api_keys k JOIN users u ON u.id = k.user_id",
            "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users)",
            "UPDATE users_archive SET x = 1",
            "INSERT INTO user_settings (id) VALUES ($1)",
            // A new grant or token, or a changed app, changes no cached
            // answer.
            "INSERT INTO oidc_tokens (token_hash) VALUES ($1)",
            "INSERT INTO oidc_grants (id) VALUES ($1)",
            "UPDATE apps SET name = $2 WHERE id = $1",
            "INSERT INTO apps (id) VALUES ($1)",
        ] {
            assert!(!writes_auth_tables(sql), "{sql}");
        }
        for sql in [
            "DELETE FROM oidc_grants WHERE id = $1",
            "UPDATE oidc_tokens SET used_at = $2 WHERE token_hash = $1",
            "DELETE FROM apps WHERE id = $1",
            "TRUNCATE oidc_tokens",
        ] {
            assert!(writes_auth_tables(sql), "{sql}");
        }
    }

    /// The store's sources, by path, each without its tests (which name
    /// statements to check them, and run nothing in the product).
    fn sources() -> Vec<(String, String)> {
        fn walk(folder: &Path, found: &mut Vec<(String, String)>) {
            let Ok(entries) = std::fs::read_dir(folder) else {
                panic!("cannot read {}", folder.display());
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let mut text = std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    if let Some(tests) = text.find("#[cfg(test)]") {
                        text.truncate(tests);
                    }
                    found.push((path.display().to_string(), text));
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        walk(&root, &mut found);
        assert!(found.len() > 10, "the store's sources were not found");
        found
    }

    /// The string literals of `text`, with where each starts.
    fn literals(text: &str) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                // Comments may name statements; they run nothing.
                '/' if chars.peek().is_some_and(|(_, next)| *next == '/') => {
                    for (_, c) in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '\'' => {
                    // A char literal ('"' or '\\'), or a lifetime: skip one
                    // char and its closing quote if there is one.
                    let mut ahead = chars.clone();
                    let first = ahead.next().map(|(_, c)| c);
                    if first == Some('\\') {
                        ahead.next();
                    }
                    if ahead.next().is_some_and(|(_, c)| c == '\'') {
                        chars = ahead;
                    }
                }
                '"' => {
                    let mut literal = String::new();
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '"' => break,
                            c => literal.push(c),
                        }
                    }
                    found.push((at, literal));
                }
                _ => {}
            }
        }
        found
    }

    /// A statement that writes `users` or `api_keys` is only ever run in a
    /// function that opens an `AuthWrite` or is handed one: a store method
    /// that changes them another way fails here (and at run time, where
    /// every other path refuses the statement).
    #[test]
    fn only_the_write_guard_runs_statements_on_users_and_api_keys() {
        let mut offenders = Vec::new();
        for (path, text) in sources() {
            for (at, literal) in literals(&text) {
                if !writes_auth_tables(&literal) || literal == STAMP_KEY_USE {
                    continue;
                }
                // The function around the literal: from the `fn` before it
                // to the `fn` after it.
                let start = text[..at].rfind("fn ").unwrap_or(0);
                let end = text[at..].find("fn ").map_or(text.len(), |end| at + end);
                if !text[start..end].contains("AuthWrite")
                    && !text[start..end].contains("auth_write()")
                {
                    offenders.push(format!("{path}: {literal}"));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "changes to users or api_keys outside AuthWrite: {offenders:#?}"
        );
    }

    /// Only the statement type and the two databases' modules hand SQL to
    /// sqlx, so every statement goes through the paths that check it. The
    /// PostgreSQL cache's own statements (locks, LISTEN) write no table.
    #[test]
    fn statements_reach_sqlx_only_through_the_checked_paths() {
        let mut offenders = Vec::new();
        for (path, text) in sources() {
            let runs_sql = ["sqlx::query", "sqlx::raw_sql", "Executor", "AssertSqlSafe"]
                .iter()
                .any(|call| text.contains(call));
            let allowed = path.ends_with("sql.rs")
                || path.contains("/sqlite/")
                || path.contains("/postgres/");
            if runs_sql && !allowed {
                offenders.push(path.clone());
            }
            if allowed {
                for (_, literal) in literals(&text) {
                    if writes_auth_tables(&literal) {
                        offenders.push(format!("{path}: {literal}"));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "SQL run past the write paths: {offenders:#?}"
        );
    }
}
