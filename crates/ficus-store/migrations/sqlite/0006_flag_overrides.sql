-- A flag's variant and/or enabled switch set at runtime (`ficus flag set`, the API) that win
-- over the file until the file itself changes the flag. NULL = not overridden.
CREATE TABLE flag_overrides (
    flag       TEXT    PRIMARY KEY CHECK (flag <> ''),
    variant    TEXT    CHECK (variant IS NULL OR variant <> ''),
    enabled    INTEGER CHECK (enabled IS NULL OR enabled IN (0, 1)),
    updated_at INTEGER NOT NULL,
    event_id   INTEGER NOT NULL REFERENCES events (id),
    CHECK (variant IS NOT NULL OR enabled IS NOT NULL)
) STRICT;
