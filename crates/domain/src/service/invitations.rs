//! Inviting people by email or link, resending, withdrawing, accepting.
//!
//! An invited person is a pending user (no password yet) with one live
//! invitation. A link stays valid until it is accepted, withdrawn, replaced
//! or expires: inviting a pending user again, "resend" and "copy invite
//! link" give the same link again. The store looks links up by the token's
//! hash and keeps the token itself sealed with the instance key, so it can
//! be shown again while a copy of the database opens nothing. Making a new
//! link is its own action ([`Usher::renew_invite_link`]), and only it voids
//! the old one; so does asking for the link of an invitation made before
//! tokens were kept, which cannot be shown again ([`Invited::new_link`]).

use crate::{
    Error, Result,
    clock::Millis,
    mail::InviteMail,
    model::{Email, Name, Origin, Role, User, UserId},
    secret::Secret,
    store::{Acceptance, Invitation},
    token,
};

use super::{
    Usher,
    auth::{Actor, SignedIn},
};

pub const NOT_ASSIGNABLE: &str = "This global role value is not assignable";
pub const ALREADY_ACCEPTED: &str = "This invite has been accepted already";
/// n8n's words for a link that cannot be an invitation (no token, or not a
/// token's shape): 400, where a well-formed unknown token is 404.
pub const INVALID_INVITE_URL: &str = "Invalid invite URL";

#[derive(Clone, Debug)]
pub struct InviteRequest {
    pub email: String,
    pub role: Option<String>,
}

/// The outcome for one email of an invitation request.
#[derive(Clone, Debug)]
pub struct Invited {
    /// The email as given (lower-cased when valid).
    pub email: String,
    /// The pending user; None when this email could not be invited.
    pub user: Option<User>,
    pub email_sent: bool,
    /// The link to pass on by hand; None under N8N_INVITE_LINKS_EMAIL_ONLY.
    pub accept_url: Option<String>,
    /// Why this email was not invited, or why its email did not go out.
    pub error: Option<String>,
    /// Until when the link works.
    pub expires_at: Option<Millis>,
    /// The link was made by this request and an earlier one of this person
    /// stopped working (a new link, or one that could not be shown again).
    pub new_link: bool,
}

/// A pending user's link, as it is handed out.
struct Link {
    token: Secret,
    expires_at: Millis,
    /// It replaced an earlier link, which stopped working.
    replaced: bool,
}

/// What the accept page shows before asking for names and a password.
#[derive(Clone, Debug)]
pub struct InvitationView {
    pub email: Email,
    pub inviter_first_name: String,
    pub inviter_last_name: String,
}

/// Parses the role of an invitation or of a user created directly: members
/// by default, admins on request, never a second owner.
pub(super) fn assignable_role(role: Option<&str>) -> Result<Role> {
    match role.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(Role::Member),
        Some(text) => match Role::parse(text) {
            Some(Role::Owner) => Err(Error::invalid(NOT_ASSIGNABLE)),
            Some(role) => Ok(role),
            None => Err(Error::invalid(format!(
                "'{text}' is not a role. Use global:member or global:admin."
            ))),
        },
    }
}

/// Batch limits shared by invitations and direct creation.
pub(super) fn check_batch(count: usize) -> Result<()> {
    match count {
        0 => Err(Error::invalid("Add at least one email address.")),
        n if n > 100 => Err(Error::invalid("Add at most 100 people at a time.")),
        _ => Ok(()),
    }
}

impl Usher {
    #[tracing::instrument(skip_all, fields(actor = %actor.user.id, count = requests.len()), err(level = "info"))]
    pub async fn invite(
        &self,
        actor: &Actor,
        requests: Vec<InviteRequest>,
        origin: &Origin,
    ) -> Result<Vec<Invited>> {
        actor.user.role.require_user_manager()?;
        // Nobody to invite is nothing to do: n8n answers `[]` with `[]`.
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        check_batch(requests.len())?;
        if self.config.invite_links_email_only && !self.mailer.is_configured() {
            return Err(Error::invalid(
                "Invitation links are sent by email only (N8N_INVITE_LINKS_EMAIL_ONLY), but email \
                 is not set up on this instance. Set up SMTP or turn that setting off.",
            ));
        }
        // A bad role fails the whole request, as in n8n.
        let roles = requests
            .iter()
            .map(|r| assignable_role(r.role.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for (request, role) in requests.into_iter().zip(roles) {
            let outcome = match self.invite_one(actor, &request.email, role, origin).await {
                Ok(outcome) => outcome,
                Err(Error::Internal(cause)) => return Err(Error::Internal(cause)),
                Err(refused) => Invited {
                    email: request.email.trim().to_owned(),
                    user: None,
                    email_sent: false,
                    accept_url: None,
                    error: Some(refused.to_string()),
                    expires_at: None,
                    new_link: false,
                },
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn invite_one(
        &self,
        actor: &Actor,
        email: &str,
        role: Role,
        origin: &Origin,
    ) -> Result<Invited> {
        let email = Email::parse(email)?;
        self.refuse_look_alike(&email, None).await?;
        let already = || Error::Conflict(format!("{email} already has an account."));
        let (user, link) = match self.store.user_by_email(&email).await? {
            Some(user) if !user.is_pending() => return Err(already()),
            // Invited before: this is "resend", with the same link, and the
            // user keeps its id.
            Some(user) => {
                let link = self.current_link(actor, &user).await?;
                (user, link)
            }
            None => {
                let now = self.now();
                let user = User {
                    id: UserId::new(),
                    email: Some(email.clone()),
                    // Only who holds the address gets the link that activates it.
                    email_verified: true,
                    first_name: String::new(),
                    last_name: String::new(),
                    role,
                    password_hash: None,
                    password_change_required: false,
                    mfa_enabled: false,
                    invited_by: Some(actor.user.id),
                    invited_at: Some(now),
                    created_at: now,
                    updated_at: now,
                    last_active_at: None,
                    ldap_id: None,
                    disabled: false,
                };
                let (invitation, link) = self.new_invitation(actor, user.id, false)?;
                self.store
                    .insert_invited_user(&user, &invitation)
                    .await
                    .map_err(|e| match Error::from(e) {
                        Error::Conflict(_) => already(),
                        other => other,
                    })?;
                (user, link)
            }
        };
        Ok(self.deliver(actor, user, link, true, origin).await)
    }

    /// A new invitation for `user_id`, its token sealed to be shown again,
    /// and its link.
    fn new_invitation(
        &self,
        actor: &Actor,
        user_id: UserId,
        replaces: bool,
    ) -> Result<(Invitation, Link)> {
        let token = token::generate();
        let now = self.now();
        let invitation = Invitation {
            sealed_token: Some(self.cipher()?.seal(token.secret.expose())?),
            token_hash: token.hash,
            user_id,
            inviter_id: Some(actor.user.id),
            created_at: now,
            expires_at: now + self.config.invite_lifetime,
            used_at: None,
        };
        let link = Link {
            token: token.secret,
            expires_at: invitation.expires_at,
            replaced: replaces,
        };
        Ok((invitation, link))
    }

    /// The pending user's link that works now, when it can be shown again;
    /// else (none works, or it was made before tokens were kept, or sealed
    /// under another instance key) a new one, which voids the old.
    async fn current_link(&self, actor: &Actor, user: &User) -> Result<Link> {
        if let Some(invitation) = self.store.live_invitation(user.id, self.now()).await?
            && let Some(token) = self.unseal(&invitation)
        {
            return Ok(Link {
                token,
                expires_at: invitation.expires_at,
                replaced: false,
            });
        }
        self.replace_link(actor, user).await
    }

    /// The token of a stored invitation, if it was kept and opens to the
    /// token whose hash the row is found by.
    fn unseal(&self, invitation: &Invitation) -> Option<Secret> {
        let sealed = invitation.sealed_token.as_deref()?;
        let token = self.cipher().ok()?.open(sealed).ok()?;
        (token::hash(&token) == invitation.token_hash).then(|| Secret::new(token))
    }

    /// A new link for a pending user; earlier ones stop working.
    async fn replace_link(&self, actor: &Actor, user: &User) -> Result<Link> {
        let (invitation, link) = self.new_invitation(actor, user.id, true)?;
        if !self
            .store
            .replace_invitation(&invitation, self.now())
            .await?
        {
            return Err(Error::invalid(
                "This user has accepted the invitation already.",
            ));
        }
        Ok(link)
    }

    /// Emails the link when `send` and email is set up, and says what happened.
    async fn deliver(
        &self,
        actor: &Actor,
        user: User,
        link: Link,
        send: bool,
        origin: &Origin,
    ) -> Invited {
        let accept_url = self.link(&format!("/signup?token={}", link.token.expose()));
        let email = user
            .email
            .clone()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let mut error = None;
        let mut email_sent = false;
        if send
            && self.mailer.is_configured()
            && let Some(to) = &user.email
        {
            let mail = InviteMail {
                accept_url: accept_url.clone(),
                inviter_name: actor.user.display_name(),
                inviter_email: actor
                    .user
                    .email
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            };
            match self.mailer.send_invite(to, &mail).await {
                Ok(()) => email_sent = true,
                Err(failure) => {
                    tracing::warn!(%failure, "invitation email not sent");
                    error = Some(format!(
                        "The invitation is saved, but the email could not be sent: {failure}"
                    ));
                }
            }
        }
        let detail = if email_sent {
            "email sent"
        } else {
            "link only"
        };
        self.audit(
            Some(&actor.user),
            "invitation.sent",
            Some(&user),
            detail,
            origin,
        )
        .await;
        Invited {
            email,
            user: Some(user),
            email_sent,
            accept_url: (!self.config.invite_links_email_only).then_some(accept_url),
            error,
            expires_at: Some(link.expires_at),
            new_link: link.replaced,
        }
    }

    /// A pending user, for the actions on one invitation.
    async fn pending_user(&self, actor: &Actor, id: UserId) -> Result<User> {
        actor.user.role.require_user_manager()?;
        match self.store.user_by_id(id).await? {
            Some(user) if user.is_pending() => Ok(user),
            Some(_) => Err(Error::invalid(
                "This user has accepted the invitation already.",
            )),
            None => Err(Error::not_found("There is no such user.")),
        }
    }

    /// "Resend invite": emails a pending user the link that works now (the
    /// same one as before, unless it cannot be shown again).
    pub async fn resend_invitation(
        &self,
        actor: &Actor,
        id: UserId,
        origin: &Origin,
    ) -> Result<Invited> {
        let user = self.pending_user(actor, id).await?;
        let link = self.current_link(actor, &user).await?;
        Ok(self.deliver(actor, user, link, true, origin).await)
    }

    /// "Copy invite link": the pending user's link that works now, without
    /// an email (a new one only when it cannot be shown again; the answer
    /// says so).
    pub async fn invite_link(&self, actor: &Actor, id: UserId, origin: &Origin) -> Result<Invited> {
        self.links_shown()?;
        let user = self.pending_user(actor, id).await?;
        let link = self.current_link(actor, &user).await?;
        Ok(self.deliver(actor, user, link, false, origin).await)
    }

    /// "Make a new link": the pending user's earlier links stop working and
    /// a new one is made, emailed when email is set up and shown unless
    /// links go by email only. For a link that was passed to the wrong
    /// person, or lost.
    pub async fn renew_invite_link(
        &self,
        actor: &Actor,
        id: UserId,
        origin: &Origin,
    ) -> Result<Invited> {
        let user = self.pending_user(actor, id).await?;
        if self.config.invite_links_email_only && !self.mailer.is_configured() {
            self.links_shown()?;
        }
        let link = self.replace_link(actor, &user).await?;
        self.audit(
            Some(&actor.user),
            "invitation.link_renewed",
            Some(&user),
            "earlier links void",
            origin,
        )
        .await;
        Ok(self.deliver(actor, user, link, true, origin).await)
    }

    fn links_shown(&self) -> Result<()> {
        if self.config.invite_links_email_only {
            return Err(Error::forbidden(
                "Invitation links are sent by email only on this instance (N8N_INVITE_LINKS_EMAIL_ONLY).",
            ));
        }
        Ok(())
    }

    /// Withdraws an invitation: the pending user is removed.
    pub async fn revoke_invitation(
        &self,
        actor: &Actor,
        id: UserId,
        origin: &Origin,
    ) -> Result<()> {
        let user = self.pending_user(actor, id).await?;
        if !self.store.delete_pending_user(id).await? {
            return Err(Error::invalid(
                "This user has accepted the invitation already.",
            ));
        }
        self.audit(
            Some(&actor.user),
            "invitation.revoked",
            Some(&user),
            "",
            origin,
        )
        .await;
        Ok(())
    }

    /// What an invitation link leads to, or why it leads nowhere.
    pub async fn resolve_invitation(&self, token: &str) -> Result<InvitationView> {
        self.user_management_enabled()?;
        if !token::is_well_formed(token) {
            return Err(Error::invalid(INVALID_INVITE_URL));
        }
        let Some((invitation, invitee, inviter)) =
            self.store.invitation(&token::hash(token)).await?
        else {
            return Err(Error::not_found(
                "This invitation link is not valid: it may have been withdrawn or replaced by a \
                 newer one. Ask the person who invited you to send a new one.",
            ));
        };
        if invitation.used_at.is_some() || !invitee.is_pending() {
            return Err(Error::invalid(ALREADY_ACCEPTED));
        }
        let inviter_name = inviter.as_ref().map_or_else(
            || "the person who invited you".to_owned(),
            User::display_name,
        );
        if invitation.expires_at <= self.now() {
            return Err(Error::invalid(format!(
                "This invitation has expired. Ask {inviter_name} to send a new one."
            )));
        }
        Ok(InvitationView {
            email: invitee
                .email
                .clone()
                .ok_or_else(|| Error::Internal("pending user without email".into()))?,
            inviter_first_name: inviter
                .as_ref()
                .map(|u| u.first_name.clone())
                .unwrap_or_default(),
            inviter_last_name: inviter
                .as_ref()
                .map(|u| u.last_name.clone())
                .unwrap_or_default(),
        })
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn accept_invitation(
        &self,
        token: &str,
        first_name: &str,
        last_name: &str,
        password: &Secret,
        origin: &Origin,
    ) -> Result<SignedIn> {
        self.resolve_invitation(token).await?;
        let first_name = Name::first(first_name)?;
        let last_name = Name::last(last_name)?;
        self.config.password_policy.check(password)?;
        let acceptance = Acceptance {
            first_name: first_name.as_str().to_owned(),
            last_name: last_name.as_str().to_owned(),
            password_hash: self.hasher.hash(password).await?,
            now: self.now(),
        };
        // Of several accepts of one link, exactly one gets the user.
        let Some(user) = self
            .store
            .accept_invitation(&token::hash(token), &acceptance)
            .await?
        else {
            return Err(Error::invalid(ALREADY_ACCEPTED));
        };
        self.audit(Some(&user), "invitation.accepted", Some(&user), "", origin)
            .await;
        self.start_session(user, origin).await
    }
}
