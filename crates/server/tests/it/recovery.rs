//! Password recovery: by email, by admins, by the operator.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use usher_domain::model::Role;

use crate::harness::*;
use crate::mail_sink::{Security, SmtpSink};
use crate::on_both_databases;

const WAIT: Duration = Duration::from_secs(10);
const NOT_VALID: &str = "This password reset link is not valid: it has been used, has expired (links last 20 minutes) or was replaced by a newer one. Ask for a new one.";

async fn forgot(server: &TestServer, email: &str) -> reqwest::Response {
    server
        .client()
        .post(server.at("/rest/forgot-password"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("forgot: {e}"))
}

fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap_or_default().to_owned()
}

async fn change(server: &TestServer, token: &str, password: &str) -> reqwest::Response {
    server
        .client()
        .post(server.at("/rest/change-password"))
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("change: {e}"))
}

async fn mail_server(db: Db) -> (SmtpSink, TestServer) {
    let sink = SmtpSink::start(Security::StartTls, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let server = TestServer::start_with_mail(db, &sink, Security::StartTls, &[]).await;
    (sink, server)
}

async fn a_forgotten_password_is_reset_through_the_emailed_link_once(db: Db) -> TestResult {
    let (sink, server) = mail_server(db).await;
    server.owner().await;
    let other_session = session_cookie(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    // An unknown email first: it gets the same answer and no email, so the
    // first message delivered is the owner's.
    let unknown = forgot(&server, "nobody@example.com").await;
    let known = forgot(&server, OWNER_EMAIL).await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(known.status(), StatusCode::OK);
    assert_eq!(body(unknown).await, body(known).await);

    let message = sink.next_message(WAIT).await;
    assert_eq!(message.to, vec![OWNER_EMAIL.to_owned()]);
    assert!(message.text().contains("Hi Olive"));
    let link = message.link("/change-password?token=").unwrap_or_default();
    assert!(
        link.starts_with(&server.state.settings().base_url),
        "{link}"
    );
    let page = server.client().get(&link).send().await?.text().await?;
    assert!(page.contains(OWNER_EMAIL), "{page}");

    let token = token_of(&link);
    let resolved = server
        .client()
        .get(server.at(&format!("/rest/resolve-password-token?token={token}")))
        .send()
        .await?;
    assert_eq!(resolved.status(), StatusCode::OK);
    assert_eq!(
        change(&server, &token, "weak").await.status(),
        StatusCode::BAD_REQUEST
    );
    let changed = change(&server, &token, "Renewed1password").await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert!(
        changed.headers().get("set-cookie").is_some(),
        "signed in anew"
    );

    assert_eq!(
        change(&server, &token, "Another1password").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        login(&server.client(), &server, OWNER_EMAIL, OWNER_PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&server.client(), &server, OWNER_EMAIL, "Renewed1password")
            .await
            .status(),
        StatusCode::OK
    );
    let old = server
        .client()
        .get(server.at("/rest/me"))
        .header("cookie", other_session)
        .send()
        .await?;
    assert_eq!(
        old.status(),
        StatusCode::UNAUTHORIZED,
        "every earlier session ended"
    );
    Ok(())
}

async fn a_reset_link_expires_after_20_minutes(db: Db) -> TestResult {
    let (sink, server) = mail_server(db).await;
    server.owner().await;
    forgot(&server, OWNER_EMAIL).await;
    let token = token_of(
        &sink
            .next_message(WAIT)
            .await
            .link("/change-password?token=")
            .unwrap_or_default(),
    );
    server.advance_minutes(19);
    let still = server
        .client()
        .get(server.at(&format!("/rest/resolve-password-token?token={token}")))
        .send()
        .await?;
    assert_eq!(still.status(), StatusCode::OK);
    server.advance_minutes(2);
    let expired = change(&server, &token, "Renewed1password").await;
    assert_eq!(expired.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(expired).await["message"], NOT_VALID);
    let page = server
        .client()
        .get(server.at(&format!("/change-password?token={token}")))
        .send()
        .await?;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        page.text()
            .await?
            .contains("This password reset link does not work")
    );
    Ok(())
}

async fn changing_the_password_or_email_voids_outstanding_reset_links(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let member = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let link = |owner: reqwest::Client| {
        let url = server.at(&format!("/rest/users/{}/password-reset-link", member.id));
        async move {
            body(
                owner
                    .get(url)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            )
            .await["data"]["link"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let before_password = token_of(&link(owner.clone()).await);
    let mia = server.signed_in("mia@example.com", "Member1pass").await;
    mia.patch(server.at("/rest/me/password"))
        .json(&json!({"currentPassword": "Member1pass", "newPassword": "Member2pass"}))
        .send()
        .await?;
    assert_eq!(
        change(&server, &before_password, "Member3pass")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let before_email = token_of(&link(owner.clone()).await);
    mia.patch(server.at("/rest/me"))
        .json(&json!({"email": "mia.new@example.com", "firstName": "Mia", "lastName": "Member", "currentPassword": "Member2pass"}))
        .send()
        .await?;
    assert_eq!(
        change(&server, &before_email, "Member3pass").await.status(),
        StatusCode::NOT_FOUND
    );
    Ok(())
}

async fn asking_for_reset_links_is_limited_per_email_and_per_address(db: Db) -> TestResult {
    let (_sink, server) = mail_server(db).await;
    server.owner().await;
    server.align_to_window(60 * 60_000);
    for _ in 0..3 {
        assert_eq!(forgot(&server, OWNER_EMAIL).await.status(), StatusCode::OK);
    }
    let fourth = forgot(&server, OWNER_EMAIL).await;
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body(fourth).await["code"], 429);
    // Three requests from this address so far: two more are allowed.
    assert_eq!(
        forgot(&server, "a@example.com").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        forgot(&server, "b@example.com").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        forgot(&server, "c@example.com").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    Ok(())
}

async fn without_smtp_the_forgot_password_page_says_whom_to_ask(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    server.owner().await;
    let refused = forgot(&server, OWNER_EMAIL).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        body(refused).await["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Ask the owner or an admin")
    );
    let page = server
        .client()
        .get(server.at("/forgot-password"))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains("id=\"no-email\""));
    let signin = server
        .client()
        .get(server.at("/signin"))
        .send()
        .await?
        .text()
        .await?;
    // The link is always there: without email it leads to the page that
    // says whom to ask.
    assert!(
        signin.contains("id=\"forgot-link\""),
        "no way to learn what to do about a forgotten password"
    );

    let (_sink, with_mail) = mail_server(db).await;
    with_mail.owner().await;
    let signin = with_mail
        .client()
        .get(with_mail.at("/signin"))
        .send()
        .await?
        .text()
        .await?;
    assert!(signin.contains("id=\"forgot-link\""));
    Ok(())
}

async fn admins_reset_members_by_link_or_by_force_but_not_the_owner(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    server
        .add_user("ada@example.com", "Admin1pass", Role::Admin)
        .await;
    let member = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let admin = server.signed_in("ada@example.com", "Admin1pass").await;
    let owner_id = body(owner.get(server.at("/rest/me")).send().await?).await["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    for (method, path) in [
        ("GET", "password-reset-link"),
        ("POST", "force-password-reset"),
    ] {
        let refused = admin
            .request(
                method.parse()?,
                server.at(&format!("/rest/users/{owner_id}/{path}")),
            )
            .send()
            .await?;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Refused with or without the confirmation, never asked "Are you
    // sure?" about something that will be refused.
    for fields in [&[("confirmed", "yes")][..], &[]] {
        let page = page_form(
            &server,
            &admin,
            &format!("/settings/users/{owner_id}/force-reset"),
            fields,
        )
        .await
        .send()
        .await?
        .text()
        .await?;
        assert!(
            page.contains("Only the owner can reset the owner"),
            "{page}"
        );
        assert!(!page.contains("password now?"), "{page}");
    }

    // A link, without SMTP.
    let link = body(
        admin
            .get(server.at(&format!("/rest/users/{}/password-reset-link", member.id)))
            .send()
            .await?,
    )
    .await;
    let token = token_of(link["data"]["link"].as_str().unwrap_or_default());
    assert_eq!(
        change(&server, &token, "Member2pass").await.status(),
        StatusCode::OK
    );

    // A forced reset: the member's sessions end; the temporary password must be replaced.
    let mia_session = session_cookie(&server, "mia@example.com", "Member2pass").await;
    let forced = body(
        admin
            .post(server.at(&format!("/rest/users/{}/force-password-reset", member.id)))
            .send()
            .await?,
    )
    .await;
    let temporary = forced["data"]["temporaryPassword"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(temporary.len(), 16);
    let old = server
        .client()
        .get(server.at("/rest/me"))
        .header("cookie", mia_session)
        .send()
        .await?;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&server.client(), &server, "mia@example.com", "Member2pass")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let mia = server.signed_in("mia@example.com", &temporary).await;
    assert_eq!(
        mia.get(server.at("/rest/users")).send().await?.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        location(&mia.get(server.at("/")).send().await?),
        "/set-password"
    );

    let detail = owner
        .get(server.at(&format!("/settings/users/{}", member.id)))
        .send()
        .await?
        .text()
        .await?;
    assert!(detail.contains("id=\"force-reset-button\""));
    assert!(detail.contains("must choose a password at next sign-in"));
    Ok(())
}

on_both_databases!(
    a_forgotten_password_is_reset_through_the_emailed_link_once,
    a_reset_link_expires_after_20_minutes,
    changing_the_password_or_email_voids_outstanding_reset_links,
    asking_for_reset_links_is_limited_per_email_and_per_address,
    without_smtp_the_forgot_password_page_says_whom_to_ask,
    admins_reset_members_by_link_or_by_force_but_not_the_owner
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_without_smtp_gets_a_reset_link_from_the_command_line() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let folder = server.storage.folder().to_owned();
    let base_url = server.state.settings().base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
            .args(["user:reset-password", "--email", "Owner@Example.com"])
            .env_clear()
            .env("N8N_USER_FOLDER", &folder)
            .env("N8N_EDITOR_BASE_URL", &base_url)
            .output()
    })
    .await??;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout)?;
    let link = stdout
        .lines()
        .find(|l| l.contains("/change-password?token="))
        .unwrap_or_default();
    assert!(
        link.starts_with(&server.state.settings().base_url),
        "{stdout}"
    );
    assert_eq!(
        change(&server, &token_of(link), "Regained1password")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        login(&server.client(), &server, OWNER_EMAIL, "Regained1password")
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}
