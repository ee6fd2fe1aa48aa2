//! Tags: everyone signed in sees and creates them; the owner and admins
//! rename and delete them.

use crate::{
    Error, Result,
    model::Origin,
    resources::{Tag, TagId},
};

use crate::service::{Usher, auth::Actor};

impl Usher {
    pub async fn tags(&self, _actor: &Actor) -> Result<Vec<Tag>> {
        Ok(self.store.tags().await?)
    }

    /// Any signed-in user may create tags (`_actor` is the proof).
    pub async fn create_tag(&self, _actor: &Actor, name: &str) -> Result<Tag> {
        let tag = Tag {
            id: TagId::new(),
            name: tag_name(name)?,
            created_at: self.now(),
        };
        self.store
            .insert_tag(&tag)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("A tag named '{}' exists already.", tag.name))
                }
                other => other,
            })?;
        Ok(tag)
    }

    pub async fn rename_tag(&self, actor: &Actor, id: TagId, name: &str) -> Result<()> {
        require_tag_admin(actor, "rename")?;
        let name = tag_name(name)?;
        let renamed = self
            .store
            .rename_tag(id, &name)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("A tag named '{name}' exists already."))
                }
                other => other,
            })?;
        if renamed {
            Ok(())
        } else {
            Err(Error::not_found("There is no such tag."))
        }
    }

    pub async fn delete_tag(&self, actor: &Actor, id: TagId, origin: &Origin) -> Result<()> {
        require_tag_admin(actor, "delete")?;
        if !self.store.delete_tag(id).await? {
            return Err(Error::not_found("There is no such tag."));
        }
        self.audit(
            Some(&actor.user),
            "tag.deleted",
            None,
            id.to_string(),
            origin,
        )
        .await;
        Ok(())
    }
}

fn require_tag_admin(actor: &Actor, verb: &str) -> Result<()> {
    if actor.user.role.manages_users() {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "Only the owner and admins can {verb} tags."
        )))
    }
}

fn tag_name(text: &str) -> Result<String> {
    let name = text.trim();
    if name.is_empty() || name.chars().count() > 24 {
        return Err(Error::field(
            "name",
            "A tag name is 1 to 24 characters long.",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::field(
            "name",
            "A tag name cannot contain control characters (tabs, line breaks).",
        ));
    }
    Ok(name.to_owned())
}
