//! Where the database is. The password never reaches `Debug` output.

use std::{fmt, path::PathBuf};

use usher_domain::secret::Secret;

#[derive(Clone)]
pub enum DbConfig {
    Sqlite {
        path: PathBuf,
    },
    Postgres {
        host: String,
        port: u16,
        database: String,
        user: String,
        password: Secret,
        schema: String,
    },
}

impl DbConfig {
    /// The connection URL, with user and password percent-encoded.
    pub(crate) fn url(&self) -> String {
        match self {
            DbConfig::Sqlite { path } => format!("sqlite://{}?mode=rwc", path.display()),
            DbConfig::Postgres {
                host,
                port,
                database,
                user,
                password,
                ..
            } => {
                let credentials = if password.is_empty() {
                    encode(user)
                } else {
                    format!("{}:{}", encode(user), encode(password.expose()))
                };
                format!(
                    "postgres://{credentials}@{host}:{port}/{}",
                    encode(database)
                )
            }
        }
    }
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbConfig::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
            DbConfig::Postgres {
                host,
                port,
                database,
                user,
                schema,
                ..
            } => {
                write!(
                    f,
                    "postgres://{user}:***@{host}:{port}/{database} (schema {schema})"
                )
            }
        }
    }
}

impl fmt::Display for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_passwords_are_encoded_in_the_url_and_hidden_from_debug() {
        let config = DbConfig::Postgres {
            host: "db".into(),
            port: 5432,
            database: "usher".into(),
            user: "app".into(),
            password: Secret::new("p@ss:w/rd"),
            schema: "public".into(),
        };
        assert_eq!(config.url(), "postgres://app:p%40ss%3Aw%2Frd@db:5432/usher");
        assert!(!format!("{config:?}").contains("p@ss"));
    }
}
