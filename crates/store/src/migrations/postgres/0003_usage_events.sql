-- Usage events sent by the UI, stored with the caller's id.
CREATE TABLE IF NOT EXISTS usage_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT        NOT NULL,
    event_type  TEXT        NOT NULL,
    page_name   TEXT,
    element_id  TEXT,
    success     BOOLEAN,
    metadata    JSONB,
    occurred_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A user's count in a time range.
CREATE INDEX IF NOT EXISTS usage_events_user_occurred ON usage_events (user_id, occurred_at);
-- Admin aggregates and the time series scan a time range across users.
CREATE INDEX IF NOT EXISTS usage_events_occurred ON usage_events (occurred_at);
