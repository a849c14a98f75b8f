-- Countersign store, SQLite schema version 6: the gate checks an API key's
-- row against its own key_created and key_revoked events before it accepts
-- the key. This index finds those events by key id without a scan; the
-- store's query repeats its expression and WHERE term exactly.
CREATE INDEX events_by_key ON events (workspace, json_extract(data, '$.key_id'), seq)
    WHERE kind IN ('key_created', 'key_revoked');
