//! Genie (`shared/UPSTREAM-2.md` §1): spaces, conversations, messages, their attachments and
//! query results, feedback, and [`Workspace::wait_for_genie_message`], the waiter that polls a
//! message until Genie has answered.
//!
//! The module owns the Genie wire types and the waiter's schedule. Statement results are the
//! SQL module's [`StatementResponse`]; HTTP retries are [`crate::http`]'s: every poll is an
//! ordinary GET, retried by the crate's bounded policy, while the waiter itself never repeats a
//! message that `FAILED`. Ids become URL path segments only through `id_segment`, so a crafted id
//! (`..`, `a/b`, `x?y`) cannot change which path is called.
//!
//! Unknown values are tolerated, not refused: a status added later is
//! [`GenieMessageStatus::Other`], an attachment kind added later leaves every known field `None`,
//! and `"query": null` reads as no query.
//!
//! **Terminal statuses** for the waiter: `COMPLETED`, `FAILED`, `CANCELLED` and
//! `QUERY_RESULT_EXPIRED` (as databricks-ai-bridge does). The Python SDK's
//! `wait_get_message_genie_completed` treats only `COMPLETED` and `FAILED` as terminal and polls a
//! cancelled or expired message until its 20-minute timeout. A cancelled message never completes,
//! and an expired one completes again only after [`Workspace::execute_genie_query`], which
//! polling never sends, so the waiter stops at both.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;
use tokio::time::Instant;

use super::sql::StatementResponse;
use super::{Page, PageRequest, id_segment};
use crate::client::Workspace;
use crate::error::{DatabricksError, ErrorKind};
use crate::http::{Call, Operation, jittered};

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const LIST_SPACES: Operation = Operation::new("genie", "list_spaces");
const GET_SPACE: Operation = Operation::new("genie", "get_space");
const START_CONVERSATION: Operation = Operation::new("genie", "start_conversation");
const CREATE_MESSAGE: Operation = Operation::new("genie", "create_message");
const GET_MESSAGE: Operation = Operation::new("genie", "get_message");
const LIST_CONVERSATIONS: Operation = Operation::new("genie", "list_conversations");
const LIST_MESSAGES: Operation = Operation::new("genie", "list_messages");
const DELETE_CONVERSATION: Operation = Operation::new("genie", "delete_conversation");
const FEEDBACK: Operation = Operation::new("genie", "feedback");
const GET_QUERY_RESULT: Operation = Operation::new("genie", "get_query_result");
const EXECUTE_QUERY: Operation = Operation::new("genie", "execute_query");

/// Reads `null` as the type's default (an empty list), as absent fields are.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A Genie space: a curated set of tables that Genie answers questions about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieSpace {
    /// The space id (32 hex characters in practice).
    pub space_id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Description, shown to people and to agents that pick a space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The warehouse its queries run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<String>,
    /// Workspace folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_path: Option<String>,
    /// Version tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
}

/// A message's status. Values this crate does not know are kept in [`GenieMessageStatus::Other`],
/// so a status Databricks adds later never fails a response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GenieMessageStatus {
    /// `SUBMITTED`: accepted, not started.
    Submitted,
    /// `FETCHING_METADATA`.
    FetchingMetadata,
    /// `FILTERING_CONTEXT`.
    FilteringContext,
    /// `ASKING_AI`.
    AskingAi,
    /// `PENDING_WAREHOUSE`: the generated query waits for its warehouse.
    PendingWarehouse,
    /// `EXECUTING_QUERY`.
    ExecutingQuery,
    /// `COMPLETED` (terminal): the attachments hold the answer.
    Completed,
    /// `FAILED` (terminal): `error` says why.
    Failed,
    /// `CANCELLED` (terminal; two Ls, unlike SQL statements' `CANCELED`).
    Cancelled,
    /// `QUERY_RESULT_EXPIRED` (terminal): re-run the query with
    /// [`Workspace::execute_genie_query`].
    QueryResultExpired,
    /// Any other value, as sent.
    Other(String),
}

impl GenieMessageStatus {
    /// The wire value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::FetchingMetadata => "FETCHING_METADATA",
            Self::FilteringContext => "FILTERING_CONTEXT",
            Self::AskingAi => "ASKING_AI",
            Self::PendingWarehouse => "PENDING_WAREHOUSE",
            Self::ExecutingQuery => "EXECUTING_QUERY",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::QueryResultExpired => "QUERY_RESULT_EXPIRED",
            Self::Other(other) => other,
        }
    }

    /// Reads a wire value; never fails.
    #[must_use]
    pub fn parse(value: &str) -> Self {
        match value {
            "SUBMITTED" => Self::Submitted,
            "FETCHING_METADATA" => Self::FetchingMetadata,
            "FILTERING_CONTEXT" => Self::FilteringContext,
            "ASKING_AI" => Self::AskingAi,
            "PENDING_WAREHOUSE" => Self::PendingWarehouse,
            "EXECUTING_QUERY" => Self::ExecutingQuery,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            "QUERY_RESULT_EXPIRED" => Self::QueryResultExpired,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the message will not change any more: `COMPLETED`, `FAILED`, `CANCELLED`,
    /// `QUERY_RESULT_EXPIRED`. An unknown status is not terminal (the waiter's deadline ends it).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::QueryResultExpired
        )
    }
}

impl std::fmt::Display for GenieMessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GenieMessageStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

impl Serialize for GenieMessageStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A message: the user's question and, once answered, Genie's attachments.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieMessage {
    /// The message id.
    pub message_id: String,
    /// Its conversation.
    #[serde(default)]
    pub conversation_id: String,
    /// Its space.
    #[serde(default)]
    pub space_id: String,
    /// The question as asked.
    #[serde(default)]
    pub content: String,
    /// Where Genie stands; `None` when the workspace left it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GenieMessageStatus>,
    /// The answer's parts, in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachments: Vec<GenieAttachment>,
    /// Why it failed, when `FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<GenieError>,
    /// The asker's rating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<GenieFeedback>,
    /// Creation time, an integer timestamp (milliseconds in practice; UPSTREAM-2 leaves the unit
    /// unconfirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_timestamp: Option<i64>,
    /// Last change, same unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// The asker's numeric user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
}

impl GenieMessage {
    /// The status, `Other("")` when absent.
    #[must_use]
    pub fn status(&self) -> GenieMessageStatus {
        self.status
            .clone()
            .unwrap_or_else(|| GenieMessageStatus::Other(String::new()))
    }

    /// The attachment holding the generated query: the **last** one with a query, as
    /// databricks-ai-bridge picks it.
    #[must_use]
    pub fn query_attachment(&self) -> Option<&GenieAttachment> {
        self.attachments.iter().rev().find(|a| a.query.is_some())
    }

    /// The text answers, in order.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.attachments
            .iter()
            .filter_map(|a| a.text.as_ref().map(|t| t.content.as_str()))
    }
}

/// `error` of a failed message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieError {
    /// Message for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One of about 60 values, e.g. `WAREHOUSE_NOT_FOUND_EXCEPTION`, `SQL_EXECUTION_EXCEPTION`;
    /// kept as sent.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
}

/// `feedback` of a message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieFeedback {
    /// `POSITIVE`, `NEGATIVE` or `NONE`, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A rating for [`Workspace::genie_feedback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GenieFeedbackRating {
    /// `POSITIVE`.
    Positive,
    /// `NEGATIVE`.
    Negative,
    /// `NONE`: withdraws a rating.
    None,
}

impl GenieFeedbackRating {
    /// The wire value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positive => "POSITIVE",
            Self::Negative => "NEGATIVE",
            Self::None => "NONE",
        }
    }
}

/// One part of an answer. The workspace sends exactly one kind per attachment; a kind this
/// crate does not know leaves all four `None`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieAttachment {
    /// The id for [`Workspace::get_genie_query_result`] and [`Workspace::execute_genie_query`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_id: Option<String>,
    /// A text answer or follow-up question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<GenieTextAttachment>,
    /// A generated query (`"query": null` reads as `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<GenieQueryAttachment>,
    /// Questions Genie suggests asking next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_questions: Option<GenieSuggestedQuestions>,
    /// A chart of a query attachment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viz: Option<GenieVizAttachment>,
}

/// `text` of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieTextAttachment {
    /// Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The text (markdown).
    #[serde(default)]
    pub content: String,
    /// `TEXT_ATTACHMENT_PURPOSE_ANSWER` or `…_FOLLOW_UP_QUESTION`, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// `query` of an attachment.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieQueryAttachment {
    /// Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Short title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the query answers, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The SQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The statement that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_id: Option<String>,
    /// Parameters of the SQL.
    #[serde(default, deserialize_with = "null_as_default")]
    pub parameters: Vec<GenieQueryParameter>,
    /// Row count and truncation of the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_result_metadata: Option<GenieQueryResultMetadata>,
    /// Genie's reasoning steps.
    #[serde(default, deserialize_with = "null_as_default")]
    pub thoughts: Vec<GenieThought>,
}

/// A parameter of a generated query.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieQueryParameter {
    /// Name.
    #[serde(default)]
    pub keyword: String,
    /// SQL type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_type: Option<String>,
    /// Value, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `query_result_metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieQueryResultMetadata {
    /// Rows in the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    /// Whether a limit cut it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_truncated: Option<bool>,
}

/// One reasoning step.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieThought {
    /// Text.
    #[serde(default)]
    pub content: String,
    /// Kind, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_type: Option<String>,
}

/// `suggested_questions` of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieSuggestedQuestions {
    /// The questions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub questions: Vec<String>,
}

/// `viz` of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieVizAttachment {
    /// The query attachment it draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_attachment_id: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A conversation in a space's list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct GenieConversation {
    /// Id.
    pub conversation_id: String,
    /// Title (Genie names it after the first question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Creation time, as [`GenieMessage::created_timestamp`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_timestamp: Option<i64>,
    /// Agent kind, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
}

/// What [`Workspace::start_genie_conversation`] returns.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct GenieConversationStart {
    /// The new conversation.
    pub conversation_id: String,
    /// The first message, to wait for.
    pub message_id: String,
    /// The first message as created (usually `SUBMITTED`), when the workspace sends it.
    #[serde(default)]
    pub message: Option<GenieMessage>,
}

/// How [`Workspace::wait_for_genie_message`] polls. The defaults: first poll after 0.5 s, each
/// wait twice the last up to 5 s, plus a jitter of at most 10 %, for at most 5 minutes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GenieWait {
    /// Overall budget, from the call until the last poll; past it the waiter fails with
    /// [`ErrorKind::Timeout`].
    pub deadline: Duration,
    /// The first wait (0.5 s: AIB's fixed interval, so fast answers arrive as fast).
    pub first_delay: Duration,
    /// The longest wait (5 s).
    pub max_delay: Duration,
    /// Largest jitter, as a fraction of each wait (0.1).
    pub jitter: f32,
}

impl Default for GenieWait {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(300),
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
            jitter: 0.1,
        }
    }
}

impl GenieWait {
    /// The default schedule with another overall deadline.
    #[must_use]
    pub fn with_deadline(deadline: Duration) -> Self {
        Self {
            deadline,
            ..Self::default()
        }
    }

    /// The same deadline with other waits: `first` growing to `max` (tests, or a caller that
    /// knows its answers are quick).
    #[must_use]
    pub fn delays(mut self, first: Duration, max: Duration) -> Self {
        self.first_delay = first;
        self.max_delay = max.max(first);
        self
    }

    /// The wait before poll `n + 1` (n counts from 0), without jitter: `first_delay × 2ⁿ`,
    /// capped at `max_delay`.
    #[must_use]
    pub fn delay(&self, n: u32) -> Duration {
        self.first_delay
            .saturating_mul(2u32.saturating_pow(n.min(31)))
            .min(self.max_delay)
    }
}

#[derive(Deserialize)]
struct Spaces {
    #[serde(default, deserialize_with = "null_as_default")]
    spaces: Vec<GenieSpace>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Conversations {
    #[serde(default, deserialize_with = "null_as_default")]
    conversations: Vec<GenieConversation>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Messages {
    #[serde(default, deserialize_with = "null_as_default")]
    messages: Vec<GenieMessage>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct QueryResult {
    statement_response: StatementResponse,
}

/// Adds Genie's paging parameters (`page_size`, `page_token`).
fn paged<'c>(call: Call<'c>, page: &PageRequest) -> Call<'c> {
    let call = if page.max_results > 0 {
        call.query("page_size", page.max_results)
    } else {
        call
    };
    match &page.page_token {
        Some(token) => call.query("page_token", token),
        None => call,
    }
}

fn space_path(space_id: &str) -> Result<String, DatabricksError> {
    Ok(format!(
        "/api/2.0/genie/spaces/{}",
        id_segment("space_id", space_id)?
    ))
}

fn conversation_path(space_id: &str, conversation_id: &str) -> Result<String, DatabricksError> {
    Ok(format!(
        "{}/conversations/{}",
        space_path(space_id)?,
        id_segment("conversation_id", conversation_id)?
    ))
}

fn message_path(
    space_id: &str,
    conversation_id: &str,
    message_id: &str,
) -> Result<String, DatabricksError> {
    Ok(format!(
        "{}/messages/{}",
        conversation_path(space_id, conversation_id)?,
        id_segment("message_id", message_id)?
    ))
}

fn attachment_path(
    space_id: &str,
    conversation_id: &str,
    message_id: &str,
    attachment_id: &str,
) -> Result<String, DatabricksError> {
    Ok(format!(
        "{}/attachments/{}",
        message_path(space_id, conversation_id, message_id)?,
        id_segment("attachment_id", attachment_id)?
    ))
}

impl Workspace<'_> {
    /// One page of the Genie spaces this identity can see (`GET /api/2.0/genie/spaces`); the
    /// caller follows `next_page_token`.
    ///
    /// # Errors
    /// Auth kinds, [`ErrorKind::BadRequest`] for a bad page token, transport and 5xx kinds.
    #[tracing::instrument(skip_all)]
    pub async fn list_genie_spaces(
        &self,
        page: &PageRequest,
    ) -> Result<Page<GenieSpace>, DatabricksError> {
        let call = paged(
            self.call(LIST_SPACES, Method::GET, "/api/2.0/genie/spaces"),
            page,
        );
        let body: Spaces = self.get_json(call, "genie spaces").await?;
        Ok(Page {
            items: body.spaces,
            next_page_token: body.next_page_token,
        })
    }

    /// One space.
    ///
    /// # Errors
    /// [`ErrorKind::BadRequest`] for an id that is not one; [`ErrorKind::NotFound`] or
    /// [`ErrorKind::PermissionDenied`] for a space this identity cannot see; auth, transport and
    /// 5xx kinds.
    #[tracing::instrument(skip_all, fields(space_id = %space_id))]
    pub async fn get_genie_space(&self, space_id: &str) -> Result<GenieSpace, DatabricksError> {
        let path = space_path(space_id)?;
        self.get_json(self.call(GET_SPACE, Method::GET, &path), "genie space")
            .await
    }

    /// Asks the first question of a new conversation. Not retried: a repeat would ask twice.
    ///
    /// # Errors
    /// As [`Workspace::get_genie_space`].
    #[tracing::instrument(skip_all, fields(space_id = %space_id))]
    pub async fn start_genie_conversation(
        &self,
        space_id: &str,
        content: &str,
    ) -> Result<GenieConversationStart, DatabricksError> {
        let path = format!("{}/start-conversation", space_path(space_id)?);
        let call = self
            .call(START_CONVERSATION, Method::POST, &path)
            .json(json!({ "content": content }));
        self.get_json(call, "genie conversation start").await
    }

    /// Asks a question in an existing conversation. Not retried.
    ///
    /// # Errors
    /// As [`Workspace::get_genie_space`], with the conversation.
    #[tracing::instrument(skip_all, fields(space_id = %space_id, conversation_id = %conversation_id))]
    pub async fn create_genie_message(
        &self,
        space_id: &str,
        conversation_id: &str,
        content: &str,
    ) -> Result<GenieMessage, DatabricksError> {
        let path = format!("{}/messages", conversation_path(space_id, conversation_id)?);
        let call = self
            .call(CREATE_MESSAGE, Method::POST, &path)
            .json(json!({ "content": content }));
        self.get_json(call, "genie message").await
    }

    /// One message, with its status and attachments.
    ///
    /// # Errors
    /// As [`Workspace::get_genie_space`], with the conversation and message.
    #[tracing::instrument(skip_all, fields(space_id = %space_id, conversation_id = %conversation_id, message_id = %message_id))]
    pub async fn get_genie_message(
        &self,
        space_id: &str,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<GenieMessage, DatabricksError> {
        let path = message_path(space_id, conversation_id, message_id)?;
        self.get_json(self.call(GET_MESSAGE, Method::GET, &path), "genie message")
            .await
    }

    /// One page of a space's conversations: this identity's own, or everyone's with
    /// `include_all` (which needs `CAN_MANAGE` on the space).
    ///
    /// # Errors
    /// As [`Workspace::list_genie_spaces`], plus the space's kinds.
    #[tracing::instrument(skip_all, fields(space_id = %space_id))]
    pub async fn list_genie_conversations(
        &self,
        space_id: &str,
        include_all: bool,
        page: &PageRequest,
    ) -> Result<Page<GenieConversation>, DatabricksError> {
        let path = format!("{}/conversations", space_path(space_id)?);
        let mut call = paged(self.call(LIST_CONVERSATIONS, Method::GET, &path), page);
        if include_all {
            call = call.query("include_all", true);
        }
        let body: Conversations = self.get_json(call, "genie conversations").await?;
        Ok(Page {
            items: body.conversations,
            next_page_token: body.next_page_token,
        })
    }

    /// One page of a conversation's messages.
    ///
    /// # Errors
    /// As [`Workspace::list_genie_conversations`], plus the conversation's kinds.
    #[tracing::instrument(skip_all, fields(space_id = %space_id, conversation_id = %conversation_id))]
    pub async fn list_genie_messages(
        &self,
        space_id: &str,
        conversation_id: &str,
        page: &PageRequest,
    ) -> Result<Page<GenieMessage>, DatabricksError> {
        let path = format!("{}/messages", conversation_path(space_id, conversation_id)?);
        let call = paged(self.call(LIST_MESSAGES, Method::GET, &path), page);
        let body: Messages = self.get_json(call, "genie messages").await?;
        Ok(Page {
            items: body.messages,
            next_page_token: body.next_page_token,
        })
    }

    /// Deletes a conversation (a DELETE, so retried by the policy).
    ///
    /// # Errors
    /// As [`Workspace::get_genie_message`].
    #[tracing::instrument(skip_all, fields(space_id = %space_id, conversation_id = %conversation_id))]
    pub async fn delete_genie_conversation(
        &self,
        space_id: &str,
        conversation_id: &str,
    ) -> Result<(), DatabricksError> {
        let path = conversation_path(space_id, conversation_id)?;
        self.send(self.call(DELETE_CONVERSATION, Method::DELETE, &path))
            .await
            .map(|_| ())
    }

    /// Rates a message. Setting the same rating twice leaves the same rating, so this POST is
    /// retried like a GET.
    ///
    /// # Errors
    /// As [`Workspace::get_genie_message`].
    #[tracing::instrument(skip_all, fields(space_id = %space_id, conversation_id = %conversation_id, message_id = %message_id, rating = rating.as_str()))]
    pub async fn genie_feedback(
        &self,
        space_id: &str,
        conversation_id: &str,
        message_id: &str,
        rating: GenieFeedbackRating,
        comment: Option<&str>,
    ) -> Result<(), DatabricksError> {
        let path = format!(
            "{}/feedback",
            message_path(space_id, conversation_id, message_id)?
        );
        let mut body = json!({ "rating": rating.as_str() });
        if let Some(comment) = comment {
            body["comment"] = json!(comment);
        }
        let call = self
            .call(FEEDBACK, Method::POST, &path)
            .json(body)
            .idempotent(true);
        self.send(call).await.map(|_| ())
    }

    /// The result of a query attachment, as a SQL statement response (available while the
    /// message is `EXECUTING_QUERY` or `COMPLETED`).
    ///
    /// # Errors
    /// As [`Workspace::get_genie_message`], with the attachment.
    #[tracing::instrument(skip_all, fields(space_id = %space_id, conversation_id = %conversation_id, message_id = %message_id, attachment_id = %attachment_id))]
    pub async fn get_genie_query_result(
        &self,
        space_id: &str,
        conversation_id: &str,
        message_id: &str,
        attachment_id: &str,
    ) -> Result<StatementResponse, DatabricksError> {
        let path = format!(
            "{}/query-result",
            attachment_path(space_id, conversation_id, message_id, attachment_id)?
        );
        let body: QueryResult = self
            .get_json(
                self.call(GET_QUERY_RESULT, Method::GET, &path),
                "genie query result",
            )
            .await?;
        Ok(body.statement_response)
    }

    /// Runs a query attachment again (after `QUERY_RESULT_EXPIRED`). Not retried: a repeat
    /// would run the query twice.
    ///
    /// # Errors
    /// As [`Workspace::get_genie_query_result`].
    #[tracing::instrument(skip_all, fields(space_id = %space_id, conversation_id = %conversation_id, message_id = %message_id, attachment_id = %attachment_id))]
    pub async fn execute_genie_query(
        &self,
        space_id: &str,
        conversation_id: &str,
        message_id: &str,
        attachment_id: &str,
    ) -> Result<StatementResponse, DatabricksError> {
        let path = format!(
            "{}/execute-query",
            attachment_path(space_id, conversation_id, message_id, attachment_id)?
        );
        let call = self
            .call(EXECUTE_QUERY, Method::POST, &path)
            .json(json!({}));
        let body: QueryResult = self.get_json(call, "genie query result").await?;
        Ok(body.statement_response)
    }

    /// Polls a message until its status is terminal (`COMPLETED`, `FAILED`, `CANCELLED`,
    /// `QUERY_RESULT_EXPIRED`; see the module header) and returns it, calling `on_status` with
    /// the message each time its status changes (the first poll counts as a change), so a server
    /// can forward progress, e.g. as server-sent events.
    ///
    /// A `FAILED` message is returned, not an error, and is never asked again: check
    /// [`GenieMessage::status`] and [`GenieMessage::error`]. Each poll is an ordinary GET with
    /// the crate's bounded retry policy. Dropping the future stops polling.
    ///
    /// ```no_run
    /// use dbapp_databricks::api::{GenieMessageStatus, GenieWait};
    ///
    /// # async fn run(client: dbapp_databricks::Client, token: dbapp_databricks::UserToken) -> Result<(), dbapp_databricks::DatabricksError> {
    /// let genie = client.as_user(&token);
    /// let started = genie.start_genie_conversation("space", "Revenue by region?").await?;
    /// let answer = genie
    ///     .wait_for_genie_message("space", &started.conversation_id, &started.message_id,
    ///         &GenieWait::default(), |m| println!("{}", m.status()))
    ///     .await?;
    /// if answer.status() == GenieMessageStatus::Completed {
    ///     answer.texts().for_each(|text| println!("{text}"));
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when no terminal status came within `wait.deadline`; the errors of
    /// [`Workspace::get_genie_message`] (after the policy's retries).
    #[tracing::instrument(skip_all, fields(space_id = %space_id, conversation_id = %conversation_id, message_id = %message_id))]
    pub async fn wait_for_genie_message(
        &self,
        space_id: &str,
        conversation_id: &str,
        message_id: &str,
        wait: &GenieWait,
        on_status: impl FnMut(&GenieMessage) + Send,
    ) -> Result<GenieMessage, DatabricksError> {
        // Refuse bad ids before the first wait rather than at the first poll.
        message_path(space_id, conversation_id, message_id)?;
        poll_until_terminal(
            || self.get_genie_message(space_id, conversation_id, message_id),
            wait,
            on_status,
        )
        .await
    }
}

/// The waiter's loop, apart from HTTP so it can be tested with a scripted `fetch` and paused
/// time: fetch, report a changed status, stop on a terminal one, else sleep the next delay (cut
/// to the deadline). A fetch still running at the deadline is abandoned.
async fn poll_until_terminal<F, Fut>(
    mut fetch: F,
    wait: &GenieWait,
    mut on_status: impl FnMut(&GenieMessage),
) -> Result<GenieMessage, DatabricksError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<GenieMessage, DatabricksError>>,
{
    let deadline = Instant::now() + wait.deadline;
    let timed_out = |last: Option<&GenieMessageStatus>| {
        let last = last.map_or_else(|| "none yet".to_owned(), ToString::to_string);
        DatabricksError::new(
            ErrorKind::Timeout,
            format!(
                "the Genie message did not finish within {:?} (last status: {last})",
                wait.deadline
            ),
        )
    };
    let mut last: Option<GenieMessageStatus> = None;
    let mut n = 0u32;
    loop {
        let message = tokio::time::timeout_at(deadline, fetch())
            .await
            .map_err(|_| timed_out(last.as_ref()))??;
        let status = message.status();
        if last.as_ref() != Some(&status) {
            on_status(&message);
            last = Some(status.clone());
        }
        if status.is_terminal() {
            return Ok(message);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(last.as_ref()));
        }
        let delay = jittered(wait.delay(n), wait.jitter).min(deadline - now);
        tokio::time::sleep(delay).await;
        n = n.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const COMPLETED: &str = r#"{
        "id": "m1", "message_id": "m1", "conversation_id": "c1", "space_id": "s1",
        "content": "Revenue by region?", "status": "COMPLETED", "user_id": 42,
        "created_timestamp": 1733360000000, "last_updated_timestamp": 1733360004000,
        "attachments": [
            {"attachment_id": "a0", "text": {"id": "t0", "content": "Here is revenue by region.",
             "purpose": "TEXT_ATTACHMENT_PURPOSE_ANSWER"}},
            {"attachment_id": "a1", "query": {"id": "q1", "title": "Revenue by region",
             "description": "Sums revenue", "query": "SELECT region, sum(revenue) FROM t GROUP BY 1",
             "statement_id": "st1", "parameters": [{"keyword": "p", "sql_type": "STRING", "value": "x"}],
             "query_result_metadata": {"row_count": 3, "is_truncated": false},
             "thoughts": [{"content": "Group by region", "thought_type": "THOUGHT_TYPE_PLAN"}]}},
            {"attachment_id": "a2", "query": null, "text": null},
            {"attachment_id": "a3", "suggested_questions": {"questions": ["By month?"]}},
            {"attachment_id": "a4", "viz": {"query_attachment_id": "a1", "title": "Chart"}},
            {"attachment_id": "a5", "brand_new_kind": {"x": 1}}
        ],
        "feedback": {"rating": "POSITIVE"}
    }"#;

    fn message(status: &str) -> GenieMessage {
        serde_json::from_value(json!({"message_id": "m", "status": status})).unwrap()
    }

    #[test]
    fn a_real_shaped_completed_message_is_read() {
        // Act
        let message: GenieMessage = serde_json::from_str(COMPLETED).unwrap();

        // Assert
        assert_eq!(message.status(), GenieMessageStatus::Completed);
        assert_eq!(message.attachments.len(), 6);
        let query = message.query_attachment().unwrap();
        assert_eq!(query.attachment_id.as_deref(), Some("a1"));
        let sql = query.query.as_ref().unwrap();
        assert_eq!(sql.statement_id.as_deref(), Some("st1"));
        assert_eq!(sql.parameters[0].keyword, "p");
        assert_eq!(
            sql.query_result_metadata.as_ref().unwrap().row_count,
            Some(3)
        );
        assert_eq!(sql.thoughts.len(), 1);
        // `"query": null` is no query, and an unknown kind leaves every field empty.
        assert!(message.attachments[2].query.is_none() && message.attachments[2].text.is_none());
        let unknown = &message.attachments[5];
        assert!(unknown.text.is_none() && unknown.query.is_none() && unknown.viz.is_none());
        assert_eq!(
            message.attachments[3]
                .suggested_questions
                .as_ref()
                .unwrap()
                .questions,
            ["By month?"]
        );
        assert_eq!(
            message.attachments[4]
                .viz
                .as_ref()
                .unwrap()
                .query_attachment_id
                .as_deref(),
            Some("a1")
        );
        assert_eq!(
            message.texts().collect::<Vec<_>>(),
            ["Here is revenue by region."]
        );
        assert_eq!(
            message.feedback.unwrap().rating.as_deref(),
            Some("POSITIVE")
        );
    }

    #[test]
    fn failed_messages_carry_error_and_type_and_null_lists_read_as_empty() {
        let message: GenieMessage = serde_json::from_value(json!({
            "message_id": "m", "conversation_id": "c", "space_id": "s", "content": "?",
            "status": "FAILED", "attachments": null,
            "error": {"error": "Warehouse not found", "type": "WAREHOUSE_NOT_FOUND_EXCEPTION"}
        }))
        .unwrap();
        assert_eq!(message.status(), GenieMessageStatus::Failed);
        assert!(message.attachments.is_empty());
        let error = message.error.unwrap();
        assert_eq!(
            error.error_type.as_deref(),
            Some("WAREHOUSE_NOT_FOUND_EXCEPTION")
        );
        assert_eq!(error.error.as_deref(), Some("Warehouse not found"));
    }

    #[test]
    fn unknown_statuses_are_kept_and_are_not_terminal() {
        let message = message("THINKING_HARDER");
        assert_eq!(
            message.status(),
            GenieMessageStatus::Other("THINKING_HARDER".into())
        );
        assert!(!message.status().is_terminal());
        assert_eq!(
            serde_json::to_value(&message).unwrap()["status"],
            "THINKING_HARDER"
        );
        let absent: GenieMessage = serde_json::from_value(json!({"message_id": "m"})).unwrap();
        assert!(absent.status.is_none() && !absent.status().is_terminal());
    }

    #[test]
    fn terminal_statuses_are_the_four_final_ones() {
        let all = [
            "SUBMITTED",
            "FETCHING_METADATA",
            "FILTERING_CONTEXT",
            "ASKING_AI",
            "PENDING_WAREHOUSE",
            "EXECUTING_QUERY",
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "QUERY_RESULT_EXPIRED",
            "CANCELED",
        ];
        let terminal: Vec<&str> = all
            .into_iter()
            .filter(|s| GenieMessageStatus::parse(s).is_terminal())
            .collect();
        assert_eq!(
            terminal,
            ["COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"]
        );
        for s in all {
            assert_eq!(GenieMessageStatus::parse(s).as_str(), s);
        }
    }

    #[test]
    fn the_back_off_doubles_from_half_a_second_to_five() {
        let wait = GenieWait::default();
        let delays: Vec<u128> = (0..7).map(|n| wait.delay(n).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(wait.delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn spaces_and_conversation_starts_are_read() {
        let spaces: Spaces = serde_json::from_value(json!({
            "spaces": [{"space_id": "01ef", "title": "Sales", "description": "Sales data",
                        "warehouse_id": "w"}],
            "next_page_token": "p2"
        }))
        .unwrap();
        assert_eq!(spaces.spaces[0].description.as_deref(), Some("Sales data"));
        assert_eq!(spaces.next_page_token.as_deref(), Some("p2"));
        let start: GenieConversationStart = serde_json::from_value(json!({
            "conversation_id": "c", "message_id": "m",
            "conversation": {"id": "c"},
            "message": {"message_id": "m", "status": "SUBMITTED"}
        }))
        .unwrap();
        assert_eq!(
            start.message.unwrap().status(),
            GenieMessageStatus::Submitted
        );
    }

    /// A fetch that answers the scripted statuses in turn (repeating the last), counting calls.
    fn scripted(
        statuses: &'static [&'static str],
    ) -> (
        Arc<Mutex<usize>>,
        impl FnMut() -> std::future::Ready<Result<GenieMessage, DatabricksError>>,
    ) {
        let calls = Arc::new(Mutex::new(0));
        let counter = Arc::clone(&calls);
        let fetch = move || {
            let mut n = counter.lock().unwrap();
            let status = statuses[(*n).min(statuses.len() - 1)];
            *n += 1;
            std::future::ready(Ok(message(status)))
        };
        (calls, fetch)
    }

    #[tokio::test(start_paused = true)]
    async fn the_waiter_reports_each_change_once_and_stops_at_completed() {
        // Arrange
        let (calls, fetch) = scripted(&[
            "SUBMITTED",
            "SUBMITTED",
            "ASKING_AI",
            "EXECUTING_QUERY",
            "EXECUTING_QUERY",
            "COMPLETED",
        ]);
        let mut seen = Vec::new();
        let started = Instant::now();

        // Act
        let message = poll_until_terminal(fetch, &GenieWait::default(), |m| {
            seen.push(m.status().to_string());
        })
        .await
        .unwrap();

        // Assert
        assert_eq!(message.status(), GenieMessageStatus::Completed);
        assert_eq!(
            seen,
            ["SUBMITTED", "ASKING_AI", "EXECUTING_QUERY", "COMPLETED"]
        );
        assert_eq!(*calls.lock().unwrap(), 6);
        // 0.5 + 1 + 2 + 4 + 5 s, each with at most 10 % jitter.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(12_500) && elapsed <= Duration::from_millis(13_750),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_and_cancelled_messages_end_the_wait_at_once() {
        for terminal in [&["FAILED"][..], &["CANCELLED"], &["QUERY_RESULT_EXPIRED"]] {
            let statuses: &'static [&'static str] = terminal;
            let (calls, fetch) = scripted(statuses);
            let message = poll_until_terminal(fetch, &GenieWait::default(), |_| {})
                .await
                .unwrap();
            assert_eq!(message.status().as_str(), statuses[0]);
            // Never asked again: a FAILED message is an answer, not a transient error.
            assert_eq!(*calls.lock().unwrap(), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_the_wait_with_the_last_status() {
        // Arrange
        let (calls, fetch) = scripted(&["ASKING_AI"]);
        let wait = GenieWait::with_deadline(Duration::from_secs(10));
        let started = Instant::now();

        // Act
        let error = poll_until_terminal(fetch, &wait, |_| {}).await.unwrap_err();

        // Assert: polls at 0, 0.5, 1.5, 3.5, 7.5 and 10 s (jitter aside), none after.
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert!(error.to_string().contains("ASKING_AI"), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(*calls.lock().unwrap(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_that_hangs_past_the_deadline_is_abandoned() {
        let wait = GenieWait::with_deadline(Duration::from_secs(2));
        let error = poll_until_terminal(
            std::future::pending::<Result<GenieMessage, DatabricksError>>,
            &wait,
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert!(error.to_string().contains("none yet"), "{error}");
    }
}
