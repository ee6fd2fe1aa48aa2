//! `/api/v1` refuses what its OpenAPI document does not allow, with n8n's
//! validator's messages, and serves the document as YAML too (issue 14,
//! points 4 and 7).

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

/// The status and message of an answer.
async fn refusal(answer: reqwest::RequestBuilder) -> Result<(StatusCode, String), reqwest::Error> {
    let answer = answer.send().await?;
    let status = answer.status();
    let message = body(answer).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((status, message))
}

async fn an_unknown_query_parameter_is_refused_with_n8n_s_message(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let key = new_key(&server, &owner, "k", &ALL_SCOPES).await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;

    let answer = api(&server, "GET", "/users?limit=2&sort=email", &key)
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(answer).await,
        json!({"code": 400, "message": "Unknown query parameter 'sort'"})
    );
    assert_eq!(
        refusal(api(
            &server,
            "GET",
            &format!("/users/{}?expand=1", mia.id),
            &key
        ))
        .await?,
        (
            StatusCode::BAD_REQUEST,
            "Unknown query parameter 'expand'".to_owned()
        )
    );
    let invite = api(&server, "POST", "/users?dryRun=true", &key)
        .json(&json!([{"email": "ivy@example.com"}]));
    assert_eq!(
        refusal(invite).await?,
        (
            StatusCode::BAD_REQUEST,
            "Unknown query parameter 'dryRun'".to_owned()
        )
    );
    let list = body(api(&server, "GET", "/users", &key).send().await?).await;
    assert_eq!(
        list["data"].as_array().map(Vec::len),
        Some(2),
        "nobody was invited by the refused call"
    );

    // n8n's /rest takes transferId on delete; its public API does not.
    let owner_project = body(
        owner
            .get(server.at("/rest/projects/personal"))
            .send()
            .await?,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let transfer = api(
        &server,
        "DELETE",
        &format!("/users/{}?transferId={owner_project}", mia.id),
        &key,
    );
    assert_eq!(
        refusal(transfer).await?,
        (
            StatusCode::BAD_REQUEST,
            "Unknown query parameter 'transferId'".to_owned()
        )
    );
    assert_eq!(
        api(&server, "GET", &format!("/users/{}", mia.id), &key)
            .send()
            .await?
            .status(),
        StatusCode::OK,
        "the user is still there"
    );

    // The key is looked at first, as n8n's validator checks security first.
    let no_key = Client::new()
        .get(server.at("/api/v1/users?sort=email"))
        .send()
        .await?;
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    // The document and its pages take no key and are not operations.
    assert_eq!(
        Client::new()
            .get(server.at("/api/v1/openapi.json?v=1"))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    Ok(())
}

async fn a_parameter_of_the_wrong_type_or_out_of_range_is_refused_naming_it(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let key = new_key(&server, &owner, "k", &ALL_SCOPES).await;
    for (query, message) in [
        ("limit=abc", "request/query/limit must be number"),
        ("limit=", "request/query/limit must be number"),
        ("limit=251", "request/query/limit must be <= 250"),
        ("limit=-1", "request/query/limit must be >= 0"),
        ("limit=2.5", "request/query/limit must be multiple of 1"),
        ("offset=-1", "request/query/offset must be >= 0"),
        ("offset=x", "request/query/offset must be number"),
        (
            "includeRole=yes",
            "request/query/includeRole must be boolean",
        ),
        ("includeRole=1", "request/query/includeRole must be boolean"),
        ("cursor=a&cursor=b", "request/query/cursor must be string"),
        ("limit=1&limit=2", "request/query/limit must be number"),
        // Well-typed but not one of ours: the handler's own answer.
        ("cursor=not-a-cursor", "An invalid cursor was provided"),
    ] {
        assert_eq!(
            refusal(api(&server, "GET", &format!("/users?{query}"), &key)).await?,
            (StatusCode::BAD_REQUEST, message.to_owned()),
            "{query}"
        );
    }
    assert_eq!(
        refusal(api(
            &server,
            "GET",
            &format!("/users/{OWNER_EMAIL}?includeRole=TRUE"),
            &key
        ))
        .await?,
        (
            StatusCode::BAD_REQUEST,
            "request/query/includeRole must be boolean".to_owned()
        )
    );
    // What the document allows goes through, in any form a number takes.
    for query in [
        "limit=1e2&includeRole=false",
        "limit=250&offset=0",
        "offset=1e300",
        "limit=3.0",
    ] {
        let answer = api(&server, "GET", &format!("/users?{query}"), &key)
            .send()
            .await?;
        assert_eq!(answer.status(), StatusCode::OK, "{query}");
    }
    let far = body(
        api(&server, "GET", "/users?offset=1e300", &key)
            .send()
            .await?,
    )
    .await;
    assert_eq!(far, json!({"data": [], "nextCursor": null}));
    Ok(())
}

async fn a_body_that_breaks_the_document_is_refused_whole(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let key = new_key(&server, &owner, "k", &ALL_SCOPES).await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    for (sent, message) in [
        (
            json!([{"email": "ivy@example.com"}, {"email": "bad"}]),
            "request/body/1/email must match format \"email\"",
        ),
        (
            json!([{"role": "global:member"}]),
            "request/body/0 must have required property 'email'",
        ),
        (
            json!([{"email": "ivy@example.com", "role": "global:owner"}]),
            "request/body/0/role must be equal to one of the allowed values",
        ),
        (
            json!({"email": "ivy@example.com"}),
            "request/body must be array",
        ),
        (json!([{"email": 7}]), "request/body/0/email must be string"),
    ] {
        assert_eq!(
            refusal(api(&server, "POST", "/users", &key).json(&sent)).await?,
            (StatusCode::BAD_REQUEST, message.to_owned()),
            "{sent}"
        );
    }
    let list = body(api(&server, "GET", "/users", &key).send().await?).await;
    assert_eq!(
        list["data"].as_array().map(Vec::len),
        Some(2),
        "nobody was invited: a bad entry refuses the whole request"
    );
    let promote = api(&server, "PATCH", &format!("/users/{}/role", mia.id), &key)
        .json(&json!({"newRoleName": "global:owner"}));
    assert_eq!(
        refusal(promote).await?,
        (
            StatusCode::BAD_REQUEST,
            "request/body/newRoleName must be equal to one of the allowed values".to_owned()
        )
    );
    // Not JSON at all stays the handler's to answer, as before.
    let text = api(&server, "POST", "/users", &key)
        .header("content-type", "text/plain")
        .body("ivy@example.com")
        .send()
        .await?;
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken = api(&server, "POST", "/users", &key)
        .header("content-type", "application/json")
        .body("[{")
        .send()
        .await?;
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(broken).await["message"],
        "The request body is not valid JSON."
    );
    let fine = api(&server, "POST", "/users", &key)
        .json(&json!([{"email": "ivy@example.com", "role": "global:admin"}]))
        .send()
        .await?;
    assert_eq!(fine.status(), StatusCode::OK);
    assert_eq!(body(fine).await[0]["error"], "");
    Ok(())
}

async fn limit_zero_answers_the_default_page_with_a_cursor_that_advances(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let key = new_key(&server, &owner, "k", &ALL_SCOPES).await;
    // 105 users in all: one default page of 100, then 5. One password hash
    // for all of them (hashing is the slow part).
    let first = server
        .add_user("u000@example.com", "Member1pass", Role::Member)
        .await;
    let hash = first.password_hash.clone().unwrap_or_default();
    for i in 1..104 {
        server
            .add_user_with_hash(&format!("u{i:03}@example.com"), &hash, Role::Member)
            .await;
    }
    let first = body(api(&server, "GET", "/users?limit=0", &key).send().await?).await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(100));
    let cursor = first["nextCursor"]
        .as_str()
        .ok_or("a full page has a next cursor")?
        .to_owned();
    let second = body(
        api(
            &server,
            "GET",
            &format!("/users?limit=0&cursor={cursor}"),
            &key,
        )
        .send()
        .await?,
    )
    .await;
    assert_eq!(second["data"].as_array().map(Vec::len), Some(5));
    assert_eq!(second["nextCursor"], Value::Null, "the last page");
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["id"].as_str().map(str::to_owned))
            .collect()
    };
    let (first, second) = (ids(&first), ids(&second));
    assert!(
        second.iter().all(|id| !first.contains(id)),
        "the cursor moved on"
    );
    Ok(())
}

async fn the_openapi_document_is_served_as_yaml_too_and_says_the_same(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let json_doc = body(
        Client::new()
            .get(server.at("/api/v1/openapi.json"))
            .send()
            .await?,
    )
    .await;
    let yaml = Client::new()
        .get(server.at("/api/v1/openapi.yml"))
        .send()
        .await?;
    assert_eq!(yaml.status(), StatusCode::OK);
    assert_eq!(
        yaml.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/yaml")
    );
    let text = yaml.text().await?;
    assert!(text.lines().any(|l| l == "openapi: 3.0.0"), "{text}");
    let yaml_doc: Value = serde_norway::from_str(&text)?;
    assert_eq!(yaml_doc, json_doc);
    // transferId is no parameter of DELETE /users/{id}.
    assert!(!text.contains("transferId"));
    Ok(())
}

on_both_databases!(
    an_unknown_query_parameter_is_refused_with_n8n_s_message,
    a_parameter_of_the_wrong_type_or_out_of_range_is_refused_naming_it,
    a_body_that_breaks_the_document_is_refused_whole,
    limit_zero_answers_the_default_page_with_a_cursor_that_advances,
    the_openapi_document_is_served_as_yaml_too_and_says_the_same
);
