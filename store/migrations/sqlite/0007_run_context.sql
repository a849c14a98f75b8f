-- Countersign store, SQLite schema version 7: a run keeps the `context` object its
-- request carried (the MCP proxy's server, tool and client), as JSON text.
-- NULL for requests without one and every run created before.
ALTER TABLE runs ADD COLUMN context_json TEXT;
