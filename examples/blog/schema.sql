-- The blog's one table (rc's tutorial's Post model, in plain SQLite).
-- AUTOINCREMENT: an id is never given twice, so a cached "no such post"
-- for an id cannot outlive the add that creates it (add invalidates it).
CREATE TABLE IF NOT EXISTS posts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title      TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    created_ts INTEGER NOT NULL,
    updated_ts INTEGER NOT NULL
);
