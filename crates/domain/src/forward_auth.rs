//! Forward authentication: the hosts (and path prefixes) a reverse proxy
//! protects with an app, the rule at that door, and how a request's address
//! is read before it is matched.
//!
//! The proxy asks Usher about every request (`/api/authz/forward-auth`,
//! `/api/authz/auth-request`) and passes the person on with `Remote-*`
//! headers. Which app a request belongs to is decided here, on the address
//! exactly as the proxy sent it. Proxies and tools disagree on what a path
//! with dot segments, `;` parameters, empty segments or needless escapes
//! means (Caddy and nginx resolve `..` before they route, Tomcat drops
//! `;params`, some tools decode `%2e`), so such an address is refused rather
//! than read one way and served another: `/public/../admin` can neither be
//! matched as `/public` nor as `/admin`.

use crate::{Error, Result, apps::App};

/// The door of one app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardAuth {
    /// `[http://]host[:port][/path]`, lower-case host, no trailing slash on
    /// a path; `http://` where the app may be reached over plain http.
    pub hosts: Vec<String>,
    /// Path prefixes anyone may open (`/api/health`).
    pub public_paths: Vec<String>,
    /// The least app role that passes (the app's roles in their order, most
    /// rights first: Admin, Power, Basic, then custom roles).
    pub min_role: String,
    /// Only people who signed in with a second factor pass.
    pub require_mfa: bool,
}

const HOSTS_MAX: usize = 20;
const PATH_MAX: usize = 200;

/// One entry of `hosts`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    /// The entry was written with `http://`: Usher may lead browsers (and
    /// send sign-in codes) to this host over plain http. Without it, only
    /// https.
    pub http: bool,
    pub host: String,
    pub port: Option<u16>,
    /// `""` for the whole host, else `/prefix`.
    pub path: String,
}

impl HostRule {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let (http, rest) = if let Some(rest) = strip_scheme(text, "http://") {
            (true, rest)
        } else if let Some(rest) = strip_scheme(text, "https://") {
            (false, rest)
        } else if text.contains("://") {
            return Err(format!(
                "{text}: give the host (wiki.example.com), with http:// in front only for a tool \
                 on plain http."
            ));
        } else {
            (false, text)
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{text}: {port} is not a port."))?;
                (host, Some(port))
            }
            None => (authority, None),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(format!("{text}: {host:?} is not a host name."));
        }
        let path = public_path(path)
            .map_err(|why| format!("{text}: the path {why}"))?
            .unwrap_or_default();
        Ok(Self {
            http,
            host,
            port,
            path,
        })
    }

    fn render(&self) -> String {
        let scheme = if self.http { "http://" } else { "" };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{scheme}{}{port}{}", self.host, self.path)
    }

    /// Whether this rule covers a request to `host` for `path`, whatever
    /// the port: Caddy's and Traefik's host matchers ignore it, and the
    /// port in `X-Forwarded-Host` is the client's to choose, so it never
    /// decides which app judges a request (see [`HostRule::allows_return`]
    /// for where it counts).
    pub fn covers(&self, host: &str, path: &str) -> bool {
        self.host == host && under(path, &self.path)
    }

    /// Whether this rule would cover the request if paths were compared
    /// as Caddy's `path` matcher compares them (see [`under_ignoring_case`]).
    fn covers_ignoring_case(&self, host: &str, path: &str) -> bool {
        self.host == host && under_ignoring_case(path, &self.path)
    }

    /// Whether Usher may send a browser (and a sign-in code) to `target`
    /// under this rule: https, or http where the rule says `http://`; on
    /// the rule's port, or the scheme's own (443, 80) when it names none.
    pub fn allows_return(&self, target: &Target) -> bool {
        let default_port = if target.https { 443 } else { 80 };
        let port_ok = match self.port {
            Some(port) => target.port.unwrap_or(default_port) == port,
            None => target.port.is_none_or(|p| p == default_port),
        };
        (target.https || self.http) && port_ok
    }

    /// The same entry as `other` within one app: host, port and path
    /// prefix (the scheme aside; the path's case aside too).
    fn same_entry(&self, other: &Self) -> bool {
        self.same_door(other) && self.port == other.port
    }

    /// The same door as `other`: host and path prefix, the port, the scheme
    /// and the path's case aside, since proxies match hosts without the
    /// port and some match paths without case. Two apps never share one.
    fn same_door(&self, other: &Self) -> bool {
        self.host == other.host && self.path.eq_ignore_ascii_case(&other.path)
    }
}

fn strip_scheme<'a>(text: &'a str, scheme: &str) -> Option<&'a str> {
    text.get(..scheme.len())
        .filter(|s| s.eq_ignore_ascii_case(scheme))
        .map(|_| &text[scheme.len()..])
}

/// A path prefix as written (`/api/health/` → `/api/health`); None for `""`
/// or `/` (everything). Only characters that never need an escape, so the
/// prefix reads the same to Usher, the proxy and the tool.
fn public_path(path: &str) -> std::result::Result<Option<String>, &'static str> {
    let path = path.trim();
    if path.is_empty() || path == "/" {
        return Ok(None);
    }
    let trimmed = path.trim_end_matches('/');
    if !path.starts_with('/')
        || path.len() > PATH_MAX
        || !path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        || trimmed
            .split('/')
            .skip(1)
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(
            "must start with / and hold only letters, digits, - . _ ~ and single slashes, \
             without . or .. segments.",
        );
    }
    Ok(Some(trimmed.to_owned()))
}

/// Whether `path` is `prefix` or below it (`/a` covers `/a`, `/a/b`, not
/// `/ab`): prefixes end at a segment. Case counts, as in nginx, Traefik
/// and RFC 9110.
pub fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether `path` is `prefix` or below it when compared as Caddy's `path`
/// matcher compares: after Go's `strings.ToLower` of the decoded path. Of
/// the characters that can reach a prefix (which holds only ASCII letters,
/// digits and `-._~/`; escapes of those are refused before), that folds the
/// ASCII letters, the Kelvin sign U+212A (to `k`) and the dotted capital
/// I U+0130 (to `i`), escaped (`%E2%84%AA`, `%C4%B0`) or not.
fn under_ignoring_case(path: &str, prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let folded = fold_case_as_caddy(path);
    folded
        .strip_prefix(prefix.to_ascii_lowercase().as_str())
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `path` in lower case as far as it matters to [`under_ignoring_case`]:
/// ASCII letters lowered, and U+212A and U+0130 (raw or escaped in either
/// case of hex digits) turned into the ASCII letters Go lowers them to.
fn fold_case_as_caddy(path: &str) -> String {
    const TO_ASCII: [(&str, char, char); 2] =
        [("%E2%84%AA", '\u{212A}', 'k'), ("%C4%B0", '\u{0130}', 'i')];
    let mut folded = String::with_capacity(path.len());
    let mut rest = path;
    'next: while let Some(c) = rest.chars().next() {
        for (escaped, raw, ascii) in TO_ASCII {
            let escape_here = rest
                .get(..escaped.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(escaped));
            if escape_here || c == raw {
                folded.push(ascii);
                rest = &rest[if escape_here {
                    escaped.len()
                } else {
                    c.len_utf8()
                }..];
                continue 'next;
            }
        }
        folded.push(c.to_ascii_lowercase());
        rest = &rest[c.len_utf8()..];
    }
    folded
}

impl ForwardAuth {
    /// Checks and normalises every field against the app's `roles`.
    pub fn validate(mut self, roles: &[String]) -> Result<Self> {
        if self.hosts.is_empty() {
            return Err(Error::field(
                "forwardAuth",
                "Give at least one host the proxy protects with this app (wiki.example.com).",
            ));
        }
        if self.hosts.len() > HOSTS_MAX || self.public_paths.len() > HOSTS_MAX {
            return Err(Error::field(
                "forwardAuth",
                format!("At most {HOSTS_MAX} hosts and {HOSTS_MAX} public paths."),
            ));
        }
        let mut rules: Vec<HostRule> = Vec::new();
        for host in &self.hosts {
            let rule = HostRule::parse(host).map_err(|why| Error::field("forwardAuth", why))?;
            match rules.iter_mut().find(|r| r.same_entry(&rule)) {
                // Written twice, once with http://: http is allowed.
                Some(known) => known.http |= rule.http,
                None => rules.push(rule),
            }
        }
        self.hosts = rules.iter().map(HostRule::render).collect();
        let mut paths = Vec::new();
        for path in &self.public_paths {
            match public_path(path) {
                Ok(Some(path)) => {
                    if !paths.contains(&path) {
                        paths.push(path);
                    }
                }
                Ok(None) => {
                    return Err(Error::field(
                        "forwardAuth",
                        "A public path of / would open everything: leave the app out of the proxy instead.",
                    ));
                }
                Err(why) => {
                    return Err(Error::field(
                        "forwardAuth",
                        format!("The public path {path} {why}"),
                    ));
                }
            }
        }
        self.public_paths = paths;
        self.min_role = self.min_role.trim().to_owned();
        if !roles.contains(&self.min_role) {
            return Err(Error::field(
                "forwardAuth",
                format!(
                    "The least role {} is not one of this app's roles ({}).",
                    self.min_role,
                    roles.join(", ")
                ),
            ));
        }
        Ok(self)
    }

    pub fn rules(&self) -> impl Iterator<Item = HostRule> + '_ {
        self.hosts.iter().filter_map(|h| HostRule::parse(h).ok())
    }

    pub fn is_public(&self, path: &str) -> bool {
        self.public_paths.iter().any(|p| under(path, p))
    }

    /// The first of this door's host entries that `other` has too (same
    /// host and path prefix, whatever the ports), as written here.
    pub fn shared_entry(&self, other: &ForwardAuth) -> Option<String> {
        self.rules()
            .find(|rule| other.rules().any(|theirs| theirs.same_door(rule)))
            .map(|rule| rule.render())
    }
}

/// Whether `role` is `min_role` or ranks above it among `roles` (most
/// rights first). A role the app no longer has passes nothing.
pub fn role_reaches(roles: &[String], role: &str, min_role: &str) -> bool {
    let rank = |r: &str| roles.iter().position(|x| x == r);
    match (rank(role), rank(min_role)) {
        (Some(have), Some(need)) => have <= need,
        _ => false,
    }
}

/// The address a proxy asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// Lower-case, without port or trailing dot.
    pub host: String,
    pub port: Option<u16>,
    /// The path as sent (checked: see [`AMBIGUOUS_PATH`]).
    pub path: String,
    /// The original URL, to return to after sign-in.
    pub url: String,
}

/// Why an address cannot be decided on: the proxy sent something Usher
/// cannot read (its configuration, most likely).
pub const UNREADABLE: &str = "Usher cannot read the address this request was for.";

/// Why a path is not decided on: servers read it in different ways.
pub const AMBIGUOUS_PATH: &str = "Usher does not decide on addresses whose path holds . or .. \
    segments, //, ;, a backslash, or an escape of a character that needs none (such as %2e or \
    %2f), because servers read those in different ways. Open the address without them.";

/// Why a path differing from an app's path only in case is not decided on.
pub const CASE_PATH: &str = "This address differs from an app's path only in upper and lower \
    case. Paths are case sensitive in Usher, but not in every proxy or tool, so Usher does not \
    decide on it. Open the address as the app's path is written.";

impl Target {
    /// From a scheme, a `Host` value and the request target (path and
    /// query), as the proxy's headers give them.
    pub fn new(scheme: &str, host: &str, uri: &str) -> Result<Self> {
        let https = match scheme.trim().to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(Error::invalid(UNREADABLE)),
        };
        let host_header = host.trim();
        if host_header.is_empty()
            || host_header.len() > 300
            || host_header.contains(['@', '/', '\\', '?', '#', ' ', ','])
            || host_header.chars().any(|c| c.is_control())
        {
            return Err(Error::invalid(UNREADABLE));
        }
        let (name, port) = match host_header.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => (
                name,
                Some(
                    port.parse::<u16>()
                        .map_err(|_| Error::invalid(UNREADABLE))?,
                ),
            ),
            Some(_) => return Err(Error::invalid(UNREADABLE)),
            None => (host_header, None),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return Err(Error::invalid(UNREADABLE));
        }
        let uri = if uri.is_empty() { "/" } else { uri };
        if !uri.starts_with('/')
            || uri.len() > 8192
            || uri.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(Error::invalid(UNREADABLE));
        }
        let path = uri.split(['?', '#']).next().unwrap_or("/");
        if !unambiguous(path) {
            return Err(Error::invalid(AMBIGUOUS_PATH));
        }
        let scheme = if https { "https" } else { "http" };
        Ok(Self {
            https,
            url: format!("{scheme}://{host_header}{uri}"),
            host: name,
            port,
            path: path.to_owned(),
        })
    }

    /// From an absolute URL (nginx's `X-Original-URL`, a return address).
    pub fn from_url(url: &str) -> Result<Self> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::invalid(UNREADABLE))?;
        let at = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, uri) = rest.split_at(at);
        let uri = if uri.starts_with('/') {
            uri.to_owned()
        } else {
            format!("/{uri}")
        };
        Self::new(scheme, host, &uri)
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{scheme}://{}{port}", self.host)
    }
}

/// Whether every server reads `path` the same way: no dot segment (also as
/// `%2e`), no `;` (path parameters, `..;`), no empty segment (`//`), no
/// backslash, and no escape of an unreserved character, `/`, `\` or NUL
/// (an escape that is not one is refused too).
fn unambiguous(path: &str) -> bool {
    if path.contains(['\\', ';']) || path.contains("//") {
        return false;
    }
    let bytes = path.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let decoded = bytes
                .get(at + 1..at + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match decoded {
                Some(b) if !(b.is_ascii_alphanumeric() || b"-._~/\\\0".contains(&b)) => at += 3,
                _ => return false,
            }
        } else {
            at += 1;
        }
    }
    !path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
}

/// Why an address two apps claim is not decided on (saving such apps is
/// refused; an older database may still hold them).
pub const SHARED_DOOR: &str = "Two apps in Usher have this host and path, with different \
    ports, and proxies do not tell hosts apart by port, so Usher does not decide on this \
    address. Ask Usher's owner or an admin to give the host to one app.";

/// The door a request is judged at: the app, the host entry that matched,
/// and whether the path is one of the app's public paths.
#[derive(Clone, Debug)]
pub struct Door<'a> {
    pub app: &'a App,
    pub rule: HostRule,
    pub public: bool,
}

impl Door<'_> {
    /// Whether Usher may send a browser (and a sign-in code) to `target`:
    /// one of the app's entries that cover it allows it
    /// ([`HostRule::allows_return`]).
    pub fn allows_return(&self, target: &Target) -> bool {
        self.app.forward_auth.as_ref().is_some_and(|forward| {
            forward
                .rules()
                .any(|rule| rule.covers(&target.host, &target.path) && rule.allows_return(target))
        })
    }
}

/// The app whose door covers `target`: the entry with the longest path
/// prefix on the target's host, whatever the port (proxies match hosts
/// without it, and the port in the address is the client's to choose). An
/// error (400) when the path differs from a prefix of one of the host's
/// entries only in case, and (403) when two apps have that entry with
/// different ports.
pub fn find_door<'a>(apps: &'a [App], target: &Target) -> Result<Option<Door<'a>>> {
    let mut best: Option<(&App, HostRule)> = None;
    let mut shared = false;
    for app in apps {
        let Some(forward) = &app.forward_auth else {
            continue;
        };
        for rule in forward.rules() {
            if !rule.covers(&target.host, &target.path) {
                if rule.covers_ignoring_case(&target.host, &target.path) {
                    return Err(Error::invalid(CASE_PATH));
                }
                continue;
            }
            let Some((known_app, known)) = &best else {
                best = Some((app, rule));
                continue;
            };
            if rule.path.len() > known.path.len() {
                best = Some((app, rule));
                shared = false;
            } else if rule.path.len() == known.path.len() {
                if known_app.id != app.id {
                    shared = true;
                } else if rule.port == target.port && known.port != target.port {
                    // Within one app, the entry for the target's port says
                    // best where Usher leads (in messages).
                    best = Some((app, rule));
                }
            }
        }
    }
    if shared {
        return Err(Error::forbidden(SHARED_DOOR));
    }
    Ok(best.map(|(app, rule)| {
        let public = app
            .forward_auth
            .as_ref()
            .is_some_and(|f| f.is_public(&target.path));
        Door { app, rule, public }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_servers_read_differently_are_refused() {
        for path in [
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/public/.%2E/admin",
            "/a/./b",
            "/a/.",
            "/admin;x=1/y",
            "/public/..;/admin",
            "//a/b",
            "/a//b",
            "/api/%68ealth",
            "/a%7Eb",
            "/public%2f..%2fadmin",
            "/a\\..\\b",
            "/a%5Cb",
            "/a%00",
            "/a%zz",
            "/a%2",
        ] {
            assert!(!unambiguous(path), "{path}");
        }
        for path in [
            "/",
            "/a/b/",
            "/files/my%20doc",
            "/a.b/c..d/.well-known",
            "/%C3%A9",
        ] {
            assert!(unambiguous(path), "{path}");
        }
    }

    #[test]
    fn a_prefix_covers_itself_and_below_only() {
        assert!(under("/api/health", "/api/health"));
        assert!(under("/api/health/db", "/api/health"));
        assert!(!under("/api/healthz", "/api/health"));
        assert!(!under("/api/healthx", "/api/health"));
        assert!(!under("/API/health", "/api/health"));
        assert!(under("/anything", ""));
        assert!(under_ignoring_case("/API/health/x", "/api/health"));
        assert!(!under_ignoring_case("/API/healthx", "/api/health"));
    }

    #[test]
    fn hosts_are_checked_and_written_one_way() {
        let rule = HostRule::parse("Wiki.Example.com:8443/docs/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rule.render(), "wiki.example.com:8443/docs");
        let rule = HostRule::parse("HTTP://dev.test:8080").unwrap_or_else(|e| panic!("{e}"));
        assert!(rule.http);
        assert_eq!(rule.render(), "http://dev.test:8080");
        let rule = HostRule::parse("https://wiki.example.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rule.render(), "wiki.example.com");
        for bad in [
            "ftp://wiki.example.com",
            "wiki example.com",
            "wiki.example.com:0",
            "wiki.example.com/a/../b",
            "wiki.example.com/a//b",
            "wiki.example.com/a%2fb",
            "wiki.example.com/a;b",
            "",
            "*.example.com",
        ] {
            assert!(HostRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_go_to_https_on_the_rules_port_unless_the_rule_says_http() -> Result<()> {
        let plain = HostRule::parse("wiki.test").unwrap_or_else(|e| panic!("{e}"));
        let dev = HostRule::parse("http://wiki.test:8080").unwrap_or_else(|e| panic!("{e}"));
        let at = |url: &str| Target::from_url(url);
        assert!(plain.allows_return(&at("https://wiki.test/x")?));
        assert!(plain.allows_return(&at("https://wiki.test:443/x")?));
        assert!(!plain.allows_return(&at("http://wiki.test/x")?));
        assert!(!plain.allows_return(&at("https://wiki.test:8443/x")?));
        assert!(dev.allows_return(&at("http://wiki.test:8080/x")?));
        assert!(dev.allows_return(&at("https://wiki.test:8080/x")?));
        assert!(!dev.allows_return(&at("http://wiki.test:8081/x")?));
        assert!(!dev.allows_return(&at("http://wiki.test/x")?));
        Ok(())
    }

    #[test]
    fn roles_rank_in_the_apps_order() {
        let roles: Vec<String> = ["Admin", "Power", "Basic", "Guest"]
            .map(str::to_owned)
            .to_vec();
        assert!(role_reaches(&roles, "Admin", "Basic"));
        assert!(role_reaches(&roles, "Basic", "Basic"));
        assert!(!role_reaches(&roles, "Basic", "Power"));
        assert!(!role_reaches(&roles, "Guest", "Basic"));
        assert!(!role_reaches(&roles, "Gone", "Guest"));
    }

    #[test]
    fn a_target_keeps_its_url_and_its_path_as_sent() -> Result<()> {
        let t = Target::new("https", "Wiki.Example.com:8443", "/a/b?x=1/../y")?;
        assert_eq!(t.host, "wiki.example.com");
        assert_eq!(t.port, Some(8443));
        assert_eq!(t.path, "/a/b");
        assert_eq!(t.url, "https://Wiki.Example.com:8443/a/b?x=1/../y");
        let t = Target::from_url("http://app.test/x?y")?;
        assert_eq!((t.host.as_str(), t.path.as_str()), ("app.test", "/x"));
        for (scheme, host) in [("ftp", "a.test"), ("https", "a@b.test"), ("https", "")] {
            assert!(Target::new(scheme, host, "/").is_err());
        }
        assert!(Target::new("https", "a.test", "/a/../b").is_err());
        Ok(())
    }

    fn app(name: &str, hosts: &[&str]) -> App {
        App {
            id: crate::apps::AppId::new(),
            name: name.to_owned(),
            launch_url: String::new(),
            icon: None,
            client_id: String::new(),
            secret_hash: None,
            public: true,
            third_party: false,
            require_mfa: false,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            roles: vec!["Admin".into(), "Power".into(), "Basic".into()],
            access: crate::apps::Access::default(),
            forward_auth: Some(ForwardAuth {
                hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
                public_paths: Vec::new(),
                min_role: "Basic".into(),
                require_mfa: false,
            }),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn door_name(apps: &[App], url: &str) -> Result<Option<String>> {
        let target = Target::from_url(url)?;
        Ok(find_door(apps, &target)?.map(|door| door.app.name.clone()))
    }

    #[test]
    fn caddys_lower_casing_of_the_kelvin_sign_and_dotted_i_counts_as_case_only() -> Result<()> {
        // Go's strings.ToLower makes K (U+212A) a k and İ (U+0130) an i.
        for path in [
            "/KIBANA",
            "/%E2%84%AAibana",
            "/%e2%84%aaibana/app",
            "/\u{212A}ibana",
            "/k%C4%B0bana",
            "/k\u{0130}bana/x",
            "/%E2%84%AA%C4%B0BANA",
        ] {
            assert!(under_ignoring_case(path, "/kibana"), "{path}");
        }
        for path in [
            "/%E2%84%AAibanax",
            "/%E2%84%ABibana",
            "/%C4%B1bana",
            "/kibana",
        ] {
            assert!(!under_ignoring_case(path, "/kibana/x"), "{path}");
        }
        assert!(!under_ignoring_case("/%E2%84%AAibanax", "/kibana"));
        let apps = [
            app("Tools", &["tools.test"]),
            app("Kibana", &["tools.test/kibana"]),
        ];
        for path in [
            "/KIBANA/app",
            "/%E2%84%AAibana/app",
            "/k%C4%B0bana",
            "/\u{212A}ibana",
        ] {
            let refused = door_name(&apps, &format!("https://tools.test{path}"));
            assert!(
                matches!(&refused, Err(Error::Invalid(m)) if m == CASE_PATH),
                "{path}: {refused:?}"
            );
        }
        assert_eq!(
            door_name(&apps, "https://tools.test/kibana/app")?.as_deref(),
            Some("Kibana")
        );
        assert_eq!(
            door_name(&apps, "https://tools.test/%E2%84%ABibana")?.as_deref(),
            Some("Tools")
        );
        Ok(())
    }

    #[test]
    fn the_port_never_decides_which_app_judges_a_request() -> Result<()> {
        let apps = [
            app("Wiki", &["tools.test"]),
            app("Grafana", &["tools.test:8443/grafana"]),
        ];
        // Whatever port the client writes in its Host, the host's rule.
        for url in [
            "https://tools.test/x",
            "https://tools.test:8443/x",
            "https://tools.test:9999/x",
        ] {
            assert_eq!(door_name(&apps, url)?.as_deref(), Some("Wiki"), "{url}");
        }
        for url in [
            "https://tools.test/grafana/d",
            "https://tools.test:1/grafana",
        ] {
            assert_eq!(door_name(&apps, url)?.as_deref(), Some("Grafana"), "{url}");
        }
        // Two apps on one host that differ only by port cannot be saved …
        let admin = app("Admin", &["tools.test:8443"]);
        let entry = |a: &App, b: &App| {
            a.forward_auth
                .as_ref()
                .zip(b.forward_auth.as_ref())
                .and_then(|(a, b)| a.shared_entry(b))
        };
        assert_eq!(entry(&admin, &apps[0]).as_deref(), Some("tools.test:8443"));
        assert_eq!(
            entry(&app("Other", &["http://TOOLS.test:80/Grafana"]), &apps[1]).as_deref(),
            Some("http://tools.test:80/Grafana")
        );
        assert_eq!(entry(&app("Notes", &["tools.test/notes"]), &apps[0]), None);
        // … and where an older database has them, neither decides.
        let both = [app("Wiki", &["tools.test"]), admin];
        for url in ["https://tools.test/", "https://tools.test:8443/"] {
            let refused = door_name(&both, url);
            assert!(
                matches!(&refused, Err(Error::Forbidden(m)) if m == SHARED_DOOR),
                "{url}: {refused:?}"
            );
        }
        // One app may name its host on several ports: each is kept, and
        // each is a port Usher may lead to.
        let forward = ForwardAuth {
            hosts: vec!["http://dev.test:8080".into(), "http://dev.test:8081".into()],
            public_paths: Vec::new(),
            min_role: "Basic".into(),
            require_mfa: false,
        }
        .validate(&["Basic".to_owned()])?;
        assert_eq!(forward.hosts.len(), 2);
        let dev = [app(
            "Dev",
            &["http://dev.test:8080", "http://dev.test:8081"],
        )];
        for (url, allowed) in [
            ("http://dev.test:8080/x", true),
            ("http://dev.test:8081/x", true),
            ("http://dev.test:8082/x", false),
            ("http://dev.test/x", false),
        ] {
            let target = Target::from_url(url)?;
            let door = find_door(&dev, &target)?;
            assert_eq!(
                door.map(|d| d.allows_return(&target)),
                Some(allowed),
                "{url}"
            );
        }
        Ok(())
    }
}
