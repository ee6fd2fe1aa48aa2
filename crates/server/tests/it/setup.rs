//! First run: owner set-up, skipping it, and turning user management off.

use reqwest::StatusCode;
use serde_json::json;
use usher_domain::store::UserStore as _;

use crate::harness::*;
use crate::on_both_databases;

async fn every_page_leads_to_setup_until_the_owner_exists(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    for page in ["/", "/signin", "/settings/personal", "/settings/users"] {
        let response = client.get(server.at(page)).send().await?;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(location(&response), "/setup", "{page}");
    }
    let setup = client.get(server.at("/setup")).send().await?;
    assert_eq!(setup.status(), StatusCode::OK);
    let html = setup.text().await?;
    assert!(html.contains("Set up owner account"));
    let settings = body(client.get(server.at("/rest/settings")).send().await?).await;
    assert_eq!(
        settings["data"]["userManagement"]["showSetupOnFirstLoad"],
        true
    );
    Ok(())
}

async fn owner_setup_refuses_weak_passwords_with_n8ns_messages(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    let cases = [
        (
            "short",
            "Password must be 8 to 64 characters long. Password must contain at least 1 number. Password must contain at least 1 uppercase letter.",
        ),
        (
            "longenough1",
            "Password must contain at least 1 uppercase letter.",
        ),
        ("Longenough", "Password must contain at least 1 number."),
        (
            &*format!("A1{}", "a".repeat(63)),
            "Password must be 8 to 64 characters long.",
        ),
    ];
    for (password, message) in cases {
        let response = client
            .post(server.at("/rest/owner/setup"))
            .json(&json!({"email": "a@example.com", "firstName": "A", "lastName": "B", "password": password}))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let answer = body(response).await;
        assert_eq!(answer, json!({"code": 400, "message": message}));
    }
    // Nothing was set up by the refused attempts.
    let response = client.get(server.at("/")).send().await?;
    assert_eq!(location(&response), "/setup");
    Ok(())
}

async fn a_raised_minimum_length_applies_to_setup(db: Db) -> TestResult {
    let server = TestServer::start_with(db, &[("N8N_PASSWORD_MIN_LENGTH", "12")]).await;
    let response = server
        .client()
        .post(server.at("/rest/owner/setup"))
        .json(&json!({"email": "a@example.com", "firstName": "A", "lastName": "B", "password": "Abcdefgh12"}))
        .send()
        .await?;
    assert_eq!(
        body(response).await["message"],
        "Password must be 12 to 64 characters long."
    );
    Ok(())
}

async fn owner_setup_signs_the_owner_in_and_a_second_setup_is_refused(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    let response = client
        .post(server.at("/rest/owner/setup"))
        .json(&json!({"email": "Olive@Example.com", "firstName": "Olive", "lastName": "Owner", "password": OWNER_PASSWORD}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let owner = body(response).await;
    assert_eq!(owner["data"]["email"], "olive@example.com");
    assert_eq!(owner["data"]["role"], "global:owner");
    assert_eq!(owner["data"]["isPending"], false);

    let me = body(client.get(server.at("/rest/login")).send().await?).await;
    assert_eq!(me["data"]["id"], owner["data"]["id"]);

    let again = server
        .client()
        .post(server.at("/rest/owner/setup"))
        .json(&json!({"email": "other@example.com", "firstName": "O", "lastName": "T", "password": OWNER_PASSWORD}))
        .send()
        .await?;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(again).await["message"], "Instance owner already setup");
    let page = client.get(server.at("/setup")).send().await?;
    assert_eq!(location(&page), "/");
    Ok(())
}

async fn setups_at_the_same_time_make_exactly_one_owner(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let attempts = (0..6).map(|i| {
        let client = server.client();
        let url = server.at("/rest/owner/setup");
        async move {
            client
                .post(url)
                .json(&json!({"email": format!("owner{i}@example.com"), "firstName": "O", "lastName": "W", "password": OWNER_PASSWORD}))
                .send()
                .await
                .map(|r| r.status())
        }
    });
    let statuses = join_all(attempts).await?;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    let owners = server.store.list_users().await?;
    assert_eq!(owners.len(), 1);
    Ok(())
}

async fn the_setup_page_shows_policy_messages_beside_the_password_and_keeps_the_other_fields(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    let response = page_form(
        &server,
        &client,
        "/setup",
        &[
            ("email", "olive@example.com"),
            ("firstName", "Olive"),
            ("lastName", "Owner"),
            ("password", "weak"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(html.contains(r#"id="password-error""#), "{html}");
    // The policy once, as the list under the field, what is missing marked.
    assert!(
        html.contains(r#"<span class="visually-hidden">Missing: </span>At least one number"#),
        "{html}"
    );
    assert!(!html.contains("Password must contain at least 1 number."));
    assert!(html.contains(r#"value="olive@example.com""#));
    assert!(
        !html.contains(r#"value="weak""#),
        "a password must never be echoed back"
    );

    let response = page_form(
        &server,
        &client,
        "/setup",
        &[
            ("email", "olive@example.com"),
            ("firstName", "Olive"),
            ("lastName", "Owner"),
            ("password", OWNER_PASSWORD),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let home = client.get(server.at("/")).send().await?.text().await?;
    assert!(home.contains("Welcome, Olive"));
    Ok(())
}

async fn skipping_setup_opens_the_instance_with_a_warning_and_setup_stays_possible(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    let skip = page_form(&server, &client, "/setup/skip", &[])
        .await
        .send()
        .await?;
    assert_eq!(skip.status(), StatusCode::SEE_OTHER);

    let stranger = server.client();
    for page in ["/", "/settings/users"] {
        let response = stranger.get(server.at(page)).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        let html = response.text().await?;
        assert!(
            html.contains("anyone who can reach this instance has full access"),
            "{page}"
        );
    }
    let users = stranger
        .get(server.at("/settings/users"))
        .send()
        .await?
        .text()
        .await?;
    assert!(users.contains(r#"id="setup-owner""#));
    // The API works without sign-in, as the owner.
    let me = body(stranger.get(server.at("/rest/login")).send().await?).await;
    assert_eq!(me["data"]["role"], "global:owner");

    // Later, the owner is set up, and sign-in is required from then on.
    let owner = server.owner().await;
    let anonymous = server.client().get(server.at("/")).send().await?;
    assert!(location(&anonymous).starts_with("/signin"));
    let home = owner.get(server.at("/")).send().await?.text().await?;
    assert!(!home.contains("full access"));
    Ok(())
}

async fn disabled_user_management_hides_setup_and_signin(db: Db) -> TestResult {
    let server = TestServer::start_with(db, &[("N8N_USER_MANAGEMENT_DISABLED", "true")]).await;
    let client = server.client();
    let home = client.get(server.at("/")).send().await?;
    assert_eq!(home.status(), StatusCode::OK);
    let html = home.text().await?;
    assert!(html.contains("User management is turned off"));
    assert!(!html.contains("Sign out"));
    for page in [
        "/setup",
        "/signin",
        "/signout",
        "/settings/users",
        "/settings/personal",
    ] {
        let response = client.get(server.at(page)).send().await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{page}");
    }
    for (method, route) in [
        ("POST", "/rest/owner/setup"),
        ("POST", "/rest/login"),
        ("GET", "/rest/login"),
        ("POST", "/rest/logout"),
        ("GET", "/rest/me"),
        ("GET", "/rest/users"),
    ] {
        let request = client
            .request(method.parse()?, server.at(route))
            .json(&json!({}));
        let response = request.send().await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {route}");
        assert_eq!(body(response).await["code"], 404);
    }
    let settings = body(client.get(server.at("/rest/settings")).send().await?).await;
    assert_eq!(settings["data"]["userManagement"]["enabled"], false);
    Ok(())
}

async fn resetting_user_management_returns_to_the_first_run(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    server
        .add_user(
            "mia@example.com",
            "Member1pass",
            usher_domain::model::Role::Member,
        )
        .await;
    server.state.usher().reset_user_management().await?;

    assert_eq!(
        owner.get(server.at("/rest/login")).send().await?.status(),
        StatusCode::UNAUTHORIZED
    );
    let first = server.client().get(server.at("/")).send().await?;
    assert_eq!(location(&first), "/setup");
    assert!(server.store.list_users().await?.is_empty());
    // And set-up works again, with any email.
    server.owner().await;
    Ok(())
}

on_both_databases!(
    every_page_leads_to_setup_until_the_owner_exists,
    owner_setup_refuses_weak_passwords_with_n8ns_messages,
    a_raised_minimum_length_applies_to_setup,
    owner_setup_signs_the_owner_in_and_a_second_setup_is_refused,
    setups_at_the_same_time_make_exactly_one_owner,
    the_setup_page_shows_policy_messages_beside_the_password_and_keeps_the_other_fields,
    skipping_setup_opens_the_instance_with_a_warning_and_setup_stays_possible,
    disabled_user_management_hides_setup_and_signin,
    resetting_user_management_returns_to_the_first_run
);
