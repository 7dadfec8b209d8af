-- Chat conversations, per user. The id is made by the server (a UUID), so a client that retries
-- a create can be told "already exists" instead of getting a second conversation.
-- `message_count` is kept by the store as messages are appended: listing shows it without a
-- count per row, and the next message's position is `message_count` (messages are only ever
-- appended, and deleted only with their conversation).
CREATE TABLE IF NOT EXISTS conversations (
    id            UUID        PRIMARY KEY,
    user_id       TEXT        NOT NULL,
    title         TEXT        NOT NULL,
    endpoint_name TEXT        NOT NULL,
    message_count INTEGER     NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    -- The target of the messages' foreign key, which carries the user too: a message can then
    -- never belong to another user's conversation, whatever a statement gets wrong.
    CONSTRAINT conversations_id_user UNIQUE (id, user_id)
);
-- A user's conversations are listed most recently updated first; `id` breaks ties.
CREATE INDEX IF NOT EXISTS conversations_user_updated
    ON conversations (user_id, updated_at DESC, id DESC);

-- The messages of a conversation, in order. `content` is the OpenAI message content as sent or
-- received: a string, a list of parts, or SQL NULL for JSON null (an assistant calling tools).
-- Assistant turns carry how their stream ended (`outcome`) and what it cost.
CREATE TABLE IF NOT EXISTS conversation_messages (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id   UUID        NOT NULL,
    user_id           TEXT        NOT NULL,
    position          INTEGER     NOT NULL CHECK (position >= 0),
    role              TEXT        NOT NULL,
    content           JSONB,
    tool_calls        JSONB,
    tool_call_id      TEXT,
    endpoint_name     TEXT,
    finish_reason     TEXT,
    outcome           TEXT CHECK (outcome IN ('completed', 'failed', 'cancelled')),
    prompt_tokens     BIGINT CHECK (prompt_tokens >= 0),
    completion_tokens BIGINT CHECK (completion_tokens >= 0),
    latency_ms        BIGINT CHECK (latency_ms >= 0),
    first_token_ms    BIGINT CHECK (first_token_ms >= 0),
    error_code        TEXT,
    error_message     TEXT,
    content_truncated BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL,
    CONSTRAINT conversation_messages_position UNIQUE (conversation_id, position),
    CONSTRAINT conversation_messages_conversation FOREIGN KEY (conversation_id, user_id)
        REFERENCES conversations (id, user_id) ON DELETE CASCADE
);
-- The unique constraint's index serves reading a conversation's messages in order and the
-- cascade on delete.
