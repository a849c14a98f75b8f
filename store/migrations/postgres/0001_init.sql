-- Countersign store, PostgreSQL schema version 1.
-- Tables are created in the first schema of the search_path. JSON columns
-- hold JSON text (not jsonb) so what was hashed is kept byte for byte.

-- The audit log. Append-only: the store has no UPDATE or DELETE statement
-- for this table, and the triggers below refuse any that someone else runs.
CREATE TABLE events (
    workspace TEXT        NOT NULL,
    seq       BIGINT      NOT NULL CHECK (seq >= 1),
    kind      TEXT        NOT NULL,
    run_id    TEXT,
    at        TIMESTAMPTZ NOT NULL,
    data      TEXT        NOT NULL, -- canonical JSON (RFC 8785)
    prev_hash TEXT        NOT NULL,
    hash      TEXT        NOT NULL,
    PRIMARY KEY (workspace, seq)
);

CREATE INDEX events_by_run ON events (workspace, run_id, seq);

CREATE FUNCTION countersign_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'countersign: events are append-only (% refused)', TG_OP;
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION countersign_events_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION countersign_events_append_only();

-- The last event of each workspace's chain. Every write transaction locks
-- its workspace's row (SELECT ... FOR UPDATE) first: that serializes appends
-- per workspace and orders all other row locks after it.
CREATE TABLE chain_heads (
    workspace TEXT   PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT   NOT NULL
);

-- Runs: a projection of the events, updated in the same transaction.
CREATE TABLE runs (
    workspace         TEXT        NOT NULL,
    run_id            TEXT        NOT NULL,
    action            TEXT        NOT NULL,
    actor             TEXT,
    source_json       TEXT,
    reasoning         TEXT,
    payload_json      TEXT        NOT NULL,
    payload_hash      TEXT        NOT NULL,
    payload_summary   TEXT        NOT NULL,
    idempotency_key   TEXT,
    request_hash      TEXT        NOT NULL,
    decision_status   TEXT        NOT NULL,
    decision_rule     TEXT,
    decision_reason   TEXT        NOT NULL,
    policy_version    TEXT        NOT NULL,
    risk              TEXT,
    decision_details  TEXT        NOT NULL,
    approval_group    TEXT,
    approval_quorum   BIGINT,
    expires_at        TIMESTAMPTZ,
    approvers_json    TEXT,
    governance_status TEXT        NOT NULL,
    execution_status  TEXT        NOT NULL,
    execution_json    TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    head_seq          BIGINT      NOT NULL,
    head_hash         TEXT        NOT NULL,
    PRIMARY KEY (workspace, run_id)
);

CREATE UNIQUE INDEX runs_idempotency ON runs (workspace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_newest ON runs (workspace, created_at DESC, run_id DESC);
CREATE INDEX runs_pending_expiry ON runs (expires_at)
    WHERE governance_status = 'pending_approval';

-- Every answer, counted or not, in arrival order per run.
CREATE TABLE approvals (
    workspace   TEXT        NOT NULL,
    run_id      TEXT        NOT NULL,
    answer_no   INTEGER     NOT NULL,
    approver_id TEXT        NOT NULL,
    decision    TEXT        NOT NULL,
    channel     TEXT        NOT NULL,
    comment     TEXT,
    client_addr TEXT,
    user_agent  TEXT,
    answered_at TIMESTAMPTZ NOT NULL,
    counted     BOOLEAN     NOT NULL,
    PRIMARY KEY (workspace, run_id, answer_no),
    FOREIGN KEY (workspace, run_id) REFERENCES runs (workspace, run_id)
);

-- API keys: only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    workspace  TEXT        NOT NULL,
    key_id     TEXT        NOT NULL,
    key_hash   TEXT        NOT NULL UNIQUE,
    role       TEXT        NOT NULL,
    label      TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    PRIMARY KEY (workspace, key_id)
);

-- Outbox of approval requests, written in the run's creating transaction.
CREATE TABLE deliveries (
    delivery_id     TEXT        PRIMARY KEY,
    workspace       TEXT        NOT NULL,
    run_id          TEXT        NOT NULL,
    approver_id     TEXT        NOT NULL,
    channel         TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    last_error      TEXT,
    sent_at         TIMESTAMPTZ,
    token_hash      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (workspace, run_id) REFERENCES runs (workspace, run_id)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE sent_at IS NULL AND next_attempt_at IS NOT NULL;

-- Single-use approval links: only the SHA-256 of the token is kept.
CREATE TABLE approval_tokens (
    token_hash  TEXT        PRIMARY KEY,
    workspace   TEXT        NOT NULL,
    run_id      TEXT        NOT NULL,
    approver_id TEXT        NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    FOREIGN KEY (workspace, run_id) REFERENCES runs (workspace, run_id)
);
