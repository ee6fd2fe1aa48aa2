-- Invitations: a pending user is a user without a password; each has at most
-- one live invitation, whose token is stored only as its SHA-256.

ALTER TABLE users ADD COLUMN invited_by TEXT;
ALTER TABLE users ADD COLUMN invited_at BIGINT;

CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    inviter_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- set when accepted: the link then says "accepted already"
    used_at BIGINT
);
CREATE INDEX invitations_user ON invitations (user_id);
