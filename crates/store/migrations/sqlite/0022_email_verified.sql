-- Whether a user's email address is known to reach them, as the OpenID
-- provider's `email_verified` claim says (relying parties link accounts
-- by it).
--
-- Every address stored before this migration was set by an admin (direct
-- creation), by an invitation the person accepted from that address, by
-- the company directory or a provider that verified it, or by the owner at
-- set-up: all count as confirmed, hence the default of 1. From now on a
-- member who changes their own address gets 0 until they follow the link
-- mailed to the new address.
ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 1;

-- Links that confirm an address: keyed by the SHA-256 of the link's token,
-- bound to the address they were sent to (a later change makes them
-- useless), single use, expiring. A user deleted goes with their links.
CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);
