//! The mail port: what the use cases ask of email. The server implements it
//! with SMTP and Handlebars templates; the domain only knows that a message
//! went out or why it did not.

use async_trait::async_trait;

use crate::model::Email;

/// Why a message was not sent, in words for the person who asked for it
/// (the SMTP server's own reply where there is one).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

/// An invitation email's facts; the template decides the words.
#[derive(Clone, Debug)]
pub struct InviteMail {
    pub accept_url: String,
    pub inviter_name: String,
    pub inviter_email: String,
}

/// A password-reset email's facts.
#[derive(Clone, Debug)]
pub struct ResetMail {
    pub reset_url: String,
    pub first_name: String,
}

/// The facts of an email that confirms a new address.
#[derive(Clone, Debug)]
pub struct VerifyMail {
    pub verify_url: String,
    pub first_name: String,
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// False when no SMTP server is set up: links are then copied by hand.
    fn is_configured(&self) -> bool;
    async fn send_invite(&self, to: &Email, mail: &InviteMail) -> Result<(), MailError>;
    async fn send_password_reset(&self, to: &Email, mail: &ResetMail) -> Result<(), MailError>;
    async fn send_email_verification(&self, to: &Email, mail: &VerifyMail)
    -> Result<(), MailError>;
}

/// For instances without email.
#[derive(Debug, Default)]
pub struct NoMail;

#[async_trait]
impl Mailer for NoMail {
    fn is_configured(&self) -> bool {
        false
    }
    async fn send_invite(&self, _: &Email, _: &InviteMail) -> Result<(), MailError> {
        Err(MailError(
            "Email is not set up on this instance (N8N_EMAIL_MODE and N8N_SMTP_HOST).".into(),
        ))
    }
    async fn send_password_reset(&self, _: &Email, _: &ResetMail) -> Result<(), MailError> {
        Err(MailError(
            "Email is not set up on this instance (N8N_EMAIL_MODE and N8N_SMTP_HOST).".into(),
        ))
    }
    async fn send_email_verification(&self, _: &Email, _: &VerifyMail) -> Result<(), MailError> {
        Err(MailError(
            "Email is not set up on this instance (N8N_EMAIL_MODE and N8N_SMTP_HOST).".into(),
        ))
    }
}
