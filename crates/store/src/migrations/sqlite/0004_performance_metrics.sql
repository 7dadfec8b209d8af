-- One row per served request (timestamps: microseconds, UTC). Not user data: no user id.
CREATE TABLE IF NOT EXISTS performance_metrics (
    id          INTEGER PRIMARY KEY,
    route       TEXT    NOT NULL,
    method      TEXT    NOT NULL,
    status_code INTEGER NOT NULL,
    duration_ms REAL    NOT NULL CHECK (duration_ms >= 0),
    recorded_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS performance_metrics_recorded ON performance_metrics (recorded_at);
CREATE INDEX IF NOT EXISTS performance_metrics_route_recorded
    ON performance_metrics (route, recorded_at);
