-- ficus state store, schema 4 (SQLite dialect): fleet mode.
-- Keep this file equivalent to migrations/postgres/0004_fleet.sql. A SQLite store has one
-- node (a second `ficus run` on the same file is refused), but keeps the same tables so the
-- code paths and the numbers are the same.

ALTER TABLE store_meta ADD COLUMN revision    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE store_meta ADD COLUMN revision_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE store_meta ADD COLUMN node_seq    INTEGER NOT NULL DEFAULT 0;

ALTER TABLE events ADD COLUMN node TEXT;

CREATE TABLE fleet_nodes (
    id             TEXT    PRIMARY KEY CHECK (id <> ''),
    seq            INTEGER NOT NULL UNIQUE CHECK (seq >= 1),
    name           TEXT    NOT NULL CHECK (name <> ''),
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    version        TEXT    NOT NULL,
    admin_url      TEXT,
    started_at     INTEGER NOT NULL,
    heartbeat_at   INTEGER NOT NULL,
    revision       INTEGER NOT NULL DEFAULT 0,
    applied_at     INTEGER NOT NULL DEFAULT 0,
    apply_lag_ms   INTEGER NOT NULL DEFAULT 0,
    config_version INTEGER,
    rate           REAL    NOT NULL DEFAULT 0 CHECK (rate >= 0),
    drift          TEXT,
    stopped_at     INTEGER
) STRICT;

CREATE TABLE fleet_leader (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    node_id     TEXT,
    epoch       INTEGER NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    expires_at  INTEGER NOT NULL DEFAULT 0,
    acquired_at INTEGER NOT NULL DEFAULT 0
) STRICT;

INSERT INTO fleet_leader (id) VALUES (1);

CREATE TABLE telemetry_meta (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL DEFAULT 0
) STRICT;

INSERT INTO telemetry_meta (id) VALUES (1);

CREATE TABLE telemetry_seconds (
    seq            INTEGER PRIMARY KEY,
    node_id        TEXT    NOT NULL CHECK (node_id <> ''),
    route          TEXT    NOT NULL CHECK (route <> ''),
    side           INTEGER NOT NULL CHECK (side IN (0, 1)),
    at_s           INTEGER NOT NULL,
    c1xx           INTEGER NOT NULL CHECK (c1xx >= 0),
    c2xx           INTEGER NOT NULL CHECK (c2xx >= 0),
    c3xx           INTEGER NOT NULL CHECK (c3xx >= 0),
    c4xx           INTEGER NOT NULL CHECK (c4xx >= 0),
    c5xx           INTEGER NOT NULL CHECK (c5xx >= 0),
    fallbacks      INTEGER NOT NULL CHECK (fallbacks >= 0),
    latency_sum_us INTEGER NOT NULL CHECK (latency_sum_us >= 0),
    hist           BLOB    NOT NULL,
    UNIQUE (node_id, route, side, at_s)
) STRICT;

CREATE INDEX telemetry_seconds_at ON telemetry_seconds (at_s);

CREATE TABLE telemetry_minutes (
    node_id        TEXT    NOT NULL CHECK (node_id <> ''),
    route          TEXT    NOT NULL CHECK (route <> ''),
    side           INTEGER NOT NULL CHECK (side IN (0, 1)),
    minute         INTEGER NOT NULL,
    c1xx           INTEGER NOT NULL CHECK (c1xx >= 0),
    c2xx           INTEGER NOT NULL CHECK (c2xx >= 0),
    c3xx           INTEGER NOT NULL CHECK (c3xx >= 0),
    c4xx           INTEGER NOT NULL CHECK (c4xx >= 0),
    c5xx           INTEGER NOT NULL CHECK (c5xx >= 0),
    fallbacks      INTEGER NOT NULL CHECK (fallbacks >= 0),
    latency_sum_us INTEGER NOT NULL CHECK (latency_sum_us >= 0),
    hist           BLOB    NOT NULL,
    PRIMARY KEY (node_id, route, side, minute)
) STRICT;

CREATE INDEX telemetry_minutes_minute ON telemetry_minutes (minute);

CREATE TABLE webhook_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    event_id INTEGER NOT NULL CHECK (event_id >= 0)
) STRICT;

INSERT INTO webhook_cursor (id, event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;

CREATE TABLE rollout_status (
    route      TEXT    PRIMARY KEY CHECK (route <> ''),
    node_id    TEXT    NOT NULL,
    data       TEXT    NOT NULL CHECK (json_valid(data)),
    updated_at INTEGER NOT NULL
) STRICT;
