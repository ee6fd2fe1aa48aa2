//! Forward authentication through real proxies: Caddy and nginx (Debian's
//! packages) started on loopback ports with generated configurations, in
//! front of a small upstream that echoes the headers it got. The app's
//! hosts are made-up names (`app.usher.test`) that the test's HTTP client
//! resolves to 127.0.0.1.
//!
//! A machine without `/usr/bin/caddy` or `/usr/sbin/nginx` fails these
//! tests with a message saying what to install; they are never skipped.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode, cookie::CookieStore as _, redirect::Policy};
use serde_json::{Value, json};
use usher_domain::model::Role;

use crate::harness::*;

const CADDY: &str = "/usr/bin/caddy";
const NGINX: &str = "/usr/sbin/nginx";
const INSTALL: &str = "apt-get install -y caddy nginx-light";
const MEMBER: &str = "member@example.com";
const STRANGER: &str = "stranger@example.com";
const PASSWORD: &str = "Member1password";
const HTML: &str = "text/html,application/xhtml+xml";

/// The upstream: answers every request with what it got.
pub struct Upstream {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Self {
        async fn echo(request: axum::extract::Request) -> axum::Json<Value> {
            let headers: serde_json::Map<String, Value> = request
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_string(),
                        json!(String::from_utf8_lossy(value.as_bytes())),
                    )
                })
                .collect();
            axum::Json(json!({"uri": request.uri().to_string(), "headers": headers}))
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("upstream: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let app = axum::Router::new().fallback(echo);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { port, task }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Caddy,
    Nginx,
}

/// A proxy process with its configuration in a folder of its own.
pub struct Proxy {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    _folder: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Caddy's configuration: strip `Remote-*`, route `/.usher/` to Usher, ask
/// Usher about everything else (what docs/forward-auth.md shows).
fn caddyfile(port: u16, usher: u16, upstream: u16) -> String {
    format!(
        "{{
	admin off
	auto_https off
}}
http://:{port} {{
	route {{
		request_header -Remote-*
		handle /.usher/* {{
			reverse_proxy 127.0.0.1:{usher}
		}}
		forward_auth 127.0.0.1:{usher} {{
			uri /api/authz/forward-auth
			copy_headers Remote-User Remote-Email Remote-Name Remote-Groups Remote-Role
		}}
		reverse_proxy 127.0.0.1:{upstream}
	}}
}}
"
    )
}

/// nginx's configuration (as docs/forward-auth.md shows, with its paths in
/// the test's folder).
fn nginx_conf(folder: &Path, port: u16, usher: u16, upstream: u16) -> String {
    let dir = folder.display();
    format!(
        "daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /.usher/ {{
            proxy_pass http://127.0.0.1:{usher};
            proxy_redirect off;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        location = /internal/usher-authz {{
            internal;
            proxy_pass http://127.0.0.1:{usher}/api/authz/auth-request;
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
        location / {{
            auth_request /internal/usher-authz;
            auth_request_set $usher_user $upstream_http_remote_user;
            auth_request_set $usher_email $upstream_http_remote_email;
            auth_request_set $usher_name $upstream_http_remote_name;
            auth_request_set $usher_groups $upstream_http_remote_groups;
            auth_request_set $usher_role $upstream_http_remote_role;
            auth_request_set $usher_signin $upstream_http_location;
            error_page 401 =302 $usher_signin;
            error_page 403 /internal/usher-authz;
            proxy_set_header Remote-User $usher_user;
            proxy_set_header Remote-Email $usher_email;
            proxy_set_header Remote-Name $usher_name;
            proxy_set_header Remote-Groups $usher_groups;
            proxy_set_header Remote-Role $usher_role;
            proxy_set_header Host $http_host;
            proxy_pass http://127.0.0.1:{upstream};
        }}
    }}
}}
"
    )
}

impl Proxy {
    pub async fn start(kind: Kind, usher: u16, upstream: u16) -> Self {
        let program = match kind {
            Kind::Caddy => CADDY,
            Kind::Nginx => NGINX,
        };
        assert!(
            Path::new(program).exists(),
            "{program} is needed for the forward authentication tests and is missing. Install it \
             with: {INSTALL}"
        );
        let folder = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let port = free_port();
        let mut command = match kind {
            Kind::Caddy => {
                let config = folder.path().join("Caddyfile");
                std::fs::write(&config, caddyfile(port, usher, upstream))
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut command = Command::new(CADDY);
                command
                    .args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(&config)
                    .env("HOME", folder.path())
                    .env("XDG_DATA_HOME", folder.path())
                    .env("XDG_CONFIG_HOME", folder.path());
                command
            }
            Kind::Nginx => {
                let config = folder.path().join("nginx.conf");
                std::fs::write(&config, nginx_conf(folder.path(), port, usher, upstream))
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut command = Command::new(NGINX);
                command.arg("-p").arg(folder.path()).arg("-c").arg(&config);
                command
            }
        };
        let log = std::fs::File::create(folder.path().join("output.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let child = {
            use std::os::unix::process::CommandExt as _;
            command
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap_or_else(|e| panic!("{e}")))
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {program} ({e}). Install it with: {INSTALL}")
                })
        };
        let mut proxy = Self {
            kind,
            port,
            child,
            _folder: folder,
        };
        proxy.wait_until_listening().await;
        proxy
    }

    async fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                let output = std::fs::read_to_string(self._folder.path().join("output.log"))
                    .unwrap_or_default();
                let errors = std::fs::read_to_string(self._folder.path().join("error.log"))
                    .unwrap_or_default();
                panic!(
                    "{:?} stopped at once ({exit}):\n{output}\n{errors}",
                    self.kind
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen on {} within 15 s",
                self.kind,
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://<host>:<port><path>` through this proxy.
    pub fn at(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Its own process group: nginx's worker goes with its master.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
        let _ = self.child.wait();
    }
}

/// Usher, the upstream, both proxies, an owner, a member with access to
/// the app "Wiki" and a stranger without.
struct Door {
    server: TestServer,
    owner: Client,
    wiki: String,
    member_id: String,
    _upstream: Upstream,
    proxies: Vec<Proxy>,
}

impl Door {
    async fn open(db: Db) -> Self {
        let server = TestServer::start(db).await;
        let owner = server.owner().await;
        let member = server.add_user(MEMBER, PASSWORD, Role::Member).await;
        server.add_user(STRANGER, PASSWORD, Role::Member).await;
        // A team project the member is in: their group.
        let project = body(
            owner
                .post(server.at("/rest/projects"))
                .json(&json!({"name": "Ops, night shift"}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await;
        let project_id = project["data"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let added = owner
            .post(server.at(&format!("/rest/projects/{project_id}/members")))
            .json(&json!({"userId": member.id.to_string(), "role": "project:viewer"}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(added.status().is_success(), "{}", body(added).await);
        let wiki = body(
            owner
                .post(server.at("/rest/apps"))
                .json(&json!({
                    "name": "Wiki",
                    "launchUrl": "http://app.usher.test/",
                    "access": {"users": [{"id": member.id.to_string(), "role": "Power"}]},
                    "forwardAuth": {
                        "hosts": ["app.usher.test"],
                        "publicPaths": ["/api/health"],
                        "minRole": "Basic",
                    },
                }))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await;
        let wiki = wiki["data"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no app: {wiki}"))
            .to_owned();
        let usher = server
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no port in {}", server.url));
        let upstream = Upstream::start().await;
        let mut proxies = Vec::new();
        for kind in [Kind::Caddy, Kind::Nginx] {
            proxies.push(Proxy::start(kind, usher, upstream.port).await);
        }
        Self {
            server,
            owner,
            wiki,
            member_id: member.id.to_string(),
            _upstream: upstream,
            proxies,
        }
    }
}

/// A browser-like client that resolves the made-up hosts to 127.0.0.1 and
/// shows its cookies.
fn browser_client() -> (Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let mut builder = Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none());
    for host in ["app.usher.test", "vault.usher.test", "other.usher.test"] {
        builder = builder.resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    (
        builder.build().unwrap_or_else(|e| panic!("client: {e}")),
        jar,
    )
}

async fn get(client: &Client, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client.get(url).header("accept", HTML);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The absolute address a redirect leads to, from `base`.
fn next_url(response: &reqwest::Response) -> String {
    let location = location(response);
    if location.starts_with("http") {
        return location;
    }
    let url = response.url();
    format!(
        "{}://{}:{}{location}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(80)
    )
}

/// Opens `url` (through a proxy) signed out, signs in to Usher as a browser
/// would be led to, and follows the way back; the upstream's answer.
async fn sign_in_through(
    server: &TestServer,
    client: &Client,
    url: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let first = get(client, url, &[]).await;
    assert_eq!(
        first.status(),
        StatusCode::FOUND,
        "{url} did not lead to sign-in"
    );
    let start = next_url(&first);
    assert!(start.contains("/.usher/start?rd="), "{start}");
    let to_usher = get(client, &start, &[]).await;
    assert_eq!(to_usher.status(), StatusCode::FOUND);
    let sign_in = next_url(&to_usher);
    assert!(
        sign_in.starts_with(&server.at("/signin?redirect=")),
        "{sign_in}"
    );
    let response = login(client, server, email, password).await;
    assert_eq!(response.status(), StatusCode::OK, "sign-in of {email}");
    // Signed in now: the sign-in page leads on at once.
    let mut step = get(client, &sign_in, &[]).await;
    for _ in 0..4 {
        if !step.status().is_redirection() {
            break;
        }
        let next = next_url(&step);
        step = get(client, &next, &[]).await;
    }
    step
}

async fn echoed(response: reqwest::Response) -> Value {
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "not through to the upstream"
    );
    response.json().await.unwrap_or_else(|e| panic!("{e}"))
}

crate::on_both_databases!(
    a_member_reaches_the_tool_as_themselves_and_forged_headers_do_not,
    not_signed_in_browsers_go_to_sign_in_and_others_get_401,
    someone_without_access_or_below_the_least_role_is_refused_with_a_page,
    two_factor_is_asked_for_where_the_app_requires_it,
    public_paths_open_without_sign_in_and_without_anyones_name,
    signing_out_of_usher_signs_out_of_the_app_on_every_instance,
    a_person_removed_mid_session_is_refused_at_once,
    return_addresses_and_codes_cannot_be_bent,
    with_a_cookie_domain_the_one_session_cookie_opens_apps_under_it,
    the_owners_two_factor_requirement_holds_at_every_door_at_once,
);

async fn a_member_reaches_the_tool_as_themselves_and_forged_headers_do_not(db: Db) -> TestResult {
    let door = Door::open(db).await;
    for proxy in &door.proxies {
        let (client, _) = browser_client();
        let page = proxy.at("app.usher.test", "/notes?x=1");
        let answer =
            echoed(sign_in_through(&door.server, &client, &page, MEMBER, PASSWORD).await).await;
        assert_eq!(answer["uri"], "/notes?x=1", "{:?}", proxy.kind);
        let headers = &answer["headers"];
        assert_eq!(headers["remote-user"], MEMBER, "{:?}: {answer}", proxy.kind);
        assert_eq!(headers["remote-email"], MEMBER);
        assert_eq!(headers["remote-name"], "Mia Member");
        assert_eq!(headers["remote-groups"], "Ops  night shift");
        assert_eq!(headers["remote-role"], "Power");
        // The client claims to be someone else: the upstream never hears it.
        let forged = echoed(
            get(
                &client,
                &page,
                &[
                    ("Remote-User", "owner@example.com"),
                    ("Remote-Role", "Admin"),
                    ("remote-groups", "admins"),
                ],
            )
            .await,
        )
        .await;
        assert_eq!(forged["headers"]["remote-user"], MEMBER, "{:?}", proxy.kind);
        assert_eq!(forged["headers"]["remote-role"], "Power");
        assert_eq!(forged["headers"]["remote-groups"], "Ops  night shift");
    }
    Ok(())
}

async fn not_signed_in_browsers_go_to_sign_in_and_others_get_401(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let caddy = &door.proxies[0];
    let (client, _) = browser_client();
    // A browser is sent to sign in, by way of the app's host.
    let page = caddy.at("app.usher.test", "/x");
    let response = get(&client, &page, &[]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(next_url(&response).starts_with(&caddy.at("app.usher.test", "/.usher/start?rd=")));
    // A script gets 401.
    let response = client
        .get(&page)
        .header("accept", "application/json")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // nginx: Usher answers 401 with the sign-in address, which the
    // configuration turns into a redirect.
    let nginx = &door.proxies[1];
    let response = get(&client, &nginx.at("app.usher.test", "/x"), &[]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(next_url(&response).starts_with(&nginx.at("app.usher.test", "/.usher/start?rd=")));
    let direct = reqwest::Client::new()
        .get(door.server.at("/api/authz/auth-request"))
        .header("x-original-url", "http://app.usher.test/x")
        .header("accept", HTML)
        .send()
        .await?;
    assert_eq!(direct.status(), StatusCode::UNAUTHORIZED);
    assert!(
        location(&direct).starts_with("http://app.usher.test/.usher/start?rd="),
        "{}",
        location(&direct)
    );
    Ok(())
}

async fn someone_without_access_or_below_the_least_role_is_refused_with_a_page(
    db: Db,
) -> TestResult {
    let door = Door::open(db).await;
    for proxy in &door.proxies {
        let (client, _) = browser_client();
        let page = proxy.at("app.usher.test", "/");
        let refused = sign_in_through(&door.server, &client, &page, STRANGER, PASSWORD).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{:?}", proxy.kind);
        let text = refused.text().await?;
        assert!(
            text.contains("Not allowed into Wiki"),
            "{:?}: {text}",
            proxy.kind
        );
        assert!(text.contains("You have no access to Wiki"), "{text}");
        assert!(text.contains(OWNER_EMAIL), "who to ask: {text}");
    }
    // The least role rises above the member's: refused, and told why.
    let changed = door
        .owner
        .patch(door.server.at(&format!("/rest/apps/{}", door.wiki)))
        .json(&json!({"forwardAuth": {"minRole": "Admin"}}))
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK, "{}", body(changed).await);
    for proxy in &door.proxies {
        let (client, _) = browser_client();
        let page = proxy.at("app.usher.test", "/");
        let refused = sign_in_through(&door.server, &client, &page, MEMBER, PASSWORD).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let text = refused.text().await?;
        assert!(
            text.contains("needs the app role Admin or above; yours is Power"),
            "{text}"
        );
        // A script is told in JSON.
        let json = client
            .get(&page)
            .header("accept", "application/json")
            .send()
            .await?;
        assert_eq!(json.status(), StatusCode::FORBIDDEN, "{:?}", proxy.kind);
    }
    Ok(())
}

async fn two_factor_is_asked_for_where_the_app_requires_it(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let vault = body(
        door.owner
            .post(door.server.at("/rest/apps"))
            .json(&json!({
                "name": "Vault",
                "launchUrl": "http://vault.usher.test/",
                "forwardAuth": {"hosts": ["vault.usher.test"], "requireMfa": true},
            }))
            .send()
            .await?,
    )
    .await;
    assert_eq!(vault["data"]["forwardAuth"]["requireMfa"], true, "{vault}");
    assert_eq!(
        vault["data"]["redirectUris"],
        json!([]),
        "forward auth alone"
    );
    // Without two-factor: told to set it up, through either proxy.
    let mut clients = Vec::new();
    for proxy in &door.proxies {
        let (client, _) = browser_client();
        let page = proxy.at("vault.usher.test", "/");
        let refused =
            sign_in_through(&door.server, &client, &page, OWNER_EMAIL, OWNER_PASSWORD).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{:?}", proxy.kind);
        let text = refused.text().await?;
        assert!(
            text.contains("Vault asks for two-factor authentication. Set it up"),
            "{text}"
        );
        assert!(text.contains("/settings/mfa"), "{text}");
        clients.push((client, page));
    }
    // Set up in the first browser's session: that session passes.
    let (first, first_page) = &clients[0];
    let (secret, _) = enrol(&door.server, first).await;
    echoed(get(first, first_page, &[]).await).await;
    // The second browser signed in with the password alone: refused.
    let (second, second_page) = &clients[1];
    let refused = get(second, second_page, &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let text = refused.text().await?;
    assert!(text.contains("you signed in without it"), "{text}");
    // Signed in with the code: through.
    let (third, _) = browser_client();
    echoed(sign_in_through_with_code(&door.server, &third, second_page, &secret).await).await;
    Ok(())
}

/// As [`sign_in_through`], for the owner with a second factor.
async fn sign_in_through_with_code(
    server: &TestServer,
    client: &Client,
    url: &str,
    secret: &str,
) -> reqwest::Response {
    let first = get(client, url, &[]).await;
    let to_usher = get(client, &next_url(&first), &[]).await;
    let sign_in = next_url(&to_usher);
    let response = client
        .post(server.at("/rest/login"))
        .json(&json!({
            "emailOrLdapLoginId": OWNER_EMAIL,
            "password": OWNER_PASSWORD,
            "mfaCode": code_at(server, secret),
        }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::OK);
    let mut step = get(client, &sign_in, &[]).await;
    for _ in 0..4 {
        if !step.status().is_redirection() {
            break;
        }
        let next = next_url(&step);
        step = get(client, &next, &[]).await;
    }
    step
}

async fn public_paths_open_without_sign_in_and_without_anyones_name(db: Db) -> TestResult {
    let door = Door::open(db).await;
    for proxy in &door.proxies {
        let (client, _) = browser_client();
        let answer = echoed(
            get(
                &client,
                &proxy.at("app.usher.test", "/api/health/db"),
                &[
                    ("Remote-User", "owner@example.com"),
                    ("Remote-Role", "Admin"),
                ],
            )
            .await,
        )
        .await;
        let headers = &answer["headers"];
        // Nobody's name: none, or empty (Caddy 2.6 copies the empty ones).
        for name in ["remote-user", "remote-role", "remote-email"] {
            assert!(
                headers.get(name).is_none_or(|v| v == ""),
                "{:?} passed {name}: {answer}",
                proxy.kind
            );
        }
        // A path made to look public is not.
        for sneaky in [
            "/api/health/../admin",
            "/api/health/%2e%2e/admin",
            "/api/healthz",
        ] {
            let response = get(&client, &proxy.at("app.usher.test", sneaky), &[]).await;
            assert_ne!(
                response.status(),
                StatusCode::OK,
                "{:?} {sneaky}",
                proxy.kind
            );
        }
    }
    Ok(())
}

async fn signing_out_of_usher_signs_out_of_the_app_on_every_instance(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let sibling = door.server.sibling(&[]).await;
    let mut clients = Vec::new();
    for proxy in &door.proxies {
        let (client, jar) = browser_client();
        let page = proxy.at("app.usher.test", "/");
        echoed(sign_in_through(&door.server, &client, &page, MEMBER, PASSWORD).await).await;
        clients.push((client, jar, page));
    }
    // The other instance knows the host cookie too (and keeps the answer).
    let (_, jar, page) = &clients[0];
    let cookies = jar
        .cookies(&page.parse()?)
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .unwrap_or_default();
    let ask = |server: &TestServer| {
        reqwest::Client::new()
            .get(server.at("/api/authz/forward-auth"))
            .header("x-forwarded-proto", "http")
            .header(
                "x-forwarded-host",
                format!("app.usher.test:{}", door.proxies[0].port),
            )
            .header("x-forwarded-uri", "/")
            .header("cookie", cookies.clone())
            .send()
    };
    assert_eq!(ask(&sibling).await?.status(), StatusCode::OK);
    assert_eq!(ask(&sibling).await?.status(), StatusCode::OK);
    // Signing out of Usher (one browser; the session is the same) …
    let (client, _, _) = &clients[0];
    let out = client.post(door.server.at("/rest/logout")).send().await?;
    assert_eq!(out.status(), StatusCode::OK);
    // … ends it on the other instance at once,
    assert_eq!(ask(&sibling).await?.status(), StatusCode::UNAUTHORIZED);
    // and through the proxy.
    let again = get(client, page, &[]).await;
    assert_eq!(again.status(), StatusCode::FOUND);
    // The other proxy's browser has its own session: still in.
    let (client, _, page) = &clients[1];
    echoed(get(client, page, &[]).await).await;
    Ok(())
}

async fn a_person_removed_mid_session_is_refused_at_once(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let mut clients = Vec::new();
    for proxy in &door.proxies {
        let (client, _) = browser_client();
        let page = proxy.at("app.usher.test", "/");
        echoed(sign_in_through(&door.server, &client, &page, MEMBER, PASSWORD).await).await;
        clients.push((client, page));
    }
    // Access taken away: refused at once.
    let changed = door
        .owner
        .patch(door.server.at(&format!("/rest/apps/{}", door.wiki)))
        .json(&json!({"access": {"users": []}}))
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK);
    for (client, page) in &clients {
        assert_eq!(get(client, page, &[]).await.status(), StatusCode::FORBIDDEN);
    }
    // Given back, then the person deleted: signed out everywhere.
    let changed = door
        .owner
        .patch(door.server.at(&format!("/rest/apps/{}", door.wiki)))
        .json(&json!({"access": {"users": [door.member_id]}}))
        .send()
        .await?;
    assert_eq!(changed.status(), StatusCode::OK);
    for (client, page) in &clients {
        echoed(get(client, page, &[]).await).await;
    }
    let deleted = door
        .owner
        .delete(door.server.at(&format!("/rest/users/{}", door.member_id)))
        .send()
        .await?;
    assert_eq!(deleted.status(), StatusCode::OK, "{}", body(deleted).await);
    for (client, page) in &clients {
        assert_eq!(get(client, page, &[]).await.status(), StatusCode::FOUND);
    }
    Ok(())
}

async fn return_addresses_and_codes_cannot_be_bent(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let caddy = &door.proxies[0];
    let (client, _) = browser_client();
    // /.usher/start leads nowhere that is not an app on this very host.
    for rd in [
        "http://evil.example/".to_owned(),
        "//evil.example/".to_owned(),
        format!("http://other.usher.test:{}/", caddy.port),
        "javascript:alert(1)".to_owned(),
    ] {
        let url = format!(
            "{}?rd={}",
            caddy.at("app.usher.test", "/.usher/start"),
            urlencode(&rd)
        );
        let response = get(&client, &url, &[]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{rd}");
    }
    // Signed in to Usher, continue leads only to apps' hosts.
    let owner = &door.owner;
    for rd in [
        "http://evil.example/",
        "http://app.usher.test@evil.example/",
    ] {
        let response = owner
            .get(door.server.at(&format!(
                "/forward-auth/continue?rd={}&state={}",
                urlencode(rd),
                "a".repeat(64)
            )))
            .send()
            .await?;
        assert_ne!(response.status(), StatusCode::FOUND, "{rd}");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{rd}");
    }
    // A code works once, only with the state cookie of the browser that set
    // out.
    let page = caddy.at("app.usher.test", "/");
    let first = get(&client, &page, &[]).await;
    let to_usher = get(&client, &next_url(&first), &[]).await;
    let sign_in = next_url(&to_usher);
    login(&client, &door.server, MEMBER, PASSWORD).await;
    let continued = get(&client, &sign_in, &[]).await;
    let continued = get(&client, &next_url(&continued), &[]).await;
    let callback = next_url(&continued);
    assert!(callback.contains("/.usher/callback?code="), "{callback}");
    // Another browser (no state cookie) cannot use it, and that spends it.
    let (thief, _) = browser_client();
    let stolen = get(&thief, &callback, &[]).await;
    assert_eq!(stolen.status(), StatusCode::BAD_REQUEST);
    let replay = get(&client, &callback, &[]).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(
        replay
            .text()
            .await?
            .contains("has been used or has expired")
    );
    Ok(())
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn with_a_cookie_domain_the_one_session_cookie_opens_apps_under_it(db: Db) -> TestResult {
    let server = TestServer::start_with(
        db,
        &[
            ("N8N_EDITOR_BASE_URL", "http://auth.usher.test"),
            ("N8N_AUTH_COOKIE_DOMAIN", "usher.test"),
        ],
    )
    .await;
    // The owner's client keeps no cookie for 127.0.0.1 (it is for
    // usher.test): the test sends it by hand.
    server.owner().await;
    // The session cookie is for the whole domain.
    let response = login(&server.client(), &server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("n8n-auth="))
        .unwrap_or_default()
        .to_owned();
    assert!(set_cookie.contains("Domain=usher.test"), "{set_cookie}");
    assert!(
        set_cookie.contains("Path=/;") || set_cookie.ends_with("Path=/"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
    let created = reqwest::Client::new()
        .post(server.at("/rest/apps"))
        .header("cookie", cookie.clone())
        .json(&json!({
            "name": "Wiki",
            "launchUrl": "http://app.usher.test/",
            "access": "everyone",
            "forwardAuth": {"hosts": ["app.usher.test"]},
        }))
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::OK);
    let plain = Client::builder().redirect(Policy::none()).build()?;
    let ask = |cookie: Option<&str>| {
        let mut request = plain
            .get(server.at("/api/authz/forward-auth"))
            .header("accept", HTML)
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", "app.usher.test")
            .header("x-forwarded-uri", "/x?y=1");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie.to_owned());
        }
        request.send()
    };
    let allowed = ask(Some(&cookie)).await?;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.headers()["remote-user"], OWNER_EMAIL);
    assert_eq!(allowed.headers()["remote-name"], "Olive Owner");
    assert_eq!(allowed.headers()["remote-role"], "Basic");
    // Not signed in: straight to Usher's sign-in, and from there straight back.
    let signed_out = ask(None).await?;
    assert_eq!(signed_out.status(), StatusCode::FOUND);
    let sign_in = location(&signed_out);
    let back = "/forward-auth/continue?rd=http%3A%2F%2Fapp.usher.test%2Fx%3Fy%3D1";
    assert_eq!(
        sign_in,
        format!("http://auth.usher.test/signin?redirect={}", urlencode(back))
    );
    let continued = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()?
        .get(server.at(back))
        .header("cookie", cookie)
        .send()
        .await?;
    assert_eq!(continued.status(), StatusCode::FOUND);
    assert_eq!(location(&continued), "http://app.usher.test/x?y=1");
    Ok(())
}

async fn the_owners_two_factor_requirement_holds_at_every_door_at_once(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let mut clients = Vec::new();
    for proxy in &door.proxies {
        let (client, _) = browser_client();
        let page = proxy.at("app.usher.test", "/");
        echoed(sign_in_through(&door.server, &client, &page, MEMBER, PASSWORD).await).await;
        clients.push((client, page));
    }
    let enforced = door
        .owner
        .post(door.server.at("/rest/mfa/enforce-mfa"))
        .json(&json!({"enforce": true}))
        .send()
        .await?;
    assert_eq!(
        enforced.status(),
        StatusCode::OK,
        "{}",
        body(enforced).await
    );
    for (client, page) in &clients {
        let refused = get(client, page, &[]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let text = refused.text().await?;
        assert!(
            text.contains("Usher asks everyone for two-factor authentication"),
            "{text}"
        );
    }
    Ok(())
}
