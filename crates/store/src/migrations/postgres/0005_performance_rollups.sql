-- Per-minute rollups of `performance_metrics`, written in the same transaction as the raw rows:
-- one row per (minute, route, method, latency bucket) with its request and error counts. The
-- admin report and time series read these, so their cost depends on minutes × routes × buckets,
-- not on the number of raw rows. `bucket` is the index of the log-scale latency histogram of
-- `dbapp_store`'s `aggregate` module (bucket i holds durations in [2^(i/16), 2^((i+1)/16)) ms).
-- Rollups start with this migration: requests recorded before it are not backfilled.
CREATE TABLE IF NOT EXISTS performance_rollups (
    minute   TIMESTAMPTZ NOT NULL,
    route    TEXT        NOT NULL,
    method   TEXT        NOT NULL,
    bucket   SMALLINT    NOT NULL,
    requests BIGINT      NOT NULL CHECK (requests > 0),
    errors   BIGINT      NOT NULL CHECK (errors >= 0 AND errors <= requests),
    PRIMARY KEY (minute, route, method, bucket)
);
-- The primary key serves all-route windows and retention (`minute` prefix); one route's window:
CREATE INDEX IF NOT EXISTS performance_rollups_route_minute
    ON performance_rollups (route, minute);
-- The same counts per hour, written in the same transaction: a window reads its whole hours
-- here and only its partial hours at each end from the minute rows, so a 24-hour report reads
-- about 25 times fewer rows.
CREATE TABLE IF NOT EXISTS performance_rollups_hourly (
    hour     TIMESTAMPTZ NOT NULL,
    route    TEXT        NOT NULL,
    method   TEXT        NOT NULL,
    bucket   SMALLINT    NOT NULL,
    requests BIGINT      NOT NULL CHECK (requests > 0),
    errors   BIGINT      NOT NULL CHECK (errors >= 0 AND errors <= requests),
    PRIMARY KEY (hour, route, method, bucket)
);
CREATE INDEX IF NOT EXISTS performance_rollups_hourly_route_hour
    ON performance_rollups_hourly (route, hour);
-- Retention deletes by arrival time (usage) and start time (inference history) across users.
CREATE INDEX IF NOT EXISTS usage_events_received ON usage_events (received_at);
CREATE INDEX IF NOT EXISTS model_inference_logs_created ON model_inference_logs (created_at);
