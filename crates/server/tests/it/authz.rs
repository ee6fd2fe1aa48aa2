//! The authorization table: every route of `/rest`, and for each of five
//! callers whether it is allowed or denied. Deny is a 401 or 403; Allow is
//! any other answer (a 400 for an incomplete body, a 404 for an unknown id),
//! and no answer may be a 5xx.
//!
//! The table is checked against the routers' source (`src/rest/*.rs`, `src/api_v1/mod.rs`), so a
//! new route fails here until someone writes down who may call it.
//!
//! The callers, in the table's column order:
//! - anonymous: no cookie;
//! - pending: signed in with a temporary password not yet changed (created as
//!   an *admin*, so that a denial shows the temporary-password gate and not
//!   the role);
//! - member, admin, owner: signed in with their own password.
//!
//! Each caller walks the whole table on a server of its own, so nothing one
//! caller changes can move another's answers. Routes that change or delete
//! something act on objects made for that purpose, and signing out comes
//! last.

use std::collections::BTreeSet;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use usher_domain::{model::Role, password::PasswordHasher, secret::Secret};

use crate::harness::*;
use crate::on_both_databases;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Allow,
    Deny,
}
use Outcome::{Allow, Deny};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Pending,
    Member,
    Admin,
    Owner,
}

const CALLERS: [Caller; 5] = [
    Caller::Anonymous,
    Caller::Pending,
    Caller::Member,
    Caller::Admin,
    Caller::Owner,
];

/// (method, path as the router names it, [anonymous, pending, member, admin, owner])
#[rustfmt::skip]
const TABLE: &[(&str, &str, [Outcome; 5])] = &[
    // Anyone may call these. The temporary-password gate (extract.rs) lets a
    // pending session through only GET /rest/login, GET /rest/me,
    // GET /rest/settings, POST /rest/logout and PATCH /rest/me/password;
    // onboarding.rs: "before anything else works". The pending Deny on the
    // public routes below (marked *) follows that rule. It is open to
    // question: dropping the cookie reaches them anyway, so Allow for
    // everyone would protect as much.
    ("GET",    "/rest/settings",                          [Allow, Allow, Allow, Allow, Allow]),
    ("POST",   "/rest/owner/setup",                       [Allow, Deny,  Allow, Allow, Allow]), // * 400: set up already
    ("POST",   "/rest/owner/skip-setup",                  [Allow, Deny,  Allow, Allow, Allow]), // * 400: set up already
    ("POST",   "/rest/login",                             [Allow, Deny,  Allow, Allow, Allow]), // * 400: incomplete body
    ("POST",   "/rest/logout",                            [Deny,  Allow, Allow, Allow, Allow]), // n8n: 401 without a session
    // /api/v1: each caller sends their own API key, with every scope their
    // role may grant (a member's key can have none); anonymous and pending
    // callers have no key.
    ("GET",    "/api/v1/users",                           [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/api/v1/users",                           [Deny,  Deny,  Deny,  Allow, Allow]),
    ("GET",    "/api/v1/users/{id}",                      [Deny,  Deny,  Deny,  Allow, Allow]),
    ("DELETE", "/api/v1/users/{id}",                      [Deny,  Deny,  Deny,  Allow, Allow]),
    ("PATCH",  "/api/v1/users/{id}/role",                 [Deny,  Deny,  Deny,  Allow, Allow]),
    ("GET",    "/api/v1/openapi.json",                    [Allow, Allow, Allow, Allow, Allow]),
    ("GET",    "/api/v1/openapi.yml",                     [Allow, Allow, Allow, Allow, Allow]),
    ("GET",    "/api/v1/docs",                            [Allow, Allow, Allow, Allow, Allow]),
    ("GET",    "/api/v1/docs/",                           [Allow, Allow, Allow, Allow, Allow]),
    ("POST",   "/rest/forgot-password",                   [Allow, Deny,  Allow, Allow, Allow]), // * 400: incomplete body
    ("GET",    "/rest/resolve-password-token",            [Allow, Deny,  Allow, Allow, Allow]), // * 400: no token
    ("POST",   "/rest/change-password",                   [Allow, Deny,  Allow, Allow, Allow]), // * 400: incomplete body
    ("GET",    "/rest/resolve-signup-token",              [Allow, Deny,  Allow, Allow, Allow]), // * 400: no token
    ("POST",   "/rest/invitations/accept",                [Allow, Deny,  Allow, Allow, Allow]), // * 400: incomplete body
    ("POST",   "/rest/verify-email",                      [Allow, Deny,  Allow, Allow, Allow]), // * 400: incomplete body

    // One's own account.
    ("GET",    "/rest/login",                             [Deny,  Allow, Allow, Allow, Allow]),
    ("GET",    "/rest/me",                                [Deny,  Allow, Allow, Allow, Allow]),
    ("PATCH",  "/rest/me",                                [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/me/email-confirmation",             [Deny,  Deny,  Allow, Allow, Allow]), // 400: confirmed already
    ("PATCH",  "/rest/me/password",                       [Deny,  Allow, Allow, Allow, Allow]),
    ("POST",   "/rest/mfa/can-enable",                    [Deny,  Deny,  Allow, Allow, Allow]),
    ("GET",    "/rest/mfa/qr",                            [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/mfa/qr/renew",                      [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/mfa/enable",                        [Deny,  Deny,  Allow, Allow, Allow]), // 400: nothing to confirm
    ("POST",   "/rest/mfa/disable",                       [Deny,  Deny,  Allow, Allow, Allow]), // 400: not on
    ("POST",   "/rest/mfa/verify",                        [Deny,  Deny,  Allow, Allow, Allow]), // 400: not on
    ("POST",   "/rest/mfa/recovery-codes",                [Deny,  Deny,  Allow, Allow, Allow]), // 400: not on
    ("POST",   "/rest/mfa/enforce-mfa",                   [Deny,  Deny,  Deny,  Deny,  Allow]), // only the owner
    ("GET",    "/rest/api-keys",                          [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/api-keys",                          [Deny,  Deny,  Allow, Allow, Allow]),
    ("GET",    "/rest/api-keys/scopes",                   [Deny,  Deny,  Allow, Allow, Allow]),
    ("PATCH",  "/rest/api-keys/{id}",                     [Deny,  Deny,  Allow, Allow, Allow]), // the caller's own key
    ("DELETE", "/rest/api-keys/{id}",                     [Deny,  Deny,  Allow, Allow, Allow]), // the caller's own key
    // Apps: the owner and admins manage them (an unknown id: 404, allowed);
    // everyone signed in sees the ones they may open.
    ("GET",    "/rest/sso/oidc/config",                   [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/sso/oidc/config",                   [Deny,  Deny,  Deny,  Allow, Allow]), // 400: incomplete body
    ("GET",    "/rest/sso/oidc/login",                    [Allow, Deny,  Allow, Allow, Allow]), // 404 page: not turned on
    ("GET",    "/rest/sso/oidc/callback",                 [Allow, Deny,  Allow, Allow, Allow]), // 400 page: no state
    ("GET",    "/rest/apps",                              [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/apps",                              [Deny,  Deny,  Deny,  Allow, Allow]), // 400: incomplete body
    ("GET",    "/rest/apps/mine",                         [Deny,  Deny,  Allow, Allow, Allow]),
    ("GET",    "/rest/apps/{id}",                         [Deny,  Deny,  Deny,  Allow, Allow]),
    ("PATCH",  "/rest/apps/{id}",                         [Deny,  Deny,  Deny,  Allow, Allow]),
    ("DELETE", "/rest/apps/{id}",                         [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/apps/{id}/secret",                  [Deny,  Deny,  Deny,  Allow, Allow]),

    // LDAP: the owner and admins (an empty PUT keeps the settings; without
    // settings a test or a sync is 400, allowed).
    ("GET",    "/rest/ldap/config",                       [Deny,  Deny,  Deny,  Allow, Allow]),
    ("PUT",    "/rest/ldap/config",                       [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/ldap/test-connection",              [Deny,  Deny,  Deny,  Allow, Allow]),
    ("GET",    "/rest/ldap/sync",                         [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/ldap/sync",                         [Deny,  Deny,  Deny,  Allow, Allow]),

    // Users: everyone signed in sees the list; the owner and admins manage.
    ("GET",    "/rest/users",                             [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/users",                             [Deny,  Deny,  Deny,  Allow, Allow]),
    ("DELETE", "/rest/users/{id}",                        [Deny,  Deny,  Deny,  Allow, Allow]),
    ("PATCH",  "/rest/users/{id}/role",                   [Deny,  Deny,  Deny,  Allow, Allow]),
    ("GET",    "/rest/users/{id}/projects",               [Deny,  Deny,  Deny,  Allow, Allow]),
    ("GET",    "/rest/users/{id}/password-reset-link",    [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/users/{id}/force-password-reset",   [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/invitations",                       [Deny,  Deny,  Deny,  Allow, Allow]),
    ("DELETE", "/rest/invitations/{id}",                  [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/users/{id}/reinvite",               [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/users/{id}/invite-link",            [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/users/{id}/invite-link/renew",      [Deny,  Deny,  Deny,  Allow, Allow]),
    ("GET",    "/rest/audit",                             [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/owner/transfer",                    [Deny,  Deny,  Deny,  Deny,  Allow]), // owner: 400, wrong password

    // Work: the member is project:admin of the team project the ids point to.
    ("GET",    "/rest/workflows",                         [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/workflows",                         [Deny,  Deny,  Allow, Allow, Allow]),
    ("GET",    "/rest/workflows/{id}",                    [Deny,  Deny,  Allow, Allow, Allow]),
    ("PATCH",  "/rest/workflows/{id}",                    [Deny,  Deny,  Allow, Allow, Allow]),
    ("DELETE", "/rest/workflows/{id}",                    [Deny,  Deny,  Allow, Allow, Allow]),
    ("GET",    "/rest/credentials",                       [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/credentials",                       [Deny,  Deny,  Allow, Allow, Allow]),
    ("GET",    "/rest/credentials/{id}",                  [Deny,  Deny,  Allow, Allow, Allow]),
    ("PATCH",  "/rest/credentials/{id}",                  [Deny,  Deny,  Allow, Allow, Allow]),
    ("DELETE", "/rest/credentials/{id}",                  [Deny,  Deny,  Allow, Allow, Allow]),
    ("GET",    "/rest/tags",                              [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/tags",                              [Deny,  Deny,  Allow, Allow, Allow]),
    ("PATCH",  "/rest/tags/{id}",                         [Deny,  Deny,  Deny,  Allow, Allow]),
    ("DELETE", "/rest/tags/{id}",                         [Deny,  Deny,  Deny,  Allow, Allow]),
    ("GET",    "/rest/projects",                          [Deny,  Deny,  Allow, Allow, Allow]),
    ("GET",    "/rest/projects/personal",                 [Deny,  Deny,  Allow, Allow, Allow]),
    ("POST",   "/rest/projects",                          [Deny,  Deny,  Deny,  Allow, Allow]),
    ("GET",    "/rest/projects/{id}",                     [Deny,  Deny,  Allow, Allow, Allow]),
    ("PATCH",  "/rest/projects/{id}",                     [Deny,  Deny,  Allow, Allow, Allow]),
    ("DELETE", "/rest/projects/{id}",                     [Deny,  Deny,  Deny,  Allow, Allow]),
    ("POST",   "/rest/projects/{id}/members",             [Deny,  Deny,  Allow, Allow, Allow]),
    ("DELETE", "/rest/projects/{id}/members/{user_id}",   [Deny,  Deny,  Allow, Allow, Allow]),
];

/// A well-formed id that names nothing.
const UNKNOWN: &str = "0190e8a4-0000-7000-8000-000000000000";
const PASSWORD: &str = "Member1pass";

/// The objects the requests point at, made fresh on each caller's server.
struct Ids {
    /// A member that user operations act on.
    tom: String,
    /// A member to delete.
    dan: String,
    /// A viewer of the team project, to remove from it.
    val: String,
    /// Invited: to resend to and make new links for.
    ivy: String,
    /// Invited: to withdraw.
    ivo: String,
    team: String,
    /// A team project to delete.
    scratch: String,
    flow: String,
    doomed_flow: String,
    cred: String,
    doomed_cred: String,
    tag: String,
    doomed_tag: String,
    /// The caller's own API keys (unknown for callers who cannot have one).
    key: String,
    doomed_key: String,
    /// The caller's raw API key for /api/v1, with the scopes their role may
    /// grant (empty for callers who cannot have one).
    api_key: String,
}

/// The path to call for a table line, and the JSON body to send (always one
/// for POST, PATCH and PUT, so that no answer is a 415).
fn request(method: &str, pattern: &str, ids: &Ids) -> (String, Option<Value>) {
    let id = match (method, pattern) {
        ("DELETE", "/rest/users/{id}" | "/api/v1/users/{id}") => &ids.dan,
        (_, p) if p.starts_with("/api/v1/users/{id}") => &ids.tom,
        (
            "POST",
            "/rest/users/{id}/reinvite"
            | "/rest/users/{id}/invite-link"
            | "/rest/users/{id}/invite-link/renew",
        ) => &ids.ivy,
        (_, p) if p.starts_with("/rest/users/{id}") => &ids.tom,
        ("DELETE", "/rest/invitations/{id}") => &ids.ivo,
        ("DELETE", "/rest/projects/{id}") => &ids.scratch,
        (_, p) if p.starts_with("/rest/projects/{id}") => &ids.team,
        ("DELETE", "/rest/workflows/{id}") => &ids.doomed_flow,
        (_, "/rest/workflows/{id}") => &ids.flow,
        ("DELETE", "/rest/credentials/{id}") => &ids.doomed_cred,
        (_, "/rest/credentials/{id}") => &ids.cred,
        ("DELETE", "/rest/tags/{id}") => &ids.doomed_tag,
        (_, "/rest/tags/{id}") => &ids.tag,
        ("DELETE", "/rest/api-keys/{id}") => &ids.doomed_key,
        (_, "/rest/api-keys/{id}") => &ids.key,
        _ => UNKNOWN,
    };
    let path = pattern.replace("{id}", id).replace(
        "{user_id}",
        if pattern.contains("/members/") {
            &ids.val
        } else {
            UNKNOWN
        },
    );
    let body = match (method, pattern) {
        // Incomplete bodies: 400 before any sign-in attempt is counted.
        (
            "POST",
            "/rest/login"
            | "/rest/change-password"
            | "/rest/invitations/accept"
            | "/rest/verify-email",
        ) => json!({}),
        ("POST", "/rest/owner/transfer") => {
            json!({"newOwnerId": ids.tom, "password": "Wrong1password"})
        }
        ("POST", "/rest/invitations") => json!([{"email": "new@example.com"}]),
        ("POST", "/rest/users") => {
            json!({"users": [{"email": "new@example.com"}], "onboarding": "basic"})
        }
        ("PATCH", "/rest/users/{id}/role" | "/api/v1/users/{id}/role") => {
            json!({"newRoleName": "global:member"})
        }
        ("POST", "/api/v1/users") => json!([{"email": "v1@example.com"}]),
        ("POST", "/rest/workflows") => json!({"name": "Mine"}),
        ("PATCH", "/rest/workflows/{id}") => json!({"name": "Flow"}),
        ("POST", "/rest/credentials") => json!({"name": "Mine", "type": "httpBasicAuth"}),
        ("PATCH", "/rest/credentials/{id}") => json!({"name": "Cred"}),
        ("POST", "/rest/tags") => json!({"name": "Mine"}),
        ("PATCH", "/rest/tags/{id}") => json!({"name": "Renamed"}),
        ("POST", "/rest/projects") => json!({"name": "New team"}),
        ("PATCH", "/rest/projects/{id}") => json!({"name": "Team"}),
        ("POST", "/rest/projects/{id}/members") => {
            json!({"userId": ids.tom, "role": "project:viewer"})
        }
        ("POST", "/rest/api-keys") => json!({"label": "New key", "scopes": [], "expiresAt": null}),
        // false: the owner's call must not make every later caller enrol.
        ("POST", "/rest/mfa/enforce-mfa") => json!({"enforce": false}),
        ("PATCH", "/rest/api-keys/{id}") => json!({"label": "Renamed key"}),
        _ => json!({}),
    };
    let sends_body = matches!(method, "POST" | "PATCH" | "PUT");
    (path, sends_body.then_some(body))
}

/// A call that must succeed while the world is made; its `data`.
async fn made(
    server: &TestServer,
    client: &Client,
    method: Method,
    path: &str,
    body: Value,
) -> Value {
    let response = client
        .request(method, server.at(path))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    let answer = crate::harness::body(response).await;
    assert_eq!(status, StatusCode::OK, "setting up, {path}: {answer}");
    answer["data"].clone()
}

fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_owned()
}

/// A server with the owner, an admin, a member, a pending user and the
/// objects of [`Ids`]; and a client for `caller`.
async fn world(db: Db, caller: Caller) -> (TestServer, Client, Ids) {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let hash = PasswordHasher::new(1)
        .unwrap_or_else(|e| panic!("hasher: {e}"))
        .hash(&Secret::new(PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("hash: {e}"));
    let add = |email: &'static str, role| server.add_user_with_hash(email, &hash, role);
    add("ada@example.com", Role::Admin).await;
    let mia = add("mia@example.com", Role::Member).await.id.to_string();
    let tom = add("tom@example.com", Role::Member).await.id.to_string();
    let dan = add("dan@example.com", Role::Member).await.id.to_string();
    let val = add("val@example.com", Role::Member).await.id.to_string();

    let post = |path: &'static str, body: Value| made(&server, &owner, Method::POST, path, body);
    let invited = post(
        "/rest/invitations",
        json!([{"email": "ivy@example.com"}, {"email": "ivo@example.com"}]),
    )
    .await;
    let team = id_of(&post("/rest/projects", json!({"name": "Team"})).await);
    let scratch = id_of(&post("/rest/projects", json!({"name": "Scratch"})).await);
    for (project, user, role) in [
        (&team, &mia, "project:admin"),
        (&scratch, &mia, "project:admin"),
        (&team, &val, "project:viewer"),
    ] {
        let path = format!("/rest/projects/{project}/members");
        made(
            &server,
            &owner,
            Method::POST,
            &path,
            json!({"userId": user, "role": role}),
        )
        .await;
    }
    let workflow = |name| post("/rest/workflows", json!({"name": name, "projectId": team}));
    let (flow, doomed_flow) = (
        id_of(&workflow("Flow").await),
        id_of(&workflow("Doomed").await),
    );
    let credential = |name| {
        post(
            "/rest/credentials",
            json!({"name": name, "type": "httpBasicAuth", "projectId": team, "data": {"user": "u"}}),
        )
    };
    let (cred, doomed_cred) = (
        id_of(&credential("Cred").await),
        id_of(&credential("Doomed").await),
    );
    let tag = |name| post("/rest/tags", json!({"name": name}));
    let (tag, doomed_tag) = (id_of(&tag("Tag").await), id_of(&tag("Doomed").await));

    let client = match caller {
        Caller::Anonymous => server.client(),
        Caller::Pending => {
            let pat = json!({"email": "pat@example.com", "role": "global:admin"});
            let created = post(
                "/rest/users",
                json!({"users": [pat], "onboarding": "basic"}),
            )
            .await;
            let temporary = created[0]["temporaryPassword"]
                .as_str()
                .unwrap_or_else(|| panic!("no temporary password: {created}"));
            server.signed_in("pat@example.com", temporary).await
        }
        Caller::Member => server.signed_in("mia@example.com", PASSWORD).await,
        Caller::Admin => server.signed_in("ada@example.com", PASSWORD).await,
        Caller::Owner => owner.clone(),
    };
    let (key, doomed_key, api_key) =
        if matches!(caller, Caller::Member | Caller::Admin | Caller::Owner) {
            let scopes = made(
                &server,
                &client,
                Method::GET,
                "/rest/api-keys/scopes",
                json!({}),
            )
            .await;
            let key = |label| {
                made(
                    &server,
                    &client,
                    Method::POST,
                    "/rest/api-keys",
                    json!({"label": label, "scopes": scopes, "expiresAt": null}),
                )
            };
            let first = key("Key").await;
            let raw = first["rawApiKey"].as_str().unwrap_or_default().to_owned();
            (id_of(&first), id_of(&key("Doomed key").await), raw)
        } else {
            (UNKNOWN.to_owned(), UNKNOWN.to_owned(), String::new())
        };
    let ids = Ids {
        tom,
        dan,
        val,
        ivy: id_of(&invited[0]["user"]),
        ivo: id_of(&invited[1]["user"]),
        team,
        scratch,
        flow,
        doomed_flow,
        cred,
        doomed_cred,
        tag,
        doomed_tag,
        key,
        doomed_key,
        api_key,
    };
    (server, client, ids)
}

/// Walks the table as `caller`; one line per answer that breaks it.
async fn walk(db: Db, caller: Caller) -> Vec<String> {
    let column = CALLERS
        .iter()
        .position(|c| *c == caller)
        .unwrap_or_default();
    let (server, client, ids) = world(db, caller).await;
    // Signing out ends the session the other lines need: it goes last.
    let (last, first): (Vec<_>, Vec<_>) = TABLE
        .iter()
        .partition(|(_, path, _)| *path == "/rest/logout");
    let mut failures = Vec::new();
    for (method, pattern, outcomes) in first.into_iter().chain(last) {
        let (path, body) = request(method, pattern, &ids);
        let method_ =
            Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{method}: {e}"));
        let mut call = client.request(method_, server.at(&path));
        if path.starts_with("/api/v1/") && !ids.api_key.is_empty() {
            call = call.header("X-N8N-API-KEY", &ids.api_key);
        }
        if let Some(body) = &body {
            call = call.json(body);
        }
        let response = call
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        let got = if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            Deny
        } else {
            Allow
        };
        let expected = outcomes[column];
        let line = format!("{caller:?} {method} {pattern} ({path}): {status} {message}");
        if status.is_server_error() {
            failures.push(format!("{line} (a server error)"));
        } else if status == StatusCode::METHOD_NOT_ALLOWED
            || message == "There is nothing at this address."
        {
            failures.push(format!("{line} (the request did not reach the route)"));
        } else if got != expected {
            failures.push(format!("{line} (the table says {expected:?})"));
        }
    }
    server.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
    failures
}

async fn every_caller_gets_the_tables_answer_on_every_rest_route(db: Db) -> TestResult {
    let mut failures = Vec::new();
    for caller in CALLERS {
        failures.extend(walk(db, caller).await);
    }
    assert!(
        failures.is_empty(),
        "{} answers break the authorization table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

on_both_databases!(every_caller_gets_the_tables_answer_on_every_rest_route);

#[test]
fn the_table_has_a_line_for_every_rest_route_and_no_other() {
    let in_source = routes_in_source();
    let mut in_table = BTreeSet::new();
    for (method, path, _) in TABLE {
        assert!(
            in_table.insert((method.to_string(), path.to_string())),
            "{method} {path} is in the table twice"
        );
    }
    let missing: Vec<String> = in_source
        .difference(&in_table)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let extra: Vec<String> = in_table
        .difference(&in_source)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the authorization table (tests/it/authz.rs) and src/rest/*.rs with src/api_v1/mod.rs disagree.\n\
         Routes without a decision (add a line with who may call them):\n  {}\n\
         Lines for routes that do not exist:\n  {}",
        listed(&missing),
        listed(&extra),
    );
    assert!(
        in_source.len() > 40,
        "only {} routes read from the source: is the reader broken?",
        in_source.len()
    );
}

fn listed(routes: &[String]) -> String {
    if routes.is_empty() {
        "(none)".to_owned()
    } else {
        routes.join("\n  ")
    }
}

// ---------------------------------------------------------- reading the source

/// Every (METHOD, path) that a `.route(` call makes in src/rest/*.rs (under
/// `/rest`) and in src/api_v1/mod.rs (under `/api/v1`).
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/rest");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| (path, "/rest"))
        .collect();
    files.sort();
    files.push((
        concat!(env!("CARGO_MANIFEST_DIR"), "/src/api_v1/mod.rs").into(),
        "/api/v1",
    ));
    let mut routes = BTreeSet::new();
    for (file, prefix) in files {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let code = without_comments(&text);
        assert!(
            !code.contains(".nest(")
                && !code.contains(".route_service(")
                && !code.contains(".nest_service("),
            "{} nests routers or services: teach this reader to follow them",
            file.display()
        );
        let mut rest = code.as_str();
        while let Some(at) = rest.find(".route(") {
            let open = at + ".route(".len();
            let len = closing_paren(&rest[open..])
                .unwrap_or_else(|| panic!("{}: unbalanced .route(", file.display()));
            let args = &rest[open..open + len];
            let path = first_string(args)
                .unwrap_or_else(|| panic!("{}: no path literal in .route({args})", file.display()));
            let methods = method_calls(args);
            assert!(
                !methods.is_empty(),
                "{}: no method read from .route({args})",
                file.display()
            );
            for method in methods {
                routes.insert((method, format!("{prefix}{path}")));
            }
            rest = &rest[open + len..];
        }
    }
    routes
}

/// The text with `//` comments taken out (strings kept whole).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut in_string = false;
            let mut escaped = false;
            let chars: Vec<char> = line.chars().collect();
            for (i, &c) in chars.iter().enumerate() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if in_string => escaped = true,
                    '"' => in_string = !in_string,
                    '/' if !in_string && chars.get(i + 1) == Some(&'/') => {
                        return chars[..i].iter().collect::<String>();
                    }
                    _ => {}
                }
            }
            line.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The length up to the `)` that closes a call whose arguments start `text`.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ if in_string => {}
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn first_string(args: &str) -> Option<String> {
    let start = args.find('"')? + 1;
    let len = args[start..].find('"')?;
    Some(args[start..start + len].to_owned())
}

/// The HTTP methods called in a `.route(` call's arguments: `get(`,
/// `.post(`, `axum::routing::patch(`, with any spacing rustfmt puts in.
fn method_calls(args: &str) -> Vec<String> {
    const METHODS: [&str; 9] = [
        "get", "post", "put", "patch", "delete", "head", "options", "trace", "any",
    ];
    let chars: Vec<char> = args.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if in_string || !(c.is_ascii_alphabetic() || c == '_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut next = i;
        while next < chars.len() && chars[next].is_whitespace() {
            next += 1;
        }
        if chars.get(next) == Some(&'(') && METHODS.contains(&word.as_str()) {
            found.push(word.to_uppercase());
        }
    }
    found
}
