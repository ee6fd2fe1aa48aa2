//! The domain's error: what went wrong, in words a person understands.
//!
//! Each variant maps to one HTTP status in the server crate; the message is shown
//! as it is, so it must never carry internal detail. Internal failures keep
//! their cause for the log only.

use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// Bad input in one named field (`email`, `password`, …), so that a page
    /// can show the message beside that field. Answered like `Invalid`.
    #[error("{message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    /// Not signed in, or the credentials are wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts: try again after `retry_after` seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Two-factor authentication is on and no code came (n8n's code 998).
    #[error("{0}")]
    MfaRequired(String),
    /// A two-factor code that does not fit, when enrolling (n8n's code 997).
    #[error("{0}")]
    MfaCodeRejected(String),
    /// A service Usher depends on (the company directory) does not answer
    /// as it should; the message says what to do, without internal detail.
    #[error("{0}")]
    Unavailable(String),
    /// Something on our side failed; the cause is for the log, never for the user.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            message: message.into(),
        }
    }
    /// The field the error is about, if it is about one.
    pub fn field_name(&self) -> Option<&'static str> {
        match self {
            Self::InvalidField { field, .. } => Some(field),
            _ => None,
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    /// Refused until `seconds` have passed; the message says so.
    pub fn slow_down(seconds: u64) -> Self {
        Self::TooManyRequests {
            message: format!("Too many attempts. Please wait {seconds} seconds and try again."),
            retry_after: seconds,
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Backend(cause) => Self::Internal(cause),
        }
    }
}
