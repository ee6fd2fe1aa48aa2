//! Every error a person can cause gets the JSON error shape, or a page.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;
use crate::on_both_databases;

async fn bad_requests_get_a_status_that_fits_and_a_message(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    let url = server.at("/rest/login");

    let malformed = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await?;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(malformed).await,
        json!({"code": 400, "message": "The request body is not valid JSON."})
    );

    let missing = client
        .post(&url)
        .json(&json!({"password": "x"}))
        .send()
        .await?;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let message = body(missing).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("emailOrLdapLoginId"), "{message}");

    let wrong_type = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await?;
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body(wrong_type).await["code"], 415);

    let huge = client
        .post(&url)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"emailOrLdapLoginId": "{}", "password": "x"}}"#,
            "a".repeat(1024 * 1024 + 10)
        ))
        .send()
        .await?;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body(huge).await,
        json!({"code": 413, "message": "The request body is larger than 1 MiB."})
    );

    let unknown = client.get(server.at("/rest/no-such-route")).send().await?;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(unknown).await["code"], 404);

    let not_signed_in = client.get(server.at("/rest/me")).send().await?;
    assert_eq!(not_signed_in.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(not_signed_in).await["code"], 401);
    Ok(())
}

async fn unknown_pages_show_a_page_not_a_raw_error(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let response = owner.get(server.at("/no/such/page")).send().await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .starts_with("text/html")
    );
    let html = response.text().await?;
    assert!(html.contains("There is no page at this address."));
    assert!(html.contains("Olive Owner"), "the page keeps the layout");
    Ok(())
}

async fn health_answers_and_readiness_follows_the_database(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let client = server.client();
    let live = client.get(server.at("/healthz")).send().await?;
    assert_eq!(live.status(), StatusCode::OK);
    assert!(live.headers().contains_key("x-request-id"));
    assert_eq!(
        client
            .get(server.at("/healthz/readiness"))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    server.store.close().await;
    let down = client.get(server.at("/healthz/readiness")).send().await?;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body(down).await["message"], "The database does not answer.");
    assert_eq!(
        client.get(server.at("/healthz")).send().await?.status(),
        StatusCode::OK
    );
    Ok(())
}

async fn a_server_failure_hides_its_cause_and_gives_the_request_id(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    server.store.close().await;
    let response = owner.get(server.at("/rest/me")).send().await?;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let answer = body(response).await;
    assert_eq!(answer["code"], 500);
    assert_eq!(answer["requestId"], header_id.as_str());
    let text = answer.to_string().to_lowercase();
    assert!(
        !text.contains("pool") && !text.contains("sqlx") && !text.contains("closed"),
        "{text}"
    );
    Ok(())
}

async fn a_stopped_server_finishes_cleanly_and_takes_no_new_connections(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let url = server.at("/healthz");
    let client = server.client();
    assert_eq!(client.get(&url).send().await?.status(), StatusCode::OK);
    server.stop().await?;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
    Ok(())
}

async fn an_instance_with_another_encryption_key_is_refused_on_a_shared_database(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let same = server.sibling(&[]).await;
    assert_eq!(
        same.client()
            .get(same.at("/healthz/readiness"))
            .send()
            .await?
            .status(),
        StatusCode::OK
    );
    let refused = server
        .try_sibling(&[("N8N_ENCRYPTION_KEY", "another key")])
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.starts_with(
            "N8N_ENCRYPTION_KEY: this database was set up with another encryption key"
        ),
        "{refused}"
    );
    Ok(())
}

async fn behind_a_reverse_proxy_path_every_link_and_redirect_carries_the_path(
    db: Db,
) -> TestResult {
    let server = TestServer::start_with(
        db,
        &[
            ("N8N_PATH", "/team/"),
            ("N8N_HOST", "usher.example.com"),
            ("N8N_PROTOCOL", "https"),
            ("N8N_PORT", "443"),
        ],
    )
    .await;
    let client = server.client();
    let first = client.get(server.at("/")).send().await?;
    assert_eq!(location(&first), "/team/setup");
    let page = client.get(server.at("/setup")).send().await?.text().await?;
    assert!(page.contains(r#"action="/team/setup""#));
    assert!(page.contains(r#"href="/team/assets/usher.css""#));
    server.owner().await;
    let signin = client.get(server.at("/settings/personal")).send().await?;
    assert_eq!(
        location(&signin),
        "/team/signin?redirect=/settings/personal"
    );
    let response = page_form(
        &server,
        &client,
        "/signin",
        &[
            ("email", OWNER_EMAIL),
            ("password", OWNER_PASSWORD),
            ("redirect", "/settings/personal"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(location(&response), "/team/settings/personal");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cookie.contains("Path=/team"), "{cookie}");
    let settings = body(client.get(server.at("/rest/settings")).send().await?).await;
    assert_eq!(
        settings["data"]["baseUrl"],
        "https://usher.example.com/team"
    );
    Ok(())
}

on_both_databases!(
    bad_requests_get_a_status_that_fits_and_a_message,
    unknown_pages_show_a_page_not_a_raw_error,
    health_answers_and_readiness_follows_the_database,
    a_server_failure_hides_its_cause_and_gives_the_request_id,
    a_stopped_server_finishes_cleanly_and_takes_no_new_connections,
    an_instance_with_another_encryption_key_is_refused_on_a_shared_database,
    behind_a_reverse_proxy_path_every_link_and_redirect_carries_the_path
);
