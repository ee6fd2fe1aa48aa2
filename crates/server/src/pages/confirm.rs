//! Dangerous actions ask first, with and without script: a form marked
//! `data-confirm` asks in the browser and sends `confirmed=yes` along; a
//! post without it (no script) gets [`ask`]'s page instead, which says what
//! will happen and posts the same fields again with `confirmed=yes`.

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Layout;

/// The field a confirmed post carries.
pub const CONFIRMED: &str = "confirmed";

/// The form of a dangerous action that has no other fields.
#[derive(Default, serde::Deserialize, Serialize)]
#[serde(default)]
pub struct Confirmation {
    pub confirmed: Option<String>,
}

impl Confirmation {
    /// Whether the post says yes already.
    pub fn confirmed(&self) -> bool {
        self.confirmed.as_deref() == Some("yes")
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    question: String,
    detail: String,
    action: String,
    button: String,
    back: String,
    fields: Vec<(String, String)>,
}

/// The page that asks before `action` (a path inside Usher) is posted
/// again with the same `form` and `confirmed=yes`; `back` is where "Cancel"
/// leads.
pub fn ask(
    layout: Layout,
    question: impl Into<String>,
    detail: impl Into<String>,
    button: impl Into<String>,
    action: &str,
    back: &str,
    form: &impl Serialize,
) -> Response {
    let fields = serde_json::to_value(form)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name != CONFIRMED && name != crate::security::FORM_FIELD)
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (name, text)
        })
        .collect();
    ConfirmPage {
        action: format!("{}{action}", layout.base),
        back: format!("{}{back}", layout.base),
        layout,
        question: question.into(),
        detail: detail.into(),
        button: button.into(),
        fields,
    }
    .into_response()
}
