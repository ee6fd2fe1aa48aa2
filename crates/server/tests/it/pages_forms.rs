//! Every page's forms, as a browser without script posts them (issue 15,
//! points 5, 6, 7, 9 and 10, for all pages but the users pages): Post/
//! Redirect/Get with a notice that names the subject, no 405 on a form's
//! address, a confirm step before dangerous actions, what was typed kept,
//! the password policy shown once, the audit log in words, and 429 for a
//! page shown over a throttle.

use reqwest::{Client, StatusCode, header};
use serde_json::json;
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

/// The id of the item called `name` in a `/rest` list.
async fn id_named(server: &TestServer, client: &Client, path: &str, name: &str) -> String {
    let list = body(
        client
            .get(server.at(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    list["data"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == name))
        .and_then(|i| i["id"].as_str())
        .unwrap_or_else(|| panic!("no {name} in {path}: {list}"))
        .to_owned()
}

/// A post that did what it was asked answers 303 to the page to see next;
/// that page names what was done, once: a reload shows the page without
/// the notice and does not do it again.
async fn done_once(
    server: &TestServer,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
    next: &str,
    notice: &str,
) -> String {
    let response = post_form(server, client, path, form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
    assert_eq!(location(&response), next, "{path}");
    let (status, shown) = shown_after(server, client, response).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    assert!(
        shown.contains(notice),
        "{path}: {notice:?} is not on {shown}"
    );
    let (status, reloaded) = page(server, client, next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!reloaded.contains(notice), "{path}: the notice shows twice");
    reloaded
}

async fn every_form_redirects_names_its_subject_and_a_reload_repeats_nothing(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;

    done_once(
        &server,
        &owner,
        "/settings/personal",
        &[
            ("firstName", "Liv"),
            ("lastName", "Owner"),
            ("email", OWNER_EMAIL),
        ],
        "/settings/personal",
        "Your details are saved: Liv Owner, owner@example.com.",
    )
    .await;
    done_once(
        &server,
        &owner,
        "/settings/personal/password",
        &[
            ("currentPassword", OWNER_PASSWORD),
            ("newPassword", "Renewed1password"),
        ],
        "/settings/personal",
        "Your password is changed.",
    )
    .await;
    let tags = done_once(
        &server,
        &owner,
        "/home/tags",
        &[("name", "finance")],
        "/home/tags",
        "Tag “finance” is created.",
    )
    .await;
    assert_eq!(tags.matches("data-name=\"finance\"").count(), 1);
    let workflows = done_once(
        &server,
        &owner,
        "/home/workflows",
        &[("name", "Billing"), ("projectId", "")],
        "/home/workflows",
        "Workflow “Billing” is created in Liv Owner (personal).",
    )
    .await;
    assert_eq!(workflows.matches("data-name=\"Billing\"").count(), 1);
    let flow = id_named(&server, &owner, "/rest/workflows", "Billing").await;
    done_once(
        &server,
        &owner,
        &format!("/workflows/{flow}/active"),
        &[("active", "true")],
        &format!("/workflows/{flow}"),
        "Workflow “Billing” is active.",
    )
    .await;
    done_once(
        &server,
        &owner,
        "/home/credentials",
        &[
            ("name", "Stripe"),
            ("type", "stripeApi"),
            ("projectId", ""),
            ("data", "{}"),
        ],
        "/home/credentials",
        "Credential “Stripe” is created in Liv Owner (personal).",
    )
    .await;
    done_once(
        &server,
        &owner,
        "/settings/email",
        &[
            ("subject", "Join us"),
            ("html", "<a href=\"{{inviteAcceptUrl}}\">join</a>"),
        ],
        "/settings/email",
        "The invitation email “Join us” is saved",
    )
    .await;
    done_once(
        &server,
        &owner,
        "/settings/email/reset",
        &[],
        "/settings/email",
        "Invitations use the standard email again.",
    )
    .await;
    done_once(
        &server,
        &owner,
        "/settings/api",
        &[("label", "CI"), ("expires", "0")],
        "/settings/api",
        "API key “CI” is created.",
    )
    .await;
    // The project page is next after creating one.
    let created = post_form(&server, &owner, "/projects", &[("name", "Team")]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert!(location(&created).starts_with("/projects/"));
    let (_, shown) = shown_after(&server, &owner, created).await;
    assert!(shown.contains("Project “Team” is created."), "{shown}");

    // The audit log has each action once.
    let (_, audit) = page(&server, &owner, "/settings/audit?action=workflow.created").await;
    assert_eq!(
        audit.matches("data-action=\"workflow.created\"").count(),
        1,
        "{audit}"
    );
    // In words, with the personal project named as the lists name it.
    assert!(
        audit.contains("created the workflow “Billing” in Liv Owner (personal)"),
        "{audit}"
    );
    Ok(())
}

async fn a_get_on_a_form_s_address_shows_the_page_instead_of_405(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let made = owner
        .post(server.at("/rest/workflows"))
        .json(&json!({"name": "Billing"}))
        .send()
        .await?;
    assert_eq!(made.status(), StatusCode::OK);
    let flow = id_named(&server, &owner, "/rest/workflows", "Billing").await;
    let tag = owner
        .post(server.at("/rest/tags"))
        .json(&json!({"name": "finance"}))
        .send()
        .await?;
    assert_eq!(tag.status(), StatusCode::OK);
    let tag = id_named(&server, &owner, "/rest/tags", "finance").await;
    for (action, page) in [
        ("/settings/personal/password", "/settings/personal"),
        ("/settings/mfa/start", "/settings/mfa"),
        ("/settings/mfa/enable", "/settings/mfa"),
        ("/settings/mfa/disable", "/settings/mfa"),
        ("/settings/mfa/recovery-codes", "/settings/mfa"),
        ("/settings/mfa/enforce", "/settings/mfa"),
        ("/settings/email/reset", "/settings/email"),
        (&format!("/home/tags/{tag}/rename") as &str, "/home/tags"),
        (&format!("/home/tags/{tag}/delete"), "/home/tags"),
        (
            &format!("/workflows/{flow}/delete"),
            &format!("/workflows/{flow}"),
        ),
        (
            &format!("/workflows/{flow}/tags"),
            &format!("/workflows/{flow}"),
        ),
        ("/open-period/dismiss", "/"),
    ] {
        let response = owner.get(server.at(action)).send().await?;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "GET {action}");
        assert_eq!(location(&response), page, "GET {action}");
        let (status, _) = shown_after(&server, &owner, response).await;
        assert_eq!(status, StatusCode::OK, "GET {action} leads to {page}");
    }
    // Nothing was done: the tag and the workflow are still there.
    id_named(&server, &owner, "/rest/tags", "finance").await;
    id_named(&server, &owner, "/rest/workflows", "Billing").await;
    // Signed out, the second step of signing in leads to the first.
    let stranger = server.client();
    let response = stranger.get(server.at("/signin/code")).send().await?;
    assert_eq!(location(&response), "/signin", "{}", response.status());
    // Other methods are not led anywhere.
    let response = owner
        .delete(server.at("/settings/mfa/start"))
        .send()
        .await?;
    assert!(response.status().is_client_error(), "{}", response.status());
    Ok(())
}

async fn dangerous_actions_ask_first_without_script_and_act_once_confirmed(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let ann = server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    let created = post_form(&server, &owner, "/projects", &[("name", "Team")]).await;
    let project = location(&created);
    post_form(
        &server,
        &owner,
        &format!("{project}/members"),
        &[("userId", &ann.id.to_string()), ("role", "project:editor")],
    )
    .await;
    let (_, shown) = page(&server, &owner, &project).await;
    // The danger zone is the last thing on the shown.
    let zone = shown.find("id=\"danger-zone\"").ok_or("no danger zone")?;
    assert!(shown[zone..].contains("id=\"project-delete\""), "{shown}");
    assert!(!shown[zone..].contains("id=\"member-form\""));

    for (action, question) in [
        (
            format!("{project}/members/{}/remove", ann.id),
            "Remove Mia Member from “Team”?",
        ),
        (format!("{project}/delete"), "Delete the project “Team”?"),
    ] {
        let asked = post_form(&server, &owner, &action, &[]).await;
        assert_eq!(asked.status(), StatusCode::OK);
        let asked = asked.text().await?;
        assert!(asked.contains(question), "{asked}");
        assert!(
            asked.contains("name=\"confirmed\" value=\"yes\""),
            "{asked}"
        );
        assert!(asked.contains(&format!("action=\"{action}\"")), "{asked}");
    }
    // Nothing happened yet.
    let (status, _) = page(&server, &owner, &project).await;
    assert_eq!(status, StatusCode::OK);
    let removed = post_form(
        &server,
        &owner,
        &format!("{project}/members/{}/remove", ann.id),
        &[("confirmed", "yes")],
    )
    .await;
    let (_, shown) = shown_after(&server, &owner, removed).await;
    assert!(
        shown.contains("Mia Member is removed from “Team”."),
        "{shown}"
    );
    let deleted = post_form(
        &server,
        &owner,
        &format!("{project}/delete"),
        &[("confirmed", "yes")],
    )
    .await;
    assert_eq!(location(&deleted), "/projects");
    let (_, shown) = shown_after(&server, &owner, deleted).await;
    assert!(shown.contains("Project “Team” is deleted"), "{shown}");

    // Requiring two-factor for everyone asks first too; making it optional
    // does not.
    let asked = post_form(
        &server,
        &owner,
        "/settings/mfa/enforce",
        &[("enforce", "true")],
    )
    .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let asked = asked.text().await?;
    assert!(
        asked.contains("Require two-factor authentication for everyone?"),
        "{asked}"
    );
    assert!(asked.contains("name=\"enforce\" value=\"true\""), "{asked}");
    let (_, mfa) = page(&server, &owner, "/settings/mfa").await;
    assert!(mfa.contains("id=\"enforce-on\""), "not required yet: {mfa}");
    Ok(())
}

async fn a_failed_form_keeps_what_was_typed_but_no_password_with_the_error_beside_its_field(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    // An email change needs the current password: the names typed stay,
    // the password does not, the error is tied to its field and focused.
    let refused = post_form(
        &server,
        &owner,
        "/settings/personal",
        &[
            ("firstName", "Typed"),
            ("lastName", "Again"),
            ("email", "new@example.com"),
            ("currentPassword", "Wrong1password"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::OK);
    let html = refused.text().await?;
    assert!(html.contains("value=\"Typed\""), "{html}");
    assert!(html.contains("value=\"new@example.com\""), "{html}");
    assert!(!html.contains("Wrong1password"), "a password is echoed");
    assert!(
        html.contains("aria-describedby=\"currentPassword-error"),
        "{html}"
    );
    assert_eq!(html.matches(" autofocus").count(), 1, "{html}");
    assert_eq!(
        html.matches("class=\"error\"").count(),
        1,
        "one message: {html}"
    );

    // Bad JSON in a credential: name, type and data kept, the error beside
    // the data.
    let refused = post_form(
        &server,
        &owner,
        "/home/credentials",
        &[
            ("name", "Stripe"),
            ("type", "stripeApi"),
            ("projectId", ""),
            ("data", "{oops"),
        ],
    )
    .await;
    let html = refused.text().await?;
    assert!(html.contains("value=\"Stripe\""), "{html}");
    assert!(html.contains("{oops</textarea>"), "{html}");
    assert!(
        html.contains("aria-describedby=\"credential-data-error credential-data-hint\""),
        "{html}"
    );

    // A wrong sign-in keeps the email, never the password.
    let stranger = server.client();
    let refused = post_form(
        &server,
        &stranger,
        "/signin",
        &[("email", OWNER_EMAIL), ("password", "Wrong1password")],
    )
    .await;
    let html = refused.text().await?;
    assert!(html.contains(&format!("value=\"{OWNER_EMAIL}\"")), "{html}");
    assert!(!html.contains("Wrong1password"));
    Ok(())
}

async fn a_weak_password_shows_the_policy_once_with_what_is_missing_marked(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let (_, shown) = page(&server, &owner, "/settings/personal").await;
    // The policy is there before anything is typed, nothing marked.
    assert!(shown.contains("id=\"newPassword-policy\""), "{shown}");
    assert!(!shown.contains("class=\"missing\""));
    let refused = post_form(
        &server,
        &owner,
        "/settings/personal/password",
        &[
            ("currentPassword", OWNER_PASSWORD),
            ("newPassword", "lowercase1"),
        ],
    )
    .await;
    let html = refused.text().await?;
    // Only the capital letter is missing, and that is said once.
    assert_eq!(html.matches("class=\"missing\"").count(), 1, "{html}");
    assert!(
        html.contains(
            "<span class=\"visually-hidden\">Missing: </span>At least one capital letter"
        ),
        "{html}"
    );
    assert!(
        !html.contains("Password must contain"),
        "the policy twice: {html}"
    );
    assert_eq!(html.matches("id=\"newPassword-policy\"").count(), 1);
    assert!(
        html.contains("aria-describedby=\"newPassword-error newPassword-policy\""),
        "{html}"
    );
    Ok(())
}

async fn the_audit_log_reads_in_words_and_filters_by_code(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let ann = server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    let changed = owner
        .patch(server.at(&format!("/rest/users/{}/role", ann.id)))
        .json(&json!({"newRoleName": "global:admin"}))
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK);
    let (_, log) = page(&server, &owner, "/settings/audit").await;
    assert!(
        log.contains("Olive Owner changed the role of Mia Member from member to admin"),
        "{log}"
    );
    // The code is kept, as a link that filters by it.
    assert!(
        log.contains("href=\"/settings/audit?action=user.role_changed\""),
        "{log}"
    );
    let (_, filtered) = page(&server, &owner, "/settings/audit?action=user.role_changed").await;
    assert_eq!(
        filtered.matches("<tr data-action=").count(),
        1,
        "{filtered}"
    );
    assert!(
        filtered.contains("<option value=\"user.role_changed\" selected>"),
        "{filtered}"
    );
    Ok(())
}

async fn a_page_shown_over_a_throttle_answers_429_with_retry_after(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mut last = None;
    for _ in 0..8 {
        let response = post_form(
            &server,
            &owner,
            "/settings/personal/password",
            &[
                ("currentPassword", "Wrong1password"),
                ("newPassword", "Renewed1password"),
            ],
        )
        .await;
        if response.status() != StatusCode::OK {
            last = Some(response);
            break;
        }
    }
    let response = last.ok_or("never throttled")?;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("no Retry-After")?;
    assert!(retry > 0);
    // Still the page, with its form and the message beside the field.
    let html = response.text().await?;
    assert!(html.contains("id=\"password-form\""), "{html}");
    assert!(html.contains("Too many attempts"), "{html}");
    Ok(())
}

on_both_databases!(
    every_form_redirects_names_its_subject_and_a_reload_repeats_nothing,
    a_get_on_a_form_s_address_shows_the_page_instead_of_405,
    dangerous_actions_ask_first_without_script_and_act_once_confirmed,
    a_failed_form_keeps_what_was_typed_but_no_password_with_the_error_beside_its_field,
    a_weak_password_shows_the_policy_once_with_what_is_missing_marked,
    the_audit_log_reads_in_words_and_filters_by_code,
    a_page_shown_over_a_throttle_answers_429_with_retry_after,
);
