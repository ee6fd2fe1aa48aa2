-- Signing in with the company's directory (issue 18, LDAP).
--
-- ldap_id: the person's id in the directory (the value of ldapIdAttribute,
-- such as entryUUID or objectGUID), linking the user to their entry; NULL for
-- people who sign in with a password kept here. One user per directory id.
ALTER TABLE users ADD COLUMN ldap_id TEXT;
CREATE UNIQUE INDEX users_ldap_id ON users (ldap_id) WHERE ldap_id IS NOT NULL;

-- disabled: 1 when the person left the directory (a synchronisation found
-- their entry gone). A disabled user has no session, API key or app grant
-- (they are deleted in the transaction that disables) and cannot sign in.
ALTER TABLE users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;

-- One row per synchronisation run, as n8n's auth_provider_sync_history.
CREATE TABLE ldap_sync_runs (
    id TEXT PRIMARY KEY,
    run_mode TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    scanned BIGINT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    disabled BIGINT NOT NULL,
    error TEXT NOT NULL
);
CREATE INDEX ldap_sync_runs_started ON ldap_sync_runs (started_at);

-- Leases: a named job that one instance at a time may run (the LDAP
-- synchronisation) when several share the database. A lease is taken with
-- one conditional upsert and lapses at expires_at if its holder goes away.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
