//! The users page's list: search by name or email, filters by role and
//! status, four orders, and keyset pages, run by the store over indexes so
//! that a page costs the same with ten users or a hundred thousand.
//!
//! A page is asked for after the last row of the one before (`after`) or
//! before the first row of the one after (`before`, read backwards), never
//! by an offset: rows added or removed meanwhile do not shift the pages.

use crate::{
    Error, Result,
    model::{Role, User, UserId},
    store::{OrderKey, UserOrder, UserSearch, UserStatus},
};

use super::{Usher, auth::Actor};

/// Where a page starts or ends: a row's key in the order, and its id.
pub type Cursor = (OrderKey, UserId);

/// One request for the users page's list.
#[derive(Clone, Debug)]
pub struct Browse {
    /// Part of the name shown or of the email, in any case.
    pub text: String,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    pub order: UserOrder,
    pub descending: bool,
    /// The page after this row.
    pub after: Option<Cursor>,
    /// The page before this row (when `after` is None).
    pub before: Option<Cursor>,
    pub limit: usize,
}

impl Default for Browse {
    fn default() -> Self {
        Self {
            text: String::new(),
            role: None,
            status: None,
            order: UserOrder::default(),
            descending: false,
            after: None,
            before: None,
            limit: PAGE,
        }
    }
}

/// Rows a page shows unless asked otherwise, and the most it shows.
pub const PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;

/// One page of the list, with the cursors of its neighbours.
#[derive(Debug, Default)]
pub struct Browsed {
    pub users: Vec<User>,
    /// After the last row, when more follow.
    pub next: Option<Cursor>,
    /// Before the first row, when this is not the first page.
    pub previous: Option<Cursor>,
}

impl Usher {
    /// A page of the users page's list. Anyone signed in may list (n8n shows
    /// members the list too); only those who see everyone's full profile
    /// may filter by status or order by last activity, or the list would
    /// tell what they cannot see.
    pub async fn browse_users(&self, actor: &Actor, browse: &Browse) -> Result<Browsed> {
        let private = browse.status.is_some() || browse.order == UserOrder::LastActive;
        if private && !actor.user.role.manages_users() {
            return Err(Error::forbidden(
                "Only the owner and admins can filter users by status or sort them by last activity.",
            ));
        }
        let limit = browse.limit.clamp(1, MAX_PAGE);
        let backwards = browse.after.is_none() && browse.before.is_some();
        let search = UserSearch {
            text: browse.text.trim().to_lowercase(),
            role: browse.role,
            status: browse.status,
            order: browse.order,
            // A page before a row is the rows after it in the other
            // direction, read back.
            descending: browse.descending != backwards,
            after: browse.after.clone().or_else(|| browse.before.clone()),
            // One more than shown, to know whether there are more.
            limit: i64::try_from(limit + 1).unwrap_or(i64::MAX),
        };
        let mut found = self.store.search_users(&search).await?;
        let more = found.len() > limit;
        found.truncate(limit);
        if backwards {
            found.reverse();
        }
        let first = found.first().map(|(user, key)| (key.clone(), user.id));
        let last = found.last().map(|(user, key)| (key.clone(), user.id));
        let (next, previous) = if backwards {
            // Came back from a later page: that page follows this one.
            (last, first.filter(|_| more))
        } else {
            (
                last.filter(|_| more),
                first.filter(|_| browse.after.is_some()),
            )
        };
        Ok(Browsed {
            users: found.into_iter().map(|(user, _)| user).collect(),
            next,
            previous,
        })
    }

    /// People whose name or email contains `text`, for a "pick a person"
    /// field: at most `limit`, by name.
    pub async fn find_people(&self, actor: &Actor, text: &str, limit: usize) -> Result<Vec<User>> {
        let browse = Browse {
            text: text.to_owned(),
            limit,
            ..Browse::default()
        };
        Ok(self.browse_users(actor, &browse).await?.users)
    }
}
