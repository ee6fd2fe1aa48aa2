//! Global roles, handing over ownership, and the audit log.

use reqwest::StatusCode;
use serde_json::{Value, json};
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

async fn set_role(
    server: &TestServer,
    client: &reqwest::Client,
    id: &str,
    role: &str,
) -> reqwest::Response {
    client
        .patch(server.at(&format!("/rest/users/{id}/role")))
        .json(&json!({"newRoleName": role}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("role: {e}"))
}

async fn my_id(server: &TestServer, client: &reqwest::Client) -> String {
    let me = body(
        client
            .get(server.at("/rest/me"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    me["data"]["id"].as_str().unwrap_or_default().to_owned()
}

async fn a_role_change_applies_on_the_users_very_next_request(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    let invite = |client: reqwest::Client| {
        let url = server.at("/rest/invitations");
        async move {
            client
                .post(url)
                .json(&json!([{"email": "new@example.com"}]))
                .send()
                .await
                .map(|r| r.status())
        }
    };
    assert_eq!(invite(member.clone()).await?, StatusCode::FORBIDDEN);
    let promoted = set_role(&server, &owner, &mia.id.to_string(), "global:admin").await;
    assert_eq!(body(promoted).await["data"]["role"], "global:admin");
    assert_eq!(
        invite(member.clone()).await?,
        StatusCode::OK,
        "the same session has the new rights"
    );
    set_role(&server, &owner, &mia.id.to_string(), "global:member").await;
    assert_eq!(
        invite(member).await?,
        StatusCode::FORBIDDEN,
        "and loses them as fast"
    );
    Ok(())
}

async fn nobody_becomes_owner_by_a_role_change_and_the_owner_keeps_their_role(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let owner_id = my_id(&server, &owner).await;
    let ada = server
        .add_user("ada@example.com", "Admin1pass", Role::Admin)
        .await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let admin = server.signed_in("ada@example.com", "Admin1pass").await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;

    let to_owner = set_role(&server, &owner, &mia.id.to_string(), "global:owner").await;
    assert_eq!(to_owner.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(to_owner).await["message"],
        "This global role value is not assignable"
    );
    assert_eq!(
        set_role(&server, &admin, &owner_id, "global:member")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        set_role(&server, &owner, &owner_id, "global:admin")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        set_role(&server, &admin, &ada.id.to_string(), "global:member")
            .await
            .status(),
        StatusCode::FORBIDDEN,
        "not one's own role"
    );
    assert_eq!(
        set_role(&server, &member, &ada.id.to_string(), "global:member")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        set_role(&server, &admin, &mia.id.to_string(), "global:wizard")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let unknown = set_role(
        &server,
        &admin,
        "0190e8a4-0000-7000-8000-000000000000",
        "global:admin",
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        set_role(&server, &admin, &mia.id.to_string(), "global:admin")
            .await
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn the_owner_hands_over_ownership_with_their_password_in_one_step(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let admin = server
        .add_user("ada@example.com", "Admin1pass", Role::Admin)
        .await;
    let transfer = |client: &reqwest::Client, to: String, password: &str| {
        client
            .post(server.at("/rest/owner/transfer"))
            .json(&json!({"newOwnerId": to, "password": password}))
            .send()
    };
    let wrong = transfer(&owner, mia.id.to_string(), "Wrong1password").await?;
    assert_eq!(
        body(wrong).await["message"],
        "Provided current password is incorrect."
    );
    let by_admin = transfer(
        &server.signed_in("ada@example.com", "Admin1pass").await,
        admin.id.to_string(),
        "Admin1pass",
    )
    .await?;
    assert_eq!(by_admin.status(), StatusCode::FORBIDDEN);

    let done = transfer(&owner, mia.id.to_string(), OWNER_PASSWORD).await?;
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(body(done).await["data"]["role"], "global:owner");
    let me = body(owner.get(server.at("/rest/me")).send().await?).await;
    assert_eq!(
        me["data"]["role"], "global:admin",
        "the old owner is an admin now"
    );
    let users = body(owner.get(server.at("/rest/users")).send().await?).await;
    let owners = users["data"]["items"]
        .as_array()
        .map(|items| items.iter().filter(|u| u["role"] == "global:owner").count());
    assert_eq!(owners, Some(1));
    let again = transfer(&owner, admin.id.to_string(), OWNER_PASSWORD).await?;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    Ok(())
}

async fn the_audit_log_says_who_did_what_to_whom_and_from_where(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    login(&server.client(), &server, OWNER_EMAIL, "Wrong1password").await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    owner
        .post(server.at("/rest/invitations"))
        .json(&json!([{"email": "ivy@example.com"}]))
        .send()
        .await?;
    set_role(&server, &owner, &mia.id.to_string(), "global:admin").await;

    let log = body(owner.get(server.at("/rest/audit")).send().await?).await;
    let items = log["data"]["items"].as_array().cloned().unwrap_or_default();
    let actions: Vec<&str> = items.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in [
        "owner.setup",
        "login.failed",
        "invitation.sent",
        "user.role_changed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let role_change: Value = items
        .iter()
        .find(|e| e["action"] == "user.role_changed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(role_change["actorEmail"], OWNER_EMAIL);
    assert_eq!(role_change["target"], "mia@example.com");
    assert_eq!(role_change["detail"], "global:member to global:admin");
    assert_eq!(role_change["ip"], "127.0.0.1");
    assert_eq!(
        actions.first().copied(),
        Some("user.role_changed"),
        "newest first"
    );

    let invitations = body(
        owner
            .get(server.at("/rest/audit?action=invitation."))
            .send()
            .await?,
    )
    .await;
    assert_eq!(invitations["data"]["count"], 1);
    let about_mia = body(
        owner
            .get(server.at("/rest/audit?person=MIA@"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(about_mia["data"]["count"], 1);
    let paged = body(
        owner
            .get(server.at("/rest/audit?take=2&skip=1"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(paged["data"]["items"].as_array().map(Vec::len), Some(2));

    let page = owner
        .get(server.at("/settings/audit?action=user."))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains("from member to admin"), "{page}");
    assert!(page.contains("<code>user.role_changed</code>"), "{page}");
    server
        .add_user("kim@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("kim@example.com", "Member1pass").await;
    assert_eq!(
        member.get(server.at("/rest/audit")).send().await?.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        member
            .get(server.at("/settings/audit"))
            .send()
            .await?
            .status(),
        StatusCode::FORBIDDEN
    );
    Ok(())
}

async fn the_users_page_changes_roles_and_hands_over_ownership(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let page = page_form(
        &server,
        &owner,
        &format!("/settings/users/{}/role", mia.id),
        &[("role", "global:admin")],
    )
    .await
    .send()
    .await?;
    let (_, page) = shown_after(&server, &owner, page).await;
    assert!(page.contains("Mia Member is now an admin."), "{page}");
    let wrong = page_form(
        &server,
        &owner,
        &format!("/settings/users/{}/make-owner", mia.id),
        &[("password", "nope")],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(wrong.contains("Provided current password is incorrect."));
    let done = page_form(
        &server,
        &owner,
        &format!("/settings/users/{}/make-owner", mia.id),
        &[("password", OWNER_PASSWORD)],
    )
    .await
    .send()
    .await?;
    assert_eq!(location(&done), format!("/settings/users/{}", mia.id));
    let after = owner
        .get(server.at(&location(&done)))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        after.contains("Mia Member is now the owner; you are an admin."),
        "{after}"
    );
    assert!(
        !after.contains("id=\"make-owner\""),
        "an admin cannot hand over ownership"
    );
    Ok(())
}

async fn members_see_only_names_emails_and_roles_of_others(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    let seen = body(member.get(server.at("/rest/users")).send().await?).await;
    let items = seen["data"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let other = items
        .iter()
        .find(|u| u["email"] == OWNER_EMAIL)
        .cloned()
        .unwrap_or_default();
    let own = items
        .iter()
        .find(|u| u["email"] == "mia@example.com")
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&str> = other
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(keys, vec!["email", "firstName", "id", "lastName", "role"]);
    assert!(
        own.get("isPending").is_some() && own.get("createdAt").is_some(),
        "all of one's own"
    );
    let by_owner = body(owner.get(server.at("/rest/users")).send().await?).await;
    assert!(
        by_owner["data"]["items"][1].get("isPending").is_some(),
        "managers see everything"
    );
    Ok(())
}

on_both_databases!(
    a_role_change_applies_on_the_users_very_next_request,
    nobody_becomes_owner_by_a_role_change_and_the_owner_keeps_their_role,
    the_owner_hands_over_ownership_with_their_password_in_one_step,
    the_audit_log_says_who_did_what_to_whom_and_from_where,
    the_users_page_changes_roles_and_hands_over_ownership,
    members_see_only_names_emails_and_roles_of_others
);
