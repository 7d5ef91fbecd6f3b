-- ficus state store, schema 8 (SQLite dialect): replay runs.
-- Keep this file equivalent to migrations/postgres/0008_replay_runs.sql.
-- One row per `ficus replay ... --save`: where it ran, against what, and its whole report
-- (counts, latency, the comparison's ranked fields) as JSON.
CREATE TABLE replay_runs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL CHECK (actor <> ''),
    file      TEXT    NOT NULL,
    target    TEXT    NOT NULL CHECK (target <> ''),
    reference TEXT    NOT NULL CHECK (reference IN ('none', 'recording', 'compare-with')),
    sent      INTEGER NOT NULL CHECK (sent >= 0),
    real      INTEGER NOT NULL CHECK (real >= 0),
    report    TEXT    NOT NULL CHECK (json_valid(report))
) STRICT;
