//! The users page's list: search, filters, four orders and keyset pages,
//! over any number of users.
//!
//! Each order walks an index of (key, id) (migration 0011): a page reads
//! the index from the cursor on and stops at the page's end, so it costs
//! the same wherever it starts, and rows added meanwhile never shift a
//! page the way an offset would. The filters are in every statement, each
//! turned off by an empty parameter, so the statements stay a fixed set
//! that both databases prepare once. The keyset condition is a row-value
//! comparison, which both serve from the index (see `user_page`).
//!
//! The search is looked up in an index, not scanned for (migration 0017,
//! docs/architecture.md): three or more characters are a part of the name
//! or the email, found through a trigram index (FTS5's trigram tokenizer on
//! SQLite, pg_trgm's GIN indexes on PostgreSQL); one or two characters,
//! too short for trigrams, are the start of the name or the email, found
//! on the sorted indexes. So the statements are, for each order and
//! direction, with and without a cursor: everyone, a search by start, and a
//! search by part (written once per database: FTS5's MATCH on SQLite, the
//! same `LIKE` as a scan would use on PostgreSQL).

use usher_domain::{
    model::{Role, User},
    store::{OrderKey, StoreError, StoreResult, UserOrder, UserSearch, UserStatus},
};

use crate::{Db, SqlStore, rows::UserRow, sql::Sql};

/// A user and the name the database sorts them by.
#[derive(sqlx::FromRow)]
struct FoundRow {
    #[sqlx(flatten)]
    user: UserRow,
    sort_name: String,
}

/// The filters after a search condition on `$1`: `$2` a role, `$3` a
/// status (`UserStatus` in `status_param`'s words).
macro_rules! filters {
    ($search:literal) => {
        concat!(
            "email IS NOT NULL AND ",
            $search,
            " AND ($2 = '' OR role = $2) \
             AND ($3 = '' \
                  OR ($3 = 'active' AND password_hash IS NOT NULL) \
                  OR ($3 = 'pending' AND password_hash IS NULL) \
                  OR ($3 = 'must-change' AND password_change_required = 1) \
                  OR ($3 = '2fa' AND mfa_enabled = 1))"
        )
    };
}

/// The two statements of one order: the first page, and a page after
/// (`$5`, `$6`) = (key, id). `$4` is the limit.
macro_rules! statements {
    ($search:literal, $key:literal, $direction:literal, $beyond:literal) => {
        [
            concat!(
                "SELECT * FROM users WHERE ",
                filters!($search),
                " ORDER BY ",
                $key,
                " ",
                $direction,
                ", id ",
                $direction,
                " LIMIT $4"
            ),
            concat!(
                "SELECT * FROM users WHERE ",
                filters!($search),
                " AND (",
                $key,
                ", id) ",
                $beyond,
                " ($5, $6) ORDER BY ",
                $key,
                " ",
                $direction,
                ", id ",
                $direction,
                " LIMIT $4"
            ),
        ]
    };
}

/// The statements of every order and direction for one search condition,
/// in `order_index`'s order.
macro_rules! orders {
    ($search:literal) => {
        [
            statements!($search, "sort_name", "ASC", ">"),
            statements!($search, "sort_name", "DESC", "<"),
            statements!($search, "email", "ASC", ">"),
            statements!($search, "email", "DESC", "<"),
            statements!($search, "created_at", "ASC", ">"),
            statements!($search, "created_at", "DESC", "<"),
            statements!($search, "last_active_at", "ASC", ">"),
            statements!($search, "last_active_at", "DESC", "<"),
        ]
    };
}

type Statements = [[&'static str; 2]; 8];

/// No search: `$1` is the empty text.
const EVERYONE: Statements = orders!("$1 = ''");

/// SQLite, one or two characters `$1`: the name or the email starts with
/// them. A range on each sorted index (U+10FFFF sorts after any character
/// that can follow; SQLite compares text byte by byte, and both columns are
/// lower-case).
const SQLITE_START: Statements = orders!(
    "((sort_name >= $1 AND sort_name < $1 || char(1114111)) \
      OR (email >= $1 AND email < $1 || char(1114111)))"
);

/// Three or more characters: an FTS5 phrase `$1` of the trigram index,
/// which matches the rows whose sort_name or email holds the text.
const SQLITE_PART: Statements =
    orders!("rowid IN (SELECT rowid FROM users_search WHERE users_search MATCH $1)");

/// PostgreSQL, any length: `$1` a LIKE pattern, `text%` for a start and
/// `%text%` for a part, served by the trigram indexes (pg_trgm marks the
/// start of a word, so a pattern anchored there has trigrams even for one
/// character).
const POSTGRES_SEARCH: Statements =
    orders!("(sort_name LIKE $1 ESCAPE '\\' OR email LIKE $1 ESCAPE '\\')");

/// Where `search`'s order and direction are in a [`Statements`].
fn order_index(search: &UserSearch) -> usize {
    let order = match search.order {
        UserOrder::Name => 0,
        UserOrder::Email => 2,
        UserOrder::Created => 4,
        UserOrder::LastActive => 6,
    };
    order + usize::from(search.descending)
}

/// How a search text is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lookup {
    Everyone,
    /// One or two characters: the start of the name or the email.
    Start,
    /// Three or more: a part of the name or the email.
    Part,
}

fn lookup(text: &str) -> Lookup {
    match text.chars().count() {
        0 => Lookup::Everyone,
        1 | 2 => Lookup::Start,
        _ => Lookup::Part,
    }
}

fn status_param(status: Option<UserStatus>) -> &'static str {
    match status {
        None => "",
        Some(UserStatus::Active) => "active",
        Some(UserStatus::Pending) => "pending",
        Some(UserStatus::MustChangePassword) => "must-change",
        Some(UserStatus::TwoFactor) => "2fa",
    }
}

/// `text` with LIKE's own characters taken literally, then `%` after it
/// (a start) or around it (a part).
fn like_pattern(text: &str, lookup: Lookup) -> String {
    if lookup == Lookup::Everyone {
        return String::new();
    }
    let mut pattern = String::with_capacity(text.len() + 2);
    if lookup == Lookup::Part {
        pattern.push('%');
    }
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `text` as one FTS5 phrase: in double quotes, its own doubled, so that
/// no character of it is query syntax.
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

impl SqlStore {
    pub(crate) async fn search_user_page(
        &self,
        search: &UserSearch,
    ) -> StoreResult<Vec<(User, OrderKey)>> {
        let text = search.text.to_lowercase();
        if text.contains('\0') {
            // No name or email holds one (both are refused with control
            // characters), and neither database takes it: PostgreSQL's text
            // cannot hold it, and FTS5 reads a phrase only up to it.
            return Ok(Vec::new());
        }
        let lookup = lookup(&text);
        let (statements, param) = match (&self.db, lookup) {
            (_, Lookup::Everyone) => (&EVERYONE, String::new()),
            (Db::Sqlite(_), Lookup::Start) => (&SQLITE_START, text),
            (Db::Sqlite(_), Lookup::Part) => (&SQLITE_PART, fts_phrase(&text)),
            (Db::Postgres(_), _) => (&POSTGRES_SEARCH, like_pattern(&text, lookup)),
        };
        let statement = statements[order_index(search)][usize::from(search.after.is_some())];
        let sql = Sql::new(statement)
            .bind(param)
            .bind(search.role.map(Role::as_str).unwrap_or(""))
            .bind(status_param(search.status))
            .bind(search.limit);
        let sql = match &search.after {
            None => sql,
            Some((OrderKey::Text(key), id)) => sql.bind(key.as_str()).bind(*id),
            Some((OrderKey::Number(key), id)) => sql.bind(*key).bind(*id),
        };
        let rows: Vec<FoundRow> = self.fetch_all(sql).await?;
        rows.into_iter()
            .map(|row| {
                let user = User::try_from(row.user)?;
                let key = match search.order {
                    UserOrder::Name => OrderKey::Text(row.sort_name),
                    UserOrder::Email => OrderKey::Text(
                        user.email
                            .as_ref()
                            .map(|e| e.as_str().to_owned())
                            .ok_or_else(|| {
                                StoreError::Backend("a listed user has no email".into())
                            })?,
                    ),
                    UserOrder::Created => OrderKey::Number(user.created_at),
                    UserOrder::LastActive => OrderKey::Number(user.last_active_at.unwrap_or(0)),
                };
                Ok((user, key))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use usher_domain::store::UserStore;

    use super::*;

    #[tokio::test]
    async fn a_search_holding_nul_finds_no_one_rather_than_failing() -> StoreResult<()> {
        let store = crate::connect_in_memory()
            .await
            .map_err(StoreError::Backend)?;
        for text in ["a\0bc", "\0", "ab\0"] {
            let search = UserSearch {
                text: text.into(),
                limit: 50,
                ..UserSearch::default()
            };
            assert!(store.search_users(&search).await?.is_empty(), "{text:?}");
        }
        Ok(())
    }

    #[test]
    fn like_characters_in_a_search_are_taken_literally() {
        assert_eq!(like_pattern("", Lookup::Everyone), "");
        assert_eq!(like_pattern("ann", Lookup::Part), "%ann%");
        assert_eq!(like_pattern("50%_a\\b", Lookup::Part), "%50\\%\\_a\\\\b%");
        assert_eq!(like_pattern("a%", Lookup::Start), "a\\%%");
    }

    #[test]
    fn a_search_is_one_fts_phrase_whatever_it_holds() {
        assert_eq!(fts_phrase("ann"), "\"ann\"");
        assert_eq!(fts_phrase("a\"b OR c*"), "\"a\"\"b OR c*\"");
    }

    #[test]
    fn fewer_than_three_characters_are_a_start_and_more_a_part() {
        assert_eq!(lookup(""), Lookup::Everyone);
        assert_eq!(lookup("é"), Lookup::Start);
        assert_eq!(lookup("an"), Lookup::Start);
        assert_eq!(lookup("éva"), Lookup::Part);
    }
}
