-- ficus state store, schema 2 (SQLite dialect): the runs of scheduled [[verify]] jobs.
-- Keep this file equivalent to migrations/postgres/0002_verify.sql.

-- One row per run of a [[verify]] job: what was compared, when, and what was found.
-- `report` is ficus-verify's JSON report (`{}` when the run failed before producing one).
CREATE TABLE verify_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job           TEXT    NOT NULL CHECK (job <> ''),
    route         TEXT,
    source_table  TEXT    NOT NULL,
    target_table  TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL CHECK (finished_at >= started_at),
    outcome       TEXT    NOT NULL
                  CHECK (outcome IN ('equal', 'different', 'lagging', 'error')),
    rows_compared INTEGER NOT NULL DEFAULT 0 CHECK (rows_compared >= 0),
    missing       INTEGER NOT NULL DEFAULT 0 CHECK (missing >= 0),
    extra         INTEGER NOT NULL DEFAULT 0 CHECK (extra >= 0),
    changed       INTEGER NOT NULL DEFAULT 0 CHECK (changed >= 0),
    error         TEXT,
    report        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(report))
) STRICT;

CREATE INDEX verify_runs_job_id ON verify_runs (job, id);
