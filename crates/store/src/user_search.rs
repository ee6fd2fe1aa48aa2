//! The users page's list: search, filters, four orders and keyset pages,
//! over any number of users.
//!
//! Each order walks an index of (key, id) (migration 0011): a page reads
//! the index from the cursor on and stops at the page's end, so it costs
//! the same wherever it starts, and rows added meanwhile never shift a
//! page the way an offset would. The filters are in every statement, each
//! turned off by an empty parameter, so the statements stay a fixed set (of
//! sixteen: four keys, two directions, with and without a cursor) that
//! both databases prepare once. The keyset condition is a row-value
//! comparison, which both serve from the index (see `user_page`).

use usher_domain::{
    model::{Role, User},
    store::{OrderKey, StoreError, StoreResult, UserOrder, UserSearch, UserStatus},
};

use crate::{SqlStore, rows::UserRow, sql::Sql};

/// A user and the name the database sorts them by.
#[derive(sqlx::FromRow)]
struct FoundRow {
    #[sqlx(flatten)]
    user: UserRow,
    sort_name: String,
}

/// The filters: `$1` a LIKE pattern (lower-case; empty: everyone), `$2` a
/// role, `$3` a status (`UserStatus` in `status_param`'s words).
macro_rules! filters {
    () => {
        "email IS NOT NULL \
         AND ($1 = '' OR sort_name LIKE $1 ESCAPE '\\' OR email LIKE $1 ESCAPE '\\') \
         AND ($2 = '' OR role = $2) \
         AND ($3 = '' \
              OR ($3 = 'active' AND password_hash IS NOT NULL) \
              OR ($3 = 'pending' AND password_hash IS NULL) \
              OR ($3 = 'must-change' AND password_change_required = 1) \
              OR ($3 = '2fa' AND mfa_enabled = 1))"
    };
}

/// The two statements of one order: the first page, and a page after
/// (`$5`, `$6`) = (key, id). `$4` is the limit.
macro_rules! statements {
    ($key:literal, $direction:literal, $beyond:literal) => {
        [
            concat!(
                "SELECT * FROM users WHERE ",
                filters!(),
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
                filters!(),
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

const BY_NAME: [&str; 2] = statements!("sort_name", "ASC", ">");
const BY_NAME_DESC: [&str; 2] = statements!("sort_name", "DESC", "<");
const BY_EMAIL: [&str; 2] = statements!("email", "ASC", ">");
const BY_EMAIL_DESC: [&str; 2] = statements!("email", "DESC", "<");
const BY_CREATED: [&str; 2] = statements!("created_at", "ASC", ">");
const BY_CREATED_DESC: [&str; 2] = statements!("created_at", "DESC", "<");
const BY_ACTIVE: [&str; 2] = statements!("last_active_at", "ASC", ">");
const BY_ACTIVE_DESC: [&str; 2] = statements!("last_active_at", "DESC", "<");

fn status_param(status: Option<UserStatus>) -> &'static str {
    match status {
        None => "",
        Some(UserStatus::Active) => "active",
        Some(UserStatus::Pending) => "pending",
        Some(UserStatus::MustChangePassword) => "must-change",
        Some(UserStatus::TwoFactor) => "2fa",
    }
}

/// `%text%`, with LIKE's own characters taken literally.
fn like_pattern(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl SqlStore {
    pub(crate) async fn search_user_page(
        &self,
        search: &UserSearch,
    ) -> StoreResult<Vec<(User, OrderKey)>> {
        let statements = match (search.order, search.descending) {
            (UserOrder::Name, false) => BY_NAME,
            (UserOrder::Name, true) => BY_NAME_DESC,
            (UserOrder::Email, false) => BY_EMAIL,
            (UserOrder::Email, true) => BY_EMAIL_DESC,
            (UserOrder::Created, false) => BY_CREATED,
            (UserOrder::Created, true) => BY_CREATED_DESC,
            (UserOrder::LastActive, false) => BY_ACTIVE,
            (UserOrder::LastActive, true) => BY_ACTIVE_DESC,
        };
        let pattern = like_pattern(&search.text.to_lowercase());
        let sql = Sql::new(statements[usize::from(search.after.is_some())])
            .bind(pattern)
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
    use super::*;

    #[test]
    fn like_characters_in_a_search_are_taken_literally() {
        assert_eq!(like_pattern(""), "");
        assert_eq!(like_pattern("ann"), "%ann%");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
