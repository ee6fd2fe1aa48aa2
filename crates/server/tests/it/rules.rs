//! The permission rules of `usher_domain::service::resources`, checked on
//! the services themselves against an in-memory store: fast, no HTTP, no
//! server. The HTTP tests (`resources`, `authz`) check that every route
//! reaches these rules; these check the rules one by one.

use std::sync::Arc;

use serde_json::json;
use usher_domain::{
    Error,
    clock::SystemClock,
    mail::NoMail,
    model::{Email, Origin, Role, User, UserId},
    password::PasswordHasher,
    resources::ProjectId,
    secret::Secret,
    service::{
        Config, Usher,
        auth::Actor,
        resources::{Access, WorkflowChange},
    },
    store::Store,
};

/// An instance in memory with one person of each kind: the owner, an
/// admin, and members who are a team project's admin, editor and viewer,
/// and one who is not in it.
struct Team {
    usher: Usher,
    owner: Actor,
    admin: Actor,
    lead: Actor,
    editor: Actor,
    viewer: Actor,
    outsider: Actor,
    project: ProjectId,
}

fn origin() -> Origin {
    Origin::default()
}

async fn person(store: &dyn Store, email: &str, role: Role) -> Actor {
    let now = usher_domain::clock::Clock::now(&SystemClock);
    let user = User {
        id: UserId::new(),
        email: Some(Email::parse(email).unwrap()),
        email_verified: true,
        first_name: "A".into(),
        last_name: "Person".into(),
        role,
        password_hash: Some("unused".into()),
        password_change_required: false,
        mfa_enabled: false,
        invited_by: None,
        invited_at: None,
        created_at: now,
        updated_at: now,
        last_active_at: None,
        ldap_id: None,
        disabled: false,
    };
    store.insert_user(&user).await.unwrap();
    Actor {
        user,
        session: None,
        refreshed_until: None,
    }
}

impl Team {
    async fn new() -> Self {
        let store: Arc<dyn Store> = Arc::new(usher_store::connect_in_memory().await.unwrap());
        let usher = Usher::new(
            store.clone(),
            Arc::new(NoMail),
            PasswordHasher::new(1).unwrap(),
            Arc::new(SystemClock),
            Config::default(),
        )
        .with_cipher(&Secret::new("rules-test-key"));
        let owner = person(&*store, "owner@example.com", Role::Owner).await;
        let admin = person(&*store, "admin@example.com", Role::Admin).await;
        let lead = person(&*store, "lead@example.com", Role::Member).await;
        let editor = person(&*store, "editor@example.com", Role::Member).await;
        let viewer = person(&*store, "viewer@example.com", Role::Member).await;
        let outsider = person(&*store, "outsider@example.com", Role::Member).await;
        let project = usher
            .create_project(&owner, "Ops", &origin())
            .await
            .unwrap()
            .id;
        for (actor, role) in [
            (&lead, "project:admin"),
            (&editor, "project:editor"),
            (&viewer, "project:viewer"),
        ] {
            usher
                .set_project_member(&owner, project, actor.user.id, role, &origin())
                .await
                .unwrap();
        }
        Self {
            usher,
            owner,
            admin,
            lead,
            editor,
            viewer,
            outsider,
            project,
        }
    }
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, Error>, who: &str) {
    assert!(
        matches!(result, Err(Error::Forbidden(_))),
        "{who}: expected Forbidden, got {result:?}"
    );
}

#[tokio::test]
async fn each_kind_of_person_gets_the_access_the_rules_give_in_a_project() {
    let team = Team::new().await;
    let project = team
        .usher
        .project(&team.owner, team.project)
        .await
        .unwrap()
        .0;
    for (actor, access) in [
        (&team.owner, Access::Manage),
        (&team.admin, Access::Manage),
        (&team.lead, Access::Manage),
        (&team.editor, Access::Write),
        (&team.viewer, Access::Read),
        (&team.outsider, Access::None),
    ] {
        let got = team.usher.access(&actor.user, &project).await.unwrap();
        assert_eq!(got, access, "{}", actor.user.email.as_ref().unwrap());
    }
}

#[tokio::test]
async fn editors_change_workflows_viewers_only_read_and_outsiders_see_nothing() {
    let team = Team::new().await;
    let usher = &team.usher;
    let workflow = usher
        .create_workflow(
            &team.editor,
            "Billing",
            Some(team.project),
            WorkflowChange::default(),
            &origin(),
        )
        .await
        .unwrap()
        .workflow
        .id;
    let rename = |name: &str| WorkflowChange {
        name: Some(name.into()),
        ..WorkflowChange::default()
    };
    usher
        .update_workflow(&team.editor, workflow, rename("Invoices"), &origin())
        .await
        .unwrap();
    forbidden(
        usher
            .update_workflow(&team.viewer, workflow, rename("Mine"), &origin())
            .await,
        "viewer",
    );
    assert_eq!(
        usher
            .workflow(&team.viewer, workflow)
            .await
            .unwrap()
            .workflow
            .name,
        "Invoices"
    );
    forbidden(usher.workflow(&team.outsider, workflow).await, "outsider");
    assert!(usher.workflows(&team.outsider).await.unwrap().is_empty());
    assert_eq!(usher.workflows(&team.viewer).await.unwrap().len(), 1);
    forbidden(
        usher
            .create_workflow(
                &team.viewer,
                "Sneaky",
                Some(team.project),
                WorkflowChange::default(),
                &origin(),
            )
            .await,
        "viewer creates",
    );
    forbidden(
        usher
            .delete_workflow(&team.viewer, workflow, &origin())
            .await,
        "viewer deletes",
    );
    usher
        .delete_workflow(&team.admin, workflow, &origin())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_credential_s_data_is_read_only_by_those_who_may_edit_it() {
    let team = Team::new().await;
    let usher = &team.usher;
    let credential = usher
        .create_credential(
            &team.lead,
            "Stripe",
            "stripeApi",
            Some(team.project),
            json!({"apiKey": "sk_test"}),
            &origin(),
        )
        .await
        .unwrap()
        .credential
        .id;
    let data = usher
        .credential(&team.editor, credential, true)
        .await
        .unwrap()
        .data;
    assert_eq!(data, Some(json!({"apiKey": "sk_test"})));
    let listed = usher
        .credential(&team.viewer, credential, false)
        .await
        .unwrap();
    assert_eq!(listed.data, None, "the viewer sees that it exists");
    forbidden(
        usher.credential(&team.viewer, credential, true).await,
        "viewer reads data",
    );
    forbidden(
        usher.credential(&team.outsider, credential, false).await,
        "outsider",
    );
    assert!(usher.credentials(&team.outsider).await.unwrap().is_empty());
}

#[tokio::test]
async fn everyone_makes_tags_but_only_the_owner_and_admins_rename_or_delete_them() {
    let team = Team::new().await;
    let usher = &team.usher;
    let tag = usher
        .create_tag(&team.outsider, "finance")
        .await
        .unwrap()
        .id;
    forbidden(
        usher.rename_tag(&team.lead, tag, "money").await,
        "project admin renames",
    );
    forbidden(
        usher.delete_tag(&team.editor, tag, &origin()).await,
        "member deletes",
    );
    usher.rename_tag(&team.admin, tag, "money").await.unwrap();
    usher.delete_tag(&team.owner, tag, &origin()).await.unwrap();
    assert!(usher.tags(&team.viewer).await.unwrap().is_empty());
}

#[tokio::test]
async fn only_the_owner_and_admins_make_projects_and_project_admins_manage_members() {
    let team = Team::new().await;
    let usher = &team.usher;
    forbidden(
        usher.create_project(&team.lead, "Mine", &origin()).await,
        "member creates a project",
    );
    usher
        .create_project(&team.admin, "Sales", &origin())
        .await
        .unwrap();
    usher
        .set_project_member(
            &team.lead,
            team.project,
            team.outsider.user.id,
            "project:viewer",
            &origin(),
        )
        .await
        .unwrap();
    forbidden(
        usher
            .set_project_member(
                &team.editor,
                team.project,
                team.outsider.user.id,
                "project:admin",
                &origin(),
            )
            .await,
        "editor manages members",
    );
    forbidden(
        usher
            .remove_project_member(&team.viewer, team.project, team.editor.user.id, &origin())
            .await,
        "viewer removes a member",
    );
    let refused = usher
        .set_project_member(
            &team.owner,
            team.project,
            team.editor.user.id,
            "project:personalOwner",
            &origin(),
        )
        .await;
    assert!(matches!(refused, Err(Error::Invalid(_))), "{refused:?}");
}
