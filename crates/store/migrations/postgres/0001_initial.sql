-- Usher's first schema (PostgreSQL). Ids are UUID v7 text made by Usher; times are
-- milliseconds since the epoch (BIGINT), the same on both databases. Flags are
-- BIGINT 0/1: sqlx's Any driver cannot decode SQLite's BOOLEAN.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    -- lower-cased on the way in, so this is unique whatever the case
    email TEXT UNIQUE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    password_hash TEXT,
    password_change_required BIGINT NOT NULL DEFAULT 0,
    mfa_enabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Exactly one owner, kept by the database itself.
CREATE UNIQUE INDEX users_one_owner ON users (role) WHERE role = 'global:owner';

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE rate_limits (
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id TEXT,
    actor_email TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    ip TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
