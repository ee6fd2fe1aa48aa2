//! Two-factor authentication: enrolment, sign-in with codes and recovery
//! codes, replay, disabling, enforcement, and the flows MFA protects.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

async fn login_with(
    server: &TestServer,
    email: &str,
    password: &str,
    extra: Value,
) -> reqwest::Response {
    let mut payload = json!({"emailOrLdapLoginId": email, "password": password});
    if let (Some(target), Some(more)) = (payload.as_object_mut(), extra.as_object()) {
        target.extend(more.clone());
    }
    server
        .client()
        .post(server.at("/rest/login"))
        .json(&payload)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn an_enrolled_user_signs_in_with_a_code_or_a_recovery_code_once_each(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let wrong_first = owner
        .post(server.at("/rest/mfa/enable"))
        .json(&json!({"mfaCode": "000000"}))
        .send()
        .await?;
    assert_eq!(wrong_first.status(), StatusCode::BAD_REQUEST);
    let qr = body(owner.get(server.at("/rest/mfa/qr")).send().await?).await;
    let secret = qr["data"]["secret"].as_str().unwrap_or_default().to_owned();
    let rejected = body(
        owner
            .post(server.at("/rest/mfa/enable"))
            .json(&json!({"mfaCode": "123456"}))
            .send()
            .await?,
    )
    .await;
    assert_eq!(rejected["code"], 997);
    assert_eq!(
        owner
            .post(server.at("/rest/mfa/enable"))
            .json(&json!({"mfaCode": code_at(&server, &secret)}))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    server.advance_minutes(1);
    let me = body(owner.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(me["data"]["mfaEnabled"], true);

    let no_code = login_with(&server, OWNER_EMAIL, OWNER_PASSWORD, json!({})).await;
    assert_eq!(no_code.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(no_code).await["code"], 998);
    let wrong = login_with(
        &server,
        OWNER_EMAIL,
        OWNER_PASSWORD,
        json!({"mfaCode": "000000"}),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let code = code_at(&server, &secret);
    assert_eq!(
        login_with(
            &server,
            OWNER_EMAIL,
            OWNER_PASSWORD,
            json!({"mfaCode": code})
        )
        .await
        .status(),
        StatusCode::OK
    );
    let replay = login_with(
        &server,
        OWNER_EMAIL,
        OWNER_PASSWORD,
        json!({"mfaCode": code}),
    )
    .await;
    assert_eq!(
        replay.status(),
        StatusCode::UNAUTHORIZED,
        "a code works once"
    );
    Ok(())
}

async fn recovery_codes_work_once_and_regenerating_them_voids_the_old(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (secret, codes) = enrol(&server, &owner).await;
    let by_recovery = login_with(
        &server,
        OWNER_EMAIL,
        OWNER_PASSWORD,
        json!({"mfaRecoveryCode": codes[0].to_uppercase()}),
    )
    .await;
    assert_eq!(
        by_recovery.status(),
        StatusCode::OK,
        "case and dashes do not matter"
    );
    assert_eq!(
        login_with(
            &server,
            OWNER_EMAIL,
            OWNER_PASSWORD,
            json!({"mfaRecoveryCode": codes[0]})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );

    let fresh = body(
        owner
            .post(server.at("/rest/mfa/recovery-codes"))
            .json(&json!({"mfaCode": code_at(&server, &secret)}))
            .send()
            .await?,
    )
    .await;
    let new_codes: Vec<String> = fresh["data"]["recoveryCodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    assert_eq!(new_codes.len(), 10);
    assert_eq!(
        login_with(
            &server,
            OWNER_EMAIL,
            OWNER_PASSWORD,
            json!({"mfaRecoveryCode": codes[1]})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_with(
            &server,
            OWNER_EMAIL,
            OWNER_PASSWORD,
            json!({"mfaRecoveryCode": new_codes[1]})
        )
        .await
        .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn a_code_used_on_one_instance_is_refused_on_another(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (secret, _) = enrol(&server, &owner).await;
    let sibling = server.sibling(&[]).await;
    sibling
        .clock
        .advance(server.state.usher().now() - sibling.state.usher().now());
    let code = code_at(&server, &secret);
    assert_eq!(
        login_with(
            &server,
            OWNER_EMAIL,
            OWNER_PASSWORD,
            json!({"mfaCode": code})
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        login_with(
            &sibling,
            OWNER_EMAIL,
            OWNER_PASSWORD,
            json!({"mfaCode": code})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

async fn turning_mfa_off_needs_a_code_or_a_recovery_code(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (_, codes) = enrol(&server, &owner).await;
    let wrong = owner
        .post(server.at("/rest/mfa/disable"))
        .json(&json!({"mfaCode": "000000"}))
        .send()
        .await?;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(wrong).await["message"], "Invalid two-factor code.");
    assert_eq!(
        owner
            .post(server.at("/rest/mfa/disable"))
            .json(&json!({"mfaRecoveryCode": codes[3]}))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        login_with(&server, OWNER_EMAIL, OWNER_PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn resets_and_email_or_password_changes_ask_for_a_code(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (secret, _) = enrol(&server, &owner).await;
    let email_change = owner.patch(server.at("/rest/me"))
        .json(&json!({"email": "new@example.com", "firstName": "Olive", "lastName": "Owner", "currentPassword": OWNER_PASSWORD}))
        .send().await?;
    assert_eq!(body(email_change).await["code"], 998);
    let password_change = owner
        .patch(server.at("/rest/me/password"))
        .json(&json!({"currentPassword": OWNER_PASSWORD, "newPassword": "Newer1password"}))
        .send()
        .await?;
    assert_eq!(body(password_change).await["code"], 998);

    // An admin's reset link does not get round the second factor either.
    server
        .add_user("ada@example.com", "Admin1pass", Role::Admin)
        .await;
    let admin = server.signed_in("ada@example.com", "Admin1pass").await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let mia_client = server.signed_in("mia@example.com", "Member1pass").await;
    let (mia_secret, _) = enrol(&server, &mia_client).await;
    let link = body(
        admin
            .get(server.at(&format!("/rest/users/{}/password-reset-link", mia.id)))
            .send()
            .await?,
    )
    .await;
    let token = link["data"]["link"]
        .as_str()
        .unwrap_or_default()
        .split("token=")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let change = |extra: Value| {
        let mut payload = json!({"token": token, "password": "Reset1password"});
        if let (Some(target), Some(more)) = (payload.as_object_mut(), extra.as_object()) {
            target.extend(more.clone());
        }
        server
            .client()
            .post(server.at("/rest/change-password"))
            .json(&payload)
            .send()
    };
    assert_eq!(body(change(json!({})).await?).await["code"], 998);
    assert_eq!(
        change(json!({"mfaCode": code_at(&server, &mia_secret)}))
            .await?
            .status(),
        StatusCode::OK
    );
    let _ = secret;
    Ok(())
}

async fn when_the_owner_requires_mfa_everyone_without_it_must_enrol_first(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    let by_member = member
        .post(server.at("/rest/mfa/enforce-mfa"))
        .json(&json!({"enforce": true}))
        .send()
        .await?;
    assert_eq!(by_member.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        owner
            .post(server.at("/rest/mfa/enforce-mfa"))
            .json(&json!({"enforce": true}))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );

    let blocked = member.get(server.at("/rest/workflows")).send().await?;
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    assert!(
        body(blocked).await["message"]
            .as_str()
            .unwrap_or_default()
            .contains("requires two-factor authentication")
    );
    assert_eq!(
        location(&member.get(server.at("/settings/personal")).send().await?),
        "/settings/mfa"
    );
    enrol(&server, &member).await;
    assert_eq!(
        member
            .get(server.at("/rest/workflows"))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn mfa_enabled_shows_in_both_apis_and_the_setting_hides_enrolment_only(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (secret, _) = enrol(&server, &owner).await;
    let key = body(
        owner
            .post(server.at("/rest/api-keys"))
            .json(&json!({"label": "k", "scopes": ["user:read"], "expiresAt": null}))
            .send()
            .await?,
    )
    .await;
    let key = key["data"]["rawApiKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let public = body(
        Client::new()
            .get(server.at(&format!("/api/v1/users/{OWNER_EMAIL}")))
            .header("X-N8N-API-KEY", &key)
            .send()
            .await?,
    )
    .await;
    assert_eq!(public["mfaEnabled"], true);

    let off = server.sibling(&[("N8N_MFA_ENABLED", "false")]).await;
    off.clock
        .advance(server.state.usher().now() - off.state.usher().now());
    let signed = login_with(
        &off,
        OWNER_EMAIL,
        OWNER_PASSWORD,
        json!({"mfaCode": code_at(&off, &secret)}),
    )
    .await;
    assert_eq!(signed.status(), StatusCode::OK, "who has MFA keeps it");
    let cookie = signed
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let qr = Client::new()
        .get(off.at("/rest/mfa/qr"))
        .header("cookie", cookie)
        .send()
        .await?;
    assert_eq!(qr.status(), StatusCode::NOT_FOUND);
    Ok(())
}

async fn the_signin_page_asks_for_the_code_second_and_counts_wrong_codes(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (secret, _) = enrol(&server, &owner).await;
    server.align_to_window(60_000);
    let client = server.client();
    let first = page_form(
        &server,
        &client,
        "/signin",
        &[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(first.contains("id=\"code-form\""), "{first}");
    let challenge = first
        .split("name=\"challenge\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let wrong = page_form(
        &server,
        &client,
        "/signin/code",
        &[("challenge", challenge.as_str()), ("mfaCode", "000000")],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(wrong.contains("Invalid two-factor code."), "{wrong}");
    let right = page_form(
        &server,
        &client,
        "/signin/code",
        &[
            ("challenge", challenge.as_str()),
            ("mfaCode", code_at(&server, &secret).as_str()),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        client.get(server.at("/rest/me")).send().await?.status(),
        StatusCode::OK
    );

    // Wrong codes count toward the five attempts a minute.
    for _ in 0..4 {
        login_with(
            &server,
            OWNER_EMAIL,
            OWNER_PASSWORD,
            json!({"mfaCode": "000000"}),
        )
        .await;
    }
    let slowed = login_with(
        &server,
        OWNER_EMAIL,
        OWNER_PASSWORD,
        json!({"mfaCode": code_at(&server, &secret)}),
    )
    .await;
    assert_eq!(slowed.status(), StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}

on_both_databases!(
    an_enrolled_user_signs_in_with_a_code_or_a_recovery_code_once_each,
    recovery_codes_work_once_and_regenerating_them_voids_the_old,
    a_code_used_on_one_instance_is_refused_on_another,
    turning_mfa_off_needs_a_code_or_a_recovery_code,
    resets_and_email_or_password_changes_ask_for_a_code,
    when_the_owner_requires_mfa_everyone_without_it_must_enrol_first,
    mfa_enabled_shows_in_both_apis_and_the_setting_hides_enrolment_only,
    the_signin_page_asks_for_the_code_second_and_counts_wrong_codes
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_code_during_set_up_keeps_the_scanned_secret() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    let owner = server.owner().await;
    let started = page_form(&server, &owner, "/settings/mfa/start", &[])
        .await
        .send()
        .await?;
    // Post/Redirect/Get: the page shows the set-up under way.
    let (_, page) = shown_after(&server, &owner, started).await;
    let secret = page
        .split("data-secret=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let codes = page
        .split("name=\"codes\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    assert!(page.contains("<svg"), "a QR code is drawn");
    let typo = page_form(
        &server,
        &owner,
        "/settings/mfa/enable",
        &[
            ("mfaCode", "000000"),
            ("secret", secret.as_str()),
            ("codes", codes.as_str()),
        ],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(typo.contains("Invalid two-factor code."), "{typo}");
    assert!(
        typo.contains(&format!("data-secret=\"{secret}\"")),
        "the same secret again"
    );
    let right = page_form(
        &server,
        &owner,
        "/settings/mfa/enable",
        &[
            ("mfaCode", code_at(&server, &secret).as_str()),
            ("secret", secret.as_str()),
            ("codes", codes.as_str()),
        ],
    )
    .await
    .send()
    .await?;
    let (_, right) = shown_after(&server, &owner, right).await;
    assert!(right.contains("id=\"recovery-codes-text\""), "{right}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_turns_mfa_off_for_a_user_who_lost_their_device() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    let owner = server.owner().await;
    enrol(&server, &owner).await;
    let folder = server.storage.folder().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
            .args(["mfa:disable", "--email", OWNER_EMAIL])
            .env_clear()
            .env("N8N_USER_FOLDER", &folder)
            .output()
    })
    .await??;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        login_with(&server, OWNER_EMAIL, OWNER_PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}
