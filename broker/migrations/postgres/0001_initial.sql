-- Connect Medicare broker, PostgreSQL schema version 1 (the same tables as SQLite's).
--
-- Keys are SHA-256 hashes as 64 lowercase hex digits: the store never holds a raw state,
-- cookie value or plaintext token. Times are unix seconds (BIGINT), passed in by the
-- broker's clock, so both stores compare times the same way.

-- Flows registered with POST /v1/flows, keyed by SHA-256(state).
CREATE TABLE flows (
    key            TEXT   NOT NULL PRIMARY KEY,
    provider       TEXT   NOT NULL,
    code_challenge TEXT   NOT NULL,
    redirect_uri   TEXT   NOT NULL,
    cookie_hash    TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    status         TEXT   NOT NULL
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
    session_hash   TEXT
);

CREATE INDEX flows_by_expiry ON flows (expires_at);

-- Browser sessions, keyed by SHA-256(session cookie).
CREATE TABLE sessions (
    hash         TEXT   NOT NULL PRIMARY KEY,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- One connection per (session, provider); tokens are XChaCha20-Poly1305 ciphertexts whose
-- associated data names the session, provider and field.
CREATE TABLE connections (
    session_hash        TEXT    NOT NULL REFERENCES sessions (hash) ON DELETE CASCADE,
    provider            TEXT    NOT NULL,
    patient             TEXT,
    scopes              TEXT    NOT NULL,
    demographics_shared BOOLEAN NOT NULL,
    grant_expires_at    BIGINT,
    access_token_ct     BYTEA   NOT NULL,
    refresh_token_ct    BYTEA,
    access_expires_at   BIGINT,
    generation          BIGINT  NOT NULL,
    status              TEXT    NOT NULL
        CHECK (status IN ('connected', 'reconnect_required')),
    updated_at          BIGINT  NOT NULL,
    PRIMARY KEY (session_hash, provider)
);

-- Upstream revocations still to send. No foreign key: they outlive their session.
CREATE TABLE revocations (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_hash    TEXT   NOT NULL,
    provider        TEXT   NOT NULL,
    token_kind      TEXT   NOT NULL CHECK (token_kind IN ('access_token', 'refresh_token')),
    token_ct        BYTEA  NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE INDEX revocations_by_due ON revocations (next_attempt_at, id);
