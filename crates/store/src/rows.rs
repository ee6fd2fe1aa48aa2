//! Rows to domain records.

use sqlx::{ColumnIndex, Decode, Row, Type};
use usher_domain::{
    model::{Email, Role, User, UserId},
    store::{StoreError, StoreResult},
};

use crate::db_error;

/// The user columns, as a macro so that queries stay `&'static str` literals
/// (sqlx refuses SQL built at run time unless it is marked as audited).
/// Joins select `u.*` and read the same names.
macro_rules! user_columns {
    () => {
        "id, email, first_name, last_name, role, password_hash, \
         password_change_required, mfa_enabled, invited_by, invited_at, created_at, updated_at"
    };
}
pub(crate) use user_columns;

/// What a row type must decode for the record readers here: text and
/// BIGINT, by column name. `AnyRow`, `SqliteRow` and `PgRow` all are, and
/// so is a row of the inline SQLite reads ([`crate::inline::Lite`]).
pub(crate) trait Readable {
    fn text(&self, column: &str) -> StoreResult<String>;
    fn maybe_text(&self, column: &str) -> StoreResult<Option<String>>;
    fn number(&self, column: &str) -> StoreResult<i64>;
    fn maybe_number(&self, column: &str) -> StoreResult<Option<i64>>;
}

impl<R: Row> Readable for R
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> StoreResult<String> {
        self.try_get(column).map_err(db_error)
    }
    fn maybe_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.try_get(column).map_err(db_error)
    }
    fn number(&self, column: &str) -> StoreResult<i64> {
        self.try_get(column).map_err(db_error)
    }
    fn maybe_number(&self, column: &str) -> StoreResult<Option<i64>> {
        self.try_get(column).map_err(db_error)
    }
}

/// The names a user's columns go by in a result: as they are, or under a
/// prefix when a join selects two users.
pub(crate) struct UserNames {
    pub(crate) id: &'static str,
    pub(crate) email: &'static str,
    pub(crate) first_name: &'static str,
    pub(crate) last_name: &'static str,
    pub(crate) role: &'static str,
    pub(crate) password_hash: &'static str,
    pub(crate) password_change_required: &'static str,
    pub(crate) mfa_enabled: &'static str,
    pub(crate) invited_by: &'static str,
    pub(crate) invited_at: &'static str,
    pub(crate) created_at: &'static str,
    pub(crate) updated_at: &'static str,
}

/// Declares a [`UserNames`] under a prefix, and the select list that makes
/// those names (`<table>.id AS <prefix>id, …`) for the same columns as
/// [`user_columns!`].
macro_rules! prefixed_user {
    ($names:ident, $select:ident, $table:literal, $prefix:literal) => {
        pub(crate) const $names: $crate::rows::UserNames = $crate::rows::UserNames {
            id: concat!($prefix, "id"),
            email: concat!($prefix, "email"),
            first_name: concat!($prefix, "first_name"),
            last_name: concat!($prefix, "last_name"),
            role: concat!($prefix, "role"),
            password_hash: concat!($prefix, "password_hash"),
            password_change_required: concat!($prefix, "password_change_required"),
            mfa_enabled: concat!($prefix, "mfa_enabled"),
            invited_by: concat!($prefix, "invited_by"),
            invited_at: concat!($prefix, "invited_at"),
            created_at: concat!($prefix, "created_at"),
            updated_at: concat!($prefix, "updated_at"),
        };
        macro_rules! $select {
            () => {
                concat!(
                    $table,
                    ".id AS ",
                    $prefix,
                    "id, ",
                    $table,
                    ".email AS ",
                    $prefix,
                    "email, ",
                    $table,
                    ".first_name AS ",
                    $prefix,
                    "first_name, ",
                    $table,
                    ".last_name AS ",
                    $prefix,
                    "last_name, ",
                    $table,
                    ".role AS ",
                    $prefix,
                    "role, ",
                    $table,
                    ".password_hash AS ",
                    $prefix,
                    "password_hash, ",
                    $table,
                    ".password_change_required AS ",
                    $prefix,
                    "password_change_required, ",
                    $table,
                    ".mfa_enabled AS ",
                    $prefix,
                    "mfa_enabled, ",
                    $table,
                    ".invited_by AS ",
                    $prefix,
                    "invited_by, ",
                    $table,
                    ".invited_at AS ",
                    $prefix,
                    "invited_at, ",
                    $table,
                    ".created_at AS ",
                    $prefix,
                    "created_at, ",
                    $table,
                    ".updated_at AS ",
                    $prefix,
                    "updated_at"
                )
            };
        }
    };
}
pub(crate) use prefixed_user;

const PLAIN: UserNames = UserNames {
    id: "id",
    email: "email",
    first_name: "first_name",
    last_name: "last_name",
    role: "role",
    password_hash: "password_hash",
    password_change_required: "password_change_required",
    mfa_enabled: "mfa_enabled",
    invited_by: "invited_by",
    invited_at: "invited_at",
    created_at: "created_at",
    updated_at: "updated_at",
};

/// A user from a row that selected [`user_columns!`].
pub(crate) fn user<R: Readable>(row: &R) -> StoreResult<User> {
    user_named(row, &PLAIN)
}

/// A user whose columns go by `names`; `None` when the (outer-joined) id is
/// null.
pub(crate) fn maybe_user_named<R: Readable>(
    row: &R,
    names: &UserNames,
) -> StoreResult<Option<User>> {
    match row.maybe_text(names.id)? {
        None => Ok(None),
        Some(_) => user_named(row, names).map(Some),
    }
}

fn user_named<R: Readable>(row: &R, names: &UserNames) -> StoreResult<User> {
    let id = row.text(names.id)?;
    let email = row.maybe_text(names.email)?;
    let role = row.text(names.role)?;
    Ok(User {
        id: user_id(&id)?,
        email: email
            .map(|e| Email::parse(&e))
            .transpose()
            .map_err(|e| StoreError::Backend(format!("stored email: {e}")))?,
        first_name: row.text(names.first_name)?,
        last_name: row.text(names.last_name)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Backend(format!("stored role {role:?} is unknown")))?,
        password_hash: row.maybe_text(names.password_hash)?,
        password_change_required: flag(row, names.password_change_required)?,
        mfa_enabled: flag(row, names.mfa_enabled)?,
        invited_by: row
            .maybe_text(names.invited_by)?
            .as_deref()
            .map(user_id)
            .transpose()?,
        invited_at: row.maybe_number(names.invited_at)?,
        created_at: row.number(names.created_at)?,
        updated_at: row.number(names.updated_at)?,
    })
}

pub(crate) fn user_id(text: &str) -> StoreResult<UserId> {
    UserId::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("stored id {text:?} is not a UUID")))
}

/// Flags are BIGINT 0/1 on both databases (the Any driver has no SQLite bool).
pub(crate) fn flag<R: Readable>(row: &R, column: &str) -> StoreResult<bool> {
    Ok(row.number(column)? != 0)
}
