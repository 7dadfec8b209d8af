//! The caller's chat conversations, in the store under their `UserId`: list (most recently
//! updated first, paged as the inference history is), read with every message, rename, delete.
//! Another user's conversation answers `CONVERSATION_NOT_FOUND`, exactly as a missing one, so
//! ids cannot be probed. Conversations are created and filled by the chat route's recording,
//! through the store; no route here writes messages.
//!
//! Limits are the store's: titles of 1 to [`dbapp_store::MAX_TITLE_CHARS`] characters, not all whitespace
//! (`INVALID_REQUEST` on `title`); at most [`dbapp_store::MAX_CONVERSATION_MESSAGES`] messages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use dbapp_store::{Conversation, MessageOutcome, Resource, StoreError, StoredMessage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{CountedPage, PageSpec, Pagination};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ConversationId};
use crate::state::AppState;

/// A conversation, without its messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationItem {
    /// Its id.
    pub id: Uuid,
    /// 1 to 200 characters.
    pub title: String,
    /// The serving endpoint it was started with.
    pub endpoint_name: String,
    /// How many messages it holds.
    pub message_count: u32,
    /// Creation time (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// When its title or messages last changed (RFC 3339); lists are ordered by it.
    pub updated_at: DateTime<Utc>,
}

impl From<Conversation> for ConversationItem {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id,
            title: c.title,
            endpoint_name: c.endpoint_name,
            message_count: c.message_count,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A message of a conversation: the OpenAI chat message, and for an assistant turn what its
/// stream did.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageItem {
    /// Its place, from 0.
    pub position: u32,
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// A string, a list of content parts, or null (an assistant calling tools).
    pub content: Value,
    /// The assistant's tool calls.
    #[schema(required, value_type = Option<Vec<Object>>)]
    pub tool_calls: Option<Value>,
    /// The call a `tool` message answers.
    #[schema(required)]
    pub tool_call_id: Option<String>,
    /// The endpoint that produced an assistant message.
    #[schema(required)]
    pub endpoint_name: Option<String>,
    /// The endpoint's `finish_reason`.
    #[schema(required)]
    pub finish_reason: Option<String>,
    /// How an assistant message's stream ended: `completed`, `failed` or `cancelled`.
    #[schema(required, value_type = Option<String>, example = "completed")]
    pub outcome: Option<MessageOutcome>,
    /// Prompt tokens the endpoint reported.
    #[schema(required)]
    pub prompt_tokens: Option<i64>,
    /// Completion tokens the endpoint reported.
    #[schema(required)]
    pub completion_tokens: Option<i64>,
    /// Wall time of the stream.
    #[schema(required)]
    pub latency_ms: Option<i64>,
    /// Time to the first generated token.
    #[schema(required)]
    pub first_token_ms: Option<i64>,
    /// The error code that ended a failed stream.
    #[schema(required)]
    pub error_code: Option<String>,
    /// Its message.
    #[schema(required)]
    pub error_message: Option<String>,
    /// Whether `content` was cut to fit the store's size limit.
    pub content_truncated: bool,
    /// When it was recorded (RFC 3339).
    pub created_at: DateTime<Utc>,
}

impl From<StoredMessage> for MessageItem {
    fn from(m: StoredMessage) -> Self {
        let message = m.message;
        Self {
            position: m.position,
            role: message.role,
            content: message.content,
            tool_calls: message.tool_calls,
            tool_call_id: message.tool_call_id,
            endpoint_name: message.endpoint_name,
            finish_reason: message.finish_reason,
            outcome: message.outcome,
            prompt_tokens: message.prompt_tokens,
            completion_tokens: message.completion_tokens,
            latency_ms: message.latency_ms,
            first_token_ms: message.first_token_ms,
            error_code: message.error_code,
            error_message: message.error_message,
            content_truncated: message.content_truncated,
            created_at: m.created_at,
        }
    }
}

/// A conversation with its messages: the list item's fields, and the messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationDetailItem {
    /// The fields of the list item.
    #[serde(flatten)]
    pub conversation: ConversationItem,
    /// Every message, by position.
    pub messages: Vec<MessageItem>,
}

/// A new title.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    /// 1 to 200 characters, not all whitespace.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(
            get_conversation,
            rename_conversation,
            delete_conversation
        ))
}

/// The caller's conversations, most recently updated first.
#[utoipa::path(get, path = "/api/conversations", tag = "conversations",
    security(("user_token" = [])), params(Pagination), responses(
    (status = 200, body = CountedPage<ConversationItem>),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 503, body = ErrorBody, description = "DATABASE_UNAVAILABLE, STORAGE_NOT_CONFIGURED"),
))]
async fn list_conversations(
    State(app): State<AppState>,
    caller: Caller,
    spec: PageSpec,
) -> Result<Json<CountedPage<ConversationItem>>, ApiError> {
    let page = app
        .store()?
        .list_conversations(caller.user_id(), spec.store_page()?)
        .await?;
    Ok(Json(CountedPage::from_store(
        &spec,
        page,
        ConversationItem::from,
    )))
}

/// One of the caller's conversations, with every message.
#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations",
    security(("user_token" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, body = ConversationDetailItem),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST (the id is not a UUID)"),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "CONVERSATION_NOT_FOUND"),
    (status = 503, body = ErrorBody, description = "DATABASE_UNAVAILABLE, STORAGE_NOT_CONFIGURED"),
))]
async fn get_conversation(
    State(app): State<AppState>,
    caller: Caller,
    ConversationId(id): ConversationId,
) -> Result<Json<ConversationDetailItem>, ApiError> {
    let detail = app.store()?.get_conversation(caller.user_id(), id).await?;
    Ok(Json(ConversationDetailItem {
        conversation: detail.conversation.into(),
        messages: detail.messages.into_iter().map(MessageItem::from).collect(),
    }))
}

/// Renames one of the caller's conversations.
#[utoipa::path(patch, path = "/api/conversations/{id}", tag = "conversations",
    security(("user_token" = [])), params(("id" = Uuid, Path)), request_body = RenameRequest,
    responses(
    (status = 200, body = ConversationItem),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST (the id, the body, or the title)"),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "CONVERSATION_NOT_FOUND"),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 503, body = ErrorBody, description = "DATABASE_UNAVAILABLE, STORAGE_NOT_CONFIGURED"),
))]
async fn rename_conversation(
    State(app): State<AppState>,
    caller: Caller,
    ConversationId(id): ConversationId,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<ConversationItem>, ApiError> {
    let request: RenameRequest = super::from_json_object("body", body)?;
    match app
        .store()?
        .rename_conversation(caller.user_id(), id, &request.title)
        .await
    {
        Ok(conversation) => Ok(Json(conversation.into())),
        // The title is the only input the store checks here.
        Err(StoreError::InvalidInput(reason)) => Err(ApiError::invalid("title", reason)),
        Err(error) => Err(error.into()),
    }
}

/// Deletes one of the caller's conversations and its messages.
#[utoipa::path(delete, path = "/api/conversations/{id}", tag = "conversations",
    security(("user_token" = [])), params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST (the id is not a UUID)"),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "CONVERSATION_NOT_FOUND"),
    (status = 503, body = ErrorBody, description = "DATABASE_UNAVAILABLE, STORAGE_NOT_CONFIGURED"),
))]
async fn delete_conversation(
    State(app): State<AppState>,
    caller: Caller,
    ConversationId(id): ConversationId,
) -> Result<StatusCode, ApiError> {
    if app
        .store()?
        .delete_conversation(caller.user_id(), id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(StoreError::NotFound(Resource::Conversation).into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_title_bound_is_the_stores() {
        // `RenameRequest`'s `max_length` is a literal in the OpenAPI attribute.
        assert_eq!(dbapp_store::MAX_TITLE_CHARS, 200);
    }
}
