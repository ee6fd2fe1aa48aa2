-- The users page's search (issue 15) without reading every user: a trigram
-- index of each user's sort_name and email (FTS5's trigram tokenizer), so
-- that "part of the name or of the email" is looked up, not scanned for.
-- A phrase of three or more characters matches exactly the rows whose
-- sort_name or email holds it (any case); shorter searches use the sorted
-- indexes instead (src/user_search.rs).
--
-- External content: the index keeps no copy of the text, only trigrams and
-- the users row's rowid. The triggers below keep it in step with every
-- write, whatever path made it (the server, an operator's import, the
-- benchmark's seed). SQLite's VACUUM keeps the rowids of a table that has an
-- index (users has several), so the rowids the index holds stay valid.
CREATE VIRTUAL TABLE users_search USING fts5(
    sort_name, email,
    content = 'users', content_rowid = 'rowid', tokenize = 'trigram'
);

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search (rowid, sort_name, email)
    VALUES (new.rowid, new.sort_name, new.email);
END;

CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_search (users_search, rowid, sort_name, email)
    VALUES ('delete', old.rowid, old.sort_name, old.email);
END;

-- sort_name is made of first_name, last_name and email, so these three are
-- the columns whose change changes what is indexed.
CREATE TRIGGER users_search_update AFTER UPDATE OF first_name, last_name, email ON users BEGIN
    INSERT INTO users_search (users_search, rowid, sort_name, email)
    VALUES ('delete', old.rowid, old.sort_name, old.email);
    INSERT INTO users_search (rowid, sort_name, email)
    VALUES (new.rowid, new.sort_name, new.email);
END;

-- The users there already.
INSERT INTO users_search (users_search) VALUES ('rebuild');
