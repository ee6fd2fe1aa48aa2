-- Single sign-on through an outside OpenID Connect provider (issue 18).
--
-- Who a provider's person is in Usher: the provider's issuer and `sub`
-- claim, linked to one user. A user deleted goes with its links.
CREATE TABLE sso_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id);

-- Sign-ins under way: keyed by the SHA-256 of the `state` sent to the
-- provider; `sealed` holds the nonce, the PKCE verifier, the provider it
-- was sent to and the way back, sealed with the instance key. A row is
-- taken (deleted) by the callback, so each state works once, on any
-- instance.
CREATE TABLE sso_logins (
    state_hash TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
