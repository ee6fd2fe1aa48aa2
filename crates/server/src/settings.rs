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
}

#[derive(Clone, Debug)]
pub struct CookieSettings {
    pub name: String,
    pub secure: bool,
    pub same_site: SameSite,
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
            },
            password_min_length: env.int("N8N_PASSWORD_MIN_LENGTH", 8, (8, 64))? as usize,
            proxy_hops: env.int("N8N_PROXY_HOPS", 0, (0, 16))? as usize,
        })
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
    "N8N_PASSWORD_MIN_LENGTH",
    "N8N_PROXY_HOPS",
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
        "N8N_SMTP_",
        "N8N_EMAIL_MODE",
        "N8N_UM_EMAIL_TEMPLATES_",
        "N8N_INVITE_LINK",
        "N8N_MFA_",
        "N8N_PUBLIC_API_",
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
