-- Every model invocation in its caller's inference history (timestamps: microseconds, UTC).
CREATE TABLE IF NOT EXISTS model_inference_logs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id        TEXT    NOT NULL UNIQUE,
    user_id           TEXT    NOT NULL,
    endpoint_name     TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('SUCCESS', 'ERROR', 'TIMEOUT')),
    inputs            TEXT    NOT NULL,
    predictions       TEXT,
    error_message     TEXT,
    execution_time_ms INTEGER NOT NULL CHECK (execution_time_ms >= 0),
    created_at        INTEGER NOT NULL,
    completed_at      INTEGER
);
CREATE INDEX IF NOT EXISTS model_inference_logs_user_created
    ON model_inference_logs (user_id, created_at DESC, id DESC);
