-- ficus state store, schema 1 (SQLite dialect).
-- Keep this file equivalent to migrations/postgres/0001_initial.sql: same tables, columns,
-- constraints and rules; only the dialect differs. Never edit an applied migration (sqlx
-- checks its checksum at startup); add 0002_*.sql to both folders instead.
-- STRICT tables make SQLite enforce the column types the way PostgreSQL does.

-- One row. PostgreSQL writers lock it (SELECT ... FOR UPDATE) to serialise commits; SQLite
-- serialises writers with BEGIN IMMEDIATE, so here it only records when the store was made.
CREATE TABLE store_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    created_at INTEGER NOT NULL
) STRICT;

INSERT INTO store_meta (id, created_at)
VALUES (1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- Every applied ficus.toml, numbered 1, 2, 3, ... without gaps.
CREATE TABLE config_versions (
    number     INTEGER PRIMARY KEY CHECK (number >= 1),
    sha256     TEXT    NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    text       TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- The database itself refuses a gap, a rewrite or a deletion, whatever client writes.
CREATE TRIGGER config_versions_gapless
BEFORE INSERT ON config_versions
WHEN NEW.number <> (SELECT COALESCE(MAX(number), 0) + 1 FROM config_versions)
BEGIN
    SELECT RAISE(ABORT, 'config_versions: the next version number must be the latest + 1');
END;

CREATE TRIGGER config_versions_no_update
BEFORE UPDATE ON config_versions
BEGIN
    SELECT RAISE(ABORT, 'config_versions: versions are immutable');
END;

CREATE TRIGGER config_versions_no_delete
BEFORE DELETE ON config_versions
BEGIN
    SELECT RAISE(ABORT, 'config_versions: versions are immutable');
END;

-- The audit log. AUTOINCREMENT: ids are never reused, so `after_id` tailing is sound.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    actor          TEXT    NOT NULL CHECK (actor <> ''),
    kind           TEXT    NOT NULL CHECK (kind <> ''),
    route          TEXT,
    message        TEXT    NOT NULL,
    config_version INTEGER REFERENCES config_versions (number),
    data           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(data))
) STRICT;

CREATE INDEX events_route_id ON events (route, id);
CREATE INDEX events_kind_id ON events (kind, id);
CREATE INDEX events_config_version ON events (config_version);

CREATE TRIGGER events_no_update
BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events: the audit log is append-only');
END;

CREATE TRIGGER events_no_delete
BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events: the audit log is append-only');
END;

-- Stage and/or weight set at runtime (API, CLI, rollback, rollout) that win over the file
-- until the file itself changes the route. NULL = not overridden.
CREATE TABLE route_overrides (
    route      TEXT    PRIMARY KEY CHECK (route <> ''),
    stage      TEXT    CHECK (stage IS NULL OR stage <> ''),
    weight_bp  INTEGER CHECK (weight_bp IS NULL OR weight_bp BETWEEN 0 AND 10000),
    updated_at INTEGER NOT NULL,
    event_id   INTEGER NOT NULL REFERENCES events (id),
    CHECK (stage IS NOT NULL OR weight_bp IS NOT NULL)
) STRICT;
