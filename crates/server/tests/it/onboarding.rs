//! Basic onboarding: users created with a temporary password, who must
//! choose their own at the first sign-in.

use reqwest::StatusCode;
use serde_json::json;
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

const CHANGE_REQUIRED: &str =
    "You signed in with a temporary password: choose your own password before you go on.";

async fn a_user_created_directly_must_replace_the_temporary_password_before_anything_else(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let created = body(owner
        .post(server.at("/rest/users"))
        .json(&json!({"users": [{"email": "Bea@Example.com", "firstName": "Bea", "role": "global:member"}, {"email": "bad"}], "onboarding": "basic"}))
        .send()
        .await?).await;
    let first = &created["data"][0];
    assert_eq!(first["error"], "");
    assert_eq!(first["user"]["email"], "bea@example.com");
    assert_eq!(first["user"]["passwordChangeRequired"], true);
    assert_eq!(
        created["data"][1]["error"],
        "'bad' is not a valid email address."
    );
    let temporary = first["temporaryPassword"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(temporary.len(), 16);

    let bea = server.client();
    assert_eq!(
        login(&bea, &server, "bea@example.com", &temporary)
            .await
            .status(),
        StatusCode::OK
    );
    let blocked = bea.get(server.at("/rest/users")).send().await?;
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(blocked).await["message"], CHANGE_REQUIRED);
    assert_eq!(
        bea.get(server.at("/rest/me")).send().await?.status(),
        StatusCode::OK
    );
    let page = bea.get(server.at("/settings/personal")).send().await?;
    assert_eq!(location(&page), "/set-password");

    let same = page_form(
        &server,
        &bea,
        "/set-password",
        &[("password", temporary.as_str())],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(
        same.contains("Choose a password different from the temporary one."),
        "{same}"
    );
    let weak = page_form(&server, &bea, "/set-password", &[("password", "weak")])
        .await
        .send()
        .await?
        .text()
        .await?;
    assert!(weak.contains(r#"<li class="missing">"#), "{weak}");
    assert!(weak.contains("At least one number"));
    let done = page_form(
        &server,
        &bea,
        "/set-password",
        &[("password", "Bea1password")],
    )
    .await
    .send()
    .await?;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        bea.get(server.at("/rest/users")).send().await?.status(),
        StatusCode::OK
    );
    assert_eq!(
        login(&server.client(), &server, "bea@example.com", &temporary)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&server.client(), &server, "bea@example.com", "Bea1password")
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn the_api_can_replace_a_temporary_password_too(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let created = body(
        owner
            .post(server.at("/rest/users"))
            .json(&json!({"users": [{"email": "bea@example.com"}]}))
            .send()
            .await?,
    )
    .await;
    let temporary = created["data"][0]["temporaryPassword"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let bea = server.signed_in("bea@example.com", &temporary).await;
    let changed = bea
        .patch(server.at("/rest/me/password"))
        .json(&json!({"currentPassword": temporary, "newPassword": "Bea1password"}))
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        bea.get(server.at("/rest/users")).send().await?.status(),
        StatusCode::OK
    );
    Ok(())
}

async fn members_cannot_create_users_and_emails_stay_unique(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    let refused = member
        .post(server.at("/rest/users"))
        .json(&json!({"users": [{"email": "x@example.com"}]}))
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let taken = body(
        owner
            .post(server.at("/rest/users"))
            .json(&json!({"users": [{"email": "MIA@example.com"}]}))
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        taken["data"][0]["error"],
        "mia@example.com already has an account."
    );
    assert!(taken["data"][0].get("temporaryPassword").is_none());
    Ok(())
}

async fn the_users_page_shows_links_to_copy_temporary_passwords_and_a_csv(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let invited = page_form(
        &server,
        &owner,
        "/settings/users/invite",
        &[
            ("emails", "ivy@example.com, kim@example.com"),
            ("role", "global:member"),
        ],
    )
    .await
    .send()
    .await?;
    // Post/Redirect/Get: the links show once on the list.
    assert_eq!(invited.status(), StatusCode::SEE_OTHER);
    let (_, invited) = shown_after(&server, &owner, invited).await;
    assert!(invited.contains("Email is not set up on this instance"));
    assert!(invited.contains("2 people are invited."), "{invited}");
    assert_eq!(
        invited.matches("class=\"invite-link\"").count(),
        2,
        "{invited}"
    );
    assert!(invited.contains("data-copy=\"invite-link-1\""));
    assert!(
        invited.contains("class=\"badge pending\">Pending"),
        "{invited}"
    );
    let again = owner
        .get(server.at("/settings/users"))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(
        again.matches("class=\"invite-link\"").count(),
        0,
        "shown once"
    );

    let created = page_form(
        &server,
        &owner,
        "/settings/users/create",
        &[
            ("lines", "bea@example.com, Bea, Lee\ncal@example.com"),
            ("role", "global:admin"),
        ],
    )
    .await
    .send()
    .await?;
    let (_, created) = shown_after(&server, &owner, created).await;
    assert_eq!(
        created.matches("class=\"temp-password\"").count(),
        2,
        "{created}"
    );
    assert!(created.contains("id=\"csv-download\""));
    assert!(created.contains("data:text/csv;charset=utf-8,email%2Cfirst%20name"));
    assert!(
        created.contains(">Must change password</span>"),
        "{created}"
    );

    let users = body(owner.get(server.at("/rest/users")).send().await?).await;
    let ivy = users["data"]["items"]
        .as_array()
        .and_then(|i| i.iter().find(|u| u["email"] == "ivy@example.com").cloned())
        .unwrap_or_default();
    let id = ivy["id"].as_str().unwrap_or_default().to_owned();
    let revoked = page_form(
        &server,
        &owner,
        &format!("/settings/users/{id}/revoke"),
        &[("confirmed", "yes")],
    )
    .await
    .send()
    .await?;
    let (_, revoked) = shown_after(&server, &owner, revoked).await;
    assert!(
        revoked.contains("The invitation for ivy@example.com is withdrawn"),
        "{revoked}"
    );
    assert!(
        !revoked.contains("data-email=\"ivy@example.com\""),
        "{revoked}"
    );
    Ok(())
}

on_both_databases!(
    a_user_created_directly_must_replace_the_temporary_password_before_anything_else,
    the_api_can_replace_a_temporary_password_too,
    members_cannot_create_users_and_emails_stay_unique,
    the_users_page_shows_links_to_copy_temporary_passwords_and_a_csv
);
