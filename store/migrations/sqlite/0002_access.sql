-- Countersign store, SQLite schema version 2: dashboard access grants.
-- Sign-in links, sessions and client share links. Only the SHA-256 of each
-- token is kept; share links are also recorded in the audit chain.
CREATE TABLE access_grants (
    grant_id   TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    workspace  TEXT,
    subject    TEXT NOT NULL,
    label      TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    revoked_at TEXT
);

CREATE INDEX access_grants_by_workspace ON access_grants (workspace, kind, created_at DESC);
