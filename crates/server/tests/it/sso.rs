//! Single sign-on into Usher through an OpenID Connect provider: a second
//! Usher instance (issue 12's provider) stands for the company's identity
//! provider, and a client with a cookie jar for the browser (it follows no
//! redirects, so each hop is seen). The provider's cookie has its own name:
//! both servers are on 127.0.0.1, and cookies do not tell ports apart.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_domain::{
    clock::HOUR,
    model::Role,
    service::sso::{
        ACCOUNT_DISABLED, DOMAIN_NOT_ALLOWED, LINKED_ELSEWHERE, NO_NEW_ACCOUNTS, PLAIN_HTTP,
        SECRET_AGAIN, SECRET_PLACEHOLDER, USE_SSO,
    },
    store::{LdapStore as _, SettingStore as _, SsoStore as _, UserStore as _},
};

use crate::{
    apps::app_body,
    harness::{Db, OWNER_EMAIL, OWNER_PASSWORD, TestResult, TestServer, body, location, login},
};

crate::on_both_databases!(
    the_config_api_hides_the_secret_and_checks_the_provider,
    a_new_endpoint_or_client_needs_the_secret_typed_again,
    a_discovery_endpoint_over_plain_http_must_be_on_this_machine,
    sso_only_closes_the_directory_s_door_too,
    a_first_sign_in_makes_a_member_and_the_next_finds_them_by_subject,
    a_verified_email_links_a_member_but_never_the_owner_or_an_admin,
    a_callback_from_another_browser_or_replayed_is_refused,
    the_provider_s_error_is_a_page_that_says_so,
    an_expired_id_token_is_refused,
    a_provider_claiming_another_issuer_is_refused,
    sso_only_refuses_a_member_s_password_but_not_the_owner_s,
    usher_s_own_two_factor_code_is_asked_on_top,
    an_app_s_sign_in_at_usher_resumes_after_single_sign_on,
    an_address_a_member_typed_in_neither_signs_in_elsewhere_nor_is_linked,
);

const ANN: &str = "ann@example.com";
const ANN_PASSWORD: &str = "Ann1password";
const SECRET_SHAPE: usize = 43;

/// The company's provider (a second Usher, with an app for the first) and
/// Usher signing in with it.
pub struct Pair {
    pub idp: TestServer,
    pub sp: TestServer,
    pub sp_owner: Client,
    pub client_id: String,
    pub secret: String,
}

impl Pair {
    pub async fn new(db: Db) -> Self {
        let idp = TestServer::start_with(db, &[("N8N_AUTH_COOKIE_NAME", "idp-auth")]).await;
        let sp = TestServer::start(db).await;
        let idp_owner = idp.owner().await;
        idp.add_user(ANN, ANN_PASSWORD, Role::Member).await;
        let mut registration = app_body("Usher SP", false, json!("everyone"));
        registration["redirectUris"] = json!([sp.at("/rest/sso/oidc/callback")]);
        let created = body(
            idp_owner
                .post(idp.at("/rest/apps"))
                .json(&registration)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let client_id = created["data"]["clientId"].as_str().unwrap().to_owned();
        let secret = created["data"]["clientSecret"].as_str().unwrap().to_owned();
        assert!(secret.len() >= SECRET_SHAPE);
        let sp_owner = sp.owner().await;
        Self {
            idp,
            sp,
            sp_owner,
            client_id,
            secret,
        }
    }

    pub fn discovery(&self) -> String {
        self.idp.at("/.well-known/openid-configuration")
    }

    /// Saves the settings through `/rest`, with `extra` on top.
    pub async fn configure(&self, extra: Value) -> reqwest::Response {
        let mut config = json!({
            "discoveryEndpoint": self.discovery(),
            "clientId": self.client_id,
            "clientSecret": self.secret,
            "loginEnabled": true,
            "loginLabel": "Company",
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                config.insert(key.clone(), value.clone());
            }
        }
        self.sp_owner
            .post(self.sp.at("/rest/sso/oidc/config"))
            .json(&config)
            .send()
            .await
            .unwrap()
    }

    /// A browser signed in at the provider as `email`.
    pub async fn browser_at_idp(&self, email: &str, password: &str) -> Client {
        let browser = self.sp.client();
        let signed_in = login(&browser, &self.idp, email, password).await;
        assert_eq!(signed_in.status(), StatusCode::OK);
        browser
    }

    /// Sends `browser` to the provider from Usher's button; the callback
    /// address the provider sends it back to.
    pub async fn to_provider_and_back(&self, browser: &Client, redirect: &str) -> String {
        let start = browser
            .get(
                self.sp
                    .at(&format!("/rest/sso/oidc/login?redirect={redirect}")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            start.status(),
            StatusCode::SEE_OTHER,
            "{}",
            start.text().await.unwrap()
        );
        let authorize = location(&start);
        assert!(authorize.starts_with(&self.idp.url), "{authorize}");
        for needed in [
            "code_challenge_method=S256",
            "nonce=",
            "state=",
            "scope=openid",
        ] {
            assert!(authorize.contains(needed), "{needed} in {authorize}");
        }
        let back = browser.get(&authorize).send().await.unwrap();
        let callback = location(&back);
        assert!(
            callback.starts_with(&self.sp.at("/rest/sso/oidc/callback")),
            "{} {callback}",
            back.status()
        );
        callback
    }
}

async fn who(server: &TestServer, browser: &Client) -> Value {
    let me = browser.get(server.at("/rest/login")).send().await.unwrap();
    if me.status() != StatusCode::OK {
        return Value::Null;
    }
    body(me).await["data"].clone()
}

async fn the_config_api_hides_the_secret_and_checks_the_provider(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    let sp = &pair.sp;
    let empty = body(
        pair.sp_owner
            .get(sp.at("/rest/sso/oidc/config"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(empty["data"]["loginEnabled"], json!(false));
    assert_eq!(empty["data"]["clientSecret"], json!(""));
    assert_eq!(
        empty["data"]["callbackUrl"],
        json!(sp.at("/rest/sso/oidc/callback"))
    );

    let not_url = pair
        .configure(json!({"discoveryEndpoint": "not a url"}))
        .await;
    assert_eq!(not_url.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(not_url).await["message"],
        json!("Provided discovery endpoint is not a valid URL")
    );
    let unreachable = pair
        .configure(
            json!({"discoveryEndpoint": "http://127.0.0.1:9/.well-known/openid-configuration"}),
        )
        .await;
    assert_eq!(unreachable.status(), StatusCode::BAD_REQUEST);
    let message = body(unreachable).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("could not reach the discovery endpoint"),
        "{message}"
    );
    let bad_prompt = pair.configure(json!({"prompt": "always"})).await;
    assert_eq!(bad_prompt.status(), StatusCode::BAD_REQUEST);
    let only_without_sso = pair
        .configure(json!({"loginEnabled": false, "authenticationMethod": "oidc"}))
        .await;
    assert_eq!(only_without_sso.status(), StatusCode::BAD_REQUEST);

    let saved = pair.configure(json!({})).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved = body(saved).await;
    assert_eq!(saved["data"]["clientSecret"], json!(SECRET_PLACEHOLDER));
    assert_eq!(saved["data"]["clientId"], json!(pair.client_id));
    let read = body(
        pair.sp_owner
            .get(sp.at("/rest/sso/oidc/config"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(read["data"]["clientSecret"], json!(SECRET_PLACEHOLDER));
    assert_eq!(read["data"]["authenticationMethod"], json!("email"));
    let stored = sp.store.setting("features.oidc").await?.unwrap_or_default();
    assert!(
        !stored.contains(&pair.secret),
        "the secret is stored sealed"
    );

    // The placeholder sent back keeps the stored secret: sign-in works.
    let again = pair
        .configure(json!({"clientSecret": SECRET_PLACEHOLDER, "loginLabel": "ACME"}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let callback = pair.to_provider_and_back(&browser, "/").await;
    let done = browser.get(&callback).send().await?;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(who(sp, &browser).await["email"], json!(ANN));

    // Members may not read or change it; the sign-in page shows the button.
    let member = sp
        .add_user("mo@example.com", "Member1password", Role::Member)
        .await;
    let mo = sp
        .signed_in(member.email.unwrap().as_str(), "Member1password")
        .await;
    let refused = mo.get(sp.at("/rest/sso/oidc/config")).send().await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let signin = sp
        .client()
        .get(sp.at("/signin?redirect=/settings/api"))
        .send()
        .await?;
    let page = signin.text().await?;
    assert!(page.contains("Sign in with ACME"), "{page}");
    assert!(
        page.contains("/rest/sso/oidc/login?redirect=/settings/api"),
        "{page}"
    );
    Ok(())
}

/// The stored secret goes only to the provider and client it was entered
/// for: the placeholder with another endpoint or client is refused before
/// the provider is asked, and an entered secret is taken.
async fn a_new_endpoint_or_client_needs_the_secret_typed_again(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);
    let elsewhere = "http://127.0.0.1:9/.well-known/openid-configuration";
    for change in [
        json!({"clientId": "another-client"}),
        json!({"discoveryEndpoint": elsewhere}),
        json!({"discoveryEndpoint": elsewhere, "loginEnabled": false}),
    ] {
        let mut sent = change.clone();
        sent["clientSecret"] = json!(SECRET_PLACEHOLDER);
        let refused = pair.configure(sent).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{change}");
        assert_eq!(
            body(refused).await["message"],
            json!(SECRET_AGAIN),
            "{change}"
        );
    }
    // Nothing changed: the stored secret still signs Ann in.
    let stored = body(
        pair.sp_owner
            .get(pair.sp.at("/rest/sso/oidc/config"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(stored["data"]["clientId"], json!(pair.client_id));
    assert_eq!(stored["data"]["discoveryEndpoint"], json!(pair.discovery()));
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let callback = pair.to_provider_and_back(&browser, "/").await;
    assert_eq!(
        browser.get(&callback).send().await?.status(),
        StatusCode::SEE_OTHER
    );
    // Typed again, a new client is saved (sign-in off: nothing to ask).
    let typed = pair
        .configure(json!({"clientId": "another-client", "clientSecret": "an0ther-secret", "loginEnabled": false}))
        .await;
    assert_eq!(typed.status(), StatusCode::OK, "{}", typed.text().await?);
    // The settings page says the same beside the secret's field.
    let page = crate::harness::post_form(
        &pair.sp,
        &pair.sp_owner,
        "/settings/sso",
        &[
            ("discoveryEndpoint", elsewhere),
            ("clientId", "another-client"),
            ("clientSecret", ""),
            ("authenticationMethod", "email"),
        ],
    )
    .await
    .text()
    .await?;
    assert!(page.contains("Enter the client secret again"), "{page}");
    Ok(())
}

/// Plain http to the provider only on this machine: the secret and the
/// codes must not cross a network readable.
async fn a_discovery_endpoint_over_plain_http_must_be_on_this_machine(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    for endpoint in [
        "http://id.example.com/.well-known/openid-configuration",
        "http://localhost:9/.well-known/openid-configuration",
        "http://127.0.0.1@id.example.com/.well-known/openid-configuration",
        "http://id.example.com\\@127.0.0.1/.well-known/openid-configuration",
        "http://127.0.0.1.nip.io/.well-known/openid-configuration",
    ] {
        for on in [true, false] {
            let refused = pair
                .configure(json!({"discoveryEndpoint": endpoint, "loginEnabled": on}))
                .await;
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{endpoint}");
            assert_eq!(
                body(refused).await["message"],
                json!(PLAIN_HTTP),
                "{endpoint}"
            );
        }
    }
    // Loopback written as an address is this machine (the provider of
    // these tests); IPv6's too, as far as the check goes.
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);
    let v6 = pair
        .configure(json!({"discoveryEndpoint": "http://[::1]:9/.well-known/openid-configuration", "loginEnabled": false}))
        .await;
    assert_eq!(v6.status(), StatusCode::OK, "{}", v6.text().await?);

    // A document on this machine that sends the token request elsewhere
    // over plain http.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let document = json!({
        "issuer": url,
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": "http://id.example.com/token",
        "jwks_uri": format!("{url}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let downgraded = pair
        .configure(json!({"discoveryEndpoint": format!("{url}/.well-known/openid-configuration")}))
        .await;
    assert_eq!(downgraded.status(), StatusCode::BAD_REQUEST);
    let message = body(downgraded).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message
            .contains("names http://id.example.com/token as its token endpoint, over plain http"),
        "{message}"
    );

    // Settings kept from before the rule are refused at sign-in.
    pair.sp
        .store
        .put_setting(
            "features.oidc",
            &json!({
                "discoveryEndpoint": "http://id.example.com/.well-known/openid-configuration",
                "clientId": "c", "clientSecret": "", "loginEnabled": true,
            })
            .to_string(),
        )
        .await?;
    let start = pair
        .sp
        .client()
        .get(pair.sp.at("/rest/sso/oidc/login"))
        .send()
        .await?;
    assert_eq!(start.status(), StatusCode::BAD_GATEWAY);
    let page = start.text().await?;
    assert!(page.contains("plain http would show them"), "{page}");
    Ok(())
}

/// With SSO only, a directory password is a password too: refused like a
/// local one, before the directory is asked (it is not even there).
async fn sso_only_closes_the_directory_s_door_too(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    let sp = &pair.sp;
    sp.add_user("mo@example.com", "Member1password", Role::Member)
        .await;
    let saved = pair
        .configure(json!({"authenticationMethod": "oidc"}))
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    // LDAP sign-in turned on afterwards (written as an older Usher or a
    // SQL prompt would: no check stands between), pointing at a port where
    // no directory answers.
    sp.store
        .put_setting(
            "features.ldap",
            &json!({
                "loginEnabled": true,
                "connectionUrl": "127.0.0.1",
                "connectionPort": 9,
                "baseDn": "dc=example,dc=com",
                "emailAttribute": "mail",
                "loginIdAttribute": "uid",
                "ldapIdAttribute": "uid",
                "searchTimeout": 2,
            })
            .to_string(),
        )
        .await?;
    for (who, password) in [
        ("mo@example.com", "Member1password"),
        ("mo", "Member1password"),
        ("nobody@example.com", "Some1password"),
    ] {
        let refused = login(&sp.client(), sp, who, password).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{who}");
        assert_eq!(body(refused).await["message"], json!(USE_SSO), "{who}");
    }
    let owner = login(&sp.client(), sp, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(owner.status(), StatusCode::OK);
    // And the two are not turned on together: saving SSO only while LDAP
    // sign-in is on is refused with what to do.
    let both = pair
        .configure(json!({"clientSecret": SECRET_PLACEHOLDER, "authenticationMethod": "oidc"}))
        .await;
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
    let message = body(both).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("Turn LDAP sign-in off first"), "{message}");
    Ok(())
}

async fn a_first_sign_in_makes_a_member_and_the_next_finds_them_by_subject(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let callback = pair
        .to_provider_and_back(&browser, "/settings/personal")
        .await;
    let done = browser.get(&callback).send().await?;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&done),
        "/settings/personal",
        "the way back is kept"
    );
    let first = who(&pair.sp, &browser).await;
    assert_eq!(first["email"], json!(ANN));
    assert_eq!(first["role"], json!("global:member"));
    assert_eq!(
        first["firstName"],
        json!("Mia"),
        "names come from the provider"
    );

    // Ann's address changes at the provider: the next sign-in still finds
    // her account in Usher, by the provider's subject.
    let moved = browser
        .patch(pair.idp.at("/rest/me"))
        .json(&json!({"email": "ann.new@example.com", "firstName": "Ann", "lastName": "Lee", "currentPassword": ANN_PASSWORD}))
        .send()
        .await?;
    assert_eq!(moved.status(), StatusCode::OK, "{}", moved.text().await?);
    let browser = pair
        .browser_at_idp("ann.new@example.com", ANN_PASSWORD)
        .await;
    let callback = pair.to_provider_and_back(&browser, "/").await;
    assert_eq!(
        browser.get(&callback).send().await?.status(),
        StatusCode::SEE_OTHER
    );
    let second = who(&pair.sp, &browser).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(
        pair.sp.store.list_users().await?.len(),
        2,
        "the owner and Ann"
    );
    let audit = body(
        pair.sp_owner
            .get(pair.sp.at("/rest/audit?action=user.created"))
            .send()
            .await?,
    )
    .await;
    assert!(audit.to_string().contains(ANN), "{audit}");
    Ok(())
}

/// The first sign-in links a member by their verified email, never the
/// owner or an admin: an admin who may change the settings could point them
/// at a provider of their own that asserts any address.
async fn a_verified_email_links_a_member_but_never_the_owner_or_an_admin(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    let sp = &pair.sp;
    let existing = sp.add_user(ANN, "Usher1password", Role::Admin).await;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);

    // The provider asserts an admin's verified email: refused, not linked.
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let callback = pair.to_provider_and_back(&browser, "/").await;
    let refused = browser.get(&callback).send().await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await?;
    assert!(
        page.contains("already exists with administrator rights"),
        "{page}"
    );
    assert!(page.contains("Sign in with your password"), "{page}");
    assert_eq!(who(sp, &browser).await, Value::Null);

    // The owner's, the same (both servers' owners have one address).
    let owner_browser = pair.browser_at_idp(OWNER_EMAIL, OWNER_PASSWORD).await;
    let callback = pair.to_provider_and_back(&owner_browser, "/").await;
    let refused = owner_browser.get(&callback).send().await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await?;
    assert!(
        page.contains("already exists with administrator rights"),
        "{page}"
    );
    assert_eq!(who(sp, &owner_browser).await, Value::Null);
    let audit = body(
        pair.sp_owner
            .get(sp.at("/rest/audit?action=login.failed"))
            .send()
            .await?,
    )
    .await
    .to_string();
    assert_eq!(
        audit
            .matches("an account with administrator rights, not linked")
            .count(),
        2,
        "{audit}"
    );
    let linked = body(
        pair.sp_owner
            .get(sp.at("/rest/audit?action=sso.linked"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(linked["data"]["count"], json!(0), "{linked}");
    // Their passwords still work.
    assert_eq!(
        login(&sp.client(), sp, ANN, "Usher1password")
            .await
            .status(),
        StatusCode::OK
    );

    // Made a member, the same person is linked by the verified email, and
    // keeps the account when made an admin again.
    let demoted = pair
        .sp_owner
        .patch(sp.at(&format!("/rest/users/{}/role", existing.id)))
        .json(&json!({"newRoleName": "global:member"}))
        .send()
        .await?;
    assert_eq!(
        demoted.status(),
        StatusCode::OK,
        "{}",
        demoted.text().await?
    );
    let callback = pair.to_provider_and_back(&browser, "/").await;
    assert_eq!(
        browser.get(&callback).send().await?.status(),
        StatusCode::SEE_OTHER
    );
    let me = who(sp, &browser).await;
    assert_eq!(me["id"], json!(existing.id.to_string()));
    assert_eq!(me["role"], json!("global:member"));
    let promoted = pair
        .sp_owner
        .patch(sp.at(&format!("/rest/users/{}/role", existing.id)))
        .json(&json!({"newRoleName": "global:admin"}))
        .send()
        .await?;
    assert_eq!(promoted.status(), StatusCode::OK);
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let callback = pair.to_provider_and_back(&browser, "/").await;
    assert_eq!(
        browser.get(&callback).send().await?.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(who(sp, &browser).await["role"], json!("global:admin"));
    // The account's own password still works (passwords are for everyone).
    let local = login(&sp.client(), sp, ANN, "Usher1password").await;
    assert_eq!(local.status(), StatusCode::OK);
    Ok(())
}

async fn a_callback_from_another_browser_or_replayed_is_refused(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let callback = pair.to_provider_and_back(&browser, "/").await;

    // Login CSRF: the attacker's callback address in someone else's browser.
    let victim = pair.sp.client();
    let planted = victim.get(&callback).send().await?;
    assert_eq!(planted.status(), StatusCode::BAD_REQUEST);
    let page = planted.text().await?;
    assert!(
        page.contains("not for a sign-in started in this browser"),
        "{page}"
    );
    assert_eq!(who(&pair.sp, &victim).await, Value::Null);

    // A state that does not match the cookie, in the right browser.
    let tampered = callback.replace("state=", "state=x");
    let wrong = browser.get(&tampered).send().await?;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(who(&pair.sp, &browser).await, Value::Null);

    // A fresh start, finished, then replayed with the same cookie value.
    let callback = pair.to_provider_and_back(&browser, "/").await;
    let state = url::Url::parse(&callback)?
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    assert_eq!(
        browser.get(&callback).send().await?.status(),
        StatusCode::SEE_OTHER
    );
    let replay = pair
        .sp
        .client()
        .get(&callback)
        .header("cookie", format!("n8n-auth-sso={state}"))
        .send()
        .await?;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let page = replay.text().await?;
    assert!(page.contains("not known here"), "{page}");
    Ok(())
}

async fn the_provider_s_error_is_a_page_that_says_so(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);
    let browser = pair.sp.client();
    let start = browser
        .get(pair.sp.at("/rest/sso/oidc/login"))
        .send()
        .await?;
    let state = url::Url::parse(&location(&start))?
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let denied = browser
        .get(pair.sp.at(&format!(
            "/rest/sso/oidc/callback?error=access_denied&error_description=Not+in+the+Usher+group&state={state}"
        )))
        .send()
        .await?;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let page = denied.text().await?;
    assert!(page.contains("Single sign-on did not work"), "{page}");
    assert!(page.contains("access denied"), "{page}");
    assert!(page.contains("Not in the Usher group"), "{page}");
    let audit = body(
        pair.sp_owner
            .get(pair.sp.at("/rest/audit?action=login.failed"))
            .send()
            .await?,
    )
    .await;
    assert!(audit.to_string().contains("access_denied"), "{audit}");

    // Nothing configured at all: a page, not a 500.
    let pair2 = TestServer::start(db).await;
    pair2.owner().await;
    let off = pair2
        .client()
        .get(pair2.at("/rest/sso/oidc/login"))
        .send()
        .await?;
    assert_eq!(off.status(), StatusCode::NOT_FOUND);
    assert!(off.text().await?.contains("not turned on"));
    Ok(())
}

async fn an_expired_id_token_is_refused(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let start = browser
        .get(pair.sp.at("/rest/sso/oidc/login"))
        .send()
        .await?;
    // The provider's clock is two hours behind: what it signs has expired
    // by Usher's.
    pair.idp.clock.advance(-2 * HOUR);
    let back = browser.get(location(&start)).send().await?;
    let refused = browser.get(location(&back)).send().await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let page = refused.text().await?;
    assert!(page.contains("ID token was refused"), "{page}");
    assert_eq!(who(&pair.sp, &browser).await, Value::Null);
    Ok(())
}

async fn a_provider_claiming_another_issuer_is_refused(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    // A server of the test's that hands out the real provider's document
    // under its own address (a mix-up: it claims another provider's name).
    let real = reqwest::get(pair.discovery()).await?.text().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || {
            let real = real.clone();
            async move { ([("content-type", "application/json")], real) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mixed = pair
        .configure(json!({"discoveryEndpoint": format!("http://{address}/.well-known/openid-configuration")}))
        .await;
    assert_eq!(mixed.status(), StatusCode::BAD_REQUEST);
    let message = body(mixed).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("calls itself"), "{message}");
    Ok(())
}

async fn sso_only_refuses_a_member_s_password_but_not_the_owner_s(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    let sp = &pair.sp;
    sp.add_user("mo@example.com", "Member1password", Role::Member)
        .await;
    let saved = pair
        .configure(json!({"authenticationMethod": "oidc"}))
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let settings = body(sp.client().get(sp.at("/rest/settings")).send().await?).await;
    assert_eq!(
        settings["data"]["userManagement"]["authenticationMethod"],
        json!("oidc")
    );
    assert_eq!(settings["data"]["sso"]["oidc"]["loginEnabled"], json!(true));
    let member = login(&sp.client(), sp, "mo@example.com", "Member1password").await;
    assert_eq!(member.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(member).await["message"], json!(USE_SSO));
    let wrong = login(&sp.client(), sp, "mo@example.com", "Wrong1password").await;
    assert_eq!(
        body(wrong).await["message"],
        json!(USE_SSO),
        "the same answer"
    );
    let owner = login(&sp.client(), sp, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(owner.status(), StatusCode::OK);
    // The sign-in page says so beside its button.
    let page = crate::harness::post_form(
        sp,
        &sp.client(),
        "/signin",
        &[("email", "mo@example.com"), ("password", "Member1password")],
    )
    .await
    .text()
    .await?;
    assert!(
        page.contains(USE_SSO) && page.contains("Sign in with Company"),
        "{page}"
    );
    // Password reset: the page points to the button, and a reset link an
    // admin made for the member is refused.
    let (_, forgot) = crate::harness::page(sp, &sp.client(), "/forgot-password").await;
    assert!(
        forgot.contains("id=\"sso-only\"") && forgot.contains("Sign in with Company"),
        "{forgot}"
    );
    let mo = sp
        .store
        .user_by_email(&usher_domain::model::Email::parse("mo@example.com")?)
        .await?
        .unwrap();
    let link = body(
        pair.sp_owner
            .get(sp.at(&format!("/rest/users/{}/password-reset-link", mo.id)))
            .send()
            .await?,
    )
    .await["data"]["link"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let token = link.split("token=").nth(1).unwrap_or_default();
    let reset = sp
        .client()
        .post(sp.at("/rest/change-password"))
        .json(&json!({"token": token, "password": "Brand1newpass"}))
        .send()
        .await?;
    assert_eq!(reset.status(), StatusCode::FORBIDDEN);
    assert!(
        body(reset).await["message"]
            .as_str()
            .unwrap_or_default()
            .contains("single sign-on")
    );
    // Back to passwords for everyone.
    let saved = pair
        .configure(json!({"authenticationMethod": "email"}))
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let member = login(&sp.client(), sp, "mo@example.com", "Member1password").await;
    assert_eq!(member.status(), StatusCode::OK);
    Ok(())
}

async fn usher_s_own_two_factor_code_is_asked_on_top(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    let sp = &pair.sp;
    sp.add_user(ANN, "Usher1password", Role::Member).await;
    let ann_at_sp = sp.signed_in(ANN, "Usher1password").await;
    let (secret, _) = crate::harness::enrol(sp, &ann_at_sp).await;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let callback = pair.to_provider_and_back(&browser, "/settings/api").await;
    let asked = browser.get(&callback).send().await?;
    assert_eq!(asked.status(), StatusCode::SEE_OTHER);
    assert_eq!(who(sp, &browser).await, Value::Null, "not signed in yet");
    let code_page = browser.get(sp.at(&location(&asked))).send().await?;
    let page = code_page.text().await?;
    let challenge = page
        .split(r#"name="challenge" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    assert!(!challenge.is_empty(), "{page}");
    let done = crate::harness::post_form(
        sp,
        &browser,
        "/signin/code",
        &[
            ("challenge", &challenge),
            ("mfaCode", &crate::harness::code_at(sp, &secret)),
            ("redirect", "/settings/api"),
        ],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/settings/api");
    assert_eq!(who(sp, &browser).await["email"], json!(ANN));
    Ok(())
}

crate::on_both_databases!(
    tokens_that_do_not_fit_are_refused,
    an_unverified_email_makes_no_account,
    trust_email_takes_an_address_without_email_verified,
    an_account_linked_to_one_identity_is_not_linked_to_another_by_email,
    a_disabled_member_is_never_linked_by_email,
    new_accounts_only_for_allowed_domains,
    with_create_accounts_off_only_existing_accounts_get_in,
);

/// A provider of the test's own that signs whatever ID token the test asks
/// for (with a key it publishes, or another), to show each check of the
/// ID token refusing what a real provider would never send: a token for
/// another client, with another nonce, from another issuer, signed by a
/// key that is not the provider's, and an unverified email.
struct Forger {
    url: String,
    key: String,
    stranger_key: String,
    /// The next ID token's claims, and whether to sign it with the
    /// stranger's key.
    next: std::sync::Arc<std::sync::Mutex<(Value, bool)>>,
}

impl Forger {
    async fn start() -> Forger {
        use axum::{Json, extract::State, routing::get, routing::post};
        use base64::Engine as _;
        use rsa::{
            pkcs8::{EncodePrivateKey as _, LineEnding},
            traits::PublicKeyParts as _,
        };
        let private = |()| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let key = private(());
        let stranger = private(());
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwks = json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1",
            "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be()),
        }]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({
            "issuer": url,
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
            "jwks_uri": format!("{url}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        let forger = Forger {
            url,
            key: key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            stranger_key: stranger.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            next: std::sync::Arc::new(std::sync::Mutex::new((Value::Null, false))),
        };
        let signing = (forger.key.clone(), forger.stranger_key.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let discovery = discovery.clone();
                    async move { Json(discovery) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let jwks = jwks.clone();
                    async move { Json(jwks) }
                }),
            )
            .route(
                "/token",
                post(
                    |State(next): State<std::sync::Arc<std::sync::Mutex<(Value, bool)>>>| async move {
                        let (claims, stranger) = next.lock().unwrap().clone();
                        let pem = if stranger { &signing.1 } else { &signing.0 };
                        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                        header.kid = Some("k1".into());
                        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
                        let id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
                        Json(json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token}))
                    },
                ),
            )
            .with_state(forger.next.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        forger
    }

    fn discovery(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.url)
    }

    /// Saves this provider in `sp`'s settings (as its owner `owner`).
    async fn configure(&self, sp: &TestServer, owner: &Client) {
        let saved = owner
            .post(sp.at("/rest/sso/oidc/config"))
            .json(&json!({
                "discoveryEndpoint": self.discovery(),
                "clientId": "usher", "clientSecret": "s3cret", "loginEnabled": true,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            saved.status(),
            StatusCode::OK,
            "{}",
            saved.text().await.unwrap()
        );
    }

    /// Saves this provider in `sp`'s settings through `/rest`, with `extra`
    /// on top; the answer.
    async fn configure_with(&self, sp: &TestServer, owner: &Client, extra: Value) -> Value {
        let mut config = json!({
            "discoveryEndpoint": self.discovery(),
            "clientId": "usher", "clientSecret": "s3cret", "loginEnabled": true,
        });
        for (key, value) in extra.as_object().cloned().unwrap_or_default() {
            config[key] = value;
        }
        let saved = owner
            .post(sp.at("/rest/sso/oidc/config"))
            .json(&config)
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), StatusCode::OK);
        body(saved).await
    }

    /// One sign-in in a fresh browser: the ID token the provider gives is
    /// Ann's, verified, with the nonce Usher sent, changed by `change` (a
    /// null there leaves the claim out; signed with the stranger's key if
    /// `stranger`). The callback's status
    /// and page, and whether the browser is signed in afterwards.
    async fn attempt(
        &self,
        sp: &TestServer,
        change: Value,
        stranger: bool,
    ) -> (StatusCode, String, bool) {
        let now = sp.state.usher().now() / 1000;
        let browser = sp.client();
        let start = browser
            .get(sp.at("/rest/sso/oidc/login"))
            .send()
            .await
            .unwrap();
        let authorize = url::Url::parse(&location(&start)).unwrap();
        assert!(authorize.as_str().starts_with(&self.url));
        let query = |name: &str| {
            authorize
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let mut claims = json!({
            "iss": self.url, "sub": "ann-at-forger", "aud": "usher",
            "iat": now, "exp": now + 300, "nonce": query("nonce"),
            "email": ANN, "email_verified": true,
        });
        for (key, value) in change.as_object().cloned().unwrap_or_default() {
            match (value, claims.as_object_mut()) {
                (Value::Null, Some(claims)) => {
                    claims.remove(&key);
                }
                (value, _) => claims[key] = value,
            }
        }
        *self.next.lock().unwrap() = (claims, stranger);
        let back = browser
            .get(sp.at(&format!(
                "/rest/sso/oidc/callback?code=c0de&state={}",
                query("state")
            )))
            .send()
            .await
            .unwrap();
        let status = back.status();
        let page = back.text().await.unwrap();
        (status, page, who(sp, &browser).await != Value::Null)
    }
}

async fn tokens_that_do_not_fit_are_refused(db: Db) -> TestResult {
    let forger = Forger::start().await;
    assert!(!forger.key.is_empty() && !forger.stranger_key.is_empty());
    let sp = TestServer::start(db).await;
    let owner = sp.owner().await;
    sp.add_user(ANN, "Usher1password", Role::Member).await;
    forger.configure(&sp, &owner).await;

    for (what, change, stranger) in [
        ("for another client", json!({"aud": "someone-else"}), false),
        ("with another nonce", json!({"nonce": "not-the-one"}), false),
        (
            "from another issuer",
            json!({"iss": "https://evil.example"}),
            false,
        ),
        ("signed with another key", json!({}), true),
    ] {
        let (status, page, signed_in) = forger.attempt(&sp, change, stranger).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "a token {what}: {page}");
        assert!(
            page.contains("ID token was refused"),
            "a token {what}: {page}"
        );
        assert!(!signed_in, "a token {what} signed someone in");
    }

    // An unverified email never takes over the account that has it.
    let (status, page, signed_in) = forger
        .attempt(&sp, json!({"email_verified": false}), false)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("does not say that this email address (ann@example.com) is verified"),
        "{page}"
    );
    assert!(!signed_in);

    // The same provider, a token that fits: Ann's account, linked.
    let (status, page, signed_in) = forger.attempt(&sp, json!({}), false).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in);
    let audit = body(
        owner
            .get(sp.at("/rest/audit?action=login.failed"))
            .send()
            .await?,
    )
    .await;
    assert!(
        audit.to_string().contains("ID token was refused"),
        "{audit}"
    );
    Ok(())
}

/// An address the provider does not call verified makes no account (a
/// later directory sign-in with that email would land in it), whether
/// `email_verified` is false or missing (as from Microsoft Entra ID, with
/// "trust email" off, as it is by default).
async fn an_unverified_email_makes_no_account(db: Db) -> TestResult {
    let forger = Forger::start().await;
    let sp = TestServer::start(db).await;
    let owner = sp.owner().await;
    forger.configure(&sp, &owner).await;
    for verified in [json!(false), Value::Null] {
        let (status, page, signed_in) = forger
            .attempt(
                &sp,
                json!({"email": "new@example.com", "email_verified": verified}),
                false,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(
            page.contains("does not say that this email address (new@example.com) is verified"),
            "{page}"
        );
        assert!(!signed_in);
    }
    assert_eq!(sp.store.list_users().await?.len(), 1, "the owner alone");
    let audit = body(
        owner
            .get(sp.at("/rest/audit?action=login.failed"))
            .send()
            .await?,
    )
    .await;
    assert!(
        audit
            .to_string()
            .contains("new@example.com: email not verified"),
        "{audit}"
    );
    assert!(
        audit.to_string().contains("it sent no email_verified"),
        "the log names the missing claim: {audit}"
    );
    // Verified, the same address makes the member.
    let (status, page, signed_in) = forger
        .attempt(&sp, json!({"email": "new@example.com"}), false)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in);
    assert_eq!(sp.store.list_users().await?.len(), 2);
    Ok(())
}

/// "Trust email" (Keycloak's answer for Microsoft Entra ID, which sends no
/// `email_verified`): an address without the claim counts as verified and
/// makes a member; an explicit `email_verified: false` is still refused,
/// and the owner is still never linked by email.
async fn trust_email_takes_an_address_without_email_verified(db: Db) -> TestResult {
    let forger = Forger::start().await;
    let sp = TestServer::start(db).await;
    let owner = sp.owner().await;
    // Saved from the page's checkbox, read back through /rest.
    let discovery = forger.discovery();
    let saved = crate::harness::post_form(
        &sp,
        &owner,
        "/settings/sso",
        &[
            ("discoveryEndpoint", discovery.as_str()),
            ("clientId", "usher"),
            ("clientSecret", "s3cret"),
            ("loginEnabled", "1"),
            ("trustEmail", "1"),
            ("createAccounts", "1"),
            ("authenticationMethod", "email"),
        ],
    )
    .await;
    assert_eq!(
        saved.status(),
        StatusCode::SEE_OTHER,
        "{}",
        saved.text().await?
    );
    let config = body(owner.get(sp.at("/rest/sso/oidc/config")).send().await?).await;
    assert_eq!(config["data"]["trustEmail"], json!(true), "{config}");
    let page = owner
        .get(sp.at("/settings/sso"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        page.contains(r#"name="trustEmail" value="1" checked"#),
        "{page}"
    );

    // An explicit "not verified" is not overruled.
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"email": "new@example.com", "email_verified": false}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("does not say that this email address (new@example.com) is verified"),
        "{page}"
    );
    assert!(!signed_in);
    // The owner's address without the claim: still never linked by email.
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"email": OWNER_EMAIL, "email_verified": null}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("already exists with administrator rights"),
        "{page}"
    );
    assert!(!signed_in);
    assert_eq!(sp.store.list_users().await?.len(), 1, "the owner alone");

    // No claim at all: the address counts, and makes a member.
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"email": "new@example.com", "email_verified": null}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in);
    let users = sp.store.list_users().await?;
    let made = users
        .iter()
        .find(|u| {
            u.email
                .as_ref()
                .is_some_and(|e| e.as_str() == "new@example.com")
        })
        .expect("the new member");
    assert_eq!(made.role, Role::Member);
    assert_eq!(users.len(), 2);

    // Turned off again through /rest, the same claim-less token for another
    // person makes nobody.
    let off = owner
        .post(sp.at("/rest/sso/oidc/config"))
        .json(&json!({
            "discoveryEndpoint": discovery, "clientId": "usher",
            "clientSecret": SECRET_PLACEHOLDER, "loginEnabled": true, "trustEmail": false,
        }))
        .send()
        .await?;
    assert_eq!(off.status(), StatusCode::OK, "{}", off.text().await?);
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"sub": "bo-at-forger", "email": "bo@example.com", "email_verified": null}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(!signed_in);
    assert_eq!(sp.store.list_users().await?.len(), 2);
    Ok(())
}

/// Usher is also the provider of its own apps: a person sent to Usher's
/// authorization endpoint by an app, and not signed in, takes the single
/// sign-on button, and the app's request resumes afterwards.
async fn an_app_s_sign_in_at_usher_resumes_after_single_sign_on(db: Db) -> TestResult {
    let pair = Pair::new(db).await;
    let sp = &pair.sp;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);
    let app = body(
        pair.sp_owner
            .post(sp.at("/rest/apps"))
            .json(&app_body("Grafana", false, json!("everyone")))
            .send()
            .await?,
    )
    .await;
    let client_id = app["data"]["clientId"].as_str().unwrap_or_default();
    let authorize = format!(
        "/oidc/authorize?response_type=code&client_id={client_id}\
         &redirect_uri=http%3A%2F%2Frp.example.test%2Fcallback&scope=openid&state=app-state&nonce=n1"
    );
    let browser = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let to_signin = browser.get(sp.at(&authorize)).send().await?;
    let signin = location(&to_signin);
    assert!(signin.starts_with("/signin?redirect="), "{signin}");
    let page = browser.get(sp.at(&signin)).send().await?.text().await?;
    let href = page
        .split(" id=\"sso-button\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(
        href.starts_with("/rest/sso/oidc/login?redirect=%2Foidc%2Fauthorize")
            || href.starts_with("/rest/sso/oidc/login?redirect=/oidc/authorize"),
        "{href}"
    );
    let to_idp = browser.get(sp.at(&href)).send().await?;
    let back = browser.get(location(&to_idp)).send().await?;
    let done = browser.get(location(&back)).send().await?;
    // The way on goes through the authorization endpoint: a page that
    // moves on by itself (Refresh), as after a password.
    let refresh = done
        .headers()
        .get("refresh")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let onward = refresh
        .split_once("url=")
        .map(|(_, u)| u.to_owned())
        .unwrap_or_default();
    assert!(onward.starts_with("/oidc/authorize?"), "{refresh}");
    let to_app = browser.get(sp.at(&onward)).send().await?;
    let at_app = location(&to_app);
    assert!(
        at_app.starts_with("http://rp.example.test/callback?"),
        "{at_app}"
    );
    assert!(
        at_app.contains("code=") && at_app.contains("state=app-state"),
        "{at_app}"
    );
    Ok(())
}

/// Whether `email` has an account in `sp`.
async fn has_account(sp: &TestServer, email: &str) -> bool {
    sp.store
        .user_by_email(&usher_domain::model::Email::parse(email).unwrap())
        .await
        .unwrap()
        .is_some()
}

/// The page's text with the apostrophes askama escapes put back.
fn unescaped(page: &str) -> String {
    page.replace("&#x27;", "'").replace("&#39;", "'")
}

/// A provider gives a departed person's address to someone new (Keycloak:
/// a new user, a new `sub`, the same verified email): the newcomer's first
/// sign-in must not land in the account linked to the first `sub`.
async fn an_account_linked_to_one_identity_is_not_linked_to_another_by_email(db: Db) -> TestResult {
    let forger = Forger::start().await;
    let sp = TestServer::start(db).await;
    let owner = sp.owner().await;
    let ann = sp.add_user(ANN, "Usher1password", Role::Member).await;
    forger.configure(&sp, &owner).await;
    // Ann (sub ann-at-forger) signs in: her account is linked.
    let (status, page, signed_in) = forger.attempt(&sp, json!({}), false).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in);

    // Someone else at the provider, with Ann's old address.
    let (status, page, signed_in) = forger
        .attempt(&sp, json!({"sub": "newcomer-at-forger"}), false)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        unescaped(&page).contains(LINKED_ELSEWHERE),
        "the page says why: {page}"
    );
    assert!(!signed_in, "the newcomer got into Ann's account");
    assert!(
        sp.store
            .sso_user(&forger.url, "newcomer-at-forger")
            .await?
            .is_none(),
        "the newcomer was linked"
    );
    let audit = body(
        owner
            .get(sp.at("/rest/audit?action=login.failed"))
            .send()
            .await?,
    )
    .await;
    assert!(
        audit
            .to_string()
            .contains("linked to another identity at this provider"),
        "{audit}"
    );
    // Ann herself still gets in.
    let (status, page, signed_in) = forger.attempt(&sp, json!({}), false).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in);
    assert_eq!(
        sp.store
            .sso_user(&forger.url, "ann-at-forger")
            .await?
            .map(|u| u.id),
        Some(ann.id)
    );
    Ok(())
}

/// A disabled member (someone who left the directory) is not linked to the
/// provider by email: the sign-in is refused, and no link is left behind
/// for the day the account is enabled again.
async fn a_disabled_member_is_never_linked_by_email(db: Db) -> TestResult {
    let forger = Forger::start().await;
    let sp = TestServer::start(db).await;
    let owner = sp.owner().await;
    let ann = sp.add_user(ANN, "Usher1password", Role::Member).await;
    sp.store
        .disable_users(&[ann.id], sp.state.usher().now())
        .await?;
    forger.configure(&sp, &owner).await;
    let (status, page, signed_in) = forger.attempt(&sp, json!({}), false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains(ACCOUNT_DISABLED), "{page}");
    assert!(!signed_in);
    assert!(
        sp.store
            .sso_user(&forger.url, "ann-at-forger")
            .await?
            .is_none(),
        "a disabled member was linked"
    );
    let audit = body(
        owner
            .get(sp.at("/rest/audit?action=login.failed"))
            .send()
            .await?,
    )
    .await;
    assert!(
        audit
            .to_string()
            .contains("asserts the email of a disabled account"),
        "{audit}"
    );
    Ok(())
}

/// With Google anyone with a Google account reaches the button: the
/// allowed domains limit whom a first sign-in makes an account for, while
/// people who have an account (here a member at another domain) still get
/// in.
async fn new_accounts_only_for_allowed_domains(db: Db) -> TestResult {
    let forger = Forger::start().await;
    let sp = TestServer::start(db).await;
    let owner = sp.owner().await;
    sp.add_user("carl@partner.example.org", "Usher1password", Role::Member)
        .await;
    let saved = forger
        .configure_with(
            &sp,
            &owner,
            json!({"allowedDomains": [" Example.COM", "@example.net"]}),
        )
        .await;
    assert_eq!(
        saved["data"]["allowedDomains"],
        json!(["example.com", "example.net"]),
        "{saved}"
    );
    assert_eq!(saved["data"]["createAccounts"], json!(true), "{saved}");
    // A client that knows only n8n's fields keeps Usher's as they are.
    let resaved = body(
        owner
            .post(sp.at("/rest/sso/oidc/config"))
            .json(&json!({
                "discoveryEndpoint": forger.discovery(),
                "clientId": "usher", "clientSecret": saved["data"]["clientSecret"],
                "loginEnabled": true,
            }))
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        resaved["data"]["allowedDomains"],
        json!(["example.com", "example.net"]),
        "{resaved}"
    );

    // A subject no database keeps (a NUL in it): refused with a page, not
    // a server error.
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"sub": "nul\u{0}sub", "email": "nul@example.com"}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(!signed_in);

    // Any Google account: no account, a page that says why.
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"sub": "stranger", "email": "stranger@gmail.com"}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(unescaped(&page).contains(DOMAIN_NOT_ALLOWED), "{page}");
    assert!(!signed_in);
    assert!(!has_account(&sp, "stranger@gmail.com").await);
    // A subdomain, or the domain inside a longer one, is not the domain.
    for (sub, email) in [
        ("s2", "eve@mail.example.com"),
        ("s3", "eve@example.com.evil.test"),
    ] {
        let (status, page, _) = forger
            .attempt(&sp, json!({"sub": sub, "email": email}), false)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{email}: {page}");
        assert!(!has_account(&sp, email).await, "{email}");
    }
    let audit = body(
        owner
            .get(sp.at("/rest/audit?action=login.failed"))
            .send()
            .await?,
    )
    .await;
    assert!(
        audit
            .to_string()
            .contains("stranger@gmail.com: no Usher account, and its domain is not one"),
        "{audit}"
    );

    // Inside the domain: a new member.
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"sub": "dina", "email": "dina@example.com"}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in);
    assert!(has_account(&sp, "dina@example.com").await);
    // A member with an account at another domain: linked, signed in.
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"sub": "carl", "email": "carl@partner.example.org"}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in);

    // The page: one text field, commas between domains, checked.
    let discovery = forger.discovery();
    let form = |domains: &'static str| {
        vec![
            ("discoveryEndpoint", discovery.clone()),
            ("clientId", "usher".to_owned()),
            ("loginEnabled", "1".to_owned()),
            ("createAccounts", "1".to_owned()),
            ("allowedDomains", domains.to_owned()),
            ("authenticationMethod", "email".to_owned()),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let sp = &sp;
        let owner = &owner;
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            crate::harness::post_form(sp, owner, "/settings/sso", &pairs).await
        }
    };
    let refused = send(form("example.com, not a domain")).await;
    assert_ne!(refused.status(), StatusCode::SEE_OTHER);
    let page = refused.text().await?;
    assert!(
        page.contains("is not an email domain: write domains such as example.com"),
        "{page}"
    );
    assert!(
        page.contains("value=\"example.com, not a domain\""),
        "what was typed stays: {page}"
    );
    let saved = send(form("example.org, Example.com")).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = owner
        .get(sp.at("/settings/sso"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        page.contains("value=\"example.org, example.com\""),
        "{page}"
    );
    let config = body(owner.get(sp.at("/rest/sso/oidc/config")).send().await?).await;
    assert_eq!(
        config["data"]["allowedDomains"],
        json!(["example.org", "example.com"])
    );
    // Through /rest, a bad domain is a 400 naming the field.
    let bad = owner
        .post(sp.at("/rest/sso/oidc/config"))
        .json(&json!({
            "discoveryEndpoint": discovery, "clientId": "usher",
            "clientSecret": SECRET_PLACEHOLDER, "loginEnabled": true,
            "allowedDomains": ["ann@example.com"],
        }))
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(
        bad.text().await?.contains("is not an email domain"),
        "the message names the problem"
    );
    Ok(())
}

/// "Create accounts" off: only people with an Usher account (linked, or a
/// member with the email) get in; everyone else is told to ask for an
/// invitation, and no account is made.
async fn with_create_accounts_off_only_existing_accounts_get_in(db: Db) -> TestResult {
    let forger = Forger::start().await;
    let sp = TestServer::start(db).await;
    let owner = sp.owner().await;
    let fresh = owner
        .get(sp.at("/settings/sso"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        fresh.contains(r#"name="createAccounts" value="1" checked"#),
        "on by default, as n8n: {fresh}"
    );
    sp.add_user(ANN, "Usher1password", Role::Member).await;
    let saved = forger
        .configure_with(&sp, &owner, json!({"createAccounts": false}))
        .await;
    assert_eq!(saved["data"]["createAccounts"], json!(false), "{saved}");

    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"sub": "new", "email": "new@example.com"}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(unescaped(&page).contains(NO_NEW_ACCOUNTS), "{page}");
    assert!(!signed_in);
    assert!(!has_account(&sp, "new@example.com").await);
    assert_eq!(sp.store.list_users().await?.len(), 2, "the owner and Ann");

    // Ann has an account: linked, signed in, and found by her link next.
    for _ in 0..2 {
        let (status, page, signed_in) = forger.attempt(&sp, json!({}), false).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
        assert!(signed_in);
    }

    // From the page, the checkbox left out turns it off too; sent, on.
    let discovery = forger.discovery();
    let mut fields = vec![
        ("discoveryEndpoint", discovery.as_str()),
        ("clientId", "usher"),
        ("loginEnabled", "1"),
        ("authenticationMethod", "email"),
    ];
    let off = crate::harness::post_form(&sp, &owner, "/settings/sso", &fields).await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let config = body(owner.get(sp.at("/rest/sso/oidc/config")).send().await?).await;
    assert_eq!(config["data"]["createAccounts"], json!(false));
    fields.push(("createAccounts", "1"));
    let on = crate::harness::post_form(&sp, &owner, "/settings/sso", &fields).await;
    assert_eq!(on.status(), StatusCode::SEE_OTHER);
    let (status, page, signed_in) = forger
        .attempt(
            &sp,
            json!({"sub": "new", "email": "new@example.com"}),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in);
    Ok(())
}

/// The security review's attack, end to end: Usher signs in through
/// another Usher. A member of the provider who changes their own address to
/// a member's here is told apart by `email_verified: false` and gets
/// nothing; and here, an address a member typed in without confirming it
/// does not hand the provider's person that account either.
async fn an_address_a_member_typed_in_neither_signs_in_elsewhere_nor_is_linked(
    db: Db,
) -> TestResult {
    const VIC: &str = "vic@example.com";
    let pair = Pair::new(db).await;
    let (idp, sp) = (&pair.idp, &pair.sp);
    sp.add_user(VIC, "Victim1password", Role::Member).await;
    assert_eq!(pair.configure(json!({})).await.status(), StatusCode::OK);

    // Mallory, a member at the provider, takes Vic's address there.
    idp.add_user("mallory@example.com", "Mallory1password", Role::Member)
        .await;
    let mallory = pair
        .browser_at_idp("mallory@example.com", "Mallory1password")
        .await;
    let changed = mallory
        .patch(idp.at("/rest/me"))
        .json(
            &json!({"email": VIC, "firstName": "Mal", "lastName": "Lory",
            "currentPassword": "Mallory1password"}),
        )
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK);
    let callback = pair.to_provider_and_back(&mallory, "/").await;
    let refused = mallory.get(&callback).send().await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await?;
    assert!(
        page.contains("does not say that this email address"),
        "{page}"
    );
    assert_eq!(who(sp, &mallory).await, Value::Null, "Mallory is not Vic");

    // Here, Mel takes Ann's address (unconfirmed); Ann's sign-in at the
    // provider, which verified it, does not land in Mel's account.
    sp.add_user("mel@example.com", "Member1password", Role::Member)
        .await;
    let mel = sp.signed_in("mel@example.com", "Member1password").await;
    let taken = mel
        .patch(sp.at("/rest/me"))
        .json(&json!({"email": ANN, "firstName": "Mel", "lastName": "M",
            "currentPassword": "Member1password"}))
        .send()
        .await?;
    assert_eq!(taken.status(), StatusCode::OK);
    let ann = pair.browser_at_idp(ANN, ANN_PASSWORD).await;
    let callback = pair.to_provider_and_back(&ann, "/").await;
    let refused = ann.get(&callback).send().await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await?;
    assert!(page.contains("has not confirmed it"), "{page}");
    assert_eq!(who(sp, &ann).await, Value::Null);
    let linked = body(
        pair.sp_owner
            .get(sp.at("/rest/audit?action=sso.linked"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(linked["data"]["count"], json!(0), "{linked}");
    // Vic's own account is untouched.
    assert_eq!(
        login(&sp.client(), sp, VIC, "Victim1password")
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}
