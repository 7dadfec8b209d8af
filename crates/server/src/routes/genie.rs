//! Genie, as the user (`docs/genie.md`): the spaces the caller may use, asking a question (a new
//! conversation or a follow-up) with its progress streamed as server-sent events, a
//! conversation's earlier messages, deleting a conversation, a query attachment's result page,
//! and feedback.
//!
//! Every call goes to the workspace with the caller's token ([`Caller::workspace`]); nothing
//! here runs as the app, so Genie answers with what the caller may read. Path ids are checked
//! ([`crate::extract::validate_genie_id`]) before anything is called. The two non-idempotent
//! calls (asking, and re-running an expired query) are made once and never retried.
//!
//! The ask route starts (or continues) the conversation before it answers, so a refusal (unknown
//! space, no permission) is an ordinary JSON error. Then it answers `200 text/event-stream`:
//! `event: status` at each status change, `event: message` with the answer, `data: [DONE]`; or
//! a last `event: error` with the API's error envelope. The waiter
//! ([`dbapp_databricks::Workspace::wait_for_genie_message`]) runs inside the response body, so
//! when the client goes away the body is dropped and the polling stops with it.
//!
//! A message becomes a [`GenieAnswer`] in one place, [`answer_of`] (with [`first_rows`] for its
//! result), whether it arrives at the end of the stream or in a conversation's history.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use dbapp_databricks::api::sql::StatementResponse;
use dbapp_databricks::api::{GenieFeedbackRating, GenieMessage, GenieMessageStatus, GenieWait};
use dbapp_databricks::{ErrorKind, Workspace};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ItemsPage, PageSpec, Pagination, page_upstream, sse, upstream_page};
use crate::auth::Caller;
use crate::correlation::current_correlation_id;
use crate::error::{ApiError, ErrorBody, ErrorCode, GENIE_ERROR_CHARS};
use crate::extract::{
    ApiJson, ApiQuery, GenieAttachment, GenieConversation, GenieMessage as GenieMessageId,
    GenieSpace, Limit, Name, validate_genie_id,
};
use crate::metrics::GENIE_MESSAGES_TOTAL;
use crate::sql::{self, Column};
use crate::state::AppState;

/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 10_000;
/// Longest feedback comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;
/// Rows of a result sent in the `message` event, and with each earlier message of a
/// conversation.
pub const STREAM_RESULT_ROWS: usize = 100;
/// Most messages in one page of a conversation's history. Smaller than other lists' 1 000: each
/// answered message with a query costs one more workspace call (its rows).
pub const HISTORY_LIMIT_MAX: u32 = 50;
/// Messages in a page of a conversation's history when the client does not say.
pub const HISTORY_LIMIT_DEFAULT: u32 = 20;
/// Result fetches one history page runs at the same time, so a page of 50 answers neither waits
/// for 50 calls in a row nor sends them to the workspace at once.
const HISTORY_RESULT_FETCHES: usize = 4;

/// A Genie space the caller may use.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenieSpaceItem {
    /// Id.
    pub space_id: String,
    /// Title.
    pub title: String,
    /// What the space answers questions about.
    #[schema(required)]
    pub description: Option<String>,
    /// The warehouse its queries run on.
    #[schema(required)]
    pub warehouse_id: Option<String>,
}

/// A Genie conversation of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenieConversationItem {
    /// Id.
    pub conversation_id: String,
    /// Title (Genie names it after the first question).
    #[schema(required)]
    pub title: Option<String>,
    /// Creation time (RFC 3339).
    #[schema(required)]
    pub created_at: Option<String>,
}

/// A question for a space.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    /// The question, 1 to 10 000 characters.
    pub content: String,
    /// The caller's conversation in this space to continue; without it a new one is started.
    pub conversation_id: Option<String>,
}

/// A status change of the message, the `data` of an `event: status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenieStatusEvent {
    /// The conversation.
    pub conversation_id: String,
    /// The message.
    pub message_id: String,
    /// e.g. `SUBMITTED`, `ASKING_AI`, `EXECUTING_QUERY`, `COMPLETED`.
    pub status: String,
}

/// The query Genie wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenieQuery {
    /// The attachment's id, for the result route.
    pub attachment_id: String,
    /// The SQL.
    #[schema(required)]
    pub query: Option<String>,
    /// Short title.
    #[schema(required)]
    pub title: Option<String>,
    /// What it answers, in words.
    #[schema(required)]
    pub description: Option<String>,
}

/// A page of a query's result, typed as table previews are: numbers as numbers, booleans as
/// booleans, others as strings, null as null.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenieResult {
    /// The statement that ran the query.
    pub statement_id: String,
    /// The result's columns.
    pub columns: Vec<Column>,
    /// The rows.
    pub rows: Vec<Vec<Value>>,
    /// Rows in this page.
    pub row_count: usize,
    /// More rows exist than this page holds.
    pub truncated: bool,
    /// Rows in the whole result, when the workspace says.
    #[schema(required)]
    pub total_row_count: Option<u64>,
}

/// A message and Genie's answer to it: the `data` of the `event: message` that ends a stream,
/// and each item of a conversation's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenieAnswer {
    /// The space.
    pub space_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// The message.
    pub message_id: String,
    /// The question, as asked.
    pub content: String,
    /// When it was asked (RFC 3339), when the workspace says.
    #[schema(required)]
    pub created_at: Option<String>,
    /// In the stream, `COMPLETED` or `QUERY_RESULT_EXPIRED` (then `result` is null: read it with
    /// the result route, which runs the query again). In a history, any status: `FAILED` (see
    /// `error`), `CANCELLED`, or one of a message Genie is still answering (`ASKING_AI`, …).
    pub status: String,
    /// The text attachments, in order (markdown).
    pub text: Vec<String>,
    /// The query Genie wrote, if any.
    #[schema(required)]
    pub query: Option<GenieQuery>,
    /// The first page of the query's result, read as the caller; null without a query, before
    /// the message has completed, or when the result can no longer be read (the result route
    /// runs the query again).
    #[schema(required)]
    pub result: Option<GenieResult>,
    /// Questions Genie suggests asking next.
    pub suggested_questions: Vec<String>,
    /// Why Genie could not answer, for a `FAILED` message (the stream reports failures as an
    /// `event: error` instead, so there it is always null). Not named `error`: stream readers
    /// (`web/src/api/sse.ts`) take any event data with an `error` member for the error envelope.
    #[schema(required)]
    pub failure: Option<GenieFailure>,
}

/// Genie's own account of a failed message (as `GENIE_MESSAGE_FAILED`'s `detail` gives it).
#[derive(Debug, Serialize, ToSchema)]
pub struct GenieFailure {
    /// Genie's error type, e.g. `SQL_EXECUTION_EXCEPTION`.
    #[serde(rename = "type")]
    #[schema(required)]
    pub error_type: Option<String>,
    /// Genie's message for people, at most 1 000 characters.
    #[schema(required)]
    pub message: Option<String>,
}

/// Pagination of a conversation's messages: as every list route's, with smaller pages (each
/// message may cost a workspace call for its rows).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryPagination {
    /// Messages per page, 1–50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
    /// The previous page's `next_page_token` (opaque).
    pub page_token: Option<String>,
    /// Messages to skip (≥ 0); not with `page_token`.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl HistoryPagination {
    /// Validates the parameters.
    ///
    /// # Errors
    /// `INVALID_REQUEST` naming `limit`, `offset` or `page_token`.
    fn spec(self) -> Result<PageSpec, ApiError> {
        let limit = match self.limit {
            None => i64::from(HISTORY_LIMIT_DEFAULT),
            Some(n) if (1..=i64::from(HISTORY_LIMIT_MAX)).contains(&n) => n,
            Some(_) => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("must be between 1 and {HISTORY_LIMIT_MAX}"),
                ));
            }
        };
        Pagination {
            limit: Some(limit),
            page_token: self.page_token,
            offset: self.offset,
        }
        .spec()
    }
}

/// A rating of an answer.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rating {
    /// A good answer.
    Positive,
    /// A bad answer.
    Negative,
    /// Withdraws a rating.
    None,
}

/// Feedback on an answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// The rating.
    pub rating: Rating,
    /// Free text, at most 2 000 characters.
    pub comment: Option<String>,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_spaces))
        .routes(routes!(list_conversations))
        .routes(routes!(list_messages))
        .routes(routes!(delete_conversation))
        .routes(routes!(ask))
        .routes(routes!(result))
        .routes(routes!(feedback))
}

/// The Genie spaces the caller may use.
#[utoipa::path(get, path = "/api/genie/spaces", tag = "genie",
    security(("user_token" = [])), params(Pagination), responses(
    (status = 200, body = ItemsPage<GenieSpaceItem>),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_spaces(
    State(app): State<AppState>,
    caller: Caller,
    spec: PageSpec,
) -> Result<Json<ItemsPage<GenieSpaceItem>>, ApiError> {
    let workspace = caller.workspace(&app);
    let (items, next) = page_upstream(&spec, |token, limit| {
        let workspace = &workspace;
        async move {
            let page = workspace
                .list_genie_spaces(&upstream_page(token, limit))
                .await?;
            Ok::<_, dbapp_databricks::DatabricksError>((page.items, page.next_page_token))
        }
    })
    .await
    .map_err(|e| caller.upstream_error(&app, e, ErrorCode::GenieSpaceNotFound))?;
    Ok(Json(ItemsPage {
        items: items
            .into_iter()
            .map(|s| GenieSpaceItem {
                space_id: s.space_id,
                title: s.title,
                description: s.description,
                warehouse_id: s.warehouse_id,
            })
            .collect(),
        next_page_token: next.map(|c| c.encode()),
    }))
}

/// The caller's own conversations in a space, newest first.
// Its operation id is not the function's name: `list_conversations` is the chat history's.
#[utoipa::path(get, path = "/api/genie/spaces/{space_id}/conversations", tag = "genie",
    operation_id = "list_genie_conversations",
    security(("user_token" = [])), params(("space_id" = String, Path), Pagination), responses(
    (status = 200, body = ItemsPage<GenieConversationItem>),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "PERMISSION_DENIED: the caller may not use the space"),
    (status = 404, body = ErrorBody, description = "GENIE_SPACE_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_conversations(
    State(app): State<AppState>,
    caller: Caller,
    space: Name<GenieSpace>,
    spec: PageSpec,
) -> Result<Json<ItemsPage<GenieConversationItem>>, ApiError> {
    let workspace = caller.workspace(&app);
    let (items, next) = page_upstream(&spec, |token, limit| {
        let (workspace, space) = (&workspace, &space);
        async move {
            // Only the caller's own: include_all would list everyone's to a space manager.
            let page = workspace
                .list_genie_conversations(space, false, &upstream_page(token, limit))
                .await?;
            Ok::<_, dbapp_databricks::DatabricksError>((page.items, page.next_page_token))
        }
    })
    .await
    .map_err(|e| caller.upstream_error(&app, e, ErrorCode::GenieSpaceNotFound))?;
    Ok(Json(ItemsPage {
        items: items
            .into_iter()
            .map(|c| GenieConversationItem {
                conversation_id: c.conversation_id,
                title: c.title,
                created_at: super::rfc3339_ms(c.created_timestamp),
            })
            .collect(),
        next_page_token: next.map(|c| c.encode()),
    }))
}

/// The caller's messages in one of their conversations, oldest first, each with Genie's answer
/// as the ask stream sends it (text, the SQL, the first rows of its result read as the caller,
/// suggested questions) or why it failed.
// Its operation id is not the function's name: `list_messages` would read as the chat's.
#[utoipa::path(get, path = "/api/genie/spaces/{space_id}/conversations/{conversation_id}/messages", tag = "genie",
    operation_id = "list_genie_messages",
    security(("user_token" = [])),
    params(("space_id" = String, Path), ("conversation_id" = String, Path), HistoryPagination),
    responses(
    (status = 200, body = ItemsPage<GenieAnswer>),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "PERMISSION_DENIED: the caller may not use the space"),
    (status = 404, body = ErrorBody, description = "GENIE_CONVERSATION_NOT_FOUND: no such conversation of the caller (another user's included) or no such space"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_messages(
    State(app): State<AppState>,
    caller: Caller,
    space: Name<GenieSpace>,
    conversation: Name<GenieConversation>,
    ApiQuery(paging): ApiQuery<HistoryPagination>,
) -> Result<Json<ItemsPage<GenieAnswer>>, ApiError> {
    let spec = paging.spec()?;
    let workspace = caller.workspace(&app);
    let (messages, next) = page_upstream(&spec, |token, limit| {
        let (workspace, space, conversation) = (&workspace, &space, &conversation);
        async move {
            let page = workspace
                .list_genie_messages(space, conversation, &upstream_page(token, limit))
                .await?;
            Ok::<_, dbapp_databricks::DatabricksError>((page.items, page.next_page_token))
        }
    })
    .await
    .map_err(|e| caller.upstream_error(&app, e, ErrorCode::GenieConversationNotFound))?;
    let (app, caller, workspace) = (&app, &caller, &workspace);
    let (space, conversation) = (&*space, &*conversation);
    let items = futures_util::stream::iter(messages)
        .map(|message| async move {
            let mut answer = answer_of(space, conversation, &message);
            answer.result = match first_rows(app, caller, workspace, &answer).await {
                Ok(result) => result,
                // An earlier answer whose rows cannot be read any more (the statement failed, or
                // the workspace no longer holds the result) is listed without them, so one lost
                // result does not hide the conversation; the result route runs the query again.
                // Auth, rate-limit and upstream failures still fail the page.
                Err(
                    e @ (ApiError::GenieMessageFailed { .. }
                    | ApiError::NotFound { .. }
                    | ApiError::InvalidRequest { .. }),
                ) => {
                    tracing::debug!(event = "genie.history_result_unreadable", message_id = %answer.message_id, error_code = e.code().as_str());
                    None
                }
                Err(e) => return Err(e),
            };
            Ok(answer)
        })
        .buffered(HISTORY_RESULT_FETCHES)
        .try_collect()
        .await?;
    Ok(Json(ItemsPage {
        items,
        next_page_token: next.map(|c| c.encode()),
    }))
}

/// Deletes one of the caller's conversations in a space, with its messages.
// Its operation id is not the function's name: `delete_conversation` is the chat history's.
#[utoipa::path(delete, path = "/api/genie/spaces/{space_id}/conversations/{conversation_id}", tag = "genie",
    operation_id = "delete_genie_conversation",
    security(("user_token" = [])),
    params(("space_id" = String, Path), ("conversation_id" = String, Path)),
    responses(
    (status = 204, description = "Deleted"),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "PERMISSION_DENIED: the caller may not use the space"),
    (status = 404, body = ErrorBody, description = "GENIE_CONVERSATION_NOT_FOUND: no such conversation of the caller (another user's included, and one already deleted) or no such space"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn delete_conversation(
    State(app): State<AppState>,
    caller: Caller,
    space: Name<GenieSpace>,
    conversation: Name<GenieConversation>,
) -> Result<StatusCode, ApiError> {
    caller
        .workspace(&app)
        .delete_genie_conversation(&space, &conversation)
        .await
        .map_err(|e| caller.upstream_error(&app, e, ErrorCode::GenieConversationNotFound))?;
    tracing::info!(event = "genie.conversation_deleted", space_id = %&*space, conversation_id = %&*conversation);
    Ok(StatusCode::NO_CONTENT)
}

/// Asks a space a question, as the caller, and streams Genie's progress and answer as
/// server-sent events.
#[utoipa::path(post, path = "/api/genie/spaces/{space_id}/messages", tag = "genie",
    security(("user_token" = [])), params(("space_id" = String, Path)), request_body = AskRequest,
    responses(
    (status = 200, content_type = "text/event-stream", body = super::sse::SseEvent,
        description = "`event: status` (`GenieStatusEvent`) at each status change, `: keep-alive` comments while waiting, then `event: message` (`GenieAnswer`) and `data: [DONE]`; or a last `event: error` with `data: {\"error\": <error envelope>}` (GENIE_MESSAGE_FAILED, UPSTREAM_TIMEOUT, …)"),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "PERMISSION_DENIED: the caller may not use the space"),
    (status = 404, body = ErrorBody, description = "GENIE_SPACE_NOT_FOUND, GENIE_CONVERSATION_NOT_FOUND"),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "RATE_LIMITED: the caller's invocation quota (a question is an invocation), or the workspace's rate limit"),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn ask(
    State(app): State<AppState>,
    caller: Caller,
    space: Name<GenieSpace>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let request: AskRequest = super::from_json_object("body", body)?;
    // A question makes Genie write and run SQL: it uses one of the caller's invocations.
    app.quotas.check_invocation(caller.user_id())?;
    let ids = start_message(
        &app,
        &caller,
        &space,
        &request.content,
        request.conversation_id.as_deref(),
    )
    .await?;
    let (statuses, receiver) = mpsc::unbounded_channel();
    let answer = Box::pin(answer(app.clone(), caller, ids.clone(), statuses));
    let progress = Progress {
        app: app.clone(),
        ids,
        answer: Some(answer),
        statuses: receiver,
        queued: VecDeque::new(),
        heartbeat: Duration::from_secs(app.settings.dbapp.chat_heartbeat_secs),
        correlation_id: current_correlation_id().as_str().to_owned(),
        outcome: None,
    };
    let events = futures_util::stream::unfold(progress, Progress::next);
    Ok(sse::event_stream(Body::from_stream(events)))
}

/// Asks `space` the question as the caller, in a new conversation or in `conversation_id`'s,
/// once (a repeat would ask Genie twice): the checks and the call of the ask route, shared with
/// the assistant's `ask_genie` tool. `space` is a checked space id.
pub(crate) async fn start_message(
    app: &AppState,
    caller: &Caller,
    space: &str,
    content: &str,
    conversation_id: Option<&str>,
) -> Result<Ids, ApiError> {
    let chars = content.chars().count();
    if content.trim().is_empty() || chars > MAX_QUESTION_CHARS {
        return Err(ApiError::invalid(
            "content",
            format!("must hold 1 to {MAX_QUESTION_CHARS} characters"),
        ));
    }
    if let Some(id) = conversation_id {
        validate_genie_id("conversation_id", id)?;
    }
    let workspace = caller.workspace(app);
    let (conversation_id, message_id) = match conversation_id {
        None => workspace
            .start_genie_conversation(space, content)
            .await
            .map(|s| (s.conversation_id, s.message_id))
            .map_err(|e| caller.upstream_error(app, e, ErrorCode::GenieSpaceNotFound))?,
        Some(conversation) => workspace
            .create_genie_message(space, conversation, content)
            .await
            .map(|m| (conversation.to_owned(), m.message_id))
            .map_err(|e| caller.upstream_error(app, e, ErrorCode::GenieConversationNotFound))?,
    };
    let ids = Ids {
        space_id: space.to_owned(),
        conversation_id,
        message_id,
    };
    tracing::info!(event = "genie.message_asked", space_id = %ids.space_id, conversation_id = %ids.conversation_id, message_id = %ids.message_id);
    Ok(ids)
}

/// Asks a space a question as the caller in a new conversation and waits for the answer, as
/// the ask route does but without the progress events: the assistant's `ask_genie` tool.
pub(crate) async fn ask_and_wait(
    app: &AppState,
    caller: &Caller,
    space_id: &str,
    question: &str,
) -> Result<GenieAnswer, ApiError> {
    validate_genie_id("space_id", space_id)?;
    let ids = start_message(app, caller, space_id, question, None).await?;
    // Nobody listens to the statuses: the sender's failures are ignored by `answer`.
    let (statuses, _) = mpsc::unbounded_channel();
    answer(app.clone(), caller.clone(), ids, statuses).await
}

/// The ids of one message.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    space_id: String,
    conversation_id: String,
    message_id: String,
}

type AnswerFuture = Pin<Box<dyn Future<Output = Result<GenieAnswer, ApiError>> + Send>>;

/// Waits for the message as the caller, reporting each status change on `statuses`, and puts
/// the answer together: texts, the query and the first page of its result.
async fn answer(
    app: AppState,
    caller: Caller,
    ids: Ids,
    statuses: mpsc::UnboundedSender<String>,
) -> Result<GenieAnswer, ApiError> {
    let workspace = caller.workspace(&app);
    let wait = GenieWait::with_deadline(Duration::from_secs(app.settings.dbapp.chat_timeout_secs));
    let message = workspace
        .wait_for_genie_message(
            &ids.space_id,
            &ids.conversation_id,
            &ids.message_id,
            &wait,
            |m| {
                // The receiver is gone only when the stream is, and then so is this future.
                let _ = statuses.send(m.status().to_string());
            },
        )
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::Timeout => ApiError::UpstreamTimeout(Some(e)),
            _ => caller.upstream_error(&app, e, ErrorCode::GenieConversationNotFound),
        })?;
    match message.status() {
        GenieMessageStatus::Completed | GenieMessageStatus::QueryResultExpired => {}
        _ => return Err(failed(&message)),
    }
    let mut answer = answer_of(&ids.space_id, &ids.conversation_id, &message);
    answer.result = first_rows(&app, &caller, &workspace, &answer).await?;
    Ok(answer)
}

/// A message as the client sees it, without its rows (see [`first_rows`]). The ids are the
/// route's, which the workspace's message may leave out.
fn answer_of(space_id: &str, conversation_id: &str, message: &GenieMessage) -> GenieAnswer {
    GenieAnswer {
        space_id: space_id.to_owned(),
        conversation_id: conversation_id.to_owned(),
        message_id: message.message_id.clone(),
        content: message.content.clone(),
        created_at: super::rfc3339_ms(message.created_timestamp),
        status: message.status().to_string(),
        text: message.texts().map(str::to_owned).collect(),
        query: query_of(message),
        result: None,
        suggested_questions: message
            .attachments
            .iter()
            .filter_map(|a| a.suggested_questions.as_ref())
            .flat_map(|s| s.questions.iter().cloned())
            .collect(),
        failure: message.error.as_ref().map(|e| GenieFailure {
            error_type: e.error_type.clone(),
            message: e
                .error
                .as_deref()
                .map(|text| text.chars().take(GENIE_ERROR_CHARS).collect()),
        }),
    }
}

/// The first [`STREAM_RESULT_ROWS`] rows of an answer's query, read as the caller: `None`
/// without a query or unless the message has `COMPLETED` (an expired result is run again only
/// by the result route).
///
/// # Errors
/// `GENIE_MESSAGE_FAILED` when the statement failed; the upstream mapping of the fetch, a 404
/// being `GENIE_CONVERSATION_NOT_FOUND`.
async fn first_rows(
    app: &AppState,
    caller: &Caller,
    workspace: &Workspace<'_>,
    answer: &GenieAnswer,
) -> Result<Option<GenieResult>, ApiError> {
    let Some(query) = &answer.query else {
        return Ok(None);
    };
    if answer.status != GenieMessageStatus::Completed.as_str() {
        return Ok(None);
    }
    let response = workspace
        .get_genie_query_result(
            &answer.space_id,
            &answer.conversation_id,
            &answer.message_id,
            &query.attachment_id,
        )
        .await
        .map_err(|e| caller.upstream_error(app, e, ErrorCode::GenieConversationNotFound))?;
    Ok(Some(result_page(response, STREAM_RESULT_ROWS)?))
}

/// The query attachment of a message, as sent to the client.
fn query_of(message: &GenieMessage) -> Option<GenieQuery> {
    let attachment = message.query_attachment()?;
    let query = attachment.query.as_ref()?;
    Some(GenieQuery {
        attachment_id: attachment.attachment_id.clone()?,
        query: query.query.clone(),
        title: query.title.clone(),
        description: query.description.clone(),
    })
}

/// `GENIE_MESSAGE_FAILED` for a message that ended without an answer.
fn failed(message: &GenieMessage) -> ApiError {
    let error = message.error.as_ref();
    ApiError::GenieMessageFailed {
        status: message.status().to_string(),
        error_type: error.and_then(|e| e.error_type.clone()),
        genie_error: error
            .and_then(|e| e.error.as_deref())
            .map(|text| text.chars().take(GENIE_ERROR_CHARS).collect()),
    }
}

/// A finished statement's first page; a failed statement is `GENIE_MESSAGE_FAILED`.
fn result_page(response: StatementResponse, limit: usize) -> Result<GenieResult, ApiError> {
    if response.status.state != "SUCCEEDED" {
        let error = response.status.error.as_ref();
        return Err(ApiError::GenieMessageFailed {
            status: response.status.state.clone(),
            error_type: error.and_then(|e| e.error_code.clone()),
            genie_error: error
                .and_then(|e| e.message.as_deref())
                .map(|text| text.chars().take(GENIE_ERROR_CHARS).collect()),
        });
    }
    let page = sql::first_page(response, limit);
    Ok(GenieResult {
        statement_id: page.statement_id,
        columns: page.columns,
        row_count: page.rows.len(),
        rows: page.rows,
        truncated: page.truncated,
        total_row_count: page.total_row_count,
    })
}

/// How a stream ended, for the log line and `genie_messages_total{outcome}`.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Completed,
    Failed,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Error => "error",
        }
    }
}

/// What woke the stream up.
enum Step {
    Status(String),
    Answered(Box<Result<GenieAnswer, ApiError>>),
    Idle,
}

/// The stream of one asked message: status events as the waiter reports them, heartbeats, then
/// the answer or the error.
struct Progress {
    app: AppState,
    ids: Ids,
    /// The waiter and what follows it; `None` once it has finished.
    answer: Option<AnswerFuture>,
    statuses: mpsc::UnboundedReceiver<String>,
    /// Events still to send once the answer is known.
    queued: VecDeque<Bytes>,
    heartbeat: Duration,
    correlation_id: String,
    /// Set when the last event is queued; `None` at drop means the client went away.
    outcome: Option<Outcome>,
}

impl Progress {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        if let Some(bytes) = self.queued.pop_front() {
            return Some((Ok(bytes), self));
        }
        let answer = self.answer.as_mut()?;
        let step = tokio::select! {
            biased;
            Some(status) = self.statuses.recv() => Step::Status(status),
            result = answer => Step::Answered(Box::new(result)),
            () = tokio::time::sleep(self.heartbeat) => Step::Idle,
        };
        let bytes = match step {
            Step::Status(status) => self.status_event(&status),
            Step::Idle => Bytes::from_static(sse::KEEP_ALIVE),
            Step::Answered(result) => {
                // Dropping the waiter drops its sender: every status it reported is queued.
                self.answer = None;
                while let Ok(status) = self.statuses.try_recv() {
                    let event = self.status_event(&status);
                    self.queued.push_back(event);
                }
                self.finish(*result);
                self.queued.pop_front()?
            }
        };
        Some((Ok(bytes), self))
    }

    fn status_event(&self, status: &str) -> Bytes {
        let event = GenieStatusEvent {
            conversation_id: self.ids.conversation_id.clone(),
            message_id: self.ids.message_id.clone(),
            status: status.to_owned(),
        };
        sse::named("status", &serde_json::to_string(&event).unwrap_or_default())
    }

    /// Queues the last events: the answer and `[DONE]`, or the error.
    fn finish(&mut self, result: Result<GenieAnswer, ApiError>) {
        let outcome = match result {
            Ok(answer) => match serde_json::to_string(&answer) {
                Ok(json) => {
                    self.queued.push_back(sse::named("message", &json));
                    self.queued.push_back(Bytes::from_static(sse::DONE));
                    Outcome::Completed
                }
                Err(e) => self.fail(&ApiError::internal(e)),
            },
            Err(error) => self.fail(&error),
        };
        self.outcome = Some(outcome);
    }

    fn fail(&mut self, error: &ApiError) -> Outcome {
        tracing::warn!(
            event = "genie.message_failed",
            space_id = %self.ids.space_id,
            message_id = %self.ids.message_id,
            error_code = error.code().as_str(),
            error = %crate::error::cause_chain(error),
        );
        self.queued
            .push_back(sse::error(error, &self.correlation_id, Some("error")));
        if error.code() == ErrorCode::GenieMessageFailed {
            Outcome::Failed
        } else {
            Outcome::Error
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let outcome = self.outcome.map_or("cancelled", Outcome::as_str);
        tracing::info!(
            event = "genie.stream_ended",
            space_id = %self.ids.space_id,
            message_id = %self.ids.message_id,
            outcome,
        );
        self.app
            .metrics
            .count(GENIE_MESSAGES_TOTAL, &[("outcome", outcome)], 1);
    }
}

/// A page of a query attachment's result, read as the caller. An expired result
/// (`QUERY_RESULT_EXPIRED`) is run again first (`execute-query`, once, as the caller).
#[utoipa::path(get, path = "/api/genie/spaces/{space_id}/conversations/{conversation_id}/messages/{message_id}/attachments/{attachment_id}/result", tag = "genie",
    security(("user_token" = [])),
    params(("space_id" = String, Path), ("conversation_id" = String, Path), ("message_id" = String, Path), ("attachment_id" = String, Path),
        ("limit" = Option<i64>, Query, description = "Rows, 1–1000 (default 100)", minimum = 1, maximum = 1000)),
    responses(
    (status = 200, body = GenieResult),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "GENIE_SPACE_NOT_FOUND, GENIE_CONVERSATION_NOT_FOUND (also: no query attachment with this id)"),
    (status = 409, body = ErrorBody, description = "GENIE_RESULT_NOT_READY (detail.status)"),
    (status = 429, body = ErrorBody),
    (status = 502, body = ErrorBody, description = "GENIE_MESSAGE_FAILED, UPSTREAM_ERROR"),
    (status = 504, body = ErrorBody, description = "UPSTREAM_TIMEOUT"),
))]
async fn result(
    State(app): State<AppState>,
    caller: Caller,
    space: Name<GenieSpace>,
    conversation: Name<GenieConversation>,
    message: Name<GenieMessageId>,
    attachment: Name<GenieAttachment>,
    limit: Limit,
) -> Result<Json<GenieResult>, ApiError> {
    let not_found = |e| caller.upstream_error(&app, e, ErrorCode::GenieConversationNotFound);
    let workspace = caller.workspace(&app);
    let found = workspace
        .get_genie_message(&space, &conversation, &message)
        .await
        .map_err(not_found)?;
    let has_query = found
        .attachments
        .iter()
        .any(|a| a.attachment_id.as_deref() == Some(&attachment) && a.query.is_some());
    if !has_query {
        return Err(ApiError::not_found(
            ErrorCode::GenieConversationNotFound,
            "The message has no query attachment with this id.",
        ));
    }
    let limit = usize::try_from(limit.get()).unwrap_or(usize::MAX);
    let ids = (&*space, &*conversation, &*message, &*attachment);
    let response = match found.status() {
        GenieMessageStatus::Completed => fetch_result(&workspace, ids).await.map_err(not_found)?,
        GenieMessageStatus::QueryResultExpired => {
            // Not retried: a repeat would run the query twice.
            let response = workspace
                .execute_genie_query(ids.0, ids.1, ids.2, ids.3)
                .await
                .map_err(not_found)?;
            let deadline = Duration::from_secs(app.settings.dbapp.statement_timeout_secs);
            settle(&workspace, ids, response, deadline)
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::Timeout => ApiError::UpstreamTimeout(Some(e)),
                    _ => not_found(e),
                })?
        }
        GenieMessageStatus::Failed | GenieMessageStatus::Cancelled => return Err(failed(&found)),
        other => {
            return Err(ApiError::GenieResultNotReady {
                status: other.to_string(),
            });
        }
    };
    Ok(Json(result_page(response, limit)?))
}

type AttachmentIds<'a> = (&'a str, &'a str, &'a str, &'a str);

async fn fetch_result(
    workspace: &Workspace<'_>,
    (space, conversation, message, attachment): AttachmentIds<'_>,
) -> Result<StatementResponse, dbapp_databricks::DatabricksError> {
    workspace
        .get_genie_query_result(space, conversation, message, attachment)
        .await
}

/// Polls a re-run query's result (GETs) until its statement has left `PENDING`/`RUNNING`, for
/// at most `deadline`.
async fn settle(
    workspace: &Workspace<'_>,
    ids: AttachmentIds<'_>,
    mut response: StatementResponse,
    deadline: Duration,
) -> Result<StatementResponse, dbapp_databricks::DatabricksError> {
    let until = tokio::time::Instant::now() + deadline;
    let mut delay = Duration::from_millis(100);
    while matches!(response.status.state.as_str(), "PENDING" | "RUNNING") {
        let now = tokio::time::Instant::now();
        if now >= until {
            return Err(dbapp_databricks::DatabricksError::new(
                ErrorKind::Timeout,
                format!("the re-run Genie query did not finish within {deadline:?}"),
            ));
        }
        tokio::time::sleep(delay.min(until - now)).await;
        delay = (delay * 2).min(Duration::from_secs(1));
        response = match fetch_result(workspace, ids).await {
            Ok(response) => response,
            // The message may still be on its way from EXECUTING_QUERY to COMPLETED.
            Err(e) if e.kind() == ErrorKind::BadRequest => continue,
            Err(e) => return Err(e),
        };
    }
    Ok(response)
}

/// Rates Genie's answer to a message, as the caller.
#[utoipa::path(post, path = "/api/genie/spaces/{space_id}/conversations/{conversation_id}/messages/{message_id}/feedback", tag = "genie",
    security(("user_token" = [])),
    params(("space_id" = String, Path), ("conversation_id" = String, Path), ("message_id" = String, Path)),
    request_body = FeedbackRequest,
    responses(
    (status = 204, description = "Recorded"),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "GENIE_SPACE_NOT_FOUND, GENIE_CONVERSATION_NOT_FOUND"),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn feedback(
    State(app): State<AppState>,
    caller: Caller,
    space: Name<GenieSpace>,
    conversation: Name<GenieConversation>,
    message: Name<GenieMessageId>,
    ApiJson(body): ApiJson<Value>,
) -> Result<StatusCode, ApiError> {
    let request: FeedbackRequest = super::from_json_object("body", body)?;
    if request
        .comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(ApiError::invalid(
            "comment",
            format!("must hold at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let rating = match request.rating {
        Rating::Positive => GenieFeedbackRating::Positive,
        Rating::Negative => GenieFeedbackRating::Negative,
        Rating::None => GenieFeedbackRating::None,
    };
    caller
        .workspace(&app)
        .genie_feedback(
            &space,
            &conversation,
            &message,
            rating,
            request.comment.as_deref(),
        )
        .await
        .map_err(|e| caller.upstream_error(&app, e, ErrorCode::GenieConversationNotFound))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_result_is_typed_from_its_manifest_and_cut_at_the_limit() {
        // Arrange
        let response: StatementResponse = serde_json::from_value(json!({
            "statement_id": "st",
            "status": {"state": "SUCCEEDED"},
            "manifest": {"schema": {"columns": [
                {"name": "id", "type_name": "LONG"}, {"name": "name", "type_name": "STRING"},
                {"name": "ok", "type_name": "BOOLEAN"}]}, "total_row_count": 3},
            "result": {"data_array": [["1", "a", "true"], ["2", null, "false"], ["3", "c", null]]}
        }))
        .unwrap();

        // Act
        let page = result_page(response, 2).unwrap();

        // Assert
        assert_eq!(
            page.rows,
            vec![
                vec![json!(1), json!("a"), json!(true)],
                vec![json!(2), Value::Null, json!(false)]
            ]
        );
        assert_eq!(page.row_count, 2);
        assert!(page.truncated);
        assert_eq!(page.total_row_count, Some(3));
        assert_eq!(page.columns[0].type_name.as_deref(), Some("LONG"));
    }

    #[test]
    fn a_failed_statement_is_genie_message_failed() {
        let response: StatementResponse = serde_json::from_value(json!({
            "statement_id": "st",
            "status": {"state": "FAILED", "error": {"error_code": "BAD_REQUEST", "message": "no"}}
        }))
        .unwrap();
        let error = result_page(response, 10).unwrap_err();
        assert_eq!(error.code(), ErrorCode::GenieMessageFailed);
    }
}
