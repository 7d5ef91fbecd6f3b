-- ficus state store, schema 7 (SQLite dialect): incremental and resumable [[verify]] runs.
-- Keep this file equivalent to migrations/postgres/0007_verify_progress.sql.

-- What each run covered: every row (`full`) or the rows whose watermark is at or after
-- `bound` (`incremental`); the highest watermark it read before scanning (where the next
-- incremental run starts); and the fingerprint of what the job compares: a run continues
-- the proof of an earlier one only when both have the same fingerprint. Watermarks are text:
-- an integer's digits or an RFC 3339 UTC timestamp. Runs recorded before this migration
-- were full runs without a watermark.
ALTER TABLE verify_runs
    ADD COLUMN mode TEXT NOT NULL DEFAULT 'full' CHECK (mode IN ('full', 'incremental'));
ALTER TABLE verify_runs ADD COLUMN fingerprint TEXT CHECK (fingerprint <> '');
ALTER TABLE verify_runs ADD COLUMN bound TEXT CHECK (bound <> '');
ALTER TABLE verify_runs ADD COLUMN watermark TEXT CHECK (watermark <> '');

-- The latest full run of a job, the latest equal run since it.
CREATE INDEX verify_runs_job_mode_id ON verify_runs (job, mode, id);

-- The checkpoint of a job's run in progress (ficus-verify's `Checkpoint`, as JSON): the
-- segments finished so far with their counts and differences. A run that the process did
-- not finish (killed, stopped) resumes from it; recording the run's result removes it.
CREATE TABLE verify_progress (
    job           TEXT    PRIMARY KEY CHECK (job <> ''),
    fingerprint   TEXT    NOT NULL CHECK (fingerprint <> ''),
    mode          TEXT    NOT NULL CHECK (mode IN ('full', 'incremental')),
    started_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL CHECK (updated_at >= started_at),
    segments_done INTEGER NOT NULL DEFAULT 0 CHECK (segments_done >= 0),
    checkpoint    TEXT    NOT NULL CHECK (json_valid(checkpoint))
) STRICT;
