//! Registering and changing apps (owner and admins), and the apps a person
//! may open. The protocol that signs people into them is [`super::oidc`].

use crate::{
    Error, Result,
    apps::{App, AppId, AppInput, NewApp},
    model::Origin,
    secret::Secret,
    service::auth::Actor,
    token,
};

use super::Usher;

const NO_SUCH_APP: &str = "There is no such app.";

impl Usher {
    fn require_app_manager(actor: &Actor) -> Result<()> {
        if actor.user.role.manages_users() {
            Ok(())
        } else {
            Err(Error::forbidden(
                "Only the owner and admins can manage apps.",
            ))
        }
    }

    /// Every app (owner and admins).
    pub async fn apps(&self, actor: &Actor) -> Result<Vec<App>> {
        Self::require_app_manager(actor)?;
        Ok(self.store.apps().await?)
    }

    /// One app (owner and admins).
    pub async fn app(&self, actor: &Actor, id: AppId) -> Result<App> {
        Self::require_app_manager(actor)?;
        self.store
            .app(id)
            .await?
            .ok_or_else(|| Error::not_found(NO_SUCH_APP))
    }

    /// The team projects an app's access may name (owner and admins). The
    /// people it names are chosen by a search, never from a list of
    /// everyone.
    pub async fn app_projects(&self, actor: &Actor) -> Result<Vec<crate::resources::Project>> {
        Self::require_app_manager(actor)?;
        Ok(self.store.team_projects().await?)
    }

    /// The apps the signed-in person may open, with their role in each.
    pub async fn my_apps(&self, actor: &Actor) -> Result<Vec<(App, String)>> {
        Ok(self.store.apps_of(actor.user.id).await?)
    }

    /// Registers an app. A confidential app gets a client secret, shown
    /// this once and stored as its hash.
    #[tracing::instrument(skip_all, err)]
    pub async fn create_app(
        &self,
        actor: &Actor,
        input: AppInput,
        origin: &Origin,
    ) -> Result<NewApp> {
        Self::require_app_manager(actor)?;
        let (input, roles) = input.validate()?;
        let now = self.now();
        let secret = (!input.public).then(token::generate);
        let app = App {
            id: AppId::new(),
            name: input.name,
            launch_url: input.launch_url,
            icon: input.icon,
            client_id: new_client_id(),
            secret_hash: secret.as_ref().map(|s| s.hash.clone()),
            public: input.public,
            third_party: input.third_party,
            require_mfa: input.require_mfa,
            redirect_uris: input.redirect_uris,
            post_logout_redirect_uris: input.post_logout_redirect_uris,
            roles,
            access: input.access,
            forward_auth: input.forward_auth,
            created_at: now,
            updated_at: now,
        };
        self.refuse_taken_door(app.id, app.forward_auth.as_ref())
            .await?;
        self.store.insert_app(&app).await.map_err(reference_error)?;
        self.audit(
            Some(&actor.user),
            "app.created",
            None,
            format!("{} ({})", app.name, app.client_id),
            origin,
        )
        .await;
        Ok(NewApp {
            app,
            client_secret: secret.map(|s| s.secret),
        })
    }

    /// Changes an app. Whoever loses access, or gets another role, loses
    /// their tokens for it in the same transaction. Turning a public app
    /// confidential makes a secret (returned, shown once); the other way
    /// drops it.
    #[tracing::instrument(skip_all, err)]
    pub async fn update_app(
        &self,
        actor: &Actor,
        id: AppId,
        input: AppInput,
        origin: &Origin,
    ) -> Result<NewApp> {
        Self::require_app_manager(actor)?;
        let old = self
            .store
            .app(id)
            .await?
            .ok_or_else(|| Error::not_found(NO_SUCH_APP))?;
        let (input, roles) = input.validate()?;
        let app = App {
            name: input.name,
            launch_url: input.launch_url,
            icon: input.icon,
            public: input.public,
            third_party: input.third_party,
            require_mfa: input.require_mfa,
            redirect_uris: input.redirect_uris,
            post_logout_redirect_uris: input.post_logout_redirect_uris,
            roles,
            access: input.access,
            forward_auth: input.forward_auth,
            updated_at: self.now(),
            ..old.clone()
        };
        self.refuse_taken_door(app.id, app.forward_auth.as_ref())
            .await?;
        if !self.store.update_app(&app).await.map_err(reference_error)? {
            return Err(Error::not_found(NO_SUCH_APP));
        }
        let client_secret = match (old.public, app.public) {
            (true, false) => Some(self.new_app_secret(app.id).await?),
            (false, true) => {
                self.store.set_app_secret(app.id, None).await?;
                None
            }
            _ => None,
        };
        self.audit(
            Some(&actor.user),
            "app.updated",
            None,
            format!("{} ({})", app.name, app.client_id),
            origin,
        )
        .await;
        let app = self.store.app(id).await?.unwrap_or(app);
        Ok(NewApp { app, client_secret })
    }

    async fn new_app_secret(&self, id: AppId) -> Result<Secret> {
        let secret = token::generate();
        self.store.set_app_secret(id, Some(&secret.hash)).await?;
        Ok(secret.secret)
    }

    /// A new client secret for a confidential app; the old one stops
    /// working at once.
    pub async fn renew_app_secret(
        &self,
        actor: &Actor,
        id: AppId,
        origin: &Origin,
    ) -> Result<Secret> {
        let app = self.app(actor, id).await?;
        if app.public {
            return Err(Error::invalid(
                "A public app has no client secret: it signs in with PKCE only.",
            ));
        }
        let secret = self.new_app_secret(id).await?;
        self.audit(
            Some(&actor.user),
            "app.secret-renewed",
            None,
            format!("{} ({})", app.name, app.client_id),
            origin,
        )
        .await;
        Ok(secret)
    }

    /// Deletes an app with every grant and token it issued.
    #[tracing::instrument(skip_all, err)]
    pub async fn delete_app(&self, actor: &Actor, id: AppId, origin: &Origin) -> Result<()> {
        let app = self.app(actor, id).await?;
        if !self.store.delete_app(id).await? {
            return Err(Error::not_found(NO_SUCH_APP));
        }
        self.audit(
            Some(&actor.user),
            "app.deleted",
            None,
            format!("{} ({})", app.name, app.client_id),
            origin,
        )
        .await;
        Ok(())
    }
}

/// A chosen person or project that does not exist.
fn reference_error(error: crate::store::StoreError) -> Error {
    match error {
        crate::store::StoreError::Conflict(_) => Error::field(
            "access",
            "A chosen person or project does not exist (any more).",
        ),
        other => other.into(),
    }
}

/// 128 random bits, hex: no secret, but not guessable either.
fn new_client_id() -> String {
    let token = token::generate();
    token.hash[..32].to_owned()
}
