-- App tokens are cached like API keys (crates/store/src/cache.rs): a change
-- to a grant or a token, or an app's deletion (which takes its grants and
-- tokens with it), notifies usher_auth so every instance empties its cache,
-- also when the change is made outside Usher. New grants and tokens change
-- no cached answer, so inserts are left out.
CREATE TRIGGER oidc_grants_auth_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON oidc_grants
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();

CREATE TRIGGER oidc_tokens_auth_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON oidc_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();

CREATE TRIGGER apps_auth_changed
    AFTER DELETE OR TRUNCATE ON apps
    FOR EACH STATEMENT EXECUTE FUNCTION usher_auth_changed();
