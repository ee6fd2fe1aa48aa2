//! The first run in a real browser: headless Chromium driven through
//! ChromeDriver (Debian's `chromium` and `chromium-driver` packages). The
//! test clicks and types as a person would, checks what the pages show, and
//! keeps a screenshot of every page in `target/screenshots/first_run/`.
//!
//! A machine without Chromium or ChromeDriver fails the test with a message
//! saying what to install; it is never skipped.

use std::{
    error::Error,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::harness::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get install -y chromium chromium-driver";
const SCREENSHOTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/screenshots/first_run"
);
/// How long a page may take to show what the test waits for.
const PATIENCE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owner_sets_up_changes_their_name_signs_out_and_back_in() -> TestResult {
    let server = TestServer::start(Db::Sqlite).await;
    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir()?;
    let browser = driver.browser(profile.path()).await;
    let mut camera = Camera::new()?;

    // First visit: every page leads to set-up.
    browser.goto(&format!("{}/", server.url)).await?;
    appears(&browser, "#setup-form").await?;
    assert_eq!(path(&browser).await?, "/setup");
    assert_eq!(browser.title().await?, "Set up owner account · Usher");
    assert!(
        browser.find(Locator::Id("who-name")).await.is_err(),
        "nobody is signed in yet"
    );
    camera.shoot(&browser, "setup").await?;

    // A weak password: the page comes back with n8n's policy messages beside
    // the field, keeps what was typed except the password, creates nobody.
    type_into(&browser, "#setup-form input[name=email]", OWNER_EMAIL).await?;
    type_into(&browser, "#setup-form input[name=firstName]", "Olive").await?;
    type_into(&browser, "#setup-form input[name=lastName]", "Owner").await?;
    type_into(&browser, "#setup-form input[name=password]", "short").await?;
    browser
        .find(Locator::Id("setup-submit"))
        .await?
        .click()
        .await?;
    let problems = appears(&browser, "#password-error").await?.text().await?;
    for message in [
        "Password must be 8 to 64 characters long.",
        "Password must contain at least 1 number.",
        "Password must contain at least 1 uppercase letter.",
    ] {
        assert!(
            problems.contains(message),
            "{message:?} is missing from {problems:?}"
        );
    }
    assert_eq!(path(&browser).await?, "/setup");
    assert_eq!(
        value(&browser, "#setup-form input[name=email]").await?,
        OWNER_EMAIL
    );
    assert_eq!(
        value(&browser, "#setup-form input[name=firstName]").await?,
        "Olive"
    );
    assert_eq!(
        value(&browser, "#setup-form input[name=password]").await?,
        "",
        "passwords are never echoed"
    );
    camera.shoot(&browser, "weak-password").await?;

    // A good password: the owner exists and is signed in, at home.
    type_into(&browser, "#setup-form input[name=password]", OWNER_PASSWORD).await?;
    browser
        .find(Locator::Id("setup-submit"))
        .await?
        .click()
        .await?;
    let who = appears(&browser, "#who-name").await?;
    assert_eq!(path(&browser).await?, "/");
    assert_eq!(who.text().await?, "Olive Owner");
    assert_eq!(text(&browser, "main h1").await?, "Welcome, Olive");
    camera.shoot(&browser, "owner-signed-in").await?;

    // Personal settings, reached from the top bar: the profile is filled in.
    browser
        .find(Locator::Css(".topbar nav a[href$='/settings/personal']"))
        .await?
        .click()
        .await?;
    appears(&browser, "#profile-form").await?;
    assert_eq!(path(&browser).await?, "/settings/personal");
    assert_eq!(
        value(&browser, "#profile-form input[name=firstName]").await?,
        "Olive"
    );
    assert_eq!(
        value(&browser, "#profile-form input[name=lastName]").await?,
        "Owner"
    );
    assert_eq!(
        value(&browser, "#profile-form input[name=email]").await?,
        OWNER_EMAIL
    );
    camera.shoot(&browser, "personal-settings").await?;

    // A new first name, saved without a password (the email is unchanged):
    // the notice says so and the top bar shows the new name at once.
    type_into(&browser, "#profile-form input[name=firstName]", "Oriana").await?;
    browser
        .find(Locator::Id("profile-save"))
        .await?
        .click()
        .await?;
    let notice = appears(&browser, "#notice").await?;
    assert_eq!(notice.text().await?, "Your details are saved.");
    assert_eq!(path(&browser).await?, "/settings/personal");
    assert_eq!(text(&browser, "#who-name").await?, "Oriana Owner");
    assert_eq!(
        value(&browser, "#profile-form input[name=firstName]").await?,
        "Oriana"
    );
    camera.shoot(&browser, "name-changed").await?;

    // The name stays changed on the next page too.
    browser
        .find(Locator::Css(".topbar a.brand"))
        .await?
        .click()
        .await?;
    appears(&browser, "main ul.links").await?;
    assert_eq!(path(&browser).await?, "/");
    assert_eq!(text(&browser, "main h1").await?, "Welcome, Oriana");
    assert_eq!(text(&browser, "#who-name").await?, "Oriana Owner");

    // Sign out: the sign-in page shows, nobody in the top bar.
    browser.find(Locator::Id("signout")).await?.click().await?;
    appears(&browser, "#signin-form").await?;
    assert_eq!(path(&browser).await?, "/signin");
    assert_eq!(text(&browser, "main h1").await?, "Sign in");
    assert_eq!(text(&browser, "main .notice").await?, "You are signed out.");
    assert!(
        browser.find(Locator::Id("who-name")).await.is_err(),
        "still signed in after sign-out"
    );
    camera.shoot(&browser, "signed-out").await?;

    // A wrong password: n8n's message, the email kept, still signed out.
    type_into(&browser, "#signin-form input[name=email]", OWNER_EMAIL).await?;
    type_into(
        &browser,
        "#signin-form input[name=password]",
        "Wrong1password",
    )
    .await?;
    browser
        .find(Locator::Id("signin-submit"))
        .await?
        .click()
        .await?;
    let error = appears(&browser, "#signin-error").await?;
    assert_eq!(
        error.text().await?,
        "Wrong username or password. Do you have caps lock on?"
    );
    assert_eq!(path(&browser).await?, "/signin");
    assert_eq!(
        value(&browser, "#signin-form input[name=email]").await?,
        OWNER_EMAIL
    );
    assert_eq!(
        value(&browser, "#signin-form input[name=password]").await?,
        ""
    );
    assert!(
        browser.find(Locator::Id("who-name")).await.is_err(),
        "signed in with a wrong password"
    );
    camera.shoot(&browser, "wrong-password").await?;

    // The right password: signed in again, at home, with the new name.
    type_into(
        &browser,
        "#signin-form input[name=password]",
        OWNER_PASSWORD,
    )
    .await?;
    browser
        .find(Locator::Id("signin-submit"))
        .await?
        .click()
        .await?;
    let who = appears(&browser, "#who-name").await?;
    assert_eq!(path(&browser).await?, "/");
    assert_eq!(who.text().await?, "Oriana Owner");
    assert_eq!(text(&browser, "main h1").await?, "Welcome, Oriana");
    camera.shoot(&browser, "signed-in-again").await?;

    browser.close().await?;
    server.stop().await?;
    println!("screenshots of the first run: {}", camera.folder());
    Ok(())
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
                "{what} is needed for the browser test and {program} is missing. \
                 Install it with: {INSTALL}"
            );
        }
        let port = free_port();
        let child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that Drop can end Chromium too.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {CHROMEDRIVER} ({e}). Install it with: {INSTALL}")
                })
        };
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
    async fn browser(&self, profile: &Path) -> Client {
        let options = json!({
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
                format!("--user-data-dir={}", profile.display()),
            ],
        });
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Numbered screenshots in the workspace's `target/screenshots/first_run/`
/// (emptied first, so that it shows this run only).
struct Camera {
    count: usize,
}

impl Camera {
    fn new() -> std::io::Result<Self> {
        let folder = Path::new(SCREENSHOTS);
        if folder.exists() {
            std::fs::remove_dir_all(folder)?;
        }
        std::fs::create_dir_all(folder)?;
        Ok(Self { count: 0 })
    }

    fn folder(&self) -> String {
        Path::new(SCREENSHOTS)
            .canonicalize()
            .map_or_else(|_| SCREENSHOTS.to_owned(), |p| p.display().to_string())
    }

    /// Saves what the browser shows as the next numbered PNG, after checking
    /// that no two elements on the page share an id (a label would then lead
    /// to the wrong field).
    async fn shoot(&mut self, browser: &Client, name: &str) -> Result<(), Box<dyn Error>> {
        let repeated = browser
            .execute(
                "const ids = [...document.querySelectorAll('[id]')].map(e => e.id);\n\
                 return [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];",
                vec![],
            )
            .await?;
        assert_eq!(
            repeated,
            json!([]),
            "ids used twice on {}",
            browser.current_url().await?
        );
        self.count += 1;
        let png = browser.screenshot().await?;
        let file = Path::new(SCREENSHOTS).join(format!("{:02}-{name}.png", self.count));
        std::fs::write(&file, png)?;
        Ok(())
    }
}

/// Waits for `css` to show up; a timeout names the page the browser is on.
async fn appears(browser: &Client, css: &str) -> Result<Element, Box<dyn Error>> {
    match browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => Ok(element),
        Err(error) => {
            let url = browser
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let page = browser.source().await.unwrap_or_default();
            Err(format!("{css} did not appear on {url} ({error}); the page is:\n{page}").into())
        }
    }
}

/// Empties a field and types `text` into it.
async fn type_into(browser: &Client, css: &str, text: &str) -> Result<(), Box<dyn Error>> {
    let field = browser.find(Locator::Css(css)).await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

/// What a field holds now.
async fn value(browser: &Client, css: &str) -> Result<String, Box<dyn Error>> {
    Ok(browser
        .find(Locator::Css(css))
        .await?
        .prop("value")
        .await?
        .unwrap_or_default())
}

async fn text(browser: &Client, css: &str) -> Result<String, Box<dyn Error>> {
    Ok(browser.find(Locator::Css(css)).await?.text().await?)
}

async fn path(browser: &Client) -> Result<String, Box<dyn Error>> {
    Ok(browser.current_url().await?.path().to_owned())
}
