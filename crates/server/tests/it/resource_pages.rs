//! The work pages: workflows, credentials, tags and projects as each role
//! sees them, and deleting a user with their work from the user's page.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_domain::model::{Role, User};

use crate::harness::*;
use crate::on_both_databases;

/// Owner, and members Ann and Ben, each signed in.
async fn team(server: &TestServer) -> (Client, (User, Client), (User, Client)) {
    let owner = server.owner().await;
    let ann = server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    let ben = server
        .add_user("ben@example.com", "Member1pass", Role::Member)
        .await;
    (
        owner,
        (
            ann,
            server.signed_in("ann@example.com", "Member1pass").await,
        ),
        (
            ben,
            server.signed_in("ben@example.com", "Member1pass").await,
        ),
    )
}

/// A form post: the text of the page the browser shows after it (the
/// page a redirect leads to, or the page that came back).
async fn post_page(
    server: &TestServer,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> String {
    let response = post_form(server, client, path, form).await;
    let (status, text) = shown_after(server, client, response).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    text
}

/// The id of the item called `name` in a `/rest` list.
async fn id_named(server: &TestServer, client: &Client, path: &str, name: &str) -> String {
    let list = body(
        client
            .get(server.at(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}")),
    )
    .await;
    list["data"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == name))
        .and_then(|i| i["id"].as_str())
        .unwrap_or_else(|| panic!("no {name} in {path}: {list}"))
        .to_owned()
}

/// A client's own personal project.
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

/// Creates a team project on the projects page; its id, from where the page
/// leads next.
async fn create_project(server: &TestServer, owner: &Client, name: &str) -> String {
    let created = post_form(server, owner, "/projects", &[("name", name)]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let to = location(&created);
    let id = to
        .strip_prefix("/projects/")
        .unwrap_or_else(|| panic!("the project page is not next: {to}"))
        .to_owned();
    let (_, shown) = shown_after(server, owner, created).await;
    assert!(
        shown.contains(&format!(
            "Project “{name}” is created. Add its members below."
        )),
        "{shown}"
    );
    id
}

/// The text of the cell `class` in the table row `data-name="{name}"`.
fn cell(page: &str, name: &str, class: &str) -> Option<String> {
    let row_start = page.find(&format!("data-name=\"{name}\""))?;
    let row = &page[row_start..];
    let row = &row[..row.find("</tr>")?];
    let start = row.find(&format!("<td class=\"{class}\""))?;
    let text = &row[start..];
    let text = &text[text.find('>')? + 1..];
    Some(text[..text.find("</td>")?].to_owned())
}

fn rows(page: &str) -> usize {
    page.matches("data-name=\"").count()
}

async fn a_member_sees_only_their_own_and_their_projects_workflows(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, (ann_user, ann), (_, ben)) = team(&server).await;

    // Ann creates hers on the page, in her personal project (the default).
    let (_, form) = page(&server, &ann, "/home/workflows").await;
    assert!(form.contains("id=\"workflows-empty\""), "{form}");
    assert!(
        form.contains("Mia Member (personal, ann@example.com)</option>"),
        "{form}"
    );
    let created = post_page(
        &server,
        &ann,
        "/home/workflows",
        &[("name", "Ann flow"), ("projectId", "")],
    )
    .await;
    assert!(
        created
            .contains("Workflow “Ann flow” is created in Mia Member (personal, ann@example.com)."),
        "{created}"
    );
    assert!(created.contains("data-settle-at=\"/home/workflows\""));
    // Ben's goes through the API: the same service.
    let made = ben
        .post(server.at("/rest/workflows"))
        .json(&json!({"name": "Ben flow"}))
        .send()
        .await?;
    assert_eq!(made.status(), StatusCode::OK);
    // A team project, with a workflow, and Ann as its viewer.
    let billing = create_project(&server, &owner, "Billing").await;
    let in_billing = post_page(
        &server,
        &owner,
        "/home/workflows",
        &[("name", "Billing flow"), ("projectId", &billing)],
    )
    .await;
    assert!(
        in_billing.contains("Workflow “Billing flow” is created in Billing."),
        "{in_billing}"
    );
    let member = post_page(
        &server,
        &owner,
        &format!("/projects/{billing}/members"),
        &[
            ("userId", &ann_user.id.to_string()),
            ("role", "project:viewer"),
        ],
    )
    .await;
    assert!(
        member.contains("Mia Member is viewer of “Billing”."),
        "{member}"
    );

    let (_, mine) = page(&server, &ann, "/home/workflows").await;
    assert!(mine.contains("data-name=\"Ann flow\""), "{mine}");
    assert!(mine.contains("data-name=\"Billing flow\""), "{mine}");
    assert!(!mine.contains("Ben flow"), "{mine}");
    assert_eq!(rows(&mine), 2);
    // Ann may not create in Billing: it is not offered.
    assert!(
        !mine.contains(&format!("<option value=\"{billing}\"")),
        "{mine}"
    );

    // The owner sees everything, with whose it is.
    let (_, all) = page(&server, &owner, "/home/workflows").await;
    assert_eq!(rows(&all), 3, "{all}");
    // The owner creates in team projects and their own personal project,
    // not in every user's (with a large team, a list of everyone).
    let ann_personal = id_named(
        &server,
        &ann,
        "/rest/projects",
        "Mia Member <ann@example.com>",
    )
    .await;
    assert!(
        all.contains(&format!("<option value=\"{billing}\"")),
        "{all}"
    );
    assert!(
        !all.contains(&format!("<option value=\"{ann_personal}\"")),
        "{all}"
    );
    assert_eq!(
        cell(&all, "Ann flow", "owner").as_deref(),
        Some("Mia Member (personal, ann@example.com)")
    );
    assert_eq!(
        cell(&all, "Ben flow", "owner").as_deref(),
        Some("Mia Member (personal, ben@example.com)")
    );
    assert_eq!(
        cell(&all, "Billing flow", "owner").as_deref(),
        Some("Billing")
    );

    // Ben cannot open Ann's: a page that says so.
    let ann_flow = id_named(&server, &ann, "/rest/workflows", "Ann flow").await;
    let (status, refused) = page(&server, &ben, &format!("/workflows/{ann_flow}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(refused.contains("<h1>Not allowed</h1>"), "{refused}");
    assert!(
        refused.contains("You do not have access to this workflow."),
        "{refused}"
    );
    assert!(refused.contains("id=\"error-next\""), "{refused}");
    let (status, _) = page(&server, &ben, "/workflows/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Signed out, the page leads to sign-in and back.
    let (status, _) = page(&server, &server.client(), "/home/workflows").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    Ok(())
}

async fn a_project_viewer_gets_no_edit_forms_and_cannot_edit(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, (ann_user, ann), _) = team(&server).await;
    let billing = create_project(&server, &owner, "Billing").await;
    post_page(
        &server,
        &owner,
        "/home/workflows",
        &[("name", "Billing flow"), ("projectId", &billing)],
    )
    .await;
    post_page(
        &server,
        &owner,
        &format!("/projects/{billing}/members"),
        &[
            ("userId", &ann_user.id.to_string()),
            ("role", "project:viewer"),
        ],
    )
    .await;
    let flow = id_named(&server, &owner, "/rest/workflows", "Billing flow").await;
    let path = format!("/workflows/{flow}");

    let (status, viewed) = page(&server, &ann, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        viewed.contains("<h1 id=\"workflow-title\">Billing flow</h1>"),
        "{viewed}"
    );
    assert!(viewed.contains("id=\"read-only\""), "{viewed}");
    // The only form is the sign-out button every page has.
    assert_eq!(
        viewed.matches("<form").count(),
        viewed.matches(r#"action="/signout""#).count(),
        "a viewer gets a form: {viewed}"
    );

    // A post anyway: the page says no, and nothing changes.
    let refused = post_page(
        &server,
        &ann,
        &format!("{path}/rename"),
        &[("name", "Mine now")],
    )
    .await;
    assert!(
        refused.contains("You can view this workflow but not change it."),
        "{refused}"
    );
    let refused = post_form(&server, &ann, &format!("{path}/delete"), &[]).await;
    assert_eq!(refused.status(), StatusCode::OK);
    assert!(
        refused
            .text()
            .await?
            .contains("You can view this workflow but not change it.")
    );
    let (_, still) = page(&server, &owner, &path).await;
    assert!(still.contains("<h1 id=\"workflow-title\">Billing flow</h1>"));

    // The project page: members and workflows, but no member forms.
    let (_, project) = page(&server, &ann, &format!("/projects/{billing}")).await;
    assert!(
        project.contains("<td class=\"role\" data-label=\"Role\">Viewer</td>"),
        "{project}"
    );
    assert!(project.contains("data-name=\"Billing flow\""), "{project}");
    assert!(!project.contains("id=\"member-form\""), "{project}");
    assert!(!project.contains("remove-member-"), "{project}");

    // As an editor she gets the forms.
    post_page(
        &server,
        &owner,
        &format!("/projects/{billing}/members"),
        &[
            ("userId", &ann_user.id.to_string()),
            ("role", "project:editor"),
        ],
    )
    .await;
    let (_, editable) = page(&server, &ann, &path).await;
    for id in ["rename-form", "active-form", "delete-form"] {
        assert!(
            editable.contains(&format!("id=\"{id}\"")),
            "no {id}: {editable}"
        );
    }
    assert!(
        editable.contains("data-confirm=\"Delete the workflow “Billing flow”?"),
        "{editable}"
    );
    Ok(())
}

async fn the_workflow_page_renames_activates_tags_and_deletes(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, (_, ann), _) = team(&server).await;
    post_page(
        &server,
        &ann,
        "/home/workflows",
        &[("name", "Ann flow"), ("projectId", "")],
    )
    .await;
    post_page(&server, &owner, "/home/tags", &[("name", "billing")]).await;
    post_page(&server, &owner, "/home/tags", &[("name", "nightly")]).await;
    let flow = id_named(&server, &ann, "/rest/workflows", "Ann flow").await;
    let billing = id_named(&server, &ann, "/rest/tags", "billing").await;
    let nightly = id_named(&server, &ann, "/rest/tags", "nightly").await;
    let path = format!("/workflows/{flow}");

    let blank = post_page(&server, &ann, &format!("{path}/rename"), &[("name", "  ")]).await;
    assert!(
        blank.contains("id=\"workflow-name-error\">Give the workflow a name.</p>"),
        "{blank}"
    );
    let renamed = post_page(
        &server,
        &ann,
        &format!("{path}/rename"),
        &[("name", "Invoices")],
    )
    .await;
    assert!(
        renamed.contains("The workflow is now called “Invoices”."),
        "{renamed}"
    );
    assert!(
        renamed.contains(&format!("data-settle-at=\"{path}\"")),
        "{renamed}"
    );
    let active = post_page(
        &server,
        &ann,
        &format!("{path}/active"),
        &[("active", "true")],
    )
    .await;
    assert!(
        active.contains("Workflow “Invoices” is active."),
        "{active}"
    );
    assert!(
        active.contains("id=\"workflow-status\">Active</dd>"),
        "{active}"
    );
    let tagged = post_page(
        &server,
        &ann,
        &format!("{path}/tags"),
        &[("tag", billing.as_str()), ("tag", nightly.as_str())],
    )
    .await;
    assert!(
        tagged.contains("Workflow “Invoices” is tagged billing, nightly."),
        "{tagged}"
    );
    assert!(
        tagged.contains("id=\"workflow-tags\">billing, nightly</dd>"),
        "{tagged}"
    );
    assert!(
        tagged.contains(&format!(
            "id=\"tag-{nightly}\" name=\"tag\" value=\"{nightly}\" checked"
        )),
        "{tagged}"
    );
    let untagged = post_page(
        &server,
        &ann,
        &format!("{path}/tags"),
        &[("tag", billing.as_str())],
    )
    .await;
    assert!(
        untagged.contains("id=\"workflow-tags\">billing</dd>"),
        "{untagged}"
    );

    let api = body(
        ann.get(server.at(&format!("/rest/workflows/{flow}")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(api["data"]["name"], "Invoices");
    assert_eq!(api["data"]["active"], true);
    assert_eq!(api["data"]["tags"].as_array().map(Vec::len), Some(1));

    // Asked first (without script), then deleted.
    let asked = post_page(&server, &ann, &format!("{path}/delete"), &[]).await;
    assert!(
        asked.contains("Delete the workflow “Invoices”?"),
        "asks first: {asked}"
    );
    let deleted = post_form(
        &server,
        &ann,
        &format!("{path}/delete"),
        &[("confirmed", "yes")],
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/home/workflows");
    let (_, list) = shown_after(&server, &ann, deleted).await;
    assert!(list.contains("Workflow “Invoices” is deleted."), "{list}");
    assert_eq!(rows(&list), 0);
    let (status, _) = page(&server, &ann, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

async fn members_see_no_tag_delete_button_and_cannot_delete_tags(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, (_, ann), _) = team(&server).await;
    let created = post_page(&server, &ann, "/home/tags", &[("name", "finance")]).await;
    assert!(created.contains("Tag “finance” is created."), "{created}");
    let again = post_page(&server, &ann, "/home/tags", &[("name", "finance")]).await;
    assert!(
        again.contains("A tag named &#39;finance&#39; exists already.")
            || again.contains("A tag named 'finance' exists already."),
        "{again}"
    );
    let long = post_page(
        &server,
        &ann,
        "/home/tags",
        &[("name", "a name far longer than the limit")],
    )
    .await;
    assert!(
        long.contains("id=\"tag-name-error\">A tag name is 1 to 24 characters long.</p>"),
        "{long}"
    );
    let tag = id_named(&server, &ann, "/rest/tags", "finance").await;

    let (_, seen) = page(&server, &ann, "/home/tags").await;
    assert!(seen.contains("data-name=\"finance\""), "{seen}");
    assert!(
        !seen.contains("tag-delete"),
        "a member gets a delete button: {seen}"
    );
    assert!(
        !seen.contains("/rename\""),
        "a member gets a rename form: {seen}"
    );
    assert!(seen.contains("id=\"tag-form\""), "{seen}");

    let refused = post_page(
        &server,
        &ann,
        &format!("/home/tags/{tag}/delete"),
        &[("confirmed", "yes")],
    )
    .await;
    assert!(
        refused.contains("Only the owner and admins can delete tags."),
        "{refused}"
    );
    let refused = post_page(
        &server,
        &ann,
        &format!("/home/tags/{tag}/rename"),
        &[("name", "money")],
    )
    .await;
    assert!(
        refused.contains("Only the owner and admins can rename tags."),
        "{refused}"
    );
    let (_, still) = page(&server, &ann, "/home/tags").await;
    assert!(still.contains("data-name=\"finance\""));

    let (_, for_owner) = page(&server, &owner, "/home/tags").await;
    assert!(
        for_owner.contains(&format!("id=\"tag-delete-{tag}\"")),
        "{for_owner}"
    );
    let renamed = post_page(
        &server,
        &owner,
        &format!("/home/tags/{tag}/rename"),
        &[("name", "money")],
    )
    .await;
    assert!(
        renamed.contains("Tag “finance” is now called “money”."),
        "{renamed}"
    );
    let asked = post_page(&server, &owner, &format!("/home/tags/{tag}/delete"), &[]).await;
    assert!(
        asked.contains("Delete the tag “money”?"),
        "asks first: {asked}"
    );
    let deleted = post_page(
        &server,
        &owner,
        &format!("/home/tags/{tag}/delete"),
        &[("confirmed", "yes")],
    )
    .await;
    assert!(deleted.contains("Tag “money” is deleted."), "{deleted}");
    assert!(deleted.contains("id=\"tags-empty\""), "{deleted}");
    Ok(())
}

async fn credentials_are_listed_without_their_data_and_bad_json_is_shown_beside_the_field(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, (_, ann), (_, ben)) = team(&server).await;
    let bad = post_page(
        &server,
        &ann,
        "/home/credentials",
        &[
            ("name", "Stripe"),
            ("type", "stripeApi"),
            ("projectId", ""),
            ("data", "{\"apiKey\": "),
        ],
    )
    .await;
    assert!(
        bad.contains("id=\"credential-data-error\">This is not valid JSON"),
        "{bad}"
    );
    assert!(bad.contains("value=\"Stripe\""), "the name is kept: {bad}");
    assert!(
        bad.contains("{&#34;apiKey&#34;: </textarea>")
            || bad.contains("{&quot;apiKey&quot;: </textarea>"),
        "the data is kept: {bad}"
    );
    let list = post_page(
        &server,
        &ann,
        "/home/credentials",
        &[
            ("name", "Stripe"),
            ("type", "stripeApi"),
            ("projectId", ""),
            ("data", "[1, 2]"),
        ],
    )
    .await;
    assert!(
        list.contains("id=\"credential-data-error\">Credential data is a JSON object"),
        "{list}"
    );
    assert!(list.contains("id=\"credentials-empty\""), "{list}");

    let made = post_page(
        &server,
        &ann,
        "/home/credentials",
        &[
            ("name", "Stripe"),
            ("type", "stripeApi"),
            ("projectId", ""),
            ("data", "{\"apiKey\": \"sk_live_secret\"}"),
        ],
    )
    .await;
    assert!(
        made.contains("Credential “Stripe” is created in Mia Member (personal, ann@example.com)."),
        "{made}"
    );
    assert!(
        !made.contains("sk_live_secret"),
        "the secret is shown: {made}"
    );
    assert_eq!(cell(&made, "Stripe", "type").as_deref(), Some("stripeApi"));
    let id = id_named(&server, &ann, "/rest/credentials", "Stripe").await;
    assert!(
        made.contains(&format!("id=\"credential-delete-{id}\"")),
        "{made}"
    );

    let (_, others) = page(&server, &ben, "/home/credentials").await;
    assert!(!others.contains("Stripe"), "{others}");
    let (_, all) = page(&server, &owner, "/home/credentials").await;
    assert_eq!(
        cell(&all, "Stripe", "owner").as_deref(),
        Some("Mia Member (personal, ann@example.com)")
    );
    assert!(!all.contains("sk_live_secret"));

    let refused = post_page(
        &server,
        &ben,
        &format!("/home/credentials/{id}/delete"),
        &[],
    )
    .await;
    assert!(
        refused.contains("You do not have access to this credential."),
        "{refused}"
    );
    let asked = post_page(
        &server,
        &ann,
        &format!("/home/credentials/{id}/delete"),
        &[],
    )
    .await;
    assert!(
        asked.contains("Delete the credential “Stripe”?"),
        "asks first: {asked}"
    );
    let deleted = post_page(
        &server,
        &ann,
        &format!("/home/credentials/{id}/delete"),
        &[("confirmed", "yes")],
    )
    .await;
    assert!(
        deleted.contains("Credential “Stripe” is deleted."),
        "{deleted}"
    );
    assert!(!deleted.contains("data-name=\"Stripe\""), "{deleted}");
    Ok(())
}

async fn projects_are_made_by_admins_and_managed_from_their_page_and_the_users_page(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, (ann_user, ann), (ben_user, ben)) = team(&server).await;
    let (_, for_ann) = page(&server, &ann, "/projects").await;
    assert!(!for_ann.contains("id=\"project-form\""), "{for_ann}");
    let refused = post_page(&server, &ann, "/projects", &[("name", "Mine")]).await;
    assert!(
        refused.contains("Only the owner and admins can create projects."),
        "{refused}"
    );
    let blank = post_page(&server, &owner, "/projects", &[("name", " ")]).await;
    assert!(
        blank.contains("id=\"project-name-error\">Give the project a name.</p>"),
        "{blank}"
    );

    let billing = create_project(&server, &owner, "Billing").await;
    let project_path = format!("/projects/{billing}");
    let ann_id = ann_user.id.to_string();
    let ben_id = ben_user.id.to_string();
    post_page(
        &server,
        &owner,
        &format!("{project_path}/members"),
        &[("userId", &ann_id), ("role", "project:admin")],
    )
    .await;
    // Ann, a project admin, manages its members.
    let (_, as_admin) = page(&server, &ann, &project_path).await;
    assert!(as_admin.contains("id=\"member-form\""), "{as_admin}");
    let added = post_page(
        &server,
        &ann,
        &format!("{project_path}/members"),
        &[("userId", &ben_id), ("role", "project:editor")],
    )
    .await;
    assert!(
        added.contains("Mia Member is editor of “Billing”."),
        "{added}"
    );
    assert!(
        added.contains(&format!("id=\"remove-member-{ben_id}\"")),
        "{added}"
    );
    let wrong = post_page(
        &server,
        &ann,
        &format!("{project_path}/members"),
        &[("userId", &ben_id), ("role", "project:personalOwner")],
    )
    .await;
    assert!(wrong.contains("is not a project role"), "{wrong}");
    // Ben, an editor, does not.
    let (_, as_editor) = page(&server, &ben, &project_path).await;
    assert!(!as_editor.contains("id=\"member-form\""), "{as_editor}");
    let (_, ben_projects) = page(&server, &ben, "/projects").await;
    assert_eq!(
        cell(&ben_projects, "Billing", "role").as_deref(),
        Some("Editor")
    );

    // From Ben's user page, the owner makes him a viewer there.
    let ben_page = format!("/settings/users/{ben_id}");
    let (_, user_page) = page(&server, &owner, &ben_page).await;
    assert!(user_page.contains("id=\"user-projects\""), "{user_page}");
    assert!(
        user_page.contains("id=\"project-role-form\""),
        "{user_page}"
    );
    let set = post_page(
        &server,
        &owner,
        &format!("{ben_page}/project-role"),
        &[("project", &billing), ("role", "project:viewer")],
    )
    .await;
    assert!(set.contains("is now viewer in Billing."), "{set}");
    assert!(set.contains(&format!("data-project=\"{billing}\"><td><a href=\"/projects/{billing}\">Billing</a></td><td data-label=\"Type\">Team</td><td class=\"role\" data-label=\"Role\">Viewer</td>")), "{set}");

    let removed = post_page(
        &server,
        &ann,
        &format!("{project_path}/members/{ben_id}/remove"),
        &[("confirmed", "yes")],
    )
    .await;
    assert!(
        removed.contains("Mia Member is removed from “Billing”."),
        "{removed}"
    );
    let (status, gone) = page(&server, &ben, &project_path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{gone}");
    Ok(())
}

async fn deleting_a_user_with_transfer_from_the_user_page_moves_their_workflows(
    db: Db,
) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, (_, ann), (ben_user, ben)) = team(&server).await;
    post_page(
        &server,
        &ann,
        "/home/workflows",
        &[("name", "Ann flow"), ("projectId", "")],
    )
    .await;
    post_page(
        &server,
        &ben,
        "/home/workflows",
        &[("name", "Ben flow"), ("projectId", "")],
    )
    .await;
    post_page(
        &server,
        &ben,
        "/home/credentials",
        &[
            ("name", "Ben key"),
            ("type", "httpHeaderAuth"),
            ("projectId", ""),
            ("data", "{}"),
        ],
    )
    .await;
    let ann_project = personal_project(&server, &ann).await;
    let ben_project = personal_project(&server, &ben).await;
    let ben_page = format!("/settings/users/{}", ben_user.id);

    // The owner's own page and a member's view of others have no delete.
    let owner_id = id_of(&server, &owner, OWNER_EMAIL).await;
    let (_, own) = page(&server, &owner, &format!("/settings/users/{owner_id}")).await;
    assert!(!own.contains("id=\"delete-user-form\""), "{own}");

    // A user who never needed a personal project is offered one too.
    server
        .add_user("cam@example.com", "Member1pass", Role::Member)
        .await;
    let (_, offered) = page(&server, &owner, &ben_page).await;
    // The person who takes the work is searched for, never listed.
    assert!(
        !offered.contains("\">cam@example.com</option>"),
        "{offered}"
    );
    assert!(
        offered.contains("id=\"transfer-to\" name=\"transferTo\""),
        "{offered}"
    );
    assert!(offered.contains("id=\"delete-user-form\""), "{offered}");
    assert!(
        offered.contains("data-confirm=\"Delete Mia Member (ben@example.com)?"),
        "{offered}"
    );

    // Transfer without a project, or no choice at all: nothing happens.
    let unchosen = post_page(
        &server,
        &owner,
        &format!("{ben_page}/delete"),
        &[("mode", "transfer"), ("transferTo", "")],
    )
    .await;
    assert!(
        unchosen.contains("Type the email of the person who takes their work"),
        "{unchosen}"
    );
    let no_mode = post_page(&server, &owner, &format!("{ben_page}/delete"), &[]).await;
    assert!(
        no_mode
            .contains("Choose whether their workflows and credentials are transferred or deleted."),
        "{no_mode}"
    );
    let into_own = post_page(
        &server,
        &owner,
        &format!("{ben_page}/delete"),
        &[("mode", "transfer"), ("transferTo", &ben_project)],
    )
    .await;
    assert!(
        into_own.contains("Choose another user&#39;s project")
            || into_own.contains("Choose another user's project"),
        "{into_own}"
    );
    let refused = post_form(
        &server,
        &ann,
        &format!("{ben_page}/delete"),
        &[("mode", "delete")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await?
            .contains("Only the owner and admins can manage users.")
    );
    let (_, all) = page(&server, &owner, "/home/workflows").await;
    assert_eq!(rows(&all), 2);

    let deleted = post_form(
        &server,
        &owner,
        &format!("{ben_page}/delete"),
        &[
            ("mode", "transfer"),
            ("transferTo", &ann_project),
            ("confirmed", "yes"),
        ],
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/settings/users");
    let (_, users) = shown_after(&server, &owner, deleted).await;
    assert!(
        users.contains("is deleted; their 1 workflow and 1 credential now belong to"),
        "{users}"
    );
    assert!(!users.contains("ben@example.com"), "{users}");

    let (_, hers) = page(&server, &ann, "/home/workflows").await;
    assert!(hers.contains("data-name=\"Ben flow\""), "{hers}");
    let (_, all) = page(&server, &owner, "/home/workflows").await;
    assert_eq!(
        cell(&all, "Ben flow", "owner").as_deref(),
        Some("Mia Member (personal, ann@example.com)")
    );
    let (_, keys) = page(&server, &ann, "/home/credentials").await;
    assert!(keys.contains("data-name=\"Ben key\""), "{keys}");
    Ok(())
}

async fn deleting_a_pending_user_or_an_active_one_with_their_work(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, (_, ann), _) = team(&server).await;
    post_page(
        &server,
        &ann,
        "/home/workflows",
        &[("name", "Ann flow"), ("projectId", "")],
    )
    .await;
    let invited = owner
        .post(server.at("/rest/invitations"))
        .json(&json!([{"email": "ivy@example.com"}]))
        .send()
        .await?;
    assert_eq!(invited.status(), StatusCode::OK);
    let ivy = id_of(&server, &owner, "ivy@example.com").await;

    let ivy_page = format!("/settings/users/{ivy}");
    let (_, pending) = page(&server, &owner, &ivy_page).await;
    assert!(
        pending.contains("has not accepted the invitation yet"),
        "{pending}"
    );
    assert!(!pending.contains("id=\"delete-transfer\""), "{pending}");
    let deleted = post_form(
        &server,
        &owner,
        &format!("{ivy_page}/delete"),
        &[("confirmed", "yes")],
    )
    .await;
    assert_eq!(location(&deleted), "/settings/users");

    let ann_id = id_of(&server, &owner, "ann@example.com").await;
    let deleted = post_form(
        &server,
        &owner,
        &format!("/settings/users/{ann_id}/delete"),
        &[("mode", "delete"), ("transferTo", ""), ("confirmed", "yes")],
    )
    .await;
    assert_eq!(location(&deleted), "/settings/users");
    let (_, users) = shown_after(&server, &owner, deleted).await;
    assert!(
        users.contains("is deleted, with their 1 workflow and 0 credentials."),
        "{users}"
    );
    let (_, all) = page(&server, &owner, "/home/workflows").await;
    assert_eq!(rows(&all), 0, "{all}");
    Ok(())
}

on_both_databases!(
    a_project_member_is_found_by_a_search_never_a_list_of_everyone,
    a_member_sees_only_their_own_and_their_projects_workflows,
    a_project_viewer_gets_no_edit_forms_and_cannot_edit,
    the_workflow_page_renames_activates_tags_and_deletes,
    members_see_no_tag_delete_button_and_cannot_delete_tags,
    credentials_are_listed_without_their_data_and_bad_json_is_shown_beside_the_field,
    projects_are_made_by_admins_and_managed_from_their_page_and_the_users_page,
    deleting_a_user_with_transfer_from_the_user_page_moves_their_workflows,
    deleting_a_pending_user_or_an_active_one_with_their_work
);

async fn id_of(server: &TestServer, client: &Client, email: &str) -> String {
    let users: Value = body(
        client
            .get(server.at("/rest/users"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    users["data"]["items"]
        .as_array()
        .and_then(|i| i.iter().find(|u| u["email"] == email))
        .and_then(|u| u["id"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// "Pick a person" is a search: the member field takes an email or a name,
/// asks which one when the name fits several, and suggests a few matches,
/// never everyone.
async fn a_project_member_is_found_by_a_search_never_a_list_of_everyone(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (owner, _, _) = team(&server).await;
    let id = create_project(&server, &owner, "Billing").await;
    let path = format!("/projects/{id}");
    let (_, shown) = page(&server, &owner, &path).await;
    assert!(!shown.contains("<select id=\"member-user\""), "{shown}");
    assert!(
        !shown.contains("ann@example.com"),
        "no list of everyone: {shown}"
    );

    let by_email = post_page(
        &server,
        &owner,
        &format!("{path}/members"),
        &[("person", "ben@example.com"), ("role", "project:viewer")],
    )
    .await;
    assert!(
        by_email.contains("Mia Member is viewer of “Billing”."),
        "{by_email}"
    );

    // Ann and Ben are both Mia Member: which one?
    let several = post_page(
        &server,
        &owner,
        &format!("{path}/members"),
        &[("person", "Mia Member"), ("role", "project:admin")],
    )
    .await;
    assert!(
        several.contains("“Mia Member” could be several people: choose one."),
        "{several}"
    );
    assert!(
        several.contains("Mia Member (ann@example.com)"),
        "{several}"
    );
    assert!(
        several.contains("Mia Member (ben@example.com)"),
        "{several}"
    );
    assert!(
        several.contains("value=\"project:admin\" selected"),
        "the role chosen is kept: {several}"
    );
    assert!(several.contains("value=\"Mia Member\""), "{several}");

    let nobody = post_page(
        &server,
        &owner,
        &format!("{path}/members"),
        &[("person", "zed@example.com"), ("role", "project:editor")],
    )
    .await;
    assert!(
        nobody.contains("No one matches “zed@example.com”. Type their email."),
        "{nobody}"
    );

    let suggestions = body(
        owner
            .get(server.at(&format!("{path}/people?q=ann")))
            .send()
            .await?,
    )
    .await;
    assert_eq!(
        suggestions.as_array().map(Vec::len),
        Some(1),
        "{suggestions}"
    );
    assert_eq!(suggestions[0]["value"], "ann@example.com");
    Ok(())
}
