//! Rows to domain records.

use sqlx::{Row as _, any::AnyRow};
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

pub(crate) fn user(row: &AnyRow) -> StoreResult<User> {
    let id: String = row.try_get("id").map_err(db_error)?;
    let email: Option<String> = row.try_get("email").map_err(db_error)?;
    let role: String = row.try_get("role").map_err(db_error)?;
    Ok(User {
        id: user_id(&id)?,
        email: email
            .map(|e| Email::parse(&e))
            .transpose()
            .map_err(|e| StoreError::Backend(format!("stored email: {e}")))?,
        first_name: row.try_get("first_name").map_err(db_error)?,
        last_name: row.try_get("last_name").map_err(db_error)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Backend(format!("stored role {role:?} is unknown")))?,
        password_hash: row.try_get("password_hash").map_err(db_error)?,
        password_change_required: flag(row, "password_change_required")?,
        mfa_enabled: flag(row, "mfa_enabled")?,
        invited_by: {
            let id: Option<String> = row.try_get("invited_by").map_err(db_error)?;
            id.as_deref().map(user_id).transpose()?
        },
        invited_at: row.try_get("invited_at").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
        updated_at: row.try_get("updated_at").map_err(db_error)?,
    })
}

pub(crate) fn user_id(text: &str) -> StoreResult<UserId> {
    UserId::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("stored id {text:?} is not a UUID")))
}

/// Flags are BIGINT 0/1 on both databases (the Any driver has no SQLite bool).
pub(crate) fn flag(row: &AnyRow, column: &str) -> StoreResult<bool> {
    let value: i64 = row.try_get(column).map_err(db_error)?;
    Ok(value != 0)
}
