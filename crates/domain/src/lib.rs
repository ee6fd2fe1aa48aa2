//! Usher's domain: the types, rules and use cases of user management.
//!
//! Nothing here knows about HTTP, SQL or SMTP. Reading order:
//! - [`model`]: ids, emails, names, roles and the user record;
//! - [`password`]: the password policy and hashing off the async runtime;
//! - [`token`]: random secrets that are stored only as hashes;
//! - [`resources`]: projects, workflows, credentials and tags;
//! - [`apps`]: apps people sign into through Usher (OpenID Connect);
//! - [`forward_auth`]: the doors reverse proxies keep with Usher's apps;
//! - [`ldap`]: the company directory's settings and port;
//! - [`store`]: the storage port the database crates implement;
//! - [`mail`]: the mail port the server implements with SMTP;
//! - [`service`]: the use cases (set-up, sign-in, sessions, personal settings)
//!   that the pages, `/rest` and `/api/v1` all call.

pub mod apps;
pub mod cipher;
pub mod clock;
pub mod error;
pub mod forward_auth;
pub mod ldap;
pub mod mail;
pub mod model;
pub mod password;
pub mod resources;
pub mod secret;
pub mod service;
pub mod store;
pub mod token;

pub use error::{Error, Result};
