-- Whether `inputs` holds the invocation's inputs, or (true) a JSON string with the first bytes
-- of their serialized form, because they were larger than the server's history cap.
ALTER TABLE model_inference_logs
    ADD COLUMN IF NOT EXISTS inputs_truncated BOOLEAN NOT NULL DEFAULT false;
