//! What a form's post leaves for the page it shows next: [`Shown`], the
//! notice that it was done or the services' reason it was not, and [`Form`],
//! the values and errors kept between a failed post and the page that shows
//! it again (passwords are never echoed back).

use std::collections::HashMap;

use askama::Template;
use usher_domain::Error;

/// What a post adds to the page it shows next: a notice that it was done,
/// or the reason it was not, and `with`, what else that page shows for it
/// (a new key, a set-up under way, a form as typed).
#[derive(Default)]
pub struct Shown<T = ()> {
    pub notice: Option<String>,
    pub error: Option<String>,
    pub with: T,
}

impl<T: Default> Shown<T> {
    pub fn notice(text: impl Into<String>) -> Self {
        Self {
            notice: Some(text.into()),
            ..Self::default()
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            error: Some(text.into()),
            ..Self::default()
        }
    }

    /// The services' refusal, in their words (a throttle's makes the page
    /// a 429: [`super::error::refused`]).
    pub fn refused(error: Error) -> Self {
        Self::error(super::error::refused(error))
    }

    pub fn with(self, with: T) -> Self {
        Self { with, ..self }
    }
}

#[derive(Default)]
pub struct Form {
    values: HashMap<&'static str, String>,
    errors: HashMap<&'static str, String>,
    /// The field of the first error, which gets the focus when the page
    /// shows again.
    first_error: Option<&'static str>,
    /// An error that belongs to no one field.
    pub general: Option<String>,
    /// For a new password the policy refused: which of its rules the
    /// password breaks (see [`PasswordRules`]).
    policy: HashMap<&'static str, [bool; 3]>,
}

/// The password policy, as the list under every new-password field shows
/// it: the length, a number, a capital letter (n8n's rules and order).
#[derive(Clone, Copy)]
pub struct PasswordRules {
    pub min_length: usize,
}

impl PasswordRules {
    fn texts(self) -> [String; 3] {
        [
            format!(
                "{} to {} characters",
                self.min_length,
                usher_domain::password::MAX_LENGTH
            ),
            "At least one number".to_owned(),
            "At least one capital letter".to_owned(),
        ]
    }

    /// Which rules a refusal's message (n8n's messages, joined) says are
    /// broken; None when it is about something else.
    fn broken(message: &str) -> Option<[bool; 3]> {
        if !message.starts_with("Password must") {
            return None;
        }
        let broken = [
            message.contains("characters long"),
            message.contains("at least 1 number"),
            message.contains("at least 1 uppercase"),
        ];
        broken.contains(&true).then_some(broken)
    }
}

#[derive(Template)]
#[template(path = "partials/password_field.html")]
struct PasswordField<'a> {
    name: &'a str,
    id: &'a str,
    label: &'a str,
    error: Option<&'a str>,
    /// Each rule, and whether the password typed broke it.
    rules: Vec<(String, bool)>,
    focus: bool,
}

#[derive(Template)]
#[template(path = "partials/field.html")]
struct Field<'a> {
    name: &'a str,
    id: &'a str,
    label: &'a str,
    kind: &'a str,
    autocomplete: &'a str,
    value: &'a str,
    error: Option<&'a str>,
    hint: &'a str,
    required: bool,
    /// The first field with an error: focused when the page shows.
    focus: bool,
}

impl Form {
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.values.insert(name, value.into());
        self
    }

    /// Puts a domain error beside its field (`rename` maps the domain's field
    /// names to this form's), or above the form.
    pub fn error(mut self, error: Error, rename: &[(&str, &'static str)]) -> Self {
        let field = error.field_name().map(|f| {
            rename
                .iter()
                .find(|(from, _)| *from == f)
                .map_or(f, |(_, to)| *to)
        });
        let message = super::error::refused(error);
        match field {
            Some(field) => {
                self.first_error.get_or_insert(field);
                // The policy shows once, as the list under the field with
                // what is missing marked, not again as a sentence.
                let message = match PasswordRules::broken(&message) {
                    Some(broken) => {
                        self.policy.insert(field, broken);
                        "This password is too weak: it needs what is marked below.".to_owned()
                    }
                    None => message,
                };
                self.errors.insert(field, message);
            }
            None => self.general = Some(message),
        }
        self
    }

    /// A new password's field, with the policy as a list under it (what a
    /// refused password lacked marked); `id` may differ from `name` where a
    /// page has two forms.
    pub fn new_password(&self, name: &str, id: &str, label: &str, rules: &PasswordRules) -> String {
        let broken = self.policy.get(name).copied().unwrap_or_default();
        PasswordField {
            name,
            id,
            label,
            error: self.errors.get(name).map(String::as_str),
            rules: rules.texts().into_iter().zip(broken).collect(),
            focus: self.first_error == Some(name),
        }
        .render()
        .unwrap_or_default()
    }

    /// The error beside a field a page draws itself (a checkbox, a choice).
    pub fn error_of(&self, name: &str) -> Option<String> {
        self.errors.get(name).cloned()
    }

    pub fn general_error(mut self, message: impl Into<String>) -> Self {
        self.general = Some(message.into());
        self
    }

    pub fn field(&self, name: &str, label: &str, kind: &str, autocomplete: &str) -> String {
        self.field_with_hint(name, label, kind, autocomplete, "")
    }

    pub fn field_with_hint(
        &self,
        name: &str,
        label: &str,
        kind: &str,
        autocomplete: &str,
        hint: &str,
    ) -> String {
        self.render_field(name, name, label, kind, autocomplete, hint, true)
    }

    /// A field whose element id is not its name: ids must be unique on a
    /// page, and a page with two forms can have the same name in both (a
    /// label pointing at a repeated id leads to the other form's field).
    pub fn field_with_id(
        &self,
        name: &str,
        id: &str,
        label: &str,
        kind: &str,
        autocomplete: &str,
    ) -> String {
        self.render_field(name, id, label, kind, autocomplete, "", true)
    }

    pub fn optional_field(
        &self,
        name: &str,
        label: &str,
        kind: &str,
        autocomplete: &str,
        hint: &str,
    ) -> String {
        self.render_field(name, name, label, kind, autocomplete, hint, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn render_field(
        &self,
        name: &str,
        id: &str,
        label: &str,
        kind: &str,
        autocomplete: &str,
        hint: &str,
        required: bool,
    ) -> String {
        let value = if kind == "password" {
            ""
        } else {
            self.values.get(name).map_or("", String::as_str)
        };
        Field {
            name,
            id,
            label,
            kind,
            autocomplete,
            value,
            error: self.errors.get(name).map(String::as_str),
            hint,
            required,
            focus: self.first_error == Some(name),
        }
        .render()
        .unwrap_or_default()
    }
}
