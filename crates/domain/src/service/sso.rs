//! Single sign-on into Usher through the company's OpenID Connect provider
//! (n8n's "OIDC SSO"): its settings, the sign-ins under way, and who a
//! provider's person is in Usher.
//!
//! The protocol itself (discovery, the authorization request with PKCE,
//! the code exchange, the ID token's signature and claims) is HTTP and sits
//! in the server (`server/src/sso.rs`, with the `openidconnect` crate); it
//! hands this module what it verified ([`SsoIdentity`]). Here are the rules:
//!
//! - a person is found by the provider's (issuer, `sub`); when first seen,
//!   the provider must say the email is verified (`email_verified: true`),
//!   or, with "trust email" on, at least not deny it (no `email_verified`:
//!   Microsoft Entra ID sends none), else the sign-in is refused; then the
//!   member with that email is
//!   linked, or a new email makes a member (when "create accounts" is on
//!   and the address is in one of the allowed domains, if any are set).
//!   The owner and admins are never linked by email: whoever may change
//!   these settings could point them at a provider of their own that
//!   asserts any address; nor is a disabled member, nor an account linked
//!   to another identity (`sub`) of the same provider already: a provider
//!   may give a departed person's address to someone new;
//! - Usher's own two-factor code is asked on top for users who turned it on
//!   (n8n asks none; a link by email must not step around a factor the
//!   person chose), and the owner's "two-factor for everyone" holds SSO
//!   sessions like any other (the session layer);
//! - "SSO only" (n8n's `authenticationMethod: "oidc"`): password sign-in
//!   (the directory's included) and password reset are the owner's alone;
//! - the provider is spoken to over https, plain http only on this machine
//!   (a loopback address), since the client secret and the codes go there.

use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    clock::{MINUTE, Millis},
    model::{Email, Name, Origin, Role, User, UserId},
    secret::Secret,
    store::{StoreError, keys},
    token,
};

use super::{
    Usher,
    auth::{Actor, SignedIn},
};

/// What n8n answers in place of a stored client secret; sent back
/// unchanged, it keeps the stored one (n8n's own value, so that n8n's
/// scripts work unchanged).
pub const SECRET_PLACEHOLDER: &str =
    "__n8n_CLIENT_SECRET_VALUE_e5362baf-c777-4d57-a609-6eaf1f9e87f6";

/// n8n's refusal of a password sign-in when SSO is the way in.
pub const USE_SSO: &str = "SSO is enabled, please log in with SSO";

/// A password reset for someone other than the owner, with SSO only.
pub const RESET_REFUSED: &str = "Passwords are not used on this instance: sign in with the \
     single sign-on button on the sign-in page. Only the owner keeps a password.";

/// The sign-in page's answer when the provider asserts the email of the
/// owner or an admin the first time: such an account is never linked by
/// email (whoever may change the settings could point them at a provider
/// of their own that asserts any address).
pub const ADMIN_NOT_LINKED: &str = "An account with this email already exists with \
     administrator rights. Sign in with your password; an administrator account is not linked \
     to single sign-on automatically.";

/// The same, when SSO only leaves an admin no password to sign in with.
const ADMIN_NOT_LINKED_SSO_ONLY: &str = "An account with this email already exists with \
     administrator rights, and an administrator account is not linked to single sign-on \
     automatically. Ask the owner to make your account a member for your first sign-in with \
     the provider, and an admin again afterwards.";

/// The sign-in page's answer when the provider asserts an address that a
/// member typed in and has not confirmed: whoever did may not own it, so
/// the provider's person is not handed that account.
pub const UNCONFIRMED_NOT_LINKED: &str = "An account in Usher has this email address but has not \
     confirmed it, so your sign-in cannot be linked to it. Ask the owner or an admin of Usher.";

/// An email link refused because the account has another identity at the
/// same provider (the address may have passed to someone new there).
pub const LINKED_ELSEWHERE: &str = "The Usher account with this email is linked to another \
     identity at your provider, so Usher does not link it to yours: the provider may have given \
     this address to someone else before. Ask an admin of this Usher.";

/// A disabled account, whether found by its link or its email.
pub const ACCOUNT_DISABLED: &str =
    "Your Usher account is disabled: ask the owner or an admin of this Usher.";

/// A first sign-in that would make an account, with "create accounts" off.
pub const NO_NEW_ACCOUNTS: &str = "There is no Usher account for this email address, and \
     accounts are not made at the first sign-in with the provider here. Ask an admin of this \
     Usher for an invitation; once you have accepted it, sign in with your provider.";

/// A first sign-in that would make an account for an address outside the
/// allowed domains.
pub const DOMAIN_NOT_ALLOWED: &str = "Usher makes accounts at the first sign-in only for email \
     addresses of the organisation's own domains, and yours is not one of them. Ask an admin of \
     this Usher for an invitation.";

/// At most this many allowed domains.
const MAX_DOMAINS: usize = 50;

/// A discovery endpoint over plain http that is not on this machine.
pub const PLAIN_HTTP: &str = "Use an https:// discovery endpoint: Usher sends the client \
     secret and people's sign-in codes to the provider, and plain http would show them to the \
     network. http:// is accepted only for a provider on this machine (127.0.0.1 or [::1]).";

/// The placeholder sent for a provider or client other than the stored
/// secret's.
pub const SECRET_AGAIN: &str = "Enter the client secret again: the discovery endpoint or the \
     client ID changed, and the saved secret goes only to the provider and client it was \
     entered for.";

/// How long a sign-in at the provider may take.
pub const LOGIN_LIFETIME: Millis = 15 * MINUTE;

/// Sign-ins with the provider one address may start.
const SSO_STARTS_PER_IP: super::throttle::Limit = super::throttle::Limit {
    attempts: 30,
    window: MINUTE,
};

/// The `prompt` values OpenID Connect defines (n8n's list).
pub const PROMPTS: [&str; 5] = ["none", "login", "consent", "select_account", "create"];

/// Which door people use (n8n's `userManagement.authenticationMethod`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    /// Passwords for everyone (and the provider's button, when on).
    #[default]
    Email,
    /// The provider only; the owner keeps the local password.
    Oidc,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Oidc => "oidc",
        }
    }
}

/// The provider's settings as an owner or admin sees and sends them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoSettings {
    pub discovery_endpoint: String,
    pub client_id: String,
    /// Shown as [`SECRET_PLACEHOLDER`] when one is stored; sent as it, the
    /// stored one is kept.
    pub client_secret: String,
    pub login_enabled: bool,
    pub prompt: Option<String>,
    /// The button's text: "Sign in with <label>".
    pub login_label: String,
    pub authentication_method: Door,
    /// An email without `email_verified` counts as verified (Keycloak's
    /// "Trust email"): for a provider whose users cannot choose their own
    /// address, such as Microsoft Entra ID, which never sends the claim.
    /// An explicit `email_verified: false` is refused all the same.
    pub trust_email: bool,
    /// The email domains (lower case, such as `example.com`) for which a
    /// first sign-in makes an account; empty: any. Existing accounts
    /// (linked, or a member with the email) are not limited by it.
    pub allowed_domains: Vec<String>,
    /// Whether a first sign-in with a new email makes an account (n8n's
    /// just-in-time provisioning, on by default); off, only people with an
    /// Usher account get in.
    pub create_accounts: bool,
}

impl Default for SsoSettings {
    fn default() -> Self {
        Self {
            discovery_endpoint: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            login_enabled: false,
            prompt: None,
            login_label: String::new(),
            authentication_method: Door::Email,
            trust_email: false,
            allowed_domains: Vec::new(),
            create_accounts: true,
        }
    }
}

/// The settings with the secret opened, for the server's requests to the
/// provider. Its `Debug` hides the secret.
#[derive(Clone, Debug)]
pub struct SsoConfig {
    pub discovery_endpoint: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub login_enabled: bool,
    pub prompt: Option<String>,
    pub login_label: String,
    pub authentication_method: Door,
    pub trust_email: bool,
    pub allowed_domains: Vec<String>,
    pub create_accounts: bool,
}

impl SsoConfig {
    /// The issuer the discovery endpoint belongs to (OpenID Connect
    /// Discovery: `<issuer>/.well-known/openid-configuration`), without a
    /// trailing slash; the provider's document must name the same.
    pub fn expected_issuer(&self) -> &str {
        self.discovery_endpoint
            .trim_end_matches("/.well-known/openid-configuration")
            .trim_end_matches('/')
    }
}

/// As stored in the settings table (n8n's key `features.oidc`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Stored {
    discovery_endpoint: String,
    client_id: String,
    /// Sealed with the instance key; empty when none.
    client_secret: String,
    login_enabled: bool,
    prompt: Option<String>,
    login_label: String,
    authentication_method: Door,
    /// Absent in settings saved before it existed: off.
    trust_email: bool,
    /// Absent in settings saved before it existed: any domain.
    allowed_domains: Vec<String>,
    /// Absent in settings saved before it existed: on (as before).
    create_accounts: bool,
}

impl Default for Stored {
    fn default() -> Self {
        Self {
            discovery_endpoint: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            login_enabled: false,
            prompt: None,
            login_label: String::new(),
            authentication_method: Door::Email,
            trust_email: false,
            allowed_domains: Vec::new(),
            create_accounts: true,
        }
    }
}

/// A sign-in sent to the provider, kept until its callback (sealed in the
/// database, keyed by the hash of its `state`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingSso {
    pub nonce: String,
    pub pkce_verifier: String,
    /// The provider it went to: the callback is checked against the
    /// settings of the moment, so a change in between cannot mix them up.
    pub discovery_endpoint: String,
    pub client_id: String,
    /// Where to go afterwards: a path inside Usher (checked again when
    /// followed).
    pub redirect: String,
}

/// What the server verified in the provider's ID token (and UserInfo).
#[derive(Clone, Debug)]
pub struct SsoIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// The provider's `email_verified` for that email, None when it sent
    /// none.
    pub email_verified: Option<bool>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// How an SSO sign-in ends.
#[derive(Debug)]
pub enum SsoStep {
    Done(Box<SignedIn>),
    /// The person turned on Usher's two-factor authentication: the code
    /// page finishes with this challenge (as after a password).
    NeedsCode(Secret),
}

impl Usher {
    async fn stored_sso(&self) -> Result<Option<Stored>> {
        let Some(text) = self.store.setting(keys::SSO_OIDC).await? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Internal(format!("stored SSO settings: {e}")))
    }

    /// The settings for `/settings/sso` and `GET /rest/sso/oidc/config`,
    /// the secret as the placeholder.
    pub async fn sso_settings(&self, actor: &Actor) -> Result<SsoSettings> {
        self.user_management_enabled()?;
        actor.user.role.require_user_manager()?;
        let stored = self.stored_sso().await?.unwrap_or_default();
        Ok(SsoSettings {
            discovery_endpoint: stored.discovery_endpoint,
            client_id: stored.client_id,
            client_secret: if stored.client_secret.is_empty() {
                String::new()
            } else {
                SECRET_PLACEHOLDER.to_owned()
            },
            login_enabled: stored.login_enabled,
            prompt: stored.prompt,
            login_label: stored.login_label,
            authentication_method: stored.authentication_method,
            trust_email: stored.trust_email,
            allowed_domains: stored.allowed_domains,
            create_accounts: stored.create_accounts,
        })
    }

    /// The settings as sent, checked, with the placeholder replaced by the
    /// stored secret: what the server asks the provider about before
    /// [`Self::save_sso_config`] keeps it.
    pub async fn check_sso_settings(&self, actor: &Actor, input: SsoSettings) -> Result<SsoConfig> {
        self.user_management_enabled()?;
        actor.user.role.require_user_manager()?;
        let endpoint = input.discovery_endpoint.trim().to_owned();
        let parsed = url_like(&endpoint);
        if endpoint.is_empty() {
            return Err(Error::field(
                "discoveryEndpoint",
                "Enter the provider's discovery endpoint (…/.well-known/openid-configuration).",
            ));
        }
        if !parsed {
            return Err(Error::field(
                "discoveryEndpoint",
                "Provided discovery endpoint is not a valid URL",
            ));
        }
        if let Some(rest) = endpoint.strip_prefix("http://")
            && !transport_allowed("http", url_host(rest))
        {
            return Err(Error::field("discoveryEndpoint", PLAIN_HTTP));
        }
        if !endpoint.ends_with("/.well-known/openid-configuration") {
            return Err(Error::field(
                "discoveryEndpoint",
                "The discovery endpoint ends with /.well-known/openid-configuration \
                 (the provider's issuer, then that path).",
            ));
        }
        let client_id = input.client_id.trim().to_owned();
        if client_id.is_empty() {
            return Err(Error::field(
                "clientId",
                "Enter the client ID the provider gave Usher.",
            ));
        }
        if let Some(prompt) = &input.prompt
            && !PROMPTS.contains(&prompt.as_str())
        {
            return Err(Error::field(
                "prompt",
                format!("prompt must be one of {}.", PROMPTS.join(", ")),
            ));
        }
        let label = input.login_label.trim().to_owned();
        if label.chars().count() > 50 {
            return Err(Error::field(
                "loginLabel",
                "The button's label must be at most 50 characters long.",
            ));
        }
        if input.authentication_method == Door::Oidc && !input.login_enabled {
            return Err(Error::field(
                "authenticationMethod",
                "Turn sign-in with the provider on before making it the only way in.",
            ));
        }
        // n8n has one way in: the directory's passwords are passwords too,
        // and "SSO only" would leave LDAP sign-in on for nobody.
        if input.authentication_method == Door::Oidc && self.ldap_login_label().await?.is_some() {
            return Err(Error::field(
                "authenticationMethod",
                "Turn LDAP sign-in off first (Settings → LDAP): with SSO only, nobody but the \
                 owner signs in with a password, the directory's included.",
            ));
        }
        let allowed_domains = allowed_domains(&input.allowed_domains)?;
        let secret = if input.client_secret == SECRET_PLACEHOLDER {
            let stored = self.stored_sso().await?.unwrap_or_default();
            if stored.client_secret.is_empty() {
                String::new()
            } else if stored.discovery_endpoint != endpoint || stored.client_id != client_id {
                // The stored secret goes only where it went before: a new
                // endpoint or client needs it typed again, so that changing
                // the address cannot collect it (as LDAP's bind password).
                return Err(Error::field("clientSecret", SECRET_AGAIN));
            } else {
                self.cipher()?.open(&stored.client_secret)?
            }
        } else {
            input.client_secret.clone()
        };
        Ok(SsoConfig {
            discovery_endpoint: endpoint,
            client_id,
            client_secret: Secret::new(secret),
            login_enabled: input.login_enabled,
            prompt: input.prompt,
            login_label: label,
            authentication_method: input.authentication_method,
            trust_email: input.trust_email,
            allowed_domains,
            create_accounts: input.create_accounts,
        })
    }

    /// Keeps settings [`Self::check_sso_settings`] made and the server
    /// found the provider for; the secret sealed with the instance key.
    pub async fn save_sso_config(
        &self,
        actor: &Actor,
        config: &SsoConfig,
        origin: &Origin,
    ) -> Result<SsoSettings> {
        self.user_management_enabled()?;
        actor.user.role.require_user_manager()?;
        let sealed = if config.client_secret.expose().is_empty() {
            String::new()
        } else {
            self.cipher()?.seal(config.client_secret.expose())?
        };
        let stored = Stored {
            discovery_endpoint: config.discovery_endpoint.clone(),
            client_id: config.client_id.clone(),
            client_secret: sealed,
            login_enabled: config.login_enabled,
            prompt: config.prompt.clone(),
            login_label: config.login_label.clone(),
            authentication_method: config.authentication_method,
            trust_email: config.trust_email,
            allowed_domains: config.allowed_domains.clone(),
            create_accounts: config.create_accounts,
        };
        let text = serde_json::to_string(&stored)
            .map_err(|e| Error::Internal(format!("SSO settings: {e}")))?;
        self.store.put_setting(keys::SSO_OIDC, &text).await?;
        let detail = format!(
            "provider {}, client {}, sign-in {}, {}{}{}",
            config.discovery_endpoint,
            config.client_id,
            if config.login_enabled { "on" } else { "off" },
            match config.authentication_method {
                Door::Email => "passwords for everyone",
                Door::Oidc => "SSO only (the owner keeps the password)",
            },
            if config.trust_email {
                ", the provider's email addresses trusted"
            } else {
                ""
            },
            match (config.create_accounts, config.allowed_domains.is_empty()) {
                (false, _) => ", no accounts made at first sign-in".to_owned(),
                (true, true) => ", accounts made at first sign-in for any domain".to_owned(),
                (true, false) => format!(
                    ", accounts made at first sign-in for {}",
                    config.allowed_domains.join(", ")
                ),
            }
        );
        self.audit(Some(&actor.user), "settings.sso", None, detail, origin)
            .await;
        self.sso_settings(actor).await
    }

    /// The provider's settings with the secret opened, when sign-in with it
    /// is on; None otherwise.
    pub async fn sso_login_config(&self) -> Result<Option<SsoConfig>> {
        if self.config.user_management_disabled {
            return Ok(None);
        }
        let Some(stored) = self.stored_sso().await? else {
            return Ok(None);
        };
        if !stored.login_enabled || stored.discovery_endpoint.is_empty() {
            return Ok(None);
        }
        let secret = if stored.client_secret.is_empty() {
            String::new()
        } else {
            self.cipher()?.open(&stored.client_secret)?
        };
        Ok(Some(SsoConfig {
            discovery_endpoint: stored.discovery_endpoint,
            client_id: stored.client_id,
            client_secret: Secret::new(secret),
            login_enabled: stored.login_enabled,
            prompt: stored.prompt,
            login_label: stored.login_label,
            authentication_method: stored.authentication_method,
            trust_email: stored.trust_email,
            allowed_domains: stored.allowed_domains,
            create_accounts: stored.create_accounts,
        }))
    }

    /// The sign-in button's text, when the button is shown.
    pub async fn sso_button(&self) -> Result<Option<String>> {
        let Some(stored) = self.stored_sso().await? else {
            return Ok(None);
        };
        if !stored.login_enabled || self.config.user_management_disabled {
            return Ok(None);
        }
        Ok(Some(button_label(&stored.login_label)))
    }

    /// Whether only the owner may use a password (n8n's "SSO only").
    pub async fn sso_only(&self) -> Result<bool> {
        Ok(self.stored_sso().await?.is_some_and(|stored| {
            stored.login_enabled && stored.authentication_method == Door::Oidc
        }))
    }

    /// Refuses a password for anyone but the owner when SSO is the only way
    /// in: `user` is the account the password was right for, if any (a
    /// wrong password gets the same answer, so the refusal tells nothing).
    pub(super) async fn refuse_password_door(
        &self,
        user: Option<&User>,
        login: &str,
        origin: &Origin,
    ) -> Result<()> {
        if user.is_some_and(|u| u.role == Role::Owner) || !self.sso_only().await? {
            return Ok(());
        }
        self.audit(
            None,
            "login.failed",
            user,
            format!("email: {login}; password sign-in refused: SSO only"),
            origin,
        )
        .await;
        Err(Error::Unauthorized(USE_SSO.into()))
    }

    /// Counts a start of a sign-in with the provider: each stores a row and
    /// asks the provider twice, so starts are limited per address like
    /// sign-ins (30 a minute), before anything else is done.
    pub async fn count_sso_start(&self, origin: &Origin) -> Result<()> {
        self.throttle(&format!("sso:ip:{}", origin.ip), SSO_STARTS_PER_IP)
            .await
    }

    /// Remembers a sign-in sent to the provider until its callback.
    pub async fn remember_sso_login(&self, state: &str, pending: &PendingSso) -> Result<()> {
        let text = serde_json::to_string(pending)
            .map_err(|e| Error::Internal(format!("SSO sign-in: {e}")))?;
        let sealed = self.cipher()?.seal(&text)?;
        self.store
            .insert_sso_login(&token::hash(state), &sealed, self.now() + LOGIN_LIFETIME)
            .await?;
        Ok(())
    }

    /// Takes the sign-in the provider's callback names by `state`: once
    /// only, on any instance. Unknown, used or lapsed: refused.
    pub async fn take_sso_login(&self, state: &str) -> Result<PendingSso> {
        let refused = || {
            Error::invalid(
                "This sign-in is not known here: it was finished or abandoned already, took \
                 longer than 15 minutes, or was started in another browser. Start again from \
                 the sign-in page.",
            )
        };
        if state.is_empty() || state.len() > 256 {
            return Err(refused());
        }
        let Some((sealed, expires_at)) = self.store.take_sso_login(&token::hash(state)).await?
        else {
            return Err(refused());
        };
        if expires_at <= self.now() {
            return Err(refused());
        }
        let text = self.cipher()?.open(&sealed)?;
        serde_json::from_str(&text).map_err(|e| Error::Internal(format!("SSO sign-in: {e}")))
    }

    /// Records a sign-in with the provider that failed before anyone was
    /// known (the provider's error, a bad state or token).
    pub async fn sso_failed(&self, reason: &str, origin: &Origin) {
        self.audit(
            None,
            "login.failed",
            None,
            format!("single sign-on: {reason}"),
            origin,
        )
        .await;
    }

    /// Signs in the person the provider vouched for: by (issuer, sub), else
    /// linked by a verified email, else a new member.
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn sso_sign_in(&self, identity: &SsoIdentity, origin: &Origin) -> Result<SsoStep> {
        self.user_management_enabled()?;
        // What the provider names people by is kept as text: nothing a
        // database cannot store (PostgreSQL refuses NUL) or a page cannot
        // show, and of a sane length.
        let fit = |value: &str| {
            !value.is_empty() && value.len() <= 255 && !value.chars().any(char::is_control)
        };
        if !fit(&identity.issuer) || !fit(&identity.subject) {
            return Err(Error::Forbidden(
                "Your provider named you in a way Usher cannot keep (an empty, overlong or \
                 unprintable subject). Ask an admin to check the provider's settings."
                    .into(),
            ));
        }
        let user = match self
            .store
            .sso_user(&identity.issuer, &identity.subject)
            .await?
        {
            Some(user) => user,
            None => self.first_sso_sign_in(identity, origin).await?,
        };
        if user.is_pending() {
            let reason = "You have an invitation to Usher waiting: accept it from the email \
                          first, then sign in with your provider.";
            self.sso_failed(
                &format!("{}: invitation not accepted", identity.subject),
                origin,
            )
            .await;
            return Err(Error::Forbidden(reason.into()));
        }
        if user.disabled {
            self.sso_failed(&format!("{}: account disabled", identity.subject), origin)
                .await;
            return Err(Error::Forbidden(ACCOUNT_DISABLED.into()));
        }
        let detail = format!("single sign-on: {}", identity.issuer);
        if user.mfa_enabled {
            let challenge = token::generate();
            self.store
                .insert_challenge(
                    &challenge.hash,
                    user.id,
                    self.now() + super::mfa::CHALLENGE_LIFETIME,
                )
                .await?;
            self.audit(
                Some(&user),
                "login.sso_code_asked",
                Some(&user),
                detail,
                origin,
            )
            .await;
            return Ok(SsoStep::NeedsCode(challenge.secret));
        }
        self.audit(Some(&user), "login.succeeded", Some(&user), detail, origin)
            .await;
        Ok(SsoStep::Done(Box::new(
            self.start_session(user, origin).await?,
        )))
    }

    async fn first_sso_sign_in(&self, identity: &SsoIdentity, origin: &Origin) -> Result<User> {
        let refuse = |reason: String| Error::Forbidden(reason);
        let Some(email) = identity.email.as_deref().filter(|e| !e.trim().is_empty()) else {
            self.sso_failed(&format!("{}: no email", identity.subject), origin)
                .await;
            return Err(refuse(
                "Your provider did not tell Usher your email address, which Usher needs the \
                 first time. Ask its administrator to release the `email` claim (scope \
                 `email`) to Usher."
                    .into(),
            ));
        };
        let email = Email::parse(email)?;
        let settings = self.stored_sso().await?.unwrap_or_default();
        // Unverified, the address proves nothing: it neither finds an
        // account nor makes one (a later directory sign-in with that email
        // would otherwise land in an account a stranger made). The answer
        // is the same whether an account has the address. Without the
        // claim, "trust email" decides; a provider's explicit "not
        // verified" is never overruled.
        let verified = identity.email_verified.unwrap_or(settings.trust_email);
        if !verified {
            // The log tells the admin which case it was: a provider that
            // sends no `email_verified` at all is what "trust email" is for.
            let why = if identity.email_verified.is_some() {
                "email not verified by the provider"
            } else {
                "email not verified by the provider (it sent no email_verified; see \"Trust \
                 the provider's email addresses\" in the single sign-on settings)"
            };
            self.sso_failed(&format!("{email}: {why}"), origin).await;
            return Err(refuse(format!(
                "Your provider does not say that this email address ({email}) is verified, so \
                 Usher will not use it for an account. Ask the provider's administrator to \
                 verify it, or sign in with your Usher password if you have one."
            )));
        }
        if let Some(existing) = self.store.user_by_email(&email).await? {
            return self.link_by_email(identity, existing, origin).await;
        }
        // Only a new account is limited from here on: whoever has one
        // (linked, or a member with this email) got in above.
        if !settings.create_accounts {
            self.sso_failed(
                &format!("{email}: no Usher account, and accounts are not made at first sign-in"),
                origin,
            )
            .await;
            return Err(refuse(NO_NEW_ACCOUNTS.into()));
        }
        if !domain_allowed(&email, &settings.allowed_domains) {
            self.sso_failed(
                &format!(
                    "{email}: no Usher account, and its domain is not one of the allowed \
                     domains ({})",
                    settings.allowed_domains.join(", ")
                ),
                origin,
            )
            .await;
            return Err(refuse(DOMAIN_NOT_ALLOWED.into()));
        }
        self.refuse_look_alike(&email, None).await?;
        let now = self.now();
        // No one knows this password: the person signs in with the
        // provider (or sets a password through "forgot password", where
        // that is allowed).
        let unusable = self.hasher.hash(&token::generate().secret).await?;
        let user = User {
            id: UserId::new(),
            email: Some(email.clone()),
            // The provider verified it (checked above).
            email_verified: true,
            first_name: fitted(identity.given_name.as_deref(), true),
            last_name: fitted(identity.family_name.as_deref(), false),
            role: Role::Member,
            password_hash: Some(unusable),
            password_change_required: false,
            mfa_enabled: false,
            invited_by: None,
            invited_at: None,
            created_at: now,
            updated_at: now,
            last_active_at: None,
            ldap_id: None,
            disabled: false,
        };
        match self
            .store
            .insert_sso_user(&user, &identity.issuer, &identity.subject)
            .await
        {
            Ok(()) => {}
            // Two first callbacks at once: the other one made the user.
            Err(StoreError::Conflict(_)) => {
                return self
                    .store
                    .sso_user(&identity.issuer, &identity.subject)
                    .await?
                    .ok_or_else(|| Error::Conflict(format!("{email} is taken already.")));
            }
            Err(other) => return Err(other.into()),
        }
        self.audit(
            None,
            "user.created",
            Some(&user),
            format!("single sign-on: {} {}", identity.issuer, identity.subject),
            origin,
        )
        .await;
        Ok(user)
    }

    /// Links the provider's person to the account with their verified
    /// email, an enabled member's only, and only while the account has no
    /// other identity at this provider. The owner and admins are refused (an
    /// admin who may change these settings could otherwise point them at a
    /// provider of their own that asserts the owner's or another admin's
    /// address). An account linked to another `sub` of the same issuer is
    /// refused too: providers hand a departed person's address to someone
    /// new, who must not land in the old account.
    async fn link_by_email(
        &self,
        identity: &SsoIdentity,
        existing: User,
        origin: &Origin,
    ) -> Result<User> {
        if !existing.email_verified {
            self.audit(
                None,
                "login.failed",
                Some(&existing),
                format!(
                    "single sign-on: {} {} asserts an email the account has not confirmed, not \
                     linked",
                    identity.issuer, identity.subject
                ),
                origin,
            )
            .await;
            return Err(Error::Forbidden(UNCONFIRMED_NOT_LINKED.into()));
        }
        let linked = existing.role == Role::Member
            && match self
                .store
                .link_sso(&identity.issuer, &identity.subject, existing.id, self.now())
                .await
            {
                Ok(linked) => linked,
                // Another callback linked them a moment ago: the same person.
                Err(StoreError::Conflict(_)) => true,
                Err(other) => return Err(other.into()),
            };
        if linked {
            self.audit(
                Some(&existing),
                "sso.linked",
                Some(&existing),
                format!("{} {}", identity.issuer, identity.subject),
                origin,
            )
            .await;
            return Ok(existing);
        }
        // The statement decided on the row as it was then: the reason is
        // read from it again, so the answer matches the decision.
        let now = self
            .store
            .user_by_id(existing.id)
            .await?
            .unwrap_or(existing);
        let (why, message) = if now.role != Role::Member {
            let message = if now.role != Role::Owner && self.sso_only().await? {
                ADMIN_NOT_LINKED_SSO_ONLY
            } else {
                ADMIN_NOT_LINKED
            };
            (
                "asserts the email of an account with administrator rights, not linked",
                message,
            )
        } else if now.disabled {
            (
                "asserts the email of a disabled account, not linked",
                ACCOUNT_DISABLED,
            )
        } else {
            (
                "asserts the email of an account linked to another identity at this provider, \
                 not linked",
                LINKED_ELSEWHERE,
            )
        };
        self.audit(
            None,
            "login.failed",
            Some(&now),
            format!(
                "single sign-on: {} {} {why}",
                identity.issuer, identity.subject
            ),
            origin,
        )
        .await;
        Err(Error::Forbidden(message.into()))
    }
}

/// The allowed domains as typed (in a list, or one text with commas),
/// checked and in one form: lower case, without a leading `@`, each once.
fn allowed_domains(input: &[String]) -> Result<Vec<String>> {
    let mut domains: Vec<String> = Vec::new();
    for typed in input.iter().flat_map(|item| item.split(',')) {
        let bare = typed.trim().trim_start_matches('@');
        if bare.is_empty() {
            continue;
        }
        // Checked and kept as an address's domain is (IDNA: `bücher.example`
        // as `xn--bcher-kva.example`), so that the two compare.
        let domain = Email::parse(&format!("a@{bare}"))
            .map(|email| email.domain().to_owned())
            .map_err(|_| {
                Error::field(
                    "allowedDomains",
                    format!(
                        "“{}” is not an email domain: write domains such as example.com, \
                         separated by commas.",
                        typed.trim()
                    ),
                )
            })?;
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    if domains.len() > MAX_DOMAINS {
        return Err(Error::field(
            "allowedDomains",
            format!("Allow at most {MAX_DOMAINS} domains."),
        ));
    }
    Ok(domains)
}

/// Whether a first sign-in with `email` may make an account: any address
/// when no domain is set, else one whose domain is one of them exactly (a
/// subdomain is a domain of its own).
fn domain_allowed(email: &Email, allowed: &[String]) -> bool {
    allowed.is_empty() || allowed.iter().any(|domain| domain == email.domain())
}

/// "Sign in with <label>", the label defaulting to "single sign-on".
pub fn button_label(label: &str) -> String {
    let label = label.trim();
    if label.is_empty() {
        "Sign in with single sign-on".to_owned()
    } else {
        format!("Sign in with {label}")
    }
}

/// A name from the provider, cut to what Usher keeps (a provider's long
/// name must not stop the sign-in).
fn fitted(name: Option<&str>, first: bool) -> String {
    let cut: String = name
        .unwrap_or_default()
        .trim()
        .chars()
        .take(Name::MAX)
        .collect();
    let checked = if first {
        Name::first(&cut)
    } else {
        Name::last(&cut)
    };
    checked.map(|n| n.as_str().to_owned()).unwrap_or_default()
}

/// Whether Usher may send the client secret and codes to a URL with this
/// scheme and host (as a URL parser gives them, an IPv6 address in
/// brackets): https, or plain http to a loopback address written as one, a
/// provider on this machine. A name such as `localhost` does not count: its
/// answer comes from the resolver.
pub fn transport_allowed(scheme: &str, host: &str) -> bool {
    if scheme.eq_ignore_ascii_case("https") {
        return true;
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return false;
    }
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
    }
}

/// The host of what follows `scheme://`, read strictly: the authority ends
/// at the first `/`, `\`, `?` or `#` (a URL parser treats `\` as `/`), and
/// one with user info gives no host at all. The server checks again, with
/// a URL parser, each address it calls.
fn url_host(rest: &str) -> &str {
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return "";
    }
    if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    }
}

/// An absolute http(s) URL with a host, as far as can be told without a
/// URL crate in the domain (the server parses it again before using it).
fn url_like(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or_default();
        !host.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_the_discovery_endpoint_without_the_well_known_path() {
        let config = |endpoint: &str| SsoConfig {
            discovery_endpoint: endpoint.to_owned(),
            client_id: "c".into(),
            client_secret: Secret::new(""),
            login_enabled: true,
            prompt: None,
            login_label: String::new(),
            authentication_method: Door::Email,
            trust_email: false,
            allowed_domains: Vec::new(),
            create_accounts: true,
        };
        assert_eq!(
            config("https://id.example.com/realms/x/.well-known/openid-configuration")
                .expected_issuer(),
            "https://id.example.com/realms/x"
        );
        assert_eq!(
            config("https://a.example.com/application/o/usher//.well-known/openid-configuration")
                .expected_issuer(),
            "https://a.example.com/application/o/usher"
        );
    }

    #[test]
    fn names_from_the_provider_are_cut_to_fit() {
        assert_eq!(fitted(Some(&"x".repeat(40)), true).len(), Name::MAX);
        assert_eq!(fitted(None, false), "");
        assert_eq!(fitted(Some("  Ada "), true), "Ada");
    }

    #[test]
    fn plain_http_goes_only_to_a_loopback_address() {
        let allowed = |url: &str| {
            let (scheme, rest) = url.split_once("://").unwrap_or_default();
            transport_allowed(scheme, url_host(rest))
        };
        for ok in [
            "https://id.example.com/.well-known/openid-configuration",
            "http://127.0.0.1:8080/.well-known/openid-configuration",
            "http://127.8.9.10/x",
            "http://[::1]:9/x",
        ] {
            assert!(allowed(ok), "{ok}");
        }
        for refused in [
            "http://id.example.com/.well-known/openid-configuration",
            "http://localhost:8080/x",
            "http://127.0.0.1.nip.io/x",
            "http://127.0.0.1@id.example.com/x",
            "http://id.example.com\\@127.0.0.1/x",
            "http://id.example.com#@127.0.0.1/x",
            "http://[::2]/x",
            "http://10.0.0.1/x",
            "ftp://127.0.0.1/x",
        ] {
            assert!(!allowed(refused), "{refused}");
        }
    }

    #[test]
    fn allowed_domains_compare_as_addresses_keep_them() {
        let read = allowed_domains(&["Bücher.Example".to_owned()]).ok();
        assert_eq!(read, Some(vec!["xn--bcher-kva.example".to_owned()]));
        let email = Email::parse("ann@bücher.example").unwrap_or_else(|e| panic!("{e}"));
        assert!(domain_allowed(&email, read.as_deref().unwrap_or_default()));
    }

    #[test]
    fn allowed_domains_are_read_from_a_list_or_commas_and_checked() {
        let read = |items: &[&str]| {
            allowed_domains(&items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            read(&[" Example.com, @corp.example.org ,,example.com"]).ok(),
            Some(vec![
                "example.com".to_owned(),
                "corp.example.org".to_owned()
            ])
        );
        assert_eq!(
            read(&["a.example", "b.example"]).ok().map(|d| d.len()),
            Some(2)
        );
        assert_eq!(read(&[" , "]).ok(), Some(Vec::new()));
        for bad in [
            "example",
            "ann@example.com x",
            "exa mple.com",
            "-a.example",
            "a..example",
        ] {
            assert!(read(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_account_needs_an_allowed_domain_when_some_are_set() {
        let email = |e: &str| Email::parse(e).unwrap_or_else(|_| panic!("{e}"));
        let allowed = vec!["example.com".to_owned()];
        assert!(domain_allowed(&email("ann@example.com"), &allowed));
        assert!(domain_allowed(&email("Ann@EXAMPLE.com"), &allowed));
        assert!(!domain_allowed(&email("ann@gmail.com"), &allowed));
        assert!(!domain_allowed(&email("ann@sub.example.com"), &allowed));
        assert!(!domain_allowed(
            &email("ann@example.com.evil.org"),
            &allowed
        ));
        assert!(domain_allowed(&email("ann@gmail.com"), &[]));
    }

    #[test]
    fn only_http_urls_with_a_host_pass() {
        assert!(url_like(
            "https://id.example.com/.well-known/openid-configuration"
        ));
        assert!(url_like("http://127.0.0.1:9/x"));
        assert!(!url_like("ftp://x/y"));
        assert!(!url_like("https:///x"));
        assert!(!url_like("https://a b/"));
    }
}
