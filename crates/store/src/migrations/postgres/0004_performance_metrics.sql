-- One row per served request, written in batches off the request path. Not user data: no user id.
CREATE TABLE IF NOT EXISTS performance_metrics (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route       TEXT             NOT NULL,
    method      TEXT             NOT NULL,
    status_code INTEGER          NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL CHECK (duration_ms >= 0),
    recorded_at TIMESTAMPTZ      NOT NULL
);
-- Aggregates of all routes in a time range, and the time series.
CREATE INDEX IF NOT EXISTS performance_metrics_recorded ON performance_metrics (recorded_at);
-- Aggregates of one route in a time range.
CREATE INDEX IF NOT EXISTS performance_metrics_route_recorded
    ON performance_metrics (route, recorded_at);
