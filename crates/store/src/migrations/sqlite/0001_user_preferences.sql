-- Per-user preferences: one JSON value (as text) per (user_id, key).
-- Timestamps are INTEGER microseconds since the Unix epoch, UTC: Postgres' timestamptz precision,
-- exact comparisons and bucketing with integer arithmetic.
-- `revision` counts writes since the row was created; 1 after an upsert means it created the row.
CREATE TABLE IF NOT EXISTS user_preferences (
    user_id    TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    revision   INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
