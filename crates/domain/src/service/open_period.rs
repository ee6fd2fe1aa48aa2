//! What happens to an instance that was open (set-up skipped, so anyone who
//! could reach it acted as the owner) when its owner finally sets up.
//!
//! Whatever was made in that time was made by whoever passed by. Access that
//! lasts is revoked at once: every API key and every pending invitation
//! (the audit log says how many). The rest (users added directly, work,
//! projects) stays, and the owner's first page lists it all, from the audit
//! log, until the owner has read it.

use crate::{
    Result,
    model::{Origin, User},
    store::{AuditEvent, AuditFilter, keys},
};

use super::{Usher, auth::Actor};

/// How far back the report looks, at most.
const REPORT_EVENTS: i64 = 500;

impl Usher {
    /// Revokes keys and invitations made while the instance was open, and
    /// keeps the report of that time for the owner.
    pub(super) async fn close_open_period(&self, owner: &User, origin: &Origin) -> Result<()> {
        let (events, _) = self
            .store
            .audit_events(&AuditFilter::default(), REPORT_EVENTS, 0)
            .await?;
        // Newest first: everything down to the moment set-up was skipped.
        let made: Vec<String> = events
            .iter()
            .take_while(|e| e.action != "owner.setup_skipped")
            .filter(|e| e.action != "owner.setup")
            .map(in_words)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let (keys_revoked, invitations_revoked) = self.store.revoke_open_access().await?;
        let revoked = format!(
            "{} and {} made while the instance was open",
            count(keys_revoked, "API key", "API keys"),
            count(
                invitations_revoked,
                "pending invitation",
                "pending invitations"
            ),
        );
        self.audit(
            Some(owner),
            "owner.open_access_revoked",
            None,
            revoked.clone(),
            origin,
        )
        .await;
        // What was revoked first, then what was made, oldest first.
        let made: Vec<String> = std::iter::once(format!(
            "Revoked now: {revoked}, every session of that time, and every setting then \
             changed (such as the invitation email's wording)."
        ))
        .chain(made)
        .collect();
        let report = serde_json::to_string(&made)
            .map_err(|e| crate::Error::Internal(format!("report: {e}")))?;
        self.store
            .put_setting(keys::OPEN_PERIOD_REPORT, &report)
            .await?;
        Ok(())
    }

    /// What was made while the instance was open, for the owner, until they
    /// dismiss it; None when there is nothing to tell.
    pub async fn open_period_report(&self, actor: &Actor) -> Result<Option<Vec<String>>> {
        if actor.user.role != crate::model::Role::Owner {
            return Ok(None);
        }
        let Some(text) = self.store.setting(keys::OPEN_PERIOD_REPORT).await? else {
            return Ok(None);
        };
        let lines: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
        Ok(Some(lines))
    }

    /// The owner has read the report.
    pub async fn dismiss_open_period_report(&self, actor: &Actor) -> Result<()> {
        if actor.user.role != crate::model::Role::Owner {
            return Err(crate::Error::forbidden("Only the owner can dismiss this."));
        }
        self.store.delete_setting(keys::OPEN_PERIOD_REPORT).await?;
        Ok(())
    }
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One event of the open time, as the owner should read it.
fn in_words(event: &AuditEvent) -> String {
    let target = event.target.as_deref().unwrap_or_default();
    let detail = event.detail.as_str();
    match event.action.as_str() {
        "api_key.created" => format!("An API key, “{detail}”, was made."),
        "invitation.sent" => format!("{target} was invited."),
        "invitation.accepted" => {
            format!("{target} accepted an invitation and has an account: check it.")
        }
        "settings.invite_email" => "The invitation email's wording was changed.".to_owned(),
        "mfa.enabled" => format!("Two-factor authentication was set up for {target}."),
        "user.created" => format!("{target} was added with a temporary password."),
        "workflow.created" => format!("The workflow {detail} was created."),
        "credential.created" => format!("The credential {detail} was created."),
        "project.created" => format!("The project “{detail}” was created."),
        "user.role_changed" => format!("{target}'s role was changed: {detail}."),
        "user.deleted" => format!("{target} was deleted."),
        other => {
            let what = [other, target, detail]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" · ");
            format!("{what}.")
        }
    }
}
