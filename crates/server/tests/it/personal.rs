//! Personal settings: names, email and password.

use reqwest::StatusCode;
use serde_json::json;
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

async fn names_can_be_changed_and_are_at_most_32_characters(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let changed = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": OWNER_EMAIL, "firstName": "  Olivia ", "lastName": "Owens"}))
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK);
    let user = body(changed).await;
    assert_eq!(user["data"]["firstName"], "Olivia");
    assert_eq!(user["data"]["lastName"], "Owens");

    let too_long = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": OWNER_EMAIL, "firstName": "x".repeat(33), "lastName": "Owens"}))
        .send()
        .await?;
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(too_long).await["message"],
        "First name must be at most 32 characters long."
    );
    let me = body(owner.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(
        me["data"]["firstName"], "Olivia",
        "a refused change loses nothing"
    );
    Ok(())
}

async fn changing_the_email_needs_the_current_password_and_ends_other_sessions(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let other_session = session_cookie(&server, OWNER_EMAIL, OWNER_PASSWORD).await;

    let without = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": "new@example.com", "firstName": "Olive", "lastName": "Owner"}))
        .send()
        .await?;
    assert_eq!(without.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(without).await["message"],
        "Enter your current password to change your email address."
    );

    let wrong = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": "new@example.com", "firstName": "Olive", "lastName": "Owner", "currentPassword": "Wrong1pass"}))
        .send()
        .await?;
    assert_eq!(
        body(wrong).await["message"],
        "Provided current password is incorrect."
    );

    let right = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": "New@Example.com", "firstName": "Olive", "lastName": "Owner", "currentPassword": OWNER_PASSWORD}))
        .send()
        .await?;
    assert_eq!(body(right).await["data"]["email"], "new@example.com");
    // This session goes on; the other one has ended.
    assert_eq!(
        owner.get(server.at("/rest/me")).send().await?.status(),
        StatusCode::OK
    );
    let other = server
        .client()
        .get(server.at("/rest/me"))
        .header("cookie", other_session)
        .send()
        .await?;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&server.client(), &server, "new@example.com", OWNER_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn an_email_in_use_is_refused_whatever_its_case(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let clash = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": "MIA@example.com", "firstName": "Olive", "lastName": "Owner", "currentPassword": OWNER_PASSWORD}))
        .send()
        .await?;
    assert_eq!(clash.status(), StatusCode::CONFLICT);
    assert_eq!(
        body(clash).await["message"],
        "The email address mia@example.com is already in use by another user."
    );
    // The member cannot take the owner's email either.
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    let taken = member
        .patch(server.at("/rest/me"))
        .json(&json!({"email": "Owner@Example.com", "firstName": "Mia", "lastName": "Member", "currentPassword": "Member1pass"}))
        .send()
        .await?;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    Ok(())
}

async fn changing_the_password_keeps_this_session_and_ends_the_others(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let other_session = session_cookie(&server, OWNER_EMAIL, OWNER_PASSWORD).await;

    let weak = owner
        .patch(server.at("/rest/me/password"))
        .json(&json!({"currentPassword": OWNER_PASSWORD, "newPassword": "weak"}))
        .send()
        .await?;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    assert!(
        body(weak).await["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at least 1 number")
    );

    let wrong = owner
        .patch(server.at("/rest/me/password"))
        .json(&json!({"currentPassword": "Not1mine", "newPassword": "Better1password"}))
        .send()
        .await?;
    assert_eq!(
        body(wrong).await,
        json!({"code": 400, "message": "Provided current password is incorrect."})
    );

    let changed = owner
        .patch(server.at("/rest/me/password"))
        .json(&json!({"currentPassword": OWNER_PASSWORD, "newPassword": "Better1password"}))
        .send()
        .await?;
    assert_eq!(body(changed).await, json!({"data": {"success": true}}));
    assert_eq!(
        owner.get(server.at("/rest/me")).send().await?.status(),
        StatusCode::OK
    );
    let other = server
        .client()
        .get(server.at("/rest/me"))
        .header("cookie", other_session)
        .send()
        .await?;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&server.client(), &server, OWNER_EMAIL, OWNER_PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&server.client(), &server, OWNER_EMAIL, "Better1password")
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn the_personal_settings_page_saves_names_and_shows_errors_beside_fields(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let page = owner
        .get(server.at("/settings/personal"))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains(r#"value="Olive""#));
    let saved = page_form(
        &server,
        &owner,
        "/settings/personal",
        &[
            ("firstName", "Liv"),
            ("lastName", "Owner"),
            ("email", OWNER_EMAIL),
            ("currentPassword", ""),
        ],
    )
    .await
    .send()
    .await?;
    // Post/Redirect/Get: the page after the redirect says what was saved.
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, saved) = shown_after(&server, &owner, saved).await;
    assert!(saved.contains("Your details are saved: Liv Owner, owner@example.com."));
    assert!(saved.contains(r#"<span id="who-name">Liv Owner</span>"#));
    let refused = page_form(
        &server,
        &owner,
        "/settings/personal/password",
        &[
            ("currentPassword", OWNER_PASSWORD),
            ("newPassword", "short"),
        ],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(refused.contains(r#"id="newPassword-error""#), "{refused}");
    Ok(())
}

on_both_databases!(
    names_can_be_changed_and_are_at_most_32_characters,
    changing_the_email_needs_the_current_password_and_ends_other_sessions,
    an_email_in_use_is_refused_whatever_its_case,
    changing_the_password_keeps_this_session_and_ends_the_others,
    the_personal_settings_page_saves_names_and_shows_errors_beside_fields
);
