-- Usage events sent by the UI (timestamps: microseconds, UTC).
CREATE TABLE IF NOT EXISTS usage_events (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    page_name   TEXT,
    element_id  TEXT,
    success     INTEGER,
    metadata    TEXT,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_events_user_occurred ON usage_events (user_id, occurred_at);
CREATE INDEX IF NOT EXISTS usage_events_occurred ON usage_events (occurred_at);
