//! Runs the real server in-process on 127.0.0.1:0, on SQLite or on a fresh
//! PostgreSQL database, with a clock the test can move.
//!
//! PostgreSQL comes from `USHER_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a test that cannot reach
//! it fails with a message saying how to get one. It is never skipped.

use std::{collections::HashMap, sync::Arc};

use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::{Value, json};
use sqlx::{Connection as _, PgConnection};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use usher_domain::{
    clock::{MINUTE, ShiftableClock},
    model::{Email, Role, User, UserId},
    password::PasswordHasher,
    secret::Secret,
    store::UserStore as _,
};
use usher_server::{AppState, Internals, Settings, SqlStore, settings::Env};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "Owner1password";
pub const SMTP_USER: &str = "mailer";
pub const SMTP_PASSWORD: &str = "Smtp-secret-1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each named test once on SQLite and once on PostgreSQL. A test is an
/// ordinary `async fn name(db: Db) -> TestResult` beside the call; this only
/// makes the two `#[tokio::test]` wrappers, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> $crate::harness::TestResult {
                super::$name($crate::harness::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> $crate::harness::TestResult {
                super::$name($crate::harness::Db::Postgres).await
            }
        }
    )*};
}

/// Where a test's data lives; kept alive as long as any server uses it.
pub struct Storage {
    folder: tempfile::TempDir,
    pg_database: Option<String>,
}

fn admin_url() -> String {
    std::env::var("USHER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl Storage {
    pub async fn new(db: Db) -> Self {
        usher_server::install_tls_provider();
        let folder =
            tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp folder: {e}"));
        let pg_database =
            match db {
                Db::Sqlite => None,
                Db::Postgres => {
                    let name = format!("usher_t_{}", uuid::Uuid::now_v7().simple());
                    let mut admin = PgConnection::connect(&admin_url()).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is needed for the tests and does not answer at {} ({e}). \
                         Run scripts/test, which starts one, or install PostgreSQL \
                         (apt-get install postgresql) or set USHER_TEST_DATABASE_URL.",
                        admin_url()
                    )
                });
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .execute(&mut admin)
                        .await
                        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                    Some(name)
                }
            };
        Self {
            folder,
            pg_database,
        }
    }

    /// Ends every server connection to the test's PostgreSQL database, as a
    /// database restart does. Panics on SQLite, which has no server.
    pub async fn cut_connections(&self) {
        let name = self
            .pg_database
            .as_ref()
            .unwrap_or_else(|| panic!("only a PostgreSQL database has connections to cut"));
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL: {e}"));
        let ended: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .fetch_all(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot end connections: {e}"));
        assert!(!ended.is_empty(), "the server had no connections to end");
    }

    /// A connection of the test's own to its PostgreSQL database. Panics on
    /// SQLite.
    pub async fn postgres(&self) -> PgConnection {
        let name = self
            .pg_database
            .as_ref()
            .unwrap_or_else(|| panic!("only a PostgreSQL test has a PostgreSQL database"));
        let base = admin_url();
        let url = format!(
            "{}/{name}",
            base.rsplit_once('/').map_or("", |(base, _)| base)
        );
        PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test database: {e}"))
    }

    /// Runs one statement on the test's database directly, as an operator
    /// with a SQL prompt would, past every running instance.
    pub async fn execute_sql(&self, sql: &str) {
        let done = match &self.pg_database {
            Some(_) => {
                let mut connection = self.postgres().await;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut connection)
                    .await
                    .map(drop)
            }
            None => {
                let path = self.folder.path().join(".usher/database.sqlite");
                let mut connection =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap_or_else(|e| panic!("cannot open the test database: {e}"));
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut connection)
                    .await
                    .map(drop)
            }
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Asks `probe` until it answers `expected` (or 3 s have passed), and
    /// returns its last answer: for what follows a change made past every
    /// running instance (`execute_sql`). On PostgreSQL the instances hear of
    /// such a change by a notification a moment after it commits; a change
    /// made through Usher returns only once every instance has heard, but one
    /// made at a SQL prompt cannot wait for them.
    pub async fn soon<T, F, Fut>(&self, expected: T, mut probe: F) -> T
    where
        T: PartialEq,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let answer = probe().await;
            if answer == expected || std::time::Instant::now() > deadline {
                return answer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The data folder (`N8N_USER_FOLDER`), for running the binary on it.
    pub fn folder(&self) -> &std::path::Path {
        self.folder.path()
    }

    /// The environment a server on this storage starts with.
    pub fn env(&self) -> HashMap<String, String> {
        let mut vars = HashMap::new();
        vars.insert(
            "N8N_USER_FOLDER".into(),
            self.folder.path().display().to_string(),
        );
        vars.insert("N8N_SECURE_COOKIE".into(), "false".into());
        vars.insert("N8N_LISTEN_ADDRESS".into(), "127.0.0.1".into());
        if let Some(name) = &self.pg_database {
            let url = url_parts(&admin_url());
            vars.insert("DB_TYPE".into(), "postgresdb".into());
            vars.insert("DB_POSTGRESDB_HOST".into(), url.host);
            vars.insert("DB_POSTGRESDB_PORT".into(), url.port);
            vars.insert("DB_POSTGRESDB_USER".into(), url.user);
            vars.insert("DB_POSTGRESDB_PASSWORD".into(), url.password);
            vars.insert("DB_POSTGRESDB_DATABASE".into(), name.clone());
        }
        vars
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let Some(name) = self.pg_database.take() else {
            return;
        };
        // Drop runs outside async; a short thread with its own runtime
        // removes the database (FORCE ends connections still open).
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut admin)
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

struct UrlParts {
    host: String,
    port: String,
    user: String,
    password: String,
}

/// Just enough URL parsing for `postgres://user[:password]@host[:port]/db`.
fn url_parts(url: &str) -> UrlParts {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (credentials, location) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let host_port = location.split('/').next().unwrap_or("127.0.0.1");
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "5432"));
    UrlParts {
        host: host.into(),
        port: port.into(),
        user: user.into(),
        password: password.into(),
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub url: String,
    pub state: AppState,
    /// The server's own database handle: to look into the database, and to
    /// close it under the running server.
    pub store: SqlStore,
    pub clock: Arc<ShiftableClock>,
    pub storage: Arc<Storage>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, &[]).await
    }

    pub async fn start_with(db: Db, vars: &[(&str, &str)]) -> Self {
        Self::start_on(Arc::new(Storage::new(db).await), vars).await
    }

    /// Another instance on the same database (as behind a load balancer).
    pub async fn sibling(&self, vars: &[(&str, &str)]) -> Self {
        Self::start_on(self.storage.clone(), vars).await
    }

    pub async fn start_on(storage: Arc<Storage>, vars: &[(&str, &str)]) -> Self {
        Self::try_start_on(storage, vars, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// A start on `storage` that may be refused.
    pub async fn try_start(
        storage: Arc<Storage>,
        vars: &[(&str, &str)],
    ) -> Result<Self, usher_server::StartError> {
        Self::try_start_on(storage, vars, Vec::new()).await
    }

    /// Like [`Self::sibling`], but a refused start is the test's to inspect.
    pub async fn try_sibling(
        &self,
        vars: &[(&str, &str)],
    ) -> Result<Self, usher_server::StartError> {
        Self::try_start_on(self.storage.clone(), vars, Vec::new()).await
    }

    /// A server that sends email through `sink` (and trusts its certificate).
    pub async fn start_with_mail(
        db: Db,
        sink: &crate::mail_sink::SmtpSink,
        security: crate::mail_sink::Security,
        vars: &[(&str, &str)],
    ) -> Self {
        use crate::mail_sink::Security;
        let port = sink.port().to_string();
        let (ssl, starttls) = match security {
            Security::Plain => ("false", "false"),
            Security::StartTls => ("false", "true"),
            Security::ImplicitTls => ("true", "false"),
        };
        let mut all = vec![
            ("N8N_EMAIL_MODE", "smtp"),
            ("N8N_SMTP_HOST", "localhost"),
            ("N8N_SMTP_PORT", port.as_str()),
            ("N8N_SMTP_SSL", ssl),
            ("N8N_SMTP_STARTTLS", starttls),
            ("N8N_SMTP_USER", SMTP_USER),
            ("N8N_SMTP_PASS", SMTP_PASSWORD),
            ("N8N_SMTP_SENDER", "Usher Test <usher@example.com>"),
        ];
        all.extend_from_slice(vars);
        let storage = Arc::new(Storage::new(db).await);
        Self::try_start_on(storage, &all, vec![sink.certificate_pem()])
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    async fn try_start_on(
        storage: Arc<Storage>,
        vars: &[(&str, &str)],
        trusted_certificates: Vec<String>,
    ) -> Result<Self, usher_server::StartError> {
        // Bound first, so that links in emails and answers carry the real
        // address (a test that sets N8N_EDITOR_BASE_URL keeps its own).
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local addr: {e}"));
        let mut env = storage.env();
        env.insert("N8N_EDITOR_BASE_URL".into(), format!("http://{address}"));
        for (name, value) in vars {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        if vars.iter().any(|(name, _)| *name == "N8N_PATH")
            && !vars.iter().any(|(name, _)| *name == "N8N_EDITOR_BASE_URL")
        {
            env.remove("N8N_EDITOR_BASE_URL");
        }
        let settings = Settings::from_env(&Env::from_map(&env))?;
        let clock = Arc::new(ShiftableClock::default());
        let internals = Internals {
            clock: clock.clone(),
            trusted_certificates,
        };
        let store = usher_server::open_store(&settings).await?;
        let state = usher_server::build_on(store.clone(), settings, internals).await?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(usher_server::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        let base_path = state.settings().base_path.clone();
        Ok(Self {
            url: format!("http://{address}{base_path}"),
            state,
            store,
            clock,
            storage,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops accepting and waits for requests in flight.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| panic!("server task: {e}")),
            None => Ok(()),
        }
    }

    /// Moves the clock to one second past the start of the next window of
    /// `window` ms, so that attempts in a test fall in one fixed window.
    pub fn align_to_window(&self, window: i64) {
        let now = self.state.usher().now();
        self.clock.advance(window - now.rem_euclid(window) + 1000);
    }

    pub fn advance_minutes(&self, minutes: i64) {
        self.clock.advance(minutes * MINUTE);
    }

    /// A browser-like client: keeps cookies, does not follow redirects (so
    /// tests see where pages lead).
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"))
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Sets up the owner and returns a client signed in as the owner.
    pub async fn owner(&self) -> Client {
        let client = self.client();
        let response = client
            .post(self.at("/rest/owner/setup"))
            .json(&json!({
                "email": OWNER_EMAIL, "firstName": "Olive", "lastName": "Owner", "password": OWNER_PASSWORD
            }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("owner setup: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "owner setup failed");
        client
    }

    /// Adds an active user directly in the store (invitations come later).
    pub async fn add_user(&self, email: &str, password: &str, role: Role) -> User {
        let hasher = PasswordHasher::new(1).unwrap_or_else(|e| panic!("hasher: {e}"));
        let hash = hasher
            .hash(&Secret::new(password))
            .await
            .unwrap_or_else(|e| panic!("hash: {e}"));
        self.add_user_with_hash(email, &hash, role).await
    }

    pub async fn add_user_with_hash(&self, email: &str, hash: &str, role: Role) -> User {
        let now = self.state.usher().now();
        let user = User {
            id: UserId::new(),
            email: Some(Email::parse(email).unwrap_or_else(|e| panic!("email: {e}"))),
            email_verified: true,
            first_name: "Mia".into(),
            last_name: "Member".into(),
            role,
            password_hash: Some(hash.to_owned()),
            password_change_required: false,
            mfa_enabled: false,
            invited_by: None,
            invited_at: None,
            created_at: now,
            updated_at: now,
            last_active_at: None,
            ldap_id: None,
            disabled: false,
        };
        self.store
            .insert_user(&user)
            .await
            .unwrap_or_else(|e| panic!("insert: {e}"));
        user
    }

    /// A client signed in as `email`.
    pub async fn signed_in(&self, email: &str, password: &str) -> Client {
        let client = self.client();
        let response = login(&client, self, email, password).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "sign-in of {email} failed"
        );
        client
    }
}

pub async fn login(
    client: &Client,
    server: &TestServer,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(server.at("/rest/login"))
        .json(&json!({"emailOrLdapLoginId": email, "password": password}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("login request: {e}"))
}

/// Signs in and returns the `name=value` pair to send as a `cookie` header.
pub async fn session_cookie(server: &TestServer, email: &str, password: &str) -> String {
    let response = login(&server.client(), server, email, password).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "sign-in of {email} failed"
    );
    let set = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    set.split(';').next().unwrap_or_default().to_owned()
}

/// The code an authenticator app shows for `secret` at the server's time.
pub fn code_at(server: &TestServer, secret: &str) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret)
        .map(|s| s.as_ref().to_vec())
        .unwrap_or_default();
    let totp = totp_rs::Builder::new()
        .with_secret(bytes)
        .with_account_name("test".to_owned())
        .build()
        .unwrap_or_else(|e| panic!("totp: {e}"));
    totp.generate(u64::try_from(server.state.usher().now() / 1000).unwrap_or(0))
        .to_string()
}

/// Enrols the signed-in `client`; returns the secret and the recovery codes.
pub async fn enrol(server: &TestServer, client: &Client) -> (String, Vec<String>) {
    let qr = body(
        client
            .get(server.at("/rest/mfa/qr"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    let secret = qr["data"]["secret"].as_str().unwrap_or_default().to_owned();
    assert!(
        qr["data"]["qrCode"]
            .as_str()
            .unwrap_or_default()
            .starts_with("otpauth://totp/")
    );
    let codes: Vec<String> = qr["data"]["recoveryCodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    assert_eq!(codes.len(), 10);
    let enabled = client
        .post(server.at("/rest/mfa/enable"))
        .json(&json!({"mfaCode": code_at(server, &secret)}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(enabled.status(), StatusCode::OK);
    // The code just used is spent: later calls in a test use the next window.
    server.advance_minutes(1);
    (secret, codes)
}

/// A new API key of the signed-in `client`, as shown once.
pub async fn new_key(server: &TestServer, client: &Client, label: &str, scopes: &[&str]) -> String {
    let created = client
        .post(server.at("/rest/api-keys"))
        .json(&json!({"label": label, "scopes": scopes, "expiresAt": null}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("key: {e}"));
    assert_eq!(created.status(), StatusCode::OK, "key creation failed");
    body(created).await["data"]["rawApiKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The form token the pages show `client` (in every page's
/// `<meta name="usher-form-token">`), as a browser's forms carry it.
pub async fn form_token(server: &TestServer, client: &Client) -> String {
    // Any page will do; `/signout` shows one to everyone, whatever holds
    // them (a temporary password, two-factor set-up).
    let page = client
        .get(server.at("/signout"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("a page for the form token: {e}"))
        .text()
        .await
        .unwrap_or_default();
    page.split(r#"<meta name="usher-form-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no form token on the page: {page}"))
        .to_owned()
}

/// A post of a page's form by `client`, with the form token, as a browser
/// sends it.
pub async fn page_form(
    server: &TestServer,
    client: &Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let token = form_token(server, client).await;
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("_csrf", &token));
    client.post(server.at(path)).form(&all)
}

/// What a browser shows after a form's answer: the page a redirect (Post/
/// Redirect/Get) leads to, fetched by the same client, or the page itself.
pub async fn shown_after(
    server: &TestServer,
    client: &Client,
    response: reqwest::Response,
) -> (StatusCode, String) {
    let response = if response.status() == StatusCode::SEE_OTHER {
        let to = location(&response);
        let url = match to.strip_prefix(server.url.trim_end_matches('/')) {
            Some(_) => to,
            None => format!(
                "{}{}",
                server.url.split('/').take(3).collect::<Vec<_>>().join("/"),
                to
            ),
        };
        client
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("following the redirect: {e}"))
    } else {
        response
    };
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// The JSON body, or a panic that shows what came instead.
pub async fn body(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("status {status}, not JSON: {text}"))
}

/// The `Location` of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `join_all` without pulling in the futures crate.
pub async fn join_all<F, T, E>(futures: impl Iterator<Item = F>) -> Result<Vec<T>, E>
where
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap_or_else(|e| panic!("task: {e}"))?);
    }
    Ok(results)
}

/// A page: its status and text.
pub async fn page(server: &TestServer, client: &Client, path: &str) -> (StatusCode, String) {
    let response = client
        .get(server.at(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// A page form posted with its form token; the answer as it comes.
pub async fn post_form(
    server: &TestServer,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    page_form(server, client, path, form)
        .await
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}
