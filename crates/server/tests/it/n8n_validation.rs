//! `/rest` checks its input as n8n's request schemas do (issue 14): a 400
//! whose message names the field or parameter, before anything is made.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

/// Status and message of an answer.
async fn answer(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let message = body(response).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, message)
}

async fn post(server: &TestServer, client: &Client, path: &str, json: Value) -> reqwest::Response {
    client
        .post(server.at(path))
        .json(&json)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn an_api_key_needs_label_scopes_and_expires_at_which_may_be_null_but_not_past(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let refused = [
        (
            json!({"scopes": ["user:read"], "expiresAt": null}),
            "label is required.",
        ),
        (
            json!({"label": "CI", "expiresAt": null}),
            "scopes is required.",
        ),
        (
            json!({"label": "CI", "scopes": ["user:read"]}),
            "expiresAt is required.",
        ),
        (
            json!({"label": "CI", "scopes": "user:read", "expiresAt": null}),
            "scopes must be a list.",
        ),
        (
            json!({"label": "CI", "scopes": [], "expiresAt": "tomorrow"}),
            "expiresAt must be a whole number.",
        ),
        (
            json!({"label": "CI", "scopes": [], "expiresAt": 1_000}),
            "expiresAt must be in the future (Unix seconds), or null for a key that does not expire.",
        ),
    ];
    for (sent, expected) in refused {
        let (status, message) =
            answer(post(&server, &owner, "/rest/api-keys", sent.clone()).await).await;
        assert_eq!(
            (status, message.as_str()),
            (StatusCode::BAD_REQUEST, expected),
            "{sent}"
        );
    }
    let listed = body(owner.get(server.at("/rest/api-keys")).send().await?).await;
    assert_eq!(listed["data"], json!([]), "nothing was made");

    let never = post(
        &server,
        &owner,
        "/rest/api-keys",
        json!({"label": "CI", "scopes": ["user:read"], "expiresAt": null}),
    )
    .await;
    assert_eq!(never.status(), StatusCode::OK);
    assert_eq!(body(never).await["data"]["expiresAt"], Value::Null);
    let soon = server.state.usher().now() / 1000 + 3600;
    let expiring = post(
        &server,
        &owner,
        "/rest/api-keys",
        json!({"label": "soon", "scopes": [], "expiresAt": soon}),
    )
    .await;
    assert_eq!(body(expiring).await["data"]["expiresAt"], soon);
    Ok(())
}

async fn one_address_that_is_not_an_address_refuses_the_whole_invitation(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let refused = post(
        &server,
        &owner,
        "/rest/invitations",
        json!([{"email": "ann@example.com"}, {"email": "not-an-email"}]),
    )
    .await;
    assert_eq!(
        answer(refused).await,
        (
            StatusCode::BAD_REQUEST,
            "[1].email: 'not-an-email' is not a valid email address.".to_owned()
        )
    );
    let missing = post(
        &server,
        &owner,
        "/rest/invitations",
        json!([{"email": "ann@example.com"}, {"role": "global:admin"}]),
    )
    .await;
    assert_eq!(
        answer(missing).await,
        (StatusCode::BAD_REQUEST, "[1].email is required.".to_owned())
    );
    let users = body(owner.get(server.at("/rest/users")).send().await?).await;
    assert_eq!(users["data"]["count"], 1, "nobody was invited: {users}");

    let nobody = post(&server, &owner, "/rest/invitations", json!([])).await;
    assert_eq!(nobody.status(), StatusCode::OK);
    assert_eq!(body(nobody).await, json!({"data": []}));
    Ok(())
}

/// A token of the right shape (43 characters of URL-safe base64) that no
/// link carries.
const UNKNOWN_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

async fn a_missing_or_malformed_invitation_token_is_400_and_an_unknown_one_404(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let client = server.client();
    let cut_short = &UNKNOWN_TOKEN[..20];
    for query in [
        String::new(),
        "?token=".to_owned(),
        format!("?token={cut_short}"),
        format!("?token={UNKNOWN_TOKEN}x"),
        "?token=not%20a%20token%20at%20all%20not%20a%20token%20at%20a".to_owned(),
    ] {
        let resolved = client
            .get(server.at(&format!("/rest/resolve-signup-token{query}")))
            .send()
            .await?;
        assert_eq!(
            answer(resolved).await,
            (StatusCode::BAD_REQUEST, "Invalid invite URL".to_owned()),
            "{query}"
        );
    }
    let unknown = client
        .get(server.at(&format!("/rest/resolve-signup-token?token={UNKNOWN_TOKEN}")))
        .send()
        .await?;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let joining = json!({"firstName": "Ivy", "lastName": "Invitee", "password": "Ivy1password"});
    for token in [None, Some(cut_short)] {
        let mut sent = joining.clone();
        if let Some(token) = token {
            sent["token"] = json!(token);
        }
        let accepted = post(&server, &client, "/rest/invitations/accept", sent).await;
        assert_eq!(
            answer(accepted).await,
            (StatusCode::BAD_REQUEST, "Invalid invite URL".to_owned()),
            "{token:?}"
        );
    }
    let mut sent = joining;
    sent["token"] = json!(UNKNOWN_TOKEN);
    let accepted = post(&server, &client, "/rest/invitations/accept", sent).await;
    assert_eq!(accepted.status(), StatusCode::NOT_FOUND);
    Ok(())
}

async fn a_reset_token_shorter_than_a_real_one_is_400_and_an_unknown_one_404(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let client = server.client();
    let invalid = "Invalid password reset link: the token in it is incomplete or damaged. \
                   Copy the whole link, or ask for a new one.";
    for query in ["", "?token=", "?token=abcdefghij"] {
        let resolved = client
            .get(server.at(&format!("/rest/resolve-password-token{query}")))
            .send()
            .await?;
        assert_eq!(
            answer(resolved).await,
            (StatusCode::BAD_REQUEST, invalid.to_owned()),
            "{query}"
        );
    }
    let changed = post(
        &server,
        &client,
        "/rest/change-password",
        json!({"token": "abcdefghij", "password": "New1password"}),
    )
    .await;
    assert_eq!(
        answer(changed).await,
        (StatusCode::BAD_REQUEST, invalid.to_owned())
    );
    let unknown = client
        .get(server.at(&format!(
            "/rest/resolve-password-token?token={UNKNOWN_TOKEN}"
        )))
        .send()
        .await?;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let changed = post(
        &server,
        &client,
        "/rest/change-password",
        json!({"token": UNKNOWN_TOKEN, "password": "New1password"}),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::NOT_FOUND);
    Ok(())
}

async fn signing_out_without_a_session_is_401(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let nobody = post(&server, &server.client(), "/rest/logout", json!({})).await;
    assert_eq!(nobody.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(nobody).await["code"], 401);
    let stale = server
        .client()
        .post(server.at("/rest/logout"))
        .header("cookie", "n8n-auth=no-such-session")
        .send()
        .await?;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);

    let out = post(&server, &owner, "/rest/logout", json!({})).await;
    assert_eq!(body(out).await, json!({"data": {"loggedOut": true}}));
    let again = post(&server, &owner, "/rest/logout", json!({})).await;
    assert_eq!(
        again.status(),
        StatusCode::UNAUTHORIZED,
        "the session ended"
    );
    Ok(())
}

async fn can_enable_answers_empty_until_enrolled_and_says_why_not(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let anonymous = post(&server, &server.client(), "/rest/mfa/can-enable", json!({})).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let may = post(&server, &owner, "/rest/mfa/can-enable", json!({})).await;
    assert_eq!(may.status(), StatusCode::OK);
    assert_eq!(body(may).await, json!({"data": {}}));

    enrol(&server, &owner).await;
    let enrolled = post(&server, &owner, "/rest/mfa/can-enable", json!({})).await;
    assert_eq!(
        answer(enrolled).await,
        (
            StatusCode::BAD_REQUEST,
            "Two-factor authentication is on already. Turn it off first to set up a new device."
                .to_owned()
        )
    );

    let off = TestServer::start_with(db, &[("N8N_MFA_ENABLED", "false")]).await;
    let owner = off.owner().await;
    let refused = post(&off, &owner, "/rest/mfa/can-enable", json!({})).await;
    assert_eq!(
        answer(refused).await,
        (
            StatusCode::NOT_FOUND,
            "Two-factor authentication is turned off on this instance (N8N_MFA_ENABLED)."
                .to_owned()
        )
    );
    Ok(())
}

/// The emails of a `GET /rest/users` answer, in order, and its count.
async fn listed(server: &TestServer, client: &Client, query: &str) -> (Vec<String>, Value) {
    let response = client
        .get(server.at(&format!("/rest/users{query}")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let answer = body(response).await;
    let emails = answer["data"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| u["email"].as_str().unwrap_or_default().to_owned())
        .collect();
    (emails, answer["data"]["count"].clone())
}

async fn the_user_list_takes_n8ns_filter_order_page_and_fields(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let people = json!([
        {"email": "zoe@example.com", "firstName": "Zoe", "lastName": "Adams", "role": "global:admin"},
        {"email": "bob@example.com", "firstName": "Bob", "lastName": "Young", "role": "global:member"},
        {"email": "amy@example.com", "firstName": "Amy", "lastName": "Young", "role": "global:member"},
    ]);
    let made = post(
        &server,
        &owner,
        "/rest/users",
        json!({"users": people, "onboarding": "basic"}),
    )
    .await;
    assert_eq!(made.status(), StatusCode::OK);
    let ids: Vec<String> = body(made).await["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["user"]["id"].as_str().unwrap_or_default().to_owned())
        .collect();

    let all = [
        OWNER_EMAIL,
        "zoe@example.com",
        "bob@example.com",
        "amy@example.com",
    ];
    assert_eq!(
        listed(&server, &owner, "").await,
        (all.map(String::from).to_vec(), json!(4))
    );
    let cases: [(&str, &[&str]); 8] = [
        (
            r#"?filter={"email":"BOB@example.com"}"#,
            &["bob@example.com"],
        ),
        (
            r#"?filter={"lastName":"Young"}"#,
            &["bob@example.com", "amy@example.com"],
        ),
        (r#"?filter={"firstName":"Zoe","lastName":"Young"}"#, &[]),
        (r#"?filter={"isOwner":true}"#, &[OWNER_EMAIL]),
        (
            r#"?filter={"fullText":"YOU"}"#,
            &["bob@example.com", "amy@example.com"],
        ),
        (
            "?sortBy[]=lastName:desc&sortBy[]=firstName:asc",
            &[
                "amy@example.com",
                "bob@example.com",
                OWNER_EMAIL,
                "zoe@example.com",
            ],
        ),
        (
            "?sortBy=role:asc&sortBy=email:desc",
            &[
                OWNER_EMAIL,
                "zoe@example.com",
                "bob@example.com",
                "amy@example.com",
            ],
        ),
        (
            "?sortBy[]=email:asc&take=2&skip=1",
            &["bob@example.com", OWNER_EMAIL],
        ),
    ];
    for (query, expected) in cases {
        let (emails, _) = listed(&server, &owner, &query.replace('"', "%22")).await;
        assert_eq!(emails, expected, "{query}");
    }
    let (_, count) = listed(&server, &owner, "?take=1").await;
    assert_eq!(count, 4, "count is of every match, not of the page");
    let by_id = format!(r#"?filter={{"ids":["{}","not-an-id"]}}"#, ids[2]).replace('"', "%22");
    assert_eq!(listed(&server, &owner, &by_id).await.0, ["amy@example.com"]);
    let (emails, _) = listed(&server, &owner, "?take=-1").await;
    assert_eq!(emails.len(), 4);

    let selected = body(
        owner
            .get(server.at("/rest/users?select[]=email&select[]=disabled&take=1"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        selected["data"]["items"][0],
        json!({"id": selected["data"]["items"][0]["id"], "email": OWNER_EMAIL, "disabled": false})
    );
    Ok(())
}

async fn a_user_list_parameter_that_does_not_fit_is_400_naming_it(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let sort_choices = "sortBy must be one of: firstName:asc, firstName:desc, lastName:asc, \
                        lastName:desc, email:asc, email:desc, role:asc, role:desc, mfaEnabled:asc, \
                        mfaEnabled:desc.";
    let cases = [
        ("filter=%7Bbad", "filter is not valid JSON."),
        ("filter=%5B%5D", "filter must be an object."),
        (
            "filter=%7B%22isOwner%22:%22yes%22%7D",
            "filter.isOwner must be true or false.",
        ),
        (
            "filter=%7B%22password%22:%22x%22%7D",
            "filter.password is not known here: use email, firstName, lastName, isOwner, \
             mfaEnabled, fullText, ids.",
        ),
        ("sortBy[]=email", sort_choices),
        ("sortBy[]=password:asc", sort_choices),
        ("sortBy=email:up", sort_choices),
        (
            "take=ten",
            "take must be a whole number: how many users to show (at most 50), or -1 for all of them.",
        ),
        ("skip=-1", "skip must be a whole number, 0 or more."),
        (
            "select[]=password",
            "select must name fields of a user: id, email, firstName, lastName, role, \
             mfaEnabled, disabled, isOwner, isPending, passwordChangeRequired, createdAt, \
             updatedAt.",
        ),
    ];
    for (query, expected) in cases {
        let refused = owner
            .get(server.at(&format!("/rest/users?{query}")))
            .send()
            .await?;
        assert_eq!(
            answer(refused).await,
            (StatusCode::BAD_REQUEST, expected.to_owned()),
            "{query}"
        );
    }

    // Members list too, but cannot learn others' two-factor state by
    // filtering or sorting on it.
    server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    assert_eq!(listed(&server, &member, "?sortBy[]=email:asc").await.1, 2);
    for query in [
        "filter=%7B%22mfaEnabled%22:true%7D",
        "sortBy[]=mfaEnabled:desc",
    ] {
        let refused = member
            .get(server.at(&format!("/rest/users?{query}")))
            .send()
            .await?;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{query}");
    }
    Ok(())
}

// ------------------------------------------------ invitation links that stay

/// Invites `email` and returns the pending user's id and link.
async fn invited(server: &TestServer, owner: &Client, email: &str) -> (String, String) {
    let answer = body(
        post(
            server,
            owner,
            "/rest/invitations",
            json!([{"email": email}]),
        )
        .await,
    )
    .await;
    let user = &answer["data"][0]["user"];
    let text = |v: &Value| v.as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    (text(&user["id"]), text(&user["inviteAcceptUrl"]))
}

/// `POST /rest/users/{id}/<action>` (`reinvite`, `invite-link/renew`):
/// the status and the link in the answer.
async fn on_invitation(
    server: &TestServer,
    owner: &Client,
    id: &str,
    action: &str,
) -> (StatusCode, String) {
    let response = post(
        server,
        owner,
        &format!("/rest/users/{id}/{action}"),
        json!({}),
    )
    .await;
    let status = response.status();
    let link = body(response).await["data"]["user"]["inviteAcceptUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, link)
}

fn token_of(link: &str) -> &str {
    link.split("token=").nth(1).unwrap_or_default()
}

async fn resolves(server: &TestServer, link: &str) -> StatusCode {
    let path = format!("/rest/resolve-signup-token?token={}", token_of(link));
    server
        .client()
        .get(server.at(&path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .status()
}

/// The link `POST /rest/users/{id}/invite-link` shows, and whether it is new.
async fn copied(server: &TestServer, owner: &Client, id: &str) -> (String, bool) {
    let answer = body(
        post(
            server,
            owner,
            &format!("/rest/users/{id}/invite-link"),
            json!({}),
        )
        .await,
    )
    .await;
    (
        answer["data"]["link"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        answer["data"]["newLink"].as_bool().unwrap_or_default(),
    )
}

async fn an_invitation_link_stays_the_same_until_a_new_one_is_made(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (id, link) = invited(&server, &owner, "ivy@example.com").await;
    assert_eq!(
        invited(&server, &owner, "ivy@example.com").await,
        (id.clone(), link.clone())
    );
    assert_eq!(
        on_invitation(&server, &owner, &id, "reinvite").await,
        (StatusCode::OK, link.clone())
    );
    assert_eq!(copied(&server, &owner, &id).await, (link.clone(), false));
    assert_eq!(
        resolves(&server, &link).await,
        StatusCode::OK,
        "the first link still works"
    );

    let (status, new) = on_invitation(&server, &owner, &id, "invite-link/renew").await;
    assert_eq!(status, StatusCode::OK);
    assert!(new.contains("/signup?token=") && new != link, "{new}");
    assert_eq!(
        resolves(&server, &link).await,
        StatusCode::NOT_FOUND,
        "only renewing voids"
    );
    assert_eq!(resolves(&server, &new).await, StatusCode::OK);
    assert_eq!(copied(&server, &owner, &id).await, (new.clone(), false));

    let joined = post(
        &server,
        &server.client(),
        "/rest/invitations/accept",
        json!({"token": token_of(&new), "firstName": "Ivy", "lastName": "Invitee", "password": "Ivy1password"}),
    )
    .await;
    assert_eq!(joined.status(), StatusCode::OK);
    let resent = post(
        &server,
        &owner,
        &format!("/rest/users/{id}/reinvite"),
        json!({}),
    )
    .await;
    assert_eq!(
        answer(resent).await,
        (
            StatusCode::BAD_REQUEST,
            "This user has accepted the invitation already.".to_owned()
        )
    );
    Ok(())
}

async fn the_database_keeps_the_invitation_token_sealed_not_readable(db: Db) -> TestResult {
    use usher_domain::store::InvitationStore as _;
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (id, link) = invited(&server, &owner, "ivy@example.com").await;
    let token = token_of(&link);
    let stored = server
        .store
        .live_invitation(id.parse()?, server.state.usher().now())
        .await?
        .unwrap_or_else(|| panic!("no invitation stored"));
    let sealed = stored.sealed_token.unwrap_or_default();
    assert!(sealed.starts_with("v1:"), "{sealed}");
    assert!(!sealed.contains(token) && !stored.token_hash.contains(token));
    assert_eq!(stored.token_hash, usher_domain::token::hash(token));
    Ok(())
}

async fn an_invitation_made_before_tokens_were_kept_works_and_copying_it_makes_a_new_link(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (id, link) = invited(&server, &owner, "ivy@example.com").await;
    server
        .storage
        .execute_sql("UPDATE invitations SET sealed_token = NULL")
        .await;
    assert_eq!(
        resolves(&server, &link).await,
        StatusCode::OK,
        "the old link works"
    );
    let (new, is_new) = copied(&server, &owner, &id).await;
    assert!(is_new, "the answer says the link is new");
    assert_ne!(new, link);
    assert_eq!(resolves(&server, &link).await, StatusCode::NOT_FOUND);
    assert_eq!(
        copied(&server, &owner, &id).await,
        (new, false),
        "kept from now on"
    );
    Ok(())
}

async fn resending_an_expired_invitation_makes_a_new_link(db: Db) -> TestResult {
    let server = TestServer::start_with(db, &[("N8N_INVITE_LINK_EXPIRY_HOURS", "1")]).await;
    let owner = server.owner().await;
    let (id, link) = invited(&server, &owner, "ivy@example.com").await;
    server.advance_minutes(61);
    let (_, new) = on_invitation(&server, &owner, &id, "reinvite").await;
    assert_ne!(new, link);
    assert_eq!(resolves(&server, &new).await, StatusCode::OK);
    Ok(())
}

async fn resend_emails_the_same_link_and_a_new_link_is_emailed_too(db: Db) -> TestResult {
    use crate::mail_sink::{Security, SmtpSink};
    let wait = std::time::Duration::from_secs(10);
    let sink = SmtpSink::start(Security::Plain, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let server = TestServer::start_with_mail(db, &sink, Security::Plain, &[]).await;
    let owner = server.owner().await;
    let emailed = || async {
        sink.next_message(wait)
            .await
            .link("/signup?token=")
            .unwrap_or_default()
    };
    let (id, link) = invited(&server, &owner, "ivy@example.com").await;
    assert_eq!(emailed().await, link);
    on_invitation(&server, &owner, &id, "reinvite").await;
    assert_eq!(emailed().await, link, "resend sends the same link");
    on_invitation(&server, &owner, &id, "invite-link/renew").await;
    let renewed = emailed().await;
    assert_ne!(renewed, link);
    assert_eq!(resolves(&server, &renewed).await, StatusCode::OK);
    Ok(())
}

/// The users page after posting one of its forms, and the invitation link
/// it shows.
async fn users_page_after(server: &TestServer, owner: &Client, path: &str) -> (String, String) {
    let response = page_form(server, owner, path, &[])
        .await
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
    let (_, page) = shown_after(server, owner, response).await;
    let link = page
        .split(r#"class="invite-link" "#)
        .next()
        .and_then(|before| before.rsplit(r#"value=""#).next())
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .replace("&amp;", "&");
    (page, link)
}

async fn the_users_page_copies_the_same_link_and_makes_a_new_one_on_request(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (id, link) = invited(&server, &owner, "ivy@example.com").await;
    let list = owner
        .get(server.at("/settings/users"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        list.contains(&format!("/settings/users/{id}/link/renew")),
        "{list}"
    );
    assert!(
        list.contains(&format!("/settings/users/{id}/link\"")),
        "{list}"
    );

    let (copy, shown) =
        users_page_after(&server, &owner, &format!("/settings/users/{id}/link")).await;
    assert_eq!(shown, link, "{copy}");
    assert!(
        copy.contains("the same link as before, which still works"),
        "{copy}"
    );

    let (renew, new) =
        users_page_after(&server, &owner, &format!("/settings/users/{id}/link/renew")).await;
    assert!(new.contains("/signup?token=") && new != link, "{renew}");
    assert!(renew.contains("earlier links no longer work"), "{renew}");
    assert_eq!(resolves(&server, &link).await, StatusCode::NOT_FOUND);
    Ok(())
}

on_both_databases!(
    an_invitation_link_stays_the_same_until_a_new_one_is_made,
    the_database_keeps_the_invitation_token_sealed_not_readable,
    an_invitation_made_before_tokens_were_kept_works_and_copying_it_makes_a_new_link,
    resending_an_expired_invitation_makes_a_new_link,
    resend_emails_the_same_link_and_a_new_link_is_emailed_too,
    the_users_page_copies_the_same_link_and_makes_a_new_one_on_request,
);

on_both_databases!(
    the_user_list_takes_n8ns_filter_order_page_and_fields,
    a_user_list_parameter_that_does_not_fit_is_400_naming_it,
    an_api_key_needs_label_scopes_and_expires_at_which_may_be_null_but_not_past,
    one_address_that_is_not_an_address_refuses_the_whole_invitation,
    a_missing_or_malformed_invitation_token_is_400_and_an_unknown_one_404,
    a_reset_token_shorter_than_a_real_one_is_400_and_an_unknown_one_404,
    signing_out_without_a_session_is_401,
    can_enable_answers_empty_until_enrolled_and_says_why_not,
);
