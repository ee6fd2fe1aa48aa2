//! The use cases. Pages, `/rest` and `/api/v1` call these and nothing else, so
//! a rule has one code path. Each takes the acting user where rights matter.
//!
//! - [`auth`]: owner set-up, skipping it, sign-in, sessions, sign-out;
//! - [`mfa`]: two-factor authentication;
//! - [`me`]: personal settings (names, email, password);
//! - [`email_verification`]: confirming an address a member set themselves;
//! - [`invitations`]: inviting, resending, withdrawing and accepting;
//! - [`resources`]: projects, workflows, credentials, tags, and their rules;
//! - [`roles`]: global roles, handing over ownership, the audit log;
//! - [`user_list`]: the user list with n8n's filter, order and pages;
//! - [`recovery`]: password reset by email, by admins, by the operator;
//! - [`onboarding`]: users created with a temporary password, and the
//!   password change it forces;
//! - [`api`]: API keys and the public API v1's user operations;
//! - [`admin`]: what operators run from the command line;
//! - [`apps`]: apps people sign into through Usher, and who may;
//! - [`oidc`]: Usher as the apps' OpenID Connect provider;
//! - [`forward_auth`]: the answers reverse proxies ask for at apps' doors.
//! - [`ldap`]: signing in with the company directory, and synchronising it.
//! - [`sso`]: signing into Usher through the company's OpenID Connect
//!   provider, and whether passwords are for everyone or the owner only.

pub mod admin;
pub mod api;
pub mod apps;
pub mod auth;
pub mod email_verification;
pub mod forward_auth;
pub mod invitations;
pub mod ldap;
pub mod me;
pub mod mfa;
pub mod oidc;
pub mod onboarding;
pub mod open_period;
pub mod recovery;
pub mod resources;
pub mod roles;
pub mod sso;
pub mod throttle;
pub mod user_actions;
pub mod user_browse;
pub mod user_list;

use std::sync::Arc;

use crate::{
    Error, Result,
    clock::{Clock, HOUR, Millis},
    mail::Mailer,
    model::{Email, Origin, User, UserId},
    password::{PasswordHasher, PasswordPolicy},
    store::{AuditEvent, Store},
};

/// How long sessions live and when they are extended.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub lifetime: Millis,
    /// Extend a session when less than this is left; None: never extend.
    pub refresh_when_left: Option<Millis>,
}

impl SessionPolicy {
    /// From n8n's settings: lifetime in hours; refresh timeout in hours, where
    /// 0 means "when a quarter of the lifetime is left" and -1 means never.
    pub fn from_hours(lifetime_hours: i64, refresh_timeout_hours: i64) -> Self {
        let lifetime = lifetime_hours * HOUR;
        let refresh_when_left = match refresh_timeout_hours {
            -1 => None,
            0 => Some(lifetime / 4),
            hours => Some(hours * HOUR),
        };
        Self {
            lifetime,
            refresh_when_left,
        }
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self::from_hours(168, 0)
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub password_policy: PasswordPolicy,
    pub sessions: SessionPolicy,
    /// N8N_USER_MANAGEMENT_DISABLED: one implicit user, no sign-in.
    pub user_management_disabled: bool,
    /// The public base URL links in emails and answers start with.
    pub base_url: String,
    /// How long an invitation link stays valid.
    pub invite_lifetime: Millis,
    /// N8N_INVITE_LINKS_EMAIL_ONLY: never show invitation links.
    pub invite_links_email_only: bool,
    /// N8N_PUBLIC_API_DISABLED: no /api/v1 and no API keys.
    pub public_api_disabled: bool,
    /// N8N_MFA_ENABLED=false: no new enrolments (users with MFA keep it).
    pub mfa_disabled: bool,
    /// N8N_AUTH_COOKIE_DOMAIN: the parent domain the session cookie is set
    /// for (`example.com`), so forward authentication reads it on apps'
    /// hosts there; None: Usher's host only.
    pub cookie_domain: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            password_policy: PasswordPolicy::default(),
            sessions: SessionPolicy::default(),
            user_management_disabled: false,
            base_url: "http://localhost:5678".into(),
            invite_lifetime: 168 * HOUR,
            invite_links_email_only: false,
            public_api_disabled: false,
            mfa_disabled: false,
            cookie_domain: None,
        }
    }
}

/// The application: storage, hashing, time and the rules' settings.
#[derive(Clone)]
pub struct Usher {
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    /// Encrypts credential data; set with [`Usher::with_cipher`].
    cipher: Option<crate::cipher::Cipher>,
    hasher: PasswordHasher,
    clock: Arc<dyn Clock>,
    config: Config,
    /// ID token signing keys opened from the store.
    keys: oidc::KeyCache,
    /// The company directory (LDAP); set with [`Usher::with_directory`].
    directory: Arc<dyn crate::ldap::Directory>,
    /// This process among the instances sharing the database (who holds a
    /// lease).
    instance_id: String,
}

impl Usher {
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<dyn Mailer>,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Self {
        Self {
            store,
            mailer,
            cipher: None,
            hasher,
            clock,
            config,
            keys: oidc::KeyCache::default(),
            directory: Arc::new(crate::ldap::NoDirectory),
            instance_id: uuid::Uuid::now_v7().to_string(),
        }
    }

    /// The company directory's adapter (LDAP).
    pub fn with_directory(mut self, directory: Arc<dyn crate::ldap::Directory>) -> Self {
        self.directory = directory;
        self
    }

    /// Stored secrets are encrypted with this instance key.
    pub fn with_cipher(mut self, key: &crate::secret::Secret) -> Self {
        self.cipher = Some(crate::cipher::Cipher::new(key));
        self
    }

    pub fn mail_configured(&self) -> bool {
        self.mailer.is_configured()
    }

    /// A link into Usher: the base URL, a path and a query.
    pub fn link(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.config.base_url)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The user with this id, or "There is no such user."
    async fn existing_user(&self, id: UserId) -> crate::Result<User> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or_else(|| crate::Error::not_found("There is no such user."))
    }

    /// Seals and opens stored secrets (credential data, TOTP secrets).
    fn cipher(&self) -> crate::Result<&crate::cipher::Cipher> {
        self.cipher
            .as_ref()
            .ok_or_else(|| crate::Error::Internal("no encryption key".into()))
    }

    /// Writes one audit event. The action it records has already happened, so
    /// a failure here is logged rather than undoing it.
    async fn audit(
        &self,
        actor: Option<&User>,
        action: &str,
        target: Option<&User>,
        detail: impl Into<String>,
        origin: &Origin,
    ) {
        let event = AuditEvent {
            id: uuid::Uuid::now_v7(),
            at: self.now(),
            actor_id: actor.map(|u| u.id),
            actor_email: actor.and_then(|u| u.email.as_ref()).map(|e| e.to_string()),
            action: action.to_owned(),
            target: target.map(|u| {
                u.email
                    .as_ref()
                    .map_or_else(|| u.id.to_string(), |e| e.to_string())
            }),
            detail: detail.into(),
            ip: origin.ip.clone(),
        };
        if let Err(error) = self.store.record(&event).await {
            tracing::error!(%error, action, "could not write an audit event");
        }
    }

    /// Refuses an address that looks like another user's (the same UTS #39
    /// skeleton, say `ann@exаmple.com` with a Cyrillic а beside
    /// `ann@example.com`): someone who got it could pass for them. `who` is
    /// the user the address is for, if they exist already.
    pub(super) async fn refuse_look_alike(&self, email: &Email, who: Option<UserId>) -> Result<()> {
        match self.store.user_looking_like(email).await? {
            Some(other) if Some(other.id) != who => {
                let theirs = other.email.map(|e| e.to_string()).unwrap_or_default();
                Err(Error::field(
                    "email",
                    format!(
                        "{email} looks like the address of an existing user, {theirs}: \
                         use another address, or the one that is already there."
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The token the page forms of whoever holds `binding` carry (the hash
    /// of a session, or a cookie of its own before sign-in): a tag with the
    /// instance key, so nothing is stored and every instance checks it.
    pub fn form_token(&self, binding: &str) -> Result<String> {
        Ok(self.cipher()?.tag("form-token", binding))
    }

    /// Whether a form came with the token of `binding`.
    pub fn form_token_matches(&self, binding: &str, token: &str) -> bool {
        self.cipher()
            .is_ok_and(|cipher| cipher.check_tag("form-token", binding, token))
    }

    /// `text` sealed with the instance key, to hand to a browser and take
    /// back later (what a page shows after a redirect): nobody else can
    /// write it, nobody can read it.
    pub fn seal_for_browser(&self, text: &str) -> Result<String> {
        self.cipher()?.seal(text)
    }

    /// What [`Self::seal_for_browser`] sealed.
    pub fn open_for_browser(&self, sealed: &str) -> Result<String> {
        self.cipher()?.open(sealed)
    }
}
