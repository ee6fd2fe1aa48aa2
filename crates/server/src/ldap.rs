//! The company directory (the domain's `Directory` port) over LDAP, with
//! ldap3: plain, TLS (ldaps) or StartTLS on rustls with ring, the
//! certificate checked against the system's roots unless
//! `allowUnauthorizedCerts` says not to.
//!
//! Every value typed by a person goes into a filter through ldap3's
//! `ldap_escape`, so a login ID such as `*)(uid=*` stays a value. A bind
//! with an empty password is never made: LDAP calls it an unauthenticated
//! bind, and many servers (Active Directory among them) answer it with
//! success.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry,
    adapters::{Adapter, EntriesOnly, PagedResults},
};
use usher_domain::{
    ldap::{Connection, Directory, DirectoryError, Entry, LdapConfig, Security},
    secret::Secret,
};

/// LDAP result codes this adapter tells apart (RFC 4511, appendix A).
const NO_SUCH_OBJECT: u32 = 32;
const INVALID_CREDENTIALS: u32 = 49;
const SIZE_LIMIT_EXCEEDED: u32 = 4;

#[derive(Debug, Default)]
pub struct LdapDirectory;

pub fn directory() -> Arc<dyn Directory> {
    Arc::new(LdapDirectory)
}

#[async_trait]
impl Directory for LdapDirectory {
    fn filter_ok(&self, filter: &str) -> bool {
        filter.starts_with('(') && ldap3::parse_filter(filter).is_ok()
    }

    async fn test(&self, connection: &Connection) -> Result<(), DirectoryError> {
        let config = &connection.config;
        let mut ldap = admin(connection).await?;
        // The base DN itself, then one person under it.
        let timeout = timeout(config);
        let base = ldap
            .with_timeout(timeout)
            .search(&config.base_dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| failure(e, config))?;
        if base.1.rc == NO_SUCH_OBJECT {
            return Err(DirectoryError::BaseDnNotFound(config.base_dn.clone()));
        }
        base.success().map_err(|e| failure(e, config))?;
        let filter = everyone_filter(config);
        let mut stream = ldap
            .with_timeout(timeout)
            .with_search_options(ldap3::SearchOptions::new().sizelimit(1))
            .streaming_search_with(
                EntriesOnly::new(),
                &config.base_dn,
                Scope::Subtree,
                &filter,
                vec!["1.1"],
            )
            .await
            .map_err(|e| failure(e, config))?;
        let mut found = false;
        while stream
            .next()
            .await
            .map_err(|e| failure(e, config))?
            .is_some()
        {
            found = true;
        }
        let result = stream.finish().await;
        if !found {
            if result.rc == NO_SUCH_OBJECT {
                return Err(DirectoryError::BaseDnNotFound(config.base_dn.clone()));
            }
            return Err(DirectoryError::BaseDnEmpty(config.base_dn.clone()));
        }
        if result.rc != 0 && result.rc != SIZE_LIMIT_EXCEEDED {
            return Err(failure(LdapError::from(result), config));
        }
        let _ = ldap.unbind().await;
        Ok(())
    }

    async fn find_login(
        &self,
        connection: &Connection,
        login: &str,
    ) -> Result<Vec<Entry>, DirectoryError> {
        let config = &connection.config;
        let value = ldap3::ldap_escape(login);
        let mut wanted = format!("({}={value})", config.login_id_attribute);
        if !config.email_attribute.is_empty() && config.email_attribute != config.login_id_attribute
        {
            wanted = format!("(|{wanted}({}={value}))", config.email_attribute);
        }
        let filter = format!("(&{wanted}{})", config.user_filter);
        let mut ldap = admin(connection).await?;
        // Two are enough to know that the login is not one person's.
        let entries = search(&mut ldap, config, &filter, Some(2)).await?;
        let _ = ldap.unbind().await;
        Ok(entries)
    }

    async fn everyone(&self, connection: &Connection) -> Result<Vec<Entry>, DirectoryError> {
        let config = &connection.config;
        let mut ldap = admin(connection).await?;
        let entries = search(&mut ldap, config, &everyone_filter(config), None).await?;
        let _ = ldap.unbind().await;
        Ok(entries)
    }

    async fn check_password(
        &self,
        connection: &Connection,
        dn: &str,
        password: &Secret,
    ) -> Result<bool, DirectoryError> {
        if password.is_empty() || dn.is_empty() {
            return Ok(false);
        }
        let config = &connection.config;
        let mut ldap = connect(config).await?;
        let result = ldap
            .with_timeout(timeout(config))
            .simple_bind(dn, password.expose())
            .await
            .map_err(|e| failure(e, config))?;
        let _ = ldap.unbind().await;
        match result.rc {
            0 => Ok(true),
            // A DN that does not exist is a wrong password too (and some
            // servers say so with 32 rather than 49).
            INVALID_CREDENTIALS | NO_SUCH_OBJECT => Ok(false),
            _ => Err(failure(LdapError::from(result), config)),
        }
    }
}

/// Everyone with a login ID, within the user filter.
fn everyone_filter(config: &LdapConfig) -> String {
    format!("(&({}=*){})", config.login_id_attribute, config.user_filter)
}

fn timeout(config: &LdapConfig) -> Duration {
    Duration::from_secs(u64::from(config.search_timeout.max(1)))
}

fn address(config: &LdapConfig) -> String {
    let scheme = match config.connection_security {
        Security::Tls => "ldaps",
        Security::None | Security::StartTls => "ldap",
    };
    format!(
        "{scheme}://{}:{}",
        config.connection_url, config.connection_port
    )
}

/// A connection, with TLS as the settings say, driven on its own task.
async fn connect(config: &LdapConfig) -> Result<Ldap, DirectoryError> {
    let settings = LdapConnSettings::new()
        .set_conn_timeout(timeout(config))
        .set_starttls(config.connection_security == Security::StartTls)
        .set_no_tls_verify(config.allow_unauthorized_certs);
    let url = address(config);
    let (conn, ldap) = match tokio::time::timeout(
        timeout(config) + Duration::from_secs(1),
        LdapConnAsync::with_settings(settings, &url),
    )
    .await
    {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => return Err(failure(error, config)),
        Err(_) => return Err(DirectoryError::Timeout(config.search_timeout)),
    };
    tokio::spawn(async move {
        if let Err(error) = conn.drive().await {
            tracing::debug!(%error, "LDAP connection ended");
        }
    });
    Ok(ldap)
}

/// A connection bound as the binding admin (anonymous when no admin DN is
/// set).
async fn admin(connection: &Connection) -> Result<Ldap, DirectoryError> {
    let config = &connection.config;
    let mut ldap = connect(config).await?;
    if config.binding_admin_dn.is_empty() {
        return Ok(ldap);
    }
    if connection.admin_password.is_empty() {
        return Err(DirectoryError::BindRefused);
    }
    let result = ldap
        .with_timeout(timeout(config))
        .simple_bind(&config.binding_admin_dn, connection.admin_password.expose())
        .await
        .map_err(|e| failure(e, config))?;
    match result.rc {
        0 => Ok(ldap),
        INVALID_CREDENTIALS | NO_SUCH_OBJECT => Err(DirectoryError::BindRefused),
        _ => Err(failure(LdapError::from(result), config)),
    }
}

/// A subtree search under the base DN, in pages when `searchPageSize` asks
/// for them; `limit` entries at most.
async fn search(
    ldap: &mut Ldap,
    config: &LdapConfig,
    filter: &str,
    limit: Option<usize>,
) -> Result<Vec<Entry>, DirectoryError> {
    let attributes = config.attributes();
    let mut adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
        vec![Box::new(EntriesOnly::new())];
    if config.search_page_size > 0 {
        let size = i32::try_from(config.search_page_size).unwrap_or(i32::MAX);
        adapters.push(Box::new(PagedResults::new(size)));
    }
    let mut options = ldap3::SearchOptions::new();
    if let Some(limit) = limit {
        options = options.sizelimit(i32::try_from(limit).unwrap_or(i32::MAX));
    }
    let mut stream = ldap
        .with_timeout(timeout(config))
        .with_search_options(options)
        .streaming_search_with(
            adapters,
            &config.base_dn,
            Scope::Subtree,
            filter,
            attributes,
        )
        .await
        .map_err(|e| failure(e, config))?;
    let mut entries = Vec::new();
    while let Some(found) = stream.next().await.map_err(|e| failure(e, config))? {
        entries.push(entry(SearchEntry::construct(found), config));
    }
    let result = stream.finish().await;
    match result.rc {
        0 => Ok(entries),
        // The limit asked for was reached: that is all this search needs.
        SIZE_LIMIT_EXCEEDED if limit.is_some() => Ok(entries),
        NO_SUCH_OBJECT => Err(DirectoryError::BaseDnNotFound(config.base_dn.clone())),
        _ => Err(failure(LdapError::from(result), config)),
    }
}

/// The first value of each attribute asked for; the ldap id as
/// [`ldap_id`] gives it.
fn entry(found: SearchEntry, config: &LdapConfig) -> Entry {
    let text = |name: &str| -> String {
        if name.is_empty() {
            return String::new();
        }
        let key = |map_key: &String| map_key.eq_ignore_ascii_case(name);
        if let Some(values) = found.attrs.iter().find(|(k, _)| key(k)).map(|(_, v)| v) {
            return values.first().cloned().unwrap_or_default();
        }
        found
            .bin_attrs
            .iter()
            .find(|(k, _)| key(k))
            .and_then(|(_, v)| v.first())
            .map(hex::encode)
            .unwrap_or_default()
    };
    Entry {
        dn: found.dn.clone(),
        ldap_id: ldap_id(&found, &config.ldap_id_attribute),
        login_id: text(&config.login_id_attribute),
        email: text(&config.email_attribute),
        first_name: text(&config.first_name_attribute),
        last_name: text(&config.last_name_attribute),
    }
}

/// The entry's id as Usher keeps it: the text of the first value, or its
/// bytes as lower-case hex when the id is binary. ldap3 puts a value among
/// the text attributes whenever its bytes happen to be valid UTF-8, which
/// an Active Directory objectGUID's sometimes are; so an objectGUID is
/// always hex, and so is any value with a control character (a NUL byte,
/// which PostgreSQL refuses in text, among them), whichever map it is in.
fn ldap_id(found: &SearchEntry, name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let key = |map_key: &String| map_key.eq_ignore_ascii_case(name);
    let binary = name.eq_ignore_ascii_case("objectGUID");
    if let Some(value) = found
        .attrs
        .iter()
        .find(|(k, _)| key(k))
        .and_then(|(_, v)| v.first())
    {
        return if binary || value.chars().any(char::is_control) {
            hex::encode(value.as_bytes())
        } else {
            value.clone()
        };
    }
    found
        .bin_attrs
        .iter()
        .find(|(k, _)| key(k))
        .and_then(|(_, v)| v.first())
        .map(hex::encode)
        .unwrap_or_default()
}

/// ldap3's error as the domain's, in words for whoever set the directory up.
fn failure(error: LdapError, config: &LdapConfig) -> DirectoryError {
    let place = format!("{}:{}", config.connection_url, config.connection_port);
    match error {
        LdapError::Timeout { .. } => DirectoryError::Timeout(config.search_timeout),
        LdapError::Rustls { source } => DirectoryError::Tls(source.to_string()),
        LdapError::DNSName { source } => DirectoryError::Tls(source.to_string()),
        LdapError::Io { source } => {
            // rustls reports a refused certificate as an I/O error that
            // carries its own.
            if let Some(tls) = source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return DirectoryError::Tls(tls.to_string());
            }
            if matches!(
                source.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) && config.connection_security != Security::None
            {
                return DirectoryError::Tls(source.to_string());
            }
            DirectoryError::Unreachable(format!("{place} ({source})"))
        }
        LdapError::LdapResult { result } => match result.rc {
            INVALID_CREDENTIALS => DirectoryError::BindRefused,
            NO_SUCH_OBJECT => DirectoryError::BaseDnNotFound(config.base_dn.clone()),
            // StartTLS refused by the server (protocolError, unavailable).
            2 | 52 if config.connection_security == Security::StartTls => DirectoryError::Tls(
                format!("the server refused StartTLS ({})", result_text(&result)),
            ),
            _ => DirectoryError::Other(result_text(&result)),
        },
        LdapError::FilterParsing => {
            DirectoryError::Other("the user filter cannot be read as an LDAP filter".into())
        }
        LdapError::EndOfStream | LdapError::ResultRecv { .. } | LdapError::OpSend { .. } => {
            DirectoryError::Unreachable(format!("{place} (the connection was closed)"))
        }
        other => DirectoryError::Other(other.to_string()),
    }
}

fn result_text(result: &ldap3::LdapResult) -> String {
    if result.text.is_empty() {
        format!("result code {}", result.rc)
    } else {
        format!("result code {}: {}", result.rc, result.text)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn found(attrs: &[(&str, &str)], bin_attrs: &[(&str, &[u8])]) -> SearchEntry {
        SearchEntry {
            dn: "cn=ann,dc=example,dc=org".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
                .collect::<HashMap<_, _>>(),
            bin_attrs: bin_attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), vec![v.to_vec()]))
                .collect::<HashMap<_, _>>(),
        }
    }

    #[test]
    fn an_object_guid_is_hex_even_when_its_bytes_are_valid_utf8() {
        // 16 bytes that happen to be UTF-8: ldap3 gives them as text.
        let guid = "Ann's GUID bytes";
        assert_eq!(guid.len(), 16);
        for name in ["objectGUID", "objectguid", "OBJECTGUID"] {
            let entry = found(&[("objectGUID", guid)], &[]);
            assert_eq!(ldap_id(&entry, name), hex::encode(guid), "{name}");
        }
        // The same bytes from the binary map: the same id.
        let entry = found(&[], &[("objectGUID", guid.as_bytes())]);
        assert_eq!(ldap_id(&entry, "objectGUID"), hex::encode(guid));
    }

    #[test]
    fn an_id_with_a_nul_or_control_byte_is_hex() {
        let entry = found(&[("uniqueId", "ab\0cd"), ("other", "x\u{7}y")], &[]);
        assert_eq!(ldap_id(&entry, "uniqueid"), "6162006364");
        assert_eq!(ldap_id(&entry, "other"), "780779");
    }

    #[test]
    fn a_text_id_stays_text_and_binary_is_hex() {
        let entry = found(
            &[("entryUUID", "1f2e3d4c-0000-4000-8000-000000000001")],
            &[("photoId", &[0xff, 0x00, 0x10])],
        );
        assert_eq!(
            ldap_id(&entry, "entryuuid"),
            "1f2e3d4c-0000-4000-8000-000000000001"
        );
        assert_eq!(ldap_id(&entry, "photoId"), "ff0010");
        assert_eq!(ldap_id(&entry, "missing"), "");
        assert_eq!(ldap_id(&entry, ""), "");
    }
}
