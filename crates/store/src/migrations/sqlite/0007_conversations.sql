-- Chat conversations, per user (timestamps: microseconds, UTC; ids: hyphenated lowercase UUID
-- text, which sorts as Postgres sorts UUIDs). `message_count` is kept by the store as messages
-- are appended: listing shows it without a count per row, and it is the next message's position.
CREATE TABLE IF NOT EXISTS conversations (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    endpoint_name TEXT    NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- The messages' foreign key carries the user too, so no message can belong to another
    -- user's conversation.
    UNIQUE (id, user_id)
);
CREATE INDEX IF NOT EXISTS conversations_user_updated
    ON conversations (user_id, updated_at DESC, id DESC);

-- The messages of a conversation, in order; JSON as text, `content` NULL for JSON null.
-- The cascade needs foreign keys on, which `SqliteStore` sets on every connection.
CREATE TABLE IF NOT EXISTS conversation_messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id   TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    position          INTEGER NOT NULL CHECK (position >= 0),
    role              TEXT    NOT NULL,
    content           TEXT,
    tool_calls        TEXT,
    tool_call_id      TEXT,
    endpoint_name     TEXT,
    finish_reason     TEXT,
    outcome           TEXT CHECK (outcome IN ('completed', 'failed', 'cancelled')),
    prompt_tokens     INTEGER CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER CHECK (completion_tokens >= 0),
    latency_ms        INTEGER CHECK (latency_ms >= 0),
    first_token_ms    INTEGER CHECK (first_token_ms >= 0),
    error_code        TEXT,
    error_message     TEXT,
    content_truncated INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    UNIQUE (conversation_id, position),
    FOREIGN KEY (conversation_id, user_id)
        REFERENCES conversations (id, user_id) ON DELETE CASCADE
);
