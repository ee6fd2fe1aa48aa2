//! Usher as the apps' OpenID Connect provider (Core 1.0, Discovery 1.0, the
//! OAuth 2.0 Security BCP): the authorization code flow with PKCE, the
//! token endpoint, ID tokens, UserInfo, revocation, introspection and
//! RP-initiated logout. The server maps these to HTTP; the rules are here.
//!
//! - Codes, access tokens and refresh tokens are 256 random bits, stored as
//!   SHA-256 hashes, and belong to a *grant* (one sign-in of a person into
//!   an app). Revoking the grant revokes all of them. A replayed code, or a
//!   refresh token used twice, revokes its grant.
//! - Access tokens are opaque and looked up on each use, so a grant revoked
//!   by a change of access (see `crates/store/src/apps.rs`) stops working at
//!   once on every instance.
//! - ID tokens are RS256 JWTs signed with a key made on first use and
//!   stored sealed with the instance key; `kid` is the key's RFC 7638
//!   thumbprint. Rotated keys stay published for [`RETIRED_KEY_PUBLISHED`].
//! - Every check of a client secret goes through the throttle
//!   (`service::throttle`), per client.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    Error, Result,
    apps::App,
    clock::{HOUR, MINUTE, Millis},
    model::{Origin, User},
    secret::Secret,
    service::{auth::Actor, throttle::Limit},
    store::{OidcCode, OidcGrant, OidcToken, SigningKey, TokenKind},
    token,
};

use super::Usher;

/// How long a code may wait for its exchange.
pub const CODE_LIFETIME: Millis = MINUTE;
/// Access and ID tokens.
pub const TOKEN_LIFETIME: Millis = HOUR;
/// A grant (and so its last refresh token) lives this long after sign-in.
pub const GRANT_LIFETIME: Millis = 30 * 24 * HOUR;
/// A rotated key stays in the JWKS this long, past its last ID token.
pub const RETIRED_KEY_PUBLISHED: Millis = TOKEN_LIFETIME + 24 * HOUR;

/// Wrong client secrets, per client. A client secret is 256 random bits,
/// which no number of guesses finds, so the limit is there to bound the work
/// a guesser causes; it is set high enough that a busy app's token requests,
/// which take their place in the count while they are checked, do not reach
/// it by arriving together.
pub const WRONG_CLIENT_SECRETS: Limit = Limit {
    attempts: 100,
    window: 5 * MINUTE,
};

/// The scopes Usher knows; others are ignored, as OAuth allows.
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// Signing keys opened from the store, by `kid`.
#[derive(Clone, Default)]
pub struct KeyCache(Arc<Mutex<HashMap<String, Arc<OpenKey>>>>);

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache(***)")
    }
}

struct OpenKey {
    kid: String,
    encoding: jsonwebtoken::EncodingKey,
}

/// An OAuth error: RFC 6749's `error` code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    /// 401 for a client that failed to authenticate, 429 when throttled,
    /// 500 when Usher failed, else 400.
    pub status: u16,
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            status: 400,
            retry_after: None,
        }
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            status: 401,
            ..Self::new("invalid_client", description)
        }
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }
}

impl From<Error> for OAuthError {
    fn from(error: Error) -> Self {
        match error {
            Error::TooManyRequests {
                message,
                retry_after,
            } => Self {
                status: 429,
                retry_after: Some(retry_after),
                ..Self::new("slow_down", message)
            },
            Error::Internal(cause) => {
                tracing::error!(%cause, "OpenID Connect request failed");
                Self {
                    status: 500,
                    ..Self::new("server_error", "Usher could not answer; try again.")
                }
            }
            other => Self::new("invalid_request", other.to_string()),
        }
    }
}

pub type OAuthResult<T> = std::result::Result<T, OAuthError>;

/// The parameters of an authorization request, as they came.
#[derive(Clone, Debug, Default)]
pub struct AuthorizeRequest {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    /// Set by Usher when it sent the person to sign in again: the time
    /// (sealed) after which the session must have started.
    pub login_after: Option<String>,
}

/// What answering an authorization request comes to.
#[derive(Debug)]
pub enum Authorize {
    /// The client or the redirect URI is unknown: show an error, never
    /// redirect (RFC 6749 §4.1.2.1).
    ErrorPage(String),
    /// Redirect to the app with an error.
    Error {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
    /// Nobody is signed in: to the sign-in page and back.
    SignIn { login_hint: Option<String> },
    /// Signed in, but the app asks for a fresh sign-in (prompt=login,
    /// max_age): confirm, sign out, sign in, come back.
    SignInAgain { app: App },
    /// A third-party app the person has not allowed yet.
    Consent { app: App, scopes: Vec<String> },
    /// The app requires two-factor authentication and the person has none.
    SetUpMfa { app: App },
    /// Back to the app with a code.
    Code {
        redirect_uri: String,
        code: Secret,
        state: Option<String>,
    },
}

/// How a client authenticated at the token endpoint.
#[derive(Debug, Default)]
pub struct ClientAuth {
    pub client_id: Option<String>,
    pub secret: Option<Secret>,
}

#[derive(Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
}

/// The token endpoint's answer.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub id_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// What RP-initiated logout was asked for, once checked.
#[derive(Debug)]
pub struct Logout {
    /// Where to send the person afterwards (state appended), if anywhere.
    pub redirect: Option<String>,
    /// The app that asked, if known.
    pub app_name: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256: base64url(SHA-256(verifier)).
fn s256(verifier: &str) -> String {
    b64(&Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636's code verifier: 43 to 128 unreserved characters.
fn verifier_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The scopes asked for that Usher knows, in its order.
fn granted_scopes(asked: &str) -> Vec<String> {
    let asked: Vec<&str> = asked.split(' ').filter(|s| !s.is_empty()).collect();
    SCOPES
        .iter()
        .filter(|s| asked.contains(s))
        .map(|s| (*s).to_owned())
        .collect()
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// A signing key made now: RSA 2048, its PKCS#8 DER sealed, its public
/// half as a JWK whose `kid` is its RFC 7638 thumbprint.
fn make_signing_key(cipher: &crate::cipher::Cipher, now: Millis) -> Result<SigningKey> {
    use rsa::{pkcs8::EncodePrivateKey as _, traits::PublicKeyParts as _};
    let private = rsa::RsaPrivateKey::new(&mut aes_gcm::aead::OsRng, 2048)
        .map_err(|e| Error::Internal(format!("cannot make an RSA key: {e}")))?;
    let der = private
        .to_pkcs8_der()
        .map_err(|e| Error::Internal(format!("cannot encode the RSA key: {e}")))?;
    let n = b64(&private.n().to_bytes_be());
    let e = b64(&private.e().to_bytes_be());
    // RFC 7638: the required members in lexicographic order, no spaces.
    let thumbprint = b64(&Sha256::digest(
        format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#).as_bytes(),
    ));
    let jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": thumbprint, "n": n, "e": e,
    });
    Ok(SigningKey {
        kid: thumbprint,
        sealed_key: cipher.seal(&b64(der.as_bytes()))?,
        public_jwk: jwk.to_string(),
        created_at: now,
        retired_at: None,
    })
}

fn open_signing_key(cipher: &crate::cipher::Cipher, key: &SigningKey) -> Result<OpenKey> {
    use rsa::{pkcs1::EncodeRsaPrivateKey as _, pkcs8::DecodePrivateKey as _};
    let broken = |what: &str| Error::Internal(format!("signing key {}: {what}", key.kid));
    let der = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cipher.open(&key.sealed_key)?)
        .map_err(|_| broken("not base64"))?;
    let private = rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| broken("not PKCS#8"))?;
    // jsonwebtoken takes PKCS#1.
    let pkcs1 = private.to_pkcs1_der().map_err(|_| broken("no PKCS#1"))?;
    Ok(OpenKey {
        kid: key.kid.clone(),
        encoding: jsonwebtoken::EncodingKey::from_rsa_der(pkcs1.as_bytes()),
    })
}

/// Appends `pairs` to a URL's query.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    let mut separator = if url.contains('?') { '&' } else { '?' };
    for (name, value) in pairs {
        out.push(separator);
        separator = '&';
        out.push_str(&form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>());
        out.push('=');
        out.push_str(&form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>());
    }
    out
}

impl Usher {
    /// The issuer: the base URL, byte for byte what discovery says.
    pub fn issuer(&self) -> &str {
        &self.config.base_url
    }

    /// The current signing key, made (and stored sealed) on first use.
    async fn signing_key(&self) -> Result<Arc<OpenKey>> {
        let keys = self.store.signing_keys().await?;
        let active = match keys.into_iter().find(|k| k.retired_at.is_none()) {
            Some(key) => key,
            None => {
                self.make_key(false).await?;
                self.store
                    .signing_keys()
                    .await?
                    .into_iter()
                    .find(|k| k.retired_at.is_none())
                    .ok_or_else(|| Error::Internal("no signing key after making one".into()))?
            }
        };
        if let Some(open) = self.lock_keys().get(&active.kid) {
            return Ok(open.clone());
        }
        let open = Arc::new(open_signing_key(self.cipher()?, &active)?);
        self.lock_keys().insert(active.kid.clone(), open.clone());
        Ok(open)
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OpenKey>>> {
        self.keys.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a key off the async runtime (RSA key generation takes a
    /// while) and stores it; with `retire`, the others are retired.
    async fn make_key(&self, retire: bool) -> Result<String> {
        let cipher = self.cipher()?.clone();
        let now = self.now();
        let key = tokio::task::spawn_blocking(move || make_signing_key(&cipher, now))
            .await
            .map_err(|e| Error::Internal(format!("key generation: {e}")))??;
        self.store
            .insert_signing_key(&key, retire.then_some(now))
            .await?;
        Ok(key.kid)
    }

    /// `usher oidc:rotate-keys`: a new signing key; the previous public key
    /// stays published until the ID tokens it signed have expired.
    pub async fn rotate_signing_keys(&self, origin: &Origin) -> Result<String> {
        let kid = self.make_key(true).await?;
        self.audit(
            None,
            "oidc.keys-rotated",
            None,
            format!("new key {kid}"),
            origin,
        )
        .await;
        Ok(kid)
    }

    /// The JWKS document: the current key and those retired recently.
    pub async fn jwks(&self) -> Result<Value> {
        self.signing_key().await?;
        let now = self.now();
        let keys: Vec<Value> = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .filter(|k| {
                k.retired_at
                    .is_none_or(|at| now - at < RETIRED_KEY_PUBLISHED)
            })
            .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// The app a request names by client id, if its redirect URI is one the
    /// app registered, byte for byte.
    async fn app_for_redirect(
        &self,
        client_id: Option<&str>,
        redirect_uri: Option<&str>,
    ) -> Result<std::result::Result<(App, String), String>> {
        let Some(client_id) = client_id.filter(|c| !c.is_empty()) else {
            return Ok(Err("The sign-in link has no client_id.".into()));
        };
        let Some(app) = self.store.app_by_client_id(client_id).await? else {
            return Ok(Err(
                "The app that sent you here is not registered in Usher.".into(),
            ));
        };
        let Some(redirect_uri) = redirect_uri.filter(|r| !r.is_empty()) else {
            return Ok(Err(format!(
                "{} sent you here without a redirect_uri.",
                app.name
            )));
        };
        if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Ok(Err(format!(
                "{} asked to send you back to an address it did not register with Usher.",
                app.name
            )));
        }
        Ok(Ok((app, redirect_uri.to_owned())))
    }

    /// Answers an authorization request for whoever is signed in.
    #[tracing::instrument(skip_all, err)]
    pub async fn authorize(
        &self,
        request: &AuthorizeRequest,
        actor: Option<&Actor>,
        origin: &Origin,
    ) -> Result<Authorize> {
        let (app, redirect_uri) = match self
            .app_for_redirect(
                request.client_id.as_deref(),
                request.redirect_uri.as_deref(),
            )
            .await?
        {
            Ok(found) => found,
            Err(message) => return Ok(Authorize::ErrorPage(message)),
        };
        let state = request.state.clone();
        let fail = |error: &'static str, description: &str| {
            Ok(Authorize::Error {
                redirect_uri: redirect_uri.clone(),
                error,
                description: description.to_owned(),
                state: state.clone(),
            })
        };
        if request.response_type.as_deref() != Some("code") {
            return fail(
                "unsupported_response_type",
                "Usher supports the authorization code flow only (response_type=code).",
            );
        }
        let scopes = granted_scopes(request.scope.as_deref().unwrap_or_default());
        if !scopes.iter().any(|s| s == "openid") {
            return fail("invalid_scope", "The scope must include openid.");
        }
        match (
            request.code_challenge.as_deref(),
            request.code_challenge_method.as_deref(),
        ) {
            (None, _) if app.public => {
                return fail(
                    "invalid_request",
                    "A public client must use PKCE (code_challenge with S256).",
                );
            }
            (None, None) => {}
            (Some(challenge), Some("S256"))
                if challenge.len() == 43
                    && base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(challenge)
                        .is_ok() => {}
            (Some(_), Some("S256")) => {
                return fail(
                    "invalid_request",
                    "The code_challenge is not a S256 challenge.",
                );
            }
            _ => {
                return fail(
                    "invalid_request",
                    "Only the S256 code_challenge_method is supported.",
                );
            }
        }
        let prompts: Vec<&str> = request
            .prompt
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|p| !p.is_empty())
            .collect();
        if prompts
            .iter()
            .any(|p| !matches!(*p, "none" | "login" | "consent"))
            || (prompts.contains(&"none") && prompts.len() > 1)
        {
            return fail("invalid_request", "prompt takes none, login or consent.");
        }
        let prompt_none = prompts.contains(&"none");
        let max_age = match request.max_age.as_deref().filter(|m| !m.is_empty()) {
            None => None,
            Some(text) => match text.parse::<i64>() {
                Ok(seconds) if seconds >= 0 => Some(seconds),
                _ => return fail("invalid_request", "max_age must be a number of seconds."),
            },
        };
        // Who is signed in, and since when.
        let session = match actor.and_then(|a| a.session.as_ref().map(|s| (a, s))) {
            Some((actor, hash)) => self
                .store
                .session(hash, self.now())
                .await?
                .map(|(session, _)| (actor, session)),
            None => None,
        };
        let Some((actor, session)) = session else {
            if actor.is_some() {
                return Ok(Authorize::ErrorPage(
                    "Apps sign in through Usher's accounts, and this Usher has no sign-in \
                     (user management is off or set-up was skipped)."
                        .into(),
                ));
            }
            if prompt_none {
                return fail("login_required", "Nobody is signed in to Usher.");
            }
            return Ok(Authorize::SignIn {
                login_hint: request.login_hint.clone(),
            });
        };
        let signed_in_after = request
            .login_after
            .as_deref()
            .and_then(|sealed| self.open_for_browser(sealed).ok())
            .and_then(|text| text.strip_prefix("login-after:")?.parse::<Millis>().ok());
        let fresh_enough = signed_in_after.is_some_and(|after| session.created_at >= after);
        let too_old =
            max_age.is_some_and(|seconds| self.now() - session.created_at > seconds * 1000);
        if !fresh_enough && (prompts.contains(&"login") || too_old) {
            if prompt_none {
                return fail("login_required", "The app asks for a fresh sign-in.");
            }
            return Ok(Authorize::SignInAgain { app });
        }
        let user = &actor.user;
        let Some(role) = self.store.app_role(app.id, user.id).await? else {
            self.audit(
                Some(user),
                "app.signin-refused",
                None,
                app.name.clone(),
                origin,
            )
            .await;
            return fail(
                "access_denied",
                "You do not have access to this app. Ask an admin of Usher for it.",
            );
        };
        if app.require_mfa && !user.mfa_enabled {
            if prompt_none {
                return fail(
                    "interaction_required",
                    "The app requires two-factor authentication.",
                );
            }
            return Ok(Authorize::SetUpMfa { app });
        }
        if app.third_party {
            let allowed = self.store.consent(app.id, user.id).await?;
            let covered = allowed
                .as_deref()
                .is_some_and(|allowed| scopes.iter().all(|s| has_scope(allowed, s)));
            if !covered || prompts.contains(&"consent") {
                if prompt_none {
                    return fail("consent_required", "The app needs your consent first.");
                }
                return Ok(Authorize::Consent { app, scopes });
            }
        }
        let now = self.now();
        let grant = OidcGrant {
            id: uuid::Uuid::now_v7(),
            app_id: app.id,
            user_id: user.id,
            role,
            scope: scopes.join(" "),
            nonce: request.nonce.clone().filter(|n| !n.is_empty()),
            auth_time: session.created_at,
            amr: if user.mfa_enabled { "pwd otp" } else { "pwd" }.into(),
            created_at: now,
            expires_at: now + GRANT_LIFETIME,
        };
        let code = token::generate();
        self.store
            .insert_grant(
                &grant,
                &OidcCode {
                    code_hash: code.hash,
                    grant_id: grant.id,
                    redirect_uri: redirect_uri.clone(),
                    code_challenge: request.code_challenge.clone(),
                    expires_at: now + CODE_LIFETIME,
                    used_at: None,
                },
            )
            .await?;
        self.audit(
            Some(user),
            "app.signin",
            Some(user),
            app.name.clone(),
            origin,
        )
        .await;
        Ok(Authorize::Code {
            redirect_uri,
            code: code.secret,
            state,
        })
    }

    /// The sealed marker a return to the authorization request carries
    /// after Usher sent the person to sign in again.
    pub fn login_after_now(&self) -> Result<String> {
        self.seal_for_browser(&format!("login-after:{}", self.now()))
    }

    /// The person allows a third-party app the scopes it asked for.
    pub async fn give_consent(
        &self,
        actor: &Actor,
        request: &AuthorizeRequest,
        origin: &Origin,
    ) -> Result<()> {
        let (app, _) = self
            .app_for_redirect(
                request.client_id.as_deref(),
                request.redirect_uri.as_deref(),
            )
            .await?
            .map_err(Error::invalid)?;
        let scope = granted_scopes(request.scope.as_deref().unwrap_or_default()).join(" ");
        self.store
            .put_consent(app.id, actor.user.id, &scope, self.now())
            .await?;
        self.audit(
            Some(&actor.user),
            "app.consent",
            Some(&actor.user),
            format!("{}: {scope}", app.name),
            origin,
        )
        .await;
        Ok(())
    }

    /// The redirect that tells the app the person declined.
    pub async fn deny_consent(&self, request: &AuthorizeRequest) -> Result<String> {
        let (_, redirect_uri) = self
            .app_for_redirect(
                request.client_id.as_deref(),
                request.redirect_uri.as_deref(),
            )
            .await?
            .map_err(Error::invalid)?;
        let mut pairs = vec![
            ("error", "access_denied"),
            ("error_description", "You declined."),
        ];
        if let Some(state) = request.state.as_deref() {
            pairs.push(("state", state));
        }
        Ok(with_query(&redirect_uri, &pairs))
    }

    /// Authenticates a client at the token, revocation or introspection
    /// endpoint: a confidential client by its secret (throttled per
    /// client), a public one by its id alone.
    async fn authenticate_client(&self, auth: &ClientAuth) -> OAuthResult<App> {
        let Some(client_id) = auth.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Err(OAuthError::invalid_client("No client_id was sent."));
        };
        let app = self
            .store
            .app_by_client_id(client_id)
            .await
            .map_err(Error::from)?;
        let unknown = || OAuthError::invalid_client("Unknown client or wrong client secret.");
        match (app, &auth.secret) {
            (Some(app), None) if app.public => Ok(app),
            (Some(app), Some(_)) if app.public => Err(OAuthError::invalid_client(
                "A public client sends no client secret.",
            )),
            (app, Some(secret)) => {
                let stored = app.as_ref().and_then(|a| a.secret_hash.clone());
                let presented = token::hash(secret.expose());
                let right = self
                    .guarded_key(
                        format!("client-secret:{client_id}"),
                        WRONG_CLIENT_SECRETS,
                        async { Ok(stored.is_some_and(|stored| stored == presented)) },
                    )
                    .await?;
                match app {
                    Some(app) if right => Ok(app),
                    _ => Err(unknown()),
                }
            }
            (_, None) => Err(unknown()),
        }
    }

    /// The token endpoint: `authorization_code` and `refresh_token`.
    pub async fn token(
        &self,
        auth: &ClientAuth,
        request: &TokenRequest,
        origin: &Origin,
    ) -> OAuthResult<Tokens> {
        let grant_type = request.grant_type.as_deref().unwrap_or_default();
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "Usher takes grant_type authorization_code or refresh_token.",
            ));
        }
        let app = self.authenticate_client(auth).await?;
        if grant_type == "authorization_code" {
            self.exchange_code(&app, request, origin).await
        } else {
            self.refresh(&app, request, origin).await
        }
    }

    async fn exchange_code(
        &self,
        app: &App,
        request: &TokenRequest,
        origin: &Origin,
    ) -> OAuthResult<Tokens> {
        let code = request.code.as_deref().unwrap_or_default();
        let invalid = || OAuthError::invalid_grant("The code is invalid, expired or used.");
        if !token::is_well_formed(code) {
            return Err(invalid());
        }
        let now = self.now();
        let (stored, grant) = self
            .store
            .code(&token::hash(code))
            .await
            .map_err(Error::from)?
            .ok_or_else(invalid)?;
        if grant.app_id != app.id {
            return Err(invalid());
        }
        if stored.used_at.is_some() {
            // A code shown twice was stolen, or the first exchange was
            // lost: either way, what it issued goes.
            self.revoke_reused(&grant, app, origin, Some("app.code-replayed"))
                .await?;
            return Err(invalid());
        }
        if stored.expires_at <= now {
            return Err(invalid());
        }
        if request.redirect_uri.as_deref() != Some(stored.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "The redirect_uri differs from the authorization request's.",
            ));
        }
        match (&stored.code_challenge, request.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier))
                if verifier_well_formed(verifier) && &s256(verifier) == challenge => {}
            (None, None) => {}
            _ => {
                return Err(OAuthError::invalid_grant(
                    "The code_verifier does not match the code_challenge.",
                ));
            }
        }
        let (tokens, rows) = self.new_tokens(&grant, now);
        if !self
            .store
            .redeem_code(&stored.code_hash, now, &rows)
            .await
            .map_err(Error::from)?
        {
            // Exchanged at the same moment elsewhere, or access lapsed.
            self.revoke_reused(&grant, app, origin, None).await?;
            return Err(invalid());
        }
        self.finish_tokens(app, &grant, tokens, grant.nonce.as_deref())
            .await
    }

    async fn refresh(
        &self,
        app: &App,
        request: &TokenRequest,
        origin: &Origin,
    ) -> OAuthResult<Tokens> {
        let presented = request.refresh_token.as_deref().unwrap_or_default();
        let invalid = || OAuthError::invalid_grant("The refresh token is invalid or expired.");
        if !token::is_well_formed(presented) {
            return Err(invalid());
        }
        let now = self.now();
        let hash = token::hash(presented);
        let (stored, grant) = self
            .store
            .token(&hash)
            .await
            .map_err(Error::from)?
            .ok_or_else(invalid)?;
        if stored.kind != TokenKind::Refresh || grant.app_id != app.id {
            return Err(invalid());
        }
        if stored.used_at.is_some() {
            // Used twice: one copy is in the wrong hands. The whole family
            // goes.
            self.revoke_reused(&grant, app, origin, Some("app.refresh-reused"))
                .await?;
            return Err(invalid());
        }
        if stored.expires_at <= now {
            return Err(invalid());
        }
        let (tokens, rows) = self.new_tokens(&grant, now);
        if !self
            .store
            .rotate_refresh(&hash, now, &rows)
            .await
            .map_err(Error::from)?
        {
            // Rotated at the same moment elsewhere, or access lapsed.
            self.revoke_reused(&grant, app, origin, None).await?;
            return Err(invalid());
        }
        self.finish_tokens(app, &grant, tokens, None).await
    }

    /// Revokes everything `grant` issued, when a code or refresh token was
    /// presented twice (or raced with itself), and records `action` in the
    /// audit log where it says someone replayed it.
    async fn revoke_reused(
        &self,
        grant: &OidcGrant,
        app: &App,
        origin: &Origin,
        action: Option<&str>,
    ) -> OAuthResult<()> {
        self.store
            .revoke_grant(grant.id)
            .await
            .map_err(Error::from)?;
        if let Some(action) = action {
            let user = self.store.user_by_id(grant.user_id).await.ok().flatten();
            self.audit(None, action, user.as_ref(), app.name.clone(), origin)
                .await;
        }
        Ok(())
    }

    /// A new access and refresh token for the grant: the secrets, and the
    /// rows to store.
    fn new_tokens(&self, grant: &OidcGrant, now: Millis) -> ((Secret, Secret), Vec<OidcToken>) {
        let access = token::generate();
        let refresh = token::generate();
        let rows = vec![
            OidcToken {
                token_hash: access.hash,
                grant_id: grant.id,
                kind: TokenKind::Access,
                created_at: now,
                expires_at: now + TOKEN_LIFETIME,
                used_at: None,
            },
            OidcToken {
                token_hash: refresh.hash,
                grant_id: grant.id,
                kind: TokenKind::Refresh,
                created_at: now,
                expires_at: grant.expires_at,
                used_at: None,
            },
        ];
        ((access.secret, refresh.secret), rows)
    }

    async fn finish_tokens(
        &self,
        app: &App,
        grant: &OidcGrant,
        (access, refresh): (Secret, Secret),
        nonce: Option<&str>,
    ) -> OAuthResult<Tokens> {
        let user = self
            .store
            .user_by_id(grant.user_id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| OAuthError::invalid_grant("The person no longer exists."))?;
        let id_token = self
            .id_token(app, grant, &user, access.expose(), nonce)
            .await?;
        Ok(Tokens {
            access_token: access,
            refresh_token: refresh,
            id_token,
            expires_in: TOKEN_LIFETIME / 1000,
            scope: grant.scope.clone(),
        })
    }

    /// The claims about `user` that `scope` allows, as UserInfo and the ID
    /// token carry them.
    async fn user_claims(&self, user: &User, grant: &OidcGrant) -> Result<Map<String, Value>> {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(user.id.to_string()));
        if has_scope(&grant.scope, "profile") {
            claims.insert("name".into(), json!(user.display_name()));
            claims.insert("given_name".into(), json!(user.first_name));
            claims.insert("family_name".into(), json!(user.last_name));
            // Apps find accounts by it: only an address known to reach
            // the person (see `email_verified` below).
            if let Some(email) = user.email.as_ref().filter(|_| user.email_verified) {
                claims.insert("preferred_username".into(), json!(email.to_string()));
            }
            claims.insert("updated_at".into(), json!(user.updated_at / 1000));
        }
        if has_scope(&grant.scope, "email")
            && let Some(email) = &user.email
        {
            claims.insert("email".into(), json!(email.to_string()));
            // Apps link accounts by a verified address: true only for one
            // known to reach the person (set by an admin, proved by an
            // invitation or a confirmation link, or from the directory), not
            // for one a member typed in and has not confirmed.
            claims.insert("email_verified".into(), json!(user.email_verified));
        }
        if has_scope(&grant.scope, "groups") {
            let groups: Vec<String> = self
                .store
                .projects_of(user.id)
                .await?
                .into_iter()
                .filter(|(p, _)| p.kind == crate::resources::ProjectKind::Team)
                .map(|(p, _)| p.name)
                .collect();
            claims.insert("groups".into(), json!(groups));
            claims.insert("roles".into(), json!([grant.role]));
        }
        Ok(claims)
    }

    async fn id_token(
        &self,
        app: &App,
        grant: &OidcGrant,
        user: &User,
        access_token: &str,
        nonce: Option<&str>,
    ) -> Result<String> {
        let now = self.now() / 1000;
        let mut claims = self.user_claims(user, grant).await?;
        let digest = Sha256::digest(access_token.as_bytes());
        for (name, value) in [
            ("iss", json!(self.issuer())),
            ("aud", json!(app.client_id)),
            ("azp", json!(app.client_id)),
            ("iat", json!(now)),
            ("exp", json!(now + TOKEN_LIFETIME / 1000)),
            ("auth_time", json!(grant.auth_time / 1000)),
            ("at_hash", json!(b64(&digest[..16]))),
            ("amr", json!(grant.amr.split(' ').collect::<Vec<_>>())),
        ] {
            claims.insert(name.into(), value);
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        let key = self.signing_key().await?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| Error::Internal(format!("cannot sign an ID token: {e}")))
    }

    /// UserInfo: the claims for the person an access token was issued to.
    /// None when the token is unknown, expired or revoked.
    pub async fn userinfo(&self, access_token: &str) -> Result<Option<Value>> {
        if !token::is_well_formed(access_token) {
            return Ok(None);
        }
        let Some((stored, grant)) = self.store.token(&token::hash(access_token)).await? else {
            return Ok(None);
        };
        if stored.kind != TokenKind::Access || stored.expires_at <= self.now() {
            return Ok(None);
        }
        let Some(user) = self.store.user_by_id(grant.user_id).await? else {
            return Ok(None);
        };
        Ok(Some(Value::Object(self.user_claims(&user, &grant).await?)))
    }

    /// RFC 7009: a confidential client revokes one of its tokens; revoking
    /// a refresh token revokes its grant. Unknown tokens are no error.
    pub async fn revoke(&self, auth: &ClientAuth, presented: &str) -> OAuthResult<()> {
        let app = self.confidential_client(auth).await?;
        if !token::is_well_formed(presented) {
            return Ok(());
        }
        let hash = token::hash(presented);
        let found = self.store.token(&hash).await.map_err(Error::from)?;
        if let Some((stored, grant)) = found
            && grant.app_id == app.id
        {
            match stored.kind {
                TokenKind::Refresh => self.store.revoke_grant(grant.id).await,
                TokenKind::Access => self.store.delete_token(&hash).await,
            }
            .map_err(Error::from)?;
        }
        Ok(())
    }

    async fn confidential_client(&self, auth: &ClientAuth) -> OAuthResult<App> {
        let app = self.authenticate_client(auth).await?;
        if app.public {
            return Err(OAuthError::new(
                "unauthorized_client",
                "Only confidential clients may use this endpoint.",
            ));
        }
        Ok(app)
    }

    /// RFC 7662: what a token is, for the confidential client it was
    /// issued to; `{"active": false}` for anything else.
    pub async fn introspect(&self, auth: &ClientAuth, presented: &str) -> OAuthResult<Value> {
        let app = self.confidential_client(auth).await?;
        let inactive = json!({"active": false});
        if !token::is_well_formed(presented) {
            return Ok(inactive);
        }
        let found = self
            .store
            .token(&token::hash(presented))
            .await
            .map_err(Error::from)?;
        let Some((stored, grant)) = found else {
            return Ok(inactive);
        };
        if grant.app_id != app.id || stored.expires_at <= self.now() || stored.used_at.is_some() {
            return Ok(inactive);
        }
        let user = self
            .store
            .user_by_id(grant.user_id)
            .await
            .map_err(Error::from)?;
        Ok(json!({
            "active": true,
            "scope": grant.scope,
            "client_id": app.client_id,
            "username": user.and_then(|u| u.email).map(|e| e.to_string()),
            "token_type": match stored.kind {
                TokenKind::Access => "Bearer",
                TokenKind::Refresh => "refresh_token",
            },
            "exp": stored.expires_at / 1000,
            "iat": stored.created_at / 1000,
            "sub": grant.user_id.to_string(),
            "aud": app.client_id,
            "iss": self.issuer(),
        }))
    }

    /// RP-initiated logout: checks `id_token_hint` (signed by Usher, for a
    /// registered app; it may have expired) and that the
    /// `post_logout_redirect_uri` is one that app registered.
    pub async fn check_logout(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<Logout> {
        let hint_client = match id_token_hint.filter(|h| !h.is_empty()) {
            Some(hint) => Some(self.verify_own_id_token(hint).await?),
            None => None,
        };
        let client = match (hint_client, client_id.filter(|c| !c.is_empty())) {
            (Some(hinted), Some(named)) if hinted != named => {
                return Err(Error::invalid(
                    "The id_token_hint was issued to another app than client_id names.",
                ));
            }
            (Some(hinted), _) => Some(hinted),
            (None, named) => named.map(str::to_owned),
        };
        let app = match &client {
            Some(client) => self.store.app_by_client_id(client).await?,
            None => None,
        };
        let Some(uri) = post_logout_redirect_uri.filter(|u| !u.is_empty()) else {
            return Ok(Logout {
                redirect: None,
                app_name: app.map(|a| a.name),
            });
        };
        let Some(app) = app else {
            return Err(Error::invalid(
                "A post_logout_redirect_uri needs an id_token_hint or client_id of a registered app.",
            ));
        };
        if !app.post_logout_redirect_uris.iter().any(|u| u == uri) {
            return Err(Error::invalid(format!(
                "{} asked to send you to an address it did not register for after sign-out.",
                app.name
            )));
        }
        let redirect = match state {
            Some(state) if !state.is_empty() => with_query(uri, &[("state", state)]),
            _ => uri.to_owned(),
        };
        Ok(Logout {
            redirect: Some(redirect),
            app_name: Some(app.name),
        })
    }

    /// The client id an ID token of Usher's was issued to; expiry is not
    /// checked (a hint may be old), the signature and issuer are.
    async fn verify_own_id_token(&self, jwt: &str) -> Result<String> {
        let refused = || Error::invalid("The id_token_hint is not an ID token from this Usher.");
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| refused())?;
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return Err(refused());
        }
        let kid = header.kid.ok_or_else(refused)?;
        let key = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(refused)?;
        let jwk: Value = serde_json::from_str(&key.public_jwk).map_err(|_| refused())?;
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap_or_default(),
            jwk["e"].as_str().unwrap_or_default(),
        )
        .map_err(|_| refused())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[self.issuer()]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Value>(jwt, &decoding, &validation).map_err(|_| refused())?;
        data.claims["aud"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(refused)
    }
}
