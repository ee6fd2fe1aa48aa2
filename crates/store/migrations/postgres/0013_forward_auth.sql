-- Forward authentication (issue 17): the doors reverse proxies keep with
-- apps, and the cookies that open them.

-- An app's hosts (host[:port][/path]) and public paths, newline-separated;
-- no hosts: no forward authentication.
ALTER TABLE apps ADD COLUMN forward_hosts TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN forward_public_paths TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN forward_min_role TEXT NOT NULL DEFAULT 'Basic';
ALTER TABLE apps ADD COLUMN forward_require_mfa BIGINT NOT NULL DEFAULT 0;

-- 1: the session was signed in with a second factor. Sessions from before
-- this count as without one.
ALTER TABLE sessions ADD COLUMN mfa BIGINT NOT NULL DEFAULT 0;

-- Single-use codes that carry a session to an app's host outside the
-- cookie domain (/.usher/callback). Kept as SHA-256; the state is the hash
-- of a cookie the browser got on that host.
CREATE TABLE forward_auth_codes (
    code_hash TEXT PRIMARY KEY,
    session_hash TEXT NOT NULL REFERENCES sessions (token_hash) ON DELETE CASCADE,
    url TEXT NOT NULL,
    host TEXT NOT NULL,
    state_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX forward_auth_codes_session ON forward_auth_codes (session_hash);

-- Host-only cookies' sessions on apps' hosts. Each hangs on an Usher
-- session and ends with it.
CREATE TABLE forward_auth_sessions (
    token_hash TEXT PRIMARY KEY,
    session_hash TEXT NOT NULL REFERENCES sessions (token_hash) ON DELETE CASCADE,
    host TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX forward_auth_sessions_session ON forward_auth_sessions (session_hash);

-- Forward authentication answers from each instance's cache (as API keys
-- do), so a change to what it answers from empties every cache: the same
-- notification as migration 0007's, made by a trigger so that changes made
-- outside Usher count too.
CREATE TRIGGER sessions_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
CREATE TRIGGER forward_auth_sessions_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON forward_auth_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
CREATE TRIGGER apps_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON apps
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
CREATE TRIGGER app_users_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON app_users
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
CREATE TRIGGER app_projects_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON app_projects
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
CREATE TRIGGER projects_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
CREATE TRIGGER settings_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON settings
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
CREATE TRIGGER project_members_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON project_members
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
