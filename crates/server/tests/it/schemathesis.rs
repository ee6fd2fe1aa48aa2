//! Property-based checks of `/api/v1` against its own OpenAPI document with
//! schemathesis (from PyPI): no 5xx, and no answer that breaks the schema.
//! scripts/test installs schemathesis; without it this test fails with a
//! message saying how to get it. It is never skipped.

use std::process::Command;

use reqwest::Client;
use serde_json::json;
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

fn schemathesis() -> Command {
    let found = ["schemathesis", "st"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match found {
        Some(name) => Command::new(name),
        None => panic!(
            "schemathesis is needed for this test: pip install schemathesis (scripts/test installs it)"
        ),
    }
}

async fn schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_schema(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    for i in 0..5 {
        server
            .add_user(&format!("fuzz{i}@example.com"), "Member1pass", Role::Member)
            .await;
    }
    let created = owner
        .post(server.at("/rest/api-keys"))
        .json(&json!({"label": "schemathesis", "scopes": ["user:read", "user:list", "user:create", "user:changeRole", "user:delete"], "expiresAt": null}))
        .send()
        .await?;
    let key = body(created).await["data"]["rawApiKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let document = server.at("/api/v1/openapi.json");
    assert!(
        Client::new()
            .get(&document)
            .send()
            .await?
            .status()
            .is_success()
    );
    let scratch = tempfile::tempdir()?;
    let workdir = scratch.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        schemathesis()
            // Its example database goes in a scratch folder, not the tree.
            .current_dir(&workdir)
            .args(["run", &document])
            .args(["--header", &format!("X-N8N-API-KEY: {key}")])
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,content_type_conformance",
            ])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", "25", "--seed", "7", "--workers", "1"])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
    })
    .await??;
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
    // It must have exercised every operation, not passed vacuously.
    assert!(
        report.contains("5 selected / 5 total"),
        "not every operation was tested:\n{report}"
    );
    let generated = report
        .lines()
        .find_map(|line| {
            line.trim()
                .split_once(" generated")
                .and_then(|(n, _)| n.trim().parse::<u32>().ok())
        })
        .unwrap_or(0);
    assert!(
        generated >= 50,
        "only {generated} cases were generated:\n{report}"
    );
    Ok(())
}

on_both_databases!(schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_schema);
