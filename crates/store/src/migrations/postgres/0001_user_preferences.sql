-- Per-user preferences: one JSON value per (user_id, key).
-- `revision` counts writes since the row was created; the upsert returns it, and 1 means the
-- statement created the row. That is how one atomic statement reports "created" on both
-- dialects, without relying on Postgres system columns.
CREATE TABLE IF NOT EXISTS user_preferences (
    user_id     TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    value       JSONB       NOT NULL,
    revision    BIGINT      NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT user_preferences_user_key UNIQUE (user_id, key)
);
-- The unique constraint's index serves get, delete, and list (user_id prefix, ordered by key).
