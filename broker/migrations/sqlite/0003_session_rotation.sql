-- Connect Medicare broker, schema version 3: session ids that rotate.
--
-- Every completed sign-in gives the browser a new session id, and the old one stops working
-- (after a short grace when the browser proved it owns the session). A session keeps its key,
-- sessions.hash (the SHA-256 of its first id, and what the tokens' associated data names);
-- every id that reaches it is a row here, by the SHA-256 of the cookie value, valid until
-- valid_until (NULL: the current id). proof_hash is the SHA-256 of the secret the browser
-- must show to carry the session's connections into a new sign-in.
ALTER TABLE sessions ADD COLUMN proof_hash TEXT;

CREATE TABLE session_cookies (
    cookie_hash  TEXT NOT NULL PRIMARY KEY,
    session_hash TEXT NOT NULL REFERENCES sessions (hash) ON DELETE CASCADE,
    valid_until  INTEGER
) STRICT;

CREATE INDEX session_cookies_by_session ON session_cookies (session_hash);

-- Sessions made before this version are reached by the id they were made with.
INSERT INTO session_cookies (cookie_hash, session_hash, valid_until)
SELECT hash, hash, NULL FROM sessions;
