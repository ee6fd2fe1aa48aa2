-- Two-factor authentication. The TOTP secret is sealed with the instance key;
-- recovery codes are kept as hashes; every accepted time-step is recorded so
-- a code works once, on every instance.

ALTER TABLE users ADD COLUMN mfa_secret TEXT;
ALTER TABLE users ADD COLUMN mfa_pending_secret TEXT;

CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    -- 1 while enrolment is not confirmed yet
    pending BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE mfa_used_steps (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    step BIGINT NOT NULL,
    PRIMARY KEY (user_id, step)
);

-- A sign-in whose password was right and whose code is still to come.
CREATE TABLE login_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
