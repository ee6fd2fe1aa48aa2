//! Sign-in, server-side sessions, sign-out and throttling.

use reqwest::StatusCode;
use serde_json::json;
use usher_domain::{
    model::Role,
    store::{GuardStore as _, SessionStore as _, UserStore as _},
    token,
};

use crate::harness::*;
use crate::on_both_databases;

const WRONG: &str = "Wrong username or password. Do you have caps lock on?";

async fn wrong_credentials_get_the_same_answer_whether_or_not_the_email_exists(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let client = server.client();
    let wrong_password = login(&client, &server, OWNER_EMAIL, "Wrong1password").await;
    let unknown_email = login(&client, &server, "nobody@example.com", OWNER_PASSWORD).await;
    let not_an_email = login(&client, &server, "nobody", OWNER_PASSWORD).await;
    for response in [wrong_password, unknown_email, not_an_email] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body(response).await, json!({"code": 401, "message": WRONG}));
    }
    Ok(())
}

async fn signing_in_ignores_the_case_of_the_email_and_sets_the_session_cookie(
    db: Db,
) -> TestResult {
    let server = TestServer::start_with(
        db,
        &[
            ("N8N_AUTH_COOKIE_NAME", "usher-session"),
            ("N8N_SAMESITE_COOKIE", "strict"),
        ],
    )
    .await;
    server.owner().await;
    let client = server.client();
    let response = login(&client, &server, "OWNER@example.COM", OWNER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cookie.starts_with("usher-session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Max-Age=604800", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "N8N_SECURE_COOKIE=false in tests: {cookie}"
    );
    let me = body(client.get(server.at("/rest/login")).send().await?).await;
    assert_eq!(me["data"]["email"], OWNER_EMAIL);
    Ok(())
}

async fn the_session_token_is_stored_only_as_its_hash(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let response = login(&server.client(), &server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let value = cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    assert!(value.len() >= 43, "at least 256 bits: {value}");
    let store = server.store;
    assert!(
        store
            .session(&token::hash(&value), server.state.usher().now())
            .await?
            .is_some()
    );
    assert!(
        store
            .session(&value, server.state.usher().now())
            .await?
            .is_none()
    );
    Ok(())
}

async fn signing_out_ends_the_session_for_good_also_on_another_instance(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let sibling = server.sibling(&[]).await;
    // The same cookie works on both instances (sessions live in the database).
    let cookie = session_cookie(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let on_sibling = server
        .client()
        .get(sibling.at("/rest/login"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(on_sibling.status(), StatusCode::OK);

    let out = server
        .client()
        .post(server.at("/rest/logout"))
        .header("cookie", &cookie)
        .send()
        .await?;
    let cleared = out
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(body(out).await, json!({"data": {"loggedOut": true}}));
    for url in [server.at("/rest/login"), sibling.at("/rest/login")] {
        let replay = server
            .client()
            .get(url)
            .header("cookie", &cookie)
            .send()
            .await?;
        assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    }
    Ok(())
}

async fn the_signout_page_asks_and_its_button_ends_the_session(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let cookie = session_cookie(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let with_session = |request: reqwest::RequestBuilder| request.header("cookie", &cookie);
    // A GET changes nothing (a link on another site could sign people out):
    // it shows the button, with the session's form token.
    let asked = with_session(server.client().get(server.at("/signout")))
        .send()
        .await?
        .text()
        .await?;
    assert!(asked.contains(r#"id="signout-confirm""#), "{asked}");
    let still = with_session(server.client().get(server.at("/rest/login")))
        .send()
        .await?;
    assert_eq!(still.status(), StatusCode::OK, "still signed in");
    let token = asked
        .split(r#"name="_csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    let out = with_session(server.client().post(server.at("/signout")))
        .form(&[("_csrf", token)])
        .send()
        .await?;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/signin?signedOut=1");
    // The old cookie opens nothing any more.
    let replay = with_session(server.client().get(server.at("/settings/personal")))
        .send()
        .await?;
    assert_eq!(location(&replay), "/signin?redirect=/settings/personal");
    Ok(())
}

async fn signing_in_on_the_page_follows_the_redirect_only_inside_usher(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let client = server.client();
    let response = page_form(
        &server,
        &client,
        "/signin",
        &[
            ("email", OWNER_EMAIL),
            ("password", OWNER_PASSWORD),
            ("redirect", "/settings/personal"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(location(&response), "/settings/personal");
    let other = server.client();
    let response = page_form(
        &server,
        &other,
        "/signin",
        &[
            ("email", OWNER_EMAIL),
            ("password", OWNER_PASSWORD),
            ("redirect", "//evil.example.com/"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(location(&response), "/");
    let wrong = page_form(
        &server,
        &server.client(),
        "/signin",
        &[("email", OWNER_EMAIL), ("password", "nope")],
    )
    .await
    .send()
    .await?;
    assert_eq!(wrong.status(), StatusCode::OK);
    assert!(wrong.text().await?.contains(WRONG));
    Ok(())
}

async fn sessions_slide_when_a_quarter_of_their_lifetime_is_left_and_expire_after_it(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    // 168 h lifetime: after 100 h more than a quarter is left, no new cookie.
    server.advance_minutes(100 * 60);
    let early = owner.get(server.at("/rest/login")).send().await?;
    assert_eq!(early.status(), StatusCode::OK);
    assert!(early.headers().get("set-cookie").is_none());
    // After 130 h less than a quarter is left: extended, with a fresh cookie.
    server.advance_minutes(30 * 60);
    let late = owner.get(server.at("/rest/login")).send().await?;
    assert_eq!(late.status(), StatusCode::OK);
    let renewed = late
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(renewed.contains("Max-Age=604800"), "{renewed}");
    // 167 h later the extended session is still valid; 2 h after that it is gone.
    server.advance_minutes(100 * 60);
    assert_eq!(
        owner.get(server.at("/rest/login")).send().await?.status(),
        StatusCode::OK
    );
    Ok(())
}

async fn a_session_without_refresh_expires_after_its_lifetime(db: Db) -> TestResult {
    let server = TestServer::start_with(
        db,
        &[
            ("N8N_USER_MANAGEMENT_JWT_DURATION_HOURS", "2"),
            ("N8N_USER_MANAGEMENT_JWT_REFRESH_TIMEOUT_HOURS", "-1"),
        ],
    )
    .await;
    let owner = server.owner().await;
    server.advance_minutes(119);
    let still = owner.get(server.at("/rest/login")).send().await?;
    assert_eq!(still.status(), StatusCode::OK);
    assert!(
        still.headers().get("set-cookie").is_none(),
        "-1 never refreshes"
    );
    server.advance_minutes(2);
    assert_eq!(
        owner.get(server.at("/rest/login")).send().await?.status(),
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

async fn a_sixth_sign_in_attempt_in_a_minute_for_one_email_is_slowed_down_on_every_instance(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let sibling = server.sibling(&[]).await;
    // Both instances' clocks at the start of one minute window.
    server.align_to_window(60_000);
    sibling
        .clock
        .advance(server.state.usher().now() - sibling.state.usher().now());
    let client = server.client();
    for attempt in 0..5 {
        // Spread over both instances: the count lives in the database.
        let target = if attempt % 2 == 0 { &server } else { &sibling };
        let response = login(&client, target, OWNER_EMAIL, "Wrong1password").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    let sixth = login(&client, &sibling, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    let answer = body(sixth).await;
    assert_eq!(answer["code"], 429);
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Too many attempts. Please wait"),
        "{answer}"
    );
    // Another email is not affected; a minute later the first works again.
    assert_eq!(
        login(&client, &server, "else@example.com", "x")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    server.advance_minutes(1);
    sibling.advance_minutes(1);
    assert_eq!(
        login(&client, &server, OWNER_EMAIL, OWNER_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn more_than_a_thousand_attempts_from_one_address_in_five_minutes_are_slowed_down(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    // Fill the address's window directly, as 1000 earlier attempts would.
    server.align_to_window(5 * 60_000);
    let now = server.state.usher().now();
    let window = 5 * 60_000;
    let start = now - now.rem_euclid(window);
    for _ in 0..1000 {
        server
            .store
            .count_hit("login:ip:127.0.0.1", start, start + window)
            .await?;
    }
    let response = login(&server.client(), &server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}

async fn bcrypt_hashes_imported_from_n8n_sign_in_and_are_replaced_by_argon2id(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    // Cost 4 keeps the test fast; the format ($2a$/$2b$) is what n8n stores.
    let hash = bcrypt::hash("Imported1pass", 4)?;
    let user = server
        .add_user_with_hash("imported@example.com", &hash, Role::Member)
        .await;
    let response = login(
        &server.client(),
        &server,
        "imported@example.com",
        "Imported1pass",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let stored = server
        .store
        .user_by_id(user.id)
        .await?
        .and_then(|u| u.password_hash)
        .unwrap_or_default();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert_eq!(
        login(
            &server.client(),
            &server,
            "imported@example.com",
            "Imported1pass"
        )
        .await
        .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn signing_in_from_any_settings_page_returns_to_that_page(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let user_page = format!("/settings/users/{}", mia.id);
    for page in [
        "/settings/audit",
        "/settings/email",
        "/settings/api",
        "/settings/users",
        user_page.as_str(),
        "/home/tags",
    ] {
        let response = server.client().get(server.at(page)).send().await?;
        assert_eq!(
            location(&response),
            format!("/signin?redirect={page}"),
            "{page}"
        );
    }
    Ok(())
}

on_both_databases!(
    wrong_credentials_get_the_same_answer_whether_or_not_the_email_exists,
    signing_in_ignores_the_case_of_the_email_and_sets_the_session_cookie,
    the_session_token_is_stored_only_as_its_hash,
    signing_out_ends_the_session_for_good_also_on_another_instance,
    the_signout_page_asks_and_its_button_ends_the_session,
    signing_in_on_the_page_follows_the_redirect_only_inside_usher,
    sessions_slide_when_a_quarter_of_their_lifetime_is_left_and_expire_after_it,
    a_session_without_refresh_expires_after_its_lifetime,
    a_sixth_sign_in_attempt_in_a_minute_for_one_email_is_slowed_down_on_every_instance,
    more_than_a_thousand_attempts_from_one_address_in_five_minutes_are_slowed_down,
    bcrypt_hashes_imported_from_n8n_sign_in_and_are_replaced_by_argon2id,
    signing_in_from_any_settings_page_returns_to_that_page
);
