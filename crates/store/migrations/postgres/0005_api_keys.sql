-- API keys for /api/v1: only the SHA-256 of a key is kept, with its last
-- four characters to recognise it by.

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    last_chars TEXT NOT NULL,
    -- space-separated scope names
    scopes TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    UNIQUE (user_id, label)
);

-- Keyset pagination of /api/v1/users walks (created_at, id).
CREATE INDEX users_created_id ON users (created_at, id);
