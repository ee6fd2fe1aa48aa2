//! Who is on a page, and where the instance's state sends them instead.
//!
//! Two extractors, on the [`Identity`] the session layer leaves in the
//! request: [`Page`] for pages anyone may see (set-up, sign-in, links from
//! emails), and [`SignedInPage`] for the rest, which gives the signed-in
//! person or refuses with the right redirect. The rule for each state of
//! the instance, once:
//!
//! - owner not set up (and set-up not skipped): every page but `/setup` and
//!   the pages reached from emails leads to `/setup`;
//! - open instance (set-up skipped, or user management off): everyone acts
//!   as the owner, without signing in; the services refuse what needs a real
//!   account, as they do for `/rest`;
//! - signed out: a page that needs a session leads to `/signin`, which leads
//!   back to the page afterwards;
//! - a temporary password to replace, or two-factor authentication to set
//!   up: the session layer (`extract::session_layer`) holds the person at
//!   `/set-password` or `/settings/mfa` before any page runs, because it
//!   holds every route (`/rest` too) and lets through only what is listed;
//!   so these extractors never see a held person.

use axum::{
    extract::FromRequestParts,
    http::{Method, header, request::Parts},
};
use usher_domain::service::auth::{Actor, Identity, Instance};

use super::{Layout, PageError, percent_encode};
use crate::{AppState, error::internal};

/// Anyone on a page: who they are, if anyone, and the layout around the page.
pub struct Page {
    pub identity: Identity,
    pub layout: Layout,
    /// Where signing in leads back to (see [`way_back`]).
    back: Option<String>,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let identity = parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or_else(|| internal("session layer missing on this page"))?;
        let layout = Layout::new(state, Some(&identity));
        let back = way_back(parts, &state.settings().base_path);
        Ok(Self {
            identity,
            layout,
            back,
        })
    }
}

impl Page {
    /// `/setup` is for an instance whose owner is not set up yet.
    pub fn require_setup_pending(&self) -> Result<(), PageError> {
        if self.identity.instance.owner_set_up {
            return Err(self.redirect("/"));
        }
        Ok(())
    }

    /// `/signin` is for those not signed in, once there is an owner.
    pub fn require_signed_out(&self) -> Result<(), PageError> {
        self.require_set_up()?;
        if self.identity.actor.is_some() {
            return Err(self.redirect("/"));
        }
        Ok(())
    }

    /// Until the owner exists, the way on is `/setup` (unless set-up was
    /// skipped or there is no user management).
    fn require_set_up(&self) -> Result<(), PageError> {
        let instance = self.identity.instance;
        if !instance.owner_set_up && !instance.setup_skipped && !instance.user_management_disabled {
            return Err(self.redirect("/setup"));
        }
        Ok(())
    }

    /// To sign in, and back to this page afterwards.
    fn to_sign_in(&self) -> PageError {
        match &self.back {
            Some(back) => {
                self.redirect(&format!("/signin?redirect={}", percent_encode(back, b"/")))
            }
            None => self.redirect("/signin"),
        }
    }

    /// A redirect to `path` inside Usher.
    fn redirect(&self, path: &str) -> PageError {
        PageError::Redirect(format!("{}{path}", self.layout.base))
    }
}

/// A page for the signed-in person (on an open instance, the owner).
pub struct SignedInPage {
    pub actor: Actor,
    pub instance: Instance,
    pub layout: Layout,
}

impl FromRequestParts<AppState> for SignedInPage {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let page = Page::from_request_parts(parts, state).await?;
        page.require_set_up()?;
        let Some(actor) = page.identity.actor else {
            return Err(page.to_sign_in());
        };
        Ok(Self {
            actor,
            instance: page.identity.instance,
            layout: page.layout,
        })
    }
}

/// Where signing in should lead back to, as a path inside Usher: the page
/// asked for (with its query), or for a form's post, the page the form was
/// on (its `Referer`, when that is inside Usher); None when there is none.
fn way_back(parts: &Parts, base_path: &str) -> Option<String> {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return Some(
            parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
        );
    }
    let referer = parts.headers.get(header::REFERER)?.to_str().ok()?;
    let after_host = referer
        .split_once("://")
        .map_or(Some(referer), |(_, rest)| {
            rest.find('/').map(|i| &rest[i..])
        })?;
    let inside = after_host.strip_prefix(base_path)?;
    inside.starts_with('/').then(|| inside.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, referer: Option<&str>) -> Parts {
        let mut request = axum::http::Request::builder().method(method).uri(uri);
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        let (parts, ()) = request
            .body(())
            .unwrap_or_else(|e| panic!("request: {e}"))
            .into_parts();
        parts
    }

    #[test]
    fn a_page_asked_for_is_the_way_back_with_its_query() {
        let get = parts(Method::GET, "/settings/audit?action=login.", None);
        assert_eq!(
            way_back(&get, "").as_deref(),
            Some("/settings/audit?action=login.")
        );
    }

    #[test]
    fn a_form_post_leads_back_to_the_page_of_the_form_inside_usher_only() {
        let post = |referer| parts(Method::POST, "/home/tags/1/delete", referer);
        let from = |referer, base| way_back(&post(Some(referer)), base);
        assert_eq!(
            from("https://usher.example.com/team/home/tags", "/team").as_deref(),
            Some("/home/tags")
        );
        assert_eq!(
            from("http://127.0.0.1:5678/projects/x?created=1", "").as_deref(),
            Some("/projects/x?created=1")
        );
        assert_eq!(from("https://usher.example.com/other/page", "/team"), None);
        assert_eq!(from("https://usher.example.com", ""), None);
        assert_eq!(way_back(&post(None), ""), None);
    }
}
