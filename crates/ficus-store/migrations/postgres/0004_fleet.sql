-- ficus state store, schema 4 (PostgreSQL dialect): fleet mode.
-- Keep this file equivalent to migrations/sqlite/0004_fleet.sql.
-- Several gateways (nodes) on one store act as one: every change advances a revision that
-- each node follows (NOTIFY plus polling), each node records itself in a registry and
-- flushes its per-second traffic numbers here, and one node at a time holds the leader
-- lease under which controllers, schedulers and webhook delivery run.

-- The revision: advanced by every write that another node must act on (a commit, appended
-- events, a shadow reset), in the same transaction, with the time of that write.
-- node_seq numbers node registrations (see fleet_nodes.seq).
ALTER TABLE store_meta ADD COLUMN revision    BIGINT NOT NULL DEFAULT 0;
ALTER TABLE store_meta ADD COLUMN revision_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE store_meta ADD COLUMN node_seq    BIGINT NOT NULL DEFAULT 0;

-- The node that recorded an event (NULL: written before fleet mode, or by a tool).
ALTER TABLE events ADD COLUMN node TEXT;

-- One row per node process. `id` is unique per process (a restarted node is a new row);
-- `seq` is unique for ever and makes the node's shadow sample ids unique across the fleet.
-- Times are unix ms of the database's clock.
CREATE TABLE fleet_nodes (
    id             TEXT   PRIMARY KEY CHECK (id <> ''),
    seq            BIGINT NOT NULL UNIQUE CHECK (seq >= 1),
    name           TEXT   NOT NULL CHECK (name <> ''),
    host           TEXT   NOT NULL,
    pid            BIGINT NOT NULL,
    version        TEXT   NOT NULL,
    admin_url      TEXT,
    started_at     BIGINT NOT NULL,
    heartbeat_at   BIGINT NOT NULL,
    revision       BIGINT NOT NULL DEFAULT 0,
    applied_at     BIGINT NOT NULL DEFAULT 0,
    apply_lag_ms   BIGINT NOT NULL DEFAULT 0,
    config_version BIGINT,
    rate           DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (rate >= 0),
    drift          TEXT,
    stopped_at     BIGINT
);

-- The leader lease: one row. A node takes it when it is free or expired (epoch + 1) and
-- renews it while it holds it; writes only the leader may make carry (node_id, epoch) and
-- are refused once the epoch has moved on (fencing a stale leader).
CREATE TABLE fleet_leader (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    node_id     TEXT,
    epoch       BIGINT NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    expires_at  BIGINT NOT NULL DEFAULT 0,
    acquired_at BIGINT NOT NULL DEFAULT 0
);

INSERT INTO fleet_leader (id) VALUES (1);

-- Each node's closed one-second slots per route and side (0 legacy, 1 modern): counts by
-- status class, fallbacks, the latency sum and the sparse fine histogram (pairs of a u16
-- bucket index and a u32 count, little-endian). Written once per slot; `seq` orders them
-- in commit order (flushes serialise on telemetry_meta) so readers tail with seq > last.
CREATE TABLE telemetry_meta (
    id  SMALLINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT   NOT NULL DEFAULT 0
);

INSERT INTO telemetry_meta (id) VALUES (1);

CREATE TABLE telemetry_seconds (
    seq            BIGINT   PRIMARY KEY,
    node_id        TEXT     NOT NULL CHECK (node_id <> ''),
    route          TEXT     NOT NULL CHECK (route <> ''),
    side           SMALLINT NOT NULL CHECK (side IN (0, 1)),
    at_s           BIGINT   NOT NULL,
    c1xx           BIGINT   NOT NULL CHECK (c1xx >= 0),
    c2xx           BIGINT   NOT NULL CHECK (c2xx >= 0),
    c3xx           BIGINT   NOT NULL CHECK (c3xx >= 0),
    c4xx           BIGINT   NOT NULL CHECK (c4xx >= 0),
    c5xx           BIGINT   NOT NULL CHECK (c5xx >= 0),
    fallbacks      BIGINT   NOT NULL CHECK (fallbacks >= 0),
    latency_sum_us BIGINT   NOT NULL CHECK (latency_sum_us >= 0),
    hist           BYTEA    NOT NULL,
    UNIQUE (node_id, route, side, at_s)
);

CREATE INDEX telemetry_seconds_at ON telemetry_seconds (at_s);

-- The same per minute (minute = unix seconds / 60), kept longer; each node owns its rows
-- and rewrites the current minute's row as its seconds close.
CREATE TABLE telemetry_minutes (
    node_id        TEXT     NOT NULL CHECK (node_id <> ''),
    route          TEXT     NOT NULL CHECK (route <> ''),
    side           SMALLINT NOT NULL CHECK (side IN (0, 1)),
    minute         BIGINT   NOT NULL,
    c1xx           BIGINT   NOT NULL CHECK (c1xx >= 0),
    c2xx           BIGINT   NOT NULL CHECK (c2xx >= 0),
    c3xx           BIGINT   NOT NULL CHECK (c3xx >= 0),
    c4xx           BIGINT   NOT NULL CHECK (c4xx >= 0),
    c5xx           BIGINT   NOT NULL CHECK (c5xx >= 0),
    fallbacks      BIGINT   NOT NULL CHECK (fallbacks >= 0),
    latency_sum_us BIGINT   NOT NULL CHECK (latency_sum_us >= 0),
    hist           BYTEA    NOT NULL,
    PRIMARY KEY (node_id, route, side, minute)
);

CREATE INDEX telemetry_minutes_minute ON telemetry_minutes (minute);

-- The last event handed to the [[webhook]] receivers by the leader, so a new leader goes
-- on where the old one stopped. A store that already has events starts after them.
CREATE TABLE webhook_cursor (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    event_id BIGINT   NOT NULL CHECK (event_id >= 0)
);

INSERT INTO webhook_cursor (id, event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;

-- What the leader's rollout controller last judged, per route, so every node can show it.
CREATE TABLE rollout_status (
    route      TEXT   PRIMARY KEY CHECK (route <> ''),
    node_id    TEXT   NOT NULL,
    data       JSONB  NOT NULL,
    updated_at BIGINT NOT NULL
);
