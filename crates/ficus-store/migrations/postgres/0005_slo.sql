-- SLI counts per minute (minute = unix seconds / 60) of each route's scopes that an SLO
-- covers: 0 the route as clients saw it, 1 legacy's answers, 2 modern's. Each node owns its
-- rows and rewrites the current minute's as it fills; the leader sums them over nodes.
CREATE TABLE sli_minutes (
    node_id TEXT     NOT NULL CHECK (node_id <> ''),
    route   TEXT     NOT NULL CHECK (route <> ''),
    scope   SMALLINT NOT NULL CHECK (scope IN (0, 1, 2)),
    minute  BIGINT   NOT NULL,
    total   BIGINT   NOT NULL CHECK (total >= 0),
    c5xx    BIGINT   NOT NULL CHECK (c5xx >= 0),
    c429    BIGINT   NOT NULL CHECK (c429 >= 0),
    c4xx    BIGINT   NOT NULL CHECK (c4xx >= 0),
    PRIMARY KEY (node_id, route, scope, minute)
);

CREATE INDEX sli_minutes_minute ON sli_minutes (minute);

-- Requests slower than each latency threshold (microseconds) an SLO of the scope counts.
CREATE TABLE sli_slow_minutes (
    node_id      TEXT     NOT NULL CHECK (node_id <> ''),
    route        TEXT     NOT NULL CHECK (route <> ''),
    scope        SMALLINT NOT NULL CHECK (scope IN (0, 1, 2)),
    minute       BIGINT   NOT NULL,
    threshold_us BIGINT   NOT NULL CHECK (threshold_us > 0),
    slow         BIGINT   NOT NULL CHECK (slow >= 0),
    PRIMARY KEY (node_id, route, scope, minute, threshold_us)
);

CREATE INDEX sli_slow_minutes_minute ON sli_slow_minutes (minute);

-- Minutes older than three days, rolled up by the leader into hours summed over nodes (the
-- evaluator reads whole hours beyond three days anyway); `hour` is the minute number of the
-- hour's first minute. Kept longer than minutes, for past months' compliance.
CREATE TABLE sli_hours (
    route  TEXT     NOT NULL CHECK (route <> ''),
    scope  SMALLINT NOT NULL CHECK (scope IN (0, 1, 2)),
    hour   BIGINT   NOT NULL CHECK (hour % 60 = 0),
    total  BIGINT   NOT NULL CHECK (total >= 0),
    c5xx   BIGINT   NOT NULL CHECK (c5xx >= 0),
    c429   BIGINT   NOT NULL CHECK (c429 >= 0),
    c4xx   BIGINT   NOT NULL CHECK (c4xx >= 0),
    PRIMARY KEY (route, scope, hour)
);

CREATE TABLE sli_slow_hours (
    route        TEXT     NOT NULL CHECK (route <> ''),
    scope        SMALLINT NOT NULL CHECK (scope IN (0, 1, 2)),
    hour         BIGINT   NOT NULL CHECK (hour % 60 = 0),
    threshold_us BIGINT   NOT NULL CHECK (threshold_us > 0),
    slow         BIGINT   NOT NULL CHECK (slow >= 0),
    PRIMARY KEY (route, scope, hour, threshold_us)
);

-- What the leader last evaluated, per SLO ("route/name"), so every node can show it.
CREATE TABLE slo_status (
    slo        TEXT   PRIMARY KEY CHECK (slo <> ''),
    node_id    TEXT   NOT NULL,
    data       JSONB  NOT NULL,
    updated_at BIGINT NOT NULL
);
