//! Email over SMTP with lettre (rustls), rendered from Handlebars templates so
//! that n8n's template files work unchanged ([`templates`]).
//!
//! Security follows n8n's settings: implicit TLS when N8N_SMTP_SSL is on;
//! otherwise STARTTLS, required, when N8N_SMTP_STARTTLS is on; otherwise
//! plain. Credentials are the SMTP user and password, or, with a service
//! account, an OAuth access token sent with XOAUTH2 ([`oauth`]).

mod oauth;
pub(crate) use oauth::tls_config;
mod templates;

pub use templates::{DEFAULT_INVITE_SUBJECT, default_invite_html, validate_template};

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
use usher_domain::{
    mail::{InviteMail, MailError, Mailer, ResetMail, VerifyMail},
    model::Email,
    store::{Store, keys},
};

use self::{
    oauth::OAuthClient,
    templates::{Context, Templates, html_to_text},
};
use crate::settings::{MailSettings, SmtpSettings};

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

    async fn send_email_verification(
        &self,
        to: &Email,
        mail: &VerifyMail,
    ) -> Result<(), MailError> {
        let context = Context {
            verify_email_url: mail.verify_url.clone(),
            first_name: mail.first_name.clone(),
            ..self.context()
        };
        let subject = self.render(&self.templates.text, "verify-subject", &context)?;
        let html = self.render(&self.templates.html, "verify", &context)?;
        let text = self.render(&self.templates.text, "verify", &context)?;
        self.send(to, subject, html, text).await
    }
}
