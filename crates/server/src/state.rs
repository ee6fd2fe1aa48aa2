//! [`AppState`]: what every handler shares.
//!
//! Handlers reach the database only through the domain services
//! ([`AppState::usher`]); the store handle itself is kept here, out of their
//! reach, for closing the pool at the end.

use std::sync::Arc;

use axum::http::HeaderValue;
use usher_domain::{
    clock::Millis,
    service::{Usher, auth::SignedIn},
};

use crate::{Settings, extract, mail};

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    usher: Usher,
    settings: Settings,
    store: usher_store::SqlStore,
    smtp: Option<Arc<mail::SmtpMailer>>,
    /// The HTTP client for the single sign-on provider.
    sso_http: crate::sso::SsoHttp,
}

impl AppState {
    pub(crate) fn new(
        usher: Usher,
        settings: Settings,
        store: usher_store::SqlStore,
        smtp: Option<Arc<mail::SmtpMailer>>,
        sso_http: crate::sso::SsoHttp,
    ) -> Self {
        Self(Arc::new(Inner {
            usher,
            settings,
            store,
            smtp,
            sso_http,
        }))
    }

    /// The HTTP client for the single sign-on provider.
    pub(crate) fn sso_http(&self) -> &crate::sso::SsoHttp {
        &self.0.sso_http
    }

    /// The domain services: the one way to the data.
    pub fn usher(&self) -> &Usher {
        &self.0.usher
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The SMTP mailer, when email is set up (`usher smtp:test`).
    pub(crate) fn smtp(&self) -> Option<&mail::SmtpMailer> {
        self.0.smtp.as_deref()
    }

    /// Closes the database pool: after serving, and after a command.
    pub(crate) async fn close(&self) {
        self.0.store.close().await;
    }

    /// The `Set-Cookie`s of a new session: the session itself, and the
    /// device cookie that lets this browser's later sign-in attempts count
    /// apart from strangers' (`usher_domain::service::throttle`).
    pub(crate) fn session_cookie(&self, session: &SignedIn) -> Vec<HeaderValue> {
        let settings = self.settings();
        let device = session.device.as_ref().and_then(|device| {
            extract::cookie(
                &settings.cookie,
                &extract::device_cookie_name(&settings.cookie),
                &settings.base_path,
                device.expose(),
                extract::DEVICE_COOKIE_SECONDS,
            )
        });
        self.renewed_cookie(session.token.expose(), session.expires_at)
            .into_iter()
            .chain(device)
            .collect()
    }

    /// A `Set-Cookie` that clears the session cookie.
    pub(crate) fn clear_cookie(&self) -> Option<HeaderValue> {
        let settings = self.settings();
        extract::session_cookie(&settings.cookie, &settings.base_path, "", 0)
    }

    /// A `Set-Cookie` that renews the session cookie until `until`.
    pub(crate) fn renewed_cookie(&self, token: &str, until: Millis) -> Option<HeaderValue> {
        let settings = self.settings();
        let max_age = seconds_until(until, self.usher().now());
        extract::session_cookie(&settings.cookie, &settings.base_path, token, max_age)
    }

    /// Whether a request path (as it arrives, with N8N_PATH) is `/rest` or
    /// `/api`, answered in JSON, rather than a page.
    pub(crate) fn is_api_path(&self, path: &str) -> bool {
        let inner = path
            .strip_prefix(self.settings().base_path.as_str())
            .unwrap_or(path);
        inner.starts_with("/rest/") || inner.starts_with("/api/")
    }

    /// A path inside Usher, with N8N_PATH in front: for links and redirects.
    pub(crate) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.settings().base_path)
    }
}

/// Whole seconds from `now` to `until`, rounded up, for a cookie's Max-Age.
fn seconds_until(until: Millis, now: Millis) -> i64 {
    (until - now + 999).div_euclid(1000)
}
