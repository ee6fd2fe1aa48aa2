//! Single sign-on into Usher: the OpenID Connect client half, with the
//! `openidconnect` crate over Usher's reqwest (rustls on ring).
//!
//! Usher talks only to the provider the owner configured: its discovery
//! document (at exactly the address given), the JWKS and token (and, when
//! the ID token has no email, UserInfo) endpoints that document names. No
//! redirects are followed. Each of those addresses must be https (plain
//! http only to a loopback address, a provider on this machine). Nothing is cached: every sign-in reads the
//! discovery document and the keys again, so a changed setting or a
//! rotated key at the provider applies at once on every instance.
//!
//! What is checked, by the crate: the ID token's signature against the
//! provider's JWKS, `iss` (the issuer of the document), `aud` (our client
//! id), `nonce`, `exp` and `iat` (against Usher's clock); by Usher: the
//! document's issuer is the discovery endpoint's (so a document cannot
//! claim another provider's name), and the callback's `state` is one Usher
//! sent from this browser (`rest/sso.rs`).

use std::time::Duration;

use openidconnect::{
    AccessToken, AuthType, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, JsonWebKeySet,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _, UserInfoClaims,
    core::{
        CoreClient, CoreClientAuthMethod, CoreGenderClaim, CoreProviderMetadata, CoreResponseType,
    },
};
use usher_domain::{
    clock::Millis,
    service::sso::{PLAIN_HTTP, SsoConfig, SsoIdentity, transport_allowed},
};

/// The HTTP client for the provider: public roots plus any certificates
/// the embedding program trusts, no redirects, a short timeout.
#[derive(Clone)]
pub struct SsoHttp {
    client: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// Most a provider's answer may be (a discovery document or a key set is
/// a few kilobytes).
const MAX_BODY: usize = 1024 * 1024;

impl SsoHttp {
    pub fn new(extra_roots: &[String]) -> Result<Self, String> {
        let config = crate::mail::tls_config(extra_roots)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { client })
    }

    async fn fetch(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let mut response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| HttpError(reach_error(&e)))?;
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HttpError(reach_error(&e)))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_BODY {
                return Err(HttpError("the answer is too large".into()));
            }
        }
        builder.body(bytes).map_err(|e| HttpError(e.to_string()))
    }
}

/// How openidconnect sends its requests: through [`SsoHttp::fetch`], with
/// a future that may move between threads (as axum's handlers must).
impl<'c> openidconnect::AsyncHttpClient<'c> for SsoHttp {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.fetch(request))
    }
}

/// Why a request did not get an answer, in words (reqwest's own text
/// names the URL, which the message names anyway).
fn reach_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "it did not answer within 10 seconds".to_owned()
    } else if error.is_connect() {
        "the connection was refused or the host is unknown".to_owned()
    } else {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    }
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The configured provider, as its discovery document describes it.
pub struct Provider {
    client: Client,
}

/// The authorization request to send the browser to, and what the
/// callback needs to check its answer.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Reads the discovery document and the keys. The error says, for a
/// person, what did not work.
pub async fn discover(
    http: &SsoHttp,
    config: &SsoConfig,
    callback: &str,
) -> Result<Provider, String> {
    let endpoint = &config.discovery_endpoint;
    let url = url::Url::parse(endpoint)
        .map_err(|_| "Provided discovery endpoint is not a valid URL".to_owned())?;
    // Settings saved before https was required are refused here too.
    if !secure(&url) {
        return Err(PLAIN_HTTP.to_owned());
    }
    let request = openidconnect::http::Request::builder()
        .uri(url.as_str())
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|_| "Provided discovery endpoint is not a valid URL".to_owned())?;
    let response = http
        .fetch(request)
        .await
        .map_err(|e| format!("Usher could not reach the discovery endpoint {endpoint}: {e}."))?;
    if !response.status().is_success() {
        return Err(format!(
            "The discovery endpoint {endpoint} answered {} instead of the provider's \
             configuration. Check the address.",
            response.status()
        ));
    }
    let metadata: CoreProviderMetadata = serde_json::from_slice(response.body()).map_err(|e| {
        format!(
            "The discovery endpoint {endpoint} did not answer with an OpenID Connect \
                 configuration ({e})."
        )
    })?;
    let issuer = metadata.issuer().as_str();
    if issuer.trim_end_matches('/') != config.expected_issuer() {
        return Err(format!(
            "The provider at {endpoint} calls itself {issuer}: the discovery endpoint must \
             be its own issuer followed by /.well-known/openid-configuration."
        ));
    }
    // The secret, the codes and the tokens go to the addresses the
    // document names: https too (a document cannot downgrade them).
    let named = [
        (
            "authorization endpoint",
            Some(metadata.authorization_endpoint().url()),
        ),
        ("token endpoint", metadata.token_endpoint().map(|u| u.url())),
        ("signing keys (jwks_uri)", Some(metadata.jwks_uri().url())),
        (
            "UserInfo endpoint",
            metadata.userinfo_endpoint().map(|u| u.url()),
        ),
    ];
    for (what, address) in named {
        if let Some(address) = address
            && !secure(address)
        {
            return Err(format!(
                "The provider's configuration at {endpoint} names {address} as its {what}, over \
                 plain http: Usher speaks to the provider over https only (http only to a \
                 provider on this machine, 127.0.0.1 or [::1])."
            ));
        }
    }
    let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
        .await
        .map_err(|e| {
            format!(
                "Usher could not read the provider's signing keys at {}: {}.",
                metadata.jwks_uri().as_str(),
                error_chain(&e)
            )
        })?;
    // Client authentication as the provider supports it: HTTP Basic
    // unless it names only client_secret_post.
    let methods = metadata.token_endpoint_auth_methods_supported().cloned();
    let auth_type = match methods {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    };
    let secret = Some(config.client_secret.expose())
        .filter(|s| !s.is_empty())
        .map(|s| ClientSecret::new(s.to_owned()));
    let redirect = RedirectUrl::new(callback.to_owned())
        .map_err(|e| format!("Usher's own callback address is not a URL: {e}"))?;
    let client = CoreClient::from_provider_metadata(
        metadata.set_jwks(jwks),
        ClientId::new(config.client_id.clone()),
        secret,
    )
    .set_auth_type(auth_type)
    .set_redirect_uri(redirect);
    Ok(Provider { client })
}

impl Provider {
    /// An authorization code request with PKCE (S256), a fresh state and
    /// nonce, for `openid email profile`.
    pub fn start(&self, prompt: Option<&str>) -> Started {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge);
        if let Some(prompt) = prompt {
            request = request.add_extra_param("prompt", prompt.to_owned());
        }
        let (url, state, nonce) = request.url();
        Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Trades the code for tokens and verifies the ID token; the person it
    /// names. `now` is Usher's clock.
    pub async fn finish(
        &self,
        http: &SsoHttp,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: Millis,
    ) -> Result<SsoIdentity, String> {
        let tokens = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| format!("The provider names no token endpoint ({e})."))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(http)
            .await
            .map_err(|e| {
                format!(
                    "The provider did not accept the sign-in code: {}.",
                    error_chain(&e)
                )
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| "The provider's answer has no ID token.".to_owned())?;
        let verifier = self
            .client
            .id_token_verifier()
            .set_time_fn(move || chrono::DateTime::from_timestamp_millis(now).unwrap_or_default());
        let claims = id_token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|e| format!("The provider's ID token was refused: {e}."))?;
        let mut identity = SsoIdentity {
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified(),
            given_name: claims
                .given_name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            family_name: claims
                .family_name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
        };
        if identity.email.is_none() {
            self.user_info(http, tokens.access_token(), claims.subject(), &mut identity)
                .await?;
        }
        Ok(identity)
    }

    /// Fills the email and names from UserInfo (for providers that keep
    /// them out of the ID token), checked to be about the same `sub`.
    async fn user_info(
        &self,
        http: &SsoHttp,
        access_token: &AccessToken,
        subject: &openidconnect::SubjectIdentifier,
        identity: &mut SsoIdentity,
    ) -> Result<(), String> {
        let Ok(request) = self
            .client
            .user_info(access_token.clone(), Some(subject.clone()))
        else {
            return Ok(());
        };
        let info: UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> = request
            .request_async(http)
            .await
            .map_err(|e| format!("The provider's UserInfo answer was refused: {e}."))?;
        identity.email = info.email().map(|e| e.as_str().to_owned());
        identity.email_verified = info.email_verified();
        if identity.given_name.is_none() {
            identity.given_name = info
                .given_name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned());
        }
        if identity.family_name.is_none() {
            identity.family_name = info
                .family_name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned());
        }
        Ok(())
    }
}

/// Whether Usher may call `url` (the domain's rule, on the host as the
/// URL parser that reqwest also uses reads it).
fn secure(url: &url::Url) -> bool {
    transport_allowed(url.scheme(), url.host_str().unwrap_or_default())
}

/// An error and its causes, in one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}
