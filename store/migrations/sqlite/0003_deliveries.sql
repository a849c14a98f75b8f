-- Countersign store, SQLite schema version 3: deliveries found by their run,
-- and approval tokens kept in their delivery's row.
--
-- - Deliveries become a WITHOUT ROWID table keyed by delivery_id (one b-tree
--   less to write per delivery), with an index by run: reading a run's
--   deliveries (GET /v1/runs/{id}, the dashboard) no longer scans the table.
-- - A token whose key is `DELIVERY_ID.…` is looked up through that delivery
--   (token_hash) and spent there (token_used_at); it gets no
--   approval_tokens row. Rows already in approval_tokens stay and keep
--   working.
CREATE TABLE deliveries_v3 (
    delivery_id     TEXT    PRIMARY KEY,
    workspace       TEXT    NOT NULL,
    run_id          TEXT    NOT NULL,
    approver_id     TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    sent_at         TEXT,
    token_hash      TEXT,
    created_at      TEXT    NOT NULL,
    token_used_at   TEXT,
    FOREIGN KEY (workspace, run_id) REFERENCES runs (workspace, run_id)
) WITHOUT ROWID;

INSERT INTO deliveries_v3 (delivery_id, workspace, run_id, approver_id, channel, attempts,
    next_attempt_at, last_error, sent_at, token_hash, created_at)
SELECT delivery_id, workspace, run_id, approver_id, channel, attempts,
    next_attempt_at, last_error, sent_at, token_hash, created_at
FROM deliveries;

DROP TABLE deliveries;
ALTER TABLE deliveries_v3 RENAME TO deliveries;

CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE sent_at IS NULL AND next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_by_run ON deliveries (workspace, run_id);
