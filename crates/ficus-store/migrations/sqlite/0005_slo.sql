-- SLI counts per minute (minute = unix seconds / 60) of each route's scopes that an SLO
-- covers: 0 the route as clients saw it, 1 legacy's answers, 2 modern's. Each node owns its
-- rows and rewrites the current minute's as it fills; the leader sums them over nodes.
CREATE TABLE sli_minutes (
    node_id TEXT    NOT NULL CHECK (node_id <> ''),
    route   TEXT    NOT NULL CHECK (route <> ''),
    scope   INTEGER NOT NULL CHECK (scope IN (0, 1, 2)),
    minute  INTEGER NOT NULL,
    total   INTEGER NOT NULL CHECK (total >= 0),
    c5xx    INTEGER NOT NULL CHECK (c5xx >= 0),
    c429    INTEGER NOT NULL CHECK (c429 >= 0),
    c4xx    INTEGER NOT NULL CHECK (c4xx >= 0),
    PRIMARY KEY (node_id, route, scope, minute)
) STRICT;

CREATE INDEX sli_minutes_minute ON sli_minutes (minute);

-- Requests slower than each latency threshold (microseconds) an SLO of the scope counts.
CREATE TABLE sli_slow_minutes (
    node_id      TEXT    NOT NULL CHECK (node_id <> ''),
    route        TEXT    NOT NULL CHECK (route <> ''),
    scope        INTEGER NOT NULL CHECK (scope IN (0, 1, 2)),
    minute       INTEGER NOT NULL,
    threshold_us INTEGER NOT NULL CHECK (threshold_us > 0),
    slow         INTEGER NOT NULL CHECK (slow >= 0),
    PRIMARY KEY (node_id, route, scope, minute, threshold_us)
) STRICT;

CREATE INDEX sli_slow_minutes_minute ON sli_slow_minutes (minute);

-- Minutes older than three days, rolled up by the leader into hours summed over nodes (the
-- evaluator reads whole hours beyond three days anyway); `hour` is the minute number of the
-- hour's first minute. Kept longer than minutes, for past months' compliance.
CREATE TABLE sli_hours (
    route  TEXT     NOT NULL CHECK (route <> ''),
    scope  INTEGER  NOT NULL CHECK (scope IN (0, 1, 2)),
    hour   INTEGER  NOT NULL CHECK (hour % 60 = 0),
    total  INTEGER  NOT NULL CHECK (total >= 0),
    c5xx   INTEGER  NOT NULL CHECK (c5xx >= 0),
    c429   INTEGER  NOT NULL CHECK (c429 >= 0),
    c4xx   INTEGER  NOT NULL CHECK (c4xx >= 0),
    PRIMARY KEY (route, scope, hour)
) STRICT;

CREATE TABLE sli_slow_hours (
    route        TEXT     NOT NULL CHECK (route <> ''),
    scope        INTEGER  NOT NULL CHECK (scope IN (0, 1, 2)),
    hour         INTEGER  NOT NULL CHECK (hour % 60 = 0),
    threshold_us INTEGER  NOT NULL CHECK (threshold_us > 0),
    slow         INTEGER  NOT NULL CHECK (slow >= 0),
    PRIMARY KEY (route, scope, hour, threshold_us)
) STRICT;

-- What the leader last evaluated, per SLO ("route/name"), so every node can show it.
CREATE TABLE slo_status (
    slo        TEXT    PRIMARY KEY CHECK (slo <> ''),
    node_id    TEXT    NOT NULL,
    data       TEXT    NOT NULL CHECK (json_valid(data)),
    updated_at INTEGER NOT NULL
) STRICT;
