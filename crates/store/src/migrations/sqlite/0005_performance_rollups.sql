-- Per-minute rollups of `performance_metrics` (see the Postgres migration of the same number):
-- `minute` is the minute's start in microseconds since the Unix epoch, UTC. Rollups start with
-- this migration: requests recorded before it are not backfilled.
CREATE TABLE IF NOT EXISTS performance_rollups (
    minute   INTEGER NOT NULL,
    route    TEXT    NOT NULL,
    method   TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    requests INTEGER NOT NULL CHECK (requests > 0),
    errors   INTEGER NOT NULL CHECK (errors >= 0 AND errors <= requests),
    PRIMARY KEY (minute, route, method, bucket)
);
CREATE INDEX IF NOT EXISTS performance_rollups_route_minute
    ON performance_rollups (route, minute);
CREATE INDEX IF NOT EXISTS usage_events_received ON usage_events (received_at);
CREATE INDEX IF NOT EXISTS model_inference_logs_created ON model_inference_logs (created_at);
