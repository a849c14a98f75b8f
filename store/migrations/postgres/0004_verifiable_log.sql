-- Countersign store, PostgreSQL schema version 4: the verifiable audit log.
-- Events existing before this version get their MAC and their leaves in
-- `tree_hashes` when the store first opens with a log key (see
-- postgres::backfill): they are authenticated as they stood at that moment.

-- HMAC-SHA256 of the event's canonical bytes with the log key, which is
-- never stored in the database (hex).
ALTER TABLE events ADD COLUMN mac TEXT;

-- The Merkle tree of each workspace (RFC 9162): the stored subtree hashes,
-- numbered as tlog::Subtree::stored_index says. Append-only.
CREATE TABLE tree_hashes (
    workspace TEXT   NOT NULL,
    idx       BIGINT NOT NULL CHECK (idx >= 0),
    hash      BYTEA  NOT NULL,
    PRIMARY KEY (workspace, idx)
);

CREATE TRIGGER tree_hashes_append_only
    BEFORE UPDATE OR DELETE ON tree_hashes
    FOR EACH ROW EXECUTE FUNCTION countersign_events_append_only();

-- Checkpoints the gate signed, kept as signed. A checkpoint larger than
-- the log shows that events were deleted. Append-only.
CREATE TABLE checkpoints (
    workspace  TEXT        NOT NULL,
    size       BIGINT      NOT NULL CHECK (size >= 0),
    root       BYTEA       NOT NULL,
    note       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace, size)
);

CREATE TRIGGER checkpoints_append_only
    BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION countersign_events_append_only();
