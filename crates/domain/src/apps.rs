//! Apps (Budibase's apps, for any tool): what people sign into through Usher
//! as their OpenID Connect provider, who may, and with which app role.
//!
//! Who may use an app: everyone (with the app's default role), or chosen
//! people and members of chosen projects, each mapped to one app role. A
//! person's role is the one they were chosen with, else that of the first
//! chosen project (in the app's order) they belong to, else, when the app
//! is for everyone, the default role. The store applies that rule in SQL
//! (`crates/store/src/apps.rs`), the only place it is written.

pub use crate::forward_auth::ForwardAuth;
use crate::{
    Error, Result,
    clock::Millis,
    model::{UserId, id_type},
    resources::ProjectId,
};

id_type!(
    /// An app's id.
    AppId,
    "app"
);

/// Budibase's built-in app roles, most rights first.
pub const BUILT_IN_ROLES: [&str; 3] = ["Admin", "Power", "Basic"];

/// The role of people who are given access without one named.
pub const DEFAULT_ROLE: &str = "Basic";

/// An app as stored.
#[derive(Clone, Debug)]
pub struct App {
    pub id: AppId,
    pub name: String,
    pub launch_url: String,
    pub icon: Option<String>,
    /// The OAuth client id RPs are configured with.
    pub client_id: String,
    /// SHA-256 of the client secret; None for a public app (PKCE only).
    pub secret_hash: Option<String>,
    pub public: bool,
    /// A third-party app asks each person's consent; first-party apps do not.
    pub third_party: bool,
    /// Only people with two-factor authentication may sign in.
    pub require_mfa: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The built-in roles, then custom ones.
    pub roles: Vec<String>,
    pub access: Access,
    /// The door a reverse proxy keeps with Usher (forward authentication).
    pub forward_auth: Option<ForwardAuth>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Who may use an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Everyone, with `default_role` unless chosen with another.
    pub everyone: bool,
    pub default_role: String,
    /// Chosen projects in order: their members get the role.
    pub projects: Vec<(ProjectId, String)>,
    /// Chosen people.
    pub users: Vec<(UserId, String)>,
}

impl Default for Access {
    fn default() -> Self {
        Self {
            everyone: true,
            default_role: DEFAULT_ROLE.into(),
            projects: Vec::new(),
            users: Vec::new(),
        }
    }
}

/// What a person names when registering or changing an app.
#[derive(Clone, Debug, Default)]
pub struct AppInput {
    pub name: String,
    pub launch_url: String,
    pub icon: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub third_party: bool,
    pub require_mfa: bool,
    /// Custom roles, beside the built-in ones.
    pub custom_roles: Vec<String>,
    pub access: Access,
    /// Forward authentication; an app has OpenID Connect (redirect URIs),
    /// forward authentication, or both.
    pub forward_auth: Option<ForwardAuth>,
}

const NAME_MAX: usize = 64;
const ROLE_MAX: usize = 32;
const URIS_MAX: usize = 20;

impl AppInput {
    /// Checks every field; the roles of the result are the built-in ones
    /// followed by the custom ones.
    pub fn validate(mut self) -> Result<(Self, Vec<String>)> {
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() || self.name.chars().count() > NAME_MAX {
            return Err(Error::field(
                "name",
                format!("Give the app a name of 1 to {NAME_MAX} characters."),
            ));
        }
        self.launch_url = self.launch_url.trim().to_owned();
        web_url(&self.launch_url, false)
            .map_err(|why| Error::field("launchUrl", format!("The launch URL {why}")))?;
        if let Some(icon) = &self.icon {
            let icon = icon.trim();
            if icon.is_empty() {
                self.icon = None;
            } else {
                web_url(icon, false)
                    .map_err(|why| Error::field("icon", format!("The icon URL {why}")))?;
                self.icon = Some(icon.to_owned());
            }
        }
        if self.redirect_uris.is_empty() && self.forward_auth.is_none() {
            return Err(Error::field(
                "redirectUris",
                "Give at least one redirect URI (where the app receives the sign-in), \
                 or the hosts a proxy protects with it (forward authentication).",
            ));
        }
        for (field, list) in [
            ("redirectUris", &mut self.redirect_uris),
            (
                "postLogoutRedirectUris",
                &mut self.post_logout_redirect_uris,
            ),
        ] {
            if list.len() > URIS_MAX {
                return Err(Error::field(field, format!("At most {URIS_MAX} URIs.")));
            }
            for uri in list.iter_mut() {
                *uri = uri.trim().to_owned();
                web_url(uri, true).map_err(|why| Error::field(field, format!("{uri} {why}")))?;
            }
            list.dedup();
        }
        let mut roles: Vec<String> = BUILT_IN_ROLES.iter().map(|r| (*r).to_owned()).collect();
        for role in &self.custom_roles {
            let role = role.trim();
            if role.is_empty()
                || role.chars().count() > ROLE_MAX
                || role.chars().any(|c| c.is_control())
            {
                return Err(Error::field(
                    "roles",
                    format!("A role name has 1 to {ROLE_MAX} characters."),
                ));
            }
            if !roles.iter().any(|r| r == role) {
                roles.push(role.to_owned());
            }
        }
        let known = |role: &str, field: &'static str| {
            if roles.iter().any(|r| r == role) {
                Ok(())
            } else {
                Err(Error::field(
                    field,
                    format!(
                        "{role} is not one of this app's roles ({}).",
                        roles.join(", ")
                    ),
                ))
            }
        };
        known(&self.access.default_role, "access")?;
        for (_, role) in &self.access.projects {
            known(role, "access")?;
        }
        for (_, role) in &self.access.users {
            known(role, "access")?;
        }
        if let Some(forward) = self.forward_auth.take() {
            self.forward_auth = Some(forward.validate(&roles)?);
        }
        let mut seen = std::collections::HashSet::new();
        self.access.projects.retain(|(id, _)| seen.insert(*id));
        let mut seen = std::collections::HashSet::new();
        self.access.users.retain(|(id, _)| seen.insert(*id));
        Ok((self, roles))
    }
}

/// Whether `text` is an absolute http(s) URL without a fragment (and, for
/// redirect URIs, without user info). `http` is allowed: apps on a private
/// network often have no TLS, and loopback addresses are what native apps
/// use (RFC 8252).
fn web_url(text: &str, redirect: bool) -> std::result::Result<(), &'static str> {
    if text.len() > 2000 || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("is not a URL.");
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err("must start with https:// or http://.");
    };
    if !matches!(scheme, "https" | "http") || rest.is_empty() || rest.starts_with('/') {
        return Err("must start with https:// or http:// and name a host.");
    }
    if redirect && text.contains('#') {
        return Err("must not have a fragment (#).");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if redirect && authority.contains('@') {
        return Err("must not carry a user name or password.");
    }
    Ok(())
}

/// A newly registered app and its client secret, shown once.
#[derive(Debug)]
pub struct NewApp {
    pub app: App,
    pub client_secret: Option<crate::secret::Secret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> AppInput {
        AppInput {
            name: "Grafana".into(),
            launch_url: "https://grafana.example.com".into(),
            redirect_uris: vec!["https://grafana.example.com/login/generic_oauth".into()],
            ..AppInput::default()
        }
    }

    #[test]
    fn an_app_gets_the_built_in_roles_before_its_own() -> Result<()> {
        let mut app = input();
        app.custom_roles = vec!["Viewer".into(), "Admin".into()];
        let (_, roles) = app.validate()?;
        assert_eq!(roles, ["Admin", "Power", "Basic", "Viewer"]);
        Ok(())
    }

    #[test]
    fn redirect_uris_with_a_fragment_or_another_scheme_are_refused() {
        for uri in [
            "https://app.example.com/cb#x",
            "javascript:alert(1)",
            "ftp://app.example.com/cb",
            "https:///cb",
            "https://user:pw@app.example.com/cb",
        ] {
            let mut app = input();
            app.redirect_uris = vec![uri.into()];
            assert!(app.validate().is_err(), "{uri}");
        }
    }

    #[test]
    fn a_role_the_app_does_not_have_is_refused() {
        let mut app = input();
        app.access.users = vec![(UserId::new(), "Editor".into())];
        assert!(app.validate().is_err());
    }
}
