//! The user list as n8n's `GET /rest/users` offers it: a filter, an order,
//! and a page (`take`, `skip`), with the count of all that match.
//!
//! The list is every user with an account, small enough to filter and sort
//! in memory after one read; what a viewer may filter or sort by follows
//! what they may see ([`Usher::sees_full_profile`]).

use std::cmp::Ordering;

use crate::{
    Error, Result,
    model::{Role, User, UserId},
};

use super::{Usher, auth::Actor};

/// n8n's page size when none is asked for, and the most one page holds.
pub const MAX_TAKE: usize = 50;

/// n8n's filter fields (`filter={"email": …}`, n8n's names are the
/// interface); each given one must match, and a field n8n does not have is
/// refused rather than silently matching everyone.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserFilter {
    /// The whole address, in any case.
    pub email: Option<String>,
    /// The whole first name.
    pub first_name: Option<String>,
    /// The whole last name.
    pub last_name: Option<String>,
    pub is_owner: Option<bool>,
    pub mfa_enabled: Option<bool>,
    /// Part of the first name, last name or email, in any case.
    pub full_text: Option<String>,
    /// Only these users (ids that are not ids match nobody).
    pub ids: Option<Vec<String>>,
}

/// What the list can be ordered by (n8n's `sortBy` fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    FirstName,
    LastName,
    Email,
    /// Owner, then admins, then members.
    Role,
    MfaEnabled,
}

impl SortField {
    pub const ALL: [Self; 5] = [
        Self::FirstName,
        Self::LastName,
        Self::Email,
        Self::Role,
        Self::MfaEnabled,
    ];

    /// n8n's name of the field.
    pub fn name(self) -> &'static str {
        match self {
            Self::FirstName => "firstName",
            Self::LastName => "lastName",
            Self::Email => "email",
            Self::Role => "role",
            Self::MfaEnabled => "mfaEnabled",
        }
    }

    fn compare(self, a: &User, b: &User) -> Ordering {
        let text = |x: &str, y: &str| x.to_lowercase().cmp(&y.to_lowercase()).then(x.cmp(y));
        match self {
            Self::FirstName => text(&a.first_name, &b.first_name),
            Self::LastName => text(&a.last_name, &b.last_name),
            Self::Email => a
                .email
                .as_ref()
                .map(|e| e.as_str())
                .cmp(&b.email.as_ref().map(|e| e.as_str())),
            Self::Role => rank(a.role).cmp(&rank(b.role)),
            Self::MfaEnabled => a.mfa_enabled.cmp(&b.mfa_enabled),
        }
    }
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Owner => 0,
        Role::Admin => 1,
        Role::Member => 2,
    }
}

/// One `field:asc|desc` of `sortBy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Sort {
    /// `firstName:asc` and the like; None for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (field, direction) = text.split_once(':')?;
        let field = SortField::ALL.into_iter().find(|f| f.name() == field)?;
        let descending = match direction {
            "asc" => false,
            "desc" => true,
            _ => return None,
        };
        Some(Self { field, descending })
    }

    /// Every `sortBy` value there is, for the message that lists them.
    pub fn choices() -> Vec<String> {
        SortField::ALL
            .into_iter()
            .flat_map(|f| [format!("{}:asc", f.name()), format!("{}:desc", f.name())])
            .collect()
    }
}

/// One request for the list.
#[derive(Clone, Debug)]
pub struct UserQuery {
    pub filter: UserFilter,
    /// In order of precedence; the oldest account first among equals.
    pub sort: Vec<Sort>,
    pub skip: usize,
    /// None: every user (n8n's `take=-1`).
    pub take: Option<usize>,
}

impl Default for UserQuery {
    fn default() -> Self {
        Self {
            filter: UserFilter::default(),
            sort: Vec::new(),
            skip: 0,
            take: Some(MAX_TAKE),
        }
    }
}

/// One page of the list, and how many users match in all.
#[derive(Debug)]
pub struct UserPage {
    pub count: usize,
    pub users: Vec<User>,
}

impl UserFilter {
    fn matches(&self, user: &User) -> bool {
        let email = user.email.as_ref().map_or("", |e| e.as_str());
        let same =
            |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        let full_text = self.full_text.as_deref().is_none_or(|text| {
            let text = text.to_lowercase();
            [user.first_name.as_str(), user.last_name.as_str(), email]
                .iter()
                .any(|field| field.to_lowercase().contains(&text))
        });
        self.email
            .as_deref()
            .is_none_or(|wanted| wanted.trim().to_lowercase() == email)
            && same(&self.first_name, &user.first_name)
            && same(&self.last_name, &user.last_name)
            && self
                .is_owner
                .is_none_or(|owner| owner == (user.role == Role::Owner))
            && self.mfa_enabled.is_none_or(|on| on == user.mfa_enabled)
            && full_text
            && self.ids.as_ref().is_none_or(|ids| {
                ids.iter()
                    .any(|id| UserId::parse(id.trim()) == Some(user.id))
            })
    }
}

impl Usher {
    /// A page of the user list. Any signed-in user may list (n8n shows
    /// members the list too); only those who see everyone's two-factor
    /// state may filter or sort by it, or the order would tell it.
    pub async fn list_users(&self, actor: &Actor, query: &UserQuery) -> Result<UserPage> {
        let by_mfa = query.filter.mfa_enabled.is_some()
            || query.sort.iter().any(|s| s.field == SortField::MfaEnabled);
        if by_mfa && !actor.user.role.manages_users() {
            return Err(Error::forbidden(
                "Only the owner and admins can filter or sort users by mfaEnabled.",
            ));
        }
        let mut users: Vec<User> = self
            .users(actor)
            .await?
            .into_iter()
            .filter(|user| query.filter.matches(user))
            .collect();
        // A stable sort: equals keep the store's order, oldest first.
        users.sort_by(|a, b| {
            query.sort.iter().fold(Ordering::Equal, |order, sort| {
                order.then_with(|| {
                    let by_field = sort.field.compare(a, b);
                    if sort.descending {
                        by_field.reverse()
                    } else {
                        by_field
                    }
                })
            })
        });
        let count = users.len();
        let page = users
            .into_iter()
            .skip(query.skip)
            .take(query.take.unwrap_or(usize::MAX))
            .collect();
        Ok(UserPage { count, users: page })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_takes_n8ns_fields_and_directions_only() {
        assert_eq!(
            Sort::parse("email:desc"),
            Some(Sort {
                field: SortField::Email,
                descending: true
            })
        );
        for bad in ["email", "email:up", "password:asc", ":asc", "Email:asc"] {
            assert_eq!(Sort::parse(bad), None, "{bad}");
        }
        assert_eq!(Sort::choices().len(), 10);
        assert_eq!(Sort::choices()[0], "firstName:asc");
    }
}
