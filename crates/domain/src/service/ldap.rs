//! Signing in with the company directory (LDAP) and synchronising people
//! from it, as n8n does, with n8n's settings (see [`crate::ldap`]).
//!
//! - The settings are one JSON row in the settings table; the binding
//!   admin's password in it is sealed with the instance key, and no answer
//!   ever carries it (a placeholder stands in; sent back, it keeps the
//!   stored one).
//! - Sign-in: the directory is searched as the binding admin for the one
//!   person whose login ID or email was typed (within the user filter), and
//!   the password is checked by binding as them. An empty password is never
//!   sent: it would be an unauthenticated bind, which many directories
//!   answer with success. The first sign-in makes a member (or links the
//!   *member* who has that email: never the owner or an admin, who keep
//!   their Usher password); later ones bring names and email up to date.
//!   Every attempt is counted once more against the entry found, so one
//!   account's attempts cannot be spread over its login ID and addresses.
//! - Synchronisation (by hand, dry or live, and every
//!   `synchronizationInterval` minutes) makes users of new entries, updates
//!   the users linked to changed ones and disables those whose entry is
//!   gone, which deletes their sessions, API keys and app grants in the same
//!   transaction. It never links an existing account: an entry whose email
//!   an unlinked account has is reported as skipped. A lease row lets one
//!   instance at a time run it.
//! - A new email from the directory passes the same checks as any other
//!   change of an email (unique, and not a look-alike of another user's).

use std::collections::HashSet;

use crate::{
    Error, Result,
    clock::{MINUTE, Millis},
    ldap::{Connection, DirectoryError, Entry, LdapConfig, PASSWORD_PLACEHOLDER},
    model::{DIRECTORY_PASSWORD, Email, Origin, Role, User, UserId},
    secret::Secret,
    store::{DirectoryProfile, StoreError, SyncRun, keys},
};

use super::{
    Usher,
    auth::{Actor, LOGIN_PER_EMAIL, WRONG_CREDENTIALS},
};

pub const PASSWORD_IN_DIRECTORY: &str = "Your password is kept by your company directory (LDAP): \
     change it there (your IT team can tell you how), not in Usher.";
pub const EMAIL_IN_DIRECTORY: &str = "Your email address comes from your company directory (LDAP): \
     it is changed there, and Usher takes the new one at your next sign-in.";
pub const RESET_IN_DIRECTORY: &str = "This person signs in with the company directory (LDAP): \
     their password is reset in the directory, not in Usher.";
const DIRECTORY_DOWN: &str = "Usher cannot check your password with the company directory right now. \
     Try again in a moment; if it keeps failing, tell an administrator.";
const SEVERAL_ENTRIES: &str = "More than one directory entry has this login ID or email, so Usher \
     cannot tell who you are. Ask an administrator to make them unique.";
const SYNC_RUNNING: &str = "A synchronisation with the directory is running already (on this or \
     another Usher instance). Try again when it has finished.";
const SYNC_LEASE: &str = "ldap.sync";
/// What an administrator is told who signs in with a directory entry that
/// has their email: their account is never taken over by the directory.
pub const ADMIN_NOT_LINKED: &str = "An administrator account with this email exists in Usher; \
     it is not linked to the directory automatically. Sign in with your Usher password.";

/// A synchronisation that changes nothing (`dry`) or applies what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    Dry,
    Live,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dry => "dry",
            Self::Live => "live",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "dry" => Ok(Self::Dry),
            "live" => Ok(Self::Live),
            _ => Err(Error::field("type", "type must be \"dry\" or \"live\".")),
        }
    }
}

/// What a directory entry means for Usher's users.
enum Plan {
    Create(DirectoryProfile),
    /// A member with this email who is not linked yet (at sign-in only), or
    /// a linked user whose names or email changed, or who was disabled.
    Update(User, DirectoryProfile),
    Keep(User),
}

/// Where a directory entry is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Door {
    /// The person proved the directory password: an unlinked *member* with
    /// the entry's email may be linked.
    SignIn,
    /// A synchronisation: nobody proved anything, so nobody is linked.
    Sync,
}

/// Why an entry is not made, linked or updated: `reason` for the audit log
/// and the synchronisation's report, `message` for the person signing in.
struct Refusal {
    reason: String,
    message: String,
}

impl Refusal {
    fn because(reason: String) -> Self {
        Self {
            message: format!(
                "Your directory account cannot be used in Usher: {reason} Ask an administrator."
            ),
            reason,
        }
    }
}

impl Usher {
    async fn stored_ldap(&self) -> Result<LdapConfig> {
        match self.store.setting(keys::LDAP_CONFIG).await? {
            Some(json) if !json.is_empty() => serde_json::from_str(&json)
                .map_err(|e| Error::Internal(format!("stored LDAP settings: {e}"))),
            _ => Ok(LdapConfig::default()),
        }
    }

    /// The settings with the binding password opened, for the adapter.
    fn connection(&self, config: LdapConfig) -> Result<Connection> {
        let admin_password = if config.binding_admin_password.is_empty() {
            Secret::default()
        } else {
            Secret::new(self.cipher()?.open(&config.binding_admin_password)?)
        };
        Ok(Connection {
            config,
            admin_password,
        })
    }

    /// `GET /rest/ldap/config`: the settings, the password as a placeholder
    /// when one is stored. Owner and admins.
    pub async fn ldap_config(&self, actor: &Actor) -> Result<LdapConfig> {
        actor.user.role.require_user_manager()?;
        Ok(redacted(self.stored_ldap().await?))
    }

    /// `PUT /rest/ldap/config`: checks and stores the settings. A password
    /// that is the placeholder keeps the stored one.
    pub async fn save_ldap_config(
        &self,
        actor: &Actor,
        input: LdapConfig,
        origin: &Origin,
    ) -> Result<LdapConfig> {
        actor.user.role.require_user_manager()?;
        let stored = self.stored_ldap().await?;
        let mut config = input.trimmed();
        config.check(&|filter| self.directory.filter_ok(filter))?;
        // The saved password goes only where it went before: sending it to
        // another server or account (or accepting any certificate) needs it
        // typed again, so that changing the address cannot collect it.
        let moved = config.connection_url != stored.connection_url
            || config.connection_port != stored.connection_port
            || config.connection_security != stored.connection_security
            || (config.allow_unauthorized_certs && !stored.allow_unauthorized_certs)
            || config.binding_admin_dn != stored.binding_admin_dn;
        if config.binding_admin_password == PASSWORD_PLACEHOLDER
            && moved
            && !stored.binding_admin_password.is_empty()
        {
            return Err(Error::field(
                "bindingAdminPassword",
                "Enter the binding admin password again: the server, the security or the \
                 account it is sent to changed, and the saved one goes only where it went before.",
            ));
        }
        config.binding_admin_password = if config.binding_admin_password == PASSWORD_PLACEHOLDER {
            stored.binding_admin_password.clone()
        } else if config.binding_admin_password.is_empty() {
            String::new()
        } else {
            self.cipher()?.seal(&config.binding_admin_password)?
        };
        let in_use = config.login_enabled || config.synchronization_enabled;
        if in_use && !config.binding_admin_dn.is_empty() && config.binding_admin_password.is_empty()
        {
            return Err(Error::field(
                "bindingAdminPassword",
                "bindingAdminPassword is required with bindingAdminDn: a bind without a password \
                 is unauthenticated, and Usher never makes one.",
            ));
        }
        let json = serde_json::to_string(&config)
            .map_err(|e| Error::Internal(format!("LDAP settings: {e}")))?;
        self.store.put_setting(keys::LDAP_CONFIG, &json).await?;
        if in_use {
            for warning in config.warnings() {
                tracing::warn!("LDAP settings saved: {warning}");
            }
        }
        let on_off = |on: bool| if on { "on" } else { "off" };
        self.audit(
            Some(&actor.user),
            "ldap.settings_saved",
            None,
            format!(
                "sign-in {}, synchronisation {}, server {}:{}",
                on_off(config.login_enabled),
                on_off(config.synchronization_enabled),
                config.connection_url,
                config.connection_port
            ),
            origin,
        )
        .await;
        Ok(redacted(config))
    }

    /// `POST /rest/ldap/test-connection`: connects with the saved settings,
    /// binds as the binding admin and looks at the base DN; the error says
    /// which step failed.
    pub async fn test_ldap_connection(&self, actor: &Actor) -> Result<()> {
        actor.user.role.require_user_manager()?;
        let connection = self.saved_connection().await?;
        self.directory
            .test(&connection)
            .await
            .map_err(|e| Error::invalid(e.to_string()))
    }

    /// The saved settings, ready to connect, or what is missing.
    async fn saved_connection(&self) -> Result<Connection> {
        let config = self.stored_ldap().await?;
        if config.connection_url.is_empty() || config.base_dn.is_empty() {
            return Err(Error::invalid(
                "Save the directory's settings first: connectionUrl and baseDn are empty.",
            ));
        }
        self.connection(config)
    }

    /// The sign-in form's label for its first field when LDAP sign-in is
    /// on (n8n's `loginLabel`), else None.
    pub async fn ldap_login_label(&self) -> Result<Option<String>> {
        let config = self.stored_ldap().await?;
        Ok(config.login_enabled.then(|| {
            if config.login_label.is_empty() {
                "Email or login ID".to_owned()
            } else {
                config.login_label
            }
        }))
    }

    /// n8n's public `sso.ldap` settings (`GET /rest/settings`): whether
    /// LDAP sign-in is on, and the sign-in field's label as saved (empty:
    /// the front-end's own).
    pub async fn ldap_public_settings(&self) -> Result<(bool, String)> {
        let config = self.stored_ldap().await?;
        Ok((config.login_enabled, config.login_label))
    }

    /// The directory to check sign-ins with, when LDAP sign-in is on.
    pub(super) async fn ldap_sign_in(&self) -> Result<Option<Connection>> {
        let config = self.stored_ldap().await?;
        if !config.login_enabled {
            return Ok(None);
        }
        self.connection(config).map(Some)
    }

    /// Checks `login` and `password` with the directory and gives the user
    /// (made, linked or brought up to date from the entry). The caller has
    /// counted the attempt in the sign-in limits. An owner or admin who is
    /// not linked to the directory signs in with the Usher password here.
    pub(super) async fn directory_sign_in(
        &self,
        connection: &Connection,
        login: &str,
        password: &Secret,
        login_key: &str,
        origin: &Origin,
    ) -> Result<User> {
        let login = login.trim();
        if password.is_empty() || login.is_empty() {
            self.sign_in_failed(login_key, "empty login or password", origin)
                .await;
            return Err(Error::Unauthorized(WRONG_CREDENTIALS.into()));
        }
        if let Some(user) = self
            .local_manager_sign_in(login, password, login_key, origin)
            .await?
        {
            return Ok(user);
        }
        let entries = match self.directory.find_login(connection, login).await {
            Ok(entries) => entries,
            Err(error) => return Err(self.directory_down(login_key, error, origin).await),
        };
        let entry = match entries.as_slice() {
            [entry] => entry,
            [] => {
                // A bind as nobody, so that an unknown login ID costs the
                // same round trips as a known one with a wrong password.
                let decoy = format!("cn={},{}", uuid::Uuid::now_v7(), connection.config.base_dn);
                let _ = self
                    .directory
                    .check_password(connection, &decoy, password)
                    .await;
                self.sign_in_failed(login_key, "not in the directory", origin)
                    .await;
                return Err(Error::Unauthorized(WRONG_CREDENTIALS.into()));
            }
            _ => {
                self.sign_in_failed(login_key, "several directory entries match", origin)
                    .await;
                return Err(Error::Unauthorized(SEVERAL_ENTRIES.into()));
            }
        };
        self.count_against_entry(entry, login_key, origin).await?;
        let right = match self
            .directory
            .check_password(connection, &entry.dn, password)
            .await
        {
            Ok(right) => right,
            Err(error) => return Err(self.directory_down(login_key, error, origin).await),
        };
        if !right {
            self.sign_in_failed(login_key, "wrong directory password", origin)
                .await;
            return Err(Error::Unauthorized(WRONG_CREDENTIALS.into()));
        }
        let plan = match self
            .plan_entry(entry, &connection.config, Door::SignIn)
            .await?
        {
            Ok(plan) => plan,
            Err(refusal) => {
                self.sign_in_failed(login_key, &refusal.reason, origin)
                    .await;
                return Err(Error::forbidden(refusal.message));
            }
        };
        match self.carry_out(plan, origin).await? {
            Ok(user) => Ok(user),
            Err(reason) => {
                self.sign_in_failed(login_key, &reason, origin).await;
                Err(Error::forbidden(Refusal::because(reason).message))
            }
        }
    }

    /// An admin (or the owner) whose account is not linked to the directory
    /// keeps the Usher password while LDAP sign-in is on, as the owner
    /// does: the user when `login` is their email and `password` is theirs.
    /// Every login that is an email costs one hash verification, so the
    /// timing does not tell whether an administrator has that address.
    async fn local_manager_sign_in(
        &self,
        login: &str,
        password: &Secret,
        login_key: &str,
        origin: &Origin,
    ) -> Result<Option<User>> {
        let Ok(email) = Email::parse(login) else {
            return Ok(None);
        };
        let manager = self
            .store
            .user_by_email(&email)
            .await?
            .filter(keeps_local_password);
        let hash = manager.as_ref().and_then(|u| u.password_hash.as_deref());
        let verified = self.hasher.verify(password, hash).await?;
        let Some(manager) = manager.filter(|_| verified.matches) else {
            return Ok(None);
        };
        // SSO only: a password is the owner's door alone.
        self.refuse_password_door(Some(&manager), login_key, origin)
            .await?;
        if verified.needs_rehash {
            let new_hash = self.hasher.hash(password).await?;
            self.store.rehash_password(manager.id, &new_hash).await?;
        }
        Ok(Some(manager))
    }

    /// Counts the attempt once more, against the entry found: a person's
    /// login ID and each of their addresses are counted apart before the
    /// search, so without this one account could be tried five times a
    /// minute under each name. A browser that signed in as the entry's user
    /// before was counted against its device cookie, and strangers' attempts
    /// do not lock it out here either.
    async fn count_against_entry(
        &self,
        entry: &Entry,
        login_key: &str,
        origin: &Origin,
    ) -> Result<()> {
        let id = if entry.ldap_id.is_empty() {
            &entry.dn
        } else {
            &entry.ldap_id
        };
        if !entry.ldap_id.is_empty()
            && let Some(user) = self.store.user_by_ldap_id(&entry.ldap_id).await?
            && self
                .login_key(login_key, Some(&user), origin)
                .starts_with("login:device:")
        {
            return Ok(());
        }
        self.throttle(&format!("login:ldap:{id}"), LOGIN_PER_EMAIL)
            .await
    }

    async fn sign_in_failed(&self, login_key: &str, why: &str, origin: &Origin) {
        self.audit(
            None,
            "login.failed",
            None,
            format!("login: {login_key} (LDAP: {why})"),
            origin,
        )
        .await;
    }

    /// A directory that did not answer at sign-in: the detail for the log
    /// and the audit, a plain message for the person.
    async fn directory_down(
        &self,
        login_key: &str,
        error: DirectoryError,
        origin: &Origin,
    ) -> Error {
        tracing::warn!(%error, "LDAP sign-in could not reach the directory");
        self.sign_in_failed(login_key, &error.to_string(), origin)
            .await;
        Error::Unavailable(DIRECTORY_DOWN.into())
    }

    /// What `entry` means for Usher's users; Err when it cannot be a user
    /// (no id, no usable email, an address that is taken or looks like a
    /// taken one), or, found at `door`, may not be linked to the account
    /// with its email.
    async fn plan_entry(
        &self,
        entry: &Entry,
        config: &LdapConfig,
        door: Door,
    ) -> Result<std::result::Result<Plan, Refusal>> {
        let profile = match profile(entry, config) {
            Ok(profile) => profile,
            Err(reason) => return Ok(Err(Refusal::because(reason))),
        };
        if let Some(user) = self.store.user_by_ldap_id(&profile.ldap_id).await? {
            let new_email = user.email.as_ref() != Some(&profile.email);
            let same = !user.disabled
                && !new_email
                && user.first_name == profile.first_name
                && user.last_name == profile.last_name;
            if same {
                return Ok(Ok(Plan::Keep(user)));
            }
            if new_email && let Some(reason) = self.new_email_refused(&user, &profile.email).await?
            {
                return Ok(Err(Refusal::because(reason)));
            }
            return Ok(Ok(Plan::Update(user, profile)));
        }
        let Some(user) = self.store.user_by_email(&profile.email).await? else {
            if let Some(reason) = self.look_alike(&profile.email, None).await? {
                return Ok(Err(Refusal::because(reason)));
            }
            return Ok(Ok(Plan::Create(profile)));
        };
        let email = &profile.email;
        if user.role == Role::Owner {
            return Ok(Err(Refusal::because(format!(
                "{email} is the owner's address, and the owner signs in with the Usher password."
            ))));
        }
        if user.is_ldap() {
            return Ok(Err(Refusal::because(format!(
                "{email} belongs to another directory entry already."
            ))));
        }
        if door == Door::Sync {
            return Ok(Err(Refusal::because(format!(
                "{email} belongs to an Usher account that is not linked to the directory, so the \
                 entry was left alone: a synchronisation links nobody (a member is linked at \
                 their first sign-in with the directory, an admin never automatically)."
            ))));
        }
        if user.role != Role::Member {
            return Ok(Err(Refusal {
                reason: format!("{email} belongs to an admin who is not linked to the directory."),
                message: ADMIN_NOT_LINKED.to_owned(),
            }));
        }
        if user.disabled {
            return Ok(Err(Refusal::because(format!(
                "the Usher account with {email} is disabled."
            ))));
        }
        // A member who typed the address in and never confirmed it may not
        // own it: linking would hand the directory person that account (and
        // its holder's sessions).
        if !user.email_verified {
            return Ok(Err(Refusal::because(format!(
                "the Usher account with {email} has not confirmed that address, so it is not \
                 linked to the directory."
            ))));
        }
        Ok(Ok(Plan::Update(user, profile)))
    }

    /// Why `user` cannot take `email` from the directory, if they cannot:
    /// the checks of every other change of an email (another user has it,
    /// or has one that looks like it).
    async fn new_email_refused(&self, user: &User, email: &Email) -> Result<Option<String>> {
        if self
            .store
            .user_by_email(email)
            .await?
            .is_some_and(|other| other.id != user.id)
        {
            return Ok(Some(format!(
                "the directory's new email {email} is the address of another user."
            )));
        }
        Ok(self
            .look_alike(email, Some(user.id))
            .await?
            .map(|reason| format!("the directory's new email is refused: {reason}")))
    }

    /// [`Usher::refuse_look_alike`]'s refusal as a reason, Ok(None) when
    /// the address is fine.
    async fn look_alike(&self, email: &Email, who: Option<UserId>) -> Result<Option<String>> {
        match self.refuse_look_alike(email, who).await {
            Ok(()) => Ok(None),
            Err(refused @ (Error::InvalidField { .. } | Error::Invalid(_))) => {
                Ok(Some(refused.to_string()))
            }
            Err(other) => Err(other),
        }
    }

    /// Does what `plan` says; Err(reason) when the database refused it (an
    /// email another user took meanwhile).
    async fn carry_out(
        &self,
        plan: Plan,
        origin: &Origin,
    ) -> Result<std::result::Result<User, String>> {
        let now = self.now();
        match plan {
            Plan::Keep(user) => Ok(Ok(user)),
            Plan::Update(user, profile) => {
                let linked = user.is_ldap();
                match self.store.link_ldap_user(user.id, &profile, now).await {
                    Ok(Some(updated)) => {
                        if !linked {
                            self.audit(
                                None,
                                "ldap.user_linked",
                                Some(&updated),
                                format!("directory id {}", profile.ldap_id),
                                origin,
                            )
                            .await;
                        }
                        Ok(Ok(updated))
                    }
                    Ok(None) => Ok(Err(format!(
                        "the user for {} is gone, or is not a member the directory may link.",
                        profile.email
                    ))),
                    Err(StoreError::Conflict(_)) => Ok(Err(format!(
                        "{} is the address of another user.",
                        profile.email
                    ))),
                    Err(other) => Err(other.into()),
                }
            }
            Plan::Create(profile) => {
                let user = User {
                    id: UserId::new(),
                    email: Some(profile.email.clone()),
                    // The directory's address.
                    email_verified: true,
                    first_name: profile.first_name.clone(),
                    last_name: profile.last_name.clone(),
                    role: Role::Member,
                    password_hash: Some(DIRECTORY_PASSWORD.to_owned()),
                    password_change_required: false,
                    mfa_enabled: false,
                    invited_by: None,
                    invited_at: None,
                    created_at: now,
                    updated_at: now,
                    last_active_at: None,
                    ldap_id: Some(profile.ldap_id.clone()),
                    disabled: false,
                };
                match self.store.insert_user(&user).await {
                    Ok(()) => {
                        self.audit(
                            None,
                            "ldap.user_created",
                            Some(&user),
                            format!("directory id {}", profile.ldap_id),
                            origin,
                        )
                        .await;
                        Ok(Ok(user))
                    }
                    // Two sign-ins at once: the other one made the user.
                    Err(StoreError::Conflict(_)) => {
                        match self.store.user_by_ldap_id(&profile.ldap_id).await? {
                            Some(user) => Ok(Ok(user)),
                            None => Ok(Err(format!(
                                "{} is the address of another user.",
                                profile.email
                            ))),
                        }
                    }
                    Err(other) => Err(other.into()),
                }
            }
        }
    }

    /// `POST /rest/ldap/sync`: one run now, on whichever instance is asked,
    /// unless one is running. A run that fails is recorded, and its reason
    /// is the answer.
    pub async fn sync_ldap(&self, actor: &Actor, kind: &str, origin: &Origin) -> Result<SyncRun> {
        actor.user.role.require_user_manager()?;
        let mode = SyncMode::parse(kind)?;
        let connection = self.saved_connection().await?;
        let lease_until = self.now() + lease_length(&connection.config);
        if !self
            .store
            .take_lease(SYNC_LEASE, &self.instance_id, self.now(), lease_until)
            .await?
        {
            return Err(Error::Conflict(SYNC_RUNNING.into()));
        }
        let run = self
            .run_sync(connection, mode, Some(&actor.user), origin)
            .await;
        self.release_sync_lease().await;
        let run = run?;
        if run.status == "error" {
            return Err(Error::invalid(run.error));
        }
        Ok(run)
    }

    /// The scheduled synchronisation: runs when it is on and the last live
    /// run started `synchronizationInterval` minutes ago or more, on the
    /// one instance that gets the lease.
    pub async fn sync_ldap_when_due(&self) -> Result<Option<SyncRun>> {
        let config = self.stored_ldap().await?;
        if !config.synchronization_enabled
            || config.connection_url.is_empty()
            || config.base_dn.is_empty()
        {
            return Ok(None);
        }
        if !self.sync_due(&config).await? {
            return Ok(None);
        }
        let lease_until = self.now() + lease_length(&config);
        if !self
            .store
            .take_lease(SYNC_LEASE, &self.instance_id, self.now(), lease_until)
            .await?
        {
            return Ok(None);
        }
        // Another instance may have run it between the look and the lease.
        let run = if self.sync_due(&config).await? {
            let origin = Origin {
                ip: "scheduled synchronisation".into(),
                ..Origin::default()
            };
            match self.connection(config) {
                Ok(connection) => Some(
                    self.run_sync(connection, SyncMode::Live, None, &origin)
                        .await,
                ),
                Err(error) => Some(Err(error)),
            }
        } else {
            None
        };
        self.release_sync_lease().await;
        run.transpose()
    }

    async fn sync_due(&self, config: &LdapConfig) -> Result<bool> {
        let runs = self.store.sync_runs(100).await?;
        let interval = Millis::from(config.synchronization_interval) * MINUTE;
        Ok(runs
            .iter()
            .find(|run| run.run_mode == SyncMode::Live.as_str())
            .is_none_or(|last| self.now() - last.started_at >= interval))
    }

    async fn release_sync_lease(&self) {
        if let Err(error) = self
            .store
            .release_lease(SYNC_LEASE, &self.instance_id)
            .await
        {
            tracing::warn!(%error, "could not release the LDAP synchronisation lease");
        }
    }

    /// One run, recorded and audited whatever its outcome.
    async fn run_sync(
        &self,
        connection: Connection,
        mode: SyncMode,
        actor: Option<&User>,
        origin: &Origin,
    ) -> Result<SyncRun> {
        let mut run = SyncRun {
            id: uuid::Uuid::now_v7(),
            run_mode: mode.as_str().to_owned(),
            status: "success".to_owned(),
            started_at: self.now(),
            ended_at: self.now(),
            scanned: 0,
            created: 0,
            updated: 0,
            disabled: 0,
            error: String::new(),
        };
        if let Err(reason) = self
            .sync_entries(&connection, mode, &mut run, origin)
            .await?
        {
            run.status = "error".to_owned();
            run.error = reason;
        }
        run.ended_at = self.now();
        self.store.insert_sync_run(&run).await?;
        let skipped = if run.error.is_empty() {
            String::new()
        } else {
            format!("; {}", run.error)
        };
        self.audit(
            actor,
            "ldap.sync",
            None,
            format!(
                "{} run, {}: scanned {}, created {}, updated {}, disabled {}{skipped}",
                run.run_mode, run.status, run.scanned, run.created, run.updated, run.disabled
            ),
            origin,
        )
        .await;
        Ok(run)
    }

    /// Counts (and, live, applies) what the directory says. Err(reason)
    /// when the run could not be done; entries that cannot be users are
    /// skipped and named in `run.error`.
    async fn sync_entries(
        &self,
        connection: &Connection,
        mode: SyncMode,
        run: &mut SyncRun,
        origin: &Origin,
    ) -> Result<std::result::Result<(), String>> {
        let entries = match self.directory.everyone(connection).await {
            Ok(entries) => entries,
            Err(error) => return Ok(Err(error.to_string())),
        };
        run.scanned = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        let mut seen = HashSet::new();
        let mut skipped = Vec::new();
        for entry in &entries {
            // Kept before anything else: an entry with a problem still
            // keeps its user from being disabled.
            if !entry.ldap_id.is_empty() {
                seen.insert(entry.ldap_id.clone());
            }
            // One entry the database refuses is skipped and named; it
            // does not end the run for everyone else.
            let plan = match self.plan_entry(entry, &connection.config, Door::Sync).await {
                Ok(Ok(plan)) => plan,
                Ok(Err(refusal)) => {
                    skipped.push(refusal.reason);
                    continue;
                }
                Err(error) => {
                    skipped.push(not_saved(entry, &error));
                    continue;
                }
            };
            match &plan {
                Plan::Create(_) => run.created += 1,
                Plan::Update(..) => run.updated += 1,
                Plan::Keep(_) => {}
            }
            if mode == SyncMode::Live {
                match self.carry_out(plan, origin).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(reason)) => skipped.push(reason),
                    Err(error) => skipped.push(not_saved(entry, &error)),
                }
            }
        }
        let gone: Vec<UserId> = self
            .store
            .ldap_users()
            .await?
            .into_iter()
            .filter(|user| {
                !user.disabled
                    && user.role != Role::Owner
                    && user.ldap_id.as_ref().is_some_and(|id| !seen.contains(id))
            })
            .map(|user| user.id)
            .collect();
        if entries.is_empty() && !gone.is_empty() {
            return Ok(Err(
                "The directory returned nobody for the base DN and user filter, so nobody was \
                 disabled: check baseDn and userFilter."
                    .to_owned(),
            ));
        }
        run.disabled = i64::try_from(gone.len()).unwrap_or(i64::MAX);
        if mode == SyncMode::Live {
            self.store.disable_users(&gone, self.now()).await?;
        }
        if !skipped.is_empty() {
            let shown: Vec<&str> = skipped.iter().take(5).map(String::as_str).collect();
            run.error = format!("{} entries skipped: {}", skipped.len(), shown.join(" "));
        }
        Ok(Ok(()))
    }

    /// `GET /rest/ldap/sync`: the newest runs first.
    pub async fn ldap_sync_runs(&self, actor: &Actor, limit: i64) -> Result<Vec<SyncRun>> {
        actor.user.role.require_user_manager()?;
        Ok(self.store.sync_runs(limit.clamp(1, 500)).await?)
    }
}

/// Whether `user` signs in with the Usher password while LDAP sign-in is
/// on: the owner and admins whose account is not linked to the directory.
fn keeps_local_password(user: &User) -> bool {
    matches!(user.role, Role::Owner | Role::Admin)
        && !user.is_ldap()
        && !user.disabled
        && !user.is_pending()
}

/// The settings as answers show them: the password as the placeholder when
/// one is stored, empty when none is.
fn redacted(mut config: LdapConfig) -> LdapConfig {
    if !config.binding_admin_password.is_empty() {
        config.binding_admin_password = PASSWORD_PLACEHOLDER.to_owned();
    }
    config
}

/// How long a run may hold the lease: a few searches' time, at least five
/// minutes; a holder that goes away frees it then.
fn lease_length(config: &LdapConfig) -> Millis {
    (Millis::from(config.search_timeout) * 4_000).max(5 * MINUTE)
}

/// Why a synchronisation skipped an entry the database refused: the reason
/// itself goes to the log only (it may be internal text).
fn not_saved(entry: &Entry, error: &Error) -> String {
    tracing::warn!(dn = %entry.dn, %error, "LDAP synchronisation skipped an entry");
    format!(
        "the entry {} could not be saved (the server's log has the reason).",
        entry.dn
    )
}

/// What the directory says about a person, as Usher keeps it; Err(reason)
/// when it cannot be a user.
fn profile(entry: &Entry, config: &LdapConfig) -> std::result::Result<DirectoryProfile, String> {
    if entry.ldap_id.is_empty() {
        return Err(format!(
            "the entry {} has no {} (ldapIdAttribute).",
            entry.dn, config.ldap_id_attribute
        ));
    }
    if entry.ldap_id.chars().any(char::is_control) {
        return Err(format!(
            "the entry {} has control characters in its {} (ldapIdAttribute), which Usher \
             cannot keep as an id.",
            entry.dn, config.ldap_id_attribute
        ));
    }
    let email = Email::parse(&entry.email).map_err(|_| {
        format!(
            "the entry {} has no usable email address in {} (emailAttribute).",
            entry.dn, config.email_attribute
        )
    })?;
    Ok(DirectoryProfile {
        ldap_id: entry.ldap_id.clone(),
        email,
        first_name: directory_name(&entry.first_name),
        last_name: directory_name(&entry.last_name),
    })
}

/// A name from the directory as a name in Usher: no control characters, at
/// most [`crate::model::Name::MAX`] characters.
fn directory_name(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(crate::model::Name::MAX)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_lose_control_characters_and_fit_the_limit() {
        assert_eq!(directory_name("  Ann\u{0}\n "), "Ann");
        assert_eq!(directory_name(&"x".repeat(40)).chars().count(), 32);
    }

    #[test]
    fn an_id_with_control_characters_is_refused_not_stored() {
        let config = LdapConfig {
            ldap_id_attribute: "uniqueId".into(),
            ..LdapConfig::default()
        };
        let entry = |id: &str| Entry {
            dn: "uid=ann,dc=example,dc=org".into(),
            ldap_id: id.into(),
            login_id: "ann".into(),
            email: "ann@example.org".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
        };
        let refused = profile(&entry("ab\u{0}cd"), &config)
            .err()
            .unwrap_or_default();
        assert!(
            refused.contains("control characters in its uniqueId"),
            "{refused}"
        );
        assert!(profile(&entry("6162006364"), &config).is_ok());
    }

    #[test]
    fn the_stored_password_is_never_shown() {
        let config = LdapConfig {
            binding_admin_password: "v1:sealed".into(),
            ..LdapConfig::default()
        };
        assert_eq!(
            redacted(config).binding_admin_password,
            PASSWORD_PLACEHOLDER
        );
        assert_eq!(redacted(LdapConfig::default()).binding_admin_password, "");
    }
}
