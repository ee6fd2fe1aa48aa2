//! The user list, with n8n's query: `take`, `skip`, `sortBy[]`, `filter`
//! (JSON) and `select[]`. A parameter that does not fit is refused with a
//! 400 that names it, as n8n's `UsersListFilterDto` does.

use axum::{
    Router,
    extract::{RawQuery, State},
    routing::get,
};
use serde::Serialize;
use serde_json::{Map, Value};
use usher_domain::{
    Error,
    service::user_list::{MAX_TAKE, Sort, UserQuery},
};

use super::{Data, data};
use crate::{
    AppState,
    error::Result,
    extract::{Json, SignedIn, from_param},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/users", get(list_users))
}

#[derive(Serialize)]
struct UserList {
    /// How many users match, on every page.
    count: usize,
    items: Vec<Value>,
}

/// Fields `select[]` may name: n8n's (`disabled` included: Usher has no
/// disabled users, so it is false), and the rest of Usher's user object.
const SELECTABLE: [&str; 12] = [
    "id",
    "email",
    "firstName",
    "lastName",
    "role",
    "mfaEnabled",
    "disabled",
    "isOwner",
    "isPending",
    "passwordChangeRequired",
    "createdAt",
    "updatedAt",
];

/// The list query, read from the query string.
struct ListParams {
    query: UserQuery,
    /// None: every field the caller may see.
    select: Option<Vec<&'static str>>,
}

impl ListParams {
    fn parse(raw: &str) -> Result<Self, Error> {
        let mut query = UserQuery::default();
        let mut select: Option<Vec<&'static str>> = None;
        for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
            let value = value.trim();
            match list_name(&name) {
                "take" if !value.is_empty() => query.take = take(value)?,
                "skip" if !value.is_empty() => {
                    query.skip = value.parse().map_err(|_| {
                        Error::field("skip", "skip must be a whole number, 0 or more.")
                    })?;
                }
                "sortBy" => query.sort.push(Sort::parse(value).ok_or_else(|| {
                    Error::field(
                        "sortBy",
                        format!("sortBy must be one of: {}.", Sort::choices().join(", ")),
                    )
                })?),
                "filter" if !value.is_empty() => {
                    query.filter = from_param("filter", value)
                        .map_err(|refused| Error::field("filter", refused.message))?;
                }
                "select" => {
                    let field = SELECTABLE
                        .into_iter()
                        .find(|field| *field == value)
                        .ok_or_else(|| {
                            Error::field(
                                "select",
                                format!(
                                    "select must name fields of a user: {}.",
                                    SELECTABLE.join(", ")
                                ),
                            )
                        })?;
                    select.get_or_insert_with(Vec::new).push(field);
                }
                // Others (n8n's `expand`) are not Usher's to read.
                _ => {}
            }
        }
        Ok(Self { query, select })
    }
}

/// A list parameter's name as n8n's clients send it: `sortBy[]`,
/// `sortBy[0]` or `sortBy` are all `sortBy`.
fn list_name(name: &str) -> &str {
    match name.split_once('[') {
        Some((base, rest)) if rest.ends_with(']') => base,
        _ => name,
    }
}

/// n8n's `take`: at most [`MAX_TAKE`]; a negative number is every user.
fn take(value: &str) -> Result<Option<usize>, Error> {
    let number: i64 = value.parse().map_err(|_| {
        Error::field(
            "take",
            format!(
                "take must be a whole number: how many users to show (at most {MAX_TAKE}), or -1 \
                 for all of them."
            ),
        )
    })?;
    Ok(usize::try_from(number).ok().map(|n| n.min(MAX_TAKE)))
}

/// The fields `select` names, of what the caller may see of the user
/// (n8n always keeps the id).
fn selected(user: Value, select: &[&str]) -> Value {
    let Value::Object(fields) = user else {
        return user;
    };
    let mut kept = Map::new();
    for name in std::iter::once("id").chain(select.iter().copied()) {
        if name == "disabled" {
            kept.insert(name.to_owned(), Value::Bool(false));
        } else if let Some(value) = fields.get(name) {
            kept.insert(name.to_owned(), value.clone());
        }
    }
    Value::Object(kept)
}

async fn list_users(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    RawQuery(raw): RawQuery,
) -> Result<Json<Data<UserList>>> {
    let params = ListParams::parse(raw.as_deref().unwrap_or_default())?;
    let page = state.usher().list_users(&actor, &params.query).await?;
    let items = page
        .users
        .iter()
        .map(|user| {
            let seen = super::user_seen_by(&actor, user);
            match &params.select {
                Some(select) => selected(seen, select),
                None => seen,
            }
        })
        .collect();
    Ok(data(UserList {
        count: page.count,
        items,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters_come_with_or_without_brackets() {
        assert_eq!(list_name("sortBy[]"), "sortBy");
        assert_eq!(list_name("sortBy[1]"), "sortBy");
        assert_eq!(list_name("sortBy"), "sortBy");
        assert_eq!(list_name("sortBy[x"), "sortBy[x");
    }

    #[test]
    fn take_is_capped_and_negative_is_everyone() {
        assert_eq!(take("10").ok(), Some(Some(10)));
        assert_eq!(take("500").ok(), Some(Some(MAX_TAKE)));
        assert_eq!(take("-1").ok(), Some(None));
        assert!(take("ten").is_err());
        assert!(take("1.5").is_err());
    }
}
