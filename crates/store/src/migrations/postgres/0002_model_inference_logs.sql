-- Every model invocation, success or not, in its caller's inference history.
CREATE TABLE IF NOT EXISTS model_inference_logs (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id        UUID        NOT NULL,
    user_id           TEXT        NOT NULL,
    endpoint_name     TEXT        NOT NULL,
    status            TEXT        NOT NULL CHECK (status IN ('SUCCESS', 'ERROR', 'TIMEOUT')),
    inputs            JSONB       NOT NULL,
    predictions       JSONB,
    error_message     TEXT,
    execution_time_ms BIGINT      NOT NULL CHECK (execution_time_ms >= 0),
    created_at        TIMESTAMPTZ NOT NULL,
    completed_at      TIMESTAMPTZ,
    CONSTRAINT model_inference_logs_request_id UNIQUE (request_id)
);
-- The history is read per user, newest first; `id` breaks ties between equal timestamps.
CREATE INDEX IF NOT EXISTS model_inference_logs_user_created
    ON model_inference_logs (user_id, created_at DESC, id DESC);
