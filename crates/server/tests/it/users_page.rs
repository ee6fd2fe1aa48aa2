//! The users page as an n8n or Budibase admin uses it (issue 15): the list
//! first, searched, filtered, sorted and paged by keyset in the address;
//! pending users openable; each row's actions answering with a redirect and
//! a notice that names the person; deleting with the work handed to a
//! person found by a search.

use reqwest::{Client, StatusCode};
use serde_json::json;
use usher_domain::model::Role;

use crate::harness::*;
use crate::on_both_databases;

/// Adds `count` active members straight in the database, as an operator's
/// import would: `User 0001 <prefix0001@example.com>`, created one
/// millisecond apart, oldest first. Fast enough for 100,000.
pub async fn seed_users(server: &TestServer, db: Db, prefix: &str, count: usize) {
    let now = server.state.usher().now() - 10_000_000;
    // The id's last twelve digits are the number: valid UUID text, in order.
    let sql = match db {
        Db::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
             INSERT INTO users (id, email, first_name, last_name, role, password_hash, created_at, updated_at) \
             SELECT '00000000-0000-7000-8{p:0>3}-' || substr('000000000000' || i, -12), \
                    '{prefix}' || substr('00000' || i, -5) || '@example.com', \
                    'User', substr('00000' || i, -5), 'global:member', 'x', {now} + i, {now} + i FROM n",
            p = prefix.len(),
        ),
        Db::Postgres => format!(
            "INSERT INTO users (id, email, first_name, last_name, role, password_hash, created_at, updated_at) \
             SELECT '00000000-0000-7000-8{p:0>3}-' || lpad(i::text, 12, '0'), \
                    '{prefix}' || lpad(i::text, 5, '0') || '@example.com', \
                    'User', lpad(i::text, 5, '0'), 'global:member', 'x', {now} + i, {now} + i \
             FROM generate_series(1, {count}) AS i",
            p = prefix.len(),
        ),
    };
    server.storage.execute_sql(&sql).await;
}

/// The page at `path` (inside Usher) as `client` sees it.
pub async fn page(server: &TestServer, client: &Client, path: &str) -> String {
    let response = client
        .get(server.at(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap_or_default()
}

/// The emails of the list's rows, in order.
fn emails(page: &str) -> Vec<String> {
    page.split("data-email=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The address of a link by its id (`page-next`, …), unescaped.
fn link(page: &str, id: &str) -> Option<String> {
    let before = page.split(&format!("id=\"{id}\"")).next()?;
    if before.len() == page.len() {
        return None;
    }
    let href = before.rsplit("href=\"").next()?.split('"').next()?;
    Some(href.replace("&amp;", "&").replace("&#38;", "&"))
}

async fn the_list_searches_filters_sorts_and_pages_by_keyset(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    seed_users(&server, db, "walk", 120).await;

    // By name (the default): Olive Owner after the 120 "User …".
    let first = page(&server, &owner, "/settings/users").await;
    let rows = emails(&first);
    assert_eq!(rows.len(), 50, "50 a page");
    assert_eq!(rows[0], OWNER_EMAIL, "olive owner, then user 00001…");
    assert_eq!(rows[1], "walk00001@example.com");
    assert!(link(&first, "page-previous").is_none());
    let next = link(&first, "page-next").expect("a next page");

    // A user added before the cursor does not shift the next page.
    server
        .add_user("aaron@example.com", "Password1", Role::Member)
        .await;
    let second = page(&server, &owner, &next).await;
    let second_rows = emails(&second);
    assert_eq!(second_rows[0], "walk00050@example.com", "{second_rows:?}");
    assert_eq!(second_rows.len(), 50);
    let third = page(&server, &owner, &link(&second, "page-next").expect("third")).await;
    let third_rows = emails(&third);
    assert_eq!(third_rows.len(), 21, "walk00100 to walk00120");
    assert!(link(&third, "page-next").is_none());
    // Back one page is the second page again, and it links both ways.
    let back = page(
        &server,
        &owner,
        &link(&third, "page-previous").expect("previous"),
    )
    .await;
    assert_eq!(emails(&back), second_rows);
    assert!(link(&back, "page-first").is_some());

    // Search by part of the email or of the name, in any case.
    let found = page(&server, &owner, "/settings/users?q=WALK0011").await;
    assert_eq!(emails(&found).len(), 10, "walk00110..walk00119");
    let by_name = page(&server, &owner, "/settings/users?q=user%2000042").await;
    assert_eq!(emails(&by_name), ["walk00042@example.com"]);
    let none = page(&server, &owner, "/settings/users?q=nobody%25_").await;
    assert!(none.contains("id=\"users-empty\""), "{none}");
    assert!(none.contains("No one matches “nobody%_”"));

    // Filters: role and status; sort: newest first.
    let owners = page(&server, &owner, "/settings/users?role=owner").await;
    assert_eq!(emails(&owners), [OWNER_EMAIL]);
    let newest = page(&server, &owner, "/settings/users?sort=-created&role=member").await;
    assert_eq!(emails(&newest)[0], "aaron@example.com");
    let by_email_desc = page(&server, &owner, "/settings/users?sort=-email").await;
    assert_eq!(emails(&by_email_desc)[0], "walk00120@example.com");
    // The filters stay in the next page's address.
    let next = link(&newest, "page-next").expect("next");
    assert!(
        next.contains("sort=-created") && next.contains("role=member"),
        "{next}"
    );
    let newest_two = page(&server, &owner, &next).await;
    assert_eq!(emails(&newest_two)[0], "walk00071@example.com", "{next}");

    // Nonsense in the address is the first page, never an error.
    let odd = page(
        &server,
        &owner,
        "/settings/users?after=%%%&before=x.y&sort=sideways&role=king&status=odd",
    )
    .await;
    assert_eq!(emails(&odd).len(), 50);
    Ok(())
}

async fn pending_users_show_badges_and_can_be_opened(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let invited = page_form(
        &server,
        &owner,
        "/settings/users/invite",
        &[("emails", "ivy@example.com"), ("role", "global:member")],
    )
    .await
    .send()
    .await?;
    assert_eq!(invited.status(), StatusCode::SEE_OTHER);
    let (_, list) = shown_after(&server, &owner, invited).await;
    assert!(list.contains("ivy@example.com is invited."), "{list}");
    let pending = page(&server, &owner, "/settings/users?status=pending").await;
    assert_eq!(emails(&pending), ["ivy@example.com"]);
    assert!(pending.contains("class=\"badge pending\""));
    // No name: the email is the link to their page.
    let href = pending
        .split("class=\"user-link\">ivy@example.com</a>")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|rest| rest.split('"').next())
        .expect("the email links to the user's page")
        .to_owned();
    let opened = page(&server, &owner, &href).await;
    assert!(
        opened.contains("id=\"user-name\">ivy@example.com<"),
        "{opened}"
    );
    assert!(opened.contains("id=\"danger-zone\""));

    // The invite page without script keeps what was typed when refused.
    let refused = page_form(
        &server,
        &owner,
        "/settings/users/invite",
        &[("emails", "not-an-address"), ("role", "global:admin")],
    )
    .await
    .send()
    .await?;
    let status = refused.status();
    let refused = refused.text().await?;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert!(refused.contains(">not-an-address</textarea>"), "{refused}");
    assert!(refused.contains("id=\"invite-error\""));
    assert!(refused.contains("aria-describedby=\"invite-error invite-emails-hint\""));
    let invite_page = page(&server, &owner, "/settings/users/invite").await;
    assert!(invite_page.contains("<h1>Invite users</h1>"));
    let add_page = page(&server, &owner, "/settings/users/add").await;
    assert!(add_page.contains("<h1>Add users</h1>"));
    Ok(())
}

async fn row_actions_redirect_with_a_notice_that_names_the_person(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Password1", Role::Member)
        .await;
    let back = "/settings/users?q=mia&sort=-created";

    // The role from the row, back to the list as it was.
    let changed = page_form(
        &server,
        &owner,
        &format!("/settings/users/{}/role", mia.id),
        &[("role", "global:admin"), ("back", back)],
    )
    .await
    .send()
    .await?;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&changed), back);
    let (_, list) = shown_after(&server, &owner, changed).await;
    assert!(list.contains("Mia Member is now an admin."), "{list}");
    // Shown once: a reload shows the list without it.
    let reloaded = page(&server, &owner, back).await;
    assert!(!reloaded.contains("is now an admin"));
    // A `back` that leaves the users pages is not followed.
    let elsewhere = page_form(
        &server,
        &owner,
        &format!("/settings/users/{}/role", mia.id),
        &[("role", "global:member"), ("back", "//evil.example/")],
    )
    .await
    .send()
    .await?;
    assert_eq!(location(&elsewhere), format!("/settings/users/{}", mia.id));

    // Force reset: asks first without script, then shows the password once.
    let path = format!("/settings/users/{}/force-reset", mia.id);
    let asked = page_form(&server, &owner, &path, &[("back", back)])
        .await
        .send()
        .await?
        .text()
        .await?;
    assert!(
        asked.contains("Reset Mia Member&#39;s password now?"),
        "{asked}"
    );
    let reset = page_form(&server, &owner, &path, &[("confirmed", "yes")])
        .await
        .send()
        .await?;
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    let (_, shown) = shown_after(&server, &owner, reset).await;
    assert!(shown.contains("Mia Member"), "{shown}");
    assert!(shown.contains("id=\"temporary-password\""), "{shown}");
    let again = page(&server, &owner, &format!("/settings/users/{}", mia.id)).await;
    assert!(!again.contains("id=\"temporary-password\""), "shown once");
    assert!(again.contains(">Must change password</span>"));

    // The reset link from the row's menu shows on their page.
    let linked = page_form(
        &server,
        &owner,
        &format!("/settings/users/{}/reset-link", mia.id),
        &[("back", back)],
    )
    .await
    .send()
    .await?;
    assert_eq!(location(&linked), format!("/settings/users/{}", mia.id));
    let (_, shown) = shown_after(&server, &owner, linked).await;
    assert!(shown.contains("id=\"reset-link\""), "{shown}");
    assert!(shown.contains("A password reset link for Mia Member"));
    Ok(())
}

async fn deleting_hands_the_work_to_a_person_found_by_search(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    let ann = server
        .add_user("ann@example.com", "Password1", Role::Member)
        .await;
    server
        .add_user("bob.marsh@example.com", "Password1", Role::Member)
        .await;
    server
        .add_user("bob.stone@example.com", "Password1", Role::Member)
        .await;
    for (email, first, last) in [
        ("ann@example.com", "Ann", "Lee"),
        ("bob.marsh@example.com", "Bob", "Marsh"),
        ("bob.stone@example.com", "Bob", "Stone"),
    ] {
        server
            .storage
            .execute_sql(&format!(
                "UPDATE users SET first_name = '{first}', last_name = '{last}' WHERE email = '{email}'"
            ))
            .await;
    }
    let ann_client = server.signed_in("ann@example.com", "Password1").await;
    let made = ann_client
        .post(server.at("/rest/workflows"))
        .json(&json!({"name": "Ann's flow"}))
        .send()
        .await?;
    assert_eq!(made.status(), StatusCode::OK, "{}", made.text().await?);

    // The search field's suggestions: matching people, never everyone.
    let people = body(
        owner
            .get(server.at(&format!("/settings/users/{}/people?q=bob", ann.id)))
            .send()
            .await?,
    )
    .await;
    assert_eq!(people.as_array().map(Vec::len), Some(2), "{people}");
    assert_eq!(people[0]["value"], "bob.marsh@example.com");

    let path = format!("/settings/users/{}/delete", ann.id);
    // A part of a name that fits two people: the page lists them to choose.
    let several = page_form(
        &server,
        &owner,
        &path,
        &[("mode", "transfer"), ("transferTo", "bob")],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(several.contains("could be several people"), "{several}");
    assert!(several.contains("id=\"transfer-candidates\""));
    assert!(several.contains("value=\"bob\""), "what was typed stays");
    // One chosen: the confirmation says where the work goes.
    let asked = page_form(
        &server,
        &owner,
        &path,
        &[
            ("mode", "transfer"),
            ("transferTo", "bob"),
            ("transferPick", "bob.marsh@example.com"),
        ],
    )
    .await
    .send()
    .await?
    .text()
    .await?;
    assert!(asked.contains("Delete Ann Lee?"), "{asked}");
    assert!(
        asked
            .contains("Their 1 workflow and 0 credentials go to Bob Marsh. This cannot be undone."),
        "{asked}"
    );
    let project = asked
        .split("name=\"transferTo\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the project in the confirmation")
        .to_owned();
    let deleted = page_form(
        &server,
        &owner,
        &path,
        &[
            ("mode", "transfer"),
            ("transferTo", &project),
            ("confirmed", "yes"),
        ],
    )
    .await
    .send()
    .await?;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/settings/users");
    let (_, list) = shown_after(&server, &owner, deleted).await;
    assert!(
        list.contains(
            "Ann Lee is deleted; their 1 workflow and 0 credentials now belong to Bob Marsh."
        ),
        "{list}"
    );
    assert!(!list.contains("data-email=\"ann@example.com\""));
    Ok(())
}

/// The search reads an index kept by the database (migration 0017): it
/// follows a change of name or email at once, pages by keyset like the
/// list, and one or two characters find the names and emails that start
/// with them.
async fn the_search_follows_renames_and_short_searches_match_the_start(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let owner = server.owner().await;
    seed_users(&server, db, "walk", 120).await;

    // Three or more characters: a part, paged by keyset, in any order.
    let found = page(&server, &owner, "/settings/users?q=ALK00&sort=-email").await;
    let rows = emails(&found);
    assert_eq!(rows.len(), 50, "{rows:?}");
    assert_eq!(rows[0], "walk00120@example.com");
    let next = link(&found, "page-next").expect("a next page of the search");
    assert!(
        next.contains("q=alk00") || next.contains("q=ALK00"),
        "{next}"
    );
    let second = emails(&page(&server, &owner, &next).await);
    assert_eq!(second[0], "walk00070@example.com", "{second:?}");
    assert_eq!(second.len(), 50);

    // A rename and a new email are found at once; the old ones are not.
    let renamed = owner
        .patch(server.at("/rest/me"))
        .json(&json!({"email": "olivia@example.org", "firstName": "Olivia", "lastName": "Quarrington", "currentPassword": OWNER_PASSWORD}))
        .send()
        .await?;
    assert_eq!(renamed.status(), StatusCode::OK);
    let by_name = page(&server, &owner, "/settings/users?q=quarr").await;
    assert_eq!(emails(&by_name), ["olivia@example.org"]);
    let by_email = page(&server, &owner, "/settings/users?q=example.org").await;
    assert_eq!(emails(&by_email), ["olivia@example.org"]);
    for old in ["olive%20owner", "owner@example.com"] {
        let gone = page(&server, &owner, &format!("/settings/users?q={old}")).await;
        assert!(gone.contains("id=\"users-empty\""), "{old}: {gone}");
    }

    // One or two characters: the start of the name or of the email.
    let two = page(&server, &owner, "/settings/users?q=OL").await;
    assert_eq!(
        emails(&two),
        ["olivia@example.org"],
        "the name starts with ol"
    );
    let by_start = page(&server, &owner, "/settings/users?q=wa&sort=email").await;
    let rows = emails(&by_start);
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0], "walk00001@example.com");
    let after = link(&by_start, "page-next").expect("a next page");
    assert_eq!(
        emails(&page(&server, &owner, &after).await)[0],
        "walk00051@example.com"
    );
    let one = page(&server, &owner, "/settings/users?q=u&sort=-created").await;
    assert_eq!(emails(&one)[0], "walk00120@example.com", "user 00120");
    // Not a part: "al" is inside every walk… email, at the start of none.
    let inside = page(&server, &owner, "/settings/users?q=al").await;
    assert!(inside.contains("id=\"users-empty\""), "{inside}");
    // Nothing typed is query syntax.
    for odd in ["%22walk", "walk%22%20OR%20user", "wal*", "w%22"] {
        let none = page(&server, &owner, &format!("/settings/users?q={odd}")).await;
        assert!(none.contains("id=\"users-empty\""), "{odd}: {none}");
    }

    // A deleted user leaves nothing behind: the next user added (who may
    // get the deleted one's place in the database) is found by their own
    // name only.
    server
        .storage
        .execute_sql("DELETE FROM users WHERE email = 'walk00120@example.com'")
        .await;
    server
        .add_user("newcomer@example.com", "Password1", Role::Member)
        .await;
    let deleted = page(&server, &owner, "/settings/users?q=walk00120").await;
    assert!(deleted.contains("id=\"users-empty\""), "{deleted}");
    let newcomer = page(&server, &owner, "/settings/users?q=newcomer").await;
    assert_eq!(emails(&newcomer), ["newcomer@example.com"]);
    Ok(())
}

on_both_databases!(
    the_list_searches_filters_sorts_and_pages_by_keyset,
    pending_users_show_badges_and_can_be_opened,
    row_actions_redirect_with_a_notice_that_names_the_person,
    deleting_hands_the_work_to_a_person_found_by_search,
    the_search_follows_renames_and_short_searches_match_the_start,
);
