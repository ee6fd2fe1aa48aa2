//! What a form's post leaves for the page it shows next: [`Shown`], the
//! notice that it was done or the services' reason it was not, and [`Form`],
//! the values and errors kept between a failed post and the page that shows
//! it again (passwords are never echoed back).

use std::collections::HashMap;

use askama::Template;
use usher_domain::Error;

use crate::error::ApiError;

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

    /// The services' refusal, in their words.
    pub fn refused(error: Error) -> Self {
        Self::error(ApiError::from(error).message)
    }

    /// What `done` makes of a success; the services' refusal otherwise.
    pub fn of<V>(result: usher_domain::Result<V>, done: impl FnOnce(V) -> Self) -> Self {
        result.map_or_else(Self::refused, done)
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
        let message = ApiError::from(error).message;
        match field {
            Some(field) => {
                self.first_error.get_or_insert(field);
                self.errors.insert(field, message);
            }
            None => self.general = Some(message),
        }
        self
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
