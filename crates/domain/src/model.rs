//! Validated values and the records the use cases pass around.

use std::fmt;

use crate::{Error, Result, clock::Millis};

/// An id type: a UUID v7 made here, never by the database. Text becomes an
/// id once, where it arrives (a path, a form, a JSON body), through
/// [`FromStr`](std::str::FromStr); text that is no id names nothing there
/// is, so it is "not found", as an unknown id would be.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;

            fn from_str(text: &str) -> $crate::Result<Self> {
                uuid::Uuid::parse_str(text.trim())
                    .map(Self)
                    .map_err(|_| $crate::Error::not_found(concat!("There is no such ", $what, ".")))
            }
        }
    };
}
pub(crate) use id_type;

id_type!(
    /// A user's id.
    UserId,
    "user"
);

impl UserId {
    /// The id in `text` as it is (not trimmed), if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text).ok().map(Self)
    }
}

id_type!(
    /// An API key's id (the key's row; never the key itself).
    ApiKeyId,
    "API key"
);

/// An email address, trimmed and lower-cased, so uniqueness ignores case.
///
/// Valid is what the WHATWG HTML standard calls a "valid e-mail address"
/// (what a browser's `<input type=email>` accepts), with the domain in its
/// ASCII (IDNA) form: `ann@bücher.example` is kept as
/// `ann@xn--bcher-kva.example`. Quotes, commas, angle brackets, spaces and
/// control characters are refused, so an address is safe to put in a header,
/// a link or a page.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

/// RFC 5321's limit on a whole address.
const EMAIL_MAX: usize = 254;

impl Email {
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        Self::normalise(trimmed).map(Self).ok_or_else(|| {
            Error::field(
                "email",
                format!("'{}' is not a valid email address.", printable(trimmed)),
            )
        })
    }

    fn normalise(text: &str) -> Option<String> {
        let (local, domain) = text.split_once('@')?;
        let local_ok = !local.is_empty()
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b));
        if !local_ok {
            return None;
        }
        // UTS #46 processing: maps case and compatibility forms, refuses
        // what no registry would allow, and turns Unicode into Punycode.
        let domain = idna::domain_to_ascii_strict(domain).ok()?;
        let labels_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let email = format!("{}@{domain}", local.to_ascii_lowercase());
        (labels_ok && email.len() <= EMAIL_MAX).then_some(email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`: lower case, a Unicode domain in Punycode.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }

    /// What the address looks like to a reader (UTS #39's skeleton of the
    /// address with its domain in Unicode): two addresses with the same
    /// skeleton can be told apart only by a careful eye (`jоhn@` with a
    /// Cyrillic о, `rn` for `m`, `1` for `l`).
    pub fn skeleton(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let (unicode, _) = idna::domain_to_unicode(domain);
        let shown = format!("{local}@{unicode}");
        // Skeletons are made of case-sensitive prototypes ("0" becomes "O"),
        // and addresses are lower-cased: fold the case after mapping, or
        // `0wner@` would not meet `owner@`.
        unicode_security::confusable_detection::skeleton(&shown)
            .collect::<String>()
            .to_lowercase()
    }
}

/// Text for a message: control characters shown as `\u{…}`, so that a
/// refused value cannot break the line it is shown in.
fn printable(text: &str) -> String {
    text.chars()
        .take(100)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// [`Email::parse`], for request schemas that parse a field where it
/// arrives.
impl std::str::FromStr for Email {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

/// A first or last name: trimmed, at most 32 characters (n8n's limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub const MAX: usize = 32;

    pub fn first(text: &str) -> Result<Self> {
        Self::parse("firstName", "First name", text)
    }

    pub fn last(text: &str) -> Result<Self> {
        Self::parse("lastName", "Last name", text)
    }

    fn parse(field: &'static str, label: &str, text: &str) -> Result<Self> {
        let name = text.trim();
        if name.is_empty() {
            return Err(Error::field(field, format!("{label} is required.")));
        }
        if name.chars().count() > Self::MAX {
            return Err(Error::field(
                field,
                format!("{label} must be at most {} characters long.", Self::MAX),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::field(
                field,
                format!("{label} cannot contain control characters."),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The account types. n8n's names (`global:owner` …) are the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "global:owner",
            Role::Admin => "global:admin",
            Role::Member => "global:member",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "global:owner" | "owner" => Some(Role::Owner),
            "global:admin" | "admin" => Some(Role::Admin),
            "global:member" | "member" => Some(Role::Member),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Member => "Member",
        }
    }

    /// Owner and admins manage users.
    pub fn manages_users(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as stored. The owner exists from the first start as an empty shell
/// (no email, no password) that set-up fills in, as n8n does: that is what
/// makes "exactly one owner" a property of the data rather than of a check.
#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub email: Option<Email>,
    /// The address is known to reach them: set by an admin, proved by an
    /// invitation or a confirmation link, or given by the directory or a
    /// provider that verified it. False after a member changed it
    /// themselves and before they followed the link mailed to it. The
    /// OpenID provider's `email_verified` claim.
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    /// argon2id PHC string, or a bcrypt hash imported from n8n. None: pending.
    pub password_hash: Option<String>,
    /// Set by basic onboarding and forced resets: the next sign-in must change it.
    pub password_change_required: bool,
    pub mfa_enabled: bool,
    /// Who invited a pending user, and when (None for the owner and for
    /// users created directly).
    pub invited_by: Option<UserId>,
    pub invited_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// When they last used a session (stamped at most once a day, as
    /// n8n's `lastActiveAt`); None for never.
    pub last_active_at: Option<Millis>,
    /// The person's id in the company directory (LDAP): they sign in there,
    /// and their names and email come from there. None: a local account.
    pub ldap_id: Option<String>,
    /// Left the directory: cannot sign in, and has no sessions, keys or app
    /// grants.
    pub disabled: bool,
}

/// What a directory user has for a password hash: no password verifies
/// against it, and the account is not pending (it has one).
pub const DIRECTORY_PASSWORD: &str = "!ldap";

impl User {
    /// Signs in with the company directory, not a password kept here.
    pub fn is_ldap(&self) -> bool {
        self.ldap_id.is_some()
    }

    /// Invited but not yet signed up (the owner shell is not pending: it is unset).
    pub fn is_pending(&self) -> bool {
        self.password_hash.is_none() && self.email.is_some()
    }

    pub fn is_owner_shell(&self) -> bool {
        self.role == Role::Owner && self.email.is_none()
    }

    /// The name of the user's personal project (see
    /// [`crate::resources::personal_project_name`]).
    pub fn personal_project_name(&self) -> String {
        crate::resources::personal_project_name(
            &self.first_name,
            &self.last_name,
            self.email.as_ref().map(Email::as_str),
        )
    }

    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.first_name, self.last_name);
        let full = full.trim();
        if full.is_empty() {
            self.email
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default()
        } else {
            full.to_owned()
        }
    }
}

/// Where a request came from, for rate limits and the audit log.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: String,
    pub user_agent: String,
    /// The device cookie the browser presented, if any: proof that it
    /// signed in before (see `service::throttle`).
    pub device: Option<String>,
}

impl Origin {
    /// A command an operator runs on the server.
    pub fn command_line() -> Self {
        Self {
            ip: "command line".into(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_trimmed() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").map(|e| e.0).ok(),
            Some("ann@example.com".into())
        );
    }

    #[test]
    fn emails_without_a_domain_dot_or_at_are_refused() {
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn only_whatwg_valid_addresses_pass_and_their_domain_is_kept_in_ascii() {
        for bad in [
            "\"><svg/onload=alert(1)>@x.io",
            "a,b@evil.io",
            "<ann@example.com>",
            "ann@exa_mple.com",
            "ann@-example.com",
            "ann\u{0}@example.com",
            "ann@example.com\r\nBcc: x@y.io",
            "anné@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let email = Email::parse("Ann.O'Neil+team@Bücher.Example").map(|e| e.0);
        assert_eq!(
            email.ok().as_deref(),
            Some("ann.o'neil+team@xn--bcher-kva.example")
        );
    }

    #[test]
    fn a_refused_address_is_quoted_without_its_control_characters() {
        let message = Email::parse("a\u{0}b").err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("'a\\u{0}b' is not a valid email address.")
        );
    }

    #[test]
    fn look_alike_addresses_share_a_skeleton() {
        let skeleton = |text: &str| {
            Email::parse(text)
                .map(|e| e.skeleton())
                .unwrap_or_else(|e| panic!("{text}: {e}"))
        };
        // A Cyrillic letter in the name part is refused outright (WHATWG
        // allows ASCII only there); in the domain it is a look-alike.
        assert!(Email::parse("jоhn@example.com").is_err());
        assert_eq!(skeleton("ann@example.com"), skeleton("ann@exаmple.com"));
        assert_eq!(skeleton("mary@example.com"), skeleton("rnary@example.com"));
        assert_eq!(skeleton("owner@example.com"), skeleton("0wner@example.com"));
        assert_eq!(skeleton("owner@example.com"), skeleton("owner@example.c0m"));
        assert_ne!(skeleton("ann@example.com"), skeleton("anne@example.com"));
    }

    #[test]
    fn names_longer_than_32_characters_are_refused() {
        assert!(Name::first(&"x".repeat(32)).is_ok());
        let error = Name::first(&"x".repeat(33)).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("First name must be at most 32 characters long.")
        );
    }
}
