//! The storage port. The store crate implements it once per database; a use
//! case that must be atomic is one method here, done in one transaction.
//!
//! The traits are split by area (as lldap does) and joined in [`Store`].

use async_trait::async_trait;

use crate::{
    apps::{App, AppId},
    clock::Millis,
    model::{Email, Role, User, UserId},
    resources::{
        Credential, CredentialId, Project, ProjectId, ProjectRole, Tag, TagId, Workflow, WorkflowId,
    },
};

pub type StoreResult<T> = std::result::Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write; the text names what clashed.
    #[error("{0}")]
    Conflict(String),
    /// The database failed; the text is for the log only.
    #[error("database: {0}")]
    Backend(String),
}

/// A server-side session. The cookie carries the token; only its hash is here.
#[derive(Clone, Debug)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub ip: String,
    pub user_agent: String,
    /// Signed in with a second factor (or enrolled in it during the session).
    pub mfa: bool,
}

/// What the owner set-up writes into the owner shell.
#[derive(Clone, Debug)]
pub struct OwnerClaim {
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: String,
    pub now: Millis,
}

#[derive(Clone, Debug)]
pub struct ProfileChange {
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    pub now: Millis,
}

/// Whether the instance is set up, read in one query on every page request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetupState {
    pub owner_set_up: bool,
    pub setup_skipped: bool,
    /// The owner requires two-factor authentication for everyone.
    pub mfa_required: bool,
}

/// One line of the audit log: who did what to whom, when, from where.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub id: uuid::Uuid,
    pub at: Millis,
    pub actor_id: Option<UserId>,
    pub actor_email: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
    pub ip: String,
}

#[async_trait]
pub trait UserStore {
    /// Creates the empty owner shell, with its personal project, unless an
    /// owner exists (idempotent, also when several instances start at once).
    async fn ensure_owner_shell(&self, id: UserId, now: Millis) -> StoreResult<()>;
    async fn setup_state(&self) -> StoreResult<SetupState>;
    async fn owner(&self) -> StoreResult<Option<User>>;
    /// Fills the owner shell and renames its personal project after the
    /// owner. None when it was already filled: of several set-ups at once
    /// exactly one gets Some.
    async fn claim_owner(&self, claim: &OwnerClaim) -> StoreResult<Option<User>>;
    /// Adds a user with their personal project, in one transaction;
    /// Conflict when the email is taken.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>>;
    /// Every user with an email (the owner shell is left out), oldest first.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Changes names and email and renames the user's personal project;
    /// when the email changes, marks it unconfirmed (the user set it, not
    /// an admin), ends the user's sessions other than `keep_session` and
    /// voids their password reset and confirmation links, in the same
    /// transaction.
    async fn update_profile(
        &self,
        id: UserId,
        change: &ProfileChange,
        keep_session: Option<&str>,
    ) -> StoreResult<Option<User>>;
    /// Stores a new password hash, ends every session of the user but
    /// `keep_session` and voids their password reset links, in one
    /// transaction.
    async fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        change_required: bool,
        now: Millis,
        keep_session: Option<&str>,
    ) -> StoreResult<()>;
    /// Sets a user's global role (never to or from owner: see
    /// `transfer_ownership`).
    async fn set_role(&self, id: UserId, role: Role, now: Millis) -> StoreResult<Option<User>>;
    /// Hands ownership over in one transaction: the owner becomes admin and
    /// `to` becomes owner. False when `to` is not an active user with an
    /// Usher password (pending, disabled, or linked to the directory).
    async fn transfer_ownership(&self, from: UserId, to: UserId, now: Millis) -> StoreResult<bool>;
    /// Replaces a hash with a stronger one without touching sessions.
    async fn rehash_password(&self, id: UserId, password_hash: &str) -> StoreResult<()>;
    /// `usher user-management:reset`, in one transaction: every user's work
    /// moved to the owner's personal project, every user deleted (the owner
    /// too) with their sessions, API keys, links, invitations and second
    /// factors, and an empty owner shell with the id `new_owner` holding the
    /// owner's projects (the personal one renamed for a shell); set-up not
    /// skipped.
    async fn reset_user_management(&self, new_owner: UserId, now: Millis) -> StoreResult<()>;
    /// When an instance that was open (set-up skipped) gets its owner: every
    /// API key and every pending invitation (its pending user with it) is
    /// deleted, in one transaction. How many of each.
    async fn revoke_open_access(&self) -> StoreResult<(u64, u64)>;
    /// A user whose address looks like `email` (the same skeleton) but is
    /// not `email` itself.
    async fn user_looking_like(&self, email: &Email) -> StoreResult<Option<User>>;
    /// One page of the users page's list (every user with an email): the
    /// ones that match, in the order asked, after the cursor when given;
    /// `search.limit` at most; each with its key in that order, for the
    /// cursor of the next page (the database's own lower-casing of the
    /// name, which is not Rust's).
    async fn search_users(&self, search: &UserSearch) -> StoreResult<Vec<(User, OrderKey)>>;
    /// Records that the user was active at `now`, unless that was recorded
    /// since `since` already (at most one write a day per user).
    async fn touch_user(&self, id: UserId, now: Millis, since: Millis) -> StoreResult<()>;
}

/// What the users page's list can be ordered by; each walks an index of
/// (key, id), so a page costs the same wherever it starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserOrder {
    /// The name shown (the email when there is none), in any case.
    #[default]
    Name,
    Email,
    Created,
    LastActive,
}

/// A state to filter the list by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserStatus {
    /// Signed up (has a password).
    Active,
    /// Invited, not signed up yet.
    Pending,
    /// Must choose a new password at the next sign-in.
    MustChangePassword,
    /// Has two-factor authentication on.
    TwoFactor,
}

/// Where a page starts: after (or, read backwards, before) this key and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderKey {
    Text(String),
    Number(Millis),
}

/// The users page's query, as the store runs it.
#[derive(Clone, Debug, Default)]
pub struct UserSearch {
    /// Lower-cased; part of the name shown or of the email (one or two
    /// characters: the start of either). Empty: everyone.
    pub text: String,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    pub order: UserOrder,
    pub descending: bool,
    /// Rows after this (key, id) in the order asked.
    pub after: Option<(OrderKey, UserId)>,
    pub limit: i64,
}

/// An invitation: a link's token hash, for one pending user, and the token
/// sealed with the instance key so that the same link can be shown again.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub token_hash: String,
    pub user_id: UserId,
    pub inviter_id: Option<UserId>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
    /// The token, sealed (`Cipher::seal`); None for invitations made before
    /// tokens were kept, whose links cannot be shown again.
    pub sealed_token: Option<String>,
}

/// What an accepted invitation writes into the pending user.
#[derive(Clone, Debug)]
pub struct Acceptance {
    pub first_name: String,
    pub last_name: String,
    pub password_hash: String,
    pub now: Millis,
}

#[async_trait]
pub trait InvitationStore {
    /// Stores `user` as a new pending user, with their personal project and
    /// `invitation`, in one transaction; Conflict when the email is taken.
    async fn insert_invited_user(&self, user: &User, invitation: &Invitation) -> StoreResult<()>;
    /// Replaces the pending user's invitations with `invitation` (a new
    /// link: the old one stops working). False when the user is no longer
    /// pending.
    async fn replace_invitation(&self, invitation: &Invitation, now: Millis) -> StoreResult<bool>;
    /// The pending user's invitation whose link still works at `now`
    /// (unused, unexpired), if there is one.
    async fn live_invitation(&self, user: UserId, now: Millis) -> StoreResult<Option<Invitation>>;
    /// The invitation with this token hash (used or not), its pending user
    /// and its inviter.
    async fn invitation(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(Invitation, User, Option<User>)>>;
    /// Marks the invitation used, activates its user and renames their
    /// personal project after the names given, in one transaction. None
    /// when it was used, expired or withdrawn: of several accepts at once,
    /// exactly one gets the user.
    async fn accept_invitation(
        &self,
        token_hash: &str,
        acceptance: &Acceptance,
    ) -> StoreResult<Option<User>>;
    /// Removes a user who has not accepted yet. False when there is no such
    /// pending user.
    async fn delete_pending_user(&self, id: UserId) -> StoreResult<bool>;
}

/// A password reset link's stored half.
#[derive(Clone, Debug)]
pub struct PasswordReset {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
}

#[async_trait]
pub trait ResetStore {
    /// Stores a new link; the user's earlier links stop working.
    async fn insert_reset(&self, reset: &PasswordReset) -> StoreResult<()>;
    /// The reset with this token hash (used or not) and its user.
    async fn reset(&self, token_hash: &str) -> StoreResult<Option<(PasswordReset, User)>>;
    /// Uses the link: in one transaction marks it used (only if unused and
    /// unexpired), stores the new password hash, clears a forced change, ends
    /// every session of the user and voids the user's other links. None when
    /// the link was used, expired or void.
    async fn consume_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<User>>;
    /// Makes the link unusable (too many wrong codes were tried with it).
    async fn void_reset(&self, token_hash: &str) -> StoreResult<()>;
    /// Stores a link that confirms an address; the user's earlier ones
    /// stop working.
    async fn insert_email_verification(&self, link: &EmailVerification) -> StoreResult<()>;
    /// The unused, unexpired confirmation link with this token hash whose
    /// address is still the user's, and that user.
    async fn email_verification(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<(EmailVerification, User)>>;
    /// Uses the link: in one transaction marks it used (only if unused and
    /// unexpired) and marks the user's address confirmed if it is still
    /// the one the link was sent to. None when the link was used, expired,
    /// replaced, or the address changed since.
    async fn consume_email_verification(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<User>>;
}

/// A link that confirms an email address: its stored half.
#[derive(Clone, Debug)]
pub struct EmailVerification {
    pub token_hash: String,
    pub user_id: UserId,
    /// The address it was sent to: it confirms only that one.
    pub email: Email,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// Which workflows or credentials to list: all, or those in the projects a
/// user belongs to.
#[derive(Clone, Copy, Debug)]
pub enum Visible {
    All,
    MemberOf(UserId),
}

#[async_trait]
pub trait ProjectStore {
    /// The user's personal project. Every user has one from the moment
    /// their row exists (the store makes it in the transaction that inserts
    /// the row), so None means there is no such user.
    async fn personal_project(&self, user: UserId) -> StoreResult<Option<Project>>;
    async fn project(&self, id: ProjectId) -> StoreResult<Option<Project>>;
    /// Projects the user belongs to, with their role in each.
    async fn projects_of(&self, user: UserId) -> StoreResult<Vec<(Project, ProjectRole)>>;
    async fn all_projects(&self) -> StoreResult<Vec<Project>>;
    /// The team projects alone, by name (not every user's personal one).
    async fn team_projects(&self) -> StoreResult<Vec<Project>>;
    /// The projects that hold a workflow or a credential: what the owner's
    /// and admins' lists of work name, however many users (and so personal
    /// projects) there are.
    async fn projects_with_work(&self) -> StoreResult<Vec<Project>>;
    /// How many workflows and credentials a project holds.
    async fn count_work(&self, project: ProjectId) -> StoreResult<(i64, i64)>;
    /// A new team project with its first admin, in one transaction.
    async fn insert_project(&self, project: &Project, admin: UserId) -> StoreResult<()>;
    async fn rename_project(&self, id: ProjectId, name: &str, now: Millis) -> StoreResult<bool>;
    /// Deletes a team project with its workflows and credentials.
    async fn delete_project(&self, id: ProjectId) -> StoreResult<bool>;
    async fn membership(
        &self,
        project: ProjectId,
        user: UserId,
    ) -> StoreResult<Option<ProjectRole>>;
    async fn members(&self, project: ProjectId) -> StoreResult<Vec<(User, ProjectRole)>>;
    async fn set_member(
        &self,
        project: ProjectId,
        user: UserId,
        role: ProjectRole,
    ) -> StoreResult<()>;
    async fn remove_member(&self, project: ProjectId, user: UserId) -> StoreResult<bool>;
    /// Deletes a user. With `transfer_to`, their personal project's
    /// workflows and credentials move there first; without, they are
    /// deleted. One transaction: everything moves or nothing does. False
    /// when there is no such user.
    async fn delete_user(&self, id: UserId, transfer_to: Option<ProjectId>) -> StoreResult<bool>;
}

#[async_trait]
pub trait WorkflowStore {
    async fn workflows(&self, visible: Visible) -> StoreResult<Vec<Workflow>>;
    async fn workflow(&self, id: WorkflowId) -> StoreResult<Option<Workflow>>;
    async fn insert_workflow(&self, workflow: &Workflow) -> StoreResult<()>;
    /// Name, definition, active flag and tags, in one transaction.
    async fn update_workflow(&self, workflow: &Workflow) -> StoreResult<bool>;
    async fn delete_workflow(&self, id: WorkflowId) -> StoreResult<bool>;
    async fn credentials(&self, visible: Visible) -> StoreResult<Vec<Credential>>;
    async fn credential(&self, id: CredentialId) -> StoreResult<Option<Credential>>;
    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()>;
    async fn update_credential(&self, credential: &Credential) -> StoreResult<bool>;
    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool>;
    async fn tags(&self) -> StoreResult<Vec<Tag>>;
    /// Conflict when a tag with that name (whatever the case) exists.
    async fn insert_tag(&self, tag: &Tag) -> StoreResult<()>;
    async fn rename_tag(&self, id: TagId, name: &str) -> StoreResult<bool>;
    async fn delete_tag(&self, id: TagId) -> StoreResult<bool>;
}

/// An API key's stored half.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub label: String,
    pub key_hash: String,
    pub last_chars: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
}

/// Where a page of `/api/v1/users` starts: after this (created_at, id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCursor {
    pub created_at: Millis,
    pub id: UserId,
}

/// A user named by id or by email, as `/api/v1/users/{id}` takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserRef {
    Id(UserId),
    Email(Email),
}

/// A key found by its hash, and its user.
#[derive(Debug)]
pub struct KeyUse {
    pub key: ApiKey,
    pub user: User,
}

#[async_trait]
pub trait ApiKeyStore {
    /// Conflict when the user has a key with this label.
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn api_keys_of(&self, user: UserId) -> StoreResult<Vec<ApiKey>>;
    async fn update_api_key(
        &self,
        user: UserId,
        id: uuid::Uuid,
        label: &str,
        scopes: &[String],
    ) -> StoreResult<bool>;
    async fn delete_api_key(&self, user: UserId, id: uuid::Uuid) -> StoreResult<bool>;
    /// The key with this hash and its user, marking it used at `now`; None
    /// for a key of a disabled user.
    async fn use_api_key(&self, key_hash: &str, now: Millis) -> StoreResult<Option<KeyUse>>;
    /// A page of users with an email, in (created_at, id) order: after
    /// `after` when given, else from `offset`; optionally only the members of
    /// a project.
    async fn user_page(
        &self,
        after: Option<&UserCursor>,
        offset: i64,
        limit: i64,
        project: Option<ProjectId>,
    ) -> StoreResult<Vec<User>>;
}

#[async_trait]
pub trait MfaStore {
    /// Starts (or restarts) enrolment: a sealed secret and recovery code
    /// hashes that take effect only on `confirm_mfa`.
    async fn set_pending_mfa(
        &self,
        user: UserId,
        sealed_secret: &str,
        code_hashes: &[String],
    ) -> StoreResult<()>;
    async fn pending_mfa_secret(&self, user: UserId) -> StoreResult<Option<String>>;
    /// Turns MFA on with `sealed_secret` (the pending one's secret) and the
    /// pending codes, in one transaction; false when nothing was pending.
    async fn confirm_mfa(
        &self,
        user: UserId,
        sealed_secret: &str,
        now: Millis,
    ) -> StoreResult<bool>;
    async fn mfa_secret(&self, user: UserId) -> StoreResult<Option<String>>;
    /// Turns MFA off: secret, codes and flag go, in one transaction.
    async fn disable_mfa(&self, user: UserId, now: Millis) -> StoreResult<()>;
    /// Replaces the active recovery codes.
    async fn replace_recovery_codes(&self, user: UserId, code_hashes: &[String])
    -> StoreResult<()>;
    /// Uses an unused active recovery code; false when there is none.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code_hash: &str,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Records a TOTP time-step as used; false when it was used already.
    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool>;
    async fn insert_challenge(
        &self,
        token_hash: &str,
        user: UserId,
        expires_at: Millis,
    ) -> StoreResult<()>;
    /// The user of an unexpired sign-in challenge.
    async fn challenge(&self, token_hash: &str, now: Millis) -> StoreResult<Option<User>>;
    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait SessionStore {
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    /// The unexpired session with this token hash, and its user.
    async fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(Session, User)>>;
    async fn extend_session(&self, token_hash: &str, expires_at: Millis) -> StoreResult<()>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait GuardStore {
    /// Adds one to the counter `key` for the window starting at `window_start`
    /// and returns the new count. Lives in the database so that every
    /// instance sees the same counts.
    async fn count_hit(
        &self,
        key: &str,
        window_start: Millis,
        expires_at: Millis,
    ) -> StoreResult<i64>;
    /// Takes one back from the counter `key` of the window starting at
    /// `window_start` (an attempt that turned out right).
    async fn forgive_hit(&self, key: &str, window_start: Millis) -> StoreResult<()>;
    async fn purge_expired(&self, now: Millis) -> StoreResult<()>;
}

#[async_trait]
pub trait SettingStore {
    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    async fn delete_setting(&self, key: &str) -> StoreResult<()>;
}

/// Which audit events to list; empty strings match everything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// An action, or the start of one (`invitation.` for all of them).
    pub action: String,
    /// Who did it or to whom it was done (an email, or part of one).
    pub person: String,
}

#[async_trait]
pub trait AuditStore {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first, and how many match in all.
    async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditEvent>, i64)>;
}

#[async_trait]
pub trait AppStore {
    /// Conflict when the client id is taken.
    async fn insert_app(&self, app: &App) -> StoreResult<()>;
    /// Replaces the app's fields and access (not its client id or secret)
    /// and, in the same transaction, revokes the grants of everyone whose
    /// access or role it changed. False when there is no such app.
    async fn update_app(&self, app: &App) -> StoreResult<bool>;
    /// A new client secret hash (None: the app became public).
    async fn set_app_secret(&self, id: AppId, secret_hash: Option<&str>) -> StoreResult<bool>;
    /// Deletes the app with every grant, code and token it issued.
    async fn delete_app(&self, id: AppId) -> StoreResult<bool>;
    async fn app(&self, id: AppId) -> StoreResult<Option<App>>;
    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>>;
    /// Every app, by name.
    async fn apps(&self) -> StoreResult<Vec<App>>;
    /// The apps `user` may use, by name, with their role in each.
    async fn apps_of(&self, user: UserId) -> StoreResult<Vec<(App, String)>>;
    /// The user's role in the app, None without access (the rule in
    /// [`crate::apps`]).
    async fn app_role(&self, app: AppId, user: UserId) -> StoreResult<Option<String>>;
}

/// One sign-in of a person into an app. Its code and tokens go with it.
#[derive(Clone, Debug)]
pub struct OidcGrant {
    pub id: uuid::Uuid,
    pub app_id: AppId,
    pub user_id: UserId,
    /// The app role when it was issued: a change of role revokes it.
    pub role: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: Millis,
    /// Space-separated `amr` values (`pwd`, `otp`).
    pub amr: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[derive(Clone, Debug)]
pub struct OidcCode {
    pub code_hash: String,
    pub grant_id: uuid::Uuid,
    pub redirect_uri: String,
    /// The PKCE S256 challenge, if the request had one.
    pub code_challenge: Option<String>,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

#[derive(Clone, Debug)]
pub struct OidcToken {
    pub token_hash: String,
    pub grant_id: uuid::Uuid,
    pub kind: TokenKind,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// When a refresh token was exchanged for the next one.
    pub used_at: Option<Millis>,
}

/// An ID token signing key: the private half sealed with the instance key.
#[derive(Clone, Debug)]
pub struct SigningKey {
    pub kid: String,
    pub sealed_key: String,
    /// The public key as a JWK (JSON text).
    pub public_jwk: String,
    pub created_at: Millis,
    pub retired_at: Option<Millis>,
}

#[async_trait]
pub trait OidcStore {
    /// Every signing key, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Adds a key; with `retire_at`, every other unretired key is retired
    /// then, in the same transaction.
    async fn insert_signing_key(
        &self,
        key: &SigningKey,
        retire_at: Option<Millis>,
    ) -> StoreResult<()>;
    /// A grant and its code, in one transaction.
    async fn insert_grant(&self, grant: &OidcGrant, code: &OidcCode) -> StoreResult<()>;
    /// The code with this hash (used or not) and its grant.
    async fn code(&self, code_hash: &str) -> StoreResult<Option<(OidcCode, OidcGrant)>>;
    /// In one transaction: marks the code used, only if it is unused,
    /// unexpired and its grant's role is still the user's role in the app,
    /// and stores `tokens`. False when any of that failed.
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: Millis,
        tokens: &[OidcToken],
    ) -> StoreResult<bool>;
    /// In one transaction: marks the refresh token used, only if it is
    /// unused and unexpired, and stores `tokens`. False otherwise.
    async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: Millis,
        tokens: &[OidcToken],
    ) -> StoreResult<bool>;
    /// The token with this hash (used or not, expired or not) and its grant.
    async fn token(&self, token_hash: &str) -> StoreResult<Option<(OidcToken, OidcGrant)>>;
    async fn delete_token(&self, token_hash: &str) -> StoreResult<()>;
    /// Revokes a grant with its codes and tokens.
    async fn revoke_grant(&self, id: uuid::Uuid) -> StoreResult<()>;
    /// The scope the user allowed the app, if any.
    async fn consent(&self, app: AppId, user: UserId) -> StoreResult<Option<String>>;
    async fn put_consent(
        &self,
        app: AppId,
        user: UserId,
        scope: &str,
        now: Millis,
    ) -> StoreResult<()>;
}

/// A cookie forward authentication reads.
#[derive(Clone, Copy, Debug)]
pub enum ForwardCookie<'a> {
    /// Usher's session cookie (on Usher's host, or for its cookie domain):
    /// the session token's hash.
    Session(&'a str),
    /// A host-only cookie set on an app's host through `/.usher/`: its
    /// token's hash.
    Host(&'a str),
}

/// Who a forward-auth cookie names, and their place in one app: what the
/// proxy's question is answered from, on every request.
#[derive(Clone, Debug)]
pub struct ForwardAccess {
    pub user: User,
    /// The Usher session (the cookie's own, or the one a host cookie hangs
    /// on); ending it ends every host cookie made from it.
    pub session_hash: String,
    pub expires_at: Millis,
    /// The session was signed in with a second factor.
    pub mfa: bool,
    /// For a host cookie: the `host[:port]` it was set on.
    pub host: Option<String>,
    /// The person's role in the app (the one rule of `crate::apps`); None:
    /// no access.
    pub role: Option<String>,
    /// The names of the team projects they belong to, sorted.
    pub groups: Vec<String>,
}

/// A single-use code that carries a signed-in session to an app's host
/// outside the cookie domain (`/.usher/callback`).
#[derive(Clone, Debug)]
pub struct ForwardCode {
    pub code_hash: String,
    pub session_hash: String,
    /// Where to go once the host cookie is set (checked against the app).
    pub url: String,
    /// The `host[:port]` the code may be redeemed on.
    pub host: String,
    /// SHA-256 of the state cookie the browser got on that host when it
    /// set out, so a code works only in the browser that asked for it.
    pub state_hash: String,
    pub expires_at: Millis,
}

/// A host-only cookie's session on an app's host, hanging on an Usher
/// session.
#[derive(Clone, Debug)]
pub struct HostSession {
    pub token_hash: String,
    pub session_hash: String,
    pub host: String,
    pub created_at: Millis,
}

/// Forward authentication. What it answers from is kept in memory by the
/// store, as API keys are, and as exact: a change to sessions, users,
/// apps, their access or projects is seen at once, on every instance.
#[async_trait]
pub trait ForwardAuthStore {
    /// Every app with forward authentication, and whether the owner
    /// requires two-factor authentication of everyone.
    async fn forward_apps(&self) -> StoreResult<(std::sync::Arc<[App]>, bool)>;
    /// The person behind `cookie` and their role in `app`; None when the
    /// cookie names no live session.
    async fn forward_access(
        &self,
        cookie: ForwardCookie<'_>,
        app: AppId,
        now: Millis,
    ) -> StoreResult<Option<ForwardAccess>>;
    async fn insert_forward_code(&self, code: &ForwardCode) -> StoreResult<()>;
    /// Uses a code: of several uses, on any number of instances, one gets it,
    /// and only before it expires.
    async fn take_forward_code(
        &self,
        code_hash: &str,
        now: Millis,
    ) -> StoreResult<Option<ForwardCode>>;
    /// Starts a host session; false when its Usher session ended meanwhile.
    async fn insert_host_session(&self, session: &HostSession, now: Millis) -> StoreResult<bool>;
    /// Marks a session as having proved a second factor (set up during it).
    async fn mark_session_mfa(&self, token_hash: &str) -> StoreResult<()>;
}

/// One LDAP synchronisation, as n8n's sync history records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    pub id: uuid::Uuid,
    /// `dry` (counted, nothing changed) or `live`.
    pub run_mode: String,
    /// `success` or `error`.
    pub status: String,
    pub started_at: Millis,
    pub ended_at: Millis,
    pub scanned: i64,
    pub created: i64,
    pub updated: i64,
    pub disabled: i64,
    /// Why it failed, or what it skipped, in words; empty when all went well.
    pub error: String,
}

/// What the directory says about a person, written into their user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryProfile {
    pub ldap_id: String,
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
}

#[async_trait]
pub trait LdapStore {
    async fn user_by_ldap_id(&self, ldap_id: &str) -> StoreResult<Option<User>>;
    /// Every user linked to a directory entry, disabled ones too.
    async fn ldap_users(&self) -> StoreResult<Vec<User>>;
    /// Makes the user the directory's person: names, email and directory id
    /// from `profile`, no local password, enabled again; their personal
    /// project renamed, and their invitations and reset links voided, in one
    /// transaction. Conflict when another user has the email; None when
    /// the user is gone, is the owner, or is neither linked to this entry
    /// nor an active member who is not linked yet.
    async fn link_ldap_user(
        &self,
        id: UserId,
        profile: &DirectoryProfile,
        now: Millis,
    ) -> StoreResult<Option<User>>;
    /// Disables the users and, in the same transaction, deletes their
    /// sessions, API keys, app grants (with their tokens), sign-in
    /// challenges, reset links and invitations. How many were disabled.
    async fn disable_users(&self, ids: &[UserId], now: Millis) -> StoreResult<u64>;
    async fn insert_sync_run(&self, run: &SyncRun) -> StoreResult<()>;
    /// The newest runs first, `limit` at most.
    async fn sync_runs(&self, limit: i64) -> StoreResult<Vec<SyncRun>>;
    /// Takes the lease `name` for `holder` until `until`, if nobody else
    /// holds it at `now` (one statement: of several instances asking at
    /// once, one gets it). True when `holder` has it.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> StoreResult<bool>;
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
}

/// Single sign-on through an outside OpenID Connect provider.
#[async_trait]
pub trait SsoStore {
    /// A sign-in under way, keyed by the hash of its `state`.
    async fn insert_sso_login(
        &self,
        state_hash: &str,
        sealed: &str,
        expires_at: Millis,
    ) -> StoreResult<()>;
    /// Takes (deletes) the sign-in with this state hash and returns what
    /// it held and when it expires: of several callbacks with one state, on
    /// any instance, exactly one gets it.
    async fn take_sso_login(&self, state_hash: &str) -> StoreResult<Option<(String, Millis)>>;
    /// The user linked to the provider's (issuer, subject).
    async fn sso_user(&self, issuer: &str, subject: &str) -> StoreResult<Option<User>>;
    /// Links (issuer, subject) to an existing user if that user is an
    /// enabled member without another subject of that issuer at that moment
    /// (in the same statement, so a promotion in between cannot slip
    /// through); false when nothing was linked for one of those reasons.
    /// Conflict when that pair is linked already.
    async fn link_sso(
        &self,
        issuer: &str,
        subject: &str,
        user: UserId,
        now: Millis,
    ) -> StoreResult<bool>;
    /// A new user with their personal project and the link, in one
    /// transaction; Conflict when the email or the link is taken.
    async fn insert_sso_user(&self, user: &User, issuer: &str, subject: &str) -> StoreResult<()>;
}

/// Everything Usher stores.
#[async_trait]
pub trait Store:
    UserStore
    + InvitationStore
    + ResetStore
    + ProjectStore
    + WorkflowStore
    + ApiKeyStore
    + MfaStore
    + SessionStore
    + GuardStore
    + SettingStore
    + AuditStore
    + AppStore
    + OidcStore
    + ForwardAuthStore
    + LdapStore
    + SsoStore
    + Send
    + Sync
    + 'static
{
    /// Answers when the database does (for `/healthz/readiness`).
    async fn ping(&self) -> StoreResult<()>;
}

pub mod keys {
    //! Names of rows in the settings table.
    pub const SETUP_SKIPPED: &str = "userManagement.setupSkipped";
    pub const KEY_FINGERPRINT: &str = "encryptionKey.fingerprint";
    /// The owner's own wording of the invitation email (subject and HTML).
    pub const INVITE_SUBJECT: &str = "email.invite.subject";
    pub const INVITE_TEMPLATE: &str = "email.invite.template";
    /// "true" when the owner requires two-factor authentication for everyone.
    pub const MFA_REQUIRED: &str = "mfa.required";
    /// What was made while the instance was open, in words (a JSON list),
    /// shown to the owner after set-up until dismissed.
    pub const OPEN_PERIOD_REPORT: &str = "setup.openPeriodReport";
    /// The LDAP settings (JSON, n8n's names; the binding password sealed).
    pub const LDAP_CONFIG: &str = "features.ldap";
    /// Single sign-on through an OpenID Connect provider: the settings as
    /// JSON, the client secret sealed (n8n's key).
    pub const SSO_OIDC: &str = "features.oidc";
}
