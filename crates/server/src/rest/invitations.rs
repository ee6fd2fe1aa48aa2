//! Invitations: invite, resend and copy the link (the same link until it is
//! used, withdrawn, replaced or expires), make a new link, withdraw,
//! resolve, accept; and users created directly with a temporary password
//! (basic onboarding).

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::{delete, get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use usher_domain::{
    model::{Email, UserId},
    secret::Secret,
    service::{
        invitations::{InviteRequest, Invited},
        onboarding::{Created, NewUser},
    },
};

use super::{Data, UserJson, auth::signed_in, data};
use crate::{
    AppState,
    error::{ApiError, Result},
    extract::{ClientOrigin, Id, Json, SignedIn, parsed},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invitations", post(invite))
        .route("/invitations/accept", post(accept))
        .route("/invitations/{id}", delete(revoke))
        .route("/resolve-signup-token", get(resolve))
        .route("/users", post(create_users))
        .route("/users/{id}/reinvite", post(reinvite))
        .route("/users/{id}/invite-link", post(invite_link))
        .route("/users/{id}/invite-link/renew", post(renew_invite_link))
}

/// n8n's `InviteUsersRequestDto`: every address is checked before anyone
/// is invited, so one that is not an address refuses the whole request
/// (400 naming it) and nobody is made.
#[derive(Deserialize)]
struct InviteBody {
    #[serde(deserialize_with = "parsed")]
    email: Email,
    role: Option<String>,
}

/// One result per email, as n8n answers.
#[derive(Serialize)]
pub struct InviteResult {
    user: Value,
    error: String,
}

impl From<Invited> for InviteResult {
    fn from(invited: Invited) -> Self {
        let mut user = json!({"email": invited.email, "emailSent": invited.email_sent});
        if let Some(pending) = &invited.user {
            user["id"] = json!(pending.id.to_string());
            user["role"] = json!(pending.role.as_str());
        }
        if let Some(url) = &invited.accept_url {
            user["inviteAcceptUrl"] = json!(url);
        }
        InviteResult {
            user,
            error: invited.error.unwrap_or_default(),
        }
    }
}

async fn invite(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<Vec<InviteBody>>,
) -> Result<Json<Data<Vec<InviteResult>>>> {
    let requests = body
        .into_iter()
        .map(|b| InviteRequest {
            email: b.email.to_string(),
            role: b.role,
        })
        .collect();
    let outcomes = state.usher().invite(&actor, requests, &origin).await?;
    Ok(data(outcomes.into_iter().map(InviteResult::from).collect()))
}

async fn reinvite(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<InviteResult>>> {
    let invited = state.usher().resend_invitation(&actor, id, &origin).await?;
    Ok(data(InviteResult::from(invited)))
}

/// The link that works now, again; `newLink` is true when it could not be
/// shown again (an invitation from before links were kept) and a new one
/// replaced it.
async fn invite_link(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    let invited = state.usher().invite_link(&actor, id, &origin).await?;
    Ok(data(
        json!({"link": invited.accept_url, "newLink": invited.new_link}),
    ))
}

/// A new link; the earlier ones stop working. Answered as a resend is.
async fn renew_invite_link(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<InviteResult>>> {
    let invited = state.usher().renew_invite_link(&actor, id, &origin).await?;
    Ok(data(InviteResult::from(invited)))
}

async fn revoke(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    state.usher().revoke_invitation(&actor, id, &origin).await?;
    Ok(data(json!({"success": true})))
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn resolve(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Data<Value>>> {
    let view = state.usher().resolve_invitation(&query.token).await?;
    Ok(data(json!({
        "inviter": {"firstName": view.inviter_first_name, "lastName": view.inviter_last_name},
        "email": view.email.to_string(),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcceptBody {
    /// Left out, it is a link without its token: n8n's "Invalid invite
    /// URL" (the service's), not "token is required.".
    #[serde(default)]
    token: String,
    first_name: String,
    last_name: String,
    password: Secret,
}

async fn accept(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<AcceptBody>,
) -> Result<Response> {
    let session = state
        .usher()
        .accept_invitation(
            &body.token,
            &body.first_name,
            &body.last_name,
            &body.password,
            &origin,
        )
        .await?;
    Ok(signed_in(&state, session))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewUserBody {
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    role: Option<String>,
}

#[derive(Deserialize)]
struct CreateUsersBody {
    users: Vec<NewUserBody>,
    /// `basic`: a temporary password each; `email`: invitations.
    #[serde(default = "basic")]
    onboarding: String,
}

fn basic() -> String {
    "basic".into()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateResult {
    user: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    temporary_password: Option<String>,
    error: String,
}

impl From<Created> for CreateResult {
    fn from(created: Created) -> Self {
        let user = match &created.user {
            Some(user) => serde_json::to_value(UserJson::from(user)).unwrap_or_default(),
            None => json!({"email": created.email}),
        };
        CreateResult {
            user,
            temporary_password: created.temporary_password.map(|p| p.expose().to_owned()),
            error: created.error.unwrap_or_default(),
        }
    }
}

/// `POST /rest/users`: Budibase's two onboarding flows behind one route.
async fn create_users(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<CreateUsersBody>,
) -> Result<Json<Data<Value>>> {
    match body.onboarding.as_str() {
        "basic" => {
            let users = body
                .users
                .into_iter()
                .map(|u| NewUser {
                    email: u.email,
                    first_name: u.first_name,
                    last_name: u.last_name,
                    role: u.role,
                })
                .collect();
            let created = state.usher().create_users(&actor, users, &origin).await?;
            let results: Vec<CreateResult> = created.into_iter().map(CreateResult::from).collect();
            Ok(data(json!(results)))
        }
        "email" => {
            let requests = body
                .users
                .into_iter()
                .map(|u| InviteRequest {
                    email: u.email,
                    role: u.role,
                })
                .collect();
            let outcomes = state.usher().invite(&actor, requests, &origin).await?;
            let results: Vec<InviteResult> = outcomes.into_iter().map(InviteResult::from).collect();
            Ok(data(json!(results)))
        }
        other => Err(ApiError::from(usher_domain::Error::invalid(format!(
            "'{other}' is not an onboarding flow. Use basic (temporary passwords) or email (invitations)."
        )))),
    }
}
