//! The life of a Genie message (`shared/UPSTREAM-2.md` §1): its status clock, its attachments
//! and error, the conversations that hold messages, and the JSON shapes of both.
//!
//! Like a statement (`crate::sql`), a message is a function of the time with no task running in
//! the background. When it is created, the route decides its answer (a text, a failure, or a
//! query already evaluated as the asking user, which the fixture's immutability makes safe) and
//! this module lays out its statuses as a list of `(instant, status)` transitions, one
//! `genie_step_ms` apart:
//!
//! `SUBMITTED → FETCHING_METADATA → FILTERING_CONTEXT → ASKING_AI →` then
//! - a text answer: `COMPLETED`; a scripted message failure: `FAILED`;
//! - a query: `PENDING_WAREHOUSE` (only while the space's warehouse is still starting) `→
//!   EXECUTING_QUERY →` `COMPLETED`, or `FAILED` when the query failed; and, for a rule with
//!   `expire_after_ms`, `QUERY_RESULT_EXPIRED` that long after `COMPLETED`.
//!
//! `execute-query` drops the transitions still in the future and appends a fresh run from now
//! (`PENDING_WAREHOUSE`? `→ EXECUTING_QUERY → COMPLETED|FAILED`), with a new statement and no
//! expiry. Who may see what, and the HTTP side, live in `routes::genie`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::sql::{Statement, StatementState};
use crate::warehouse::later;

/// The most messages kept; past it the oldest conversations are forgotten, so a benchmark
/// cannot grow the store without bound.
const MESSAGE_CAPACITY: usize = 10_000;

/// `MessageStatus` of the API (the subset the emulator reaches; no `CANCELLED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Submitted,
    FetchingMetadata,
    FilteringContext,
    AskingAi,
    PendingWarehouse,
    ExecutingQuery,
    Completed,
    Failed,
    QueryResultExpired,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::FetchingMetadata => "FETCHING_METADATA",
            Self::FilteringContext => "FILTERING_CONTEXT",
            Self::AskingAi => "ASKING_AI",
            Self::PendingWarehouse => "PENDING_WAREHOUSE",
            Self::ExecutingQuery => "EXECUTING_QUERY",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::QueryResultExpired => "QUERY_RESULT_EXPIRED",
        }
    }

    /// Whether the message has stopped moving (until an `execute-query`).
    pub(crate) fn is_settled(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::QueryResultExpired
        )
    }
}

/// `TextAttachmentPurpose` of a text answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A scripted answer.
    Answer,
    /// What Genie says when no rule matches: a question back to the user.
    FollowUp,
}

/// One run of a query attachment's SQL.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// The statement, owned by the asking user; also in the statements map, so the statements
    /// API can read it while it is kept there.
    pub(crate) statement: Statement,
    /// When the message reaches `EXECUTING_QUERY` (later than asked when the warehouse starts).
    pub(crate) executing_at: Instant,
    /// The SQL error text when the query failed.
    pub(crate) failure: Option<String>,
}

/// A query attachment: the scripted SQL and its latest run.
#[derive(Debug, Clone)]
pub(crate) struct QueryAnswer {
    pub(crate) sql: String,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    /// The text shown beside the result once `COMPLETED`.
    pub(crate) text: Option<String>,
    pub(crate) expire_after: Option<Duration>,
    /// The rule scripts the query to fail (`query_fails`), on every run.
    pub(crate) scripted_failure: bool,
    pub(crate) run: Run,
}

/// What a message answers.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Text {
        content: String,
        purpose: Purpose,
    },
    /// A scripted message failure (`GENERIC_CHAT_COMPLETION_EXCEPTION`).
    Fails,
    Query(Box<QueryAnswer>),
}

/// A Genie message and its clock.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) id: String,
    pub(crate) space_id: String,
    pub(crate) conversation_id: String,
    pub(crate) content: String,
    /// The asker's numeric SCIM id (`user_id`).
    user_id: u64,
    created: Instant,
    /// Wall clock of `created`, in milliseconds since the epoch.
    created_ms: i64,
    step: Duration,
    /// Status changes in time order; the first is `SUBMITTED` at `created`.
    transitions: Vec<(Instant, Status)>,
    /// Ids of the query and text attachments (each used only when the answer has one).
    query_attachment_id: String,
    text_attachment_id: String,
    pub(crate) answer: Answer,
    feedback: Option<(String, Option<String>)>,
}

/// A new id: 32 lowercase hexadecimal characters, the shape of the real service's ids.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn wall_clock_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Message {
    /// A message asked at `now` whose statuses advance every `step`, answering `answer`. A query
    /// answer's run must start no earlier than [`Message::asked_at`] of the same `now`/`step`.
    pub(crate) fn new(
        space_id: &str,
        conversation_id: &str,
        content: String,
        user_id: u64,
        now: Instant,
        step: Duration,
        answer: Answer,
    ) -> Self {
        let mut transitions = vec![(now, Status::Submitted)];
        let phases = [
            Status::FetchingMetadata,
            Status::FilteringContext,
            Status::AskingAi,
        ];
        let mut at = now;
        for status in phases {
            at = later(at, step);
            transitions.push((at, status));
        }
        let mut message = Self {
            id: new_id(),
            space_id: space_id.to_owned(),
            conversation_id: conversation_id.to_owned(),
            content,
            user_id,
            created: now,
            created_ms: wall_clock_ms(),
            step,
            transitions,
            query_attachment_id: new_id(),
            text_attachment_id: new_id(),
            answer,
            feedback: None,
        };
        let asked = Self::asked_at(now, step);
        match &message.answer {
            Answer::Text { .. } => message.transitions.push((asked, Status::Completed)),
            Answer::Fails => message.transitions.push((asked, Status::Failed)),
            Answer::Query(query) => {
                let (run, expire) = (query.run.clone(), query.expire_after);
                message.push_run(asked, &run, expire);
            }
        }
        message
    }

    /// When a message created at `now` leaves `ASKING_AI`: where a query's run may start.
    pub(crate) fn asked_at(now: Instant, step: Duration) -> Instant {
        later(now, step.saturating_mul(4))
    }

    fn push_run(&mut self, from: Instant, run: &Run, expire: Option<Duration>) {
        if run.executing_at > from {
            self.transitions.push((from, Status::PendingWarehouse));
        }
        self.transitions
            .push((run.executing_at, Status::ExecutingQuery));
        let done = later(run.executing_at, self.step);
        if run.failure.is_some() {
            self.transitions.push((done, Status::Failed));
        } else {
            self.transitions.push((done, Status::Completed));
            if let Some(expire) = expire {
                self.transitions
                    .push((later(done, expire), Status::QueryResultExpired));
            }
        }
    }

    /// Replaces the query's run with `run`, started at `now` (`execute-query`); the fresh result
    /// does not expire. Returns `false` for a message without a query.
    pub(crate) fn rerun(&mut self, now: Instant, run: Run) -> bool {
        let Answer::Query(query) = &mut self.answer else {
            return false;
        };
        query.run = run.clone();
        self.transitions.retain(|(at, _)| *at <= now);
        self.push_run(now, &run, None);
        true
    }

    /// The status at `now`, and when it began.
    fn current(&self, now: Instant) -> (Instant, Status) {
        self.transitions
            .iter()
            .rev()
            .find(|(at, _)| *at <= now)
            .copied()
            .unwrap_or((self.created, Status::Submitted))
    }

    /// The status at `now`.
    pub(crate) fn status_at(&self, now: Instant) -> Status {
        self.current(now).1
    }

    /// The query answer, if the message has one.
    pub(crate) fn query(&self) -> Option<&QueryAnswer> {
        match &self.answer {
            Answer::Query(query) => Some(query),
            _ => None,
        }
    }

    /// Whether `id` is this message's query attachment.
    pub(crate) fn has_query_attachment(&self, id: &str) -> bool {
        self.query().is_some() && self.query_attachment_id == id
    }

    /// Records `POST …/feedback`.
    pub(crate) fn set_feedback(&mut self, rating: String, comment: Option<String>) {
        self.feedback = Some((rating, comment));
    }

    fn ms_at(&self, at: Instant) -> i64 {
        let elapsed = at.saturating_duration_since(self.created).as_millis();
        self.created_ms
            .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    /// The created timestamp, milliseconds since the epoch.
    pub(crate) fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// `GenieMessage` at `now`.
    pub(crate) fn to_json(&self, now: Instant) -> Value {
        let (since, status) = self.current(now);
        let mut body = Map::new();
        body.insert("id".into(), json!(self.id));
        body.insert("message_id".into(), json!(self.id));
        body.insert("space_id".into(), json!(self.space_id));
        body.insert("conversation_id".into(), json!(self.conversation_id));
        body.insert("content".into(), json!(self.content));
        body.insert("status".into(), json!(status.as_str()));
        body.insert("user_id".into(), json!(self.user_id));
        body.insert("created_timestamp".into(), json!(self.created_ms));
        body.insert("last_updated_timestamp".into(), json!(self.ms_at(since)));
        let attachments = self.attachments(now, status);
        if !attachments.is_empty() {
            body.insert("attachments".into(), Value::Array(attachments));
        }
        if status == Status::Failed {
            let (error, kind) = match &self.answer {
                Answer::Query(query) => (
                    query.run.failure.clone().unwrap_or_default(),
                    "SQL_EXECUTION_EXCEPTION",
                ),
                _ => (
                    "Genie could not answer this question: the chat completion failed.".to_owned(),
                    "GENERIC_CHAT_COMPLETION_EXCEPTION",
                ),
            };
            body.insert("error".into(), json!({"error": error, "type": kind}));
        }
        if let Some((rating, comment)) = &self.feedback {
            let mut feedback = json!({ "rating": rating });
            if let (Some(comment), Some(object)) = (comment, feedback.as_object_mut()) {
                object.insert("comment".into(), json!(comment));
            }
            body.insert("feedback".into(), feedback);
        }
        Value::Object(body)
    }

    /// The attachments visible in `status`: the query from `ASKING_AI`'s end on (its
    /// `statement_id` once executing, its result metadata once the result exists), the text
    /// once settled.
    fn attachments(&self, now: Instant, status: Status) -> Vec<Value> {
        let mut attachments = Vec::new();
        let text = |content: &str, purpose: Purpose| {
            let purpose = match purpose {
                Purpose::Answer => "TEXT_ATTACHMENT_PURPOSE_ANSWER",
                Purpose::FollowUp => "FOLLOW_UP_QUESTION",
            };
            json!({
                "attachment_id": self.text_attachment_id,
                "text": {"id": self.text_attachment_id, "content": content, "purpose": purpose},
            })
        };
        let answered = matches!(status, Status::Completed | Status::QueryResultExpired);
        match &self.answer {
            Answer::Text { content, purpose } if answered => {
                attachments.push(text(content, *purpose));
            }
            Answer::Query(query) if now >= Self::asked_at(self.created, self.step) => {
                let mut body = Map::new();
                body.insert("id".into(), json!(self.query_attachment_id));
                body.insert("query".into(), json!(query.sql));
                if let Some(title) = &query.title {
                    body.insert("title".into(), json!(title));
                }
                if let Some(description) = &query.description {
                    body.insert("description".into(), json!(description));
                }
                if now >= query.run.executing_at {
                    body.insert("statement_id".into(), json!(query.run.statement.id()));
                }
                let succeeded = query.run.statement.state_at(now) == StatementState::Succeeded;
                if let (true, Some((rows, truncated))) =
                    (succeeded, query.run.statement.result_summary())
                {
                    body.insert(
                        "query_result_metadata".into(),
                        json!({"row_count": rows, "is_truncated": truncated}),
                    );
                }
                attachments.push(json!({
                    "attachment_id": self.query_attachment_id,
                    "query": Value::Object(body),
                }));
                if let (true, Some(content)) = (answered, &query.text) {
                    attachments.push(text(content, Purpose::Answer));
                }
            }
            _ => {}
        }
        attachments
    }
}

/// A conversation: its owner and its messages in the order asked.
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub(crate) id: String,
    pub(crate) space_id: String,
    /// User name of whoever started it, the only principal that may use it.
    pub(crate) owner: String,
    user_id: u64,
    /// The first question, as the real service titles a conversation.
    title: String,
    created_ms: i64,
    seq: u64,
    pub(crate) messages: Vec<String>,
}

impl Conversation {
    /// `GenieConversation`, as start-conversation returns it.
    pub(crate) fn to_json(&self, last_updated_ms: i64) -> Value {
        json!({
            "id": self.id,
            "conversation_id": self.id,
            "space_id": self.space_id,
            "title": self.title,
            "user_id": self.user_id,
            "created_timestamp": self.created_ms,
            "last_updated_timestamp": last_updated_ms,
        })
    }

    /// `GenieConversationSummary`, as the list returns it.
    pub(crate) fn summary(&self) -> Value {
        json!({
            "conversation_id": self.id,
            "title": self.title,
            "created_timestamp": self.created_ms,
        })
    }
}

/// Every conversation and message, by id.
#[derive(Debug, Default)]
pub(crate) struct GenieStore {
    conversations: HashMap<String, Conversation>,
    messages: HashMap<String, Message>,
    next_seq: u64,
}

impl GenieStore {
    /// Starts a conversation in `space_id` for `owner` with `message` as its first message.
    pub(crate) fn start(&mut self, owner: &str, user_id: u64, message: Message) -> Conversation {
        self.make_room();
        self.next_seq += 1;
        let conversation = Conversation {
            id: message.conversation_id.clone(),
            space_id: message.space_id.clone(),
            owner: owner.to_owned(),
            user_id,
            title: message.content.clone(),
            created_ms: message.created_ms,
            seq: self.next_seq,
            messages: vec![message.id.clone()],
        };
        self.conversations
            .insert(conversation.id.clone(), conversation.clone());
        self.messages.insert(message.id.clone(), message);
        conversation
    }

    /// Adds `message` to its conversation; `false` when the conversation is gone.
    pub(crate) fn add(&mut self, message: Message) -> bool {
        self.make_room();
        let Some(conversation) = self.conversations.get_mut(&message.conversation_id) else {
            return false;
        };
        conversation.messages.push(message.id.clone());
        self.messages.insert(message.id.clone(), message);
        true
    }

    pub(crate) fn conversation(&self, id: &str) -> Option<&Conversation> {
        self.conversations.get(id)
    }

    pub(crate) fn message(&self, id: &str) -> Option<&Message> {
        self.messages.get(id)
    }

    pub(crate) fn message_mut(&mut self, id: &str) -> Option<&mut Message> {
        self.messages.get_mut(id)
    }

    /// The conversations of `space_id` that `include` admits, newest first.
    pub(crate) fn conversations_in(
        &self,
        space_id: &str,
        include: impl Fn(&Conversation) -> bool,
    ) -> Vec<&Conversation> {
        let mut list: Vec<&Conversation> = (self.conversations.values())
            .filter(|c| c.space_id == space_id && include(c))
            .collect();
        list.sort_by_key(|c| std::cmp::Reverse(c.seq));
        list
    }

    /// Deletes a conversation and its messages.
    pub(crate) fn delete_conversation(&mut self, id: &str) {
        if let Some(conversation) = self.conversations.remove(id) {
            for message in &conversation.messages {
                self.messages.remove(message);
            }
        }
    }

    /// Deletes one message from its conversation.
    pub(crate) fn delete_message(&mut self, id: &str) {
        if let Some(message) = self.messages.remove(id)
            && let Some(conversation) = self.conversations.get_mut(&message.conversation_id)
        {
            conversation.messages.retain(|m| m != id);
        }
    }

    /// Forgets the oldest conversations while the store is full.
    fn make_room(&mut self) {
        while self.messages.len() >= MESSAGE_CAPACITY {
            let Some(oldest) = (self.conversations.values())
                .min_by_key(|c| c.seq)
                .map(|c| c.id.clone())
            else {
                self.messages.clear();
                return;
            };
            self.delete_conversation(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{ColumnInfo, ResultSet, SqlError, Timing};
    use crate::state::Principal;

    const STEP: Duration = Duration::from_millis(100);

    fn run(at: Instant, fails: bool) -> Run {
        let outcome = if fails {
            Err(SqlError::insufficient_permissions(
                "main", "sales", "orders",
            ))
        } else {
            let column = ColumnInfo::new("n".into(), 0, "LONG".into(), "BIGINT".into(), None, None);
            Ok(ResultSet::new(
                vec![column],
                vec![vec![Some("1".into())]],
                false,
            ))
        };
        let failure = outcome.as_ref().err().map(ToString::to_string);
        let timing = Timing {
            pending: Duration::ZERO,
            running: STEP,
            chunk_rows: 10,
            warehouse_ready: at,
        };
        Run {
            statement: Statement::new("s".into(), &Principal::alice(), at, timing, outcome),
            executing_at: at,
            failure,
        }
    }

    fn query(run: Run, expire_after: Option<Duration>) -> Answer {
        Answer::Query(Box::new(QueryAnswer {
            sql: "SELECT 1".into(),
            title: None,
            description: None,
            text: Some("one".into()),
            expire_after,
            scripted_failure: false,
            run,
        }))
    }

    fn statuses(message: &Message, t0: Instant, until_ms: u64) -> Vec<&'static str> {
        let mut seen: Vec<&'static str> = Vec::new();
        for ms in 0..=until_ms {
            let status = message.status_at(t0 + Duration::from_millis(ms)).as_str();
            if seen.last() != Some(&status) {
                seen.push(status);
            }
        }
        seen
    }

    #[test]
    fn a_query_passes_every_status_and_waits_for_its_warehouse() {
        // Arrange
        let t0 = Instant::now();
        let asked = Message::asked_at(t0, STEP);
        let ready = asked + Duration::from_millis(250);

        // Act
        let message = Message::new(
            "s",
            "c",
            "q".into(),
            1,
            t0,
            STEP,
            query(run(ready, false), None),
        );

        // Assert
        assert_eq!(
            statuses(&message, t0, 1000),
            [
                "SUBMITTED",
                "FETCHING_METADATA",
                "FILTERING_CONTEXT",
                "ASKING_AI",
                "PENDING_WAREHOUSE",
                "EXECUTING_QUERY",
                "COMPLETED"
            ]
        );
        let done = message.to_json(t0 + Duration::from_secs(1));
        assert_eq!(done["attachments"][0]["query"]["statement_id"], "s");
        assert_eq!(
            done["attachments"][0]["query"]["query_result_metadata"],
            json!({"row_count": 1, "is_truncated": false})
        );
        assert_eq!(done["attachments"][1]["text"]["content"], "one");
        assert!(done.get("error").is_none());
    }

    #[test]
    fn a_failed_query_fails_the_message_and_an_expiry_is_cleared_by_a_rerun() {
        // Arrange
        let t0 = Instant::now();
        let asked = Message::asked_at(t0, STEP);
        let failed = Message::new(
            "s",
            "c",
            "q".into(),
            1,
            t0,
            STEP,
            query(run(asked, true), None),
        );
        let expire = Some(Duration::from_millis(50));
        let mut expiring = Message::new(
            "s",
            "c",
            "q".into(),
            1,
            t0,
            STEP,
            query(run(asked, false), expire),
        );
        let after = asked + Duration::from_millis(200);

        // Act
        let before_rerun = expiring.status_at(after);
        expiring.rerun(after, run(after, false));

        // Assert
        let body = failed.to_json(after);
        assert_eq!(body["status"], "FAILED");
        assert_eq!(body["error"]["type"], "SQL_EXECUTION_EXCEPTION");
        assert_eq!(before_rerun, Status::QueryResultExpired);
        assert_eq!(expiring.status_at(after), Status::ExecutingQuery);
        assert_eq!(
            expiring.status_at(after + Duration::from_secs(10)),
            Status::Completed
        );
    }
}
