-- Limits over time: the index that aggregates (`count`, `sum` in policy
-- conditions) are answered from. A projection of the runs (and so of the
-- audit log): it can be rebuilt from them, and `audit verify` recomputes it.

-- One row per series the gate registered: the runs of `action` grouped by
-- some of their fields (spec: canonical JSON of the series). `built` is
-- true once the runs that existed before the series have their entries.
CREATE TABLE aggregate_series (
    workspace  TEXT    NOT NULL,
    series     TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    built      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (workspace, series)
);
CREATE INDEX aggregate_series_action ON aggregate_series (workspace, action);

-- One row per run and series: the run's group key (SHA-256 of the
-- canonical JSON array of its group values), creation time and amount
-- (canonical number text; NULL when not summed, missing or not a number).
CREATE TABLE aggregate_entries (
    workspace  TEXT        NOT NULL,
    series     TEXT        NOT NULL,
    group_key  TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    run_id     TEXT        NOT NULL,
    amount     TEXT,
    PRIMARY KEY (workspace, series, group_key, created_at, run_id)
);
