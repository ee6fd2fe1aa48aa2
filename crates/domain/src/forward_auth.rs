//! Forward authentication: the hosts (and path prefixes) a reverse proxy
//! protects with an app, the rule at that door, and how a request's address
//! is read before it is matched.
//!
//! The proxy asks Usher about every request (`/api/authz/forward-auth`,
//! `/api/authz/auth-request`) and passes the person on with `Remote-*`
//! headers. Which app a request belongs to is decided here, on the
//! address as the *upstream* will read it: dot segments resolved, `;`
//! parameters dropped, and an address with an encoded slash or a backslash
//! refused, so that `/public/../admin` cannot be matched as `/public`.

use crate::{Error, Result, apps::App};

/// The door of one app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardAuth {
    /// `host[:port][/path]`, lower-case host, no trailing slash on a path.
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
    pub host: String,
    pub port: Option<u16>,
    /// `""` for the whole host, else `/prefix`.
    pub path: String,
}

impl HostRule {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text.contains("://") {
            return Err(format!(
                "{text}: give the host without http:// or https:// (wiki.example.com)."
            ));
        }
        let (authority, path) = match text.find('/') {
            Some(at) => text.split_at(at),
            None => (text, ""),
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
        Ok(Self { host, port, path })
    }

    fn render(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}{port}{}", self.host, self.path)
    }

    /// Whether this rule covers a request to `host`:`port` for `path`.
    pub fn covers(&self, host: &str, port: Option<u16>, path: &str) -> bool {
        self.host == host && (self.port.is_none() || self.port == port) && under(path, &self.path)
    }
}

/// A path prefix as written (`/api/health/` → `/api/health`); None for `""`
/// or `/` (everything).
fn public_path(path: &str) -> std::result::Result<Option<String>, &'static str> {
    let path = path.trim();
    if path.is_empty() || path == "/" {
        return Ok(None);
    }
    if !path.starts_with('/')
        || path.len() > PATH_MAX
        || path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "?#\\;%".contains(c))
        || path.split('/').any(|s| s == "." || s == "..")
    {
        return Err("must start with / and hold no spaces, ?, #, %, ;, backslash or dot segments.");
    }
    Ok(Some(path.trim_end_matches('/').to_owned()))
}

/// Whether `path` is `prefix` or below it (`/a` covers `/a`, `/a/b`, not `/ab`).
pub fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
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
        let mut hosts = Vec::new();
        for host in &self.hosts {
            let rule = HostRule::parse(host).map_err(|why| Error::field("forwardAuth", why))?;
            let rendered = rule.render();
            if !hosts.contains(&rendered) {
                hosts.push(rendered);
            }
        }
        self.hosts = hosts;
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
    /// The path as matched (normalised, see the module's comment).
    pub path: String,
    /// The original URL, to return to after sign-in.
    pub url: String,
}

/// Why an address cannot be decided on: the proxy sent something Usher
/// cannot read (its configuration, most likely) or a path made to slip
/// past a rule.
pub const UNREADABLE: &str = "Usher cannot read the address this request was for.";

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
        let raw_path = uri.split(['?', '#']).next().unwrap_or("/");
        let path = normalise(raw_path).ok_or_else(|| Error::invalid(UNREADABLE))?;
        let scheme = if https { "https" } else { "http" };
        Ok(Self {
            https,
            url: format!("{scheme}://{host_header}{uri}"),
            host: name,
            port,
            path,
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

/// The path as an upstream reads it: `%2e` is a dot, dot segments are
/// resolved, empty segments and `;` parameters dropped. None for a path
/// with an encoded slash or backslash, or a backslash: servers disagree on
/// those, so no rule is decided on them.
fn normalise(path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    if path.contains('\\')
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%00")
    {
        return None;
    }
    let mut segments: Vec<String> = Vec::new();
    for segment in path.split('/') {
        let segment = segment.split(';').next().unwrap_or_default();
        let segment = segment.replace("%2e", ".").replace("%2E", ".");
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    Some(format!("/{}", segments.join("/")))
}

/// The app whose door covers `target`, the most specific rule first (the
/// longest path prefix), with whether the path is public.
pub fn find_app<'a>(apps: &'a [App], target: &Target) -> Option<(&'a App, bool)> {
    let mut best: Option<(&App, usize)> = None;
    for app in apps {
        let Some(forward) = &app.forward_auth else {
            continue;
        };
        for rule in forward.rules() {
            if rule.covers(&target.host, target.port, &target.path)
                && best.is_none_or(|(_, len)| rule.path.len() > len)
            {
                best = Some((app, rule.path.len()));
            }
        }
    }
    best.map(|(app, _)| {
        let public = app
            .forward_auth
            .as_ref()
            .is_some_and(|f| f.is_public(&target.path));
        (app, public)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_parameters_are_read_as_the_upstream_reads_them() {
        assert_eq!(normalise("/public/../admin").as_deref(), Some("/admin"));
        assert_eq!(normalise("/public/%2e%2e/admin").as_deref(), Some("/admin"));
        assert_eq!(normalise("/admin;x=1/y").as_deref(), Some("/admin/y"));
        assert_eq!(normalise("//a///b/").as_deref(), Some("/a/b"));
        assert_eq!(normalise("/../../etc").as_deref(), Some("/etc"));
        for path in ["/public%2f..%2fadmin", "/a\\..\\b", "/a%5Cb", "/a%00"] {
            assert_eq!(normalise(path), None, "{path}");
        }
    }

    #[test]
    fn a_prefix_covers_itself_and_below_only() {
        assert!(under("/api/health", "/api/health"));
        assert!(under("/api/health/db", "/api/health"));
        assert!(!under("/api/healthz", "/api/health"));
        assert!(under("/anything", ""));
    }

    #[test]
    fn hosts_are_checked_and_written_one_way() {
        let rule = HostRule::parse("Wiki.Example.com:8443/docs/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rule.render(), "wiki.example.com:8443/docs");
        for bad in [
            "https://wiki.example.com",
            "wiki example.com",
            "wiki.example.com:0",
            "wiki.example.com/a/../b",
            "",
            "*.example.com",
        ] {
            assert!(HostRule::parse(bad).is_err(), "{bad}");
        }
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
    fn a_target_keeps_its_url_and_matches_on_the_normalised_path() -> Result<()> {
        let t = Target::new("https", "Wiki.Example.com:8443", "/a/../b?x=1")?;
        assert_eq!(t.host, "wiki.example.com");
        assert_eq!(t.port, Some(8443));
        assert_eq!(t.path, "/b");
        assert_eq!(t.url, "https://Wiki.Example.com:8443/a/../b?x=1");
        let t = Target::from_url("http://app.test/x?y")?;
        assert_eq!((t.host.as_str(), t.path.as_str()), ("app.test", "/x"));
        for (scheme, host) in [("ftp", "a.test"), ("https", "a@b.test"), ("https", "")] {
            assert!(Target::new(scheme, host, "/").is_err());
        }
        Ok(())
    }
}
