//! `/rest` checks its input as n8n's request schemas do (issue 14): a 400
//! whose message names the field or parameter, before anything is made.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;
use crate::on_both_databases;

/// Status and message of an answer.
async fn answer(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let message = body(response).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, message)
}

async fn post(server: &TestServer, client: &Client, path: &str, json: Value) -> reqwest::Response {
    client
        .post(server.at(path))
        .json(&json)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn an_api_key_needs_label_scopes_and_expires_at_which_may_be_null_but_not_past(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let refused = [
        (
            json!({"scopes": ["user:read"], "expiresAt": null}),
            "label is required.",
        ),
        (
            json!({"label": "CI", "expiresAt": null}),
            "scopes is required.",
        ),
        (
            json!({"label": "CI", "scopes": ["user:read"]}),
            "expiresAt is required.",
        ),
        (
            json!({"label": "CI", "scopes": "user:read", "expiresAt": null}),
            "scopes must be a list.",
        ),
        (
            json!({"label": "CI", "scopes": [], "expiresAt": "tomorrow"}),
            "expiresAt must be a whole number.",
        ),
        (
            json!({"label": "CI", "scopes": [], "expiresAt": 1_000}),
            "expiresAt must be in the future (Unix seconds), or null for a key that does not expire.",
        ),
    ];
    for (sent, expected) in refused {
        let (status, message) =
            answer(post(&server, &owner, "/rest/api-keys", sent.clone()).await).await;
        assert_eq!(
            (status, message.as_str()),
            (StatusCode::BAD_REQUEST, expected),
            "{sent}"
        );
    }
    let listed = body(owner.get(server.at("/rest/api-keys")).send().await?).await;
    assert_eq!(listed["data"], json!([]), "nothing was made");

    let never = post(
        &server,
        &owner,
        "/rest/api-keys",
        json!({"label": "CI", "scopes": ["user:read"], "expiresAt": null}),
    )
    .await;
    assert_eq!(never.status(), StatusCode::OK);
    assert_eq!(body(never).await["data"]["expiresAt"], Value::Null);
    let soon = server.state.usher().now() / 1000 + 3600;
    let expiring = post(
        &server,
        &owner,
        "/rest/api-keys",
        json!({"label": "soon", "scopes": [], "expiresAt": soon}),
    )
    .await;
    assert_eq!(body(expiring).await["data"]["expiresAt"], soon);
    Ok(())
}

async fn one_address_that_is_not_an_address_refuses_the_whole_invitation(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let refused = post(
        &server,
        &owner,
        "/rest/invitations",
        json!([{"email": "ann@example.com"}, {"email": "not-an-email"}]),
    )
    .await;
    assert_eq!(
        answer(refused).await,
        (
            StatusCode::BAD_REQUEST,
            "[1].email: 'not-an-email' is not a valid email address.".to_owned()
        )
    );
    let missing = post(
        &server,
        &owner,
        "/rest/invitations",
        json!([{"email": "ann@example.com"}, {"role": "global:admin"}]),
    )
    .await;
    assert_eq!(
        answer(missing).await,
        (StatusCode::BAD_REQUEST, "[1].email is required.".to_owned())
    );
    let users = body(owner.get(server.at("/rest/users")).send().await?).await;
    assert_eq!(users["data"]["count"], 1, "nobody was invited: {users}");

    let nobody = post(&server, &owner, "/rest/invitations", json!([])).await;
    assert_eq!(nobody.status(), StatusCode::OK);
    assert_eq!(body(nobody).await, json!({"data": []}));
    Ok(())
}

on_both_databases!(
    an_api_key_needs_label_scopes_and_expires_at_which_may_be_null_but_not_past,
    one_address_that_is_not_an_address_refuses_the_whole_invitation,
);
