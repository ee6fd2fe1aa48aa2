//! `/rest/workflows`, `/rest/credentials`, `/rest/tags`, `/rest/projects`,
//! and deleting users with their work.

use axum::{
    Router,
    extract::{Query, State},
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_domain::{
    clock::rfc3339,
    model::UserId,
    resources::{CredentialId, Project, ProjectId, ProjectRole, Tag, TagId, WorkflowId},
    service::resources::{Access, CredentialChange, CredentialView, WorkflowChange, WorkflowView},
};

use super::{Data, data};
use crate::{
    AppState,
    error::Result,
    extract::{ClientOrigin, Id, Ids, Json, SignedIn, optional_id},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/workflows", get(list_workflows).post(create_workflow))
        .route(
            "/workflows/{id}",
            get(get_workflow)
                .patch(update_workflow)
                .delete(delete_workflow),
        )
        .route(
            "/credentials",
            get(list_credentials).post(create_credential),
        )
        .route(
            "/credentials/{id}",
            get(get_credential)
                .patch(update_credential)
                .delete(delete_credential),
        )
        .route("/tags", get(list_tags).post(create_tag))
        .route(
            "/tags/{id}",
            axum::routing::patch(rename_tag).delete(delete_tag),
        )
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/personal", get(get_personal_project))
        .route(
            "/projects/{id}",
            get(get_project)
                .patch(rename_project)
                .delete(delete_project),
        )
        .route("/projects/{id}/members", post(set_member))
        .route("/projects/{id}/members/{user_id}", delete(remove_member))
        .route("/users/{id}", delete(delete_user))
        .route("/users/{id}/projects", get(user_projects))
}

pub(crate) fn access_str(access: Access) -> &'static str {
    match access {
        Access::None => "none",
        Access::Read => "read",
        Access::Write => "write",
        Access::Manage => "manage",
    }
}

fn project_json(project: &Project) -> Value {
    json!({
        "id": project.id.to_string(),
        "name": project.name,
        "type": project.kind.as_str(),
        "createdAt": rfc3339(project.created_at),
        "updatedAt": rfc3339(project.updated_at),
    })
}

fn tag_json(tag: &Tag) -> Value {
    json!({"id": tag.id.to_string(), "name": tag.name, "createdAt": rfc3339(tag.created_at)})
}

fn workflow_json(view: &WorkflowView) -> Value {
    let w = &view.workflow;
    json!({
        "id": w.id.to_string(),
        "name": w.name,
        "active": w.active,
        "definition": serde_json::from_str::<Value>(&w.definition).unwrap_or(Value::Null),
        "tags": w.tags.iter().map(tag_json).collect::<Vec<_>>(),
        "projectId": w.project_id.to_string(),
        "project": project_json(&view.project),
        "access": access_str(view.access),
        "createdAt": rfc3339(w.created_at),
        "updatedAt": rfc3339(w.updated_at),
    })
}

fn credential_json(view: &CredentialView) -> Value {
    let c = &view.credential;
    let mut value = json!({
        "id": c.id.to_string(),
        "name": c.name,
        "type": c.kind,
        "projectId": c.project_id.to_string(),
        "project": project_json(&view.project),
        "access": access_str(view.access),
        "createdAt": rfc3339(c.created_at),
        "updatedAt": rfc3339(c.updated_at),
    });
    if let Some(data) = &view.data {
        value["data"] = data.clone();
    }
    value
}

async fn list_workflows(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Vec<Value>>>> {
    let views = state.usher().workflows(&actor).await?;
    Ok(data(views.iter().map(workflow_json).collect()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WorkflowBody {
    name: Option<String>,
    project_id: Option<String>,
    definition: Option<Value>,
    active: Option<bool>,
    tags: Option<Vec<String>>,
}

impl WorkflowBody {
    /// The name, the project to create in, and the change; the ids parsed.
    fn change(self) -> usher_domain::Result<(Option<String>, Option<ProjectId>, WorkflowChange)> {
        let tag_ids = match self.tags {
            Some(tags) => Some(
                tags.iter()
                    .map(|t| t.parse())
                    .collect::<usher_domain::Result<_>>()?,
            ),
            None => None,
        };
        let change = WorkflowChange {
            name: self.name.clone(),
            definition: self.definition,
            active: self.active,
            tag_ids,
        };
        let project = optional_id(self.project_id.as_deref())?;
        Ok((self.name, project, change))
    }
}

async fn create_workflow(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<WorkflowBody>,
) -> Result<Json<Data<Value>>> {
    let (name, project, change) = body.change()?;
    let view = state
        .usher()
        .create_workflow(
            &actor,
            name.as_deref().unwrap_or_default(),
            project,
            change,
            &origin,
        )
        .await?;
    Ok(data(workflow_json(&view)))
}

async fn get_workflow(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<WorkflowId>,
) -> Result<Json<Data<Value>>> {
    Ok(data(workflow_json(
        &state.usher().workflow(&actor, id).await?,
    )))
}

async fn update_workflow(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<WorkflowId>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<WorkflowBody>,
) -> Result<Json<Data<Value>>> {
    let (_, _, change) = body.change()?;
    Ok(data(workflow_json(
        &state
            .usher()
            .update_workflow(&actor, id, change, &origin)
            .await?,
    )))
}

async fn delete_workflow(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<WorkflowId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    state.usher().delete_workflow(&actor, id, &origin).await?;
    Ok(data(json!({"success": true})))
}

async fn list_credentials(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Vec<Value>>>> {
    let views = state.usher().credentials(&actor).await?;
    Ok(data(views.iter().map(credential_json).collect()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CredentialBody {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    data: Option<Value>,
}

async fn create_credential(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<CredentialBody>,
) -> Result<Json<Data<Value>>> {
    let view = state
        .usher()
        .create_credential(
            &actor,
            body.name.as_deref().unwrap_or_default(),
            body.kind.as_deref().unwrap_or_default(),
            optional_id(body.project_id.as_deref())?,
            body.data.unwrap_or_else(|| json!({})),
            &origin,
        )
        .await?;
    Ok(data(credential_json(&view)))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CredentialQuery {
    include_data: bool,
}

async fn get_credential(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<CredentialId>,
    Query(query): Query<CredentialQuery>,
) -> Result<Json<Data<Value>>> {
    Ok(data(credential_json(
        &state
            .usher()
            .credential(&actor, id, query.include_data)
            .await?,
    )))
}

async fn update_credential(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<CredentialId>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<CredentialBody>,
) -> Result<Json<Data<Value>>> {
    let change = CredentialChange {
        name: body.name,
        kind: body.kind,
        data: body.data,
    };
    Ok(data(credential_json(
        &state
            .usher()
            .update_credential(&actor, id, change, &origin)
            .await?,
    )))
}

async fn delete_credential(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<CredentialId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    state.usher().delete_credential(&actor, id, &origin).await?;
    Ok(data(json!({"success": true})))
}

async fn list_tags(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Vec<Value>>>> {
    Ok(data(
        state
            .usher()
            .tags(&actor)
            .await?
            .iter()
            .map(tag_json)
            .collect(),
    ))
}

#[derive(Deserialize)]
struct TagBody {
    name: String,
}

async fn create_tag(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Json(body): Json<TagBody>,
) -> Result<Json<Data<Value>>> {
    Ok(data(tag_json(
        &state.usher().create_tag(&actor, &body.name).await?,
    )))
}

async fn rename_tag(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<TagId>,
    Json(body): Json<TagBody>,
) -> Result<Json<Data<Value>>> {
    state.usher().rename_tag(&actor, id, &body.name).await?;
    Ok(data(json!({"success": true})))
}

async fn delete_tag(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<TagId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    state.usher().delete_tag(&actor, id, &origin).await?;
    Ok(data(json!({"success": true})))
}

fn role_str(role: Option<ProjectRole>) -> Value {
    role.map_or(Value::Null, |r| json!(r.as_str()))
}

async fn list_projects(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Vec<Value>>>> {
    let projects = state.usher().projects(&actor).await?;
    Ok(data(
        projects
            .iter()
            .map(|(project, role)| {
                let mut value = project_json(project);
                value["role"] = role_str(*role);
                value
            })
            .collect(),
    ))
}

/// `GET /rest/projects/personal`: the caller's personal project in n8n's
/// shape, its owner under `projectRelations`.
async fn get_personal_project(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> Result<Json<Data<Value>>> {
    let (project, members) = state.usher().own_personal_project(&actor).await?;
    let mut value = project_json(&project);
    value["projectRelations"] = members
        .iter()
        .map(|(user, role)| {
            json!({
                "id": user.id.to_string(),
                "email": user.email.as_ref().map(|e| e.to_string()),
                "firstName": user.first_name,
                "lastName": user.last_name,
                "role": role.as_str(),
            })
        })
        .collect();
    Ok(data(value))
}

#[derive(Deserialize)]
struct ProjectBody {
    name: String,
}

async fn create_project(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<ProjectBody>,
) -> Result<Json<Data<Value>>> {
    Ok(data(project_json(
        &state
            .usher()
            .create_project(&actor, &body.name, &origin)
            .await?,
    )))
}

async fn get_project(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<ProjectId>,
) -> Result<Json<Data<Value>>> {
    let (project, access, members) = state.usher().project(&actor, id).await?;
    let mut value = project_json(&project);
    value["access"] = json!(access_str(access));
    value["members"] = json!(
        members
            .iter()
            .map(|(user, role)| {
                let mut member = super::user_seen_by(&actor, user);
                member["projectRole"] = json!(role.as_str());
                member
            })
            .collect::<Vec<_>>()
    );
    Ok(data(value))
}

async fn rename_project(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<ProjectId>,
    Json(body): Json<ProjectBody>,
) -> Result<Json<Data<Value>>> {
    state.usher().rename_project(&actor, id, &body.name).await?;
    Ok(data(json!({"success": true})))
}

async fn delete_project(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<ProjectId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    state.usher().delete_project(&actor, id, &origin).await?;
    Ok(data(json!({"success": true})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberBody {
    user_id: String,
    role: String,
}

async fn set_member(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<ProjectId>,
    ClientOrigin(origin): ClientOrigin,
    Json(body): Json<MemberBody>,
) -> Result<Json<Data<Value>>> {
    let user = body.user_id.parse()?;
    state
        .usher()
        .set_project_member(&actor, id, user, &body.role, &origin)
        .await?;
    Ok(data(json!({"success": true})))
}

async fn remove_member(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Ids(id, user): Ids<ProjectId, UserId>,
    ClientOrigin(origin): ClientOrigin,
) -> Result<Json<Data<Value>>> {
    state
        .usher()
        .remove_project_member(&actor, id, user, &origin)
        .await?;
    Ok(data(json!({"success": true})))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct DeleteQuery {
    transfer_id: Option<String>,
}

/// `DELETE /rest/users/<id>?transferId=<project id>`, as n8n has it.
async fn delete_user(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
    ClientOrigin(origin): ClientOrigin,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<Data<Value>>> {
    state
        .usher()
        .delete_user(&actor, id, query.transfer_id.as_deref(), &origin)
        .await?;
    Ok(data(json!({"success": true})))
}

async fn user_projects(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Id(id): Id<UserId>,
) -> Result<Json<Data<Vec<Value>>>> {
    let roles = state.usher().project_roles_of(&actor, id).await?;
    Ok(data(
        roles
            .iter()
            .map(|(project, role)| {
                let mut value = project_json(project);
                value["role"] = json!(role.as_str());
                value
            })
            .collect(),
    ))
}
