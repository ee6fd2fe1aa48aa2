//! Signing in with the company's directory (LDAP), with n8n's settings.
//!
//! [`LdapConfig`] holds n8n's fields under n8n's names, checked by
//! [`LdapConfig::check`]; it is stored as JSON in the settings table with
//! the binding admin's password sealed with the instance key. The directory
//! itself is a port, [`Directory`], that the server implements with ldap3:
//! the domain decides what to ask and what the answers mean, the adapter
//! speaks LDAP (filters, escaping, TLS).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, secret::Secret};

/// What `GET /rest/ldap/config` shows instead of the binding password, and
/// what a `PUT` may send back to keep the stored one.
pub const PASSWORD_PLACEHOLDER: &str = "__n8n_redacted__";

/// How the connection to the directory is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Security {
    /// Plain LDAP (port 389 usually): passwords cross the network readable.
    #[default]
    #[serde(rename = "none")]
    None,
    /// LDAP over TLS from the first byte (ldaps, port 636 usually).
    #[serde(rename = "tls")]
    Tls,
    /// Plain LDAP upgraded with StartTLS before anything else is said.
    #[serde(rename = "startTls")]
    StartTls,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Tls => "tls",
            Self::StartTls => "startTls",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "tls" => Some(Self::Tls),
            "startTls" => Some(Self::StartTls),
            _ => None,
        }
    }
}

/// n8n's LDAP settings, under n8n's names. `binding_admin_password` is the
/// password as typed (in requests) or sealed (as stored).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct LdapConfig {
    pub login_enabled: bool,
    pub login_label: String,
    pub connection_url: String,
    pub allow_unauthorized_certs: bool,
    pub connection_security: Security,
    pub connection_port: u32,
    pub base_dn: String,
    pub binding_admin_dn: String,
    pub binding_admin_password: String,
    pub first_name_attribute: String,
    pub last_name_attribute: String,
    pub email_attribute: String,
    pub login_id_attribute: String,
    pub ldap_id_attribute: String,
    pub user_filter: String,
    pub synchronization_enabled: bool,
    /// Minutes between synchronisations.
    pub synchronization_interval: u32,
    /// Entries per page of a search; 0: no paging.
    pub search_page_size: u32,
    /// Seconds a connection or a search may take.
    pub search_timeout: u32,
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("login_enabled", &self.login_enabled)
            .field("connection_url", &self.connection_url)
            .field("connection_security", &self.connection_security)
            .field("connection_port", &self.connection_port)
            .field("base_dn", &self.base_dn)
            .field("binding_admin_dn", &self.binding_admin_dn)
            .field("binding_admin_password", &"***")
            .finish_non_exhaustive()
    }
}

/// n8n's defaults.
impl Default for LdapConfig {
    fn default() -> Self {
        Self {
            login_enabled: false,
            login_label: String::new(),
            connection_url: String::new(),
            allow_unauthorized_certs: false,
            connection_security: Security::None,
            connection_port: 389,
            base_dn: String::new(),
            binding_admin_dn: String::new(),
            binding_admin_password: String::new(),
            first_name_attribute: String::new(),
            last_name_attribute: String::new(),
            email_attribute: String::new(),
            login_id_attribute: String::new(),
            ldap_id_attribute: String::new(),
            user_filter: String::new(),
            synchronization_enabled: false,
            synchronization_interval: 60,
            search_page_size: 0,
            search_timeout: 60,
        }
    }
}

/// The warning the settings carry while the connection is plain LDAP.
pub const PLAIN_LDAP_WARNING: &str = "connectionSecurity is none: the binding admin's password \
     and the password of everyone who signs in cross the network unencrypted, readable by anyone \
     on the way. Use tls (ldaps, port 636) or startTls.";

/// The longest text a field takes (a DN, a filter).
const FIELD_MAX: usize = 2000;

impl LdapConfig {
    /// Trims the text fields (what a form or script sends with stray
    /// spaces), keeping the password as typed.
    pub fn trimmed(mut self) -> Self {
        for field in [
            &mut self.login_label,
            &mut self.connection_url,
            &mut self.base_dn,
            &mut self.binding_admin_dn,
            &mut self.first_name_attribute,
            &mut self.last_name_attribute,
            &mut self.email_attribute,
            &mut self.login_id_attribute,
            &mut self.ldap_id_attribute,
            &mut self.user_filter,
        ] {
            *field = field.trim().to_owned();
        }
        self
    }

    /// Every problem with these settings, each with the field it is about,
    /// in the form's order. `filter_ok` says whether the directory adapter
    /// can read a filter.
    pub fn problems(&self, filter_ok: &dyn Fn(&str) -> bool) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        let mut add = |field: &'static str, message: String| found.push((field, message));
        for (field, value) in [
            ("loginLabel", &self.login_label),
            ("connectionUrl", &self.connection_url),
            ("baseDn", &self.base_dn),
            ("bindingAdminDn", &self.binding_admin_dn),
            ("userFilter", &self.user_filter),
        ] {
            if value.chars().count() > FIELD_MAX || value.chars().any(char::is_control) {
                add(
                    field,
                    format!(
                        "{field} must be at most {FIELD_MAX} characters, without control characters."
                    ),
                );
            }
        }
        if self.login_label.chars().count() > 100 {
            add(
                "loginLabel",
                "loginLabel must be at most 100 characters long.".into(),
            );
        }
        // Fields needed only once LDAP is in use: a draft may be saved
        // with them empty while sign-in and synchronisation are off.
        let in_use = self.login_enabled || self.synchronization_enabled;
        if self.connection_url.is_empty() {
            if in_use {
                add(
                    "connectionUrl",
                    "connectionUrl is required: the directory server's host name, such as ldap.example.com."
                        .into(),
                );
            }
        } else if !is_host(&self.connection_url) {
            add(
                "connectionUrl",
                format!(
                    "connectionUrl must be the server's host name or IP address alone (such as ldap.example.com), \
                     not '{}': the port and the security are fields of their own.",
                    self.connection_url.chars().take(100).collect::<String>()
                ),
            );
        }
        if !(1..=65535).contains(&self.connection_port) {
            add(
                "connectionPort",
                "connectionPort must be a port number from 1 to 65535 (389 for LDAP and StartTLS, 636 for TLS)."
                    .into(),
            );
        }
        if self.base_dn.is_empty() {
            if in_use {
                add(
                    "baseDn",
                    "baseDn is required: where people are searched for, such as ou=people,dc=example,dc=com."
                        .into(),
                );
            }
        } else if !looks_like_dn(&self.base_dn) {
            add(
                "baseDn",
                "baseDn must be a distinguished name, such as ou=people,dc=example,dc=com.".into(),
            );
        }
        if !self.binding_admin_dn.is_empty() && !looks_like_dn(&self.binding_admin_dn) {
            add(
                "bindingAdminDn",
                "bindingAdminDn must be a distinguished name, such as cn=admin,dc=example,dc=com."
                    .into(),
            );
        }
        if in_use && self.binding_admin_dn.is_empty() {
            add(
                "bindingAdminDn",
                "bindingAdminDn is required: the account Usher searches the directory with.".into(),
            );
        }
        for (field, value, example) in [
            (
                "firstNameAttribute",
                &self.first_name_attribute,
                "givenName",
            ),
            ("lastNameAttribute", &self.last_name_attribute, "sn"),
            ("emailAttribute", &self.email_attribute, "mail"),
            ("loginIdAttribute", &self.login_id_attribute, "uid"),
            ("ldapIdAttribute", &self.ldap_id_attribute, "entryUUID"),
        ] {
            if value.is_empty() {
                if in_use {
                    add(
                        field,
                        format!("{field} is required: the attribute's name, such as {example}."),
                    );
                }
            } else if !is_attribute(value) {
                add(
                    field,
                    format!(
                        "{field} must be one attribute's name (letters, digits and hyphens, such as {example})."
                    ),
                );
            }
        }
        if !self.user_filter.is_empty() && !filter_ok(&self.user_filter) {
            add(
                "userFilter",
                "userFilter must be an LDAP filter in parentheses, such as (objectClass=person), or empty."
                    .into(),
            );
        }
        if !(1..=100_000).contains(&self.synchronization_interval) {
            add(
                "synchronizationInterval",
                "synchronizationInterval must be a number of minutes from 1 to 100000.".into(),
            );
        }
        if self.search_page_size > 100_000 {
            add(
                "searchPageSize",
                "searchPageSize must be from 0 (no paging) to 100000.".into(),
            );
        }
        if !(1..=3600).contains(&self.search_timeout) {
            add(
                "searchTimeout",
                "searchTimeout must be a number of seconds from 1 to 3600.".into(),
            );
        }
        found
    }

    /// [`Self::problems`] as the domain's error: the first, on its field.
    pub fn check(&self, filter_ok: &dyn Fn(&str) -> bool) -> Result<()> {
        match self.problems(filter_ok).into_iter().next() {
            Some((field, message)) => Err(Error::field(field, message)),
            None => Ok(()),
        }
    }

    /// What is allowed but unsafe in these settings, in words for whoever
    /// sets them up: the settings page and `GET /rest/ldap/config` show it.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut found = Vec::new();
        if self.connection_security == Security::None {
            found.push(PLAIN_LDAP_WARNING);
        }
        found
    }

    /// The attributes a search asks for.
    pub fn attributes(&self) -> Vec<String> {
        [
            &self.first_name_attribute,
            &self.last_name_attribute,
            &self.email_attribute,
            &self.login_id_attribute,
            &self.ldap_id_attribute,
        ]
        .into_iter()
        .filter(|a| !a.is_empty())
        .cloned()
        .collect()
    }
}

/// A host name or an IP address, nothing more (no scheme, port or path).
fn is_host(text: &str) -> bool {
    if text.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    if bare.is_some_and(|t| t.parse::<std::net::Ipv6Addr>().is_ok()) {
        return true;
    }
    text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `attr=value` parts separated by commas (what every DN is); the server
/// says the rest.
fn looks_like_dn(text: &str) -> bool {
    text.split(',')
        .next()
        .and_then(|first| first.split_once('='))
        .is_some_and(|(attr, value)| is_attribute(attr.trim()) && !value.trim().is_empty())
}

/// An attribute description: a name (letters, digits, hyphens) or an OID.
fn is_attribute(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 100
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b';')
}

/// One person as the directory describes them, with the values of the
/// attributes asked for (first value of each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub ldap_id: String,
    pub login_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// Why the directory did not answer as hoped, in words for the person who
/// set it up (never the binding password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error(
        "Usher cannot reach the directory server at {0}: check connectionUrl and connectionPort, and that the server is running."
    )]
    Unreachable(String),
    #[error(
        "The TLS connection to the directory server failed: {0}. Check connectionSecurity and the port; for a self-signed certificate, turn on allowUnauthorizedCerts."
    )]
    Tls(String),
    #[error(
        "The directory server refused the binding admin's DN or password (bindingAdminDn, bindingAdminPassword)."
    )]
    BindRefused,
    #[error("The directory has no entry at the base DN {0}: check baseDn.")]
    BaseDnNotFound(String),
    #[error(
        "The base DN {0} holds no entries that match the user filter and have the login ID attribute: check baseDn, userFilter and loginIdAttribute."
    )]
    BaseDnEmpty(String),
    #[error("The directory server did not answer within searchTimeout ({0} seconds).")]
    Timeout(u32),
    #[error("The directory server answered with an error: {0}")]
    Other(String),
}

/// What the directory adapter needs to talk to the server: the settings with
/// the binding password opened.
#[derive(Clone, Debug)]
pub struct Connection {
    pub config: LdapConfig,
    pub admin_password: Secret,
}

/// The directory port.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Whether the adapter can read `filter` (a user filter).
    fn filter_ok(&self, filter: &str) -> bool;
    /// Connects, binds as the binding admin and looks at the base DN: that
    /// it exists and holds at least one person.
    async fn test(&self, connection: &Connection) -> Result<(), DirectoryError>;
    /// The people (matching the user filter) whose login ID or email is
    /// `login`, searched as the binding admin.
    async fn find_login(
        &self,
        connection: &Connection,
        login: &str,
    ) -> Result<Vec<Entry>, DirectoryError>;
    /// Everyone matching the user filter who has a login ID.
    async fn everyone(&self, connection: &Connection) -> Result<Vec<Entry>, DirectoryError>;
    /// Whether `password` is `dn`'s (a bind as them). Never called with an
    /// empty password.
    async fn check_password(
        &self,
        connection: &Connection,
        dn: &str,
        password: &Secret,
    ) -> Result<bool, DirectoryError>;
}

/// For a domain built without a directory adapter.
#[derive(Debug, Default)]
pub struct NoDirectory;

#[async_trait]
impl Directory for NoDirectory {
    fn filter_ok(&self, filter: &str) -> bool {
        filter.starts_with('(') && filter.ends_with(')')
    }
    async fn test(&self, _: &Connection) -> Result<(), DirectoryError> {
        Err(no_directory())
    }
    async fn find_login(&self, _: &Connection, _: &str) -> Result<Vec<Entry>, DirectoryError> {
        Err(no_directory())
    }
    async fn everyone(&self, _: &Connection) -> Result<Vec<Entry>, DirectoryError> {
        Err(no_directory())
    }
    async fn check_password(
        &self,
        _: &Connection,
        _: &str,
        _: &Secret,
    ) -> Result<bool, DirectoryError> {
        Err(no_directory())
    }
}

fn no_directory() -> DirectoryError {
    DirectoryError::Other("this build of Usher has no LDAP client".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parens(filter: &str) -> bool {
        filter.starts_with('(') && filter.ends_with(')')
    }

    fn ready() -> LdapConfig {
        LdapConfig {
            login_enabled: true,
            connection_url: "ldap.example.com".into(),
            base_dn: "ou=people,dc=example,dc=com".into(),
            binding_admin_dn: "cn=admin,dc=example,dc=com".into(),
            first_name_attribute: "givenName".into(),
            last_name_attribute: "sn".into(),
            email_attribute: "mail".into(),
            login_id_attribute: "uid".into(),
            ldap_id_attribute: "entryUUID".into(),
            ..LdapConfig::default()
        }
    }

    #[test]
    fn a_complete_configuration_passes_and_an_empty_draft_too() {
        assert!(ready().problems(&parens).is_empty());
        assert!(LdapConfig::default().problems(&parens).is_empty());
    }

    #[test]
    fn each_problem_names_its_field() {
        let config = LdapConfig {
            connection_url: "ldap://ldap.example.com:389".into(),
            connection_port: 0,
            base_dn: "people".into(),
            email_attribute: "mail)(uid=*".into(),
            user_filter: "objectClass=person".into(),
            search_timeout: 0,
            ..ready()
        };
        let fields: Vec<_> = config.problems(&parens).into_iter().map(|p| p.0).collect();
        assert_eq!(
            fields,
            [
                "connectionUrl",
                "connectionPort",
                "baseDn",
                "emailAttribute",
                "userFilter",
                "searchTimeout"
            ]
        );
    }

    #[test]
    fn in_use_settings_need_the_server_and_attributes() {
        let config = LdapConfig {
            login_enabled: true,
            ..LdapConfig::default()
        };
        let fields: Vec<_> = config.problems(&parens).into_iter().map(|p| p.0).collect();
        assert!(fields.contains(&"connectionUrl"));
        assert!(fields.contains(&"baseDn"));
        assert!(fields.contains(&"loginIdAttribute"));
    }

    #[test]
    fn plain_ldap_is_warned_about_and_tls_is_not() {
        assert_eq!(ready().warnings(), [PLAIN_LDAP_WARNING]);
        for security in [Security::Tls, Security::StartTls] {
            let config = LdapConfig {
                connection_security: security,
                ..ready()
            };
            assert!(config.warnings().is_empty(), "{security:?}");
        }
    }

    #[test]
    fn the_password_never_reaches_debug_output() {
        let config = LdapConfig {
            binding_admin_password: "s3cret".into(),
            ..ready()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
