//! Email over SMTP with lettre (rustls), rendered from Handlebars templates so
//! that n8n's template files work unchanged.
//!
//! Security follows n8n's settings: implicit TLS when N8N_SMTP_SSL is on;
//! otherwise STARTTLS, required, when N8N_SMTP_STARTTLS is on; otherwise
//! plain. Credentials are the SMTP user and password, or, with a service
//! account, an OAuth access token sent with XOAUTH2.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use handlebars::Handlebars;
use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{Certificate, Tls, TlsParameters},
    },
};
use rustls::pki_types::pem::PemObject as _;
use serde::Serialize;
use usher_domain::{
    mail::{InviteMail, MailError, Mailer, ResetMail},
    model::Email,
    store::{Store, keys},
};

use crate::settings::{MailSettings, OAuthSettings, SmtpSettings};

const INVITE_HTML: &str = include_str!("../templates/email/invite.html");
const INVITE_TEXT: &str = include_str!("../templates/email/invite.txt");
const RESET_HTML: &str = include_str!("../templates/email/password-reset.html");
const RESET_TEXT: &str = include_str!("../templates/email/password-reset.txt");
pub const DEFAULT_INVITE_SUBJECT: &str = "You have been invited to {{domain}}";
const RESET_SUBJECT: &str = "Reset your password on {{domain}}";

/// The placeholders every template may use (n8n's names, and a few more).
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Context {
    invite_accept_url: String,
    password_reset_url: String,
    first_name: String,
    inviter_name: String,
    inviter_email: String,
    domain: String,
    base_url: String,
}

/// The compiled templates: built-in ones, or the operator's files.
struct Templates {
    html: Handlebars<'static>,
    /// Subjects and plain-text parts: no HTML escaping.
    text: Handlebars<'static>,
    /// The operator replaced the HTML: the text part is made from it.
    invite_overridden: bool,
    reset_overridden: bool,
}

impl Templates {
    fn new(settings: &MailSettings) -> Result<Self, String> {
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
        for (name, source) in [
            ("invite", INVITE_TEXT),
            ("reset", RESET_TEXT),
            ("invite-subject", DEFAULT_INVITE_SUBJECT),
            ("reset-subject", RESET_SUBJECT),
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

pub struct SmtpMailer {
    smtp: SmtpSettings,
    sender: Mailbox,
    templates: Templates,
    base_url: String,
    /// Certificates to trust besides the public roots (tests' own CA).
    extra_roots: Vec<String>,
    store: Arc<dyn Store>,
    oauth: Option<OAuthClient>,
}

/// Builds the SMTP mailer the settings ask for; None without SMTP. Templates
/// are checked either way. Errors name the setting.
pub fn build(
    settings: &MailSettings,
    base_url: &str,
    extra_roots: Vec<String>,
    store: Arc<dyn Store>,
) -> Result<Option<Arc<SmtpMailer>>, String> {
    let templates = Templates::new(settings)?;
    let Some(smtp) = settings.smtp.clone() else {
        return Ok(None);
    };
    let sender: Mailbox = smtp.sender.parse().map_err(|e| {
        format!(
            "N8N_SMTP_SENDER: {:?} is not an address or Name <address>: {e}",
            smtp.sender
        )
    })?;
    let oauth = match &smtp.oauth {
        Some(oauth) => Some(OAuthClient::new(oauth, &smtp.user, &extra_roots)?),
        None => None,
    };
    Ok(Some(Arc::new(SmtpMailer {
        smtp,
        sender,
        templates,
        base_url: base_url.to_owned(),
        extra_roots,
        store,
        oauth,
    })))
}

impl SmtpMailer {
    fn context(&self) -> Context {
        let domain = self
            .base_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        Context {
            domain,
            base_url: self.base_url.clone(),
            ..Context::default()
        }
    }

    async fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let host = &self.smtp.host;
        let mut tls = TlsParameters::builder(host.clone());
        for pem in &self.extra_roots {
            let certificate = Certificate::from_pem(pem.as_bytes())
                .map_err(|e| MailError(format!("a trusted certificate is not valid: {e}")))?;
            tls = tls.add_root_certificate(certificate);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| MailError(format!("TLS set-up failed: {e}")))?;
        let security = if self.smtp.ssl {
            Tls::Wrapper(tls)
        } else if self.smtp.starttls {
            Tls::Required(tls)
        } else {
            Tls::None
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(self.smtp.port)
            .tls(security)
            .timeout(Some(Duration::from_secs(20)));
        if let Some(oauth) = &self.oauth {
            let token = oauth.access_token().await?;
            builder = builder
                .credentials(Credentials::new(self.smtp.user.clone(), token))
                .authentication(vec![Mechanism::Xoauth2]);
        } else if !self.smtp.user.is_empty() {
            builder = builder
                .credentials(Credentials::new(
                    self.smtp.user.clone(),
                    self.smtp.password.expose().to_owned(),
                ))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(builder.build())
    }

    async fn send(
        &self,
        to: &Email,
        subject: String,
        html: String,
        text: String,
    ) -> Result<(), MailError> {
        let to: Mailbox = to
            .as_str()
            .parse()
            .map_err(|e| MailError(format!("{to} cannot receive email: {e}")))?;
        let message = Message::builder()
            .from(self.sender.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| MailError(format!("the message could not be built: {e}")))?;
        let transport = self.transport().await?;
        transport.send(message).await.map_err(|e| {
            MailError(format!(
                "the mail server {}:{} answered: {e}",
                self.smtp.host, self.smtp.port
            ))
        })?;
        Ok(())
    }

    fn render(
        &self,
        registry: &Handlebars<'static>,
        name: &str,
        context: &Context,
    ) -> Result<String, MailError> {
        registry
            .render(name, context)
            .map_err(|e| MailError(format!("the {name} template failed: {}", e.reason())))
    }

    /// A test message for `usher smtp:test`.
    pub async fn send_test(&self, to: &Email) -> Result<(), MailError> {
        let text = format!(
            "This is a test message from Usher at {}. Email works.",
            self.base_url
        );
        let html = format!("<p>{text}</p>");
        self.send(to, "Usher test message".into(), html, text).await
    }
}

/// Text for the plain part when only an HTML template is given: the tags
/// taken out, links kept as their URLs.
fn html_to_text(html: &str) -> String {
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

#[async_trait]
impl Mailer for SmtpMailer {
    fn is_configured(&self) -> bool {
        true
    }

    async fn send_invite(&self, to: &Email, mail: &InviteMail) -> Result<(), MailError> {
        let context = Context {
            invite_accept_url: mail.accept_url.clone(),
            inviter_name: mail.inviter_name.clone(),
            inviter_email: mail.inviter_email.clone(),
            ..self.context()
        };
        // The owner's own wording, set in Settings > Email, comes first.
        let setting = |key| async move {
            self.store
                .setting(key)
                .await
                .ok()
                .flatten()
                .filter(|v| !v.trim().is_empty())
        };
        let custom_subject = setting(keys::INVITE_SUBJECT).await;
        let custom_html = setting(keys::INVITE_TEMPLATE).await;
        let render_text = |source: &str| {
            self.templates
                .text
                .render_template(source, &context)
                .map_err(|e| MailError(format!("the invitation subject failed: {}", e.reason())))
        };
        let subject = match &custom_subject {
            Some(subject) => render_text(subject)?,
            None => self.render(&self.templates.text, "invite-subject", &context)?,
        };
        let html = match &custom_html {
            Some(source) => self
                .templates
                .html
                .render_template(source, &context)
                .map_err(|e| {
                    MailError(format!("the invitation template failed: {}", e.reason()))
                })?,
            None => self.render(&self.templates.html, "invite", &context)?,
        };
        let text = if custom_html.is_some() || self.templates.invite_overridden {
            html_to_text(&html)
        } else {
            self.render(&self.templates.text, "invite", &context)?
        };
        self.send(to, subject, html, text).await
    }

    async fn send_password_reset(&self, to: &Email, mail: &ResetMail) -> Result<(), MailError> {
        let context = Context {
            password_reset_url: mail.reset_url.clone(),
            first_name: mail.first_name.clone(),
            ..self.context()
        };
        let subject = self.render(&self.templates.text, "reset-subject", &context)?;
        let html = self.render(&self.templates.html, "reset", &context)?;
        let text = if self.templates.reset_overridden {
            html_to_text(&html)
        } else {
            self.render(&self.templates.text, "reset", &context)?
        };
        self.send(to, subject, html, text).await
    }
}

/// Two-legged OAuth: a JWT signed with the service account's key is traded
/// at the token endpoint for an access token, kept until shortly before it
/// expires.
struct OAuthClient {
    settings: OAuthSettings,
    user: String,
    key: jsonwebtoken::EncodingKey,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(String, std::time::Instant)>>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl OAuthClient {
    fn new(settings: &OAuthSettings, user: &str, extra_roots: &[String]) -> Result<Self, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(settings.private_key.expose().as_bytes())
            .map_err(|e| {
                format!("N8N_SMTP_OAUTH_PRIVATE_KEY: not an RSA private key in PEM form: {e}")
            })?;
        let http =
            http_client(extra_roots).map_err(|e| format!("N8N_SMTP_OAUTH_TOKEN_URL: {e}"))?;
        Ok(Self {
            settings: settings.clone(),
            user: user.to_owned(),
            key,
            http,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    async fn access_token(&self) -> Result<String, MailError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && std::time::Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Assertion {
            iss: &self.settings.service_client,
            sub: &self.user,
            scope: "https://mail.google.com/",
            aud: &self.settings.token_url,
            iat: now,
            exp: now + 3600,
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| MailError(format!("the service account's key could not sign: {e}")))?;
        let url = &self.settings.token_url;
        let response = self
            .http
            .post(url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| {
                MailError(format!(
                    "the OAuth token endpoint {url} did not answer: {e}"
                ))
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(MailError(format!(
                "the OAuth token endpoint {url} refused the service account ({status}): {}",
                body.chars().take(200).collect::<String>()
            )));
        }
        let answer: TokenAnswer = response.json().await.map_err(|e| {
            MailError(format!(
                "the OAuth token endpoint {url} sent an unreadable answer: {e}"
            ))
        })?;
        // Renew a minute early, so a token never expires mid-conversation.
        let lifetime = answer.expires_in.unwrap_or(3600).saturating_sub(60);
        let until = std::time::Instant::now() + Duration::from_secs(lifetime);
        *cached = Some((answer.access_token.clone(), until));
        Ok(answer.access_token)
    }
}

/// An HTTPS client on rustls with the ring provider (no aws-lc build), public
/// roots plus any extra trusted certificates.
fn http_client(extra_roots: &[String]) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in extra_roots {
        for der in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let der = der.map_err(|e| format!("a trusted certificate is not valid: {e}"))?;
            roots
                .add(der)
                .map_err(|e| format!("a trusted certificate is not valid: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
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
