//! What a page answers when it is not shown: [`PageError`], which handlers
//! return so that `?` works on the services' errors, and the layer that turns
//! a failure into the error page inside the layout.
//!
//! A handler has neither the layout nor the visitor at hand where a `?`
//! returns, so a failure travels as the [`ApiError`] in the response's
//! extensions (where every `ApiError` response keeps it, extractors' refusals
//! included), and [`show_errors`], which has the state and the visitor, draws
//! the page. The message is the one `/rest` would give, with the status that
//! fits; never a stack trace.
//!
//! A refusal shown inside the page it was asked from (a form drawn again
//! with its error) is still a refusal: [`refused`] notes it, and the same
//! layer gives the page the status it would have had as an error. Only
//! "slow down" is carried over (429 with `Retry-After`), so that a throttle
//! reads the same to a script whether it hit `/rest` or a page; a form's
//! other mistakes stay 200, as browsers and n8n's pages expect.

use std::cell::Cell;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use usher_domain::service::auth::Identity;

use super::Layout;
use crate::{AppState, error::ApiError};

/// Why a page is not shown.
#[derive(Debug)]
pub enum PageError {
    /// The page is not for this visitor now (set-up first, sign in first,
    /// signed in already): the address to go to instead, with N8N_PATH.
    Redirect(String),
    /// The page could not be shown: the error page says why.
    Failed {
        error: ApiError,
        /// A heading for the page, where the status's usual one says too
        /// little ("This invitation link does not work").
        heading: Option<String>,
        /// A way forward: (address inside Usher, label).
        next: Option<(String, String)>,
    },
}

impl PageError {
    pub fn with_heading(mut self, text: impl Into<String>) -> Self {
        if let Self::Failed { heading, .. } = &mut self {
            *heading = Some(text.into());
        }
        self
    }

    /// A link below the message; `path` is inside Usher, without N8N_PATH.
    pub fn with_next(mut self, path: &str, label: &str) -> Self {
        if let Self::Failed { next, .. } = &mut self {
            *next = Some((path.to_owned(), label.to_owned()));
        }
        self
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self::Failed {
            error,
            heading: None,
            next: None,
        }
    }
}

impl From<usher_domain::Error> for PageError {
    fn from(error: usher_domain::Error) -> Self {
        ApiError::from(error).into()
    }
}

/// What a [`PageError::Failed`] adds to the error it carries.
#[derive(Clone, Default)]
struct Extras {
    heading: Option<String>,
    next: Option<(String, String)>,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Redirect(to) => Redirect::to(&to).into_response(),
            Self::Failed {
                error,
                heading,
                next,
            } => {
                let mut response = error.into_response();
                response.extensions_mut().insert(Extras { heading, next });
                response
            }
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
    request_id: Option<String>,
    /// A way forward, when there is one: (address, label).
    next: Option<(String, String)>,
}

tokio::task_local! {
    /// Seconds to wait, when a refusal shown in a page was "slow down".
    static SLOW_DOWN: Cell<Option<u64>>;
}

/// The message of a refusal a page shows beside its form; a throttle's is
/// remembered, so that [`show_errors`] answers 429 with `Retry-After`.
pub fn refused(error: usher_domain::Error) -> String {
    let error = ApiError::from(error);
    if let Some(seconds) = error.retry_after {
        let _ = SLOW_DOWN.try_with(|slow| slow.set(Some(seconds)));
    }
    error.message
}

/// The layer over the pages: an answer that carries an error becomes the
/// error page, with the visitor's layout and the error's status; a page
/// that shows a throttle's refusal gets 429.
pub async fn show_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let identity = request.extensions().get::<Identity>().cloned();
    let (slow_down, mut response) = SLOW_DOWN
        .scope(Cell::new(None), async {
            let response = next.run(request).await;
            (SLOW_DOWN.with(Cell::get), response)
        })
        .await;
    let Some(error) = response.extensions_mut().remove::<ApiError>() else {
        if let Some(seconds) = slow_down
            && response.status().is_success()
        {
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        return response;
    };
    let extras = response
        .extensions_mut()
        .remove::<Extras>()
        .unwrap_or_default();
    error_page(&state, identity.as_ref(), error, extras)
}

/// The error page for an answer served on another host than Usher's (an
/// app's, through its proxy: forward authentication): every link and asset
/// points at Usher's base URL, and `next` is an absolute URL.
pub fn error_page_elsewhere(
    state: &AppState,
    error: ApiError,
    heading: String,
    next: Option<(String, String)>,
) -> Response {
    let mut layout = Layout::new(state, None);
    layout.base = state.settings().base_url.clone();
    let page = ErrorPage {
        layout,
        heading,
        message: error.message,
        request_id: None,
        next,
    };
    (error.status, page).into_response()
}

/// The error page for an answer made before the pages' routes (the input
/// and origin checks), where nobody is known yet.
pub fn error_page_without_visitor(state: &AppState, error: ApiError) -> Response {
    error_page(state, None, error, Extras::default())
}

fn error_page(
    state: &AppState,
    identity: Option<&Identity>,
    error: ApiError,
    extras: Extras,
) -> Response {
    let heading = extras.heading.unwrap_or_else(|| {
        match error.status {
            StatusCode::NOT_FOUND => "Page not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Slow down",
            s if s.is_server_error() => "Something went wrong",
            _ => "This did not work",
        }
        .to_owned()
    });
    let request_id = error
        .status
        .is_server_error()
        .then(crate::request_id::current)
        .flatten();
    let retry_after = error.retry_after;
    let page = ErrorPage {
        layout: Layout::new(state, identity),
        heading,
        message: error.message,
        request_id,
        next: extras.next.map(|(path, label)| (state.path(&path), label)),
    };
    let mut response = (error.status, page).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    response
}

/// The error page with a heading and a way on, for answers made outside
/// the pages' routes (the single sign-on callback under `/rest`).
pub fn failure_page(
    state: &AppState,
    identity: Option<&Identity>,
    error: ApiError,
    heading: &str,
    next: (&str, &str),
) -> Response {
    let extras = Extras {
        heading: Some(heading.to_owned()),
        next: Some((next.0.to_owned(), next.1.to_owned())),
    };
    error_page(state, identity, error, extras)
}

/// Unknown paths: JSON under `/rest` and `/api`, a page elsewhere.
pub async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    if state.is_api_path(request.uri().path()) {
        return ApiError::not_found().into_response();
    }
    let error = ApiError::new(StatusCode::NOT_FOUND, "There is no page at this address.");
    let identity = request.extensions().get::<Identity>();
    error_page(&state, identity, error, Extras::default())
}
