//! The pages in a real browser: headless Chromium driven through
//! ChromeDriver (Debian's `chromium` and `chromium-driver` packages). Each
//! test clicks and types as a person would, checks what the pages show, and
//! keeps a screenshot of every page in its own folder under
//! `target/screenshots/`.
//!
//! A machine without Chromium or ChromeDriver fails the tests with a message
//! saying what to install; they are never skipped.

use std::{
    error::Error,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use usher_domain::{model::Role, store::ProjectStore as _};

use crate::harness::*;
use crate::mail_sink::{Security, SmtpSink};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get install -y chromium chromium-driver";
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/screenshots");
/// How long a page may take to show what the test waits for.
const PATIENCE: Duration = Duration::from_secs(15);
/// How long an email may take to reach the SMTP sink.
const MAIL_WAIT: Duration = Duration::from_secs(10);
const RESET_LINK_DEAD: &str = "This password reset link does not work";

type Outcome<T> = Result<T, Box<dyn Error>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owner_sets_up_changes_their_name_signs_out_and_back_in() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    let mut browser = Browser::open("first_run").await?;

    // First visit: every page leads to set-up.
    browser.goto(&server.at("/")).await?;
    browser.appears("#setup-form").await?;
    assert_eq!(browser.path().await?, "/setup");
    assert_eq!(browser.title().await?, "Set up owner account · Usher");
    browser.assert_signed_out().await?;
    browser.shoot("setup").await?;

    // A weak password: the page comes back with n8n's policy messages beside
    // the field, keeps what was typed except the password, creates nobody.
    browser
        .type_into("#setup-form input[name=email]", OWNER_EMAIL)
        .await?;
    browser
        .type_into("#setup-form input[name=firstName]", "Olive")
        .await?;
    browser
        .type_into("#setup-form input[name=lastName]", "Owner")
        .await?;
    browser.submit_password("setup", "short").await?;
    browser.assert_weak_password_refused("setup").await?;
    assert_eq!(browser.path().await?, "/setup");
    assert_eq!(
        browser.value("#setup-form input[name=email]").await?,
        OWNER_EMAIL
    );
    assert_eq!(
        browser.value("#setup-form input[name=firstName]").await?,
        "Olive"
    );
    browser.shoot("weak-password").await?;

    // A good password: the owner exists and is signed in, at home.
    browser.submit_password("setup", OWNER_PASSWORD).await?;
    browser.assert_home_as("Olive Owner").await?;
    assert_eq!(browser.text("main h1").await?, "Welcome, Olive");
    browser.shoot("owner-signed-in").await?;

    // Personal settings, reached from the top bar: the profile is filled in.
    browser.follow_top_bar("/settings/personal").await?;
    browser.appears("#profile-form").await?;
    assert_eq!(browser.path().await?, "/settings/personal");
    assert_eq!(
        browser.value("#profile-form input[name=firstName]").await?,
        "Olive"
    );
    assert_eq!(
        browser.value("#profile-form input[name=lastName]").await?,
        "Owner"
    );
    assert_eq!(
        browser.value("#profile-form input[name=email]").await?,
        OWNER_EMAIL
    );
    browser.shoot("personal-settings").await?;

    // A new first name, saved without a password (the email is unchanged):
    // the notice says so and the top bar shows the new name at once.
    browser
        .type_into("#profile-form input[name=firstName]", "Oriana")
        .await?;
    browser.click("profile-save").await?;
    let notice = browser.appears("#flash").await?;
    assert_eq!(
        notice.text().await?,
        "Your details are saved: Oriana Owner, owner@example.com."
    );
    assert_eq!(browser.path().await?, "/settings/personal");
    assert_eq!(browser.text("#who-name").await?, "Oriana Owner");
    assert_eq!(
        browser.value("#profile-form input[name=firstName]").await?,
        "Oriana"
    );
    browser.shoot("name-changed").await?;

    // The name stays changed on the next page too.
    browser.find(".sidebar a.brand").await?.click().await?;
    browser.assert_home_as("Oriana Owner").await?;
    assert_eq!(browser.text("main h1").await?, "Welcome, Oriana");

    // Sign out: the sign-in page shows, nobody in the top bar.
    browser.sign_out().await?;
    assert_eq!(browser.text("main h1").await?, "Sign in");
    assert_eq!(browser.text("main .notice").await?, "You are signed out.");
    browser.shoot("signed-out").await?;

    // A wrong password: n8n's message, the email kept, still signed out.
    browser.fill_sign_in(OWNER_EMAIL, "Wrong1password").await?;
    browser.assert_sign_in_refused(OWNER_EMAIL).await?;
    browser.shoot("wrong-password").await?;

    // The right password: signed in again, at home, with the new name.
    browser.submit_password("signin", OWNER_PASSWORD).await?;
    browser.assert_home_as("Oriana Owner").await?;
    assert_eq!(browser.text("main h1").await?, "Welcome, Oriana");
    browser.shoot("signed-in-again").await?;

    browser.finish(server).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_person_follows_the_emailed_link_accepts_and_is_signed_in() -> TestResult {
    let sink = SmtpSink::start(Security::StartTls, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let server = TestServer::start_with_mail(Db::Sqlite, &sink, Security::StartTls, &[]).await;
    server.owner().await;
    let mut browser = Browser::open("invitation").await?;

    // The owner signs in and opens Users from the top bar.
    browser.sign_in_as_owner(&server).await?;
    browser.follow_top_bar("/settings/users").await?;
    browser.appears("#users-table").await?;
    assert_eq!(browser.path().await?, "/settings/users");
    // "Invite" opens the form in a dialog.
    browser.click("invite-users").await?;
    browser.appears("#invite-dialog[open] #invite-form").await?;
    assert_eq!(
        browser.text("#invite-form .hint").await?,
        "Each person gets an email with a link to join."
    );
    browser.shoot("users").await?;

    // Invite Ivy as an admin: the email goes out, the page says so, and Ivy
    // is listed as pending.
    browser
        .type_into("#invite-emails", "ivy@example.com")
        .await?;
    browser
        .find("#invite-role")
        .await?
        .select_by_value("global:admin")
        .await?;
    browser.click("invite-submit").await?;
    let results = browser.appears("#invite-results").await?.text().await?;
    assert!(results.contains("ivy@example.com"), "{results}");
    assert!(results.contains("Invitation email sent."), "{results}");
    let ivy_row = user_row("ivy@example.com");
    assert_eq!(
        browser
            .value(&format!("{ivy_row} select[name=role]"))
            .await?,
        "global:admin"
    );
    browser
        .appears(&format!("{ivy_row} .badge.pending"))
        .await?;
    browser.shoot("invitation-sent").await?;

    let link = emailed_link(&sink, &server, "ivy@example.com", "/signup?token=").await?;

    // Ivy, in the same browser once the owner has signed out, follows the
    // link: the page says who invited her and to which address.
    browser.sign_out().await?;
    browser.goto(&link).await?;
    browser.appears("#signup-form").await?;
    assert_eq!(browser.path().await?, "/signup");
    assert_eq!(browser.title().await?, "Join · Usher");
    assert_eq!(
        browser.text("#invited-by").await?,
        "Olive Owner has invited you to join as ivy@example.com."
    );
    browser.assert_signed_out().await?;
    browser.shoot("invitation-page").await?;

    // A weak password: the policy beside the field, the names kept.
    browser
        .type_into("#signup-form input[name=firstName]", "Ivy")
        .await?;
    browser
        .type_into("#signup-form input[name=lastName]", "Invitee")
        .await?;
    browser.submit_password("signup", "weak").await?;
    browser.assert_weak_password_refused("signup").await?;
    assert_eq!(
        browser.value("#signup-form input[name=firstName]").await?,
        "Ivy"
    );
    assert_eq!(
        browser.value("#signup-form input[name=lastName]").await?,
        "Invitee"
    );
    assert_eq!(
        browser.text("#invited-by").await?,
        "Olive Owner has invited you to join as ivy@example.com."
    );
    browser.assert_signed_out().await?;
    browser.shoot("weak-password").await?;

    // A good password: Ivy is signed in, at home.
    browser.submit_password("signup", "Ivy1password").await?;
    browser.assert_home_as("Ivy Invitee").await?;
    assert_eq!(browser.text("main h1").await?, "Welcome, Ivy");
    browser.shoot("accepted-signed-in").await?;

    // She joined with the role she was invited with.
    browser.follow_top_bar("/settings/users").await?;
    browser.appears("#users-table").await?;
    assert_eq!(
        browser.text(&format!("{ivy_row} .user-link")).await?,
        "Ivy Invitee"
    );
    // Admins do not change their own role from the list.
    assert_eq!(
        browser.text(&format!("{ivy_row} td:nth-child(2)")).await?,
        "Admin"
    );
    assert_eq!(
        browser.text(&format!("{ivy_row} td.badges")).await?,
        "Active"
    );
    browser.shoot("joined-as-admin").await?;

    // The link works once: a second visit says it was used.
    browser
        .assert_dead_link(
            &link,
            "This invitation link does not work",
            "This invite has been accepted already. Sign in with the email and password you chose.",
            "#signup-form",
        )
        .await?;
    browser.shoot("accepted-already").await?;

    browser.finish(server).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_added_directly_must_choose_a_password_at_first_sign_in() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let mut browser = Browser::open("basic_onboarding").await?;

    // The owner adds Bea directly and gets her temporary password.
    browser.sign_in_as_owner(&server).await?;
    browser.follow_top_bar("/settings/users").await?;
    browser.appears("#users-table").await?;
    browser.click("add-users").await?;
    browser.appears("#add-dialog[open] #create-form").await?;
    browser.shoot("users").await?;
    browser
        .type_into("#create-lines", "bea@example.com, Bea, Lee")
        .await?;
    browser.click("create-submit").await?;
    browser.appears("#created-results").await?;
    let temporary = browser
        .temporary_password("#created-results input.temp-password")
        .await?;
    let csv = browser.find("#csv-download").await?;
    assert_eq!(csv.text().await?, "Download as CSV");
    let href = browser.attribute("#csv-download", "href").await?;
    assert!(href.starts_with("data:text/csv"), "{href}");
    assert!(href.contains("bea%40example.com"), "{href}");
    let bea_row = user_row("bea@example.com");
    assert_eq!(
        browser.text(&format!("{bea_row} .user-link")).await?,
        "Bea Lee"
    );
    assert_eq!(
        browser.text(&format!("{bea_row} td.badges")).await?,
        "Must change password"
    );
    browser.shoot("temporary-password").await?;

    // Bea signs in with it and is asked for her own password first.
    browser.sign_out().await?;
    browser
        .sign_in(&server, "bea@example.com", &temporary)
        .await?;
    browser.assert_must_choose_password("Bea Lee").await?;
    browser.shoot("set-password").await?;

    // Nothing else opens until she has.
    browser.goto(&server.at("/settings/personal")).await?;
    browser.appears("#set-password-form").await?;
    assert_eq!(browser.path().await?, "/set-password");

    // The temporary password again is refused, beside the field.
    browser.submit_password("set-password", &temporary).await?;
    let error = browser.appears("#password-error").await?;
    assert_eq!(
        error.text().await?,
        "Choose a password different from the temporary one."
    );
    assert_eq!(browser.path().await?, "/set-password");
    browser.assert_password_emptied("set-password").await?;
    browser.shoot("same-password").await?;

    // A good one: at home, signed in as Bea.
    browser
        .submit_password("set-password", "Bea1password")
        .await?;
    browser.assert_home_as("Bea Lee").await?;
    assert_eq!(browser.text("main h1").await?, "Welcome, Bea");
    browser.shoot("password-chosen").await?;

    // The new password is hers from now on.
    browser.sign_out().await?;
    browser
        .sign_in(&server, "bea@example.com", "Bea1password")
        .await?;
    browser.assert_home_as("Bea Lee").await?;
    browser.shoot("signed-in-again").await?;

    browser.finish(server).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_from_the_emailed_link() -> TestResult {
    let sink = SmtpSink::start(Security::StartTls, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let server = TestServer::start_with_mail(Db::Sqlite, &sink, Security::StartTls, &[]).await;
    server.owner().await;
    let mut browser = Browser::open("password_reset").await?;
    const RENEWED: &str = "Renewed1password";

    // Email is set up, so the sign-in page offers a way back in.
    browser.goto(&server.at("/signin")).await?;
    browser.appears("#signin-form").await?;
    assert_eq!(browser.text("#forgot-link").await?, "Forgot your password?");
    browser.shoot("signin").await?;
    browser.click("forgot-link").await?;
    browser.appears("#forgot-form").await?;
    assert_eq!(browser.path().await?, "/forgot-password");
    assert_eq!(browser.title().await?, "Forgot password · Usher");
    browser.shoot("forgot-password").await?;

    // The owner's email: the page says a link is on its way (as it would for
    // any address), and the form is gone.
    browser
        .type_into("#forgot-form input[name=email]", OWNER_EMAIL)
        .await?;
    browser.click("forgot-submit").await?;
    let sent = browser.appears("#sent").await?;
    assert_eq!(
        sent.text().await?,
        "The link works once, for 20 minutes. Check your spam folder if it does not arrive."
    );
    assert_eq!(
        browser.text("#flash").await?,
        format!("If an account uses {OWNER_EMAIL}, a link to choose a new password is on its way.")
    );
    assert_eq!(browser.path().await?, "/forgot-password");
    browser
        .assert_absent("#forgot-form", "the form is still offered")
        .await?;
    browser.assert_signed_out().await?;
    browser.shoot("link-sent").await?;

    // The emailed link opens a form that names the account.
    let link = emailed_link(&sink, &server, OWNER_EMAIL, "/change-password?token=").await?;
    let for_owner = format!("For {OWNER_EMAIL}. You will be signed out everywhere else.");
    browser.goto(&link).await?;
    browser.appears("#change-password-form").await?;
    assert_eq!(browser.path().await?, "/change-password");
    assert_eq!(browser.title().await?, "Choose a new password · Usher");
    assert_eq!(browser.text("main section > p").await?, for_owner);
    browser.assert_signed_out().await?;
    browser.shoot("change-password").await?;

    // A weak password: the policy beside the field, the link still usable.
    browser.submit_password("change-password", "weak").await?;
    browser
        .assert_weak_password_refused("change-password")
        .await?;
    assert_eq!(browser.text("main section > p").await?, for_owner);
    browser.assert_signed_out().await?;
    browser.shoot("weak-password").await?;

    // A good one: signed in, at home.
    browser.submit_password("change-password", RENEWED).await?;
    browser.assert_home_as("Olive Owner").await?;
    browser.shoot("password-changed").await?;

    // The link works once.
    browser
        .assert_dead_link(
            &link,
            RESET_LINK_DEAD,
            "This password reset link is not valid: it has been used, has expired \
             (links last 20 minutes) or was replaced by a newer one. Ask for a new one.",
            "#change-password-form",
        )
        .await?;
    browser.shoot("link-used").await?;

    // The old password is refused, the new one lets the owner in.
    browser.sign_out().await?;
    browser.fill_sign_in(OWNER_EMAIL, OWNER_PASSWORD).await?;
    browser.assert_sign_in_refused(OWNER_EMAIL).await?;
    browser.shoot("old-password-refused").await?;
    browser.submit_password("signin", RENEWED).await?;
    browser.assert_home_as("Olive Owner").await?;
    browser.shoot("signed-in-with-new-password").await?;

    browser.finish(server).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_forces_a_password_reset_and_the_user_must_choose_a_new_one() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let mut browser = Browser::open("forced_reset").await?;

    // The owner opens Mia's page from the users list.
    browser.sign_in_as_owner(&server).await?;
    browser.follow_top_bar("/settings/users").await?;
    let mia_row = user_row("mia@example.com");
    browser
        .appears(&format!("{mia_row} td:nth-child(1) a"))
        .await?
        .click()
        .await?;
    let mia_page = format!("/settings/users/{}", mia.id);
    browser.appears("#force-reset-button").await?;
    assert_eq!(browser.path().await?, mia_page);
    assert_eq!(browser.title().await?, "Mia Member · Usher");
    assert_eq!(browser.text("#user-name").await?, "Mia Member");
    assert_eq!(browser.text("#user-email").await?, "mia@example.com");
    let facts = browser.text(".facts").await?;
    assert!(facts.contains("Active since "), "{facts}");
    browser.shoot("user-page").await?;

    // A forced reset: a temporary password, shown once, and Mia's status says
    // what comes next. Reloading would not reset again.
    browser.click("force-reset-button").await?;
    // The page asks first: a forced reset signs Mia out everywhere.
    let question = browser.client.get_alert_text().await?;
    assert!(question.contains("Mia Member"), "{question}");
    browser.client.accept_alert().await?;
    let temporary = browser.temporary_password("#temporary-password").await?;
    assert_eq!(
        browser.text("#flash").await?,
        "Mia Member's password is reset; they are signed out everywhere."
    );
    let facts = browser.text(".facts").await?;
    assert!(facts.contains(MUST_CHOOSE), "{facts}");
    assert_eq!(browser.path().await?, mia_page);
    browser.shoot("temporary-password").await?;

    // A reset link too: shown in place of the password, which is not shown
    // again (and still works: making a link does not change it).
    browser.click("reset-link-button").await?;
    browser.appears("#reset-link").await?;
    let reset_link = browser.value("#reset-link").await?;
    assert!(
        reset_link.starts_with(&server.at("/change-password?token=")),
        "{reset_link}"
    );
    browser
        .assert_absent(
            "#temporary-password",
            "the temporary password is shown again",
        )
        .await?;
    assert_eq!(browser.path().await?, mia_page);
    browser.shoot("reset-link").await?;

    // Mia signs in with the temporary password: only the form to choose her
    // own opens, and the top bar leads nowhere else.
    browser.sign_out().await?;
    browser
        .sign_in(&server, "mia@example.com", &temporary)
        .await?;
    browser.assert_must_choose_password("Mia Member").await?;
    browser.shoot("set-password").await?;

    browser
        .submit_password("set-password", "Member2pass")
        .await?;
    browser.assert_home_as("Mia Member").await?;
    assert_eq!(browser.text("main h1").await?, "Welcome, Mia");
    browser.shoot("password-chosen").await?;

    // Choosing her password voided the link made before.
    browser
        .assert_dead_link(
            &reset_link,
            RESET_LINK_DEAD,
            "This password reset link is not valid: it has been used, has expired \
             (links last 20 minutes) or was replaced by a newer one. \
             Ask the owner or an admin for a new one.",
            "#change-password-form",
        )
        .await?;
    browser.shoot("reset-link-void").await?;

    browser.finish(server).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sees_only_their_work_and_the_owner_deletes_a_user_with_transfer() -> TestResult {
    use usher_domain::resources::ProjectKind;

    let server = TestServer::start(Db::Sqlite).await;
    let owner = server.owner().await;
    let ann = server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    let ben = server
        .add_user("ben@example.com", "Member1pass", Role::Member)
        .await;
    // Set-up through the API: Ben's workflow, and a tag from the owner.
    let ben_api = server.signed_in("ben@example.com", "Member1pass").await;
    let made = ben_api
        .post(server.at("/rest/workflows"))
        .json(&json!({"name": "Ben flow"}))
        .send()
        .await?;
    assert_eq!(made.status(), reqwest::StatusCode::OK);
    let tag = owner
        .post(server.at("/rest/tags"))
        .json(&json!({"name": "finance"}))
        .send()
        .await?;
    assert_eq!(tag.status(), reqwest::StatusCode::OK);
    let mut browser = Browser::open("roles").await?;

    // Ann, a member, opens Workflows from the top bar: none of hers yet, and
    // not Ben's either.
    browser
        .sign_in(&server, "ann@example.com", "Member1pass")
        .await?;
    browser.assert_home_as("Mia Member").await?;
    browser.follow_top_bar("/home/workflows").await?;
    browser.appears("#workflow-form").await?;
    assert_eq!(browser.path().await?, "/home/workflows");
    assert_eq!(browser.title().await?, "Workflows · Usher");
    browser.appears("#workflows-empty").await?;
    assert_eq!(
        browser.text("#workflow-project option:checked").await?,
        "Mia Member (personal, ann@example.com)"
    );
    browser.shoot("member-no-workflows").await?;

    // She creates one, in her own project (the default).
    browser.type_into("#workflow-name", "Ann flow").await?;
    browser.click("workflow-create").await?;
    let notice = browser.appears("#flash").await?;
    assert_eq!(
        notice.text().await?,
        "Workflow “Ann flow” is created in Mia Member (personal, ann@example.com)."
    );
    assert_eq!(browser.path().await?, "/home/workflows");
    assert_eq!(
        browser
            .text(&format!("{} td.owner", workflow_row("Ann flow")))
            .await?,
        "Mia Member (personal, ann@example.com)"
    );
    browser
        .assert_absent(&workflow_row("Ben flow"), "Ben's workflow is shown to Ann")
        .await?;
    let listed = browser.text("#workflows-table").await?;
    assert!(!listed.contains("Ben flow"), "{listed}");
    browser.shoot("member-workflows").await?;

    // Tags: she sees the owner's, and may not delete it.
    browser.follow_top_bar("/home/tags").await?;
    browser
        .appears("#tags-table tr[data-name='finance']")
        .await?;
    browser
        .assert_absent(".tag-delete", "a member gets a tag delete button")
        .await?;
    browser
        .assert_absent("#tags-table form", "a member gets a tag form")
        .await?;
    browser.appears("#tag-form").await?;
    browser.shoot("member-tags").await?;
    browser.sign_out().await?;

    // The owner sees both workflows, with whose they are.
    browser.sign_in_as_owner(&server).await?;
    browser.follow_top_bar("/home/workflows").await?;
    browser.appears("#workflows-table").await?;
    assert_eq!(
        browser
            .text(&format!("{} td.owner", workflow_row("Ben flow")))
            .await?,
        "Mia Member (personal, ben@example.com)"
    );
    assert_eq!(
        browser
            .text(&format!("{} td.owner", workflow_row("Ann flow")))
            .await?,
        "Mia Member (personal, ann@example.com)"
    );
    browser.shoot("owner-workflows").await?;

    // Ben's page, from the users list: his work is to go to Ann.
    browser.follow_top_bar("/settings/users").await?;
    browser
        .appears(&format!(
            "{} td:nth-child(1) a",
            user_row("ben@example.com")
        ))
        .await?
        .click()
        .await?;
    browser.appears("#delete-user-form").await?;
    assert_eq!(browser.path().await?, format!("/settings/users/{}", ben.id));
    let ann_project = server
        .store
        .projects_of(ann.id)
        .await?
        .into_iter()
        .find(|(p, _)| p.kind == ProjectKind::Personal)
        .map(|(p, _)| p.id.to_string())
        .ok_or("Ann has no personal project")?;
    browser.click("delete-transfer").await?;
    // The person is typed (searched), not picked from a list of everyone.
    browser.type_into("#transfer-to", "ann@example.com").await?;
    assert!(!ann_project.is_empty());
    browser
        .client
        .execute(
            "document.getElementById('delete-user-form').scrollIntoView({block: 'center'})",
            vec![],
        )
        .await?;
    browser.shoot("delete-user-with-transfer").await?;

    // The page asks first; then Ben is gone and the list says what became
    // of his work.
    browser.click("delete-user").await?;
    let question = browser.client.get_alert_text().await?;
    assert!(question.contains("ben@example.com"), "{question}");
    browser.client.accept_alert().await?;
    let notice = browser.appears("#flash").await?;
    assert_eq!(
        notice.text().await?,
        "Mia Member is deleted; their 1 workflow and 0 credentials now belong to Mia Member."
    );
    assert_eq!(browser.path().await?, "/settings/users");
    browser
        .assert_absent(&user_row("ben@example.com"), "Ben is still listed")
        .await?;
    browser.shoot("user-deleted").await?;

    // Ben's workflow is Ann's now (no one else is called Mia Member now,
    // so her name alone says whose).
    browser.follow_top_bar("/home/workflows").await?;
    browser.appears(&workflow_row("Ben flow")).await?;
    assert_eq!(
        browser
            .text(&format!("{} td.owner", workflow_row("Ben flow")))
            .await?,
        "Mia Member (personal)"
    );
    browser.shoot("workflow-transferred").await?;

    browser.finish(server).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_enrols_in_two_factor_and_signs_in_with_a_code() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let mut browser = Browser::open("two_factor").await?;

    // The owner signs in and finds two-factor authentication, off, in
    // personal settings.
    browser.sign_in_as_owner(&server).await?;
    browser.follow_top_bar("/settings/personal").await?;
    browser.appears("#mfa-link").await?;
    assert_eq!(
        browser.text("#mfa-link").await?,
        "Manage two-factor authentication"
    );
    browser.click("mfa-link").await?;
    browser.appears("#mfa-start").await?;
    assert_eq!(browser.path().await?, "/settings/mfa");
    assert_eq!(browser.title().await?, "Two-factor authentication · Usher");
    let status = browser.text("#mfa-status").await?;
    assert!(
        status.starts_with("Two-factor authentication is off."),
        "{status}"
    );
    browser.shoot("mfa-off").await?;

    // Set-up: a QR code to scan, big enough for a phone's camera, and the
    // secret to type instead.
    browser.click("mfa-start").await?;
    let qr = browser.appears("#mfa-qr svg").await?;
    assert!(qr.is_displayed().await?, "the QR code is hidden");
    let (_, _, width, height) = qr.rectangle().await?;
    assert!(
        width >= 200.0 && height >= 200.0,
        "the QR code is {width}×{height}"
    );
    // Shown in groups of four for typing; the groups join back up.
    let secret = browser.text("#mfa-secret").await?.replace(' ', "");
    assert!(
        secret.len() >= 16
            && secret
                .chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
        "not a base32 secret: {secret:?}"
    );
    browser.shoot("scan-qr-code").await?;

    // The app's code turns it on; the recovery codes are shown, once.
    browser
        .type_into("#mfaCode", &code_at(&server, &secret))
        .await?;
    browser.click("enable-submit").await?;
    browser.appears("#recovery-codes-text").await?;
    assert_eq!(
        browser.text("#flash").await?,
        "Two-factor authentication is on. Keep these recovery codes somewhere safe: \
         each works once, and they are not shown again."
    );
    let status = browser.text("#mfa-status").await?;
    assert!(status.contains(" on "), "{status}");
    let recovery_codes: Vec<String> = browser
        .value("#recovery-codes-text")
        .await?
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(recovery_codes.len(), 10, "{recovery_codes:?}");
    assert_eq!(browser.text("#recovery-codes-download").await?, "Download");
    let href = browser
        .attribute("#recovery-codes-download", "href")
        .await?;
    assert!(href.starts_with("data:text/plain"), "{href}");
    assert!(href.contains(&recovery_codes[9]), "{href}");
    browser.shoot("recovery-codes").await?;

    // Later (the code used to turn it on is spent), signing in takes a
    // second step.
    server.advance_minutes(1);
    browser.sign_out().await?;
    browser
        .sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD)
        .await?;
    browser.assert_asked_for_code().await?;
    browser.shoot("code-asked").await?;

    // A wrong code is refused; the right one signs the owner in.
    browser.submit_code("000000").await?;
    browser
        .assert_code_refused("Invalid two-factor code.")
        .await?;
    browser.shoot("wrong-code").await?;
    browser.submit_code(&code_at(&server, &secret)).await?;
    browser.assert_home_as("Olive Owner").await?;
    browser.shoot("signed-in-with-code").await?;

    // Without the phone, a recovery code does instead…
    let recovery_code = &recovery_codes[0];
    browser.sign_out().await?;
    browser
        .sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD)
        .await?;
    browser.assert_asked_for_code().await?;
    browser.enter_recovery_code(recovery_code).await?;
    browser.shoot("recovery-code-typed").await?;
    browser.click("code-submit").await?;
    browser.assert_home_as("Olive Owner").await?;
    browser.shoot("signed-in-with-recovery-code").await?;

    // …once. (A minute on: each step of a sign-in counts towards the five
    // attempts a minute an email is allowed.)
    server.advance_minutes(1);
    browser.sign_out().await?;
    browser
        .sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD)
        .await?;
    browser.assert_asked_for_code().await?;
    browser.enter_recovery_code(recovery_code).await?;
    browser.click("code-submit").await?;
    browser
        .assert_code_refused("This recovery code is not valid, or it was used already.")
        .await?;
    browser.shoot("recovery-code-used").await?;

    browser.finish(server).await?;
    Ok(())
}

/// A person with two-factor authentication signs into an app (a small
/// relying party of the test's own) through Usher's pages: the app sends
/// the browser to Usher, Usher asks for the password and the code, and the
/// app shows who signed in, having checked the ID token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_into_an_app_through_usher_with_two_factor() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    let owner = server.owner().await;
    let (secret, _) = enrol(&server, &owner).await;
    let rp = crate::oidc::serve_rp(&server, &owner).await?;
    let mut browser = Browser::open("app_sign_in").await?;

    // The app sends the browser to Usher, which asks the person to sign in.
    browser.goto(&rp).await?;
    browser.appears("#signin-form").await?;
    assert_eq!(browser.path().await?, "/signin");
    browser.shoot("app-sends-to-sign-in").await?;
    browser.fill_sign_in(OWNER_EMAIL, OWNER_PASSWORD).await?;
    browser.assert_asked_for_code().await?;
    browser.submit_code(&code_at(&server, &secret)).await?;

    // Back at the app, signed in, with both factors named.
    let user = browser.appears("#rp-user").await?;
    assert_eq!(user.text().await?, format!("Signed in as {OWNER_EMAIL}"));
    assert_eq!(browser.text("#rp-amr").await?, "pwd otp");

    // Signed in to Usher now: the next sign-in into the app asks nothing.
    browser.goto(&rp).await?;
    browser.appears("#rp-user").await?;

    // The owner's home page lists the app.
    browser.goto(&server.at("/")).await?;
    browser.appears("#my-apps").await?;
    assert!(browser.text("#my-apps").await?.contains("Test app"));
    browser.shoot("home-lists-the-app").await?;

    // Settings → Apps lists it for the owner, and its page shows its form.
    browser.follow_top_bar("/settings/apps").await?;
    browser.appears("#apps-table").await?;
    browser.shoot("apps").await?;
    browser.find("#apps-table a").await?.click().await?;
    browser.appears("#app-form").await?;
    browser.shoot("app").await?;

    browser.finish(server).await?;
    Ok(())
}

/// A person opens a tool behind Caddy on a host of its own: Caddy asks
/// Usher, Usher's sign-in page appears, and after signing in the browser is
/// back at the tool, which hears who it is; signing out of Usher signs out
/// of the tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_caddy_to_a_tool_and_back() -> TestResult {
    use crate::forward_auth::{Kind, Proxy, Upstream};
    let server = TestServer::start(Db::Sqlite).await;
    let owner = server.owner().await;
    let usher: u16 = server.url.rsplit(':').next().unwrap_or_default().parse()?;
    let upstream = Upstream::start().await;
    let caddy = Proxy::start(Kind::Caddy, usher, upstream.port).await;
    // Plain http on Caddy's port, so the host entry says so.
    let created = owner
        .post(server.at("/rest/apps"))
        .json(&json!({
            "name": "Wiki",
            "launchUrl": "http://app.usher.test/",
            "access": "everyone",
            "forwardAuth": {"hosts": [format!("http://app.usher.test:{}", caddy.port)]},
        }))
        .send()
        .await?;
    assert!(created.status().is_success());
    let mut browser = Browser::open_with(
        "forward_auth",
        &["--host-resolver-rules=MAP app.usher.test 127.0.0.1".to_owned()],
    )
    .await?;
    let tool = caddy.at("app.usher.test", "/notes?page=2");
    browser.goto(&tool).await?;
    browser.appears("#signin-form").await?;
    assert_eq!(browser.path().await?, "/signin");
    browser.shoot("tool-sends-to-sign-in").await?;
    browser.fill_sign_in(OWNER_EMAIL, OWNER_PASSWORD).await?;
    // Back at the tool, at the page asked for, as the owner.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let source = browser.client.source().await?;
        if source.contains(&format!("\"remote-user\":\"{OWNER_EMAIL}\"")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tool did not hear who it is: {source}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = browser.client.current_url().await?;
    assert_eq!(url.host_str(), Some("app.usher.test"));
    assert_eq!(url.path(), "/notes");
    // (No screenshot here: `shoot` checks accessibility, and this is the
    // test's echoing tool, not a page of Usher's.)
    assert_eq!(url.query(), Some("page=2"));
    // Signed out of Usher: the tool sends the browser to sign in again.
    browser.goto(&server.at("/")).await?;
    browser.sign_out().await?;
    browser.goto(&tool).await?;
    browser.appears("#signin-form").await?;
    drop(caddy);
    browser.finish(server).await?;
    Ok(())
}

/// Single sign-on through the company's provider (a second Usher): the
/// owner sets it up on its page (a provider that does not answer is
/// refused with what was typed kept), then a person clicks "Sign in with
/// Company", signs in on the provider's pages and lands in Usher as a new
/// member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_the_company_s_provider() -> TestResult {
    let pair = crate::sso::Pair::new(Db::Sqlite).await;
    let mut browser = Browser::open("sso_sign_in").await?;
    browser.sign_in_as_owner(&pair.sp).await?;
    browser.follow_top_bar("/settings/sso").await?;
    browser.appears("#sso-form").await?;
    assert_eq!(
        browser.value("#callback-url").await?,
        pair.sp.at("/rest/sso/oidc/callback")
    );
    browser.shoot("sso-settings").await?;

    // A provider that does not answer: refused, the form as typed.
    let nowhere = "http://127.0.0.1:9/.well-known/openid-configuration";
    browser.type_into("#discoveryEndpoint", nowhere).await?;
    browser.type_into("#clientId", &pair.client_id).await?;
    browser.type_into("#clientSecret", &pair.secret).await?;
    browser.type_into("#loginLabel", "Company").await?;
    browser.click("sso-enabled").await?;
    browser.click("sso-save").await?;
    let error = browser.appears("#discoveryEndpoint-error").await?;
    assert!(error.text().await?.contains("could not reach"));
    assert_eq!(browser.value("#discoveryEndpoint").await?, nowhere);
    assert_eq!(browser.value("#loginLabel").await?, "Company");
    browser.shoot("sso-settings-refused").await?;

    browser.find("#discoveryEndpoint").await?.clear().await?;
    browser
        .type_into("#discoveryEndpoint", &pair.discovery())
        .await?;
    browser.type_into("#clientSecret", &pair.secret).await?;
    browser.click("sso-save").await?;
    let notice = browser.appears("#flash").await?;
    assert!(notice.text().await?.contains("saved and on"));
    browser.sign_out().await?;

    // The sign-in page's button, the provider's pages, and back.
    let button = browser.appears("#sso-button").await?;
    assert_eq!(button.text().await?, "Sign in with Company");
    browser.shoot("sign-in-with-button").await?;
    button.click().await?;
    browser.appears("#signin-form").await?;
    assert!(
        browser
            .client
            .current_url()
            .await?
            .as_str()
            .starts_with(&pair.idp.url)
    );
    browser
        .fill_sign_in("ann@example.com", "Ann1password")
        .await?;
    browser.assert_home_as("Mia Member").await?;
    assert!(
        browser
            .client
            .current_url()
            .await?
            .as_str()
            .starts_with(&pair.sp.url)
    );
    browser.shoot("signed-in-through-sso").await?;
    browser.finish(pair.sp).await?;
    Ok(())
}

/// The workflows table's row for the workflow `name`.
/// Another website's page posts a form to Usher in the signed-in owner's
/// browser: Usher refuses it, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_website_is_refused() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let mut browser = Browser::open("cross_site").await?;
    browser.sign_in_as_owner(&server).await?;

    // A page of another origin (localhost, not 127.0.0.1, and another
    // port) whose form sends itself to Usher as soon as it loads.
    let evil = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let evil_port = evil.local_addr()?.port();
    let target = server.at("/settings/personal");
    let page = format!(
        "<!doctype html><html lang=\"en\"><title>Win a prize</title><body>\
         <form id=\"f\" method=\"post\" action=\"{target}\">\
         <input name=\"email\" value=\"{OWNER_EMAIL}\">\
         <input name=\"firstName\" value=\"Pwned\"><input name=\"lastName\" value=\"X\">\
         </form><script>document.getElementById('f').submit()</script></body></html>"
    );
    let serving = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut socket, _)) = evil.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    browser
        .goto(&format!("http://localhost:{evil_port}/prize"))
        .await?;
    let message = browser.appears("#error-message").await?.text().await?;
    assert!(message.contains("came from another website"), "{message}");
    assert_eq!(browser.path().await?, "/settings/personal");
    browser.shoot("refused").await?;
    serving.abort();

    // The owner's name is as it was.
    browser.goto(&server.at("/settings/personal")).await?;
    assert_eq!(
        browser.value("#profile-form input[name=firstName]").await?,
        "Olive"
    );
    browser.finish(server).await
}

// ---- issue 15, every page but the users pages -------------------------

/// Every page is in the menu, the current one marked; each passes axe-core
/// and fits a phone (390 px) without sideways scrolling, its tables as
/// cards; signed out, "Forgot password?" is on the sign-in page and, with no
/// email set up, leads to the page that says whom to ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_in_the_menu_marked_where_you_are_and_fits_a_phone() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    let owner = server.owner().await;
    server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    for (path, body) in [
        (
            "/rest/workflows",
            json!({"name": "Billing with a rather long name to wrap"}),
        ),
        ("/rest/tags", json!({"name": "finance"})),
        ("/rest/projects", json!({"name": "Team"})),
        (
            "/rest/credentials",
            json!({"name": "Stripe", "type": "stripeApi", "data": {}}),
        ),
    ] {
        let made = owner.post(server.at(path)).json(&body).send().await?;
        assert!(made.status().is_success(), "{path}: {}", made.status());
    }
    new_key(&server, &owner, "CI", &[]).await;
    let mut browser = Browser::open("every_page").await?;
    browser.sign_in_as_owner(&server).await?;
    browser.shoot("home").await?;

    for (path, title, shot) in [
        ("/home/workflows", "Workflows", "workflows"),
        ("/home/credentials", "Credentials", "credentials"),
        ("/home/tags", "Tags", "tags"),
        ("/projects", "Projects", "projects"),
        ("/settings/personal", "Personal settings", "personal"),
        ("/settings/mfa", "Two-factor authentication", "two-factor"),
        ("/settings/api", "API keys", "api-keys"),
        ("/settings/email", "Invitation email", "invitation-email"),
        ("/settings/audit", "Audit log", "audit-log"),
    ] {
        browser.follow_top_bar(path).await?;
        browser
            .appears(&format!("#site-nav a[aria-current=page][href$='{path}']"))
            .await?;
        assert_eq!(browser.title().await?, format!("{title} · Usher"));
        assert_eq!(
            browser
                .client
                .execute("return document.documentElement.lang", vec![])
                .await?,
            json!("en")
        );
        browser.shoot(shot).await?;
    }

    // The pages under them keep their section marked.
    browser.follow_top_bar("/home/workflows").await?;
    browser
        .find("#workflows-table td.name a")
        .await?
        .click()
        .await?;
    browser.appears("#danger-zone").await?;
    browser
        .appears("#site-nav a[aria-current=page][href$='/home/workflows']")
        .await?;
    browser.shoot("workflow").await?;
    browser.follow_top_bar("/projects").await?;
    browser
        .find("#projects-table tr[data-name='Team'] a")
        .await?
        .click()
        .await?;
    browser.appears("#project-delete").await?;
    browser.shoot("project").await?;

    // On a phone the menu folds behind its button, and opens.
    browser.client.set_window_size(PHONE.0, PHONE.1).await?;
    assert!(!browser.find("#site-nav").await?.is_displayed().await?);
    browser.find(".menu-button").await?.click().await?;
    assert!(browser.find("#site-nav").await?.is_displayed().await?);
    // Tables are cards: a cell says what it is, and nothing is cut off.
    let label = browser
        .client
        .execute(
            "return getComputedStyle(document.querySelector('#members-table td[data-label]'), '::before').content",
            vec![],
        )
        .await?;
    assert_eq!(label, json!("\"Name\""));
    browser.client.set_window_size(DESKTOP.0, DESKTOP.1).await?;

    // Signed out: "Forgot password?" is always there; without email it says
    // whom to ask.
    browser.sign_out().await?;
    browser.shoot("signin").await?;
    browser.click("forgot-link").await?;
    let ask = browser.appears("#no-email").await?.text().await?;
    assert!(ask.contains("Ask the owner or an admin"), "{ask}");
    browser.shoot("forgot-without-email").await?;
    browser.finish(server).await
}

/// Forms as a person uses them: a reload after a form repeats nothing, the
/// notice names what was done, a failed form keeps what was typed and
/// focuses the first error, a weak password marks what it lacks, a
/// dangerous action asks first (cancelled, nothing happens), and the audit
/// log reads in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_redirect_keep_what_was_typed_and_ask_before_danger() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let mut browser = Browser::open("forms").await?;
    browser.sign_in_as_owner(&server).await?;

    // A tag: the notice names it; a reload shows the list, not the notice,
    // and does not create it twice.
    browser.follow_top_bar("/home/tags").await?;
    browser.type_into("#tag-name", "finance").await?;
    browser.click("tag-create").await?;
    assert_eq!(
        browser.appears("#flash").await?.text().await?,
        "Tag “finance” is created."
    );
    assert_eq!(browser.path().await?, "/home/tags");
    browser.shoot("tag-created").await?;
    browser.client.refresh().await?;
    browser.appears("#tags-table").await?;
    browser
        .assert_absent("#flash", "the notice after a reload")
        .await?;
    let rows = browser
        .client
        .execute(
            "return document.querySelectorAll('#tags-table tbody tr').length",
            vec![],
        )
        .await?;
    assert_eq!(rows, json!(1));

    // A weak new password: the policy once, what is missing marked, the
    // field focused; nothing typed in a password field comes back.
    browser.follow_top_bar("/settings/personal").await?;
    browser
        .type_into("#password-currentPassword", OWNER_PASSWORD)
        .await?;
    browser.type_into("#newPassword", "lowercase1").await?;
    browser.click("password-save").await?;
    browser.appears("#newPassword-error").await?;
    let missing = browser
        .client
        .execute(
            "return [...document.querySelectorAll('#newPassword-policy li.missing')].map(li => li.textContent.trim());",
            vec![],
        )
        .await?;
    assert_eq!(missing, json!(["✗ Missing: At least one capital letter"]));
    let focused = browser
        .client
        .execute("return document.activeElement.id", vec![])
        .await?;
    assert_eq!(focused, json!("newPassword"));
    assert_eq!(browser.value("#newPassword").await?, "");
    assert_eq!(browser.value("#password-currentPassword").await?, "");
    browser.shoot("weak-password").await?;

    // A workflow, then its danger zone: cancelled, nothing happens; then
    // confirmed, it is gone and the list says which.
    browser.follow_top_bar("/home/workflows").await?;
    browser.type_into("#workflow-name", "Billing").await?;
    browser.click("workflow-create").await?;
    assert_eq!(
        browser.appears("#flash").await?.text().await?,
        "Workflow “Billing” is created in Olive Owner (personal)."
    );
    browser
        .find(&format!("{} a", workflow_row("Billing")))
        .await?
        .click()
        .await?;
    browser.appears("#danger-zone #workflow-delete").await?;
    browser.click("workflow-delete").await?;
    let question = browser.client.get_alert_text().await?;
    assert!(question.contains("Billing"), "{question}");
    browser.client.dismiss_alert().await?;
    assert!(browser.path().await?.starts_with("/workflows/"));
    browser.appears("#workflow-title").await?;
    browser.click("workflow-delete").await?;
    browser.client.accept_alert().await?;
    assert_eq!(
        browser.appears("#flash").await?.text().await?,
        "Workflow “Billing” is deleted."
    );
    assert_eq!(browser.path().await?, "/home/workflows");
    browser.shoot("workflow-deleted").await?;

    // The audit log in words, the code a filter.
    browser.follow_top_bar("/settings/audit").await?;
    let words = browser.appears("#audit-table").await?.text().await?;
    assert!(
        words.contains("Olive Owner deleted the workflow “Billing”"),
        "{words}"
    );
    browser.shoot("audit-log").await?;
    browser
        .find("#audit-table tr[data-action='workflow.deleted'] a.code-link")
        .await?
        .click()
        .await?;
    browser.appears("#audit-count").await?;
    assert_eq!(
        browser.text("#audit-count").await?,
        "1 event, showing 1 to 1."
    );
    browser.shoot("audit-filtered").await?;
    browser.finish(server).await
}

fn workflow_row(name: &str) -> String {
    format!("#workflows-table tr[data-name='{name}']")
}

/// A user's status while a temporary password is set.
const MUST_CHOOSE: &str = "Active: must choose a password at next sign-in";

/// The users table's row for `email`.
fn user_row(email: &str) -> String {
    format!("#users-table tr[data-email='{email}']")
}

/// The next email the sink received: it went to `to` alone and carries a link
/// into this server starting with `path` (`/signup?token=`, …).
async fn emailed_link(
    sink: &SmtpSink,
    server: &TestServer,
    to: &str,
    path: &str,
) -> Outcome<String> {
    let message = sink.next_message(MAIL_WAIT).await;
    assert_eq!(message.to, [to]);
    let link = message
        .link(path)
        .ok_or_else(|| format!("no {path} link in the email:\n{}", message.raw))?;
    assert!(link.starts_with(&server.at(path)), "{link}");
    Ok(link)
}

/// One test's browser: a headless Chromium with its own ChromeDriver and
/// profile (so its own cookies), and a camera for its screenshots.
struct Browser {
    client: Client,
    camera: Camera,
    // Dropped after the client: the profile folder, then ChromeDriver (and
    // with it Chromium).
    _profile: tempfile::TempDir,
    _driver: ChromeDriver,
}

impl Browser {
    /// Starts everything; screenshots go to `target/screenshots/{shots}/`.
    async fn open(shots: &str) -> Outcome<Self> {
        Self::open_with(shots, &[]).await
    }

    /// As [`Self::open`], with more Chromium arguments.
    async fn open_with(shots: &str, args: &[String]) -> Outcome<Self> {
        let camera = Camera::new(shots)?;
        let driver = ChromeDriver::start().await;
        let profile = tempfile::tempdir()?;
        let client = driver.browser(profile.path(), args).await;
        Ok(Self {
            client,
            camera,
            _profile: profile,
            _driver: driver,
        })
    }

    /// Ends the browser session and says where the screenshots are.
    /// Closes the browser, then stops the server.
    async fn finish(self, server: TestServer) -> Outcome<()> {
        let folder = self.camera.folder();
        self.client.clone().close().await?;
        println!("screenshots: {folder}");
        server.stop().await?;
        Ok(())
    }

    async fn goto(&self, url: &str) -> Outcome<()> {
        Ok(self.client.goto(url).await?)
    }

    async fn find(&self, css: &str) -> Outcome<Element> {
        Ok(self.client.find(Locator::Css(css)).await?)
    }

    /// Waits for `css` to show up; a timeout names the page the browser is on.
    async fn appears(&self, css: &str) -> Outcome<Element> {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => Ok(element),
            Err(error) => {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let page = self.client.source().await.unwrap_or_default();
                Err(format!("{css} did not appear on {url} ({error}); the page is:\n{page}").into())
            }
        }
    }

    async fn click(&self, id: &str) -> Outcome<()> {
        self.client.find(Locator::Id(id)).await?.click().await?;
        Ok(())
    }

    /// Clicks the button `id` of a form whose answer is a page with a
    /// notice, and returns the new notice's text: the page before may show
    /// a notice of its own, which must be gone before the new one is read.
    async fn notice_after(&self, id: &str) -> Outcome<String> {
        let before = self.client.find(Locator::Css("#flash")).await.ok();
        self.click(id).await?;
        if let Some(before) = before {
            let deadline = Instant::now() + PATIENCE;
            // A notice of the page that is gone can no longer be read.
            while before.text().await.is_ok() {
                if Instant::now() >= deadline {
                    return Err(format!("the page did not change after clicking {id}").into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(self.appears("#flash").await?.text().await?)
    }

    /// Empties a field and types `text` into it.
    async fn type_into(&self, css: &str, text: &str) -> Outcome<()> {
        let field = self.find(css).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    /// What a field holds now.
    async fn value(&self, css: &str) -> Outcome<String> {
        Ok(self
            .find(css)
            .await?
            .prop("value")
            .await?
            .unwrap_or_default())
    }

    /// An attribute as the page was served (not as changed since).
    async fn attribute(&self, css: &str, name: &str) -> Outcome<String> {
        Ok(self
            .find(css)
            .await?
            .attr(name)
            .await?
            .ok_or_else(|| format!("{css} has no {name} attribute"))?)
    }

    /// A temporary password the page shows (or is about to) to pass on.
    async fn temporary_password(&self, css: &str) -> Outcome<String> {
        self.appears(css).await?;
        let password = self.attribute(css, "value").await?;
        assert_eq!(password.len(), 16, "{password:?}");
        Ok(password)
    }

    async fn text(&self, css: &str) -> Outcome<String> {
        Ok(self.find(css).await?.text().await?)
    }

    async fn title(&self) -> Outcome<String> {
        Ok(self.client.title().await?)
    }

    async fn path(&self) -> Outcome<String> {
        Ok(self.client.current_url().await?.path().to_owned())
    }

    /// Clicks the top bar's link to `path`.
    async fn follow_top_bar(&self, path: &str) -> Outcome<()> {
        self.find(&format!("#site-nav a[href$='{path}']"))
            .await?
            .click()
            .await?;
        Ok(())
    }

    /// Types `password` into `#{form}-form` and submits it with
    /// `#{form}-submit`.
    async fn submit_password(&self, form: &str, password: &str) -> Outcome<()> {
        self.type_into(&format!("#{form}-form input[name=password]"), password)
            .await?;
        self.click(&format!("{form}-submit")).await
    }

    /// Types into the sign-in form already shown and submits it.
    async fn fill_sign_in(&self, email: &str, password: &str) -> Outcome<()> {
        self.type_into("#signin-form input[name=email]", email)
            .await?;
        self.submit_password("signin", password).await
    }

    /// Opens the sign-in page and signs in; where that leads is the test's
    /// to check.
    async fn sign_in(&self, server: &TestServer, email: &str, password: &str) -> Outcome<()> {
        self.goto(&server.at("/signin")).await?;
        self.appears("#signin-form").await?;
        self.fill_sign_in(email, password).await
    }

    /// Signs in as the owner and checks the home page greets them.
    async fn sign_in_as_owner(&self, server: &TestServer) -> Outcome<()> {
        self.sign_in(server, OWNER_EMAIL, OWNER_PASSWORD).await?;
        self.assert_home_as("Olive Owner").await
    }

    /// Signs out from the top bar and checks that the sign-in page shows.
    async fn sign_out(&self) -> Outcome<()> {
        self.click("signout").await?;
        self.appears("#signin-form").await?;
        assert_eq!(self.path().await?, "/signin");
        self.assert_signed_out().await
    }

    /// The home page, with `name` in the top bar.
    async fn assert_home_as(&self, name: &str) -> Outcome<()> {
        self.appears("main ul.links").await?;
        assert_eq!(self.path().await?, "/");
        assert_eq!(self.text("#who-name").await?, name);
        Ok(())
    }

    async fn assert_signed_out(&self) -> Outcome<()> {
        self.assert_absent("#who-name", "someone is signed in")
            .await
    }

    /// Nothing matches `css`; else fails with `what` and the page's address.
    async fn assert_absent(&self, css: &str, what: &str) -> Outcome<()> {
        assert!(
            self.find(css).await.is_err(),
            "{what} on {}",
            self.client.current_url().await?
        );
        Ok(())
    }

    /// n8n's password policy (for "weak", every rule broken), shown once as
    /// the list under the password field of `#{form}-form` with what is
    /// missing marked; the field comes back empty.
    async fn assert_weak_password_refused(&self, form: &str) -> Outcome<()> {
        let error = self.appears("#password-error").await?.text().await?;
        assert_eq!(
            error,
            "This password is too weak: it needs what is marked below."
        );
        let missing = self
            .client
            .execute(
                "return [...document.querySelectorAll('#password-policy li.missing')]\
                 .map(li => li.textContent.trim());",
                vec![],
            )
            .await?;
        assert_eq!(
            missing,
            json!([
                "✗ Missing: 8 to 64 characters",
                "✗ Missing: At least one number",
                "✗ Missing: At least one capital letter"
            ])
        );
        self.assert_password_emptied(form).await
    }

    /// Passwords are never echoed back into `#{form}-form`.
    async fn assert_password_emptied(&self, form: &str) -> Outcome<()> {
        assert_eq!(
            self.value(&format!("#{form}-form input[name=password]"))
                .await?,
            "",
            "a password is echoed into #{form}-form"
        );
        Ok(())
    }

    /// n8n's message for a wrong password: still on /signin, signed out, the
    /// email kept.
    async fn assert_sign_in_refused(&self, email: &str) -> Outcome<()> {
        let error = self.appears("#signin-error").await?;
        assert_eq!(
            error.text().await?,
            "Wrong username or password. Do you have caps lock on?"
        );
        assert_eq!(self.path().await?, "/signin");
        assert_eq!(self.value("#signin-form input[name=email]").await?, email);
        self.assert_password_emptied("signin").await?;
        self.assert_signed_out().await
    }

    /// Signed in as `name` with a temporary password: only the form to choose
    /// a new one, and a top bar with the name and Sign out but no links.
    async fn assert_must_choose_password(&self, name: &str) -> Outcome<()> {
        self.appears("#set-password-form").await?;
        assert_eq!(self.path().await?, "/set-password");
        assert_eq!(self.title().await?, "Choose a new password · Usher");
        assert_eq!(self.text("#who-name").await?, name);
        assert_eq!(self.text("#signout").await?, "Sign out");
        self.assert_absent("#site-nav a", "the navigation offers links")
            .await
    }

    /// `link` leads to a page headed `heading` that explains with `message`,
    /// without the form `form` it once opened.
    async fn assert_dead_link(
        &self,
        link: &str,
        heading: &str,
        message: &str,
        form: &str,
    ) -> Outcome<()> {
        self.goto(link).await?;
        self.appears("#error-message").await?;
        assert_eq!(self.text("main h1").await?, heading);
        assert_eq!(self.text("#error-message").await?, message);
        self.assert_absent(form, "the form is still offered").await
    }

    /// The second step of signing in: a code is asked for, nobody is
    /// signed in yet.
    async fn assert_asked_for_code(&self) -> Outcome<()> {
        self.appears("#code-form").await?;
        assert_eq!(self.title().await?, "Two-factor code · Usher");
        self.assert_signed_out().await
    }

    /// Types a code from the app on the second step and submits it.
    async fn submit_code(&self, code: &str) -> Outcome<()> {
        self.type_into("#mfaCode", code).await?;
        self.click("code-submit").await
    }

    /// Opens "Lost your device?" on the second step and types a recovery
    /// code (`#code-submit` sends it).
    async fn enter_recovery_code(&self, code: &str) -> Outcome<()> {
        self.find("#code-form details summary")
            .await?
            .click()
            .await?;
        self.type_into("#mfaRecoveryCode", code).await
    }

    /// The second step again, saying that the code (or recovery code) was wrong.
    async fn assert_code_refused(&self, message: &str) -> Outcome<()> {
        let error = self.appears("#code-error").await?;
        assert_eq!(error.text().await?, message);
        assert_eq!(self.path().await?, "/signin/code");
        self.assert_asked_for_code().await
    }

    /// Saves what the browser shows as the next numbered screenshot.
    async fn shoot(&mut self, name: &str) -> Outcome<()> {
        self.camera.shoot(&self.client, name).await
    }
}

/// ChromeDriver on a free local port, killed (with the Chromium it started)
/// when dropped, also when the test panics.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    async fn start() -> Self {
        for (program, what) in [(CHROMIUM, "Chromium"), (CHROMEDRIVER, "ChromeDriver")] {
            assert!(
                Path::new(program).exists(),
                "{what} is needed for the browser tests and {program} is missing. \
                 Install it with: {INSTALL}"
            );
        }
        // Port 0: ChromeDriver binds a free port itself and says which, so
        // no other process can take it between our choice and its bind.
        let mut child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(CHROMEDRIVER)
                .arg("--port=0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                // Its own process group, so that Drop can end Chromium too.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {CHROMEDRIVER} ({e}). Install it with: {INSTALL}")
                })
        };
        let port = child
            .stdout
            .take()
            .map(announced_port)
            .unwrap_or_else(|| panic!("no output from {CHROMEDRIVER}"));
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        driver.wait_until_ready().await;
        driver
    }

    async fn wait_until_ready(&mut self) {
        let status = format!("{}/status", self.url);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("{CHROMEDRIVER} stopped at once ({exit}). Reinstall it with: {INSTALL}");
            }
            if let Ok(response) = http.get(&status).send().await
                && let Ok(answer) = response.json::<serde_json::Value>().await
                && answer["value"]["ready"] == true
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{CHROMEDRIVER} did not answer at {status} within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A fresh headless Chromium with its profile in `profile`.
    async fn browser(&self, profile: &Path, extra: &[String]) -> Client {
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,1200",
                "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if let Some(args) = options["args"].as_array_mut() {
            args.extend(extra.iter().map(|a| json!(a)));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!("Chromium did not start through ChromeDriver ({e}). Install both with: {INSTALL}")
            })
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group holds ChromeDriver and the browser processes it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port ChromeDriver says it listens on ("… started successfully on
/// port N."). A thread keeps reading its output after that, so it never
/// blocks on a full pipe.
fn announced_port(output: std::process::ChildStdout) -> u16 {
    use std::io::BufRead as _;
    let (tell, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line
                .split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
            {
                let _ = tell.send(port);
            }
        }
    });
    told.recv_timeout(PATIENCE).unwrap_or_else(|_| {
        panic!("{CHROMEDRIVER} did not say which port it listens on within {PATIENCE:?}")
    })
}

/// Numbered screenshots in the workspace's `target/screenshots/{name}/`
/// (emptied first, so that it shows this run only).
struct Camera {
    folder: PathBuf,
    count: usize,
}

impl Camera {
    fn new(name: &str) -> std::io::Result<Self> {
        let folder = Path::new(SCREENSHOTS).join(name);
        if folder.exists() {
            std::fs::remove_dir_all(&folder)?;
        }
        std::fs::create_dir_all(&folder)?;
        Ok(Self { folder, count: 0 })
    }

    fn folder(&self) -> String {
        self.folder
            .canonicalize()
            .unwrap_or_else(|_| self.folder.clone())
            .display()
            .to_string()
    }

    /// Saves what the browser shows as the next numbered PNG, at the
    /// desktop width and again at a phone's (390 px), after checking at each
    /// width that the page has no serious or critical accessibility
    /// violation (axe-core), nothing scrolls sideways, and no two elements
    /// share an id (a label would then lead to the wrong field).
    async fn shoot(&mut self, browser: &Client, name: &str) -> Outcome<()> {
        let repeated = browser
            .execute(
                "const ids = [...document.querySelectorAll('[id]')].map(e => e.id);\n\
                 return [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];",
                vec![],
            )
            .await?;
        let url = browser.current_url().await?;
        assert_eq!(repeated, json!([]), "ids used twice on {url}");
        self.count += 1;
        for (width, height, suffix) in [(DESKTOP.0, DESKTOP.1, ""), (PHONE.0, PHONE.1, "-phone")] {
            browser.set_window_size(width, height).await?;
            accessible(browser, &format!("{url} at {width}px")).await?;
            let overflow = browser
                .execute(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                    vec![],
                )
                .await?;
            assert!(
                overflow.as_i64().unwrap_or(0) <= 0,
                "{url} scrolls sideways by {overflow}px at {width}px"
            );
            let png = browser.screenshot().await?;
            std::fs::write(
                self.folder
                    .join(format!("{:02}-{name}{suffix}.png", self.count)),
                png,
            )?;
        }
        browser.set_window_size(DESKTOP.0, DESKTOP.1).await?;
        Ok(())
    }
}

/// The window sizes every screenshot is taken at.
const DESKTOP: (u32, u32) = (1280, 1200);
const PHONE: (u32, u32) = (390, 844);

/// axe-core, as `scripts/test` installs it (npm, pinned by
/// crates/server/tests/browser/package-lock.json): read once per test.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/node_modules/axe-core/axe.min.js"
        );
        std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!(
                "axe-core is needed for the browser tests and {path} cannot be read ({e}). \
                 Run scripts/test, or: cd crates/server/tests/browser && npm ci"
            )
        })
    })
}

/// Runs axe-core on the page and fails on any serious or critical
/// violation, naming the rule and the elements.
async fn accessible(browser: &Client, what: &str) -> Outcome<()> {
    browser.execute(axe_source(), vec![]).await?;
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\n\
             axe.run(document, {resultTypes: ['violations']}).then(r => done(\n\
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\n\
                 .map(v => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join('; ')})`)\n\
             ), e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await?;
    assert_eq!(found, json!([]), "accessibility on {what}");
    Ok(())
}

// ---- the users pages (issue 15) ---------------------------------------------

/// The href of the link `css` (relative to the server, as served).
async fn href_of(browser: &Browser, css: &str) -> Outcome<String> {
    browser.attribute(css, "href").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_list_comes_first_and_invite_opens_a_dialog_or_a_page_without_script()
-> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    crate::users_page::seed_users(&server, Db::Sqlite, "team", 12).await;
    let mut browser = Browser::open("users_invite").await?;
    browser.sign_in_as_owner(&server).await?;
    browser.follow_top_bar("/settings/users").await?;

    // The list is the page: the table starts near the top, no form above it.
    let table = browser.appears("#users-table").await?;
    let top = browser
        .client
        .execute(
            "return document.getElementById('users-table').getBoundingClientRect().top;",
            vec![],
        )
        .await?;
    assert!(
        top.as_f64().unwrap_or(1e9) < 300.0,
        "the table starts at {top}"
    );
    assert!(table.text().await?.contains("team00001@example.com"));
    browser.shoot("users-list").await?;

    // With script, Invite opens a dialog; Cancel closes it.
    browser.click("invite-users").await?;
    browser.appears("#invite-dialog[open]").await?;
    browser.shoot("invite-dialog").await?;
    browser
        .find("#invite-dialog [data-close-dialog]")
        .await?
        .click()
        .await?;
    browser
        .assert_absent("#invite-dialog[open]", "the dialog stays open")
        .await?;
    assert_eq!(browser.path().await?, "/settings/users");
    browser.click("invite-users").await?;
    browser.appears("#invite-dialog[open]").await?;
    browser
        .type_into("#invite-emails", "ivy@example.com, kim@example.com")
        .await?;
    let notice = browser.notice_after("invite-submit").await?;
    assert_eq!(notice, "2 people are invited.");
    assert_eq!(browser.path().await?, "/settings/users");
    browser.appears("#invite-results input.invite-link").await?;
    browser.shoot("invited").await?;
    // A reload shows the list, not the links again, and invites no one twice.
    browser.client.refresh().await?;
    browser.appears("#users-table").await?;
    browser
        .assert_absent("#invite-results", "the links show again on reload")
        .await?;

    // Without script the same button is a link to a page with the form; a
    // refused form keeps what was typed and ties the error to the field.
    let invite_page = href_of(&browser, "#invite-users").await?;
    assert_eq!(invite_page, "/settings/users/invite");
    browser.goto(&server.at(&invite_page)).await?;
    browser.appears("#invite-form").await?;
    assert_eq!(browser.title().await?, "Invite users · Usher");
    browser
        .type_into("#invite-emails", "not an address")
        .await?;
    browser.click("invite-submit").await?;
    browser.appears("#invite-error").await?;
    assert_eq!(browser.value("#invite-emails").await?, "not an address");
    browser.shoot("invite-page-refused").await?;

    let add_page = "/settings/users/add";
    browser.goto(&server.at(add_page)).await?;
    browser.appears("#create-form").await?;
    browser
        .type_into("#create-lines", "lea@example.com, Lea, Stone")
        .await?;
    browser.click("create-submit").await?;
    browser
        .appears("#created-results input.temp-password")
        .await?;
    assert_eq!(
        browser.text("#flash").await?,
        "lea@example.com is added: pass on the temporary password below."
    );
    browser.shoot("added").await?;
    browser.finish(server).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_s_menu_and_role_dropdown_act_on_that_user() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let mia = server
        .add_user("mia@example.com", "Member1pass", Role::Member)
        .await;
    let mut browser = Browser::open("users_rows").await?;
    browser.sign_in_as_owner(&server).await?;
    browser.goto(&server.at("/settings/users?q=mia")).await?;
    let mia_row = user_row("mia@example.com");
    browser.appears(&mia_row).await?;

    // The role dropdown sends its form when changed; the list stays as it was.
    browser
        .find(&format!("{mia_row} select[name=role]"))
        .await?
        .select_by_value("global:admin")
        .await?;
    let notice = browser.appears("#flash").await?.text().await?;
    assert_eq!(notice, "Mia Member is now an admin.");
    assert_eq!(browser.client.current_url().await?.query(), Some("q=mia"));
    assert_eq!(
        browser
            .value(&format!("{mia_row} select[name=role]"))
            .await?,
        "global:admin"
    );
    browser.shoot("role-changed").await?;

    // The "…" menu opens without script (a <details>) with n8n's actions.
    browser
        .find(&format!("{mia_row} details.row-menu summary"))
        .await?
        .click()
        .await?;
    let menu = browser
        .appears(&format!("{mia_row} details.row-menu[open] .menu"))
        .await?
        .text()
        .await?;
    for action in [
        "Open",
        "Copy password reset link",
        "Force password reset",
        "Delete…",
    ] {
        assert!(menu.contains(action), "{action} is missing from {menu:?}");
    }
    browser.shoot("row-menu").await?;

    // Force reset from the menu asks first, then shows the password once on
    // Mia's page.
    browser
        .find(&format!(
            "{mia_row} .menu button[formaction$='/force-reset']"
        ))
        .await?
        .click()
        .await?;
    let question = browser.client.get_alert_text().await?;
    assert!(question.contains("Mia Member"), "{question}");
    browser.client.accept_alert().await?;
    browser.temporary_password("#temporary-password").await?;
    assert_eq!(browser.path().await?, format!("/settings/users/{}", mia.id));
    browser.shoot("forced-from-menu").await?;

    // Delete in the menu leads to the danger zone of the user's page.
    browser.goto(&server.at("/settings/users?q=mia")).await?;
    let delete = href_of(&browser, &format!("{mia_row} .menu a.danger-text")).await?;
    browser.goto(&server.at(&delete)).await?;
    browser.appears("#danger-zone #delete-user-form").await?;
    browser
        .client
        .execute(
            "document.getElementById('danger-zone').scrollIntoView()",
            vec![],
        )
        .await?;
    browser.shoot("danger-zone").await?;
    browser.finish(server).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_hands_their_work_to_someone_found_by_a_search() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let ann = server
        .add_user("ann@example.com", "Member1pass", Role::Member)
        .await;
    for email in ["bob.marsh@example.com", "bob.stone@example.com"] {
        server.add_user(email, "Member1pass", Role::Member).await;
    }
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
    let ann_api = server.signed_in("ann@example.com", "Member1pass").await;
    let made = ann_api
        .post(server.at("/rest/workflows"))
        .json(&json!({"name": "Ann flow"}))
        .send()
        .await?;
    assert_eq!(made.status(), reqwest::StatusCode::OK);
    let mut browser = Browser::open("users_transfer").await?;
    browser.sign_in_as_owner(&server).await?;
    browser
        .goto(&server.at(&format!("/settings/users/{}", ann.id)))
        .await?;
    browser.appears("#transfer-to").await?;

    // Typing searches: the suggestions are the people who match.
    browser.type_into("#transfer-to", "bob").await?;
    let found = browser
        .client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(
            "#transfer-people option[value='bob.stone@example.com']",
        ))
        .await;
    assert!(found.is_ok(), "no suggestion for bob");
    browser
        .client
        .execute(
            "document.getElementById('danger-zone').scrollIntoView()",
            vec![],
        )
        .await?;
    browser.shoot("transfer-search").await?;

    // "bob" fits two people: the page lists them (this works without script).
    browser.click("delete-user").await?;
    browser.client.accept_alert().await?;
    browser.appears("#transfer-candidates").await?;
    assert_eq!(browser.value("#transfer-to").await?, "bob");
    browser.shoot("transfer-candidates").await?;
    browser
        .find("#transfer-candidates input[value='bob.marsh@example.com']")
        .await?
        .click()
        .await?;
    browser.click("delete-user").await?;
    browser.client.accept_alert().await?;
    let notice = browser.appears("#flash").await?.text().await?;
    assert_eq!(
        notice,
        "Ann Lee is deleted; their 1 workflow and 0 credentials now belong to Bob Marsh."
    );
    assert_eq!(browser.path().await?, "/settings/users");
    browser.shoot("deleted-with-transfer").await?;
    browser.finish(server).await?;
    Ok(())
}

/// A hundred thousand users, seeded in the database in a second or two: the
/// list stays small and quick to search, filter and page, and any user
/// opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_users_are_searched_filtered_paged_and_opened() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let started = Instant::now();
    crate::users_page::seed_users(&server, Db::Sqlite, "many", 100_000).await;
    server
        .storage
        .execute_sql("UPDATE users SET role = 'global:admin' WHERE email LIKE 'many%0@example.com'")
        .await;
    println!("seeded 100,000 users in {:?}", started.elapsed());
    let mut browser = Browser::open("users_100k").await?;
    browser.sign_in_as_owner(&server).await?;
    browser.follow_top_bar("/settings/users").await?;
    browser.appears("#users-table").await?;
    let size = browser
        .client
        .execute("return document.documentElement.outerHTML.length;", vec![])
        .await?;
    assert!(size.as_u64().unwrap_or(u64::MAX) < 100_000, "{size} bytes");
    let rows = browser
        .client
        .execute(
            "return document.querySelectorAll('#users-table tbody tr').length;",
            vec![],
        )
        .await?;
    assert_eq!(rows, json!(50));
    browser.shoot("first-page").await?;

    // Search.
    browser.type_into("#user-search", "many04242").await?;
    browser.click("filter-apply").await?;
    browser.appears(&user_row("many04242@example.com")).await?;
    assert_eq!(
        browser.client.current_url().await?.query(),
        Some("q=many04242&sort=name")
    );
    browser.shoot("search").await?;

    // Filter: admins, newest first (the selects send the form themselves).
    browser.goto(&server.at("/settings/users")).await?;
    browser.appears("#filter-role").await?;
    browser
        .find("#filter-role")
        .await?
        .select_by_value("admin")
        .await?;
    browser.appears(&user_row("many00010@example.com")).await?;
    browser
        .find("#filter-sort")
        .await?
        .select_by_value("-created")
        .await?;
    browser.appears(&user_row("many99990@example.com")).await?;
    browser.shoot("filtered").await?;

    // Next page, kept filtered.
    browser.click("page-next").await?;
    browser.appears(&user_row("many99490@example.com")).await?;
    browser.appears("#page-previous").await?;
    browser.shoot("next-page").await?;

    // Open a user.
    browser
        .find(&format!("{} .user-link", user_row("many99490@example.com")))
        .await?
        .click()
        .await?;
    browser.appears("#danger-zone").await?;
    assert_eq!(browser.text("#user-email").await?, "many99490@example.com");
    browser.shoot("user").await?;
    println!("walked in {:?}", started.elapsed());
    browser.finish(server).await?;
    Ok(())
}

// ---- LDAP (issue 18) ----------------------------------------------------------

/// The owner sets up the directory on `/settings/ldap` as a person would: a
/// mistake is shown beside its field with everything else kept, a save
/// redirects with a notice, the test and a dry run say what they found;
/// then a directory user signs in with their login ID on the sign-in page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sets_up_ldap_and_a_directory_user_signs_in_with_their_login_id() -> TestResult {
    use crate::slapd::{self, Slapd};
    let directory = Slapd::start().await;
    let server = TestServer::start(Db::Sqlite).await;
    server.owner().await;
    let mut browser = Browser::open("ldap").await?;
    browser.sign_in_as_owner(&server).await?;
    browser.follow_top_bar("/settings/ldap").await?;
    browser.appears("#ldap-form").await?;
    assert_eq!(browser.title().await?, "LDAP · Usher");
    browser.shoot("ldap-empty").await?;

    browser.find("#loginEnabled").await?.click().await?;
    for (field, value) in [
        ("connectionUrl", "127.0.0.1".to_owned()),
        ("connectionPort", "not a port".to_owned()),
        ("baseDn", slapd::PEOPLE.to_owned()),
        ("bindingAdminDn", slapd::ADMIN_DN.to_owned()),
        ("bindingAdminPassword", slapd::ADMIN_PASSWORD.to_owned()),
        ("loginIdAttribute", "uid".to_owned()),
        ("emailAttribute", "mail".to_owned()),
        ("firstNameAttribute", "givenName".to_owned()),
        ("lastNameAttribute", "sn".to_owned()),
        ("ldapIdAttribute", "entryUUID".to_owned()),
        ("userFilter", "(employeeType=staff)".to_owned()),
    ] {
        browser.type_into(&format!("#{field}"), &value).await?;
    }
    browser.click("ldap-save").await?;
    let error = browser
        .appears("#connectionPort-error")
        .await?
        .text()
        .await?;
    assert_eq!(error, "The port must be a whole number.");
    assert_eq!(browser.value("#connectionUrl").await?, "127.0.0.1");
    assert_eq!(browser.value("#userFilter").await?, "(employeeType=staff)");
    assert_eq!(browser.value("#bindingAdminPassword").await?, "");
    assert!(browser.find("#loginEnabled").await?.is_selected().await?);
    browser.shoot("ldap-refused").await?;

    browser
        .type_into("#connectionPort", &directory.port.to_string())
        .await?;
    browser
        .type_into("#bindingAdminPassword", slapd::ADMIN_PASSWORD)
        .await?;
    let saved = browser.notice_after("ldap-save").await?;
    assert!(
        saved.starts_with("The directory settings are saved"),
        "{saved}"
    );
    assert_eq!(browser.path().await?, "/settings/ldap");
    let tested = browser.notice_after("ldap-test").await?;
    assert!(tested.starts_with("The connection works"), "{tested}");
    let dry = browser.notice_after("ldap-dry-run").await?;
    assert!(dry.contains("2 would be added"), "{dry}");
    browser.appears("#ldap-runs").await?;
    browser.shoot("ldap-saved").await?;

    browser.sign_out().await?;
    browser.appears("#ldap-hint").await?;
    browser.shoot("signin-ldap").await?;
    browser.fill_sign_in("ann", slapd::ANN_PASSWORD).await?;
    browser.assert_home_as("Ann Lee").await?;
    browser.follow_top_bar("/settings/personal").await?;
    browser.appears("#password-directory").await?;
    browser.shoot("personal-ldap").await?;
    browser.finish(server).await
}
