-- Countersign store, PostgreSQL schema version 2: dashboard access grants.
-- Sign-in links, sessions and client share links. Only the SHA-256 of each
-- token is kept; share links are also recorded in the audit chain.
CREATE TABLE access_grants (
    grant_id   TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    workspace  TEXT,
    subject    TEXT NOT NULL,
    label      TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX access_grants_by_workspace ON access_grants (workspace, kind, created_at DESC);
