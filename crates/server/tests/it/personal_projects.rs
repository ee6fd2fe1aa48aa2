//! Personal projects as n8n has them: every user has one from the moment
//! their row exists, named `First Last <email>` and kept so; the caller's
//! own at `/rest/projects/personal`; and deleting a user with n8n's rules
//! for yourself, the owner, users there are not and where the work goes.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_domain::{
    model::{Role, UserId},
    resources::Project,
    store::{ProjectStore as _, UserStore as _},
};

use crate::harness::*;
use crate::on_both_databases;

const ALL_SCOPES: [&str; 5] = [
    "user:read",
    "user:list",
    "user:create",
    "user:changeRole",
    "user:delete",
];
/// A well-formed id that names nothing.
const UNKNOWN: &str = "0190e8a4-0000-7000-8000-000000000000";

/// The personal project the store holds for `user`.
async fn stored_project(server: &TestServer, user: &str) -> Project {
    let id: UserId = user.parse().unwrap_or_else(|e| panic!("{user}: {e}"));
    server
        .store
        .personal_project(id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("{user} has no personal project"))
}

/// The id of the user with this email, read as the owner sees it.
async fn id_of(server: &TestServer, email: &str) -> String {
    let email = usher_domain::model::Email::parse(email).unwrap_or_else(|e| panic!("{e}"));
    server
        .store
        .user_by_email(&email)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|u| u.id.to_string())
        .unwrap_or_else(|| panic!("no user {email}"))
}

async fn get(server: &TestServer, client: &Client, path: &str) -> reqwest::Response {
    client
        .get(server.at(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn delete(server: &TestServer, client: &Client, path: &str) -> reqwest::Response {
    client
        .delete(server.at(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn api(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    key: &str,
) -> reqwest::RequestBuilder {
    Client::new()
        .request(method, server.at(&format!("/api/v1{path}")))
        .header("X-N8N-API-KEY", key)
}

/// The emails `/api/v1/users?projectId=` lists for `project`.
async fn api_members(server: &TestServer, key: &str, project: &str) -> Vec<String> {
    let page = body(
        api(
            server,
            reqwest::Method::GET,
            &format!("/users?projectId={project}"),
            key,
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    page["data"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter_map(|u| u["email"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The members of a project as the owner sees them: (email, project role).
async fn members(server: &TestServer, owner: &Client, project: &Project) -> Vec<(Value, Value)> {
    let shown = body(get(server, owner, &format!("/rest/projects/{}", project.id)).await).await;
    shown["data"]["members"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|m| (m["email"].clone(), m["projectRole"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

async fn a_user_made_any_way_has_a_personal_project_with_n8ns_name_at_once(db: Db) -> TestResult {
    let server = TestServer::start(db).await;

    // The owner shell has one before set-up, under n8n's name for a user
    // without an email; set-up renames it and keeps it.
    let shell = server.store.owner().await?.ok_or("no owner shell")?;
    let before = stored_project(&server, &shell.id.to_string()).await;
    assert_eq!(before.name, "Unnamed Project");
    let owner = server.owner().await;
    let after = stored_project(&server, &shell.id.to_string()).await;
    assert_eq!(after.id, before.id);
    assert_eq!(after.name, "Olive Owner <owner@example.com>");
    assert_eq!(
        members(&server, &owner, &after).await,
        vec![(json!("owner@example.com"), json!("project:personalOwner"))]
    );

    // Invited: `<email>` while pending, then named by the accepted names.
    let invited = body(
        owner
            .post(server.at("/rest/invitations"))
            .json(&json!([{"email": "ivy@example.com"}]))
            .send()
            .await?,
    )
    .await;
    let ivy = invited["data"][0]["user"]["id"]
        .as_str()
        .ok_or("no invited user")?
        .to_owned();
    let pending = stored_project(&server, &ivy).await;
    assert_eq!(pending.name, "<ivy@example.com>");
    assert_eq!(
        members(&server, &owner, &pending).await,
        vec![(json!("ivy@example.com"), json!("project:personalOwner"))]
    );
    let token = invited["data"][0]["user"]["inviteAcceptUrl"]
        .as_str()
        .and_then(|url| url.split("token=").nth(1))
        .ok_or("no invitation link")?
        .to_owned();
    let accepted = server
        .client()
        .post(server.at("/rest/invitations/accept"))
        .json(&json!({"token": token, "firstName": "Ivy", "lastName": "Invitee", "password": "Ivy1password"}))
        .send()
        .await?;
    assert_eq!(accepted.status(), StatusCode::OK);
    let active = stored_project(&server, &ivy).await;
    assert_eq!(active.id, pending.id);
    assert_eq!(active.name, "Ivy Invitee <ivy@example.com>");

    // Created directly: n8n wants both names, one alone gives `<email>`.
    let created = body(
        owner
            .post(server.at("/rest/users"))
            .json(&json!({"users": [
                {"email": "bea@example.com", "firstName": "Bea"},
                {"email": "cy@example.com", "firstName": "Cy", "lastName": "Young"}
            ], "onboarding": "basic"}))
            .send()
            .await?,
    )
    .await;
    for (at, name) in [(0, "<bea@example.com>"), (1, "Cy Young <cy@example.com>")] {
        let id = created["data"][at]["user"]["id"]
            .as_str()
            .ok_or("no created user")?;
        assert_eq!(stored_project(&server, id).await.name, name);
    }

    // Through the public API.
    let key = new_key(&server, &owner, "k", &ALL_SCOPES).await;
    let made = body(
        api(&server, reqwest::Method::POST, "/users", &key)
            .json(&json!([{"email": "dee@example.com", "role": "global:member"}]))
            .send()
            .await?,
    )
    .await;
    let dee = made[0]["user"]["id"].as_str().ok_or("no API user")?;
    let dee_project = stored_project(&server, dee).await;
    assert_eq!(dee_project.name, "<dee@example.com>");
    assert_eq!(
        api_members(&server, &key, &dee_project.id.to_string()).await,
        vec!["dee@example.com"]
    );

    // And added to the store directly (what the tests' harness does).
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    assert_eq!(
        stored_project(&server, &mia.id.to_string()).await.name,
        "Mia Member <mia@example.com>"
    );
    Ok(())
}

async fn changing_names_or_email_renames_the_personal_project(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let owner_id = id_of(&server, "owner@example.com").await;
    let before = stored_project(&server, &owner_id).await;
    assert_eq!(before.name, "Olive Owner <owner@example.com>");

    server.advance_minutes(1);
    let renamed = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": "owner@example.com", "firstName": "Oriana", "lastName": "Owens"}))
        .send()
        .await?;
    assert_eq!(renamed.status(), StatusCode::OK);
    let after = stored_project(&server, &owner_id).await;
    assert_eq!(after.id, before.id);
    assert_eq!(after.name, "Oriana Owens <owner@example.com>");
    assert!(after.updated_at > before.updated_at);

    let moved = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": "oriana@example.com", "firstName": "Oriana", "lastName": "Owens", "currentPassword": OWNER_PASSWORD}))
        .send()
        .await?;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(
        stored_project(&server, &owner_id).await.name,
        "Oriana Owens <oriana@example.com>"
    );
    Ok(())
}

async fn the_callers_personal_project_answers_in_n8ns_shape_and_is_listed(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let ann = server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    server
        .add_user("ben@example.com", "Member1pass", Role::Member)
        .await;
    let ann_client = server.signed_in("ann@example.com", "Member1pass").await;

    let answer = get(&server, &ann_client, "/rest/projects/personal").await;
    assert_eq!(answer.status(), StatusCode::OK);
    let mut answer = body(answer).await;
    let project = stored_project(&server, &ann.id.to_string()).await;
    let data = answer["data"].as_object_mut().ok_or("no data")?;
    for time in ["createdAt", "updatedAt"] {
        let stamp = data.remove(time).ok_or(time)?;
        assert!(
            stamp.as_str().is_some_and(|s| s.ends_with('Z')),
            "{time}: {stamp}"
        );
    }
    assert_eq!(
        answer,
        json!({"data": {
            "id": project.id.to_string(),
            "name": "Mia Member <ann@example.com>",
            "type": "personal",
            "projectRelations": [{
                "id": ann.id.to_string(),
                "email": "ann@example.com",
                "firstName": "Mia",
                "lastName": "Member",
                "role": "project:personalOwner"
            }]
        }})
    );
    assert_eq!(
        get(&server, &server.client(), "/rest/projects/personal")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Listed for its owner with their role, and for the owner with all.
    let listed = body(get(&server, &ann_client, "/rest/projects").await).await;
    assert_eq!(
        listed["data"].as_array().map(|all| all
            .iter()
            .map(|p| (p["id"].clone(), p["type"].clone(), p["role"].clone()))
            .collect::<Vec<_>>()),
        Some(vec![(
            json!(project.id.to_string()),
            json!("personal"),
            json!("project:personalOwner")
        )])
    );
    let everyone = body(get(&server, &owner, "/rest/projects").await).await;
    let mut names: Vec<&str> = everyone["data"]
        .as_array()
        .map(|all| all.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "Mia Member <ann@example.com>",
            "Mia Member <ben@example.com>",
            "Olive Owner <owner@example.com>"
        ]
    );

    // The public API lists the owner of a personal project by its id.
    let key = new_key(&server, &owner, "k", &ALL_SCOPES).await;
    assert_eq!(
        api_members(&server, &key, &project.id.to_string()).await,
        vec!["ann@example.com"]
    );
    Ok(())
}

async fn an_open_instance_has_the_owner_shells_unnamed_project(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    let skip = page_form(&server, &client, "/setup/skip", &[])
        .await
        .send()
        .await?;
    assert_eq!(skip.status(), StatusCode::SEE_OTHER);
    let shell = server.store.owner().await?.ok_or("no owner shell")?;
    let answer = body(get(&server, &server.client(), "/rest/projects/personal").await).await;
    assert_eq!(answer["data"]["name"], "Unnamed Project");
    assert_eq!(
        answer["data"]["projectRelations"],
        json!([{"id": shell.id.to_string(), "email": null, "firstName": "", "lastName": "", "role": "project:personalOwner"}])
    );
    Ok(())
}

/// The owner and admin Ada, signed in, and the members `members`; the last
/// of them, signed in too, has the workflow `flow` in their personal
/// project. (owner, admin, last member)
async fn team_with_a_flow(
    server: &TestServer,
    members: &[&str],
    flow: &str,
) -> (Client, Client, Client) {
    let owner = server.owner().await;
    server
        .add_user("ada@example.com", "Admin1pass", Role::Admin)
        .await;
    for member in members {
        server.add_user(member, "Member1pass", Role::Member).await;
    }
    let admin = server.signed_in("ada@example.com", "Admin1pass").await;
    let last = members.last().unwrap_or_else(|| panic!("no members"));
    let member = server.signed_in(last, "Member1pass").await;
    let made = member
        .post(server.at("/rest/workflows"))
        .json(&json!({ "name": flow }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(made.status(), StatusCode::OK);
    (owner, admin, member)
}

async fn deleting_a_user_on_rest_follows_n8ns_rules(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, admin, ben) =
        team_with_a_flow(&server, &["ann@example.com", "ben@example.com"], "Ben flow").await;
    let (owner_id, ada_id, ann_id, ben_id) = (
        id_of(&server, "owner@example.com").await,
        id_of(&server, "ada@example.com").await,
        id_of(&server, "ann@example.com").await,
        id_of(&server, "ben@example.com").await,
    );
    let ben_project = stored_project(&server, &ben_id).await.id;
    let ann_project = stored_project(&server, &ann_id).await.id;

    // Yourself: 400, the owner too (n8n checks this first).
    for (client, myself) in [(&admin, &ada_id), (&owner, &owner_id)] {
        let refused = delete(&server, client, &format!("/rest/users/{myself}")).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body(refused).await["message"],
            "Cannot delete your own user"
        );
    }
    let the_owner = delete(&server, &admin, &format!("/rest/users/{owner_id}")).await;
    assert_eq!(the_owner.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(the_owner).await["message"],
        "Instance owner cannot be deleted."
    );
    assert_eq!(
        delete(&server, &owner, &format!("/rest/users/{UNKNOWN}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Into the deleted user's own personal project: 400, and nothing moves.
    let own = delete(
        &server,
        &owner,
        &format!("/rest/users/{ben_id}?transferId={ben_project}"),
    )
    .await;
    assert_eq!(own.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        get(&server, &ben, "/rest/me").await.status(),
        StatusCode::OK,
        "Ben is still there"
    );

    // Into another user's personal project: everything moves.
    let moved = delete(
        &server,
        &owner,
        &format!("/rest/users/{ben_id}?transferId={ann_project}"),
    )
    .await;
    assert_eq!(body(moved).await, json!({"data": {"success": true}}));
    let flows = body(get(&server, &owner, "/rest/workflows").await).await;
    assert_eq!(flows["data"][0]["name"], "Ben flow");
    assert_eq!(flows["data"][0]["projectId"], ann_project.to_string());
    assert!(
        server
            .store
            .personal_project(ben_id.parse()?)
            .await?
            .is_none(),
        "Ben's personal project went with him"
    );
    let again = delete(&server, &owner, &format!("/rest/users/{ben_id}")).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // Into a team project: also allowed.
    let team = body(
        owner
            .post(server.at("/rest/projects"))
            .json(&json!({"name": "Team"}))
            .send()
            .await?,
    )
    .await["data"]["id"]
        .as_str()
        .ok_or("no team")?
        .to_owned();
    let into_team = delete(
        &server,
        &admin,
        &format!("/rest/users/{ann_id}?transferId={team}"),
    )
    .await;
    assert_eq!(body(into_team).await, json!({"data": {"success": true}}));
    let flows = body(get(&server, &owner, "/rest/workflows").await).await;
    assert_eq!(flows["data"][0]["projectId"], team);
    Ok(())
}

async fn deleting_a_user_on_the_public_api_follows_the_same_rules(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, admin, _) = team_with_a_flow(&server, &["mia@example.com"], "Mia flow").await;
    let owner_key = new_key(&server, &owner, "o", &ALL_SCOPES).await;
    let admin_key = new_key(&server, &admin, "a", &ALL_SCOPES).await;
    let (owner_id, ada_id, mia_id) = (
        id_of(&server, "owner@example.com").await,
        id_of(&server, "ada@example.com").await,
        id_of(&server, "mia@example.com").await,
    );
    let delete = |key: &str, target: &str| {
        api(
            &server,
            reqwest::Method::DELETE,
            &format!("/users/{target}"),
            key,
        )
        .send()
    };

    for (key, myself) in [(&owner_key, &owner_id), (&admin_key, &ada_id)] {
        let refused = delete(key, myself).await?;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body(refused).await["message"],
            "Cannot delete your own user"
        );
    }
    // By email too: it is the same user.
    let by_email = delete(&admin_key, "ada@example.com").await?;
    assert_eq!(by_email.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        delete(&admin_key, &owner_id).await?.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        delete(&admin_key, UNKNOWN).await?.status(),
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        delete(&admin_key, &mia_id).await?.status(),
        StatusCode::NO_CONTENT
    );
    let ada_project = stored_project(&server, &ada_id).await;
    let flows = body(get(&server, &owner, "/rest/workflows").await).await;
    assert_eq!(flows["data"][0]["name"], "Mia flow");
    assert_eq!(flows["data"][0]["projectId"], ada_project.id.to_string());
    assert_eq!(
        delete(&admin_key, &mia_id).await?.status(),
        StatusCode::NOT_FOUND
    );
    Ok(())
}

async fn a_database_from_before_gets_personal_projects_with_n8ns_names_at_start(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let ann = server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    owner
        .post(server.at("/rest/invitations"))
        .json(&json!([{"email": "ivy@example.com"}]))
        .send()
        .await?;
    let ivy = id_of(&server, "ivy@example.com").await;
    let owner_id = id_of(&server, "owner@example.com").await;
    let owner_project = stored_project(&server, &owner_id).await.id;

    // As an older Usher left it: personal projects made only when first
    // needed (Ann and Ivy never needed one), named after the email.
    for sql in [
        "DELETE FROM project_members WHERE project_id IN \
         (SELECT id FROM projects WHERE personal_owner_id <> (SELECT id FROM users WHERE role = 'global:owner'))",
        "DELETE FROM projects WHERE personal_owner_id <> (SELECT id FROM users WHERE role = 'global:owner')",
        "UPDATE projects SET name = 'owner@example.com' WHERE kind = 'personal'",
    ] {
        server.storage.execute_sql(sql).await;
    }
    assert!(server.store.personal_project(ann.id).await?.is_none());

    // The next start fills them in, once: a second start changes nothing.
    let next = server.sibling(&[]).await;
    let owner_after = stored_project(&next, &owner_id).await;
    assert_eq!(owner_after.id, owner_project, "kept, only renamed");
    assert_eq!(owner_after.name, "Olive Owner <owner@example.com>");
    let ann_project = stored_project(&next, &ann.id.to_string()).await;
    assert_eq!(ann_project.name, "Mia Member <ann@example.com>");
    assert_eq!(stored_project(&next, &ivy).await.name, "<ivy@example.com>");
    assert_eq!(
        members(&next, &owner, &ann_project).await,
        vec![(json!("ann@example.com"), json!("project:personalOwner"))]
    );
    let third = next.sibling(&[]).await;
    assert_eq!(
        stored_project(&third, &ann.id.to_string()).await.id,
        ann_project.id
    );
    Ok(())
}

async fn a_reset_leaves_the_new_shell_the_owners_project_unnamed(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    owner
        .post(server.at("/rest/workflows"))
        .json(&json!({"name": "Owner flow"}))
        .send()
        .await?;
    let before = stored_project(&server, &id_of(&server, "owner@example.com").await).await;
    server.state.usher().reset_user_management().await?;
    let shell = server.store.owner().await?.ok_or("no owner shell")?;
    let after = stored_project(&server, &shell.id.to_string()).await;
    assert_eq!(after.id, before.id, "the owner's work stays in it");
    assert_eq!(after.name, "Unnamed Project");
    server.owner().await;
    assert_eq!(
        stored_project(&server, &shell.id.to_string()).await.name,
        "Olive Owner <owner@example.com>"
    );
    Ok(())
}

on_both_databases!(
    a_user_made_any_way_has_a_personal_project_with_n8ns_name_at_once,
    changing_names_or_email_renames_the_personal_project,
    the_callers_personal_project_answers_in_n8ns_shape_and_is_listed,
    an_open_instance_has_the_owner_shells_unnamed_project,
    deleting_a_user_on_rest_follows_n8ns_rules,
    deleting_a_user_on_the_public_api_follows_the_same_rules,
    a_database_from_before_gets_personal_projects_with_n8ns_names_at_start,
    a_reset_leaves_the_new_shell_the_owners_project_unnamed
);
