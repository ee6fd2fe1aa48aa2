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
    the_personal_settings_page_saves_names_and_shows_errors_beside_fields,
    a_self_changed_email_is_unconfirmed_until_the_mailed_link_is_followed_on_the_page,
    without_email_a_self_changed_address_stays_unconfirmed_and_the_page_says_why,
    addresses_set_by_admins_or_invitations_count_as_confirmed,
);

async fn mail_server(db: Db) -> (crate::mail_sink::SmtpSink, TestServer) {
    use crate::mail_sink::{Security, SmtpSink};
    let sink = SmtpSink::start(Security::StartTls, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let server = TestServer::start_with_mail(db, &sink, Security::StartTls, &[]).await;
    (sink, server)
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const NEW_EMAIL: &str = "mia.new@example.com";

/// Mia changes her own address on the personal settings page.
async fn change_own_email(server: &TestServer, mia: &reqwest::Client) -> String {
    let saved = post_form(
        server,
        mia,
        "/settings/personal",
        &[
            ("firstName", "Mia"),
            ("lastName", "Member"),
            ("email", NEW_EMAIL),
            ("currentPassword", "Member1password"),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    shown_after(server, mia, saved).await.1
}

async fn a_self_changed_email_is_unconfirmed_until_the_mailed_link_is_followed_on_the_page(
    db: Db,
) -> TestResult {
    let (sink, server) = mail_server(db).await;
    server.owner().await;
    server
        .add_user("mia@example.com", "Member1password", Role::Member)
        .await;
    let mia = server.signed_in("mia@example.com", "Member1password").await;
    let page = mia
        .get(server.at("/settings/personal"))
        .send()
        .await?
        .text()
        .await?;
    assert!(!page.contains("email-unconfirmed"), "an admin set it");

    let saved = change_own_email(&server, &mia).await;
    assert!(
        saved.contains("is unconfirmed until you follow the link we sent to it"),
        "{saved}"
    );
    assert!(saved.contains(r#"id="email-unconfirmed""#), "{saved}");
    assert!(saved.contains("Send the link again"), "{saved}");
    let first = sink.next_message(WAIT).await;
    assert_eq!(first.to, vec![NEW_EMAIL.to_owned()]);
    let first_link = first.link("/verify-email?token=").ok_or("no link")?;

    // Saving the names again sends nothing; "send the link again" sends a
    // new link, which replaces the first.
    let names = post_form(
        &server,
        &mia,
        "/settings/personal",
        &[
            ("firstName", "Mia"),
            ("lastName", "M"),
            ("email", NEW_EMAIL),
        ],
    )
    .await;
    assert_eq!(names.status(), StatusCode::SEE_OTHER);
    let resent = post_form(&server, &mia, "/settings/personal/confirm-email", &[]).await;
    let (_, shown) = shown_after(&server, &mia, resent).await;
    assert!(
        shown.contains("We sent a new link to mia.new@example.com"),
        "{shown}"
    );
    let second = sink.next_message(WAIT).await;
    assert_eq!(second.to, vec![NEW_EMAIL.to_owned()]);
    assert_eq!(sink.delivered().len(), 2, "saving the names mailed nothing");
    let second_link = second.link("/verify-email?token=").ok_or("no link")?;
    assert_ne!(first_link, second_link);
    let stale = server.client().get(&first_link).send().await?;
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    assert!(
        stale
            .text()
            .await?
            .contains("This confirmation link does not work")
    );

    // Sending again is limited: 3 an hour (one went out above).
    for _ in 0..2 {
        let again = post_form(&server, &mia, "/settings/personal/confirm-email", &[]).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
    }
    let limited = post_form(&server, &mia, "/settings/personal/confirm-email", &[]).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let latest = sink.delivered().last().cloned().ok_or("no message")?;
    let link = latest.link("/verify-email?token=").ok_or("no link")?;

    // The link's page asks; its button confirms, once, signed in or not.
    let visitor = server.client();
    let asked = visitor.get(&link).send().await?.text().await?;
    assert!(asked.contains(r#"id="verify-email-form""#), "{asked}");
    let token = link.split("token=").nth(1).unwrap_or_default().to_owned();
    let me = body(mia.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(
        me["data"]["emailVerified"], false,
        "the GET changed nothing"
    );
    let confirmed = post_form(&server, &visitor, "/verify-email", &[("token", &token)]).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(
        confirmed
            .text()
            .await?
            .contains(r#"id="verify-email-done""#)
    );
    let me = body(mia.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(me["data"]["emailVerified"], true);
    let page = mia
        .get(server.at("/settings/personal"))
        .send()
        .await?
        .text()
        .await?;
    assert!(!page.contains(r#"id="email-unconfirmed""#), "{page}");
    let twice = post_form(&server, &visitor, "/verify-email", &[("token", &token)]).await;
    assert_eq!(twice.status(), StatusCode::NOT_FOUND);
    let confirmed_already = post_form(&server, &mia, "/settings/personal/confirm-email", &[]).await;
    assert!(
        confirmed_already
            .text()
            .await?
            .contains("Your email address is confirmed already.")
    );
    Ok(())
}

async fn without_email_a_self_changed_address_stays_unconfirmed_and_the_page_says_why(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    server
        .add_user("mia@example.com", "Member1password", Role::Member)
        .await;
    let mia = server.signed_in("mia@example.com", "Member1password").await;
    let saved = change_own_email(&server, &mia).await;
    assert!(
        saved.contains("email is not set up on this instance"),
        "{saved}"
    );
    assert!(saved.contains(r#"id="email-unconfirmed""#), "{saved}");
    assert!(!saved.contains("Send the link again"), "{saved}");
    let me = body(mia.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(me["data"]["emailVerified"], false);
    let resend = mia
        .post(server.at("/rest/me/email-confirmation"))
        .send()
        .await?;
    assert_eq!(resend.status(), StatusCode::BAD_REQUEST);
    assert!(
        body(resend).await["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Email is not set up on this instance")
    );
    let bad = server
        .client()
        .post(server.at("/rest/verify-email"))
        .json(&json!({"token": "short"}))
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

/// Addresses that an admin typed in, or that an invitation reached, are
/// known to be the person's.
async fn addresses_set_by_admins_or_invitations_count_as_confirmed(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let created = body(
        owner
            .post(server.at("/rest/users"))
            .json(
                &json!({"users": [{"email": "bea@example.com", "role": "global:member"}],
                "onboarding": "basic"}),
            )
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        created["data"][0]["user"]["emailVerified"], true,
        "{created}"
    );
    let invited = body(
        owner
            .post(server.at("/rest/invitations"))
            .json(&json!([{"email": "ivy@example.com"}]))
            .send()
            .await?,
    )
    .await;
    let link = invited["data"][0]["user"]["inviteAcceptUrl"]
        .as_str()
        .ok_or(format!("no link: {invited}"))?;
    let token = link
        .split("token=")
        .nth(1)
        .and_then(|t| t.split('&').next())
        .unwrap_or_default();
    let accepted = server
        .client()
        .post(server.at("/rest/invitations/accept"))
        .json(
            &json!({"token": token, "firstName": "Ivy", "lastName": "Invited",
            "password": "Invited1password"}),
        )
        .send()
        .await?;
    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(body(accepted).await["data"]["emailVerified"], true);
    let me = body(owner.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(me["data"]["emailVerified"], true, "the owner set it up");
    Ok(())
}
