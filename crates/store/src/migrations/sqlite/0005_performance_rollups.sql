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
-- The same counts per hour (`hour`: the hour's start in microseconds), in the same transaction.
CREATE TABLE IF NOT EXISTS performance_rollups_hourly (
    hour     INTEGER NOT NULL,
    route    TEXT    NOT NULL,
    method   TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    requests INTEGER NOT NULL CHECK (requests > 0),
    errors   INTEGER NOT NULL CHECK (errors >= 0 AND errors <= requests),
    PRIMARY KEY (hour, route, method, bucket)
);
CREATE INDEX IF NOT EXISTS performance_rollups_hourly_route_hour
    ON performance_rollups_hourly (route, hour);
CREATE INDEX IF NOT EXISTS usage_events_received ON usage_events (received_at);
CREATE INDEX IF NOT EXISTS model_inference_logs_created ON model_inference_logs (created_at);
