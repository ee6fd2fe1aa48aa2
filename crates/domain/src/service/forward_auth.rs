//! Forward authentication: a reverse proxy asks, for each request to a
//! protected tool, whether to let it through and as whom
//! ([`Usher::forward_auth`]); and the steps that give a browser a cookie
//! on an app's host outside Usher's cookie domain ([`Usher::forward_start`],
//! [`Usher::forward_continue`], [`Usher::forward_callback`]).
//!
//! The question is answered from the store's memory (as API keys are), so
//! it costs no database round trip while nothing changed; the store keeps
//! that memory exact (`ForwardAuthStore`).

use crate::{
    Error, Result,
    apps::{App, AppId, ForwardAuth},
    clock::{MINUTE, Millis},
    forward_auth::{Target, find_door, role_reaches},
    secret::Secret,
    service::auth::Actor,
    store::{ForwardCode, ForwardCookie, HostSession},
    token,
};

use super::Usher;

/// What the proxy passes on to the tool (Authelia's header names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// `Remote-Id`: the user's id, which never changes (the email does).
    pub id: String,
    /// `Remote-User`: the email, as Authelia's users are known by.
    pub user: String,
    pub email: String,
    pub name: String,
    /// Team project names, comma-separated.
    pub groups: String,
    /// The person's app role.
    pub role: String,
}

/// Why a signed-in person may not pass, in words, and where to go about it.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The app's name, when the address belongs to one.
    pub app: Option<String>,
    pub message: String,
    /// A page in Usher that helps (a path inside Usher) and its label.
    pub link: Option<(String, String)>,
}

/// The answer to a proxy's question.
#[derive(Clone, Debug)]
pub enum ForwardAnswer {
    /// Let through; with the person, or None on a public path.
    Allowed(Option<Remote>),
    /// Nobody is signed in: a browser goes to `sign_in` (absolute URL).
    SignIn { sign_in: String },
    /// Signed in, but not let through.
    Refused(Refusal),
}

/// What the proxy asks: the address, and the cookies the browser sent.
#[derive(Debug, Default)]
pub struct ForwardQuestion<'a> {
    pub session_cookie: Option<&'a str>,
    pub host_cookie: Option<&'a str>,
}

/// How long a code that carries a session to an app's host lives.
const CODE_LIFETIME: Millis = MINUTE;

impl Usher {
    /// The answer for a request to `target`.
    pub async fn forward_auth(
        &self,
        target: &Target,
        question: &ForwardQuestion<'_>,
    ) -> Result<ForwardAnswer> {
        if self.config.user_management_disabled {
            return Ok(ForwardAnswer::Refused(Refusal {
                app: None,
                message: "User management is off in this Usher, so nobody can sign in to apps \
                          through it."
                    .into(),
                link: None,
            }));
        }
        let (apps, mfa_required) = self.store.forward_apps().await?;
        let mfa_required = mfa_required && !self.config.mfa_disabled;
        let Some(door) = find_door(&apps, target)? else {
            // Anyone may see this: no names.
            return Ok(ForwardAnswer::Refused(Refusal {
                app: None,
                message: format!(
                    "No app in Usher covers {}{}. Ask Usher's owner or an admin to add this \
                     address to an app.",
                    host_port(target),
                    target.path,
                ),
                link: None,
            }));
        };
        let app = door.app;
        if door.public {
            return Ok(ForwardAnswer::Allowed(None));
        }
        let now = self.now();
        let cookies = [
            question.session_cookie.map(|t| (true, token::hash(t))),
            question.host_cookie.map(|t| (false, token::hash(t))),
        ];
        let mut found = None;
        for (is_session, hash) in cookies.into_iter().flatten() {
            let cookie = if is_session {
                ForwardCookie::Session(&hash)
            } else {
                ForwardCookie::Host(&hash)
            };
            let Some(access) = self.store.forward_access(cookie, app.id, now).await? else {
                continue;
            };
            // A host cookie works on the host it was set on, nowhere else.
            if access
                .host
                .as_ref()
                .is_none_or(|host| *host == host_port(target))
            {
                found = Some(access);
                break;
            }
        }
        let Some(access) = found else {
            return Ok(ForwardAnswer::SignIn {
                sign_in: self.sign_in_url(target),
            });
        };
        let Some(forward) = &app.forward_auth else {
            return Err(Error::Internal(
                "an app without forward auth matched".into(),
            ));
        };
        let refuse = |message: String, link: Option<(&str, &str)>| {
            Ok(ForwardAnswer::Refused(Refusal {
                app: Some(app.name.clone()),
                message,
                link: link.map(|(href, label)| (href.to_owned(), label.to_owned())),
            }))
        };
        let user = &access.user;
        if user.password_change_required {
            return refuse(
                "Choose your new password in Usher first, then open the app again.".into(),
                Some(("/set-password", "Choose a password")),
            );
        }
        let Some(role) = &access.role else {
            return refuse(
                format!(
                    "You have no access to {}. {}",
                    app.name,
                    self.who_to_ask("for access").await?
                ),
                None,
            );
        };
        if !role_reaches(&app.roles, role, &forward.min_role) {
            return refuse(
                format!(
                    "{} needs the app role {} or above; yours is {role}. {}",
                    app.name,
                    forward.min_role,
                    self.who_to_ask("for another role").await?
                ),
                None,
            );
        }
        if mfa_required && !user.mfa_enabled {
            return refuse(
                "Usher asks everyone for two-factor authentication. Set it up in Usher, then \
                 open the app again."
                    .into(),
                Some(("/settings/mfa", "Set up two-factor authentication")),
            );
        }
        if forward.require_mfa && !user.mfa_enabled {
            return refuse(
                format!(
                    "{} asks for two-factor authentication. Set it up in Usher, then open the \
                     app again.",
                    app.name
                ),
                Some(("/settings/mfa", "Set up two-factor authentication")),
            );
        }
        if forward.require_mfa && !access.mfa {
            return refuse(
                format!(
                    "{} asks for two-factor authentication, and you signed in without it. Sign \
                     out of Usher and sign in again with your code.",
                    app.name
                ),
                Some(("/signout", "Sign out")),
            );
        }
        let email = user
            .email
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default();
        // Tools know people by the email Usher sends: one the person typed
        // in themselves passes only once they proved it is theirs.
        if !user.email_verified {
            return refuse(
                format!(
                    "Your email address {email} is not confirmed yet, and {} knows people by \
                     it. Open the link Usher sent to it (or send it again from your profile), \
                     then open the app again.",
                    app.name
                ),
                Some(("/settings/personal", "Your profile")),
            );
        }
        Ok(ForwardAnswer::Allowed(Some(Remote {
            id: user.id.to_string(),
            user: email.clone(),
            email,
            name: user.display_name(),
            groups: access.groups.join(","),
            role: role.clone(),
        })))
    }

    /// "Ask the owner, Ada Lovelace (ada@example.com), or an admin …".
    async fn who_to_ask(&self, what: &str) -> Result<String> {
        let owner = self.store.owner().await?;
        Ok(
            match owner.and_then(|o| Some((o.display_name(), o.email?))) {
                Some((name, email)) => {
                    format!("Ask Usher's owner, {name} ({email}), or an admin {what}.")
                }
                None => format!("Ask Usher's owner or an admin {what}."),
            },
        )
    }

    /// Whether Usher's session cookie reaches `target`'s host: the cookie
    /// domain covers it, or it is Usher's own host.
    fn cookie_reaches(&self, target: &Target) -> bool {
        if let Some(domain) = &self.config.cookie_domain {
            let domain = domain.trim_start_matches('.');
            if target.host == domain || target.host.ends_with(&format!(".{domain}")) {
                return true;
            }
        }
        base_host(&self.config.base_url).is_some_and(|base| base == target.host)
    }

    /// Where a browser that is not signed in goes: Usher's sign-in, which
    /// then leads back to `target` (through `/.usher/` on the app's host
    /// when Usher's cookie does not reach it).
    fn sign_in_url(&self, target: &Target) -> String {
        if self.cookie_reaches(target) {
            let back = format!("{FORWARD_CONTINUE}?rd={}", encode(&target.url));
            format!("{}/signin?redirect={}", self.config.base_url, encode(&back))
        } else {
            format!(
                "{}/.usher/start?rd={}",
                target.origin(),
                encode(&target.url)
            )
        }
    }

    /// The app `url` belongs to; an address no app covers is refused, so
    /// no step of the way back is an open redirect. The address must also
    /// be one that an entry of the app covering it lets Usher lead to:
    /// https (or http where the entry says `http://`), on the entry's port
    /// (443 or 80 when it names none), so a sign-in code never travels in
    /// the clear or to another server on the same host. (The port decides
    /// only this, never which app an address belongs to.)
    async fn app_at(&self, url: &str) -> Result<(Target, App)> {
        let not_an_app = || {
            Error::invalid(
                "That address does not belong to any app in Usher, so Usher does not lead there.",
            )
        };
        let target = Target::from_url(url).map_err(|_| not_an_app())?;
        let (apps, _) = self.store.forward_apps().await?;
        let door = find_door(&apps, &target)
            .map_err(|_| not_an_app())?
            .ok_or_else(not_an_app)?;
        if !door.allows_return(&target) {
            let scheme = if door.rule.http {
                "http or https"
            } else {
                "https"
            };
            let port = match door.rule.port {
                Some(port) => format!("port {port}"),
                None => "the usual port".to_owned(),
            };
            return Err(Error::invalid(format!(
                "{} is set up in Usher for {scheme} on {port}, and this address is not, so Usher \
                 sends no sign-in there. Open the app at its usual address, or ask an admin to \
                 add this one to the app's hosts (http://{}:<port> allows plain http, for a test \
                 machine).",
                door.app.name, target.host
            )));
        }
        Ok((target, door.app.clone()))
    }

    /// `/.usher/start` on an app's host (`host`, the request's Host): checks
    /// where to return to, and gives the browser a state (kept in a cookie
    /// on that host), whether the app is on https, and the address on
    /// Usher's host that keeps the state's hash in a cookie there
    /// ([`Usher::forward_begin`]) on the way to sign-in.
    pub async fn forward_start(&self, host: &str, url: &str) -> Result<(Secret, bool, String)> {
        let (target, _) = self.app_at(url).await?;
        if !same_host(host, &host_port(&target)) {
            return Err(Error::invalid(
                "That address is on another host than this one, so Usher does not lead there.",
            ));
        }
        let state = token::generate();
        let begin = format!(
            "{}{FORWARD_BEGIN}?rd={}&state={}",
            self.config.base_url,
            encode(&target.url),
            state.hash
        );
        Ok((state.secret, target.https, begin))
    }

    /// `/forward-auth/begin` on Usher's host, the second step from an app's
    /// host: checks the address again and gives the sign-in address that
    /// leads on to `/forward-auth/continue`. The caller keeps `state` (the
    /// state's hash) in a cookie on Usher's host, which continue asks for.
    pub async fn forward_begin(&self, url: &str, state: &str) -> Result<String> {
        let state = well_formed_state(Some(state))?;
        let (target, _) = self.app_at(url).await?;
        let back = format!(
            "{FORWARD_CONTINUE}?rd={}&state={state}",
            encode(&target.url)
        );
        Ok(format!(
            "{}/signin?redirect={}",
            self.config.base_url,
            encode(&back)
        ))
    }

    /// `/forward-auth/continue`, signed in to Usher: where the browser goes
    /// next. Straight back when Usher's cookie reaches the app's host; else
    /// to `/.usher/callback` on that host with a single-use code, which is
    /// made only when the `state` parameter is the one this browser was
    /// given a cookie for at `/forward-auth/begin` (`state_cookie`): a link
    /// to continue with a state of someone else's choosing makes no code.
    pub async fn forward_continue(
        &self,
        actor: &Actor,
        url: &str,
        state: Option<&str>,
        state_cookie: Option<&str>,
    ) -> Result<String> {
        let (target, _) = self.app_at(url).await?;
        if self.cookie_reaches(&target) {
            return Ok(target.url);
        }
        let Some(session) = &actor.session else {
            return Err(Error::forbidden(
                "Sign in with an account to open apps through Usher.",
            ));
        };
        let state = well_formed_state(state)?;
        if state_cookie != Some(state) {
            return Err(Error::invalid(
                "This sign-in did not start in this browser. Open the app again.",
            ));
        }
        let code = token::generate();
        self.store
            .insert_forward_code(&ForwardCode {
                code_hash: code.hash,
                session_hash: session.clone(),
                url: target.url.clone(),
                host: host_port(&target),
                state_hash: state.to_owned(),
                expires_at: self.now() + CODE_LIFETIME,
            })
            .await?;
        Ok(format!(
            "{}/.usher/callback?code={}",
            target.origin(),
            code.secret.expose()
        ))
    }

    /// `/.usher/callback` on an app's host: uses the code once, in the
    /// browser that set out (its state cookie: the `__Host-` one on https),
    /// on the host it was made for, and starts a host session there. Gives
    /// the host cookie's token, whether the app is on https, and where to go.
    pub async fn forward_callback(
        &self,
        host: &str,
        code: &str,
        state: StateCookies<'_>,
    ) -> Result<(Secret, bool, String)> {
        let spent = || {
            Error::invalid(
                "This sign-in link has been used or has expired. Open the app again to sign in.",
            )
        };
        if !token::is_well_formed(code) {
            return Err(spent());
        }
        let now = self.now();
        let found = self
            .store
            .take_forward_code(&token::hash(code), now)
            .await?
            .ok_or_else(spent)?;
        let target = Target::from_url(&found.url)?;
        let state = if target.https {
            state.secure
        } else {
            state.plain
        };
        let state_matches = state.is_some_and(|s| token::hash(s) == found.state_hash);
        if !same_host(host, &found.host) || !state_matches {
            return Err(Error::invalid(
                "This sign-in link was made for another browser or host. Open the app again to \
                 sign in.",
            ));
        }
        let cookie = token::generate();
        let started = self
            .store
            .insert_host_session(
                &HostSession {
                    token_hash: cookie.hash,
                    session_hash: found.session_hash,
                    host: found.host,
                    created_at: now,
                },
                now,
            )
            .await?;
        if !started {
            return Err(Error::Unauthorized(
                "Your Usher session ended. Open the app again to sign in.".into(),
            ));
        }
        Ok((cookie.secret, target.https, found.url))
    }
}

/// Where `/.usher/start` sends the browser on Usher's host.
pub const FORWARD_BEGIN: &str = "/forward-auth/begin";
/// Usher's page that leads back to the app after sign-in.
pub const FORWARD_CONTINUE: &str = "/forward-auth/continue";

/// The state cookies a browser brings to `/.usher/callback`: the
/// `__Host-` one (an app on https) and the plain one (an app on http).
#[derive(Clone, Copy, Debug, Default)]
pub struct StateCookies<'a> {
    pub secure: Option<&'a str>,
    pub plain: Option<&'a str>,
}

/// A state's hash as it travels: 64 hex digits, lower-case.
fn well_formed_state(state: Option<&str>) -> Result<&str> {
    state
        .filter(|s| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| Error::invalid("This sign-in did not start at the app. Open the app again."))
}

impl Usher {
    /// Refuses a door that another app has already: the same host and path
    /// prefix, on any port (proxies match hosts without the port, so the
    /// client would choose which app's rule judges it).
    pub(crate) async fn refuse_taken_door(
        &self,
        id: AppId,
        forward: Option<&ForwardAuth>,
    ) -> Result<()> {
        let Some(forward) = forward else {
            return Ok(());
        };
        let (apps, _) = self.store.forward_apps().await?;
        for other in apps.iter().filter(|other| other.id != id) {
            if let Some(entry) = other
                .forward_auth
                .as_ref()
                .and_then(|f| forward.shared_entry(f))
            {
                return Err(Error::field(
                    "forwardAuth",
                    format!(
                        "{entry} is a host of the app {} already (on any port: proxies tell \
                         hosts apart without it). Give each host and path to one app, or a \
                         longer path to this one.",
                        other.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `host[:port]` of a target, as host cookies and codes are bound to.
fn host_port(target: &Target) -> String {
    match target.port {
        Some(port) => format!("{}:{port}", target.host),
        None => target.host.clone(),
    }
}

/// Whether a request's `Host` is `expected` (`host[:port]`, lower-case).
fn same_host(host: &str, expected: &str) -> bool {
    host.trim()
        .trim_end_matches('.')
        .eq_ignore_ascii_case(expected)
}

/// The base URL's host, when Usher's own cookie is for its whole host (no
/// path under N8N_PATH, where the cookie's path is that path).
fn base_host(base_url: &str) -> Option<String> {
    let rest = base_url.split_once("://")?.1;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.is_empty() {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    Some(host.to_ascii_lowercase())
}

/// Percent-encodes everything but unreserved characters, for a query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
