//! Owner set-up, skipping it, sign-in, sessions and sign-out.

use crate::{
    Error, Result,
    clock::{MINUTE, Millis},
    model::{Email, Name, Origin, Role, User, UserId},
    secret::Secret,
    store::{OwnerClaim, Session, SetupState, keys},
    token,
};

use super::{Usher, throttle::Limit};

pub const WRONG_CREDENTIALS: &str = "Wrong username or password. Do you have caps lock on?";
pub const ALREADY_SET_UP: &str = "Instance owner already setup";

#[derive(Debug)]
pub struct OwnerSetup {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: Secret,
}

/// A new session: the token goes into the cookie, once.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub token: Secret,
    pub expires_at: Millis,
    /// A device cookie for this browser and user: its later sign-in
    /// attempts are counted apart from strangers' (see [`super::throttle`]).
    pub device: Option<Secret>,
}

/// Who is making a request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: User,
    /// The session's token hash; None when user management is off or set-up
    /// was skipped and the request acts as the owner without signing in.
    pub session: Option<String>,
    /// Set when the session was extended by this request: the new expiry,
    /// for a fresh cookie.
    pub refreshed_until: Option<Millis>,
}

/// Who is asking, and in what state the instance is.
#[derive(Clone, Debug)]
pub struct Identity {
    pub instance: Instance,
    pub actor: Option<Actor>,
}

/// The state of the instance that decides where pages lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    pub owner_set_up: bool,
    pub setup_skipped: bool,
    pub user_management_disabled: bool,
    /// Everyone must have two-factor authentication.
    pub mfa_required: bool,
}

impl Instance {
    /// No sign-in needed: everyone acts as the owner.
    pub fn is_open(&self) -> bool {
        self.user_management_disabled || (self.setup_skipped && !self.owner_set_up)
    }
}

/// Limits on sign-in attempts, as n8n has them.
pub(super) const LOGIN_PER_EMAIL: Limit = Limit {
    attempts: 5,
    window: MINUTE,
};
const LOGIN_PER_IP: Limit = Limit {
    attempts: 1000,
    window: 5 * MINUTE,
};

impl Usher {
    /// Run once at start-up: makes sure the owner shell exists.
    pub async fn prepare(&self) -> Result<()> {
        self.store
            .ensure_owner_shell(UserId::new(), self.now())
            .await?;
        Ok(())
    }

    pub async fn instance(&self) -> Result<Instance> {
        let SetupState {
            owner_set_up,
            setup_skipped,
            mfa_required,
        } = self.store.setup_state().await?;
        Ok(Instance {
            owner_set_up,
            setup_skipped,
            user_management_disabled: self.config.user_management_disabled,
            mfa_required: mfa_required && !self.config.mfa_disabled,
        })
    }

    pub(super) fn user_management_enabled(&self) -> Result<()> {
        if self.config.user_management_disabled {
            Err(Error::not_found(
                "User management is disabled on this instance.",
            ))
        } else {
            Ok(())
        }
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn setup_owner(&self, input: OwnerSetup, origin: &Origin) -> Result<SignedIn> {
        self.user_management_enabled()?;
        let instance = self.instance().await?;
        if instance.owner_set_up {
            return Err(Error::invalid(ALREADY_SET_UP));
        }
        let email = Email::parse(&input.email)?;
        self.refuse_look_alike(&email, None).await?;
        let first_name = Name::first(&input.first_name)?;
        let last_name = Name::last(&input.last_name)?;
        self.config.password_policy.check(&input.password)?;
        let password_hash = self.hasher.hash(&input.password).await?;
        let claim = OwnerClaim {
            email,
            first_name: first_name.as_str().to_owned(),
            last_name: last_name.as_str().to_owned(),
            password_hash,
            now: self.now(),
        };
        // The store fills the shell only if it is still empty: of several
        // set-ups at once, exactly one gets here with Some.
        let owner = self
            .store
            .claim_owner(&claim)
            .await?
            .ok_or_else(|| Error::invalid(ALREADY_SET_UP))?;
        self.audit(Some(&owner), "owner.setup", Some(&owner), "", origin)
            .await;
        if instance.setup_skipped {
            self.close_open_period(&owner, origin).await?;
        }
        self.start_session(owner, origin).await
    }

    /// "Skip setup" (spec 000): the instance works without sign-in until the
    /// owner is set up from Settings > Users.
    pub async fn skip_setup(&self, origin: &Origin) -> Result<()> {
        self.user_management_enabled()?;
        if self.instance().await?.owner_set_up {
            return Err(Error::invalid(ALREADY_SET_UP));
        }
        self.store.put_setting(keys::SETUP_SKIPPED, "true").await?;
        self.audit(None, "owner.setup_skipped", None, "", origin)
            .await;
        Ok(())
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn login(
        &self,
        login: &str,
        password: &Secret,
        factor: &super::mfa::SecondFactor,
        origin: &Origin,
    ) -> Result<SignedIn> {
        let user = self.check_sign_in(login, password, origin).await?;
        // With MFA on, the password alone is not enough (n8n's code 998).
        self.require_second_factor(&user, factor, Error::Unauthorized)
            .await?;
        self.audit(Some(&user), "login.succeeded", Some(&user), "", origin)
            .await;
        self.start_session(user, origin).await
    }

    /// The first factor of a sign-in: the user whose login (an email, or a
    /// directory login ID) and password these are, within the sign-in
    /// limits. With LDAP sign-in on, everyone but the owner is checked by
    /// the directory (as in n8n); the owner keeps the password kept here.
    /// With SSO only, the owner's password is the one door, LDAP or not.
    pub(super) async fn check_sign_in(
        &self,
        login: &str,
        password: &Secret,
        origin: &Origin,
    ) -> Result<User> {
        self.user_management_enabled()?;
        let email = Email::parse(login).ok();
        let email_key = email
            .as_ref()
            .map_or_else(|| login.trim().to_lowercase(), |e| e.to_string());
        let user = match &email {
            Some(email) => self.store.user_by_email(email).await?,
            None => None,
        };
        self.throttle(
            &self.login_key(&email_key, user.as_ref(), origin),
            LOGIN_PER_EMAIL,
        )
        .await?;
        self.throttle(&format!("login:ip:{}", origin.ip), LOGIN_PER_IP)
            .await?;
        // SSO only closes the directory's door too, before it is asked:
        // the attempt goes on below to the owner's password check, which
        // refuses everyone else with the same answer.
        if !user.as_ref().is_some_and(|u| u.role == Role::Owner)
            && !self.sso_only().await?
            && let Some(directory) = self.ldap_sign_in().await?
        {
            return self
                .directory_sign_in(&directory, login, password, &email_key, origin)
                .await;
        }
        // Unknown and pending users cost one hash verification too, so the
        // answer's timing does not tell whether an account exists; so do
        // directory users (no password here) and disabled ones.
        let hash = user
            .as_ref()
            .filter(|u| !u.is_ldap() && !u.disabled)
            .and_then(|u| u.password_hash.as_deref());
        let verified = self.hasher.verify(password, hash).await?;
        // SSO only: a password is the owner's door alone (n8n's rule).
        self.refuse_password_door(
            user.as_ref().filter(|_| verified.matches),
            &email_key,
            origin,
        )
        .await?;
        let Some(user) = user.filter(|_| verified.matches) else {
            self.audit(
                None,
                "login.failed",
                None,
                format!("email: {email_key}"),
                origin,
            )
            .await;
            return Err(Error::Unauthorized(WRONG_CREDENTIALS.into()));
        };
        if verified.needs_rehash {
            let new_hash = self.hasher.hash(password).await?;
            self.store.rehash_password(user.id, &new_hash).await?;
        }
        Ok(user)
    }

    pub(super) async fn start_session(&self, user: User, origin: &Origin) -> Result<SignedIn> {
        let token = token::generate();
        let now = self.now();
        let session = Session {
            token_hash: token.hash,
            user_id: user.id,
            created_at: now,
            expires_at: now + self.config.sessions.lifetime,
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.chars().take(512).collect(),
            // Sign-in asks for the second factor whenever the person has one.
            mfa: user.mfa_enabled,
        };
        self.store.insert_session(&session).await?;
        let device = self.device_token(&user);
        Ok(SignedIn {
            user,
            token: token.secret,
            expires_at: session.expires_at,
            device,
        })
    }

    /// Who makes a request that carries `token` (the session cookie), and the
    /// instance's state: what every page and route decides on.
    pub async fn identify(&self, token: Option<&str>) -> Result<Identity> {
        let instance = self.instance().await?;
        if instance.is_open() {
            let actor = self.store.owner().await?.map(|user| Actor {
                user,
                session: None,
                refreshed_until: None,
            });
            return Ok(Identity { instance, actor });
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(Identity {
                instance,
                actor: None,
            });
        };
        let hash = token::hash(token);
        let now = self.now();
        let Some((session, mut user)) = self.store.session(&hash, now).await? else {
            return Ok(Identity {
                instance,
                actor: None,
            });
        };
        // Last active, to the day (as n8n's lastActiveAt): one write a day
        // a user, not one a request.
        let today = now - now.rem_euclid(DAY);
        if user.last_active_at.unwrap_or(0) < today {
            self.store.touch_user(user.id, now, today).await?;
            user.last_active_at = Some(now);
        }
        let mut refreshed_until = None;
        let threshold = self.config.sessions.refresh_when_left;
        if threshold.is_some_and(|left| session.expires_at - now < left) {
            let until = now + self.config.sessions.lifetime;
            self.store.extend_session(&hash, until).await?;
            refreshed_until = Some(until);
        }
        let actor = Actor {
            user,
            session: Some(hash),
            refreshed_until,
        };
        Ok(Identity {
            instance,
            actor: Some(actor),
        })
    }

    pub async fn logout(&self, actor: &Actor, origin: &Origin) -> Result<()> {
        self.user_management_enabled()?;
        if let Some(hash) = &actor.session {
            self.store.delete_session(hash).await?;
            self.audit(Some(&actor.user), "logout", Some(&actor.user), "", origin)
                .await;
        }
        Ok(())
    }
}

/// A day in milliseconds.
const DAY: i64 = 86_400_000;

impl Role {
    /// What a role may not do is decided here, once.
    pub fn require_user_manager(self) -> Result<()> {
        if self.manages_users() {
            Ok(())
        } else {
            Err(Error::forbidden(
                "Only the owner and admins can manage users.",
            ))
        }
    }
}
