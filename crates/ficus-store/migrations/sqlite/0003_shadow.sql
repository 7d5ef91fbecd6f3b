-- ficus state store, schema 3 (SQLite dialect): the aggregates of shadow comparisons.
-- Keep this file equivalent to migrations/postgres/0003_shadow.sql.
-- The gateway aggregates comparisons in memory and flushes deltas here (Store::flush_shadow),
-- which adds them to the stored counters; at boot it loads the totals back. Resetting a
-- route deletes its rows (and appends an event saying who and why).

-- Per route and endpoint: mirrored responses compared and how many of them differed, the
-- same two counts for the noise comparisons (legacy against itself), and the time of the
-- latest comparison (unix ms).
CREATE TABLE shadow_endpoints (
    route           TEXT    NOT NULL CHECK (route <> ''),
    endpoint        TEXT    NOT NULL CHECK (endpoint <> ''),
    compared        INTEGER NOT NULL DEFAULT 0 CHECK (compared >= 0),
    differing       INTEGER NOT NULL DEFAULT 0 CHECK (differing >= 0),
    noise_compared  INTEGER NOT NULL DEFAULT 0 CHECK (noise_compared >= 0),
    noise_differing INTEGER NOT NULL DEFAULT 0 CHECK (noise_differing >= 0),
    last_ms         INTEGER NOT NULL DEFAULT 0 CHECK (last_ms >= 0),
    PRIMARY KEY (route, endpoint)
) STRICT;

-- Per route, endpoint, field path and difference kind (value, type, missing, ...): how many
-- comparisons showed that difference, how many noise comparisons did, and when last.
CREATE TABLE shadow_fields (
    route           TEXT    NOT NULL CHECK (route <> ''),
    endpoint        TEXT    NOT NULL CHECK (endpoint <> ''),
    path            TEXT    NOT NULL CHECK (path <> ''),
    kind            TEXT    NOT NULL CHECK (kind <> ''),
    differing       INTEGER NOT NULL DEFAULT 0 CHECK (differing >= 0),
    noise_differing INTEGER NOT NULL DEFAULT 0 CHECK (noise_differing >= 0),
    last_ms         INTEGER NOT NULL DEFAULT 0 CHECK (last_ms >= 0),
    PRIMARY KEY (route, endpoint, path, kind)
) STRICT;

-- Example differences, kept as evidence. The id is chosen by the aggregator, not the
-- database, so a flush that is retried after an unknown outcome stores each sample once.
-- (INTEGER PRIMARY KEY without AUTOINCREMENT: the rowid is the caller's id.)
CREATE TABLE shadow_samples (
    id       INTEGER PRIMARY KEY,
    route    TEXT    NOT NULL CHECK (route <> ''),
    endpoint TEXT    NOT NULL CHECK (endpoint <> ''),
    path     TEXT    NOT NULL CHECK (path <> ''),
    kind     TEXT    NOT NULL CHECK (kind <> ''),
    at_ms    INTEGER NOT NULL CHECK (at_ms >= 0),
    data     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(data))
) STRICT;

CREATE INDEX shadow_samples_route ON shadow_samples (route);
