-- Apps (Budibase's apps, for any tool) and Usher as their OpenID Connect
-- provider. Client secrets, codes and tokens are kept only as SHA-256
-- hashes; signing keys only sealed with the instance key.

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    launch_url TEXT NOT NULL,
    icon TEXT,
    client_id TEXT NOT NULL UNIQUE,
    -- SHA-256 of the client secret; NULL for public apps
    secret_hash TEXT,
    public BIGINT NOT NULL,
    third_party BIGINT NOT NULL,
    require_mfa BIGINT NOT NULL,
    -- newline-separated lists
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    roles TEXT NOT NULL,
    -- 1: everyone may use it, with default_role
    everyone BIGINT NOT NULL,
    default_role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Chosen people, each with one app role.
CREATE TABLE app_users (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX app_users_user ON app_users (user_id);

-- Members of chosen projects; the first project in the list (position)
-- that a person belongs to decides their role.
CREATE TABLE app_projects (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (app_id, project_id)
);
CREATE INDEX app_projects_project ON app_projects (project_id);

-- One sign-in of a person into an app: its code, and the tokens issued
-- from it, go with it. Deleted when the person loses access or their role
-- changes, in the transaction that changes it.
CREATE TABLE oidc_grants (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_grants_app_user ON oidc_grants (app_id, user_id);
CREATE INDEX oidc_grants_user ON oidc_grants (user_id);

CREATE TABLE oidc_codes (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oidc_codes_grant ON oidc_codes (grant_id);

-- Access and refresh tokens. A refresh token is used once (used_at); a
-- second use revokes its grant.
CREATE TABLE oidc_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_id);

-- What a person allowed a third-party app.
CREATE TABLE oidc_consents (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);

-- ID token signing keys: the private key sealed (PKCS#8 DER, base64), the
-- public one as a JWK. Retired keys stay published for a while.
CREATE TABLE oidc_keys (
    kid TEXT PRIMARY KEY,
    sealed_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
