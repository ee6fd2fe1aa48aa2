-- Nothing on SQLite: every instance asks the database file whether anyone
-- committed before each answer from its cache (crates/store/src/sqlite/fresh.rs),
-- so changes to grants and tokens are seen without a trigger. The file exists
-- so that both folders name the same migrations.
SELECT 1;
