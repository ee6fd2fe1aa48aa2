-- What each address looks like to a reader (UTS #39's skeleton, made by
-- Usher: usher_domain::model::Email::skeleton), so that a new address that
-- looks like an existing one can be refused. Filled for existing rows at
-- start (crates/store/src/users.rs, fill_email_skeletons).
ALTER TABLE users ADD COLUMN email_skeleton TEXT;
CREATE INDEX users_email_skeleton ON users (email_skeleton);
