//! `/settings/mfa`: set up, use and turn off two-factor authentication; the
//! owner requires it for everyone here too.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::{Query, State},
    response::IntoResponse,
    routing::{get, post},
};
use qrcode::{QrCode, render::svg};
use serde::{Deserialize, Serialize};
use usher_domain::{
    model::Role,
    service::mfa::{MfaSetup, SecondFactor},
};

use super::{Layout, Result, Shown, SignedInPage, confirm, done, percent_encode, safe_redirect};
use crate::{AppState, extract::ClientOrigin};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/mfa", get(view_mfa_get))
        .route("/settings/mfa/start", post(view_mfa_start))
        .route("/settings/mfa/enable", post(view_mfa_enable))
        .route("/settings/mfa/disable", post(view_mfa_disable))
        .route("/settings/mfa/recovery-codes", post(view_mfa_codes))
        .route("/settings/mfa/enforce", post(view_mfa_enforce))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/mfa.html")]
struct MfaPage {
    layout: Layout,
    enabled: bool,
    feature_on: bool,
    required: bool,
    is_owner: bool,
    /// During set-up: the QR code (SVG), the secret, the codes to keep.
    setup: Option<Setup>,
    /// After enabling or regenerating: the codes, shown once.
    codes: Vec<String>,
    /// Where the person was going when set-up was asked of them (an app's
    /// sign-in): carried through the set-up, and offered once it is on.
    redirect: String,
    /// `redirect` as a safe link, once two-factor is on.
    continue_to: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

struct Setup {
    qr_svg: String,
    secret: String,
    /// The secret in groups of four, easier to type.
    secret_grouped: String,
    codes: String,
}

impl Setup {
    fn new(otpauth_url: &str, secret: String, codes: String) -> Result<Self, String> {
        let grouped = secret
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Setup {
            qr_svg: qr_svg(otpauth_url)?,
            secret,
            secret_grouped: grouped,
            codes,
        })
    }
}

/// What the page shows once: a set-up under way, or recovery codes.
#[derive(Default)]
struct Once {
    setup: Option<Setup>,
    codes: Vec<String>,
    redirect: String,
}

/// The page as the user stands now (their MFA flag is read afresh).
async fn render(state: &AppState, page: SignedInPage, shown: Shown<Once>) -> Result {
    let enabled = state.usher().current_user(&page.actor).await?.mfa_enabled;
    let required = state.usher().instance().await?.mfa_required;
    let mut layout = page.layout.at("/settings/mfa");
    if enabled {
        // Enrolment just finished: navigation is open again.
        layout.navigation = true;
    }
    let redirect = shown.with.redirect;
    let continue_to = (enabled && !redirect.is_empty()).then(|| safe_redirect(state, &redirect));
    Ok(MfaPage {
        layout,
        redirect,
        continue_to,
        enabled,
        feature_on: state.settings().mfa_enabled,
        required,
        is_owner: page.actor.user.role == Role::Owner,
        setup: shown.with.setup,
        codes: shown.with.codes,
        notice: shown.notice,
        error: shown.error,
    }
    .into_response())
}

/// What the page shows once after a form: recovery codes just made.
#[derive(Serialize, Deserialize)]
struct NewCodes {
    codes: Vec<String>,
}

/// The page: a set-up under way shows its QR code again (a reload or a
/// visit later keeps the secret the phone may have scanned already), and
/// recovery codes just made show once.
async fn view_mfa_get(
    State(state): State<AppState>,
    page: SignedInPage,
    Query(query): Query<Onward>,
) -> Result {
    let notice = page
        .actor
        .must_enrol_mfa(page.instance.mfa_required)
        .then_some("This instance requires two-factor authentication: set it up to go on.");
    let mut shown: Shown<Once> = notice.map(Shown::notice).unwrap_or_default();
    shown.with.redirect = query.redirect;
    if let Some(new) = super::flash::once::<NewCodes>() {
        shown.with.codes = new.codes;
    }
    if let Some(setup) = state.usher().pending_mfa_setup(&page.actor).await? {
        match drawn(setup) {
            Ok(setup) => shown.with.setup = Some(setup),
            Err(error) => shown.error = Some(error),
        }
    }
    render(&state, page, shown).await
}

/// A set-up as the page draws it, or why the QR code could not be drawn.
fn drawn(setup: MfaSetup) -> Result<Setup, String> {
    let codes = setup
        .recovery_codes
        .iter()
        .map(|c| c.expose().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    Setup::new(&setup.otpauth_url, setup.secret, codes)
        .map_err(|e| format!("The QR code could not be drawn ({e}). Try again."))
}

fn qr_svg(url: &str) -> Result<String, String> {
    let code = QrCode::new(url.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Where to go on to once two-factor is on (`?redirect=` on the page, a
/// hidden field in its forms).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Onward {
    redirect: String,
}

/// The page again, still carrying where the person was going.
fn page_path(redirect: &str) -> String {
    if redirect.is_empty() {
        "/settings/mfa".to_owned()
    } else {
        format!("/settings/mfa?redirect={}", percent_encode(redirect, b"/"))
    }
}

/// Starts (or goes on with) a set-up; the page then shows it.
async fn view_mfa_start(
    State(state): State<AppState>,
    page: SignedInPage,
    axum::Form(form): axum::Form<Onward>,
) -> Result {
    match state.usher().start_mfa_setup(&page.actor).await {
        Ok(_) => Ok(done(
            &state,
            &page_path(&form.redirect),
            "Scan the QR code with your authenticator app, then enter the code it shows.",
            (),
        )),
        Err(error) => {
            let shown = Shown::refused(error).with(Once {
                redirect: form.redirect,
                ..Once::default()
            });
            render(&state, page, shown).await
        }
    }
}

#[derive(Deserialize, Serialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CodeForm {
    mfa_code: String,
    mfa_recovery_code: String,
    /// The recovery codes of the set-up, carried to the confirmation.
    codes: String,
    /// The secret being set up, so that a mistyped code keeps the QR code
    /// the phone has scanned already.
    secret: String,
    enforce: String,
    /// `yes` once the dangerous action is confirmed (see [`confirm`]).
    confirmed: String,
    /// Where the person was going (see [`Onward`]).
    redirect: String,
}

impl CodeForm {
    fn confirmed(&self) -> bool {
        self.confirmed == "yes"
    }

    fn factor(&self) -> SecondFactor {
        SecondFactor {
            code: Some(self.mfa_code.clone()),
            recovery_code: Some(self.mfa_recovery_code.clone()),
        }
    }
}

async fn view_mfa_enable(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<CodeForm>,
) -> Result {
    let enabled = state
        .usher()
        .enable_mfa(&page.actor, &form.mfa_code, &origin)
        .await;
    let shown = match enabled {
        Ok(()) => {
            let codes = form.codes.lines().map(str::trim).filter(|c| !c.is_empty());
            return Ok(done(
                &state,
                &page_path(&form.redirect),
                "Two-factor authentication is on. Keep these recovery codes somewhere safe: each works once, and they are not shown again.",
                NewCodes {
                    codes: codes.map(str::to_owned).collect(),
                },
            ));
        }
        Err(error) => {
            // The same secret again: the app has it already.
            let setup = state
                .usher()
                .otpauth_url(&page.actor, &form.secret)
                .ok()
                .and_then(|url| Setup::new(&url, form.secret.clone(), form.codes.clone()).ok());
            Shown::refused(error).with(Once {
                setup,
                redirect: form.redirect,
                ..Once::default()
            })
        }
    };
    render(&state, page, shown).await
}

async fn view_mfa_disable(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<CodeForm>,
) -> Result {
    if !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            "Turn off two-factor authentication?",
            "Signing in will need only your password. Your recovery codes stop working.",
            "Turn it off",
            "/settings/mfa/disable",
            "/settings/mfa",
            &form,
        ));
    }
    let disabled = state
        .usher()
        .disable_mfa(&page.actor, &form.factor(), &origin)
        .await;
    match disabled {
        Ok(()) => Ok(done(
            &state,
            "/settings/mfa",
            format!(
                "Two-factor authentication is off for {}.",
                page.actor.user.display_name()
            ),
            (),
        )),
        Err(error) => render(&state, page, Shown::refused(error)).await,
    }
}

async fn view_mfa_codes(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<CodeForm>,
) -> Result {
    let codes = state
        .usher()
        .regenerate_recovery_codes(&page.actor, &form.factor(), &origin)
        .await;
    match codes {
        Ok(codes) => Ok(done(
            &state,
            "/settings/mfa",
            "New recovery codes: the old ones no longer work.",
            NewCodes {
                codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
            },
        )),
        Err(error) => render(&state, page, Shown::refused(error)).await,
    }
}

async fn view_mfa_enforce(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<CodeForm>,
) -> Result {
    let required = form.enforce == "true";
    if required && !form.confirmed() {
        return Ok(confirm::ask(
            page.layout,
            "Require two-factor authentication for everyone?",
            "Everyone without it must set it up before they can do anything else, from their next request on.",
            "Require it",
            "/settings/mfa/enforce",
            "/settings/mfa",
            &EnforceForm {
                enforce: form.enforce,
            },
        ));
    }
    let enforced = state
        .usher()
        .require_mfa_for_everyone(&page.actor, required, &origin)
        .await;
    match enforced {
        Ok(()) => Ok(done(
            &state,
            "/settings/mfa",
            if required {
                "Everyone must now use two-factor authentication; those without it set it up at their next request."
            } else {
                "Two-factor authentication is optional again."
            },
            (),
        )),
        Err(error) => render(&state, page, Shown::refused(error)).await,
    }
}

/// What the confirm step of requiring two-factor posts again.
#[derive(Serialize)]
struct EnforceForm {
    enforce: String,
}
