//! API keys and the public API v1 for users (spec 003).

use std::collections::HashSet;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

const ALL_SCOPES: [&str; 5] = [
    "user:read",
    "user:list",
    "user:create",
    "user:changeRole",
    "user:delete",
];

fn api(server: &TestServer, method: &str, path: &str, key: &str) -> reqwest::RequestBuilder {
    Client::new()
        .request(
            method.parse().unwrap_or(reqwest::Method::GET),
            server.at(&format!("/api/v1{path}")),
        )
        .header("X-N8N-API-KEY", key)
}

async fn keys_are_shown_once_scoped_by_role_and_listed_masked(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let scopes = body(owner.get(server.at("/rest/api-keys/scopes")).send().await?).await;
    assert_eq!(scopes["data"], json!(ALL_SCOPES));
    let raw = new_key(&server, &owner, "CI", &ALL_SCOPES).await;
    assert!(raw.len() >= 43, "{raw}");
    let list = body(owner.get(server.at("/rest/api-keys")).send().await?).await;
    let listed = list["data"][0].clone();
    assert_eq!(listed["label"], "CI");
    assert_eq!(listed["apiKey"], format!("******{}", &raw[raw.len() - 4..]));
    assert!(
        !list.to_string().contains(&raw),
        "the key is never shown again"
    );

    let twin = owner
        .post(server.at("/rest/api-keys"))
        .json(&json!({"label": "CI", "scopes": ["user:read"], "expiresAt": null}))
        .send()
        .await?;
    assert_eq!(twin.status(), StatusCode::CONFLICT);
    let long = owner
        .post(server.at("/rest/api-keys"))
        .json(&json!({"label": "x".repeat(51), "scopes": ["user:read"], "expiresAt": null}))
        .send()
        .await?;
    assert_eq!(long.status(), StatusCode::BAD_REQUEST);
    let past = owner
        .post(server.at("/rest/api-keys"))
        .json(&json!({"label": "old", "scopes": ["user:read"], "expiresAt": 1000}))
        .send()
        .await?;
    assert_eq!(past.status(), StatusCode::BAD_REQUEST);

    server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    assert_eq!(
        body(
            member
                .get(server.at("/rest/api-keys/scopes"))
                .send()
                .await?
        )
        .await["data"],
        json!([])
    );
    let refused = member
        .post(server.at("/rest/api-keys"))
        .json(&json!({"label": "mine", "scopes": ["user:list"], "expiresAt": null}))
        .send()
        .await?;
    assert_eq!(
        body(refused).await["message"],
        "Invalid scopes for user role"
    );

    let id = listed["id"].as_str().unwrap_or_default();
    assert_eq!(
        owner
            .delete(server.at(&format!("/rest/api-keys/{id}")))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        api(&server, "GET", "/users", &raw).send().await?.status(),
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

async fn calls_without_a_valid_key_get_401_and_keys_without_the_right_get_403(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let no_key = Client::new().get(server.at("/api/v1/users")).send().await?;
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        body(no_key).await["message"],
        "'X-N8N-API-KEY' header required"
    );
    let bad = api(&server, "GET", "/users", "usher_api_nonsense")
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(bad).await["code"], 401);

    let read_only = new_key(&server, &owner, "read", &["user:read"]).await;
    let listing = api(&server, "GET", "/users", &read_only).send().await?;
    assert_eq!(listing.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(listing).await["message"],
        "This API key does not have the scope user:list."
    );

    let bearer = new_key(&server, &owner, "bearer", &ALL_SCOPES).await;
    let by_bearer = Client::new()
        .get(server.at("/api/v1/users"))
        .bearer_auth(&bearer)
        .send()
        .await?;
    assert_eq!(by_bearer.status(), StatusCode::OK);

    // An admin's key follows the admin's role as it is now.
    let ada = server
        .add_user("ada@example.com", "Admin1pass", Role::Admin)
        .await;
    let admin = server.signed_in("ada@example.com", "Admin1pass").await;
    let admin_key = new_key(&server, &admin, "ada", &ALL_SCOPES).await;
    let ada_path = format!("/users/{}", ada.id);
    assert_eq!(
        api(&server, "GET", "/users", &admin_key)
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        api(&server, "GET", &ada_path, &admin_key)
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    // Demoted and deleted through another instance on the same database:
    // this instance refuses the key on the very next call.
    let other = server.sibling(&[]).await;
    let demoted = owner
        .patch(other.at(&format!("/rest/users/{}/role", ada.id)))
        .json(&json!({"newRoleName": "global:member"}))
        .send()
        .await?;
    assert_eq!(demoted.status(), StatusCode::OK);
    assert_eq!(
        api(&server, "GET", "/users", &admin_key)
            .send()
            .await?
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&server, "GET", &ada_path, &admin_key)
            .send()
            .await?
            .status(),
        StatusCode::FORBIDDEN
    );
    let deleted = owner
        .delete(other.at(&format!("/rest/users/{}", ada.id)))
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(
        api(&server, "GET", "/users", &admin_key)
            .send()
            .await?
            .status(),
        StatusCode::UNAUTHORIZED,
        "a deleted user's keys end"
    );
    assert_eq!(
        api(&server, "GET", &ada_path, &admin_key)
            .send()
            .await?
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // An expiring key stops at its expiry.
    let soon = server.state.usher().now() / 1000 + 3600;
    let expiring = owner
        .post(server.at("/rest/api-keys"))
        .json(&json!({"label": "soon", "scopes": ["user:list"], "expiresAt": soon}))
        .send()
        .await?;
    let expiring = body(expiring).await["data"]["rawApiKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        api(&server, "GET", "/users", &expiring)
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    server.advance_minutes(61);
    let expired = api(&server, "GET", "/users", &expiring).send().await?;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(
        body(expired).await["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired")
    );
    Ok(())
}

async fn listing_users_pages_by_cursor_and_checks_its_parameters(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    for i in 0..7 {
        server
            .add_user(&format!("user{i}@example.com"), "Member1pass", Role::Member)
            .await;
    }
    let key = new_key(&server, &owner, "k", &ALL_SCOPES).await;
    let first = body(
        api(&server, "GET", "/users?limit=3&includeRole=true", &key)
            .send()
            .await?,
    )
    .await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(first["data"][0]["role"], "global:owner");
    let user = &first["data"][1];
    for field in [
        "id",
        "email",
        "firstName",
        "lastName",
        "isPending",
        "createdAt",
        "updatedAt",
        "mfaEnabled",
    ] {
        assert!(user.get(field).is_some(), "{field} missing");
    }
    let plain = body(api(&server, "GET", "/users", &key).send().await?).await;
    assert!(
        plain["data"][0].get("role").is_none(),
        "role only with includeRole=true"
    );
    assert_eq!(plain["data"].as_array().map(Vec::len), Some(8));
    assert_eq!(plain["nextCursor"], Value::Null);

    for (query, message) in [
        // n8n's validator's words (more in api_validation.rs).
        ("limit=251", "request/query/limit must be <= 250"),
        ("limit=abc", "request/query/limit must be number"),
        ("cursor=not-a-cursor", "An invalid cursor was provided"),
        ("offset=-1", "request/query/offset must be >= 0"),
    ] {
        let answer = api(&server, "GET", &format!("/users?{query}"), &key)
            .send()
            .await?;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body(answer).await["message"], message, "{query}");
    }
    let unknown_project = api(
        &server,
        "GET",
        "/users?projectId=0190e8a4-0000-7000-8000-000000000000",
        &key,
    )
    .send()
    .await?;
    assert_eq!(unknown_project.status(), StatusCode::NOT_FOUND);
    let offset = body(api(&server, "GET", "/users?offset=6", &key).send().await?).await;
    assert_eq!(offset["data"].as_array().map(Vec::len), Some(2));
    Ok(())
}

async fn walking_every_page_while_users_come_and_go_returns_each_lasting_user_once(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mut lasting = vec!["owner@example.com".to_owned()];
    let mut doomed = Vec::new();
    for i in 0..12 {
        let user = server
            .add_user(&format!("u{i:02}@example.com"), "Member1pass", Role::Member)
            .await;
        if i % 4 == 1 {
            doomed.push(user.id)
        } else {
            lasting.push(format!("u{i:02}@example.com"))
        }
    }
    let key = new_key(&server, &owner, "walk", &ALL_SCOPES).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("/users?limit=3&cursor={c}"),
            None => "/users?limit=3".to_owned(),
        };
        let page = body(api(&server, "GET", &query, &key).send().await?).await;
        seen.extend(
            page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u["email"].as_str().map(str::to_owned)),
        );
        pages += 1;
        // Meanwhile: one user deleted, one added, on every page.
        if let Some(id) = doomed.pop() {
            owner
                .delete(server.at(&format!("/rest/users/{id}")))
                .send()
                .await?;
        }
        server
            .add_user(
                &format!("late{pages}@example.com"),
                "Member1pass",
                Role::Member,
            )
            .await;
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 50, "the cursor must advance");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "nobody twice: {seen:?}");
    for email in &lasting {
        assert!(seen.contains(email), "{email} missing from {seen:?}");
    }
    Ok(())
}

async fn single_users_are_found_by_id_or_email_invited_changed_and_deleted(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let key = new_key(&server, &owner, "k", &ALL_SCOPES).await;

    let by_id = body(
        api(&server, "GET", &format!("/users/{}", mia.id), &key)
            .send()
            .await?,
    )
    .await;
    assert_eq!(by_id["email"], "mia@example.com");
    let by_email = body(
        api(
            &server,
            "GET",
            "/users/MIA@example.com?includeRole=true",
            &key,
        )
        .send()
        .await?,
    )
    .await;
    assert_eq!(by_email["role"], "global:member");
    assert_eq!(
        api(&server, "GET", "/users/nobody@example.com", &key)
            .send()
            .await?
            .status(),
        StatusCode::NOT_FOUND
    );

    let invited = api(&server, "POST", "/users", &key)
        .json(&json!([{"email": "ivy@example.com", "role": "global:member"}]))
        .send()
        .await?;
    assert_eq!(invited.status(), StatusCode::OK);
    let invited = body(invited).await;
    assert_eq!(invited[0]["user"]["emailSent"], false);
    assert!(
        invited[0]["user"]["inviteAcceptUrl"]
            .as_str()
            .unwrap_or_default()
            .contains("/signup?token=")
    );
    assert_eq!(invited[0]["error"], "");
    // A bad address refuses the whole request (api_validation.rs).
    let bad_role = api(&server, "POST", "/users", &key)
        .json(&json!([{"email": "x@example.com", "role": "global:owner"}]))
        .send()
        .await?;
    assert_eq!(bad_role.status(), StatusCode::BAD_REQUEST);

    let changed = api(&server, "PATCH", &format!("/users/{}/role", mia.id), &key)
        .json(&json!({"newRoleName": "global:admin"}))
        .send()
        .await?;
    assert_eq!(body(changed).await["role"], "global:admin");
    let owner_id = body(owner.get(server.at("/rest/me")).send().await?).await["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let demote_owner = api(&server, "PATCH", &format!("/users/{owner_id}/role"), &key)
        .json(&json!({"newRoleName": "global:member"}))
        .send()
        .await?;
    assert_eq!(demote_owner.status(), StatusCode::FORBIDDEN);

    // The key is the owner's: deleting the owner is deleting oneself, 400
    // as in n8n (roles beside: an admin's key gets 403, personal_projects.rs).
    let myself = api(&server, "DELETE", &format!("/users/{owner_id}"), &key)
        .send()
        .await?;
    assert_eq!(myself.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(myself).await["message"], "Cannot delete your own user");
    let deleted = api(&server, "DELETE", &format!("/users/{}", mia.id), &key)
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        api(&server, "DELETE", &format!("/users/{}", mia.id), &key)
            .send()
            .await?
            .status(),
        StatusCode::NOT_FOUND
    );
    Ok(())
}

async fn the_openapi_document_and_its_page_are_served_and_the_api_can_be_turned_off(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let spec = body(
        Client::new()
            .get(server.at("/api/v1/openapi.json"))
            .send()
            .await?,
    )
    .await;
    assert_eq!(spec["openapi"], "3.0.0");
    for path in ["/users", "/users/{id}", "/users/{id}/role"] {
        assert!(spec["paths"].get(path).is_some(), "{path}");
    }
    let page = Client::new()
        .get(server.at("/api/v1/docs"))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains("GET /api/v1/users"));
    assert!(
        !page.contains("http://cdn") && !page.contains("https://cdn"),
        "no CDN"
    );

    let off = TestServer::start_with(db, &[("N8N_PUBLIC_API_DISABLED", "true")]).await;
    let owner = off.owner().await;
    assert_eq!(
        Client::new()
            .get(off.at("/api/v1/users"))
            .send()
            .await?
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        owner.get(off.at("/rest/api-keys")).send().await?.status(),
        StatusCode::NOT_FOUND
    );
    Ok(())
}

async fn the_api_page_makes_a_key_shows_it_once_and_deletes_it(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let made = page_form(
        &server,
        &owner,
        "/settings/api",
        &[
            ("label", "Deploys"),
            ("scope", "user:read"),
            ("scope", "user:list"),
            ("expires", "30"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(made.status(), StatusCode::SEE_OTHER, "Post/Redirect/Get");
    let (_, made) = shown_after(&server, &owner, made).await;
    let raw = made
        .split("id=\"new-api-key\"")
        .next()
        .and_then(|before| before.rsplit("value=\"").next())
        .unwrap_or_default();
    assert!(raw.starts_with("usher_api_"), "{made}");
    let raw = raw.split('"').next().unwrap_or_default().to_owned();
    assert_eq!(
        api(&server, "GET", "/users", &raw).send().await?.status(),
        StatusCode::OK
    );
    let again = owner
        .get(server.at("/settings/api"))
        .send()
        .await?
        .text()
        .await?;
    assert!(!again.contains(&raw), "shown once");
    assert!(again.contains("user:read, user:list"));
    let keys = body(owner.get(server.at("/rest/api-keys")).send().await?).await;
    let id = keys["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/settings/api/{id}/delete");
    let asked = page_form(&server, &owner, &path, &[]).await.send().await?;
    let (_, asked) = shown_after(&server, &owner, asked).await;
    assert!(
        asked.contains("Delete the API key “"),
        "asks first: {asked}"
    );
    let deleted = page_form(&server, &owner, &path, &[("confirmed", "yes")])
        .await
        .send()
        .await?;
    let (_, deleted) = shown_after(&server, &owner, deleted).await;
    assert!(
        deleted.contains("” is deleted; calls with it now fail."),
        "{deleted}"
    );
    assert_eq!(
        api(&server, "GET", "/users", &raw).send().await?.status(),
        StatusCode::UNAUTHORIZED
    );

    server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1pass").await;
    let page = member
        .get(server.at("/settings/api"))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains("Your role has no user operations to grant"));
    Ok(())
}

on_both_databases!(
    keys_are_shown_once_scoped_by_role_and_listed_masked,
    calls_without_a_valid_key_get_401_and_keys_without_the_right_get_403,
    listing_users_pages_by_cursor_and_checks_its_parameters,
    walking_every_page_while_users_come_and_go_returns_each_lasting_user_once,
    single_users_are_found_by_id_or_email_invited_changed_and_deleted,
    the_openapi_document_and_its_page_are_served_and_the_api_can_be_turned_off,
    the_api_page_makes_a_key_shows_it_once_and_deletes_it
);

/// A PostgreSQL restart ends every pooled connection; the next reads and
/// writes still succeed (reads retry once on a new connection, the general
/// pool checks a connection before use).
#[tokio::test]
async fn requests_succeed_after_postgres_ends_the_connections() -> TestResult {
    let server = TestServer::start(Db::Postgres).await;
    let owner = server.owner().await;
    let key = new_key(&server, &owner, "restart", &ALL_SCOPES).await;
    let page = body(api(&server, "GET", "/users?limit=1", &key).send().await?).await;
    let id = page["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Several requests at once, so the read pool holds several connections.
    let reads = (0..4).map(|_| api(&server, "GET", &format!("/users/{id}"), &key).send());
    for answer in join_all(reads).await? {
        assert_eq!(answer.status(), StatusCode::OK);
    }

    server.storage.cut_connections().await;

    for path in [
        format!("/users/{id}"),
        "/users?limit=5".to_owned(),
        format!("/users/{OWNER_EMAIL}"),
    ] {
        let answer = api(&server, "GET", &path, &key).send().await?;
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "{path} after the connections ended"
        );
    }
    let me = owner.get(server.at("/rest/me")).send().await?;
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "a session read after the connections ended"
    );
    Ok(())
}

/// What the API answers follows every change made through any instance
/// on the very next call: a renamed user, a key's narrower scopes, a
/// revoked key (on PostgreSQL each instance keeps keys and users in
/// memory, and a change returns only once every instance let go of them).
async fn every_instance_answers_with_the_latest_change(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let other = server.sibling(&[]).await;
    let owner = server.owner().await;
    let ada = server
        .add_user("ada@example.com", "Member1pass", Role::Member)
        .await;
    let key = new_key(&server, &owner, "reader", &ALL_SCOPES).await;
    let ada_path = format!("/users/{}", ada.id);
    for _ in 0..3 {
        let read = body(api(&server, "GET", &ada_path, &key).send().await?).await;
        assert_eq!(read["firstName"], ada.first_name.as_str());
    }
    let by_email = body(
        api(&server, "GET", "/users/ada@example.com", &key)
            .send()
            .await?,
    )
    .await;
    assert_eq!(by_email["id"], ada.id.to_string());

    let ada_client = other.signed_in("ada@example.com", "Member1pass").await;
    let renamed = ada_client
        .patch(other.at("/rest/me"))
        .json(&json!({"email": "ada@example.com", "firstName": "Augusta", "lastName": "King"}))
        .send()
        .await?;
    assert_eq!(renamed.status(), StatusCode::OK);
    let read = body(api(&server, "GET", &ada_path, &key).send().await?).await;
    assert_eq!(
        (read["firstName"].as_str(), read["lastName"].as_str()),
        (Some("Augusta"), Some("King"))
    );

    let moved = ada_client.patch(other.at("/rest/me")).json(&json!({"email": "augusta@example.com", "firstName": "Augusta", "lastName": "King", "currentPassword": "Member1pass"})).send().await?;
    assert_eq!(moved.status(), StatusCode::OK);
    let old_address = api(&server, "GET", "/users/ada@example.com", &key)
        .send()
        .await?;
    assert_eq!(
        old_address.status(),
        StatusCode::NOT_FOUND,
        "the old address names nobody now"
    );

    let keys = body(owner.get(other.at("/rest/api-keys")).send().await?).await;
    let key_id = keys["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let narrowed = owner
        .patch(other.at(&format!("/rest/api-keys/{key_id}")))
        .json(&json!({"label": "reader", "scopes": ["user:read"]}))
        .send()
        .await?;
    assert_eq!(narrowed.status(), StatusCode::OK);
    assert_eq!(
        api(&server, "GET", "/users", &key).send().await?.status(),
        StatusCode::FORBIDDEN,
        "user:list was taken away"
    );
    assert_eq!(
        api(&server, "GET", &ada_path, &key).send().await?.status(),
        StatusCode::OK
    );

    let revoked = owner
        .delete(other.at(&format!("/rest/api-keys/{key_id}")))
        .send()
        .await?;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        api(&server, "GET", &ada_path, &key).send().await?.status(),
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

/// A key deleted with SQL, behind Usher's back, stops working too: at
/// once on SQLite (which reads every key from the database), within the
/// moment PostgreSQL takes to tell each instance on PostgreSQL.
async fn a_key_deleted_in_the_database_stops_working(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let key = new_key(&server, &owner, "doomed", &ALL_SCOPES).await;
    for _ in 0..3 {
        assert_eq!(
            api(&server, "GET", "/users", &key).send().await?.status(),
            StatusCode::OK
        );
    }
    server.storage.execute_sql("DELETE FROM api_keys").await;
    let mut status = StatusCode::OK;
    for _ in 0..40 {
        status = api(&server, "GET", "/users", &key).send().await?.status();
        if status == StatusCode::UNAUTHORIZED || db == Db::Sqlite {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}

on_both_databases!(
    every_instance_answers_with_the_latest_change,
    a_key_deleted_in_the_database_stops_working
);

/// On PostgreSQL a key in use, its user and the users it reads are answered
/// from memory: with the tables locked against every read, they still are,
/// while a read that needs the database waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_keys_in_use_are_answered_from_memory() -> TestResult {
    use std::time::Duration;
    let server = TestServer::start(Db::Postgres).await;
    let owner = server.owner().await;
    let key = new_key(&server, &owner, "warm", &ALL_SCOPES).await;
    let path = format!("/users/{OWNER_EMAIL}");
    for _ in 0..3 {
        assert_eq!(
            api(&server, "GET", &path, &key).send().await?.status(),
            StatusCode::OK
        );
    }
    let mut blocker = server.storage.postgres().await;
    sqlx::query("BEGIN").execute(&mut blocker).await?;
    sqlx::query("LOCK TABLE users, api_keys IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await?;
    let cached = tokio::time::timeout(
        Duration::from_secs(5),
        api(&server, "GET", &path, &key).send(),
    )
    .await;
    assert_eq!(
        cached.map(|answer| answer.map(|a| a.status()).ok()),
        Ok(Some(StatusCode::OK)),
        "answered from memory"
    );
    let page = tokio::time::timeout(
        Duration::from_millis(500),
        api(&server, "GET", "/users", &key).send(),
    )
    .await;
    assert!(
        page.is_err(),
        "a page of users is read from the database, which is locked"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await?;
    Ok(())
}

/// A change to a user does not return while any instance may still answer
/// from memory with the old user: an instance that holds keys in memory
/// (played here by the test's own connection taking the same lock) and does
/// not let go holds the change up, until it lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_change_returns_only_once_every_instance_let_go_of_its_keys() -> TestResult {
    use std::time::Duration;
    let server = TestServer::start(Db::Postgres).await;
    let owner = server.owner().await;
    let ada = server
        .add_user("ada@example.com", "Member1pass", Role::Admin)
        .await;
    // The lock each instance holds while it keeps keys in memory.
    let mut stalled = server.storage.postgres().await;
    let mut held: Vec<(i64, i64)> = Vec::new();
    for _ in 0..50 {
        held = sqlx::query_as(
            "SELECT classid::bigint, objid::bigint FROM pg_locks \
             WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_all(&mut stalled)
        .await?;
        if !held.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (class, key) = *held.first().ok_or("the instance holds no lock")?;
    // bigint to the int4 the lock functions take: the same 32 bits.
    sqlx::query("SELECT pg_advisory_lock_shared(($1::bit(32))::int, ($2::bit(32))::int)")
        .bind(class)
        .bind(key)
        .execute(&mut stalled)
        .await?;
    let demote = owner
        .patch(server.at(&format!("/rest/users/{}/role", ada.id)))
        .json(&json!({"newRoleName": "global:member"}))
        .send();
    tokio::pin!(demote);
    let early = tokio::time::timeout(Duration::from_millis(1000), &mut demote).await;
    assert!(
        early.is_err(),
        "the change returned while an instance still held the lock"
    );
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut stalled)
        .await?;
    let done = tokio::time::timeout(Duration::from_secs(5), demote).await??;
    assert_eq!(done.status(), StatusCode::OK);
    Ok(())
}
