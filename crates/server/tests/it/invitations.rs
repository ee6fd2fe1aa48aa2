//! Invitations by link and by email, resend, revoke, accept.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use usher_domain::model::Role;

use crate::harness::*;
use crate::mail_sink::{Security, SmtpSink, TokenEndpoint};
use crate::on_both_databases;

const WAIT: Duration = Duration::from_secs(10);

async fn invite(server: &TestServer, client: &reqwest::Client, body: Value) -> reqwest::Response {
    client
        .post(server.at("/rest/invitations"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("invite: {e}"))
}

/// The token inside an accept URL.
fn token_of(url: &str) -> String {
    url.split("token=")
        .nth(1)
        .unwrap_or_default()
        .split('&')
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn accept(server: &TestServer, token: &str, password: &str) -> reqwest::Response {
    server
        .client()
        .post(server.at("/rest/invitations/accept"))
        .json(&json!({"token": token, "firstName": "Ivy", "lastName": "Invitee", "password": password}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("accept: {e}"))
}

async fn without_smtp_an_invitation_gives_a_link_that_signs_the_new_user_in(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let answer = body(invite(&server, &owner, json!([{"email": "Ivy@Example.com"}])).await).await;
    let result = &answer["data"][0];
    assert_eq!(result["error"], "");
    assert_eq!(result["user"]["email"], "ivy@example.com");
    assert_eq!(result["user"]["emailSent"], false);
    assert_eq!(result["user"]["role"], "global:member");
    let url = result["user"]["inviteAcceptUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        url.starts_with(&format!(
            "{}/signup?token=",
            server.state.settings().base_url
        )),
        "{url}"
    );

    let users = body(owner.get(server.at("/rest/users")).send().await?).await;
    let ivy = users["data"]["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|u| u["email"] == "ivy@example.com")
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(ivy["isPending"], true);

    let token = token_of(&url);
    let resolved = body(
        server
            .client()
            .get(server.at(&format!("/rest/resolve-signup-token?token={token}")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        resolved["data"]["inviter"],
        json!({"firstName": "Olive", "lastName": "Owner"})
    );

    let weak = accept(&server, &token, "weak").await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let accepted = accept(&server, &token, "Ivy1password").await;
    assert_eq!(accepted.status(), StatusCode::OK);
    assert!(accepted.headers().get("set-cookie").is_some());
    let user = body(accepted).await;
    assert_eq!(user["data"]["isPending"], false);
    assert_eq!(user["data"]["firstName"], "Ivy");

    let again = accept(&server, &token, "Ivy1password").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(again).await["message"],
        "This invite has been accepted already"
    );
    assert_eq!(
        login(&server.client(), &server, "ivy@example.com", "Ivy1password")
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn each_email_gets_its_own_result_and_an_existing_account_does_not_fail_the_others(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let answer = body(
        invite(
            &server,
            &owner,
            json!([
                {"email": "ann@example.com", "role": "global:admin"},
                {"email": OWNER_EMAIL},
            ]),
        )
        .await,
    )
    .await;
    let results = answer["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["error"], "");
    assert_eq!(results[0]["user"]["role"], "global:admin");
    assert_eq!(
        results[1]["error"],
        format!("{OWNER_EMAIL} already has an account.")
    );
    Ok(())
}

async fn nobody_can_be_invited_as_owner_and_members_cannot_invite(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let as_owner = invite(
        &server,
        &owner,
        json!([{"email": "x@example.com", "role": "global:owner"}]),
    )
    .await;
    assert_eq!(as_owner.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(as_owner).await["message"],
        "This global role value is not assignable"
    );
    let unknown = invite(
        &server,
        &owner,
        json!([{"email": "x@example.com", "role": "global:wizard"}]),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);

    server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    let refused = invite(&server, &member, json!([{"email": "x@example.com"}])).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(refused).await["message"],
        "Only the owner and admins can manage users."
    );
    Ok(())
}

async fn inviting_a_pending_user_again_keeps_its_id_and_sends_the_same_link(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let first = body(invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await).await;
    let second = body(invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await).await;
    let id = first["data"][0]["user"]["id"].clone();
    assert_eq!(second["data"][0]["user"]["id"], id);
    let link = &first["data"][0]["user"]["inviteAcceptUrl"];
    assert_eq!(&second["data"][0]["user"]["inviteAcceptUrl"], link);

    let id = id.as_str().unwrap_or_default();
    let resent = body(
        owner
            .post(server.at(&format!("/rest/users/{id}/reinvite")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(&resent["data"]["user"]["inviteAcceptUrl"], link);
    let copied = body(
        owner
            .post(server.at(&format!("/rest/users/{id}/invite-link")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(&copied["data"]["link"], link);
    assert_eq!(copied["data"]["newLink"], false);
    let token = token_of(link.as_str().unwrap_or_default());
    assert_eq!(
        accept(&server, &token, "Ivy1password").await.status(),
        StatusCode::OK
    );
    Ok(())
}

async fn revoking_removes_the_pending_user_and_its_link(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let answer = body(invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await).await;
    let id = answer["data"][0]["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let token = token_of(
        answer["data"][0]["user"]["inviteAcceptUrl"]
            .as_str()
            .unwrap_or_default(),
    );
    let revoked = owner
        .delete(server.at(&format!("/rest/invitations/{id}")))
        .send()
        .await?;
    assert_eq!(body(revoked).await, json!({"data": {"success": true}}));
    let resolved = server
        .client()
        .get(server.at(&format!("/rest/resolve-signup-token?token={token}")))
        .send()
        .await?;
    assert_eq!(resolved.status(), StatusCode::NOT_FOUND);
    let users = body(owner.get(server.at("/rest/users")).send().await?).await;
    assert_eq!(users["data"]["count"], 1);
    let again = owner
        .delete(server.at(&format!("/rest/invitations/{id}")))
        .send()
        .await?;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    Ok(())
}

async fn an_expired_link_is_refused_with_the_inviters_name(db: Db) -> TestResult {
    let server = TestServer::start_with(db, &[("N8N_INVITE_LINK_EXPIRY_HOURS", "1")]).await;
    let owner = server.owner().await;
    let answer = body(invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await).await;
    let token = token_of(
        answer["data"][0]["user"]["inviteAcceptUrl"]
            .as_str()
            .unwrap_or_default(),
    );
    server.advance_minutes(59);
    let resolved = server
        .client()
        .get(server.at(&format!("/rest/resolve-signup-token?token={token}")))
        .send()
        .await?;
    assert_eq!(resolved.status(), StatusCode::OK);
    server.advance_minutes(2);
    let expired = accept(&server, &token, "Ivy1password").await;
    assert_eq!(expired.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(expired).await["message"],
        "This invitation has expired. Ask Olive Owner to send a new one."
    );
    let page = server
        .client()
        .get(server.at(&format!("/signup?token={token}")))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        page.contains("This invitation has expired. Ask Olive Owner to send a new one."),
        "{page}"
    );
    Ok(())
}

async fn two_accepts_of_one_link_at_once_make_one_account_also_across_instances(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let sibling = server.sibling(&[]).await;
    let owner = server.owner().await;
    let answer = body(invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await).await;
    let token = token_of(
        answer["data"][0]["user"]["inviteAcceptUrl"]
            .as_str()
            .unwrap_or_default(),
    );
    let attempts = (0..6).map(|i| {
        let url = if i % 2 == 0 { server.at("/rest/invitations/accept") } else { sibling.at("/rest/invitations/accept") };
        let token = token.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"token": token, "firstName": "Ivy", "lastName": format!("N{i}"), "password": "Ivy1password"}))
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
    Ok(())
}

async fn invitations_by_email_in_plain_starttls_and_implicit_tls_arrive_and_their_link_works(
    db: Db,
) -> TestResult {
    for security in [Security::Plain, Security::StartTls, Security::ImplicitTls] {
        let sink = SmtpSink::start(security, Some((SMTP_USER, SMTP_PASSWORD))).await;
        let server = TestServer::start_with_mail(db, &sink, security, &[]).await;
        let owner = server.owner().await;
        let answer =
            body(invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await).await;
        assert_eq!(answer["data"][0]["user"]["emailSent"], true, "{answer}");
        assert_eq!(answer["data"][0]["error"], "");

        let message = sink.next_message(WAIT).await;
        assert_eq!(message.to, vec!["ivy@example.com".to_owned()]);
        assert_eq!(message.tls, !matches!(security, Security::Plain));
        assert!(
            message
                .auth
                .as_deref()
                .unwrap_or_default()
                .ends_with(SMTP_USER),
            "{:?}",
            message.auth
        );
        let from = message.header("From").unwrap_or_default();
        assert!(
            from.contains("Usher Test") && from.ends_with("<usher@example.com>"),
            "{from}"
        );
        assert!(
            message
                .header("Subject")
                .unwrap_or_default()
                .starts_with("You have been invited to")
        );
        assert!(message.text().contains("Olive Owner has invited you"));
        let link = message.link("/signup?token=").unwrap_or_default();
        assert!(
            link.starts_with(&server.state.settings().base_url),
            "{link}"
        );

        // Follow the link as a person would: the page, then the form.
        let client = server.client();
        let page = client.get(&link).send().await?.text().await?;
        assert!(page.contains("Olive Owner has invited you"), "{page}");
        let joined = page_form(
            &server,
            &client,
            "/signup",
            &[
                ("token", token_of(&link).as_str()),
                ("firstName", "Ivy"),
                ("lastName", "Invitee"),
                ("password", "Ivy1password"),
            ],
        )
        .await
        .send()
        .await?;
        assert_eq!(joined.status(), StatusCode::SEE_OTHER);
        let me = body(client.get(server.at("/rest/login")).send().await?).await;
        assert_eq!(me["data"]["email"], "ivy@example.com");
    }
    Ok(())
}

async fn a_failed_send_keeps_the_invitation_with_the_link_and_the_servers_words(
    db: Db,
) -> TestResult {
    let sink = SmtpSink::start(Security::Plain, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let server = TestServer::start_with_mail(db, &sink, Security::Plain, &[]).await;
    let owner = server.owner().await;
    sink.refuse_recipients(true);
    let answer = body(invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await).await;
    let result = &answer["data"][0];
    assert_eq!(result["user"]["emailSent"], false);
    assert!(
        result["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Relay access denied"),
        "{result}"
    );
    let url = result["user"]["inviteAcceptUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        accept(&server, &token_of(&url), "Ivy1password")
            .await
            .status(),
        StatusCode::OK
    );

    // The mail server gone altogether: the same, never a 500.
    let port = sink.port();
    drop(sink);
    let _ = port;
    let answer = body(invite(&server, &owner, json!([{"email": "kim@example.com"}])).await).await;
    assert_eq!(answer["data"][0]["user"]["emailSent"], false);
    assert!(answer["data"][0]["user"]["inviteAcceptUrl"].is_string());
    assert!(
        !answer["data"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    Ok(())
}

async fn with_links_by_email_only_no_link_is_shown(db: Db) -> TestResult {
    let without_mail = TestServer::start_with(db, &[("N8N_INVITE_LINKS_EMAIL_ONLY", "true")]).await;
    let owner = without_mail.owner().await;
    let refused = invite(&without_mail, &owner, json!([{"email": "ivy@example.com"}])).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let sink = SmtpSink::start(Security::Plain, None).await;
    let server = TestServer::start_with_mail(
        db,
        &sink,
        Security::Plain,
        &[
            ("N8N_INVITE_LINKS_EMAIL_ONLY", "true"),
            ("N8N_SMTP_USER", ""),
            ("N8N_SMTP_PASS", ""),
        ],
    )
    .await;
    let owner = server.owner().await;
    let answer = body(invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await).await;
    assert_eq!(answer["data"][0]["user"]["emailSent"], true);
    assert!(
        answer["data"][0]["user"].get("inviteAcceptUrl").is_none(),
        "{answer}"
    );
    let id = answer["data"][0]["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let link = owner
        .post(server.at(&format!("/rest/users/{id}/invite-link")))
        .send()
        .await?;
    assert_eq!(link.status(), StatusCode::FORBIDDEN);
    assert!(
        sink.next_message(WAIT)
            .await
            .link("/signup?token=")
            .is_some()
    );
    Ok(())
}

async fn an_operators_template_file_and_the_base_url_shape_the_email(db: Db) -> TestResult {
    let folder = tempfile::tempdir()?;
    let template = folder.path().join("invite.html");
    std::fs::write(
        &template,
        "<p>Custom invite to {{domain}}: <a href=\"{{inviteAcceptUrl}}\">join</a></p>",
    )?;
    let sink = SmtpSink::start(Security::Plain, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let path = template.display().to_string();
    let server = TestServer::start_with_mail(
        db,
        &sink,
        Security::Plain,
        &[
            ("N8N_UM_EMAIL_TEMPLATES_INVITE", path.as_str()),
            ("N8N_EDITOR_BASE_URL", "https://proxy.example.com/usher/"),
        ],
    )
    .await;
    let owner = server.owner().await;
    invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await;
    let message = sink.next_message(WAIT).await;
    assert!(
        message
            .html()
            .contains("Custom invite to proxy.example.com"),
        "{}",
        message.html()
    );
    let link = message.link("/signup?token=").unwrap_or_default();
    assert!(
        link.starts_with("https://proxy.example.com/usher/signup?token="),
        "{link}"
    );
    assert!(
        message
            .text()
            .contains("https://proxy.example.com/usher/signup?token="),
        "the text part keeps the link"
    );
    Ok(())
}

async fn the_owner_edits_the_invitation_email_and_a_broken_template_is_refused(
    db: Db,
) -> TestResult {
    let sink = SmtpSink::start(Security::Plain, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let server = TestServer::start_with_mail(db, &sink, Security::Plain, &[]).await;
    let owner = server.owner().await;
    let broken = page_form(
        &server,
        &owner,
        "/settings/email",
        &[
            ("subject", "Join us"),
            ("html", "{{#if x}}never closed {{inviteAcceptUrl}}"),
        ],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(
        broken.contains("The message is not a valid template"),
        "{broken}"
    );
    let saved = page_form(
        &server,
        &owner,
        "/settings/email",
        &[
            ("subject", "Come and join {{inviterName}}"),
            (
                "html",
                "<p>Here: <a href=\"{{inviteAcceptUrl}}\">join</a></p>",
            ),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, saved) = shown_after(&server, &owner, saved).await;
    assert!(
        saved.contains("The invitation email “Come and join {{inviterName}}” is saved"),
        "{saved}"
    );
    invite(&server, &owner, json!([{"email": "ivy@example.com"}])).await;
    let message = sink.next_message(WAIT).await;
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("Come and join Olive Owner")
    );
    assert!(message.link("/signup?token=").is_some());

    server
        .add_user("ada@example.com", "Admin1pass", Role::Admin)
        .await;
    let admin = server.signed_in("ada@example.com", "Admin1pass").await;
    let page = admin.get(server.at("/settings/email")).send().await?;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    Ok(())
}
async fn a_service_account_sends_with_xoauth2_and_a_refused_one_gets_a_clear_error(
    db: Db,
) -> TestResult {
    let endpoint = TokenEndpoint::start().await;
    endpoint.issue("ya29.usher-test-token");
    let sink = SmtpSink::start(Security::StartTls, None).await;
    sink.accept_xoauth2("mailbox@example.com", "ya29.usher-test-token");
    let key = endpoint.private_key_pem();
    let url = endpoint.url();
    let server = TestServer::start_with_mail(
        db,
        &sink,
        Security::StartTls,
        &[
            ("N8N_SMTP_USER", "mailbox@example.com"),
            ("N8N_SMTP_PASS", ""),
            (
                "N8N_SMTP_OAUTH_SERVICE_CLIENT",
                "usher@project.iam.example.com",
            ),
            ("N8N_SMTP_OAUTH_PRIVATE_KEY", key.as_str()),
            ("N8N_SMTP_OAUTH_TOKEN_URL", url.as_str()),
        ],
    )
    .await;
    let owner = server.owner().await;
    let answer = body(
        invite(
            &server,
            &owner,
            json!([{"email": "ivy@example.com"}, {"email": "kim@example.com"}]),
        )
        .await,
    )
    .await;
    assert_eq!(answer["data"][0]["user"]["emailSent"], true, "{answer}");
    assert_eq!(answer["data"][1]["user"]["emailSent"], true, "{answer}");
    let message = sink.next_message(WAIT).await;
    assert_eq!(message.auth.as_deref(), Some("XOAUTH2 mailbox@example.com"));
    assert!(message.tls);
    // One token served both messages; the assertion named the service account.
    let accepted = endpoint.accepted();
    assert_eq!(accepted.len(), 1, "the token is kept until it expires");
    assert_eq!(accepted[0].0["iss"], "usher@project.iam.example.com");
    assert_eq!(accepted[0].0["sub"], "mailbox@example.com");

    // A key the endpoint does not know: the invitation stays, the reason is shown.
    let stranger = TokenEndpoint::start().await;
    let wrong_key = stranger.private_key_pem();
    let refused = TestServer::start_with_mail(
        db,
        &sink,
        Security::StartTls,
        &[
            ("N8N_SMTP_USER", "mailbox@example.com"),
            (
                "N8N_SMTP_OAUTH_SERVICE_CLIENT",
                "usher@project.iam.example.com",
            ),
            ("N8N_SMTP_OAUTH_PRIVATE_KEY", wrong_key.as_str()),
            ("N8N_SMTP_OAUTH_TOKEN_URL", url.as_str()),
        ],
    )
    .await;
    let owner = refused.owner().await;
    let answer = body(invite(&refused, &owner, json!([{"email": "ivy@example.com"}])).await).await;
    assert_eq!(answer["data"][0]["user"]["emailSent"], false);
    assert!(
        answer["data"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("refused the service account"),
        "{answer}"
    );
    Ok(())
}

on_both_databases!(
    without_smtp_an_invitation_gives_a_link_that_signs_the_new_user_in,
    each_email_gets_its_own_result_and_an_existing_account_does_not_fail_the_others,
    nobody_can_be_invited_as_owner_and_members_cannot_invite,
    inviting_a_pending_user_again_keeps_its_id_and_sends_the_same_link,
    revoking_removes_the_pending_user_and_its_link,
    an_expired_link_is_refused_with_the_inviters_name,
    two_accepts_of_one_link_at_once_make_one_account_also_across_instances,
    invitations_by_email_in_plain_starttls_and_implicit_tls_arrive_and_their_link_works,
    a_failed_send_keeps_the_invitation_with_the_link_and_the_servers_words,
    with_links_by_email_only_no_link_is_shown,
    an_operators_template_file_and_the_base_url_shape_the_email,
    the_owner_edits_the_invitation_email_and_a_broken_template_is_refused,
    a_service_account_sends_with_xoauth2_and_a_refused_one_gets_a_clear_error
);

#[tokio::test]
async fn an_unreadable_or_broken_template_stops_start_up_naming_the_setting() -> TestResult {
    let storage = std::sync::Arc::new(Storage::new(Db::Sqlite).await);
    let missing = TestServer::try_start(
        storage.clone(),
        &[("N8N_UM_EMAIL_TEMPLATES_INVITE", "/nonexistent/invite.html")],
    )
    .await;
    let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("N8N_UM_EMAIL_TEMPLATES_INVITE: cannot read the template"),
        "{message}"
    );

    let folder = tempfile::tempdir()?;
    let path = folder.path().join("reset.html");
    std::fs::write(&path, "{{#each}}")?;
    let path = path.display().to_string();
    let broken = TestServer::try_start(
        storage,
        &[("N8N_UM_EMAIL_TEMPLATES_PWRESET", path.as_str())],
    )
    .await;
    let message = broken.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("N8N_UM_EMAIL_TEMPLATES_PWRESET: not a valid Handlebars template"),
        "{message}"
    );
    Ok(())
}
