//! Two-legged OAuth for SMTP (XOAUTH2): a service account's signed JWT is
//! traded for an access token at the token endpoint.

use std::{sync::Arc, time::Duration};

use rustls::pki_types::pem::PemObject as _;
use serde::Serialize;
use usher_domain::mail::MailError;

use crate::settings::OAuthSettings;

/// Two-legged OAuth: a JWT signed with the service account's key is traded
/// at the token endpoint for an access token, kept until shortly before it
/// expires.
pub(super) struct OAuthClient {
    settings: OAuthSettings,
    user: String,
    key: jsonwebtoken::EncodingKey,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(String, std::time::Instant)>>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl OAuthClient {
    pub(super) fn new(
        settings: &OAuthSettings,
        user: &str,
        extra_roots: &[String],
    ) -> Result<Self, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(settings.private_key.expose().as_bytes())
            .map_err(|e| {
                format!("N8N_SMTP_OAUTH_PRIVATE_KEY: not an RSA private key in PEM form: {e}")
            })?;
        let http =
            http_client(extra_roots).map_err(|e| format!("N8N_SMTP_OAUTH_TOKEN_URL: {e}"))?;
        Ok(Self {
            settings: settings.clone(),
            user: user.to_owned(),
            key,
            http,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    pub(super) async fn access_token(&self) -> Result<String, MailError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && std::time::Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Assertion {
            iss: &self.settings.service_client,
            sub: &self.user,
            scope: "https://mail.google.com/",
            aud: &self.settings.token_url,
            iat: now,
            exp: now + 3600,
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| MailError(format!("the service account's key could not sign: {e}")))?;
        let url = &self.settings.token_url;
        let response = self
            .http
            .post(url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| {
                MailError(format!(
                    "the OAuth token endpoint {url} did not answer: {e}"
                ))
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(MailError(format!(
                "the OAuth token endpoint {url} refused the service account ({status}): {}",
                body.chars().take(200).collect::<String>()
            )));
        }
        let answer: TokenAnswer = response.json().await.map_err(|e| {
            MailError(format!(
                "the OAuth token endpoint {url} sent an unreadable answer: {e}"
            ))
        })?;
        // Renew a minute early, so a token never expires mid-conversation.
        let lifetime = answer.expires_in.unwrap_or(3600).saturating_sub(60);
        let until = std::time::Instant::now() + Duration::from_secs(lifetime);
        *cached = Some((answer.access_token.clone(), until));
        Ok(answer.access_token)
    }
}

/// An HTTPS client on rustls with the ring provider (no aws-lc build), public
/// roots plus any extra trusted certificates.
fn http_client(extra_roots: &[String]) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(extra_roots)?)
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// rustls on the ring provider with the public roots plus `extra_roots`
/// (PEM): for every HTTPS client of Usher's (the token endpoint here, the
/// single sign-on provider).
pub(crate) fn tls_config(extra_roots: &[String]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in extra_roots {
        for der in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let der = der.map_err(|e| format!("a trusted certificate is not valid: {e}"))?;
            roots
                .add(der)
                .map_err(|e| format!("a trusted certificate is not valid: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
