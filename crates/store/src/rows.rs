//! Typed rows of the tables most statements read: users and API keys.
//!
//! Each struct's fields are the table's column names, decoded by name by
//! both drivers (`#[derive(sqlx::FromRow)]`), and turned into the domain's
//! record by `TryFrom`, which also checks what the database cannot (that an
//! id is a UUID, a role one Usher knows). Queries select `*` (or `u.*` in a
//! join), so a new column is a new field here and in the domain record, and
//! the compiler points at every place that builds one. Rows of one area
//! (sessions, projects, workflows, …) live beside that area's statements.

use usher_domain::{
    model::{Email, Role, User, UserId},
    store::{ApiKey, StoreError, StoreResult},
};

/// A row of `users` (selected with `*`, or `u.*` in a join).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    email: Option<String>,
    first_name: String,
    last_name: String,
    role: String,
    password_hash: Option<String>,
    /// Flags are BIGINT 0/1 on both databases.
    password_change_required: i64,
    mfa_enabled: i64,
    invited_by: Option<String>,
    invited_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    /// 0 for never (a NULL would sort at opposite ends on the two databases).
    last_active_at: i64,
    ldap_id: Option<String>,
    disabled: i64,
    email_verified: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> StoreResult<Self> {
        Ok(User {
            id: user_id(&row.id)?,
            email: row
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| StoreError::Backend(format!("stored email: {e}")))?,
            email_verified: row.email_verified != 0,
            first_name: row.first_name,
            last_name: row.last_name,
            role: Role::parse(&row.role).ok_or_else(|| {
                StoreError::Backend(format!("stored role {:?} is unknown", row.role))
            })?,
            password_hash: row.password_hash,
            password_change_required: row.password_change_required != 0,
            mfa_enabled: row.mfa_enabled != 0,
            invited_by: row.invited_by.as_deref().map(user_id).transpose()?,
            invited_at: row.invited_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_active_at: Some(row.last_active_at).filter(|at| *at > 0),
            ldap_id: row.ldap_id,
            disabled: row.disabled != 0,
        })
    }
}

/// Rows of `users` to records.
pub(crate) fn users(rows: Vec<UserRow>) -> StoreResult<Vec<User>> {
    rows.into_iter().map(User::try_from).collect()
}

/// A user row that may be missing, to a record.
pub(crate) fn maybe_user(row: Option<UserRow>) -> StoreResult<Option<User>> {
    row.map(User::try_from).transpose()
}

/// A row of `api_keys`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct KeyRow {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) label: String,
    pub(crate) key_hash: String,
    pub(crate) last_chars: String,
    /// Space-separated scope names.
    pub(crate) scopes: String,
    pub(crate) expires_at: Option<i64>,
    pub(crate) created_at: i64,
    pub(crate) last_used_at: Option<i64>,
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> StoreResult<Self> {
        Ok(ApiKey {
            id: uuid(&row.id, "key")?,
            user_id: user_id(&row.user_id)?,
            label: row.label,
            key_hash: row.key_hash,
            last_chars: row.last_chars,
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            expires_at: row.expires_at,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })
    }
}

pub(crate) fn user_id(text: &str) -> StoreResult<UserId> {
    UserId::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("stored user id {text:?} is not a UUID")))
}

/// A stored id of `what` (a key, a project, …).
pub(crate) fn uuid(text: &str, what: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(text)
        .map_err(|_| StoreError::Backend(format!("stored {what} id {text:?} is not a UUID")))
}
