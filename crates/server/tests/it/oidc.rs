//! Usher as an OpenID Connect provider, driven by a strict relying party:
//! the `openidconnect` crate, which checks the issuer byte for byte, the
//! signature against the JWKS, aud/azp, the nonce and exp (no skew; its
//! clock is the server's).

use std::{error::Error as StdError, fmt};

use base64::Engine as _;
use openidconnect::{
    AccessToken, AuthType, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, Scope, TokenResponse as _, UserInfoClaims,
    core::{
        CoreClient, CoreGenderClaim, CoreIdToken, CoreProviderMetadata, CoreResponseType,
        CoreTokenResponse,
    },
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_domain::{
    model::{Origin, Role},
    service::oidc::WRONG_CLIENT_SECRETS,
    store::{ProjectStore as _, UserStore as _},
};

use crate::{
    apps::app_body,
    harness::{Db, TestResult, TestServer, body, code_at, location, page_form},
};

crate::on_both_databases!(
    a_person_signs_into_an_app_with_code_and_pkce,
    refresh_tokens_rotate_and_a_reused_one_revokes_the_family,
    codes_are_single_use_and_short_lived,
    authorization_errors_follow_rfc_6749,
    token_endpoint_refusals,
    a_token_without_signature_is_refused,
    losing_access_revokes_tokens_at_once,
    another_instance_refuses_a_revoked_token_at_once,
    logout_from_the_app_ends_the_usher_session,
    rotated_keys_keep_the_previous_one_published,
    third_party_apps_ask_for_consent_and_prompt_login_asks_again,
    a_temporary_password_is_replaced_on_the_way_into_an_app,
    two_factor_set_up_on_the_way_into_an_app_goes_on_to_it,
    login_hint_fills_in_the_sign_in_form,
    a_directory_user_s_app_tokens_and_keys_end_when_they_leave_the_directory,
    email_verified_is_false_for_a_self_changed_address_until_its_link_is_followed,
);

const REDIRECT: &str = "http://rp.example.test/callback";
const SIGNED_OUT: &str = "http://rp.example.test/signed-out";
const MIA: &str = "mia@example.com";
const MIA_PASSWORD: &str = "Member1password";

/// The RP's HTTP client, as openidconnect asks for one: a request in, a
/// response out, no redirects followed.
#[derive(Debug)]
struct HttpError(String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for HttpError {}

async fn rp_http(
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| HttpError(e.to_string()))?;
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    builder
        .body(bytes.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// An app registered by the owner, and the RP configured for it.
struct Setup {
    server: TestServer,
    owner: Client,
    app_id: String,
    client_id: String,
    secret: Option<String>,
    rp: Rp,
    mia: usher_domain::model::User,
}

async fn discover(server: &TestServer) -> Result<CoreProviderMetadata, Box<dyn StdError>> {
    Ok(CoreProviderMetadata::discover_async(IssuerUrl::new(server.url.clone())?, &rp_http).await?)
}

async fn setup(db: Db, public: bool, access: Value) -> Result<Setup, Box<dyn StdError>> {
    setup_on(TestServer::start(db).await, public, access).await
}

/// [`setup`] on a server the test started (with email, for one).
async fn setup_on(
    server: TestServer,
    public: bool,
    access: Value,
) -> Result<Setup, Box<dyn StdError>> {
    let owner = server.owner().await;
    let mia = server.add_user(MIA, MIA_PASSWORD, Role::Member).await;
    let access = if access == json!("mia") {
        json!({"users": [{"id": mia.id.to_string(), "role": "Power"}]})
    } else {
        access
    };
    let created = body(
        owner
            .post(server.at("/rest/apps"))
            .json(&app_body("Grafana", public, access))
            .send()
            .await?,
    )
    .await;
    let app_id = created["data"]["id"].as_str().ok_or("no id")?.to_owned();
    let client_id = created["data"]["clientId"]
        .as_str()
        .ok_or("no clientId")?
        .to_owned();
    let secret = created["data"]["clientSecret"].as_str().map(str::to_owned);
    let rp = rp_for(&server, &client_id, secret.as_deref()).await?;
    Ok(Setup {
        server,
        owner,
        app_id,
        client_id,
        secret,
        rp,
        mia,
    })
}

async fn rp_for(
    server: &TestServer,
    client_id: &str,
    secret: Option<&str>,
) -> Result<Rp, Box<dyn StdError>> {
    rp_at(server, client_id, secret, REDIRECT).await
}

async fn rp_at(
    server: &TestServer,
    client_id: &str,
    secret: Option<&str>,
    redirect: &str,
) -> Result<Rp, Box<dyn StdError>> {
    let metadata = discover(server).await?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_owned()),
        secret.map(|s| ClientSecret::new(s.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.to_owned())?))
}

/// A small app of the test's own (a relying party on a local port), for a
/// browser to sign into: `/` starts the sign-in at Usher, `/callback`
/// finishes it and shows who is signed in. The owner registers it for
/// everyone. Returns its address.
pub async fn serve_rp(server: &TestServer, owner: &Client) -> Result<String, Box<dyn StdError>> {
    use std::sync::{Arc, Mutex};

    use axum::{
        extract::{Query, State},
        response::{Html, IntoResponse, Redirect},
    };

    struct RpState {
        rp: Rp,
        now: usher_server::AppState,
        pending: Mutex<Option<(String, Nonce, PkceCodeVerifier)>>,
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let callback = format!("{base}/callback");
    let mut registration = app_body("Test app", false, json!("everyone"));
    registration["launchUrl"] = json!(base);
    registration["redirectUris"] = json!([callback]);
    let created = body(
        owner
            .post(server.at("/rest/apps"))
            .json(&registration)
            .send()
            .await?,
    )
    .await;
    let rp = rp_at(
        server,
        created["data"]["clientId"].as_str().unwrap_or_default(),
        created["data"]["clientSecret"].as_str(),
        &callback,
    )
    .await?;
    let state = Arc::new(RpState {
        rp,
        now: server.state.clone(),
        pending: Mutex::new(None),
    });
    async fn begin(State(state): State<Arc<RpState>>) -> Redirect {
        let started = start(&state.rp, &["profile", "email"]);
        let url = started.url.clone();
        *state.pending.lock().unwrap() = Some((
            started.state.secret().clone(),
            started.nonce,
            started.verifier,
        ));
        Redirect::to(&url)
    }
    async fn finish(
        State(state): State<Arc<RpState>>,
        Query(query): Query<std::collections::HashMap<String, String>>,
    ) -> axum::response::Response {
        let Some((expected, nonce, verifier)) = state.pending.lock().unwrap().take() else {
            return Html("<h1 id=\"rp-error\">no sign-in under way</h1>").into_response();
        };
        if query.get("state") != Some(&expected) {
            return Html("<h1 id=\"rp-error\">wrong state</h1>").into_response();
        }
        let code = query.get("code").cloned().unwrap_or_default();
        let tokens = match exchange(&state.rp, &code, &verifier).await {
            Ok(tokens) => tokens,
            Err(e) => return Html(format!("<h1 id=\"rp-error\">{e}</h1>")).into_response(),
        };
        let Some(id_token) = tokens.id_token() else {
            return Html("<h1 id=\"rp-error\">no ID token</h1>").into_response();
        };
        let now = state.now.usher().now();
        let verifier = state
            .rp
            .id_token_verifier()
            .set_time_fn(move || chrono::DateTime::from_timestamp_millis(now).unwrap_or_default());
        match id_token.claims(&verifier, &nonce) {
            Ok(claims) => {
                let email = claims.email().map(|e| e.to_string()).unwrap_or_default();
                let amr: Vec<String> = claims
                    .auth_method_refs()
                    .into_iter()
                    .flatten()
                    .map(|a| a.to_string())
                    .collect();
                Html(format!(
                    "<!doctype html><html lang=\"en\"><title>Test app</title>\
                     <h1 id=\"rp-user\">Signed in as {email}</h1>\
                     <p id=\"rp-amr\">{}</p></html>",
                    amr.join(" ")
                ))
                .into_response()
            }
            Err(e) => Html(format!("<h1 id=\"rp-error\">{e}</h1>")).into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/", axum::routing::get(begin))
        .route("/callback", axum::routing::get(finish))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

/// One authorization request as the RP makes it.
struct Started {
    url: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

fn start(rp: &Rp, scopes: &[&str]) -> Started {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    let (url, state, nonce) = request.url();
    Started {
        url: url.to_string(),
        state,
        nonce,
        verifier,
    }
}

/// Where a form's answer leads the browser: its redirect, or for a way
/// on out of Usher's form pages, the page's `Refresh` target.
fn onward(response: &reqwest::Response) -> String {
    let refresh = response
        .headers()
        .get("refresh")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once("url="))
        .map(|(_, url)| url.to_owned());
    refresh.unwrap_or_else(|| location(response))
}

/// An attribute's value as the browser reads it (`&#38;`, `&amp;`).
fn unescape_html(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail.find(';').unwrap_or(0);
        let entity = &tail[1..end.max(1)];
        let decoded = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) if end > 0 => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `url` with `pairs` as its query.
fn with_pairs(url: &str, pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{url}?{query}")
}

/// The query parameters of a redirect to the RP.
fn params(target: &str) -> Vec<(String, String)> {
    url::Url::parse(target)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn param(target: &str, name: &str) -> Option<String> {
    params(target)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// The browser's visit to the authorization URL: where Usher sends it.
async fn visit(browser: &Client, url: &str) -> Result<String, Box<dyn StdError>> {
    let response = browser.get(url).send().await?;
    assert!(
        response.status().is_redirection(),
        "authorize answered {} instead of a redirect",
        response.status()
    );
    Ok(location(&response))
}

/// Signs `browser`'s person in through the flow and returns the code.
async fn code_for(browser: &Client, started: &Started) -> Result<String, Box<dyn StdError>> {
    let back = visit(browser, &started.url).await?;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(started.state.secret().as_str())
    );
    Ok(param(&back, "code").ok_or_else(|| format!("no code in {back}"))?)
}

async fn exchange(
    rp: &Rp,
    code: &str,
    verifier: &PkceCodeVerifier,
) -> Result<CoreTokenResponse, Box<dyn StdError>> {
    let verifier = PkceCodeVerifier::new(verifier.secret().clone());
    Ok(rp
        .exchange_code(AuthorizationCode::new(code.to_owned()))?
        .set_pkce_verifier(verifier)
        .request_async(&rp_http)
        .await?)
}

/// The ID token's claims, verified as a strict RP does, at the server's
/// time.
fn verified_claims(
    server: &TestServer,
    rp: &Rp,
    token: &CoreIdToken,
    nonce: &Nonce,
) -> Result<Value, Box<dyn StdError>> {
    let now = server.state.usher().now();
    let verifier = rp
        .id_token_verifier()
        .set_time_fn(move || chrono::DateTime::from_timestamp_millis(now).unwrap_or_default());
    token.claims(&verifier, nonce)?;
    payload(&token.to_string())
}

/// The JSON payload of a JWT (after it was verified).
fn payload(jwt: &str) -> Result<Value, Box<dyn StdError>> {
    let part = jwt.split('.').nth(1).ok_or("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
    Ok(serde_json::from_slice(&bytes)?)
}

async fn userinfo_status(server: &TestServer, access: &str) -> Result<StatusCode, reqwest::Error> {
    Ok(Client::new()
        .get(server.at("/oidc/userinfo"))
        .bearer_auth(access)
        .send()
        .await?
        .status())
}

async fn a_person_signs_into_an_app_with_code_and_pkce(db: Db) -> TestResult {
    let s = setup(db, false, json!("mia")).await?;
    let server = &s.server;
    let metadata = discover(server).await?;
    assert_eq!(metadata.issuer().as_str(), server.url);
    let project = body(
        s.owner
            .post(server.at("/rest/projects"))
            .json(&json!({"name": "Ops"}))
            .send()
            .await?,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    server
        .store
        .set_member(
            project.parse()?,
            s.mia.id,
            usher_domain::resources::ProjectRole::Viewer,
        )
        .await?;

    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &["profile", "email", "groups"]);
    let code = code_for(&browser, &started).await?;
    let tokens = exchange(&s.rp, &code, &started.verifier).await?;
    let id_token = tokens.id_token().ok_or("no ID token")?;
    let claims = verified_claims(server, &s.rp, id_token, &started.nonce)?;
    let header = payload(&format!(
        "x.{}",
        id_token.to_string().split('.').next().unwrap_or_default()
    ))?;
    assert_eq!(header["alg"], "RS256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(claims["iss"], server.url.as_str());
    assert_eq!(claims["sub"], s.mia.id.to_string());
    assert_eq!(claims["aud"], s.client_id.as_str());
    assert_eq!(claims["azp"], s.client_id.as_str());
    assert_eq!(claims["email"], MIA);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Mia Member");
    assert_eq!(claims["given_name"], "Mia");
    assert_eq!(claims["family_name"], "Member");
    assert_eq!(claims["preferred_username"], MIA);
    assert_eq!(claims["groups"], json!(["Ops"]));
    assert_eq!(claims["roles"], json!(["Power"]));
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["auth_time"].as_i64().is_some());
    // at_hash: the left half of SHA-256 of the access token.
    let access = tokens.access_token().secret().clone();
    {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(access.as_bytes());
        assert_eq!(
            claims["at_hash"],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
        );
    }

    let info: UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> =
        s.rp.user_info(
            AccessToken::new(access.clone()),
            Some(openidconnect::SubjectIdentifier::new(s.mia.id.to_string())),
        )?
        .request_async(&rp_http)
        .await?;
    assert_eq!(info.email().map(|e| e.as_str()), Some(MIA));
    // POST with the bearer token answers the same, with the groups.
    let posted = body(
        Client::new()
            .post(server.at("/oidc/userinfo"))
            .bearer_auth(&access)
            .send()
            .await?,
    )
    .await;
    assert_eq!(posted["sub"], s.mia.id.to_string());
    assert_eq!(posted["roles"], json!(["Power"]));
    assert_eq!(posted["groups"], json!(["Ops"]));

    // Introspection for the confidential client.
    let secret = s.secret.clone().unwrap_or_default();
    let introspected = body(
        Client::new()
            .post(server.at("/oidc/introspect"))
            .basic_auth(&s.client_id, Some(&secret))
            .form(&[("token", access.as_str())])
            .send()
            .await?,
    )
    .await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["sub"], s.mia.id.to_string());

    // Revocation (RFC 7009), posted as the form it is: the access token
    // stops working, and the audit log has the sign-in.
    let revoked = Client::new()
        .post(server.at("/oidc/revoke"))
        .form(&[
            ("token", access.as_str()),
            ("client_id", s.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        userinfo_status(server, &access).await?,
        StatusCode::UNAUTHORIZED
    );
    let introspected = body(
        Client::new()
            .post(server.at("/oidc/introspect"))
            .basic_auth(&s.client_id, Some(&secret))
            .form(&[("token", access.as_str())])
            .send()
            .await?,
    )
    .await;
    assert_eq!(introspected, json!({"active": false}));
    let audit = s
        .owner
        .get(server.at("/rest/audit?action=app.signin"))
        .send()
        .await?
        .text()
        .await?;
    assert!(audit.contains(MIA), "{audit}");
    Ok(())
}

async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &["profile"]);
    let code = code_for(&browser, &started).await?;
    let first = exchange(&s.rp, &code, &started.verifier).await?;
    let refresh = first.refresh_token().ok_or("no refresh token")?.clone();
    let second =
        s.rp.exchange_refresh_token(&refresh)?
            .request_async(&rp_http)
            .await?;
    let next_refresh = second.refresh_token().ok_or("no refresh token")?.clone();
    assert_ne!(next_refresh.secret(), refresh.secret(), "rotated");
    let id_token = second.id_token().ok_or("no ID token on refresh")?;
    let now = server.state.usher().now();
    let verifier =
        s.rp.id_token_verifier()
            .set_time_fn(move || chrono::DateTime::from_timestamp_millis(now).unwrap_or_default());
    id_token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?;
    let access = second.access_token().secret().clone();
    assert_eq!(userinfo_status(server, &access).await?, StatusCode::OK);
    // The first refresh token again: someone else has a copy. Everything
    // issued from that sign-in goes.
    let reused =
        s.rp.exchange_refresh_token(&refresh)?
            .request_async(&rp_http)
            .await;
    assert!(reused.is_err(), "a used refresh token was accepted");
    assert_eq!(
        userinfo_status(server, &access).await?,
        StatusCode::UNAUTHORIZED
    );
    let after =
        s.rp.exchange_refresh_token(&RefreshToken::new(next_refresh.secret().clone()))?
            .request_async(&rp_http)
            .await;
    assert!(after.is_err(), "the family survived a reuse");
    Ok(())
}

async fn codes_are_single_use_and_short_lived(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let tokens = exchange(&s.rp, &code, &started.verifier).await?;
    let access = tokens.access_token().secret().clone();
    let replayed = exchange(&s.rp, &code, &started.verifier).await;
    assert!(replayed.is_err(), "a code worked twice");
    assert_eq!(
        userinfo_status(server, &access).await?,
        StatusCode::UNAUTHORIZED,
        "a replayed code revokes what it issued"
    );
    let refresh = tokens.refresh_token().ok_or("no refresh token")?.clone();
    assert!(
        s.rp.exchange_refresh_token(&refresh)?
            .request_async(&rp_http)
            .await
            .is_err()
    );
    // A code not used within a minute is void.
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    server.advance_minutes(2);
    assert!(exchange(&s.rp, &code, &started.verifier).await.is_err());
    Ok(())
}

async fn authorization_errors_follow_rfc_6749(db: Db) -> TestResult {
    let s = setup(db, true, json!("everyone")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let authorize = |query: &str| server.at(&format!("/oidc/authorize?{query}"));
    let base = format!(
        "response_type=code&scope=openid&client_id={}&state=s1",
        s.client_id
    );
    // Before the client and its redirect URI are known: a page, never a
    // redirect to an address nobody vouched for.
    for query in [
        format!("{base}&redirect_uri=http%3A%2F%2Fevil.example%2Fcb"),
        format!("{base}&redirect_uri=http%3A%2F%2Frp.example.test%2Fcallback%2F"),
        base.clone(),
        format!("response_type=code&scope=openid&client_id=nobody&redirect_uri={REDIRECT}"),
    ] {
        let response = browser.get(authorize(&query)).send().await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(location(&response).is_empty());
    }
    let redirect = "redirect_uri=http%3A%2F%2Frp.example.test%2Fcallback";
    // After: back to the app with the error and the state.
    for (query, error) in [
        (format!("{base}&{redirect}"), "invalid_request"),
        (
            format!(
                "response_type=token&scope=openid&client_id={}&state=s1&{redirect}",
                s.client_id
            ),
            "unsupported_response_type",
        ),
        (
            format!("{base}&{redirect}&code_challenge=abc&code_challenge_method=plain"),
            "invalid_request",
        ),
    ] {
        let back = visit(&browser, &authorize(&query)).await?;
        assert!(back.starts_with(REDIRECT), "{back}");
        assert_eq!(param(&back, "error").as_deref(), Some(error), "{query}");
        assert_eq!(param(&back, "state").as_deref(), Some("s1"));
    }
    // prompt=none with nobody signed in.
    let started = start(&s.rp, &[]);
    let anonymous = server.client();
    let back = visit(&anonymous, &format!("{}&prompt=none", started.url)).await?;
    assert_eq!(param(&back, "error").as_deref(), Some("login_required"));
    // Without prompt=none: to Usher's sign-in page and back.
    let to_signin = visit(&anonymous, &started.url).await?;
    assert!(
        to_signin.contains("/signin?redirect=/oidc/authorize%3F"),
        "{to_signin}"
    );
    // A person without access.
    let members_only = body(
        s.owner
            .post(server.at("/rest/apps"))
            .json(&app_body("Private", true, json!({"users": []})))
            .send()
            .await?,
    )
    .await;
    let rp = rp_for(
        server,
        members_only["data"]["clientId"]
            .as_str()
            .unwrap_or_default(),
        None,
    )
    .await?;
    let started = start(&rp, &[]);
    let back = visit(&browser, &started.url).await?;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    // A public client with PKCE signs in without a secret; a wrong
    // verifier is refused.
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let wrong = PkceCodeVerifier::new("x".repeat(50));
    assert!(
        exchange(&s.rp, &code, &wrong).await.is_err(),
        "PKCE mismatch accepted"
    );
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let tokens = exchange(&s.rp, &code, &started.verifier).await?;
    assert!(tokens.id_token().is_some());
    // A public client may not use revocation or introspection.
    let refused = Client::new()
        .post(server.at("/oidc/introspect"))
        .form(&[("token", "x"), ("client_id", s.client_id.as_str())])
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

async fn token_endpoint_refusals(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    // A wrong secret: 401 invalid_client, and a code is not spent by it.
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let wrong = Client::new()
        .post(server.at("/oidc/token"))
        .basic_auth(&s.client_id, Some("not-the-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", started.verifier.secret().as_str()),
        ])
        .send()
        .await?;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(wrong).await["error"], "invalid_client");
    // client_secret_post works too.
    let rp = rp_for(server, &s.client_id, s.secret.as_deref())
        .await?
        .set_auth_type(AuthType::RequestBody);
    let tokens = exchange(&rp, &code, &started.verifier).await?;
    assert!(tokens.id_token().is_some());
    // A redirect_uri other than the request's.
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let other = Client::new()
        .post(server.at("/oidc/token"))
        .basic_auth(&s.client_id, s.secret.as_ref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://rp.example.test/other"),
            ("code_verifier", started.verifier.secret().as_str()),
        ])
        .send()
        .await?;
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(other).await["error"], "invalid_grant");
    // Wrong secrets are throttled per client.
    let mut statuses = Vec::new();
    for _ in 0..WRONG_CLIENT_SECRETS.attempts + 2 {
        let response = Client::new()
            .post(server.at("/oidc/token"))
            .basic_auth(&s.client_id, Some("guess"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await?;
        statuses.push(response.status());
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Other grant types are refused.
    let implicit = Client::new()
        .post(server.at("/oidc/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await?;
    assert_eq!(body(implicit).await["error"], "unsupported_grant_type");
    Ok(())
}

async fn a_token_without_signature_is_refused(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let tokens = exchange(&s.rp, &code, &started.verifier).await?;
    let real = tokens.id_token().ok_or("no ID token")?.to_string();
    let claims = real.split('.').nth(1).unwrap_or_default();
    let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let forged: CoreIdToken = format!("{none}.{claims}.").parse()?;
    let now = server.state.usher().now();
    let verifier =
        s.rp.id_token_verifier()
            .set_time_fn(move || chrono::DateTime::from_timestamp_millis(now).unwrap_or_default());
    assert!(forged.claims(&verifier, &started.nonce).is_err());
    // Usher refuses it too, as a logout hint.
    let hint = format!("{none}.{claims}.");
    let refused = browser
        .get(with_pairs(
            &server.at("/oidc/end-session"),
            &[
                ("id_token_hint", hint.as_str()),
                ("post_logout_redirect_uri", SIGNED_OUT),
            ],
        ))
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

async fn losing_access_revokes_tokens_at_once(db: Db) -> TestResult {
    let s = setup(db, false, json!("mia")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let sign_in = async || -> Result<CoreTokenResponse, Box<dyn StdError>> {
        let started = start(&s.rp, &[]);
        let code = code_for(&browser, &started).await?;
        exchange(&s.rp, &code, &started.verifier).await
    };
    // Demoted: another role, so the tokens that carry the old one go.
    let tokens = sign_in().await?;
    let access = tokens.access_token().secret().clone();
    let demoted = s
        .owner
        .patch(server.at(&format!("/rest/apps/{}", s.app_id)))
        .json(&json!({"access": {"users": [{"id": s.mia.id.to_string(), "role": "Basic"}]}}))
        .send()
        .await?;
    assert_eq!(demoted.status(), StatusCode::OK);
    assert_eq!(
        userinfo_status(server, &access).await?,
        StatusCode::UNAUTHORIZED
    );
    // Removed from the app.
    let tokens = sign_in().await?;
    let access = tokens.access_token().secret().clone();
    assert_eq!(userinfo_status(server, &access).await?, StatusCode::OK);
    s.owner
        .patch(server.at(&format!("/rest/apps/{}", s.app_id)))
        .json(&json!({"access": {"users": []}}))
        .send()
        .await?;
    assert_eq!(
        userinfo_status(server, &access).await?,
        StatusCode::UNAUTHORIZED
    );
    let refresh = tokens.refresh_token().ok_or("no refresh token")?.clone();
    assert!(
        s.rp.exchange_refresh_token(&refresh)?
            .request_async(&rp_http)
            .await
            .is_err()
    );
    // Access through a project ends with the membership.
    let project = body(
        s.owner
            .post(server.at("/rest/projects"))
            .json(&json!({"name": "Ops"}))
            .send()
            .await?,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    server
        .store
        .set_member(
            project,
            s.mia.id,
            usher_domain::resources::ProjectRole::Editor,
        )
        .await?;
    s.owner
        .patch(server.at(&format!("/rest/apps/{}", s.app_id)))
        .json(&json!({"access": {"projects": [project.to_string()]}}))
        .send()
        .await?;
    let tokens = sign_in().await?;
    let access = tokens.access_token().secret().clone();
    assert_eq!(userinfo_status(server, &access).await?, StatusCode::OK);
    server.store.remove_member(project, s.mia.id).await?;
    assert_eq!(
        userinfo_status(server, &access).await?,
        StatusCode::UNAUTHORIZED
    );
    // A person deleted mid-session.
    s.owner
        .patch(server.at(&format!("/rest/apps/{}", s.app_id)))
        .json(&json!({"access": "everyone"}))
        .send()
        .await?;
    let tokens = sign_in().await?;
    let access = tokens.access_token().secret().clone();
    assert_eq!(userinfo_status(server, &access).await?, StatusCode::OK);
    let deleted = s
        .owner
        .delete(server.at(&format!("/rest/users/{}", s.mia.id)))
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(
        userinfo_status(server, &access).await?,
        StatusCode::UNAUTHORIZED
    );
    assert!(server.store.user_by_id(s.mia.id).await?.is_none());
    Ok(())
}

async fn logout_from_the_app_ends_the_usher_session(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let tokens = exchange(&s.rp, &code, &started.verifier).await?;
    let hint = tokens.id_token().ok_or("no ID token")?.to_string();
    let end_session = format!("{}/oidc/end-session", server.url);
    let named = body(
        Client::new()
            .get(server.at("/.well-known/openid-configuration"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(named["end_session_endpoint"], end_session.as_str());
    // An address the app did not register: refused.
    let refused = browser
        .get(with_pairs(
            &end_session,
            &[
                ("id_token_hint", hint.as_str()),
                ("post_logout_redirect_uri", "http://evil.example/"),
            ],
        ))
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // The page asks, then the post ends the session and goes back.
    let asked = browser
        .get(with_pairs(
            &end_session,
            &[
                ("id_token_hint", hint.as_str()),
                ("post_logout_redirect_uri", SIGNED_OUT),
                ("state", "bye"),
            ],
        ))
        .send()
        .await?;
    assert_eq!(asked.status(), StatusCode::OK);
    let page = asked.text().await?;
    let token = page
        .split(r#"name="_csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("no form token")?
        .to_owned();
    let still_in = browser.get(server.at("/rest/login")).send().await?;
    assert_eq!(still_in.status(), StatusCode::OK, "a GET ended the session");
    let done = browser
        .post(server.at("/oidc/sign-out"))
        .form(&[
            ("_csrf", token.as_str()),
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "bye"),
            ("confirmed", "yes"),
        ])
        .send()
        .await?;
    assert_eq!(onward(&done), format!("{SIGNED_OUT}?state=bye"));
    let after = browser.get(server.at("/rest/login")).send().await?;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

async fn rotated_keys_keep_the_previous_one_published(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let before = exchange(&s.rp, &code, &started.verifier).await?;
    let old_kid = payload(&format!(
        "x.{}",
        before
            .id_token()
            .ok_or("no ID token")?
            .to_string()
            .split('.')
            .next()
            .unwrap_or_default()
    ))?["kid"]
        .clone();
    let new_kid = server
        .state
        .usher()
        .rotate_signing_keys(&Origin::command_line())
        .await?;
    assert_ne!(json!(new_kid), old_kid);
    let jwks = body(Client::new().get(server.at("/oidc/jwks")).send().await?).await;
    let kids: Vec<&Value> = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| &k["kid"])
        .collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    assert!(kids.contains(&&old_kid) && kids.contains(&&json!(new_kid)));
    // An RP that fetches the JWKS now still verifies the old token, and the
    // new ones carry the new key.
    let rp = rp_for(server, &s.client_id, s.secret.as_deref()).await?;
    verified_claims(
        server,
        &rp,
        before.id_token().ok_or("no ID token")?,
        &started.nonce,
    )?;
    let started = start(&rp, &[]);
    let code = code_for(&browser, &started).await?;
    let after = exchange(&rp, &code, &started.verifier).await?;
    verified_claims(
        server,
        &rp,
        after.id_token().ok_or("no ID token")?,
        &started.nonce,
    )?;
    // Past the old key's last token, it leaves the JWKS.
    server.advance_minutes(26 * 60);
    let jwks = body(Client::new().get(server.at("/oidc/jwks")).send().await?).await;
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
    Ok(())
}

async fn third_party_apps_ask_for_consent_and_prompt_login_asks_again(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    s.owner
        .patch(server.at(&format!("/rest/apps/{}", s.app_id)))
        .json(&json!({"thirdParty": true}))
        .send()
        .await?;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &["email"]);
    let asked = browser.get(&started.url).send().await?;
    assert_eq!(asked.status(), StatusCode::OK);
    let page = asked.text().await?;
    assert!(page.contains("Allow Grafana"), "{page}");
    let field = |name: &str| {
        page.split(&format!(r#"name="{name}" value=""#))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(unescape_html)
            .unwrap_or_default()
    };
    let request = field("request");
    let allowed = browser
        .post(server.at("/oidc/consent"))
        .form(&[
            ("_csrf", field("_csrf")),
            ("request", request),
            ("confirmed", "yes".into()),
        ])
        .send()
        .await?;
    let again = onward(&allowed);
    let status = allowed.status();
    assert!(
        again.contains("/oidc/authorize?"),
        "{again} {status} {}",
        allowed.text().await?
    );
    let back = visit(&browser, &server.at(again.trim_start_matches(&server.url))).await?;
    assert!(param(&back, "code").is_some(), "{back}");
    // Allowed once: the next sign-in goes straight through.
    let started = start(&s.rp, &["email"]);
    code_for(&browser, &started).await?;
    // prompt=login: a fresh sign-in first.
    let started = start(&s.rp, &[]);
    let asked = browser
        .get(format!("{}&prompt=login", started.url))
        .send()
        .await?;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(asked.text().await?.contains("Sign in again"));
    let audit = s
        .owner
        .get(server.at("/rest/audit?action=app.consent"))
        .send()
        .await?
        .text()
        .await?;
    assert!(audit.contains(MIA), "{audit}");
    Ok(())
}

async fn a_temporary_password_is_replaced_on_the_way_into_an_app(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let hash = server
        .store
        .user_by_id(s.mia.id)
        .await?
        .and_then(|u| u.password_hash)
        .ok_or("no hash")?;
    server
        .store
        .set_password(s.mia.id, &hash, true, server.state.usher().now(), None)
        .await?;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &[]);
    let held = visit(&browser, &started.url).await?;
    assert!(
        held.starts_with("/set-password?redirect=/oidc/authorize"),
        "{held}"
    );
    let page = browser.get(server.at(&held)).send().await?.text().await?;
    let field = |name: &str| {
        page.split(&format!(r#"name="{name}" value=""#))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(unescape_html)
            .unwrap_or_default()
    };
    let chosen = browser
        .post(server.at("/set-password"))
        .form(&[
            ("_csrf", field("_csrf")),
            ("redirect", field("redirect")),
            ("password", "Brand1newpassword".into()),
        ])
        .send()
        .await?;
    let back = onward(&chosen);
    assert!(back.starts_with("/oidc/authorize?"), "{back}");
    let to_app = visit(&browser, &server.at(&back)).await?;
    assert!(param(&to_app, "code").is_some(), "{to_app}");
    Ok(())
}

async fn two_factor_set_up_on_the_way_into_an_app_goes_on_to_it(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let enforced = s
        .owner
        .post(server.at("/rest/mfa/enforce-mfa"))
        .json(&json!({"enforce": true}))
        .send()
        .await?;
    assert_eq!(enforced.status(), StatusCode::OK);
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let started = start(&s.rp, &[]);
    let held = visit(&browser, &started.url).await?;
    assert!(
        held.starts_with("/settings/mfa?redirect=/oidc/authorize"),
        "{held}"
    );
    let redirect = param(&server.at(&held), "redirect").ok_or("no redirect")?;

    // Set-up carries where she was going, and offers it once it is on.
    let begun = page_form(
        server,
        &browser,
        "/settings/mfa/start",
        &[("redirect", redirect.as_str())],
    )
    .await
    .send()
    .await?;
    let page_at = location(&begun);
    assert!(page_at.starts_with("/settings/mfa?redirect="), "{page_at}");
    let page = browser
        .get(server.at(&page_at))
        .send()
        .await?
        .text()
        .await?;
    let field = |name: &str| {
        page.split(&format!(r#"name="{name}" value=""#))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(unescape_html)
            .unwrap_or_default()
    };
    assert_eq!(field("redirect"), redirect);
    let secret = field("secret");
    let code = code_at(server, &secret);
    let enabled = page_form(
        server,
        &browser,
        "/settings/mfa/enable",
        &[
            ("mfaCode", code.as_str()),
            ("secret", secret.as_str()),
            ("codes", field("codes").as_str()),
            ("redirect", redirect.as_str()),
        ],
    )
    .await
    .send()
    .await?;
    let done_at = location(&enabled);
    let done = browser
        .get(server.at(&done_at))
        .send()
        .await?
        .text()
        .await?;
    assert!(done.contains("id=\"recovery-codes\""), "{done}");
    let onward = done
        .split(r#"id="mfa-continue""#)
        .next()
        .and_then(|before| before.rsplit(r#"href=""#).next())
        .and_then(|rest| rest.split('"').next())
        .map(unescape_html)
        .ok_or("no way on")?;
    assert!(onward.starts_with("/oidc/authorize?"), "{onward}");
    let to_app = visit(&browser, &server.at(&onward)).await?;
    assert!(param(&to_app, "code").is_some(), "{to_app}");
    Ok(())
}

async fn login_hint_fills_in_the_sign_in_form(db: Db) -> TestResult {
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let started = start(&s.rp, &[]);
    let hinted = with_query_pair(&started.url, "login_hint", MIA);
    let signed_out = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let to_signin = visit(&signed_out, &hinted).await?;
    assert!(to_signin.starts_with("/signin?redirect="), "{to_signin}");
    let page = signed_out
        .get(server.at(&to_signin))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains(&format!(r#"value="{MIA}""#)), "{page}");
    Ok(())
}

/// `url` with one more query parameter.
fn with_query_pair(url: &str, name: &str, value: &str) -> String {
    let mut url = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    url.query_pairs_mut().append_pair(name, value);
    url.to_string()
}

/// UserInfo answers from memory (the store's cache of tokens), yet a token
/// revoked on one instance is refused on every other at once.
async fn another_instance_refuses_a_revoked_token_at_once(db: Db) -> TestResult {
    let s = setup(db, false, json!("mia")).await?;
    let server = &s.server;
    let other = server.sibling(&[]).await;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;
    let sign_in = async || -> Result<CoreTokenResponse, Box<dyn StdError>> {
        let started = start(&s.rp, &[]);
        let code = code_for(&browser, &started).await?;
        exchange(&s.rp, &code, &started.verifier).await
    };
    let tokens = sign_in().await?;
    let access = tokens.access_token().secret().clone();
    for _ in 0..3 {
        assert_eq!(userinfo_status(&other, &access).await?, StatusCode::OK);
    }
    let removed = s
        .owner
        .patch(server.at(&format!("/rest/apps/{}", s.app_id)))
        .json(&json!({"access": {"users": []}}))
        .send()
        .await?;
    assert_eq!(removed.status(), StatusCode::OK);
    assert_eq!(
        userinfo_status(&other, &access).await?,
        StatusCode::UNAUTHORIZED
    );

    // Revoked by the app itself (RFC 7009) on one instance, refused on the
    // other.
    s.owner
        .patch(server.at(&format!("/rest/apps/{}", s.app_id)))
        .json(&json!({"access": "everyone"}))
        .send()
        .await?;
    let tokens = sign_in().await?;
    let access = tokens.access_token().secret().clone();
    assert_eq!(userinfo_status(&other, &access).await?, StatusCode::OK);
    let revoked = reqwest::Client::new()
        .post(server.at("/oidc/revoke"))
        .basic_auth(&s.client_id, s.secret.as_deref())
        .form(&[("token", access.as_str())])
        .send()
        .await?;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        userinfo_status(&other, &access).await?,
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

/// A directory user (issue 18) signs into an app like anyone; when their
/// entry leaves the directory, the next synchronisation revokes the app's
/// tokens, their API keys and their session at once.
async fn a_directory_user_s_app_tokens_and_keys_end_when_they_leave_the_directory(
    db: Db,
) -> TestResult {
    use crate::slapd::{self, Slapd};
    let s = setup(db, false, json!("everyone")).await?;
    let server = &s.server;
    let directory = Slapd::start().await;
    let saved = s
        .owner
        .put(server.at("/rest/ldap/config"))
        .json(&crate::ldap::settings(&directory))
        .send()
        .await?;
    assert_eq!(saved.status(), StatusCode::OK);
    let browser = server.signed_in("ann", slapd::ANN_PASSWORD).await;
    let started = start(&s.rp, &[]);
    let code = code_for(&browser, &started).await?;
    let tokens = exchange(&s.rp, &code, &started.verifier).await?;
    let claims = verified_claims(
        server,
        &s.rp,
        tokens.id_token().ok_or("no ID token")?,
        &started.nonce,
    )?;
    let me = body(browser.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(claims["sub"], me["data"]["id"], "{claims}");
    let access = tokens.access_token().secret().clone();
    assert_eq!(userinfo_status(server, &access).await?, StatusCode::OK);
    let key = crate::harness::new_key(server, &browser, "scripts", &[]).await;
    let with_key = |key: String| async move {
        Client::new()
            .get(server.at("/api/v1/users"))
            .header("X-N8N-API-KEY", key)
            .send()
            .await
            .map(|r| r.status())
    };
    assert_eq!(
        with_key(key.clone()).await?,
        StatusCode::FORBIDDEN,
        "no scope, but a key"
    );

    directory.delete(&format!("uid=ann,{}", slapd::PEOPLE));
    let run = body(
        s.owner
            .post(server.at("/rest/ldap/sync"))
            .json(&json!({"type": "live"}))
            .send()
            .await?,
    )
    .await;
    assert_eq!(run["data"]["disabled"], 1, "{run}");
    assert_eq!(
        userinfo_status(server, &access).await?,
        StatusCode::UNAUTHORIZED
    );
    let refresh = tokens.refresh_token().ok_or("no refresh token")?.clone();
    assert!(
        s.rp.exchange_refresh_token(&refresh)?
            .request_async(&rp_http)
            .await
            .is_err()
    );
    assert_eq!(with_key(key).await?, StatusCode::UNAUTHORIZED);
    assert_eq!(
        browser.get(server.at("/rest/me")).send().await?.status(),
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

/// The ID token's and UserInfo's claims for `browser`'s person, signed into
/// the app anew.
async fn claims_now(s: &Setup, browser: &Client) -> Result<(Value, Value), Box<dyn StdError>> {
    let started = start(&s.rp, &["email", "profile"]);
    let code = code_for(browser, &started).await?;
    let tokens = exchange(&s.rp, &code, &started.verifier).await?;
    let id_token = tokens.id_token().ok_or("no ID token")?;
    let claims = verified_claims(&s.server, &s.rp, id_token, &started.nonce)?;
    let info = body(
        Client::new()
            .get(s.server.at("/oidc/userinfo"))
            .bearer_auth(tokens.access_token().secret())
            .send()
            .await?,
    )
    .await;
    Ok((claims, info))
}

/// The security review's attack: a member changes their own address to
/// someone else's and signs into an app that links accounts by verified
/// email. The address is the member's word only until they follow the link
/// mailed to it, and the claims say so; an address an admin set (Mia was
/// added by one) is verified.
async fn email_verified_is_false_for_a_self_changed_address_until_its_link_is_followed(
    db: Db,
) -> TestResult {
    use crate::mail_sink::{Security, SmtpSink};
    let sink = SmtpSink::start(
        Security::StartTls,
        Some((crate::harness::SMTP_USER, crate::harness::SMTP_PASSWORD)),
    )
    .await;
    let server = TestServer::start_with_mail(db, &sink, Security::StartTls, &[]).await;
    let s = setup_on(server, false, json!("mia")).await?;
    let server = &s.server;
    let browser = server.signed_in(MIA, MIA_PASSWORD).await;

    let (claims, info) = claims_now(&s, &browser).await?;
    assert_eq!(claims["email"], MIA);
    assert_eq!(claims["email_verified"], true, "set by an admin");
    assert_eq!(info["email_verified"], true);

    const VICTIM: &str = "victim@example.com";
    let changed = browser
        .patch(server.at("/rest/me"))
        .json(
            &json!({"email": VICTIM, "firstName": "Mia", "lastName": "Member",
            "currentPassword": MIA_PASSWORD}),
        )
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed = body(changed).await;
    assert_eq!(changed["data"]["email"], VICTIM);
    assert_eq!(changed["data"]["emailVerified"], false);
    assert_eq!(changed["data"]["emailConfirmation"]["emailSent"], true);

    let (claims, info) = claims_now(&s, &browser).await?;
    assert_eq!(claims["email"], VICTIM);
    assert_eq!(claims["email_verified"], false, "{claims}");
    assert_eq!(info["email"], VICTIM);
    assert_eq!(info["email_verified"], false, "{info}");
    // Apps find accounts by preferred_username too: not an unconfirmed one.
    assert!(claims.get("preferred_username").is_none(), "{claims}");
    assert!(info.get("preferred_username").is_none(), "{info}");

    let message = sink.next_message(std::time::Duration::from_secs(10)).await;
    // No password reset goes to an address that is not confirmed.
    let sent = sink.delivered().len();
    let reset = Client::new()
        .post(server.at("/rest/forgot-password"))
        .json(&json!({"email": VICTIM}))
        .send()
        .await?;
    assert_eq!(reset.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        sink.delivered().len(),
        sent,
        "a reset went to an unconfirmed address"
    );
    assert_eq!(message.to, vec![VICTIM.to_owned()]);
    let link = message
        .link("/verify-email?token=")
        .ok_or("no link in the email")?;
    // Opening the link (as a mail scanner does) changes nothing.
    let page = Client::new().get(&link).send().await?;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await?.contains(VICTIM));
    let (claims, _) = claims_now(&s, &browser).await?;
    assert_eq!(
        claims["email_verified"], false,
        "a GET confirmed the address"
    );

    let token = link.split("token=").nth(1).unwrap_or_default().to_owned();
    let confirm = || async {
        Client::new()
            .post(server.at("/rest/verify-email"))
            .json(&json!({"token": token}))
            .send()
            .await
    };
    let confirmed = confirm().await?;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(body(confirmed).await["data"]["emailVerified"], true);
    let (claims, info) = claims_now(&s, &browser).await?;
    assert_eq!(claims["email_verified"], true);
    assert_eq!(info["email_verified"], true);
    assert_eq!(claims["preferred_username"], VICTIM);

    let again = confirm().await?;
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "the link works once");
    Ok(())
}
