-- Every change to users or API keys notifies the channel usher_auth with the
-- schema's name, so that each instance empties its cache of API keys and
-- users (crates/store/src/auth_cache.rs). A trigger rather than the code, so
-- that changes made outside Usher count too. Recording when a key was last
-- used changes nothing a cache holds, so that column is left out.
CREATE FUNCTION usher_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('usher_auth', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();

CREATE TRIGGER api_keys_auth_changed
    AFTER INSERT OR DELETE OR TRUNCATE
        OR UPDATE OF id, user_id, label, key_hash, last_chars, scopes, expires_at, created_at
    ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
