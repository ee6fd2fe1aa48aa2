//! Settings, read from the environment under n8n's documented names.
//!
//! Every variable may instead be given as `<NAME>_FILE`, a path whose contents
//! are the value (for secrets kept in files). A bad value stops start-up with
//! one line that names the setting; nothing falls back silently.
//! `docs/configuration.md` lists them all, in one table.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use usher_domain::{secret::Secret, service::SessionPolicy};
use usher_store::DbConfig;

/// The settings an operator controls. Test-only knobs live in
/// [`crate::Internals`], which nothing outside the process can set.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Public base URL for links, without a trailing slash.
    pub base_url: String,
    /// The path part of N8N_PATH (`""` or `/usher`): pages are served under
    /// it and every link carries it.
    pub base_path: String,
    /// `<N8N_USER_FOLDER>/.usher`
    pub data_folder: PathBuf,
    pub db: DbConfig,
    /// None: generated on first start and kept in the data folder.
    pub encryption_key: Option<Secret>,
    pub user_management_disabled: bool,
    pub sessions: SessionPolicy,
    pub cookie: CookieSettings,
    pub password_min_length: usize,
    /// How many reverse proxies in front may be trusted for X-Forwarded-For.
    pub proxy_hops: usize,
    pub mail: MailSettings,
    /// N8N_PUBLIC_API_DISABLED: no `/api/v1`, no API keys.
    pub public_api_disabled: bool,
    /// N8N_MFA_ENABLED: two-factor authentication can be set up.
    pub mfa_enabled: bool,
    /// N8N_ALLOWED_HOSTS (Usher's): host names besides the base URL's that
    /// requests may be addressed to; `*` allows any.
    pub allowed_hosts: Vec<String>,
}

/// Email: SMTP (optional) and the templates that replace the built-in ones.
#[derive(Clone, Debug, Default)]
pub struct MailSettings {
    /// None: no email; invitation links are copied by hand.
    pub smtp: Option<SmtpSettings>,
    /// N8N_UM_EMAIL_TEMPLATES_INVITE, read at start: (setting, contents).
    pub invite_template: Option<(String, String)>,
    /// N8N_UM_EMAIL_TEMPLATES_PWRESET, read at start.
    pub reset_template: Option<(String, String)>,
    pub invite_links_email_only: bool,
    pub invite_lifetime_hours: i64,
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    /// `address` or `Name <address>`.
    pub sender: String,
    /// Implicit TLS (port 465 style).
    pub ssl: bool,
    /// STARTTLS, required, when `ssl` is off.
    pub starttls: bool,
    pub oauth: Option<OAuthSettings>,
}

/// Two-legged OAuth with a service account (XOAUTH2).
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    pub service_client: String,
    pub private_key: Secret,
    pub token_url: String,
}

#[derive(Clone, Debug)]
pub struct CookieSettings {
    pub name: String,
    pub secure: bool,
    pub same_site: SameSite,
    /// N8N_AUTH_COOKIE_DOMAIN (Usher's): the parent domain the cookies are
    /// set for (`example.com`, without the leading dot), so that one sign-in
    /// reaches apps behind a proxy on its other hosts; None: host-only.
    pub domain: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// A setting with a bad value: `N8N_PORT: "abc" is not a port (1 to 65535).`
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct SettingsError {
    pub setting: String,
    pub message: String,
}

fn bad(setting: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        setting: setting.to_owned(),
        message: message.into(),
    }
}

/// Looks variables up, honouring `<NAME>_FILE`.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

impl<'a> Env<'a> {
    pub fn process() -> Env<'static> {
        Env {
            lookup: Box::new(|name| std::env::var(name).ok()),
        }
    }

    pub fn from_map(map: &'a HashMap<String, String>) -> Self {
        Env {
            lookup: Box::new(move |name| map.get(name).cloned()),
        }
    }

    /// The value of `name`, of `name_FILE`'s file, or None when neither is set
    /// (an empty value counts as set).
    pub fn get(&self, name: &str) -> Result<Option<String>, SettingsError> {
        if let Some(value) = (self.lookup)(name) {
            return Ok(Some(value));
        }
        let file_setting = format!("{name}_FILE");
        match (self.lookup)(&file_setting) {
            Some(path) => std::fs::read_to_string(&path)
                .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|e| bad(&file_setting, format!("cannot read {path}: {e}"))),
            None => Ok(None),
        }
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String, SettingsError> {
        Ok(self.get(name)?.unwrap_or_else(|| default.to_owned()))
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, SettingsError> {
        match self.get(name)? {
            None => Ok(default),
            Some(value) => parse_bool(&value).ok_or_else(|| {
                bad(
                    name,
                    format!("{value:?} is not a boolean (use true or false)."),
                )
            }),
        }
    }

    pub fn int(&self, name: &str, default: i64, range: (i64, i64)) -> Result<i64, SettingsError> {
        let Some(value) = self.get(name)? else {
            return Ok(default);
        };
        match value.trim().parse::<i64>() {
            Ok(n) if n >= range.0 && n <= range.1 => Ok(n),
            _ => Err(bad(
                name,
                format!(
                    "{value:?} is not a whole number from {} to {}.",
                    range.0, range.1
                ),
            )),
        }
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, SettingsError> {
        // 0 asks the system for any free port (the log says which).
        let port = env.int("N8N_PORT", 5678, (0, 65535))? as u16;
        let address = env.string("N8N_LISTEN_ADDRESS", "0.0.0.0")?;
        let address: IpAddr = address.trim().parse().map_err(|_| {
            bad(
                "N8N_LISTEN_ADDRESS",
                format!("{address:?} is not an IP address."),
            )
        })?;

        let base_path = normalise_path(&env.string("N8N_PATH", "/")?);
        let base_url = match env
            .get("N8N_EDITOR_BASE_URL")?
            .filter(|v| !v.trim().is_empty())
        {
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(bad(
                        "N8N_EDITOR_BASE_URL",
                        format!("{url:?} must start with http:// or https://."),
                    ));
                }
                url
            }
            None => {
                let protocol = env.string("N8N_PROTOCOL", "http")?.to_ascii_lowercase();
                if protocol != "http" && protocol != "https" {
                    return Err(bad(
                        "N8N_PROTOCOL",
                        format!("{protocol:?} must be http or https."),
                    ));
                }
                let host = env.string("N8N_HOST", "localhost")?;
                let port_part = match port {
                    80 | 443 => String::new(),
                    port => format!(":{port}"),
                };
                format!(
                    "{protocol}://{host}{port_part}{}",
                    base_path.trim_end_matches('/')
                )
            }
        };

        let user_folder = match env.get("N8N_USER_FOLDER")? {
            Some(folder) if !folder.is_empty() => PathBuf::from(folder),
            _ => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        let data_folder = user_folder.join(".usher");

        let db = match env.string("DB_TYPE", "sqlite")?.trim() {
            "sqlite" => DbConfig::Sqlite {
                path: data_folder.join("database.sqlite"),
            },
            "postgresdb" => DbConfig::Postgres {
                host: env.string("DB_POSTGRESDB_HOST", "localhost")?,
                port: env.int("DB_POSTGRESDB_PORT", 5432, (1, 65535))? as u16,
                database: env.string("DB_POSTGRESDB_DATABASE", "usher")?,
                user: env.string("DB_POSTGRESDB_USER", "postgres")?,
                password: Secret::new(env.string("DB_POSTGRESDB_PASSWORD", "")?),
                schema: env.string("DB_POSTGRESDB_SCHEMA", "public")?,
            },
            other => {
                return Err(bad(
                    "DB_TYPE",
                    format!("{other:?} is not supported (use sqlite or postgresdb)."),
                ));
            }
        };

        let encryption_key = env
            .get("N8N_ENCRYPTION_KEY")?
            .filter(|k| !k.is_empty())
            .map(Secret::new);

        let same_site = match env
            .string("N8N_SAMESITE_COOKIE", "lax")?
            .to_ascii_lowercase()
            .as_str()
        {
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            "none" => SameSite::None,
            other => {
                return Err(bad(
                    "N8N_SAMESITE_COOKIE",
                    format!("{other:?} must be strict, lax or none."),
                ));
            }
        };
        let secure = env.bool("N8N_SECURE_COOKIE", true)?;
        if same_site == SameSite::None && !secure {
            return Err(bad(
                "N8N_SAMESITE_COOKIE",
                "none needs N8N_SECURE_COOKIE=true (browsers drop such cookies otherwise).",
            ));
        }
        let cookie_name = env.string("N8N_AUTH_COOKIE_NAME", "n8n-auth")?;
        if cookie_name.is_empty()
            || !cookie_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad(
                "N8N_AUTH_COOKIE_NAME",
                format!("{cookie_name:?} is not a valid cookie name."),
            ));
        }

        let cookie_domain = cookie_domain(&env.string("N8N_AUTH_COOKIE_DOMAIN", "")?, &base_url)?;

        let lifetime = env.int("N8N_USER_MANAGEMENT_JWT_DURATION_HOURS", 168, (1, 24 * 365))?;
        let refresh = env.int(
            "N8N_USER_MANAGEMENT_JWT_REFRESH_TIMEOUT_HOURS",
            0,
            (-1, 24 * 365),
        )?;
        if refresh >= lifetime {
            return Err(bad(
                "N8N_USER_MANAGEMENT_JWT_REFRESH_TIMEOUT_HOURS",
                format!(
                    "{refresh} must be less than N8N_USER_MANAGEMENT_JWT_DURATION_HOURS ({lifetime})."
                ),
            ));
        }

        Ok(Settings {
            listen: SocketAddr::new(address, port),
            base_url,
            base_path: base_path.trim_end_matches('/').to_owned(),
            data_folder,
            db,
            encryption_key,
            user_management_disabled: env.bool("N8N_USER_MANAGEMENT_DISABLED", false)?,
            sessions: SessionPolicy::from_hours(lifetime, refresh),
            cookie: CookieSettings {
                name: cookie_name,
                secure,
                same_site,
                domain: cookie_domain,
            },
            password_min_length: env.int("N8N_PASSWORD_MIN_LENGTH", 8, (8, 64))? as usize,
            proxy_hops: env.int("N8N_PROXY_HOPS", 0, (0, 16))? as usize,
            mail: MailSettings::from_env(env)?,
            public_api_disabled: env.bool("N8N_PUBLIC_API_DISABLED", false)?,
            mfa_enabled: env.bool("N8N_MFA_ENABLED", true)?,
            allowed_hosts: env
                .string("N8N_ALLOWED_HOSTS", "")?
                .split(',')
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        })
    }
}

impl MailSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, SettingsError> {
        let template = |name: &str| -> Result<Option<(String, String)>, SettingsError> {
            match env.get(name)?.filter(|path| !path.trim().is_empty()) {
                None => Ok(None),
                Some(path) => std::fs::read_to_string(path.trim())
                    .map(|text| Some((name.to_owned(), text)))
                    .map_err(|e| bad(name, format!("cannot read the template {path}: {e}"))),
            }
        };
        Ok(MailSettings {
            smtp: SmtpSettings::from_env(env)?,
            invite_template: template("N8N_UM_EMAIL_TEMPLATES_INVITE")?,
            reset_template: template("N8N_UM_EMAIL_TEMPLATES_PWRESET")?,
            invite_links_email_only: env.bool("N8N_INVITE_LINKS_EMAIL_ONLY", false)?,
            invite_lifetime_hours: env.int("N8N_INVITE_LINK_EXPIRY_HOURS", 168, (1, 24 * 365))?,
        })
    }
}

impl SmtpSettings {
    /// None when email is off (N8N_EMAIL_MODE empty) or no host is set.
    /// The older documents' names (N8N_SMTP_EMAIL_MODE, N8N_SMTP_PASSWORD,
    /// `host:port` in N8N_SMTP_HOST) are accepted too.
    pub fn from_env(env: &Env<'_>) -> Result<Option<Self>, SettingsError> {
        let (mode_name, mode) = match env.get("N8N_EMAIL_MODE")? {
            Some(mode) => ("N8N_EMAIL_MODE", mode),
            None => (
                "N8N_SMTP_EMAIL_MODE",
                env.string("N8N_SMTP_EMAIL_MODE", "smtp")?,
            ),
        };
        match mode.trim() {
            "" => return Ok(None),
            "smtp" => {}
            other => {
                return Err(bad(
                    mode_name,
                    format!(
                        "{other:?} is not supported (use smtp, or leave it empty for no email)."
                    ),
                ));
            }
        }
        let Some(host) = env
            .get("N8N_SMTP_HOST")?
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
        else {
            return Ok(None);
        };
        // Older documents put the port in the host: `smtp.example.com:587`.
        let (host, port_in_host) = match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') && port.parse::<u16>().is_ok() => {
                (name.to_owned(), port.parse::<u16>().ok())
            }
            _ => (host, None),
        };
        let port = match env.get("N8N_SMTP_PORT")? {
            Some(_) => env.int("N8N_SMTP_PORT", 465, (1, 65535))? as u16,
            None => port_in_host.unwrap_or(465),
        };
        let user = env.string("N8N_SMTP_USER", "")?;
        let password = match env.get("N8N_SMTP_PASS")? {
            Some(pass) => pass,
            None => env.string("N8N_SMTP_PASSWORD", "")?,
        };
        let sender = match env.get("N8N_SMTP_SENDER")?.filter(|s| !s.trim().is_empty()) {
            Some(sender) => sender.trim().to_owned(),
            None if user.contains('@') => user.clone(),
            None => {
                return Err(bad(
                    "N8N_SMTP_SENDER",
                    "set the address emails come from, as address or Name <address>.",
                ));
            }
        };
        let client = env
            .get("N8N_SMTP_OAUTH_SERVICE_CLIENT")?
            .filter(|v| !v.trim().is_empty());
        let key = env
            .get("N8N_SMTP_OAUTH_PRIVATE_KEY")?
            .filter(|v| !v.trim().is_empty());
        let oauth = match (client, key) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "N8N_SMTP_OAUTH_PRIVATE_KEY",
                    "is needed with N8N_SMTP_OAUTH_SERVICE_CLIENT.",
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "N8N_SMTP_OAUTH_SERVICE_CLIENT",
                    "is needed with N8N_SMTP_OAUTH_PRIVATE_KEY.",
                ));
            }
            (Some(service_client), Some(key)) => {
                if user.is_empty() {
                    return Err(bad(
                        "N8N_SMTP_USER",
                        "name the mailbox the service account sends as (needed for OAuth).",
                    ));
                }
                Some(OAuthSettings {
                    service_client: service_client.trim().to_owned(),
                    // Keys pasted into one line keep their line breaks as `\n`.
                    private_key: Secret::new(key.replace("\\n", "\n")),
                    token_url: env.string(
                        "N8N_SMTP_OAUTH_TOKEN_URL",
                        "https://oauth2.googleapis.com/token",
                    )?,
                })
            }
        };
        Ok(Some(SmtpSettings {
            host,
            port,
            user,
            password: Secret::new(password),
            sender,
            ssl: env.bool("N8N_SMTP_SSL", true)?,
            starttls: env.bool("N8N_SMTP_STARTTLS", true)?,
            oauth,
        }))
    }
}

/// `usher/` → `/usher/`, `` → `/`.
fn normalise_path(path: &str) -> String {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        format!("/{trimmed}/")
    }
}

/// N8N_AUTH_COOKIE_DOMAIN: empty is none; else a domain name (a leading
/// dot is allowed and dropped) that is Usher's own host or a parent of it,
/// since a browser refuses a cookie for any other domain.
fn cookie_domain(text: &str, base_url: &str) -> Result<Option<String>, SettingsError> {
    let domain = text.trim().trim_start_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Ok(None);
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !domain.contains('.') || !domain.split('.').all(label_ok) {
        return Err(bad(
            "N8N_AUTH_COOKIE_DOMAIN",
            format!("{text:?} is not a domain name with a dot (example.com)."),
        ));
    }
    let host = url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    if host != domain && !host.ends_with(&format!(".{domain}")) {
        return Err(bad(
            "N8N_AUTH_COOKIE_DOMAIN",
            format!(
                "{domain} does not hold Usher's own host {host:?} (from the base URL), so \
                 browsers would refuse the cookie."
            ),
        ));
    }
    Ok(Some(domain))
}

/// The names Usher reads, for the warning about misspelt variables.
pub const KNOWN: &[&str] = &[
    "N8N_PORT",
    "N8N_LISTEN_ADDRESS",
    "N8N_HOST",
    "N8N_PROTOCOL",
    "N8N_PATH",
    "N8N_EDITOR_BASE_URL",
    "N8N_USER_FOLDER",
    "DB_TYPE",
    "DB_POSTGRESDB_HOST",
    "DB_POSTGRESDB_PORT",
    "DB_POSTGRESDB_DATABASE",
    "DB_POSTGRESDB_USER",
    "DB_POSTGRESDB_PASSWORD",
    "DB_POSTGRESDB_SCHEMA",
    "N8N_ENCRYPTION_KEY",
    "N8N_USER_MANAGEMENT_DISABLED",
    "N8N_USER_MANAGEMENT_JWT_DURATION_HOURS",
    "N8N_USER_MANAGEMENT_JWT_REFRESH_TIMEOUT_HOURS",
    "N8N_SECURE_COOKIE",
    "N8N_SAMESITE_COOKIE",
    "N8N_AUTH_COOKIE_NAME",
    "N8N_AUTH_COOKIE_DOMAIN",
    "N8N_PASSWORD_MIN_LENGTH",
    "N8N_PROXY_HOPS",
    "N8N_ALLOWED_HOSTS",
    "N8N_EMAIL_MODE",
    "N8N_SMTP_EMAIL_MODE",
    "N8N_SMTP_HOST",
    "N8N_SMTP_PORT",
    "N8N_SMTP_USER",
    "N8N_SMTP_PASS",
    "N8N_SMTP_PASSWORD",
    "N8N_SMTP_SENDER",
    "N8N_SMTP_SSL",
    "N8N_SMTP_STARTTLS",
    "N8N_SMTP_OAUTH_SERVICE_CLIENT",
    "N8N_SMTP_OAUTH_PRIVATE_KEY",
    "N8N_SMTP_OAUTH_TOKEN_URL",
    "N8N_UM_EMAIL_TEMPLATES_INVITE",
    "N8N_UM_EMAIL_TEMPLATES_PWRESET",
    "N8N_INVITE_LINKS_EMAIL_ONLY",
    "N8N_INVITE_LINK_EXPIRY_HOURS",
    "N8N_PUBLIC_API_DISABLED",
    "N8N_MFA_ENABLED",
    "N8N_LOG_LEVEL",
];

/// Variables that look like Usher's but are not read: most likely misspelt.
pub fn unknown_variables(names: impl Iterator<Item = String>) -> Vec<String> {
    names
        .filter(|name| name.starts_with("N8N_") || name.starts_with("DB_POSTGRESDB_"))
        .filter(|name| {
            let base = name.strip_suffix("_FILE").unwrap_or(name);
            !KNOWN.contains(&base) && !is_later_setting(base)
        })
        .collect()
}

/// Settings of features outside this list are read elsewhere (mail, MFA, API).
fn is_later_setting(name: &str) -> bool {
    [
        "N8N_UM_EMAIL_TEMPLATES_",
        "N8N_PUBLIC_API_SWAGGERUI_",
        "N8N_LOG_",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_env(&Env::from_map(&map))
    }

    #[test]
    fn defaults_listen_on_5678_with_sqlite_and_a_localhost_base_url() -> Result<(), SettingsError> {
        let s = settings(&[("N8N_USER_FOLDER", "/data")])?;
        assert_eq!(s.listen.to_string(), "0.0.0.0:5678");
        assert_eq!(s.base_url, "http://localhost:5678");
        assert!(
            matches!(s.db, DbConfig::Sqlite { ref path } if path == &PathBuf::from("/data/.usher/database.sqlite"))
        );
        assert_eq!(s.cookie.name, "n8n-auth");
        assert!(s.cookie.secure);
        Ok(())
    }

    #[test]
    fn the_cookie_domain_must_hold_usher_s_own_host() -> Result<(), SettingsError> {
        let base = ("N8N_EDITOR_BASE_URL", "https://auth.example.com");
        let s = settings(&[base, ("N8N_AUTH_COOKIE_DOMAIN", ".Example.com")])?;
        assert_eq!(s.cookie.domain.as_deref(), Some("example.com"));
        assert_eq!(settings(&[base])?.cookie.domain, None);
        for bad in ["other.com", "com", "exa mple.com", "-x.example.com"] {
            let error = settings(&[base, ("N8N_AUTH_COOKIE_DOMAIN", bad)]).err();
            assert_eq!(
                error.map(|e| e.setting).as_deref(),
                Some("N8N_AUTH_COOKIE_DOMAIN"),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_base_url_leaves_out_ports_80_and_443_and_carries_the_path() -> Result<(), SettingsError>
    {
        let s = settings(&[
            ("N8N_PROTOCOL", "https"),
            ("N8N_HOST", "usher.example.com"),
            ("N8N_PORT", "443"),
            ("N8N_PATH", "/team/"),
        ])?;
        assert_eq!(s.base_url, "https://usher.example.com/team");
        assert_eq!(s.base_path, "/team");
        let s = settings(&[("N8N_EDITOR_BASE_URL", "https://proxy.example.com/usher/")])?;
        assert_eq!(s.base_url, "https://proxy.example.com/usher");
        Ok(())
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        let message = |pairs: &[(&str, &str)]| {
            settings(pairs)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(message(&[("N8N_PORT", "70000")]).starts_with("N8N_PORT: "));
        assert!(message(&[("DB_TYPE", "mysql")]).starts_with("DB_TYPE: "));
        assert!(message(&[("N8N_SECURE_COOKIE", "maybe")]).starts_with("N8N_SECURE_COOKIE: "));
        assert!(
            message(&[("N8N_PASSWORD_MIN_LENGTH", "4")]).starts_with("N8N_PASSWORD_MIN_LENGTH: ")
        );
        assert!(
            message(&[("N8N_LISTEN_ADDRESS", "everywhere")]).starts_with("N8N_LISTEN_ADDRESS: ")
        );
    }

    #[test]
    fn secrets_can_come_from_a_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n")?;
        let s = settings(&[
            ("DB_TYPE", "postgresdb"),
            (
                "DB_POSTGRESDB_PASSWORD_FILE",
                path.to_str().unwrap_or_default(),
            ),
        ])?;
        match s.db {
            DbConfig::Postgres { password, .. } => assert_eq!(password.expose(), "s3cret"),
            DbConfig::Sqlite { .. } => panic!("expected postgres"),
        }
        let missing = settings(&[("N8N_ENCRYPTION_KEY_FILE", "/nonexistent/key")])
            .err()
            .map(|e| e.setting);
        assert_eq!(missing.as_deref(), Some("N8N_ENCRYPTION_KEY_FILE"));
        Ok(())
    }

    #[test]
    fn misspelt_variables_are_noticed() {
        let found = unknown_variables(
            [
                "N8N_PROT".to_owned(),
                "N8N_PORT".to_owned(),
                "N8N_SMTP_HOST".to_owned(),
                "PATH".to_owned(),
            ]
            .into_iter(),
        );
        assert_eq!(found, vec!["N8N_PROT".to_owned()]);
    }
}
