-- The users page's search (issue 15) without reading every user: trigram
-- indexes (pg_trgm's GIN operator class) on sort_name and email, which
-- serve the search's `LIKE '%…%'` as it is, so the rows found are exactly
-- those of a scan. Both columns are lower-case already (sort_name by its
-- definition, email on the way in), so no lower() is indexed.
--
-- pg_trgm ships with PostgreSQL (Debian's postgresql package; elsewhere the
-- contrib package) and is a trusted extension: a user with CREATE on the
-- database may create it. An extension is one per database, in one schema:
-- when another schema of this database (another Usher, on another
-- DB_POSTGRESDB_SCHEMA) has it already, its operator class is used from
-- there; otherwise it is created in Usher's own schema. The operator class
-- is named with its schema, since the search path holds only Usher's.
--
-- fastupdate off: a GIN index otherwise queues new rows in a pending list
-- that every search reads through until a vacuum; users are written rarely,
-- so each write updates the index at once (a search for one email at
-- 100,000 users: 1.3 ms instead of 3.1 ms with 3,870 rows pending).
DO $$
DECLARE
    trgm_schema name;
BEGIN
    SELECT extnamespace::regnamespace::name INTO trgm_schema
    FROM pg_extension WHERE extname = 'pg_trgm';
    IF trgm_schema IS NULL THEN
        BEGIN
            CREATE EXTENSION pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'the users page''s search needs PostgreSQL''s pg_trgm extension, which could not be created: %', SQLERRM
                USING HINT = 'Install PostgreSQL''s contrib package (Debian''s postgresql has it), '
                             'or have a superuser run CREATE EXTENSION pg_trgm in this database.';
        END;
        trgm_schema := current_schema();
    END IF;
    EXECUTE format('CREATE INDEX users_search_name ON users USING gin (sort_name %I.gin_trgm_ops) WITH (fastupdate = off)', trgm_schema);
    EXECUTE format('CREATE INDEX users_search_email ON users USING gin (email %I.gin_trgm_ops) WITH (fastupdate = off)', trgm_schema);
END
$$;
