//! The emails' wording: Handlebars templates, built in or the operator's
//! files (n8n's template files work unchanged), the placeholders they may
//! use, and the plain-text part made from an HTML template.

use handlebars::Handlebars;
use serde::Serialize;

use crate::settings::MailSettings;

const INVITE_HTML: &str = include_str!("../../templates/email/invite.html");
const INVITE_TEXT: &str = include_str!("../../templates/email/invite.txt");
const RESET_HTML: &str = include_str!("../../templates/email/password-reset.html");
const RESET_TEXT: &str = include_str!("../../templates/email/password-reset.txt");
const VERIFY_HTML: &str = include_str!("../../templates/email/verify-email.html");
const VERIFY_TEXT: &str = include_str!("../../templates/email/verify-email.txt");
pub const DEFAULT_INVITE_SUBJECT: &str = "You have been invited to {{domain}}";
const RESET_SUBJECT: &str = "Reset your password on {{domain}}";
const VERIFY_SUBJECT: &str = "Confirm your email address on {{domain}}";

/// The placeholders every template may use (n8n's names, and a few more).
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Context {
    pub(super) invite_accept_url: String,
    pub(super) password_reset_url: String,
    pub(super) verify_email_url: String,
    pub(super) first_name: String,
    pub(super) inviter_name: String,
    pub(super) inviter_email: String,
    pub(super) domain: String,
    pub(super) base_url: String,
}

/// The compiled templates: built-in ones, or the operator's files.
pub(super) struct Templates {
    pub(super) html: Handlebars<'static>,
    /// Subjects and plain-text parts: no HTML escaping.
    pub(super) text: Handlebars<'static>,
    /// The operator replaced the HTML: the text part is made from it.
    pub(super) invite_overridden: bool,
    pub(super) reset_overridden: bool,
}

impl Templates {
    pub(super) fn new(settings: &MailSettings) -> Result<Self, String> {
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        text.register_escape_fn(handlebars::no_escape);
        fn setting(name: &str) -> impl Fn(handlebars::TemplateError) -> String + '_ {
            move |e| format!("{name}: not a valid Handlebars template: {e}")
        }
        let (invite, invite_overridden) = match &settings.invite_template {
            Some((name, contents)) => (contents.as_str(), Some(name.as_str())),
            None => (INVITE_HTML, None),
        };
        let (reset, reset_overridden) = match &settings.reset_template {
            Some((name, contents)) => (contents.as_str(), Some(name.as_str())),
            None => (RESET_HTML, None),
        };
        html.register_template_string("invite", invite)
            .map_err(setting(
                invite_overridden.unwrap_or("built-in invite template"),
            ))?;
        html.register_template_string("reset", reset)
            .map_err(setting(
                reset_overridden.unwrap_or("built-in reset template"),
            ))?;
        html.register_template_string("verify", VERIFY_HTML)
            .map_err(setting("built-in email confirmation template"))?;
        for (name, source) in [
            ("invite", INVITE_TEXT),
            ("reset", RESET_TEXT),
            ("invite-subject", DEFAULT_INVITE_SUBJECT),
            ("reset-subject", RESET_SUBJECT),
            ("verify", VERIFY_TEXT),
            ("verify-subject", VERIFY_SUBJECT),
        ] {
            text.register_template_string(name, source)
                .map_err(setting(name))?;
        }
        Ok(Self {
            html,
            text,
            invite_overridden: invite_overridden.is_some(),
            reset_overridden: reset_overridden.is_some(),
        })
    }
}

/// The invitation HTML in use before the owner changes it: the operator's
/// file, or the built-in one.
pub fn default_invite_html(settings: &crate::Settings) -> String {
    settings
        .mail
        .invite_template
        .as_ref()
        .map_or_else(|| INVITE_HTML.to_owned(), |(_, contents)| contents.clone())
}

/// Checks an invitation template the owner wrote before it is saved: it must
/// compile and render with sample values.
pub fn validate_template(subject: &str, html: &str) -> Result<(), String> {
    let sample = Context {
        invite_accept_url: "https://usher.example.com/signup?token=sample".into(),
        inviter_name: "Olive Owner".into(),
        domain: "usher.example.com".into(),
        base_url: "https://usher.example.com".into(),
        ..Context::default()
    };
    let mut registry = Handlebars::new();
    registry.set_strict_mode(false);
    registry
        .render_template(subject, &sample)
        .map_err(|e| format!("The subject is not a valid template: {}", e.reason()))?;
    registry
        .render_template(html, &sample)
        .map_err(|e| format!("The message is not a valid template: {}", e.reason()))?;
    if subject.trim().is_empty() {
        return Err("The subject cannot be empty.".into());
    }
    if !html.contains("{{inviteAcceptUrl}}") && !html.contains("{{ inviteAcceptUrl }}") {
        return Err(
            "The message must contain {{inviteAcceptUrl}}, or nobody can accept the invitation."
                .into(),
        );
    }
    Ok(())
}

/// Text for the plain part when only an HTML template is given: the tags
/// taken out, links kept as their URLs.
pub(super) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start + 1..start + end];
        if let Some(href) = tag
            .split("href=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
        {
            out.push_str(&format!(" {href} "));
        }
        if tag.starts_with('p') || tag.starts_with("/p") || tag.starts_with("br") {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    unescape_html(&lines.join("\n"))
}

/// Undoes HTML character references (Handlebars writes `=` as `&#x3D;`).
fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let decoded = tail.find(';').filter(|end| *end <= 10).and_then(|end| {
            let entity = &tail[1..end];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &tail[length..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_template_must_compile_and_keep_the_link() {
        assert!(
            validate_template(
                "Join {{domain}}",
                "<a href=\"{{inviteAcceptUrl}}\">Join</a>"
            )
            .is_ok()
        );
        let broken = validate_template("Join", "{{#if x}}never closed")
            .err()
            .unwrap_or_default();
        assert!(
            broken.starts_with("The message is not a valid template"),
            "{broken}"
        );
        let no_link = validate_template("Join", "<p>Hello</p>")
            .err()
            .unwrap_or_default();
        assert!(no_link.contains("{{inviteAcceptUrl}}"));
    }

    #[test]
    fn html_becomes_readable_text_with_its_links() {
        let text = html_to_text(
            "<p>Hello <b>you</b></p><p><a href=\"https://x.example/a?b&#x3D;1&amp;c=2\">Join</a></p>",
        );
        assert!(text.contains("Hello you"));
        assert!(text.contains("https://x.example/a?b=1&c=2"), "{text}");
        assert_eq!(
            unescape_html("a &lt;b&gt; &#39;c&#39; &unknown; &"),
            "a <b> 'c' &unknown; &"
        );
    }

    #[test]
    fn an_invalid_operator_template_names_its_setting() {
        let settings = MailSettings {
            invite_template: Some(("N8N_UM_EMAIL_TEMPLATES_INVITE".into(), "{{#each}}".into())),
            ..MailSettings::default()
        };
        let error = Templates::new(&settings).err().unwrap_or_default();
        assert!(
            error.starts_with("N8N_UM_EMAIL_TEMPLATES_INVITE: "),
            "{error}"
        );
    }
}
