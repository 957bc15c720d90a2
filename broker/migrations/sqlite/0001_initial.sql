-- Connect Medicare broker, SQLite schema version 1.
--
-- Keys are SHA-256 hashes as 64 lowercase hex digits: the store never holds a raw state,
-- cookie value or plaintext token. Times are unix seconds, passed in by the broker's clock.

-- Flows registered with POST /v1/flows, keyed by SHA-256(state).
CREATE TABLE flows (
    key            TEXT    NOT NULL PRIMARY KEY,
    provider       TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    cookie_hash    TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    status         TEXT    NOT NULL
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
    session_hash   TEXT
) STRICT;

CREATE INDEX flows_by_expiry ON flows (expires_at);

-- Browser sessions, keyed by SHA-256(session cookie).
CREATE TABLE sessions (
    hash         TEXT    NOT NULL PRIMARY KEY,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- One connection per (session, provider); tokens are XChaCha20-Poly1305 ciphertexts whose
-- associated data names the session, provider and field.
CREATE TABLE connections (
    session_hash        TEXT    NOT NULL REFERENCES sessions (hash) ON DELETE CASCADE,
    provider            TEXT    NOT NULL,
    patient             TEXT,
    scopes              TEXT    NOT NULL,
    demographics_shared INTEGER NOT NULL CHECK (demographics_shared IN (0, 1)),
    grant_expires_at    INTEGER,
    access_token_ct     BLOB    NOT NULL,
    refresh_token_ct    BLOB,
    access_expires_at   INTEGER,
    generation          INTEGER NOT NULL,
    status              TEXT    NOT NULL
        CHECK (status IN ('connected', 'reconnect_required')),
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (session_hash, provider)
) STRICT;

-- Upstream revocations still to send. No foreign key: they outlive their session.
CREATE TABLE revocations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    session_hash    TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    token_kind      TEXT    NOT NULL CHECK (token_kind IN ('access_token', 'refresh_token')),
    token_ct        BLOB    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX revocations_by_due ON revocations (next_attempt_at, id);
