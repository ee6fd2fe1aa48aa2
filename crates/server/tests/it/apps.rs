//! `/rest/apps`: registering apps, their access and roles, and who may.

use reqwest::StatusCode;
use serde_json::{Value, json};
use usher_domain::{
    model::Role,
    store::{AppStore as _, ProjectStore as _, UserStore as _},
};

use crate::harness::{Db, TestResult, TestServer, body, location, page_form, shown_after};

crate::on_both_databases!(
    the_owner_registers_an_app_and_sees_its_secret_once,
    a_public_app_has_no_secret,
    members_may_not_manage_apps,
    bad_app_input_is_refused_naming_the_field,
    a_person_sees_the_apps_they_may_open_with_their_role,
    the_apps_pages_register_change_and_delete_an_app,
);

/// The contract's body for an app at `host`.
pub fn app_body(name: &str, public: bool, access: Value) -> Value {
    json!({
        "name": name,
        "launchUrl": "https://rp.example.test/",
        "redirectUris": ["http://rp.example.test/callback"],
        "postLogoutRedirectUris": ["http://rp.example.test/signed-out"],
        "public": public,
        "access": access,
    })
}

async fn the_owner_registers_an_app_and_sees_its_secret_once(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let created = owner
        .post(server.at("/rest/apps"))
        .json(&app_body("Grafana", false, json!("everyone")))
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::OK);
    let created = body(created).await;
    let id = created["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let client_id = created["data"]["clientId"].as_str().unwrap_or_default();
    let secret = created["data"]["clientSecret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!client_id.is_empty() && secret.len() >= 43, "{created}");
    // Stored as a hash only.
    let stored = server
        .store
        .app(id.parse()?)
        .await?
        .ok_or("the app is not stored")?;
    let hash = stored.secret_hash.unwrap_or_default();
    assert!(!hash.is_empty() && !hash.contains(&secret));
    // Never shown again.
    let read = body(
        owner
            .get(server.at(&format!("/rest/apps/{id}")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(read["data"]["name"], "Grafana");
    assert_eq!(read["data"]["roles"], json!(["Admin", "Power", "Basic"]));
    assert_eq!(read["data"]["access"], "everyone");
    let listed = owner
        .get(server.at("/rest/apps"))
        .send()
        .await?
        .text()
        .await?;
    assert!(!listed.contains(&secret) && listed.contains("Grafana"));
    let patched = owner
        .patch(server.at(&format!("/rest/apps/{id}")))
        .json(&json!({"name": "Grafana (ops)", "roles": ["Viewer"]}))
        .send()
        .await?;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched = body(patched).await;
    assert_eq!(patched["data"]["name"], "Grafana (ops)");
    assert_eq!(
        patched["data"]["roles"],
        json!(["Admin", "Power", "Basic", "Viewer"])
    );
    assert!(patched["data"].get("clientSecret").is_none());
    let audit = owner
        .get(server.at("/rest/audit?action=app."))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        audit.contains("app.created") && audit.contains("app.updated"),
        "{audit}"
    );
    let deleted = owner
        .delete(server.at(&format!("/rest/apps/{id}")))
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::OK);
    let gone = owner
        .get(server.at(&format!("/rest/apps/{id}")))
        .send()
        .await?;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    Ok(())
}

async fn a_public_app_has_no_secret(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let created = body(
        owner
            .post(server.at("/rest/apps"))
            .json(&app_body("CLI", true, json!("everyone")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(created["data"]["clientSecret"], Value::Null);
    assert_eq!(created["data"]["public"], true);
    Ok(())
}

async fn members_may_not_manage_apps(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let _owner = server.owner().await;
    server
        .add_user("mia@example.com", "Member1password", Role::Member)
        .await;
    let member = server.signed_in("mia@example.com", "Member1password").await;
    let created = member
        .post(server.at("/rest/apps"))
        .json(&app_body("Grafana", false, json!("everyone")))
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::FORBIDDEN);
    let listed = member.get(server.at("/rest/apps")).send().await?;
    assert_eq!(listed.status(), StatusCode::FORBIDDEN);
    let mine = member.get(server.at("/rest/apps/mine")).send().await?;
    assert_eq!(mine.status(), StatusCode::OK);
    let anonymous = server.client().get(server.at("/rest/apps")).send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

async fn bad_app_input_is_refused_naming_the_field(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mut no_redirect = app_body("Grafana", false, json!("everyone"));
    no_redirect["redirectUris"] = json!([]);
    let mut fragment = app_body("Grafana", false, json!("everyone"));
    fragment["redirectUris"] = json!(["https://rp.example.test/cb#here"]);
    for (sent, field) in [
        (no_redirect, "redirect"),
        (fragment, "fragment"),
        (app_body("", false, json!("everyone")), "name"),
        (app_body("Grafana", false, json!("some")), "access"),
        (
            app_body(
                "Grafana",
                false,
                json!({"users": [{"id": "0190a0a0-0000-7000-8000-000000000000", "role": "Basic"}]}),
            ),
            "does not exist",
        ),
        (
            app_body(
                "Grafana",
                false,
                json!({"users": [{"id": "0190a0a0-0000-7000-8000-000000000000", "role": "Chief"}]}),
            ),
            "Chief",
        ),
    ] {
        let refused = owner
            .post(server.at("/rest/apps"))
            .json(&sent)
            .send()
            .await?;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{sent}");
        let message = body(refused).await["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.to_lowercase().contains(&field.to_lowercase()),
            "{field}: {message}"
        );
    }
    Ok(())
}

async fn a_person_sees_the_apps_they_may_open_with_their_role(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Member1password", Role::Member)
        .await;
    let project = body(
        owner
            .post(server.at("/rest/projects"))
            .json(&json!({"name": "Ops"}))
            .send()
            .await?,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    server
        .store
        .set_member(
            project.parse()?,
            mia.id,
            usher_domain::resources::ProjectRole::Editor,
        )
        .await?;
    for (name, access) in [
        ("Everyone's wiki", json!("everyone")),
        (
            "Ops dashboard",
            json!({"projects": [{"id": project, "role": "Power"}]}),
        ),
        (
            "Owner's tool",
            json!({"users": [{"id": server.store.owner().await?.map(|u| u.id.to_string()), "role": "Admin"}]}),
        ),
    ] {
        let created = owner
            .post(server.at("/rest/apps"))
            .json(&app_body(name, false, access))
            .send()
            .await?;
        assert_eq!(created.status(), StatusCode::OK, "{name}");
    }
    let member = server.signed_in("mia@example.com", "Member1password").await;
    let mine = body(member.get(server.at("/rest/apps/mine")).send().await?).await;
    let seen: Vec<(String, String)> = mine["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default().to_owned(),
                a["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Everyone's wiki".to_owned(), "Basic".to_owned()),
            ("Ops dashboard".to_owned(), "Power".to_owned())
        ]
    );
    let home = member.get(server.at("/")).send().await?.text().await?;
    assert!(
        home.contains("Ops dashboard") && !home.contains("Owner&#x27;s tool"),
        "the home page lists the apps"
    );
    Ok(())
}

async fn the_apps_pages_register_change_and_delete_an_app(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let registered = page_form(
        &server,
        &owner,
        "/settings/apps",
        &[
            ("name", "Outline"),
            ("launch_url", "https://outline.example.test"),
            (
                "redirect_uris",
                "https://outline.example.test/auth/oidc.callback",
            ),
            ("access", "everyone"),
            ("default_role", "Basic"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    let app_page = location(&registered);
    let (_, page) = shown_after(&server, &owner, registered).await;
    assert!(
        page.contains("id=\"app-client-secret\""),
        "the secret is shown once"
    );
    let again = owner.get(server.at(&app_page)).send().await?.text().await?;
    assert!(
        !again.contains("id=\"app-client-secret\""),
        "the secret is shown twice"
    );
    let id = app_page.rsplit('/').next().unwrap_or_default().to_owned();
    // A refused change keeps the page and says why.
    let refused = page_form(
        &server,
        &owner,
        &app_page,
        &[
            ("name", "Outline"),
            ("launch_url", "ftp://x"),
            ("redirect_uris", "https://o.test/cb"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(refused.status(), StatusCode::OK);
    assert!(refused.text().await?.contains("launch URL"));
    let changed = page_form(
        &server,
        &owner,
        &app_page,
        &[
            ("name", "Outline wiki"),
            ("launch_url", "https://outline.example.test"),
            (
                "redirect_uris",
                "https://outline.example.test/auth/oidc.callback",
            ),
            ("access", "chosen"),
            ("custom_roles", "Reader"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let app = server.store.app(id.parse()?).await?.ok_or("gone")?;
    assert_eq!(app.name, "Outline wiki");
    assert!(!app.access.everyone);
    assert_eq!(app.roles, ["Admin", "Power", "Basic", "Reader"]);

    // People are added by a search, never picked from a list of everyone.
    let ann = server
        .add_user("ann@example.com", "Member1password", Role::Member)
        .await;
    server
        .add_user("ben@example.com", "Member1password", Role::Member)
        .await;
    let listed = owner.get(server.at(&app_page)).send().await?.text().await?;
    assert!(!listed.contains("ann@example.com"), "{listed}");
    let form = |person: &'static str| {
        vec![
            ("name", "Outline wiki"),
            ("launch_url", "https://outline.example.test"),
            (
                "redirect_uris",
                "https://outline.example.test/auth/oidc.callback",
            ),
            ("access", "chosen"),
            ("custom_roles", "Reader"),
            ("add_person", person),
            ("add_person_role", "Reader"),
        ]
    };
    // A name two people share: the page asks for the email, keeping what
    // was typed.
    let several = page_form(&server, &owner, &app_page, &form("Mia Member"))
        .await
        .send()
        .await?;
    assert_eq!(several.status(), StatusCode::OK);
    let several = several.text().await?;
    assert!(
        several.contains("could be several people") && several.contains("ann@example.com"),
        "{several}"
    );
    assert!(several.contains("value=\"Mia Member\""), "{several}");
    let nobody = page_form(&server, &owner, &app_page, &form("nobody@example.com"))
        .await
        .send()
        .await?
        .text()
        .await?;
    assert!(nobody.contains("No one matches"), "{nobody}");
    // An email names one person: added with the role chosen beside it.
    let added = page_form(&server, &owner, &app_page, &form("ann@example.com"))
        .await
        .send()
        .await?;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let app = server.store.app(id.parse()?).await?.ok_or("gone")?;
    assert_eq!(app.access.users, [(ann.id, "Reader".to_owned())]);
    let listed = owner.get(server.at(&app_page)).send().await?.text().await?;
    assert!(listed.contains("ann@example.com"), "{listed}");
    assert!(!listed.contains("ben@example.com"), "{listed}");
    // The field's suggestions: a few people matching what is typed.
    let suggested: serde_json::Value = owner
        .get(server.at("/settings/apps/people?q=ben"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(suggested[0]["value"], "ben@example.com", "{suggested}");

    // Deleting asks first.
    let asked = page_form(&server, &owner, &format!("{app_page}/delete"), &[])
        .await
        .send()
        .await?;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(server.store.app(id.parse()?).await?.is_some());
    let deleted = page_form(
        &server,
        &owner,
        &format!("{app_page}/delete"),
        &[("confirmed", "yes")],
    )
    .await
    .send()
    .await?;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert!(server.store.app(id.parse()?).await?.is_none());
    Ok(())
}
