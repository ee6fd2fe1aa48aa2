//! `/settings/mfa`: set up, use and turn off two-factor authentication; the
//! owner requires it for everyone here too.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{get, post},
};
use qrcode::{QrCode, render::svg};
use serde::Deserialize;
use usher_domain::{model::Role, service::mfa::SecondFactor};

use super::{Layout, Result, Shown, SignedInPage};
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
    Ok(MfaPage {
        layout,
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

async fn view_mfa_get(State(state): State<AppState>, page: SignedInPage) -> Result {
    let notice = page
        .actor
        .must_enrol_mfa(page.instance.mfa_required)
        .then_some("This instance requires two-factor authentication: set it up to go on.");
    let shown = notice.map(Shown::notice).unwrap_or_default();
    render(&state, page, shown).await
}

fn qr_svg(url: &str) -> Result<String, String> {
    let code = QrCode::new(url.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

async fn view_mfa_start(State(state): State<AppState>, page: SignedInPage) -> Result {
    let started = state.usher().start_mfa_setup(&page.actor).await;
    let shown = Shown::of(started, |setup| {
        let codes = setup
            .recovery_codes
            .iter()
            .map(|c| c.expose().to_owned())
            .collect::<Vec<_>>()
            .join("\n");
        match Setup::new(&setup.otpauth_url, setup.secret, codes) {
            Ok(setup) => Shown::default().with(Once {
                setup: Some(setup),
                ..Once::default()
            }),
            Err(e) => Shown::error(format!("The QR code could not be drawn ({e}). Try again.")),
        }
    });
    render(&state, page, shown).await
}

#[derive(Deserialize, Default)]
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
}

impl CodeForm {
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
            Shown::notice("Two-factor authentication is on. Keep these recovery codes somewhere safe: each works once, and they are not shown again.")
                .with(Once { codes: codes.map(str::to_owned).collect(), ..Once::default() })
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
    let disabled = state
        .usher()
        .disable_mfa(&page.actor, &form.factor(), &origin)
        .await;
    let shown = Shown::of(disabled, |()| {
        Shown::notice("Two-factor authentication is off.")
    });
    render(&state, page, shown).await
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
    let shown = Shown::of(codes, |codes| {
        Shown::notice("New recovery codes: the old ones no longer work.").with(Once {
            codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
            ..Once::default()
        })
    });
    render(&state, page, shown).await
}

async fn view_mfa_enforce(
    State(state): State<AppState>,
    page: SignedInPage,
    ClientOrigin(origin): ClientOrigin,
    axum::Form(form): axum::Form<CodeForm>,
) -> Result {
    let required = form.enforce == "true";
    let enforced = state
        .usher()
        .require_mfa_for_everyone(&page.actor, required, &origin)
        .await;
    let shown = Shown::of(enforced, |()| {
        Shown::notice(if required {
            "Everyone must now use two-factor authentication; those without it set it up at their next request."
        } else {
            "Two-factor authentication is optional again."
        })
    });
    render(&state, page, shown).await
}
