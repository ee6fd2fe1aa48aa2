//! Workflows, credentials, tags and projects under the role rules, and
//! deleting users with transfer of their work.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_domain::{
    model::Role,
    resources::ProjectId,
    store::{ProjectStore as _, UserStore as _, Visible, WorkflowStore as _},
};

use crate::harness::*;
use crate::on_both_databases;

async fn post(server: &TestServer, client: &Client, path: &str, body: Value) -> reqwest::Response {
    client
        .post(server.at(path))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn names(server: &TestServer, client: &Client, path: &str) -> Vec<String> {
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
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn personal_project(server: &TestServer, client: &Client) -> String {
    let list = body(
        client
            .get(server.at("/rest/projects"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    list["data"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|p| p["type"] == "personal" && p["role"] == "project:personalOwner")
        })
        .and_then(|p| p["id"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Owner, admin Ada, members Ann and Ben, each signed in.
async fn team(server: &TestServer) -> (Client, Client, Client, Client) {
    let owner = server.owner().await;
    server
        .add_user("ada@example.com", "Admin1pass", Role::Admin)
        .await;
    server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    server
        .add_user("ben@example.com", "Member1pass", Role::Member)
        .await;
    (
        owner,
        server.signed_in("ada@example.com", "Admin1pass").await,
        server.signed_in("ann@example.com", "Member1pass").await,
        server.signed_in("ben@example.com", "Member1pass").await,
    )
}

async fn members_see_their_own_workflows_and_the_owner_and_admins_see_all(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, admin, ann, ben) = team(&server).await;
    let created = body(
        post(
            &server,
            &ann,
            "/rest/workflows",
            json!({"name": "Ann's flow", "definition": {"nodes": [], "connections": {}}}),
        )
        .await,
    )
    .await;
    let id = created["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    post(
        &server,
        &ben,
        "/rest/workflows",
        json!({"name": "Ben's flow"}),
    )
    .await;

    assert_eq!(
        names(&server, &ann, "/rest/workflows").await,
        vec!["Ann's flow"]
    );
    assert_eq!(
        names(&server, &ben, "/rest/workflows").await,
        vec!["Ben's flow"]
    );
    assert_eq!(names(&server, &owner, "/rest/workflows").await.len(), 2);
    assert_eq!(names(&server, &admin, "/rest/workflows").await.len(), 2);
    let hidden = ben
        .get(server.at(&format!("/rest/workflows/{id}")))
        .send()
        .await?;
    assert_eq!(hidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(hidden).await["message"],
        "You do not have access to this workflow."
    );
    let edit = ben
        .patch(server.at(&format!("/rest/workflows/{id}")))
        .json(&json!({"name": "Mine now"}))
        .send()
        .await?;
    assert_eq!(edit.status(), StatusCode::FORBIDDEN);
    let by_admin = admin
        .patch(server.at(&format!("/rest/workflows/{id}")))
        .json(&json!({"active": true}))
        .send()
        .await?;
    assert_eq!(body(by_admin).await["data"]["active"], true);
    let bad = post(
        &server,
        &ann,
        "/rest/workflows",
        json!({"name": "x", "definition": [1, 2]}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let nameless = post(&server, &ann, "/rest/workflows", json!({"name": "  "})).await;
    assert_eq!(body(nameless).await["message"], "Give the workflow a name.");
    Ok(())
}

async fn team_project_roles_decide_who_edits_and_who_only_reads(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, admin, ann, ben) = team(&server).await;
    let refused = post(
        &server,
        &ann,
        "/rest/projects",
        json!({"name": "Ann's own team"}),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let project = body(
        post(
            &server,
            &admin,
            "/rest/projects",
            json!({"name": "Billing"}),
        )
        .await,
    )
    .await;
    let project_id = project["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let users = body(owner.get(server.at("/rest/users")).send().await?).await;
    let id_of = |email: &str| {
        users["data"]["items"]
            .as_array()
            .and_then(|i| i.iter().find(|u| u["email"] == email))
            .and_then(|u| u["id"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let members = format!("/rest/projects/{project_id}/members");
    assert_eq!(
        post(
            &server,
            &admin,
            &members,
            json!({"userId": id_of("ann@example.com"), "role": "project:editor"})
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        post(
            &server,
            &admin,
            &members,
            json!({"userId": id_of("ben@example.com"), "role": "project:viewer"})
        )
        .await
        .status(),
        StatusCode::OK
    );
    let wrong_role = post(
        &server,
        &admin,
        &members,
        json!({"userId": id_of("ben@example.com"), "role": "project:personalOwner"}),
    )
    .await;
    assert_eq!(wrong_role.status(), StatusCode::BAD_REQUEST);

    let flow = body(
        post(
            &server,
            &ann,
            "/rest/workflows",
            json!({"name": "Invoices", "projectId": project_id}),
        )
        .await,
    )
    .await;
    assert_eq!(flow["data"]["project"]["name"], "Billing");
    let flow_id = flow["data"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        names(&server, &ben, "/rest/workflows").await,
        vec!["Invoices"],
        "viewers read"
    );
    let by_viewer = ben
        .patch(server.at(&format!("/rest/workflows/{flow_id}")))
        .json(&json!({"name": "x"}))
        .send()
        .await?;
    assert_eq!(by_viewer.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(by_viewer).await["message"],
        "You can view this workflow but not change it."
    );
    let viewer_creates = post(
        &server,
        &ben,
        "/rest/workflows",
        json!({"name": "Sneaky", "projectId": project_id}),
    )
    .await;
    assert_eq!(viewer_creates.status(), StatusCode::FORBIDDEN);
    let by_editor_add = post(
        &server,
        &ann,
        &members,
        json!({"userId": id_of("ben@example.com"), "role": "project:admin"}),
    )
    .await;
    assert_eq!(
        by_editor_add.status(),
        StatusCode::FORBIDDEN,
        "editors do not manage members"
    );

    let detail = body(
        ben.get(server.at(&format!("/rest/projects/{project_id}")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(detail["data"]["members"].as_array().map(Vec::len), Some(3));
    let removed = ben
        .delete(server.at(&format!("{members}/{}", id_of("ben@example.com"))))
        .send()
        .await?;
    assert_eq!(removed.status(), StatusCode::FORBIDDEN);
    admin
        .delete(server.at(&format!("{members}/{}", id_of("ben@example.com"))))
        .send()
        .await?;
    assert!(
        names(&server, &ben, "/rest/workflows").await.is_empty(),
        "removed members lose access at once"
    );
    Ok(())
}

async fn credential_data_is_encrypted_never_listed_and_read_only_by_editors(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (_owner, admin, ann, ben) = team(&server).await;
    let created = post(
        &server,
        &ann,
        "/rest/credentials",
        json!({"name": "Stripe", "type": "stripeApi", "data": {"apiKey": "sk_live_secret"}}),
    )
    .await;
    let created = body(created).await;
    assert!(created["data"].get("data").is_none());
    let id = created["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let stored = server.store.credentials(Visible::All).await?;
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].sealed_data.contains("sk_live_secret"),
        "stored encrypted"
    );
    let list = ann
        .get(server.at("/rest/credentials"))
        .send()
        .await?
        .text()
        .await?;
    assert!(!list.contains("sk_live_secret"));
    let with_data = body(
        ann.get(server.at(&format!("/rest/credentials/{id}?includeData=true")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(with_data["data"]["data"]["apiKey"], "sk_live_secret");
    assert_eq!(
        ben.get(server.at(&format!("/rest/credentials/{id}")))
            .send()
            .await?
            .status(),
        StatusCode::FORBIDDEN
    );
    let by_admin = body(
        admin
            .get(server.at(&format!("/rest/credentials/{id}?includeData=true")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(by_admin["data"]["data"]["apiKey"], "sk_live_secret");
    let not_object = post(
        &server,
        &ann,
        "/rest/credentials",
        json!({"name": "Bad", "type": "x", "data": "plain"}),
    )
    .await;
    assert_eq!(not_object.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

async fn edits_of_workflows_and_credentials_are_in_the_audit_log(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, _admin, ann, _ben) = team(&server).await;
    let flow = body(
        post(
            &server,
            &ann,
            "/rest/workflows",
            json!({"name": "Invoices"}),
        )
        .await,
    )
    .await;
    let flow_id = flow["data"]["id"].as_str().unwrap_or_default().to_owned();
    let edit = ann
        .patch(server.at(&format!("/rest/workflows/{flow_id}")))
        .json(&json!({"name": "Billing", "active": true}))
        .send()
        .await?;
    assert_eq!(edit.status(), StatusCode::OK);
    // Saving without a change leaves no line.
    ann.patch(server.at(&format!("/rest/workflows/{flow_id}")))
        .json(&json!({"name": "Billing"}))
        .send()
        .await?;
    let secret = body(
        post(
            &server,
            &ann,
            "/rest/credentials",
            json!({"name": "Stripe", "type": "stripeApi", "data": {"key": "sk_live_1"}}),
        )
        .await,
    )
    .await;
    let secret_id = secret["data"]["id"].as_str().unwrap_or_default().to_owned();
    let replaced = ann
        .patch(server.at(&format!("/rest/credentials/{secret_id}")))
        .json(&json!({"data": {"key": "sk_live_2"}}))
        .send()
        .await?;
    assert_eq!(replaced.status(), StatusCode::OK);

    let log = body(owner.get(server.at("/rest/audit")).send().await?).await;
    let lines: Vec<(String, String)> = log["data"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.ends_with(".updated"))
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                "credential.updated".to_owned(),
                "Stripe: data replaced".to_owned()
            ),
            (
                "workflow.updated".to_owned(),
                "Billing: renamed from 'Invoices', activated".to_owned()
            ),
        ]
    );
    assert!(
        !log.to_string().contains("sk_live"),
        "credential data never reaches the log"
    );
    Ok(())
}

async fn everyone_tags_but_only_the_owner_and_admins_delete_tags(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, _admin, ann, ben) = team(&server).await;
    let tag = body(post(&server, &ann, "/rest/tags", json!({"name": "Billing"})).await).await;
    let tag_id = tag["data"]["id"].as_str().unwrap_or_default().to_owned();
    let twin = post(&server, &ben, "/rest/tags", json!({"name": "billing"})).await;
    assert_eq!(twin.status(), StatusCode::CONFLICT);
    assert_eq!(names(&server, &ben, "/rest/tags").await, vec!["Billing"]);
    let flow = body(
        post(
            &server,
            &ann,
            "/rest/workflows",
            json!({"name": "Invoices", "tags": [tag_id]}),
        )
        .await,
    )
    .await;
    assert_eq!(flow["data"]["tags"][0]["name"], "Billing");
    let flow_id = flow["data"]["id"].as_str().unwrap_or_default().to_owned();
    post(
        &server,
        &ann,
        "/rest/workflows",
        json!({"name": "Untagged"}),
    )
    .await;
    // The tags come with one workflow, a member's list and the full list.
    let one = body(
        ann.get(server.at(&format!("/rest/workflows/{flow_id}")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(one["data"]["tags"][0]["name"], "Billing");
    for (who, client) in [("member", &ann), ("owner", &owner)] {
        let list = body(client.get(server.at("/rest/workflows")).send().await?).await;
        let tags_of = |name: &str| {
            list["data"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|w| w["name"] == name)
                .map(|w| w["tags"].clone())
        };
        assert_eq!(
            tags_of("Invoices"),
            Some(json!([tag["data"].clone()])),
            "{who}: {list}"
        );
        assert_eq!(tags_of("Untagged"), Some(json!([])), "{who}: {list}");
    }
    let unknown = post(
        &server,
        &ann,
        "/rest/workflows",
        json!({"name": "x", "tags": ["0190e8a4-0000-7000-8000-000000000000"]}),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);

    let refused = ann
        .delete(server.at(&format!("/rest/tags/{tag_id}")))
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(refused).await["message"],
        "Only the owner and admins can delete tags."
    );
    assert_eq!(
        owner
            .delete(server.at(&format!("/rest/tags/{tag_id}")))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    let after = body(
        ann.get(server.at(&format!(
            "/rest/workflows/{}",
            flow["data"]["id"].as_str().unwrap_or_default()
        )))
        .send()
        .await?,
    )
    .await;
    assert_eq!(
        after["data"]["tags"],
        json!([]),
        "a deleted tag leaves its workflows"
    );
    Ok(())
}

async fn deleting_a_user_with_transfer_moves_all_their_work_and_ends_their_sessions(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, admin, ann, ben) = team(&server).await;
    post(&server, &ben, "/rest/workflows", json!({"name": "Ben one"})).await;
    post(&server, &ben, "/rest/workflows", json!({"name": "Ben two"})).await;
    post(
        &server,
        &ben,
        "/rest/credentials",
        json!({"name": "Ben's key", "type": "httpHeaderAuth", "data": {"value": "x"}}),
    )
    .await;
    let ann_project = personal_project(&server, &ann).await;
    let ben_id = server
        .store
        .user_by_email(&usher_domain::model::Email::parse("ben@example.com")?)
        .await?
        .map(|u| u.id.to_string())
        .unwrap_or_default();

    let me = body(admin.get(server.at("/rest/me")).send().await?).await;
    let myself = admin
        .delete(server.at(&format!(
            "/rest/users/{}",
            me["data"]["id"].as_str().unwrap_or_default()
        )))
        .send()
        .await?;
    assert_eq!(myself.status(), StatusCode::BAD_REQUEST);
    let owner_id = body(owner.get(server.at("/rest/me")).send().await?).await["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let the_owner = admin
        .delete(server.at(&format!("/rest/users/{owner_id}")))
        .send()
        .await?;
    assert_eq!(the_owner.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(the_owner).await["message"],
        "Instance owner cannot be deleted."
    );
    assert_eq!(
        ann.delete(server.at(&format!("/rest/users/{ben_id}")))
            .send()
            .await?
            .status(),
        StatusCode::FORBIDDEN
    );

    let deleted = owner
        .delete(server.at(&format!("/rest/users/{ben_id}?transferId={ann_project}")))
        .send()
        .await?;
    assert_eq!(body(deleted).await, json!({"data": {"success": true}}));
    let mut ann_flows = names(&server, &ann, "/rest/workflows").await;
    ann_flows.sort();
    assert_eq!(ann_flows, vec!["Ben one", "Ben two"]);
    assert_eq!(
        names(&server, &ann, "/rest/credentials").await,
        vec!["Ben's key"]
    );
    assert_eq!(
        ben.get(server.at("/rest/me")).send().await?.status(),
        StatusCode::UNAUTHORIZED
    );
    let gone = owner
        .delete(server.at(&format!("/rest/users/{ben_id}")))
        .send()
        .await?;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let log = body(
        owner
            .get(server.at("/rest/audit?action=user.deleted"))
            .send()
            .await?,
    )
    .await;
    assert!(
        log["data"]["items"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("workflows and credentials transferred to")
    );
    Ok(())
}

async fn deleting_a_user_without_transfer_deletes_their_work_and_pending_users_simply_go(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, _admin, _ann, ben) = team(&server).await;
    post(&server, &ben, "/rest/workflows", json!({"name": "Ben one"})).await;
    let ben_id = server
        .store
        .user_by_email(&usher_domain::model::Email::parse("ben@example.com")?)
        .await?
        .map(|u| u.id.to_string())
        .unwrap_or_default();
    owner
        .delete(server.at(&format!("/rest/users/{ben_id}")))
        .send()
        .await?;
    assert!(names(&server, &owner, "/rest/workflows").await.is_empty());

    let invited = body(
        post(
            &server,
            &owner,
            "/rest/invitations",
            json!([{"email": "ivy@example.com"}]),
        )
        .await,
    )
    .await;
    let ivy = invited["data"][0]["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        owner
            .delete(server.at(&format!("/rest/users/{ivy}")))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn a_transfer_that_fails_midway_leaves_every_user_and_workflow_as_it_was(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, _admin, _ann, ben) = team(&server).await;
    post(&server, &ben, "/rest/workflows", json!({"name": "Ben one"})).await;
    post(
        &server,
        &ben,
        "/rest/credentials",
        json!({"name": "Ben's key", "type": "t", "data": {}}),
    )
    .await;
    let ben_user = server
        .store
        .user_by_email(&usher_domain::model::Email::parse("ben@example.com")?)
        .await?
        .ok_or("ben")?;
    let before = server.store.workflows(Visible::All).await?;

    // The target project disappears between the check and the transaction
    // (as when another admin deletes it at that moment): the foreign key
    // stops the move, and the transaction rolls back as a whole.
    let vanished = ProjectId::new();
    let failed = server.store.delete_user(ben_user.id, Some(vanished)).await;
    assert!(failed.is_err(), "the move must fail");
    assert!(
        server.store.user_by_id(ben_user.id).await?.is_some(),
        "the user is still there"
    );
    let after = server.store.workflows(Visible::All).await?;
    assert_eq!(
        before
            .iter()
            .map(|w| (w.id, w.project_id))
            .collect::<Vec<_>>(),
        after
            .iter()
            .map(|w| (w.id, w.project_id))
            .collect::<Vec<_>>()
    );
    assert_eq!(server.store.credentials(Visible::All).await?.len(), 1);
    assert_eq!(
        ben.get(server.at("/rest/me")).send().await?.status(),
        StatusCode::OK,
        "and still signed in"
    );

    let api = owner
        .delete(server.at(&format!(
            "/rest/users/{}?transferId={vanished}",
            ben_user.id
        )))
        .send()
        .await?;
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body(api).await["message"],
        "The project to transfer to does not exist."
    );
    Ok(())
}

async fn a_user_who_never_opened_anything_is_still_offered_as_a_transfer_target(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let leaving = server
        .add_user("ben@example.com", "Member1pass", Role::Member)
        .await;
    server
        .add_user("quiet@example.com", "Member1pass", Role::Member)
        .await;
    // The transfer field searches people; one who never opened anything is found.
    let found = body(
        owner
            .get(server.at(&format!("/settings/users/{}/people?q=quiet", leaving.id)))
            .send()
            .await?,
    )
    .await;
    assert_eq!(found[0]["value"], "quiet@example.com", "{found}");
    Ok(())
}

on_both_databases!(
    members_see_their_own_workflows_and_the_owner_and_admins_see_all,
    team_project_roles_decide_who_edits_and_who_only_reads,
    credential_data_is_encrypted_never_listed_and_read_only_by_editors,
    edits_of_workflows_and_credentials_are_in_the_audit_log,
    everyone_tags_but_only_the_owner_and_admins_delete_tags,
    deleting_a_user_with_transfer_moves_all_their_work_and_ends_their_sessions,
    deleting_a_user_without_transfer_deletes_their_work_and_pending_users_simply_go,
    a_transfer_that_fails_midway_leaves_every_user_and_workflow_as_it_was,
    a_user_who_never_opened_anything_is_still_offered_as_a_transfer_target
);
