-- The request ids of inference logs whose `inputs` hold a JSON string with the first bytes of
-- the serialized inputs, because they were larger than the server's history cap. A table of its
-- own rather than a column: SQLite has no `ADD COLUMN IF NOT EXISTS`, and every migration must be
-- safe to run again. (Postgres has the column `inputs_truncated`.)
CREATE TABLE IF NOT EXISTS model_inference_truncated_inputs (
    request_id TEXT PRIMARY KEY
);
