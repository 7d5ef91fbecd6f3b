-- ficus state store, schema 1 (PostgreSQL dialect).
-- Keep this file equivalent to migrations/sqlite/0001_initial.sql: same tables, columns,
-- constraints and rules; only the dialect differs. Never edit an applied migration (sqlx
-- checks its checksum at startup); add 0002_*.sql to both folders instead.
-- Objects are created unqualified, so they land in the first schema of search_path (the
-- schema chosen with `?schema=` / StoreOptions::pg_schema, else the server default).

-- One row. Every commit locks it (SELECT ... FOR UPDATE): commits are serialised, so the
-- optimistic version check and the writes after it are atomic, and event ids become
-- visible in ascending order (a tailing reader never skips one).
CREATE TABLE store_meta (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    created_at BIGINT   NOT NULL
);

INSERT INTO store_meta (id, created_at)
VALUES (1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT);

-- Every applied ficus.toml, numbered 1, 2, 3, ... without gaps.
CREATE TABLE config_versions (
    number     BIGINT PRIMARY KEY CHECK (number >= 1),
    sha256     TEXT   NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    text       TEXT   NOT NULL,
    author     TEXT   NOT NULL,
    message    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- The database itself refuses a gap, a rewrite or a deletion, whatever client writes.
CREATE FUNCTION ficus_config_versions_gapless() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.number <> (SELECT COALESCE(MAX(number), 0) + 1 FROM config_versions) THEN
        RAISE EXCEPTION 'config_versions: the next version number must be the latest + 1';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER config_versions_gapless
BEFORE INSERT ON config_versions
FOR EACH ROW EXECUTE FUNCTION ficus_config_versions_gapless();

CREATE FUNCTION ficus_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: rows are immutable (append-only)', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER config_versions_immutable
BEFORE UPDATE OR DELETE ON config_versions
FOR EACH ROW EXECUTE FUNCTION ficus_reject_change();

CREATE TRIGGER config_versions_no_truncate
BEFORE TRUNCATE ON config_versions
FOR EACH STATEMENT EXECUTE FUNCTION ficus_reject_change();

-- The audit log. An identity column: ids are never reused.
CREATE TABLE events (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor          TEXT   NOT NULL CHECK (actor <> ''),
    kind           TEXT   NOT NULL CHECK (kind <> ''),
    route          TEXT,
    message        TEXT   NOT NULL,
    config_version BIGINT REFERENCES config_versions (number),
    data           JSONB  NOT NULL DEFAULT '{}'
);

CREATE INDEX events_route_id ON events (route, id);
CREATE INDEX events_kind_id ON events (kind, id);
CREATE INDEX events_config_version ON events (config_version);

CREATE TRIGGER events_append_only
BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION ficus_reject_change();

CREATE TRIGGER events_no_truncate
BEFORE TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION ficus_reject_change();

-- Stage and/or weight set at runtime (API, CLI, rollback, rollout) that win over the file
-- until the file itself changes the route. NULL = not overridden.
CREATE TABLE route_overrides (
    route      TEXT    PRIMARY KEY CHECK (route <> ''),
    stage      TEXT    CHECK (stage IS NULL OR stage <> ''),
    weight_bp  INTEGER CHECK (weight_bp IS NULL OR weight_bp BETWEEN 0 AND 10000),
    updated_at BIGINT  NOT NULL,
    event_id   BIGINT  NOT NULL REFERENCES events (id),
    CHECK (stage IS NOT NULL OR weight_bp IS NOT NULL)
);
