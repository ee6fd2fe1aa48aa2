//! API keys, and the public API v1's user operations (spec 003).
//!
//! A key is shown once and stored as a hash. It acts with its user's role
//! as it is now, capped by its scopes: a demoted or deleted user's keys lose
//! their rights on the next call.

use base64::Engine as _;

use crate::{
    Error, Result,
    model::{Email, Origin, Role, User, UserId},
    resources::ProjectId,
    secret::Secret,
    store::{ApiKey, KeyUse, UserCursor, UserRef},
    token,
};

use super::{
    Usher,
    auth::Actor,
    invitations::{InviteRequest, Invited},
};

/// The scopes of the user operations, as n8n names them.
pub const USER_SCOPES: &[&str] = &[
    "user:read",
    "user:list",
    "user:create",
    "user:changeRole",
    "user:delete",
];
pub const INVALID_CURSOR: &str = "An invalid cursor was provided";
const KEY_PREFIX: &str = "usher_api_";

/// The scopes a role may put on its keys.
pub fn scopes_for(role: Role) -> &'static [&'static str] {
    if role.manages_users() {
        USER_SCOPES
    } else {
        &[]
    }
}

/// A new key: the raw value is shown once.
#[derive(Debug)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub raw: Secret,
}

/// Who calls `/api/v1`: a key's user, with the key's scopes.
#[derive(Clone, Debug)]
pub struct ApiCaller {
    pub user: User,
    pub scopes: Vec<String>,
}

impl ApiCaller {
    /// The scope is on the key, and the user's current role still allows it.
    pub fn require(&self, scope: &str) -> Result<Actor> {
        if !self.scopes.iter().any(|s| s == scope) {
            return Err(Error::forbidden(format!(
                "This API key does not have the scope {scope}."
            )));
        }
        if !scopes_for(self.user.role).contains(&scope) {
            return Err(Error::forbidden(
                "Only the owner and admins can use the user operations.",
            ));
        }
        Ok(self.actor())
    }

    fn actor(&self) -> Actor {
        Actor {
            user: self.user.clone(),
            session: None,
            refreshed_until: None,
        }
    }
}

/// One page of `GET /api/v1/users`.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}

impl Usher {
    fn public_api_enabled(&self) -> Result<()> {
        if self.config.public_api_disabled {
            Err(Error::not_found(
                "The public API is turned off on this instance (N8N_PUBLIC_API_DISABLED).",
            ))
        } else {
            Ok(())
        }
    }

    fn check_scopes(actor: &Actor, scopes: &[String]) -> Result<()> {
        let allowed = scopes_for(actor.user.role);
        if scopes.iter().any(|s| !allowed.contains(&s.as_str())) {
            return Err(Error::invalid("Invalid scopes for user role"));
        }
        Ok(())
    }

    fn key_label(text: &str) -> Result<String> {
        let label = text.trim();
        if label.is_empty() || label.chars().count() > 50 {
            return Err(Error::field("label", "A label is 1 to 50 characters long."));
        }
        if label.chars().any(char::is_control) {
            return Err(Error::field(
                "label",
                "A label cannot contain control characters (tabs, line breaks).",
            ));
        }
        Ok(label.to_owned())
    }

    pub async fn create_api_key(
        &self,
        actor: &Actor,
        label: &str,
        scopes: Vec<String>,
        expires_at_seconds: Option<i64>,
        origin: &Origin,
    ) -> Result<NewApiKey> {
        self.public_api_enabled()?;
        let label = Self::key_label(label)?;
        Self::check_scopes(actor, &scopes)?;
        let now = self.now();
        let expires_at = expires_at_seconds.map(|s| s.saturating_mul(1000));
        if expires_at.is_some_and(|at| at <= now) {
            return Err(Error::field(
                "expiresAt",
                "expiresAt must be in the future (Unix seconds), or null for a key that does not expire.",
            ));
        }
        let raw = format!("{KEY_PREFIX}{}", token::generate().secret.expose());
        let key = ApiKey {
            id: uuid::Uuid::now_v7(),
            user_id: actor.user.id,
            label: label.clone(),
            key_hash: token::hash(&raw),
            last_chars: raw
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
            scopes,
            expires_at,
            created_at: now,
            last_used_at: None,
        };
        self.store
            .insert_api_key(&key)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("You already have an API key labelled '{label}'."))
                }
                other => other,
            })?;
        self.audit(
            Some(&actor.user),
            "api_key.created",
            Some(&actor.user),
            label,
            origin,
        )
        .await;
        Ok(NewApiKey {
            key,
            raw: Secret::new(raw),
        })
    }

    pub async fn api_keys(&self, actor: &Actor) -> Result<Vec<ApiKey>> {
        self.public_api_enabled()?;
        Ok(self.store.api_keys_of(actor.user.id).await?)
    }

    pub async fn update_api_key(
        &self,
        actor: &Actor,
        id: &str,
        label: &str,
        scopes: Vec<String>,
    ) -> Result<()> {
        self.public_api_enabled()?;
        let label = Self::key_label(label)?;
        Self::check_scopes(actor, &scopes)?;
        let id = uuid::Uuid::parse_str(id.trim())
            .map_err(|_| Error::not_found("There is no such API key."))?;
        let updated = self
            .store
            .update_api_key(actor.user.id, id, &label, &scopes)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("You already have an API key labelled '{label}'."))
                }
                other => other,
            })?;
        if updated {
            Ok(())
        } else {
            Err(Error::not_found("There is no such API key."))
        }
    }

    pub async fn delete_api_key(&self, actor: &Actor, id: &str, origin: &Origin) -> Result<()> {
        self.public_api_enabled()?;
        let id = uuid::Uuid::parse_str(id.trim())
            .map_err(|_| Error::not_found("There is no such API key."))?;
        if !self.store.delete_api_key(actor.user.id, id).await? {
            return Err(Error::not_found("There is no such API key."));
        }
        self.audit(
            Some(&actor.user),
            "api_key.deleted",
            Some(&actor.user),
            id.to_string(),
            origin,
        )
        .await;
        Ok(())
    }

    /// The caller behind a presented key.
    pub async fn api_caller(&self, raw: Option<&str>) -> Result<ApiCaller> {
        self.public_api_enabled()?;
        let Some(raw) = raw.map(str::trim).filter(|k| !k.is_empty()) else {
            return Err(Error::Unauthorized(
                "'X-N8N-API-KEY' header required".into(),
            ));
        };
        let now = self.now();
        let unknown = || {
            Error::Unauthorized("This API key is not valid: it may have been deleted. Create a new one in Settings > API.".into())
        };
        let KeyUse { key, user } = self
            .store
            .use_api_key(&token::hash(raw), now)
            .await?
            .ok_or_else(unknown)?;
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::Unauthorized(
                "This API key has expired. Create a new one in Settings > API.".into(),
            ));
        }
        Ok(ApiCaller {
            user,
            scopes: key.scopes,
        })
    }

    // ------------------------------------------------------------ /api/v1/users

    pub async fn public_users(
        &self,
        caller: &ApiCaller,
        limit: i64,
        offset: i64,
        cursor: Option<&str>,
        project: Option<&str>,
    ) -> Result<UserPage> {
        caller.require("user:list")?;
        if !(1..=250).contains(&limit) {
            return Err(Error::invalid(
                "limit must be a whole number from 1 to 250.",
            ));
        }
        if offset < 0 {
            return Err(Error::invalid("offset cannot be negative."));
        }
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()?;
        let project = match project.map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(text) => {
                let id = ProjectId::parse(text)?;
                self.store
                    .project(id)
                    .await?
                    .ok_or_else(|| Error::not_found("There is no such project."))?;
                Some(id)
            }
        };
        // One more than asked for tells whether there is a next page.
        let mut users = self
            .store
            .user_page(after.as_ref(), offset, limit + 1, project)
            .await?;
        let next_cursor = if users.len() as i64 > limit {
            users.truncate(limit as usize);
            users.last().map(|u| {
                encode_cursor(&UserCursor {
                    created_at: u.created_at,
                    id: u.id,
                })
            })
        } else {
            None
        };
        Ok(UserPage { users, next_cursor })
    }

    /// A user by id or by email (the public API's most frequent read: the
    /// store answers it from memory while nothing changed).
    pub async fn public_user(&self, caller: &ApiCaller, id_or_email: &str) -> Result<User> {
        caller.require("user:read")?;
        self.user_by_id_or_email(id_or_email).await
    }

    async fn user_by_id_or_email(&self, text: &str) -> Result<User> {
        let found = match user_ref(text) {
            Some(UserRef::Id(id)) => self.store.user_by_id(id).await?,
            Some(UserRef::Email(email)) => self.store.user_by_email(&email).await?,
            None => None,
        };
        with_account(found)
    }

    pub async fn public_invite(
        &self,
        caller: &ApiCaller,
        requests: Vec<InviteRequest>,
        origin: &Origin,
    ) -> Result<Vec<Invited>> {
        let actor = caller.require("user:create")?;
        self.invite(&actor, requests, origin).await
    }

    /// Deletes a user, with the rules of `delete_user` (yourself is 400, the
    /// owner 403). Their workflows and credentials are not lost: they go to
    /// the personal project of the key's user (the public API has no
    /// transfer choice).
    pub async fn public_delete_user(
        &self,
        caller: &ApiCaller,
        id_or_email: &str,
        origin: &Origin,
    ) -> Result<()> {
        let actor = caller.require("user:delete")?;
        let target = self.user_by_id_or_email(id_or_email).await?;
        let keep = self.personal_project_of(&actor.user).await?;
        self.delete_user(&actor, target.id, Some(&keep.id.to_string()), origin)
            .await
    }

    pub async fn public_change_role(
        &self,
        caller: &ApiCaller,
        id_or_email: &str,
        role: &str,
        origin: &Origin,
    ) -> Result<User> {
        let actor = caller.require("user:changeRole")?;
        let target = self.user_by_id_or_email(id_or_email).await?;
        self.change_role(&actor, target.id, role, origin).await
    }
}

/// The user found, unless there is none or it is the owner shell (a row
/// with no email yet, which the API does not show).
fn with_account(found: Option<User>) -> Result<User> {
    found
        .filter(|u| u.email.is_some())
        .ok_or_else(|| Error::not_found("There is no such user."))
}

/// What `/api/v1/users/{id}` names: an id, an email, or nothing there is.
fn user_ref(text: &str) -> Option<UserRef> {
    match UserId::parse(text.trim()) {
        Some(id) => Some(UserRef::Id(id)),
        None => Email::parse(text).ok().map(UserRef::Email),
    }
}

/// Cursors are opaque to callers: base64url of `created_at:id`.
fn encode_cursor(cursor: &UserCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", cursor.created_at, cursor.id))
}

fn decode_cursor(text: &str) -> Result<UserCursor> {
    let invalid = || Error::invalid(INVALID_CURSOR);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (at, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok(UserCursor {
        created_at: at.parse().map_err(|_| invalid())?,
        id: UserId::parse(id).ok_or_else(invalid)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = UserCursor {
            created_at: 1_700_000_000_123,
            id: UserId::new(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)).ok(), Some(cursor));
        for bad in ["", "!!", "bm90LWEtY3Vyc29y", "MTIzOm5vdC1hLXV1aWQ"] {
            assert_eq!(
                decode_cursor(bad).err().map(|e| e.to_string()).as_deref(),
                Some(INVALID_CURSOR),
                "{bad}"
            );
        }
    }

    #[test]
    fn members_may_put_no_user_scopes_on_keys() {
        assert!(scopes_for(Role::Member).is_empty());
        assert_eq!(scopes_for(Role::Admin), USER_SCOPES);
    }
}
