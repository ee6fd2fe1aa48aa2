//! Forward authentication through real proxies: Caddy and nginx (Debian's
//! packages) started on loopback ports with generated configurations, in
//! front of a small upstream that echoes the headers it got. The app's
//! hosts are made-up names (`app.usher.test`) that the test's HTTP client
//! resolves to 127.0.0.1. The proxies speak plain http on their own ports,
//! so the apps' host entries say `http://` and the port.
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

/// The hosts the nginx configuration has a server block for; any other
/// name reaches the catch-all block, which answers nothing (444).
pub const NGINX_HOSTS: [&str; 2] = ["app.usher.test", "vault.usher.test"];

/// Caddy's configuration: strip `Remote-*` and `Remote_*`, route `/.usher/`
/// to Usher, ask Usher about everything else, and pass the tool Usher's
/// `Cookie` (the browser's without Usher's own): what docs/forward-auth.md
/// shows.
fn caddyfile(port: u16, usher: u16, upstream: u16) -> String {
    format!(
        "{{
	admin off
	auto_https off
}}
http://:{port} {{
	route {{
		request_header -Remote-*
		request_header -Remote_*
		handle /.usher/* {{
			reverse_proxy 127.0.0.1:{usher}
		}}
		forward_auth 127.0.0.1:{usher} {{
			uri /api/authz/forward-auth
			copy_headers Remote-User Remote-Email Remote-Name Remote-Groups Remote-Role Remote-Id Cookie
		}}
		reverse_proxy 127.0.0.1:{upstream}
	}}
}}
"
    )
}

/// One protected host's server block, as docs/forward-auth.md shows it:
/// the host is written out (never `$http_host`, which a request with an
/// absolute target can make differ from the host nginx routed by).
fn nginx_server(host: &str, port: u16, usher: u16, upstream: u16) -> String {
    format!(
        "    server {{
        listen 127.0.0.1:{port};
        server_name {host};
        location /.usher/ {{
            proxy_pass http://127.0.0.1:{usher};
            proxy_redirect off;
            proxy_set_header Host {host}:{port};
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        location = /internal/usher-authz {{
            internal;
            proxy_pass http://127.0.0.1:{usher}/api/authz/auth-request;
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header X-Original-URL http://{host}:{port}$request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
        location / {{
            auth_request /internal/usher-authz;
            auth_request_set $usher_user $upstream_http_remote_user;
            auth_request_set $usher_email $upstream_http_remote_email;
            auth_request_set $usher_name $upstream_http_remote_name;
            auth_request_set $usher_groups $upstream_http_remote_groups;
            auth_request_set $usher_role $upstream_http_remote_role;
            auth_request_set $usher_id $upstream_http_remote_id;
            auth_request_set $usher_cookie $upstream_http_cookie;
            auth_request_set $usher_signin $upstream_http_location;
            error_page 401 =302 $usher_signin;
            error_page 403 /internal/usher-authz;
            proxy_set_header Remote-User $usher_user;
            proxy_set_header Remote-Email $usher_email;
            proxy_set_header Remote-Name $usher_name;
            proxy_set_header Remote-Groups $usher_groups;
            proxy_set_header Remote-Role $usher_role;
            proxy_set_header Remote-Id $usher_id;
            proxy_set_header Cookie $usher_cookie;
            proxy_set_header Host {host}:{port};
            proxy_pass http://127.0.0.1:{upstream};
        }}
    }}
"
    )
}

/// nginx's configuration (as docs/forward-auth.md shows, with its paths in
/// the test's folder): a server block per host and a catch-all that
/// answers nothing.
fn nginx_conf(folder: &Path, port: u16, usher: u16, upstream: u16) -> String {
    let dir = folder.display();
    let servers: String = NGINX_HOSTS
        .iter()
        .map(|host| nginx_server(host, port, usher, upstream))
        .collect();
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
{servers}    server {{
        listen 127.0.0.1:{port} default_server;
        server_name _;
        return 444;
    }}
}}
"
    )
}

impl Proxy {
    pub async fn start(kind: Kind, usher: u16, upstream: u16) -> Self {
        Self::start_on(kind, free_port(), usher, upstream).await
    }

    /// On a port chosen beforehand (the apps' host entries name it).
    pub async fn start_on(kind: Kind, port: u16, usher: u16, upstream: u16) -> Self {
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
    /// `host`'s entries for an app: plain http on each proxy's port.
    fn hosts(&self, host: &str) -> Vec<String> {
        self.hosts_with(host, "")
    }

    /// The same, with a path prefix.
    fn hosts_with(&self, host: &str, path: &str) -> Vec<String> {
        self.proxies
            .iter()
            .map(|proxy| format!("http://{host}:{}{path}", proxy.port))
            .collect()
    }

    /// Registers an app open to everyone behind the proxies at `host` and
    /// `path` (a prefix, or "" for the whole host); it must be saved.
    async fn everyones_app(&self, name: &str, host: &str, path: &str) {
        let created = self
            .owner
            .post(self.server.at("/rest/apps"))
            .json(&json!({
                "name": name,
                "launchUrl": format!("http://{host}{path}/"),
                "access": "everyone",
                "forwardAuth": {"hosts": self.hosts_with(host, path)},
            }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            created.status(),
            StatusCode::OK,
            "{name}: {}",
            body(created).await
        );
    }
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
        let ports = [free_port(), free_port()];
        let wiki = body(
            owner
                .post(server.at("/rest/apps"))
                .json(&json!({
                    "name": "Wiki",
                    "launchUrl": "http://app.usher.test/",
                    "access": {"users": [{"id": member.id.to_string(), "role": "Power"}]},
                    "forwardAuth": {
                        "hosts": ports.map(|p| format!("http://app.usher.test:{p}")),
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
        for (kind, port) in [Kind::Caddy, Kind::Nginx].into_iter().zip(ports) {
            proxies.push(Proxy::start_on(kind, port, usher, upstream.port).await);
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
    // To Usher's host, which binds the state to this browser, then sign-in.
    let begin = next_url(&to_usher);
    assert!(
        begin.starts_with(&server.at("/forward-auth/begin?rd=")),
        "{begin}"
    );
    let to_sign_in = get(client, &begin, &[]).await;
    assert_eq!(to_sign_in.status(), StatusCode::FOUND);
    let sign_in = next_url(&to_sign_in);
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
    a_request_is_judged_at_the_host_the_proxy_routes_it_to,
    paths_that_servers_read_differently_are_refused,
    overlapping_doors_are_refused_whatever_the_port_and_the_longest_path_wins,
    a_request_naming_another_port_is_judged_by_the_hosts_one_rule,
    codes_go_only_to_https_on_the_entrys_port_with_host_only_cookies,
    the_cookie_answer_is_never_empty_and_never_holds_ushers_cookies,
);

async fn a_member_reaches_the_tool_as_themselves_and_forged_headers_do_not(db: Db) -> TestResult {
    let door = Door::open(db).await;
    for proxy in &door.proxies {
        let (client, jar) = browser_client();
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
        assert_eq!(headers["remote-id"], door.member_id.as_str());
        // The tool's own cookie reaches it; Usher's host cookie does not.
        jar.add_cookie_str("theme=dark; Path=/", &page.parse()?);
        let answer = echoed(get(&client, &page, &[]).await).await;
        assert_eq!(
            answer["headers"]["cookie"], "theme=dark",
            "{:?}: {answer}",
            proxy.kind
        );
        // The client claims to be someone else: the upstream never hears it,
        // under Usher's names or with underscores (which CGI-style tools
        // read as the same HTTP_REMOTE_USER).
        let forged = echoed(
            get(
                &client,
                &page,
                &[
                    ("Remote-User", "owner@example.com"),
                    ("Remote-Role", "Admin"),
                    ("remote-groups", "admins"),
                    ("Remote-Id", "someone-else"),
                    ("Remote_User", "owner@example.com"),
                    ("remote_groups", "admins"),
                ],
            )
            .await,
        )
        .await;
        let headers = &forged["headers"];
        assert_eq!(headers["remote-user"], MEMBER, "{:?}", proxy.kind);
        assert_eq!(headers["remote-role"], "Power");
        assert_eq!(headers["remote-groups"], "Ops  night shift");
        assert_eq!(headers["remote-id"], door.member_id.as_str());
        for name in ["remote_user", "remote_groups"] {
            assert!(
                headers.get(name).is_none(),
                "{:?} passed {name}: {forged}",
                proxy.kind
            );
        }
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
        .header(
            "x-original-url",
            format!("http://app.usher.test:{}/x", nginx.port),
        )
        .header("accept", HTML)
        .send()
        .await?;
    assert_eq!(direct.status(), StatusCode::UNAUTHORIZED);
    assert!(
        location(&direct).starts_with(&nginx.at("app.usher.test", "/.usher/start?rd=")),
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
                "forwardAuth": {"hosts": door.hosts("vault.usher.test"), "requireMfa": true},
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
    let to_sign_in = get(client, &next_url(&to_usher), &[]).await;
    let sign_in = next_url(&to_sign_in);
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
        // A path made to look public is not (prefixes end at a segment;
        // the tricks with dots and escapes are in
        // paths_that_servers_read_differently_are_refused).
        for sneaky in ["/api/healthz", "/api/healthx", "/API/health"] {
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
    // Changed behind Usher's back, here in SQL with the sessions left in
    // place: disabled (as a directory sync does), refused at once; an
    // address the person typed in and has not confirmed yet (tools know
    // people by it), nobody passes under it; each put back, back in.
    for (change, status) in [
        ("disabled = 1", StatusCode::FOUND),
        ("disabled = 0", StatusCode::OK),
        ("email_verified = 0", StatusCode::FORBIDDEN),
        ("email_verified = 1", StatusCode::OK),
    ] {
        door.server
            .storage
            .execute_sql(&format!(
                "UPDATE users SET {change} WHERE email = '{MEMBER}'"
            ))
            .await;
        for (client, page) in &clients {
            let seen = door
                .server
                .storage
                .soon(status, || async { get(client, page, &[]).await.status() })
                .await;
            assert_eq!(seen, status, "{change}");
        }
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
    let begin = next_url(&to_usher);
    let to_sign_in = get(&client, &begin, &[]).await;
    let sign_in = next_url(&to_sign_in);
    login(&client, &door.server, MEMBER, PASSWORD).await;
    // The state travels as a parameter too, but a browser that did not pass
    // through /forward-auth/begin (a link made by someone else) gets no code
    // for it, though signed in.
    let foreign = begin.replace("/forward-auth/begin?", "/forward-auth/continue?");
    let refused = door.owner.get(&foreign).send().await?;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{foreign}");
    assert!(
        refused
            .text()
            .await?
            .contains("did not start in this browser")
    );
    let mut step = get(&client, &sign_in, &[]).await;
    let mut callback = next_url(&step);
    for _ in 0..4 {
        if callback.contains("/.usher/callback?code=") {
            break;
        }
        step = get(&client, &callback, &[]).await;
        callback = next_url(&step);
    }
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
            "forwardAuth": {"hosts": ["http://app.usher.test"]},
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
        .header("cookie", cookie.clone())
        .send()
        .await?;
    assert_eq!(continued.status(), StatusCode::FOUND);
    assert_eq!(location(&continued), "http://app.usher.test/x?y=1");
    // Through the proxies the session cookie (and every other cookie of
    // Usher's) stays away from the tool, whose own cookies pass.
    let usher = server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in {}", server.url));
    let upstream = Upstream::start().await;
    let (client, _) = browser_client();
    for kind in [Kind::Caddy, Kind::Nginx] {
        let proxy = Proxy::start(kind, usher, upstream.port).await;
        let answer = echoed(
            client
                .get(proxy.at("app.usher.test", "/x"))
                .header(
                    "cookie",
                    format!("theme=dark; {cookie}; n8n-auth-device=abc; lang=en"),
                )
                .send()
                .await?,
        )
        .await;
        let headers = &answer["headers"];
        assert_eq!(headers["remote-user"], OWNER_EMAIL, "{kind:?}: {answer}");
        assert_eq!(headers["cookie"], "theme=dark; lang=en", "{kind:?}");
    }
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

/// Sends `request` as it is to `port` on loopback and reads the whole
/// answer (empty when the server closed the connection without one).
async fn raw(port: u16, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write to {port}: {e}"));
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer from {port} within 10 s");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw answer (0 when there is none).
fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A GET of `target` (a path, or an absolute URL) with `Host: host`.
fn raw_get(target: &str, host: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: {HTML}\r\nConnection: close\r\n\r\n")
}

async fn a_request_is_judged_at_the_host_the_proxy_routes_it_to(db: Db) -> TestResult {
    let door = Door::open(db).await;
    // Another app, on another host, with nothing public.
    door.everyones_app("Vault", "vault.usher.test", "").await;
    for proxy in &door.proxies {
        let port = proxy.port;
        let app = format!("app.usher.test:{port}");
        // Wiki's public path is open on Wiki's host …
        let open = raw(port, &raw_get("/api/health", &app)).await;
        assert_eq!(status_of(&open), 200, "{:?}: {open}", proxy.kind);
        // … but a request for the vault's host, naming Wiki's in `Host`, is
        // routed to the vault and must be judged as the vault's.
        let target = format!("http://vault.usher.test:{port}/api/health");
        let bent = raw(port, &raw_get(&target, &app)).await;
        assert_eq!(status_of(&bent), 302, "{:?}: {bent}", proxy.kind);
        assert!(
            bent.contains(&format!("vault.usher.test:{port}/.usher/start")),
            "{:?}: {bent}",
            proxy.kind
        );
    }
    // nginx: a host it has no server block for gets no answer at all.
    let nginx = &door.proxies[1];
    let stranger = raw(
        nginx.port,
        &raw_get("/", &format!("other.usher.test:{}", nginx.port)),
    )
    .await;
    assert_eq!(stranger, "", "the catch-all answered");
    Ok(())
}

async fn paths_that_servers_read_differently_are_refused(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let caddy = door.proxies[0].port;
    let ask = |endpoint: &'static str, path: String| {
        let request = reqwest::Client::new()
            .get(door.server.at(endpoint))
            .header("accept", "application/json");
        if endpoint.ends_with("forward-auth") {
            request
                .header("x-forwarded-proto", "http")
                .header("x-forwarded-host", format!("app.usher.test:{caddy}"))
                .header("x-forwarded-uri", path)
        } else {
            request.header(
                "x-original-url",
                format!("http://app.usher.test:{caddy}{path}"),
            )
        }
        .send()
    };
    let tricks = [
        "/api/health/../admin",
        "/api/health/./x",
        "/api/health/%2e%2e/admin",
        "/api/health/.%2E/admin",
        "/api/health/..;/admin",
        "/api/health;v=1",
        "//api/health",
        "/api//health",
        "/api/%68ealth",
        "/api/health%2F..%2Fadmin",
        "/api/health\\..\\admin",
    ];
    for path in tricks {
        // Caddy and Traefik pass a 400 on; nginx only knows 401 and 403.
        for (endpoint, status) in [
            ("/api/authz/forward-auth", StatusCode::BAD_REQUEST),
            ("/api/authz/auth-request", StatusCode::FORBIDDEN),
        ] {
            let answer = ask(endpoint, path.to_owned()).await?;
            assert_eq!(answer.status(), status, "{endpoint} {path}");
            let text = answer.text().await?;
            assert!(text.contains("does not decide on addresses"), "{text}");
        }
    }
    // Through the proxies, as a client sends them: never to the tool, never
    // a 5xx, and the person is told why.
    for proxy in &door.proxies {
        let host = format!("app.usher.test:{}", proxy.port);
        for path in tricks.iter().filter(|p| !p.contains('\\')) {
            let answer = raw(proxy.port, &raw_get(path, &host)).await;
            let status = status_of(&answer);
            assert!(
                status == 400 || status == 403,
                "{:?} {path}: {answer}",
                proxy.kind
            );
            assert!(
                !answer.contains("\"uri\""),
                "{:?} {path}: {answer}",
                proxy.kind
            );
        }
    }
    // Path prefixes: case counts, and a path that differs from an app's
    // prefix only in case is not decided on (Caddy's path matcher ignores
    // case, nginx's does not).
    door.everyones_app("Grafana", "app.usher.test", "/grafana")
        .await;
    let cased = ask("/api/authz/forward-auth", "/GRAFANA/d/1".to_owned()).await?;
    assert_eq!(cased.status(), StatusCode::BAD_REQUEST);
    assert!(cased.text().await?.contains("only in upper and lower case"));
    // Caddy lowers the Kelvin sign to k (and İ to i), escaped or sent raw;
    // a raw one must not make Usher read the address as /.
    door.everyones_app("Kibana", "app.usher.test", "/kibana")
        .await;
    for path in ["/%E2%84%AAibana/app", "/\u{212A}ibana/app", "/k\u{130}bana"] {
        for (endpoint, status) in [
            ("/api/authz/forward-auth", StatusCode::BAD_REQUEST),
            ("/api/authz/auth-request", StatusCode::FORBIDDEN),
        ] {
            let cased = ask(endpoint, path.to_owned()).await?;
            assert_eq!(cased.status(), status, "{endpoint} {path}");
            let text = cased.text().await?;
            assert!(
                text.contains("only in upper and lower case"),
                "{path}: {text}"
            );
        }
    }
    // The prefix ends at a segment: /grafanax is Wiki's, /grafana/x Grafana's.
    let stranger = session_cookie(&door.server, STRANGER, PASSWORD).await;
    for (path, status) in [
        ("/grafanax", StatusCode::FORBIDDEN),
        ("/grafana/d/1", StatusCode::OK),
    ] {
        let answer = reqwest::Client::new()
            .get(door.server.at("/api/authz/forward-auth"))
            .header("accept", "application/json")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", format!("app.usher.test:{caddy}"))
            .header("x-forwarded-uri", path)
            .header("cookie", stranger.clone())
            .send()
            .await?;
        assert_eq!(answer.status(), status, "{path}");
    }
    Ok(())
}

async fn overlapping_doors_are_refused_whatever_the_port_and_the_longest_path_wins(
    db: Db,
) -> TestResult {
    let door = Door::open(db).await;
    // The very door of another app, also on another port or none (proxies
    // match hosts without the port, so the client would choose the app):
    // refused, and told whose.
    for hosts in [
        door.hosts("app.usher.test"),
        door.hosts_with("APP.usher.test", "/"),
        vec!["http://app.usher.test".to_owned()],
        vec!["http://app.usher.test:1".to_owned()],
        vec!["app.usher.test:8443".to_owned()],
    ] {
        let copy = door
            .owner
            .post(door.server.at("/rest/apps"))
            .json(&json!({
                "name": "Copy",
                "launchUrl": "http://app.usher.test/",
                "forwardAuth": {"hosts": hosts},
            }))
            .send()
            .await?;
        assert_eq!(copy.status(), StatusCode::BAD_REQUEST, "{hosts:?}");
        let text = body(copy).await.to_string();
        assert!(text.contains("is a host of the app Wiki already"), "{text}");
    }
    // A longer path is another door, and decides below it.
    door.everyones_app("Notes for everyone", "app.usher.test", "/notes")
        .await;
    // Nor may Wiki be changed onto another app's door, on any port.
    for hosts in [
        door.hosts_with("app.usher.test", "/notes"),
        vec!["http://app.usher.test:1/notes".to_owned()],
    ] {
        let moved = door
            .owner
            .patch(door.server.at(&format!("/rest/apps/{}", door.wiki)))
            .json(&json!({"forwardAuth": {"hosts": hosts}}))
            .send()
            .await?;
        assert_eq!(moved.status(), StatusCode::BAD_REQUEST);
        assert!(
            body(moved)
                .await
                .to_string()
                .contains("is a host of the app Notes for everyone already")
        );
    }
    for proxy in &door.proxies {
        let (client, _) = browser_client();
        let notes = proxy.at("app.usher.test", "/notes");
        let let_in = sign_in_through(&door.server, &client, &notes, STRANGER, PASSWORD).await;
        let answer = echoed(let_in).await;
        assert_eq!(
            answer["headers"]["remote-user"], STRANGER,
            "{:?}",
            proxy.kind
        );
        let refused = get(&client, &proxy.at("app.usher.test", "/"), &[]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{:?}", proxy.kind);
        let text = refused.text().await?;
        assert!(text.contains("Not allowed into Wiki"), "{text}");
    }
    Ok(())
}

/// Asks the Caddy/Traefik endpoint about `host` and `path` as JSON, with
/// `cookie` if any.
async fn ask_forward(
    server: &TestServer,
    host: &str,
    path: &str,
    cookie: Option<reqwest::header::HeaderValue>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(server.at("/api/authz/forward-auth"))
        .header("accept", "application/json")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("forward-auth: {e}"))
}

async fn a_request_naming_another_port_is_judged_by_the_hosts_one_rule(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let member = session_cookie(&door.server, MEMBER, PASSWORD).await;
    let stranger = session_cookie(&door.server, STRANGER, PASSWORD).await;
    // Wiki's entries name the proxies' ports; a client that writes another
    // port, or none, into Host is still judged by Wiki's rule.
    for host in ["app.usher.test", "app.usher.test:1", "app.usher.test:8443"] {
        let open = ask_forward(&door.server, host, "/api/health", None).await;
        assert_eq!(open.status(), StatusCode::OK, "{host}");
        assert_eq!(open.headers()["remote-user"], "", "{host}");
        let member = ask_forward(&door.server, host, "/x", Some(member.parse()?)).await;
        assert_eq!(member.status(), StatusCode::OK, "{host}");
        assert_eq!(member.headers()["remote-user"], MEMBER);
        let refused = ask_forward(&door.server, host, "/x", Some(stranger.parse()?)).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{host}");
        let text = refused.text().await?;
        assert!(
            text.contains("You have no access to Wiki"),
            "{host}: {text}"
        );
    }
    // Through Caddy, whose site matches the host whatever port the client
    // writes (and passes that port on in X-Forwarded-Host).
    let caddy = &door.proxies[0];
    for host in ["app.usher.test", "app.usher.test:1"] {
        let open = raw(caddy.port, &raw_get("/api/health", host)).await;
        assert_eq!(status_of(&open), 200, "{host}: {open}");
        let closed = raw(caddy.port, &raw_get("/x", host)).await;
        assert_eq!(status_of(&closed), 302, "{host}: {closed}");
    }
    Ok(())
}

/// The `Set-Cookie` of `response` whose name is `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_default()
        .to_owned()
}

/// A cookie's value from its `Set-Cookie`.
fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value)
        .unwrap_or_default()
}

async fn codes_go_only_to_https_on_the_entrys_port_with_host_only_cookies(db: Db) -> TestResult {
    let door = Door::open(db).await;
    let server = &door.server;
    let created = door
        .owner
        .post(server.at("/rest/apps"))
        .json(&json!({
            "name": "Secure",
            "launchUrl": "https://secure.usher.test/",
            "access": "everyone",
            "forwardAuth": {"hosts": ["secure.usher.test"]},
        }))
        .send()
        .await?;
    assert_eq!(created.status(), StatusCode::OK, "{}", body(created).await);
    // As a proxy passes /.usher/ on: straight to Usher, with the app's Host.
    let plain = Client::builder().redirect(Policy::none()).build()?;
    let start = |host: &str, rd: &str| {
        plain
            .get(server.at(&format!("/.usher/start?rd={}", urlencode(rd))))
            .header("host", host.to_owned())
            .header("accept", HTML)
            .send()
    };
    // Not over plain http, not on another port.
    for (host, rd) in [
        ("secure.usher.test", "http://secure.usher.test/x"),
        ("secure.usher.test:8443", "https://secure.usher.test:8443/x"),
        ("secure.usher.test:80", "http://secure.usher.test:80/x"),
    ] {
        let refused = start(host, rd).await?;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{rd}");
        let text = refused.text().await?;
        assert!(
            text.contains("Secure is set up in Usher for https"),
            "{text}"
        );
    }
    // https on the usual port: a __Host- state cookie.
    let started = start("secure.usher.test", "https://secure.usher.test/x").await?;
    assert_eq!(started.status(), StatusCode::FOUND);
    let state_cookie = set_cookie(&started, "__Host-n8n-auth-state");
    for flag in ["Secure", "HttpOnly", "Path=/;"] {
        assert!(state_cookie.contains(flag), "{state_cookie}");
    }
    assert!(!state_cookie.contains("Domain"), "{state_cookie}");
    let state = cookie_value(&state_cookie).to_owned();
    let begin = location(&started);
    assert!(
        begin.starts_with(&server.at("/forward-auth/begin?rd=")),
        "{begin}"
    );
    // The member's browser (signed in to Usher) passes through begin, sign-in
    // and continue to the code.
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = Client::builder()
        .cookie_provider(jar)
        .redirect(Policy::none())
        .build()?;
    login(&browser, server, MEMBER, PASSWORD).await;
    let mut step = get(&browser, &begin, &[]).await;
    let mut next = next_url(&step);
    for _ in 0..4 {
        if next.contains("/.usher/callback?code=") {
            break;
        }
        step = get(&browser, &next, &[]).await;
        next = next_url(&step);
    }
    assert!(
        next.starts_with("https://secure.usher.test/.usher/callback?code="),
        "{next}"
    );
    let path = next.trim_start_matches("https://secure.usher.test");
    // The code only with the __Host- state cookie: the callback sets a
    // __Host- host cookie.
    let back = plain
        .get(server.at(path))
        .header("host", "secure.usher.test")
        .header("cookie", format!("__Host-n8n-auth-state={state}"))
        .send()
        .await?;
    assert_eq!(back.status(), StatusCode::FOUND);
    assert_eq!(location(&back), "https://secure.usher.test/x");
    let host_cookie = set_cookie(&back, "__Host-n8n-auth-host");
    for flag in ["Secure", "HttpOnly", "Path=/"] {
        assert!(host_cookie.contains(flag), "{host_cookie}");
    }
    assert!(!host_cookie.contains("Domain"), "{host_cookie}");
    let token = cookie_value(&host_cookie).to_owned();
    // The host cookie counts under its __Host- name only (a plain one could
    // be planted over http or by a sibling host).
    for (cookie, status) in [
        (format!("__Host-n8n-auth-host={token}"), StatusCode::OK),
        (format!("n8n-auth-host={token}"), StatusCode::UNAUTHORIZED),
    ] {
        let answer = plain
            .get(server.at("/api/authz/forward-auth"))
            .header("accept", "application/json")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "secure.usher.test")
            .header("x-forwarded-uri", "/x")
            .header("cookie", cookie.clone())
            .send()
            .await?;
        assert_eq!(answer.status(), status, "{cookie}");
    }
    Ok(())
}

async fn the_cookie_answer_is_never_empty_and_never_holds_ushers_cookies(db: Db) -> TestResult {
    use reqwest::header::HeaderValue;
    let door = Door::open(db).await;
    let caddy = door.proxies[0].port;
    let host = format!("app.usher.test:{caddy}");
    let session = session_cookie(&door.server, MEMBER, PASSWORD).await;
    // Only Usher's cookies, or none: a placeholder, never an empty value
    // (which Caddy 2.9.0 to 2.11.1 skip, passing the browser's Cookie on).
    for (path, cookie) in [
        ("/x", Some(format!("{session}; n8n-auth-device=abc"))),
        ("/x", Some(session.clone())),
        ("/api/health", None),
        ("/api/health", Some(format!("{session};;"))),
    ] {
        let cookie = cookie.map(|c| HeaderValue::from_str(&c)).transpose()?;
        let answer = ask_forward(&door.server, &host, path, cookie.clone()).await;
        assert_eq!(answer.status(), StatusCode::OK, "{cookie:?}");
        assert_eq!(answer.headers()["cookie"], "usher-none=1", "{cookie:?}");
    }
    // A tool's cookie with bytes beyond ASCII (UTF-8 of "Zoë") on the same
    // line as Usher's: Usher still reads its session, the tool's cookies
    // pass byte for byte, and Usher's are dropped.
    let line = format!("theme=dark; {session}; name=Zo\u{eb}; n8n-auth-device=abc; lang=en");
    let answer = ask_forward(
        &door.server,
        &host,
        "/x",
        Some(HeaderValue::from_bytes(line.as_bytes())?),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["remote-user"], MEMBER);
    assert_eq!(
        answer.headers()["cookie"].as_bytes(),
        "theme=dark; name=Zo\u{eb}; lang=en".as_bytes()
    );
    // Through both proxies, the tool hears the same.
    let (client, _) = browser_client();
    for proxy in &door.proxies {
        for (cookie, tool) in [
            (session.clone(), "usher-none=1"),
            (line.clone(), "theme=dark; name=Zo\u{eb}; lang=en"),
        ] {
            let answer = echoed(
                client
                    .get(proxy.at("app.usher.test", "/x"))
                    .header("cookie", HeaderValue::from_bytes(cookie.as_bytes())?)
                    .send()
                    .await?,
            )
            .await;
            assert_eq!(answer["headers"]["remote-user"], MEMBER, "{:?}", proxy.kind);
            assert_eq!(answer["headers"]["cookie"], tool, "{:?}", proxy.kind);
        }
    }
    Ok(())
}
