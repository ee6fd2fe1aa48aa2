//! Usher's integration tests: one binary (many binaries make builds slow).
//! Each runs the real server in-process; most run on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod api_validation;
mod apps;
mod authz;
mod browser;
mod cli;
mod errors;
mod forward_auth;
mod invitations;
mod ldap;
mod mail_sink;
mod mfa;
mod n8n_validation;
mod oidc;
mod onboarding;
mod pages_forms;
mod personal;
mod personal_projects;
mod public_api;
mod recovery;
mod resource_pages;
mod resources;
mod roles;
mod rules;
mod schemathesis;
mod security;
mod sessions;
mod setup;
mod slapd;
mod sso;
mod users_page;
