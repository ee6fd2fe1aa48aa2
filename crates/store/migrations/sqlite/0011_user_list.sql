-- The users page (issue 15): search, sort and keyset pages over any number of
-- users. Each order the page offers walks an index of (key, id), so a page
-- costs the same wherever it starts.
--
-- last_active_at: when the user last used a session, stamped at most once a
-- day (as n8n's lastActiveAt); 0 for never, so that both databases order it
-- alike (they put NULLs at opposite ends).
ALTER TABLE users ADD COLUMN last_active_at BIGINT NOT NULL DEFAULT 0;

-- sort_name: the name the page shows, lower-cased (the email when there is no
-- name, as for a pending user), kept by the database itself so that no write
-- path can forget it. Searching by name or email reads it too.
ALTER TABLE users ADD COLUMN sort_name TEXT GENERATED ALWAYS AS (
    lower(CASE WHEN trim(first_name || ' ' || last_name) = '' THEN coalesce(email, '')
          ELSE trim(first_name || ' ' || last_name) END)
) VIRTUAL;

CREATE INDEX users_sort_name_id ON users (sort_name, id);
CREATE INDEX users_last_active_id ON users (last_active_at, id);
