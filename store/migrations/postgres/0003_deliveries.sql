-- Countersign store, PostgreSQL schema version 3: reading a run's
-- deliveries (GET /v1/runs/{id}, the dashboard) uses an index instead of
-- scanning the table.
CREATE INDEX deliveries_by_run ON deliveries (workspace, run_id);
