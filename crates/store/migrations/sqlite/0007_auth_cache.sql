-- Nothing on SQLite: its instances read API keys from the database on every
-- request, on the calling thread (crates/store/src/inline.rs), and keep no
-- cache to empty. The file exists so that both folders name the same
-- migrations.
SELECT 1;
