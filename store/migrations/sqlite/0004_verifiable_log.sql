-- Countersign store, SQLite schema version 4: the verifiable audit log.
-- Events existing before this version get their MAC and their leaves in
-- `tree_hashes` when the store first opens with a log key (see
-- sqlite::backfill): they are authenticated as they stood at that moment.

-- HMAC-SHA256 of the event's canonical bytes with the log key, which is
-- never stored in the database (hex).
ALTER TABLE events ADD COLUMN mac TEXT;

-- The Merkle tree of each workspace (RFC 9162): the stored subtree hashes,
-- numbered as tlog::Subtree::stored_index says. Append-only.
CREATE TABLE tree_hashes (
    workspace TEXT    NOT NULL,
    idx       INTEGER NOT NULL CHECK (idx >= 0),
    hash      BLOB    NOT NULL,
    PRIMARY KEY (workspace, idx)
) WITHOUT ROWID;

CREATE TRIGGER tree_hashes_no_update BEFORE UPDATE ON tree_hashes
BEGIN
    SELECT RAISE(ABORT, 'countersign: tree hashes are append-only');
END;

CREATE TRIGGER tree_hashes_no_delete BEFORE DELETE ON tree_hashes
BEGIN
    SELECT RAISE(ABORT, 'countersign: tree hashes are append-only');
END;

-- Checkpoints the gate signed, kept as signed. A checkpoint larger than
-- the log shows that events were deleted. Append-only.
CREATE TABLE checkpoints (
    workspace  TEXT    NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    root       BLOB    NOT NULL,
    note       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (workspace, size)
) WITHOUT ROWID;

CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'countersign: checkpoints are append-only');
END;

CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'countersign: checkpoints are append-only');
END;
