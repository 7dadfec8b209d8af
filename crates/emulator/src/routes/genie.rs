//! Genie (`shared/UPSTREAM-2.md` §1): spaces, conversations, messages, feedback and query
//! results, under `/api/2.0/genie`.
//!
//! This module owns the HTTP side: who may use what, picking the fixture rule that answers a
//! question, running the rule's SQL through the statement engine as the asking user, and the
//! paging of the lists. The status clock, the attachments and the JSON of a message live in
//! `crate::genie`; the statement and its `StatementResponse` in `crate::sql` and
//! `routes::statements`, reused as they are.
//!
//! Access, as the emulator decides it (the real rules are not documented):
//!
//! | case | answer |
//! |---|---|
//! | unknown space id | `404 RESOURCE_DOES_NOT_EXIST` |
//! | a space whose `readers` do not admit the caller | `403 PERMISSION_DENIED` on every route of the space; absent from `GET /spaces` |
//! | another user's conversation or message, or one of another space | `404 RESOURCE_DOES_NOT_EXIST`, the same as an unknown id (as for statements: ids leak nothing) |
//! | `include_all=true` on the conversation list | every user's conversations for the space's managers (CAN_MANAGE: `managers`, else the `admins` group); `403` for anyone else |
//! | query result while the message is not `EXECUTING_QUERY`/`COMPLETED` | `400 INVALID_STATE` |
//! | `execute-query` before the message has settled (`COMPLETED`, `FAILED`, `QUERY_RESULT_EXPIRED`) | `400 INVALID_STATE` |
//!
//! The SQL of a matching rule is evaluated once, when the question is asked, as the asker and in
//! the `main.default` namespace (the fixture never changes while the emulator runs, so the
//! outcome is what it would be later); the clock reveals it at `EXECUTING_QUERY`. A space's
//! warehouse that is not running is started then, and the message waits in `PENDING_WAREHOUSE`
//! until it runs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::auth::Authenticated;
use crate::engine::{self, Context};
use crate::error::ApiError;
use crate::fixture::{GenieFault, GenieRule, GenieSpace, Settings, WarehouseState};
use crate::genie::{Answer, GenieStore, Message, Purpose, QueryAnswer, Run, Status, new_id};
use crate::routes::statements::statement_response;
use crate::routes::{JsonBody, QueryParams, page_of};
use crate::sql::{SqlError, Statement, Timing, insert_bounded};
use crate::state::{Emulator, Principal, lock};

const SPACE: &str = "/api/2.0/genie/spaces/{space_id}";
const CONVERSATION: &str = "/api/2.0/genie/spaces/{space_id}/conversations/{conversation_id}";
const MESSAGE: &str =
    "/api/2.0/genie/spaces/{space_id}/conversations/{conversation_id}/messages/{message_id}";

pub(super) fn router() -> Router<Emulator> {
    let route = |suffix: &str, base: &str| format!("{base}{suffix}");
    Router::new()
        .route("/api/2.0/genie/spaces", get(list_spaces))
        .route(SPACE, get(get_space))
        .route(
            &route("/start-conversation", SPACE),
            post(start_conversation),
        )
        .route(&route("/conversations", SPACE), get(list_conversations))
        .route(CONVERSATION, axum::routing::delete(delete_conversation))
        .route(
            &route("/messages", CONVERSATION),
            get(list_conversation_messages).post(create_message),
        )
        .route(
            MESSAGE,
            get(get_message).delete(delete_conversation_message),
        )
        .route(&route("/feedback", MESSAGE), post(send_message_feedback))
        .route(
            &route("/query-result", MESSAGE),
            get(get_message_query_result),
        )
        .route(
            &route("/query-result/{attachment_id}", MESSAGE),
            get(get_message_query_result_by_attachment),
        )
        .route(
            &route("/execute-query", MESSAGE),
            post(execute_message_query),
        )
        .route(
            &route("/attachments/{attachment_id}/query-result", MESSAGE),
            get(get_message_attachment_query_result),
        )
        .route(
            &route("/attachments/{attachment_id}/execute-query", MESSAGE),
            post(execute_message_attachment_query),
        )
}

// ---------------------------------------------------------------------------------------------
// Spaces
// ---------------------------------------------------------------------------------------------

/// The space `id` if `principal` may use it: `404` when unknown, `403` when not a reader.
fn usable_space<'a>(
    emulator: &'a Emulator,
    principal: &Principal,
    id: &str,
) -> Result<&'a GenieSpace, ApiError> {
    let space = (emulator.fixture.genie_spaces.iter())
        .find(|s| s.space_id == id)
        .ok_or_else(|| {
            ApiError::not_found(
                "RESOURCE_DOES_NOT_EXIST",
                format!("Genie space {id} does not exist."),
            )
        })?;
    if !principal.admitted_by(space.readers.as_ref()) {
        return Err(ApiError::permission_denied(format!(
            "User {} does not have CAN_RUN permission on Genie space {id}.",
            principal.user_name
        )));
    }
    Ok(space)
}

/// Whether `principal` holds CAN_MANAGE on `space`.
fn manages(space: &GenieSpace, principal: &Principal) -> bool {
    match &space.managers {
        Some(managers) => principal.admitted_by(Some(managers)),
        None => principal.groups.iter().any(|g| g == "admins"),
    }
}

/// `GenieSpace`; `serialized_space` only when asked for (never in lists).
fn space_json(space: &GenieSpace, serialized: bool) -> Value {
    let mut body = json!({
        "space_id": space.space_id,
        "title": space.title,
        "warehouse_id": space.warehouse_id,
    });
    if let Some(object) = body.as_object_mut() {
        if let Some(description) = &space.description {
            object.insert("description".into(), json!(description));
        }
        if serialized {
            let tables: Vec<Value> = (space.tables.iter())
                .map(|t| json!({ "identifier": t }))
                .collect();
            let document = json!({"version": 1, "data_sources": {"tables": tables}});
            object.insert("serialized_space".into(), json!(document.to_string()));
        }
    }
    body
}

/// A boolean query parameter, `true`/`false` in any case (the SDKs differ in spelling).
fn flag(text: Option<&str>) -> Result<bool, ApiError> {
    match text {
        None => Ok(false),
        Some(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Some(t) if t.eq_ignore_ascii_case("false") => Ok(false),
        Some(t) => Err(ApiError::bad_request(format!(
            "expected true or false, got '{t}'"
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    page_size: Option<i64>,
    page_token: Option<String>,
    include_all: Option<String>,
}

/// The spaces the caller may use, a page at a time.
async fn list_spaces(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let items = (emulator.fixture.genie_spaces.iter())
        .filter(|s| principal.admitted_by(s.readers.as_ref()))
        .map(|s| space_json(s, false))
        .collect();
    let settings = emulator.settings();
    let page = page_of(
        "spaces",
        items,
        query.page_size,
        query.page_token.as_deref(),
        &settings,
    )?;
    Ok(Json(page))
}

#[derive(Debug, Deserialize)]
struct GetSpaceQuery {
    include_serialized_space: Option<String>,
}

/// One space.
async fn get_space(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(space_id): Path<String>,
    QueryParams(query): QueryParams<GetSpaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let space = usable_space(&emulator, &principal, &space_id)?;
    let serialized = flag(query.include_serialized_space.as_deref())?;
    Ok(Json(space_json(space, serialized)))
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// The body of start-conversation and create-message.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AskRequest {
    content: Option<String>,
    /// Accepted and ignored: the emulator makes no visualizations.
    #[allow(dead_code)]
    enable_visualization: Option<bool>,
}

impl AskRequest {
    fn content(self) -> Result<String, ApiError> {
        self.content
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request("content is required"))
    }
}

/// The first rule whose `when_question_contains` is in `question`, ignoring case.
fn matching_rule<'a>(space: &'a GenieSpace, question: &str) -> Option<&'a GenieRule> {
    let question = question.to_lowercase();
    space.rules.iter().find(|r| {
        (r.when_question_contains.as_ref()).is_none_or(|n| question.contains(&n.to_lowercase()))
    })
}

fn internal(message: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)
}

/// The answer to `question`, asked at `now`; a query is evaluated here, as `principal`.
async fn answer(
    emulator: &Emulator,
    space: &GenieSpace,
    principal: &Arc<Principal>,
    question: &str,
    now: Instant,
    settings: &Settings,
) -> Result<Answer, ApiError> {
    let Some(rule) = matching_rule(space, question) else {
        let content = format!(
            "I could not answer that from the data in \"{}\". Could you rephrase the question, or \
             ask about {}?",
            space.title,
            space.tables.join(", ")
        );
        return Ok(Answer::Text {
            content,
            purpose: Purpose::FollowUp,
        });
    };
    if rule.fault == Some(GenieFault::MessageFails) {
        return Ok(Answer::Fails);
    }
    let Some(sql) = &rule.sql else {
        return Ok(Answer::Text {
            content: rule.text.clone().unwrap_or_default(),
            purpose: Purpose::Answer,
        });
    };
    let scripted_failure = rule.fault == Some(GenieFault::QueryFails);
    let step = Duration::from_millis(settings.genie_step_ms);
    let from = Message::asked_at(now, step);
    let run = run_query(
        emulator,
        space,
        principal,
        sql,
        scripted_failure,
        from,
        settings,
    )
    .await?;
    Ok(Answer::Query(Box::new(QueryAnswer {
        sql: sql.clone(),
        title: rule.title.clone(),
        description: rule.description.clone(),
        text: rule.text.clone(),
        expire_after: rule.expire_after_ms.map(Duration::from_millis),
        scripted_failure,
        run,
    })))
}

/// Evaluates `sql` as `principal` and makes the statement that reveals it from `from` on (or
/// once the space's warehouse, started now if needed, runs).
async fn run_query(
    emulator: &Emulator,
    space: &GenieSpace,
    principal: &Arc<Principal>,
    sql: &str,
    scripted_failure: bool,
    from: Instant,
    settings: &Settings,
) -> Result<Run, ApiError> {
    let outcome = if scripted_failure {
        Err(SqlError::new(
            "INTERNAL_ERROR",
            "XX000",
            "The query failed: a fault scripted by the Genie space's rule.",
        ))
    } else {
        // SQLite blocks while it evaluates, so the evaluation runs on a blocking thread.
        let (shared, caller, sql) = (emulator.clone(), Arc::clone(principal), sql.to_owned());
        tokio::task::spawn_blocking(move || {
            let context = Context {
                engine: &shared.engine,
                fixture: &shared.fixture,
                principal: &caller,
                catalog: engine::DEFAULT_CATALOG,
                schema: engine::DEFAULT_SCHEMA,
                parameters: &[],
            };
            engine::evaluate(&sql, &context, None)
        })
        .await
        .map_err(|_| internal("the query could not be evaluated"))?
    };
    let failure = outcome.as_ref().err().map(ToString::to_string);
    let warehouse = (emulator.fixture.warehouses.iter())
        .find(|w| w.id == space.warehouse_id)
        .ok_or_else(|| internal("the space's warehouse is missing"))?;
    let now = Instant::now();
    let ready = {
        let mut warehouses = lock(&emulator.warehouses);
        match warehouses.state_at(&warehouse.id, now) {
            // Running: no wait, even when `from` is already past (a zero step).
            Some(WarehouseState::Running) => from,
            _ => warehouses.start(warehouse, settings, now),
        }
    };
    let executing_at = from.max(ready);
    let timing = Timing {
        pending: Duration::ZERO,
        running: Duration::from_millis(settings.genie_step_ms),
        chunk_rows: settings.sql_chunk_rows,
        warehouse_ready: executing_at,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let statement = Statement::new(id, principal, executing_at, timing, outcome);
    insert_bounded(&mut lock(&emulator.statements), statement.clone());
    Ok(Run {
        statement,
        executing_at,
        failure,
    })
}

fn user_id(principal: &Principal) -> u64 {
    principal.id.parse().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Conversations and messages
// ---------------------------------------------------------------------------------------------

fn conversation_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "RESOURCE_DOES_NOT_EXIST",
        format!("Conversation {id} does not exist."),
    )
}

fn message_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "RESOURCE_DOES_NOT_EXIST",
        format!("Message {id} does not exist."),
    )
}

/// Checks that conversation `id` of `space_id` belongs to `principal`; a 404 otherwise.
fn check_conversation(
    store: &GenieStore,
    principal: &Principal,
    space_id: &str,
    id: &str,
) -> Result<(), ApiError> {
    store
        .conversation(id)
        .filter(|c| c.space_id == space_id && c.owner == principal.user_name)
        .map(|_| ())
        .ok_or_else(|| conversation_not_found(id))
}

/// Checks that message `id` is in the caller's conversation `conversation_id` of `space_id`.
fn check_message(
    store: &GenieStore,
    principal: &Principal,
    (space_id, conversation_id, id): (&str, &str, &str),
) -> Result<(), ApiError> {
    check_conversation(store, principal, space_id, conversation_id)?;
    store
        .message(id)
        .filter(|m| m.conversation_id == conversation_id)
        .map(|_| ())
        .ok_or_else(|| message_not_found(id))
}

/// Asks the first question of a new conversation.
async fn start_conversation(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(space_id): Path<String>,
    JsonBody(request): JsonBody<AskRequest>,
) -> Result<Json<Value>, ApiError> {
    let space = usable_space(&emulator, &principal, &space_id)?;
    let content = request.content()?;
    let settings = emulator.settings();
    let now = Instant::now();
    let answer = answer(&emulator, space, &principal, &content, now, &settings).await?;
    let step = Duration::from_millis(settings.genie_step_ms);
    let user = user_id(&principal);
    let message = Message::new(&space_id, &new_id(), content, user, now, step, answer);
    let message_body = message.to_json(now);
    let created = message.created_ms();
    let conversation = lock(&emulator.genie).start(&principal.user_name, user, message);
    Ok(Json(json!({
        "conversation_id": conversation.id,
        "message_id": message_body["message_id"],
        "conversation": conversation.to_json(created),
        "message": message_body,
    })))
}

/// Asks a question in an existing conversation.
async fn create_message(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path((space_id, conversation_id)): Path<(String, String)>,
    JsonBody(request): JsonBody<AskRequest>,
) -> Result<Json<Value>, ApiError> {
    let space = usable_space(&emulator, &principal, &space_id)?;
    check_conversation(
        &lock(&emulator.genie),
        &principal,
        &space_id,
        &conversation_id,
    )?;
    let content = request.content()?;
    let settings = emulator.settings();
    let now = Instant::now();
    let answer = answer(&emulator, space, &principal, &content, now, &settings).await?;
    let step = Duration::from_millis(settings.genie_step_ms);
    let user = user_id(&principal);
    let message = Message::new(
        &space_id,
        &conversation_id,
        content,
        user,
        now,
        step,
        answer,
    );
    let body = message.to_json(now);
    // Deleted while the question was being answered: the message has nowhere to go.
    if !lock(&emulator.genie).add(message) {
        return Err(conversation_not_found(&conversation_id));
    }
    Ok(Json(body))
}

/// One message, as of now.
async fn get_message(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path((space_id, conversation_id, message_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    usable_space(&emulator, &principal, &space_id)?;
    let store = lock(&emulator.genie);
    let ids = (
        space_id.as_str(),
        conversation_id.as_str(),
        message_id.as_str(),
    );
    check_message(&store, &principal, ids)?;
    let message = store
        .message(&message_id)
        .ok_or_else(|| message_not_found(&message_id))?;
    Ok(Json(message.to_json(Instant::now())))
}

/// The caller's conversations in a space (everyone's with `include_all`, for managers), newest
/// first, a page at a time.
async fn list_conversations(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(space_id): Path<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let space = usable_space(&emulator, &principal, &space_id)?;
    let include_all = flag(query.include_all.as_deref())?;
    if include_all && !manages(space, &principal) {
        return Err(ApiError::permission_denied(format!(
            "include_all needs CAN_MANAGE permission on Genie space {space_id}."
        )));
    }
    let items = {
        let store = lock(&emulator.genie);
        (store.conversations_in(&space_id, |c| include_all || c.owner == principal.user_name))
            .into_iter()
            .map(crate::genie::Conversation::summary)
            .collect()
    };
    let settings = emulator.settings();
    let page = page_of(
        "conversations",
        items,
        query.page_size,
        query.page_token.as_deref(),
        &settings,
    )?;
    Ok(Json(page))
}

/// The messages of one of the caller's conversations, in the order asked, a page at a time.
async fn list_conversation_messages(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path((space_id, conversation_id)): Path<(String, String)>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    usable_space(&emulator, &principal, &space_id)?;
    let now = Instant::now();
    let items = {
        let store = lock(&emulator.genie);
        check_conversation(&store, &principal, &space_id, &conversation_id)?;
        (store.conversation(&conversation_id).into_iter())
            .flat_map(|c| c.messages.iter())
            .filter_map(|id| store.message(id))
            .map(|m| m.to_json(now))
            .collect()
    };
    let settings = emulator.settings();
    let page = page_of(
        "messages",
        items,
        query.page_size,
        query.page_token.as_deref(),
        &settings,
    )?;
    Ok(Json(page))
}

/// Deletes one of the caller's conversations with its messages.
async fn delete_conversation(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path((space_id, conversation_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    usable_space(&emulator, &principal, &space_id)?;
    let mut store = lock(&emulator.genie);
    check_conversation(&store, &principal, &space_id, &conversation_id)?;
    store.delete_conversation(&conversation_id);
    Ok(Json(json!({})))
}

/// Deletes one message of the caller's conversation.
async fn delete_conversation_message(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path((space_id, conversation_id, message_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    usable_space(&emulator, &principal, &space_id)?;
    let mut store = lock(&emulator.genie);
    let ids = (
        space_id.as_str(),
        conversation_id.as_str(),
        message_id.as_str(),
    );
    check_message(&store, &principal, ids)?;
    store.delete_message(&message_id);
    Ok(Json(json!({})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FeedbackRequest {
    rating: Option<String>,
    comment: Option<String>,
}

/// Records the caller's rating of a message; the message shows it as `feedback`.
async fn send_message_feedback(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path((space_id, conversation_id, message_id)): Path<(String, String, String)>,
    JsonBody(request): JsonBody<FeedbackRequest>,
) -> Result<Json<Value>, ApiError> {
    usable_space(&emulator, &principal, &space_id)?;
    let rating = match request.rating.as_deref() {
        Some(r @ ("POSITIVE" | "NEGATIVE" | "NONE")) => r.to_owned(),
        other => {
            return Err(ApiError::bad_request(format!(
                "rating must be POSITIVE, NEGATIVE or NONE, got {other:?}"
            )));
        }
    };
    let mut store = lock(&emulator.genie);
    let ids = (
        space_id.as_str(),
        conversation_id.as_str(),
        message_id.as_str(),
    );
    check_message(&store, &principal, ids)?;
    if let Some(message) = store.message_mut(&message_id) {
        message.set_feedback(rating, request.comment);
    }
    Ok(Json(json!({})))
}

// ---------------------------------------------------------------------------------------------
// Query results
// ---------------------------------------------------------------------------------------------

type MessagePath = Path<(String, String, String)>;
type AttachmentPath = Path<(String, String, String, String)>;

/// The statement of the message's query attachment (`attachment` when named) and the message's
/// status now.
fn query_statement(
    emulator: &Emulator,
    principal: &Principal,
    ids: (&str, &str, &str),
    attachment: Option<&str>,
) -> Result<(Statement, Status), ApiError> {
    usable_space(emulator, principal, ids.0)?;
    let store = lock(&emulator.genie);
    check_message(&store, principal, ids)?;
    let message = store
        .message(ids.2)
        .ok_or_else(|| message_not_found(ids.2))?;
    let attached = attachment.is_none_or(|a| message.has_query_attachment(a));
    let query = message.query().filter(|_| attached).ok_or_else(|| {
        ApiError::not_found(
            "RESOURCE_DOES_NOT_EXIST",
            format!(
                "Message {} has no query attachment {}.",
                ids.2,
                attachment.unwrap_or_default()
            ),
        )
    })?;
    Ok((
        query.run.statement.clone(),
        message.status_at(Instant::now()),
    ))
}

/// `{statement_response}` of the message's query, while the message is `EXECUTING_QUERY` or
/// `COMPLETED`.
fn query_result(
    emulator: &Emulator,
    principal: &Principal,
    headers: &HeaderMap,
    ids: (&str, &str, &str),
    attachment: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let (statement, status) = query_statement(emulator, principal, ids, attachment)?;
    if !matches!(status, Status::ExecutingQuery | Status::Completed) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!(
                "Message {} is {}; its query result is available only while it is \
                 EXECUTING_QUERY or COMPLETED.",
                ids.2,
                status.as_str()
            ),
        ));
    }
    let response = statement_response(emulator, &statement, headers)?;
    Ok(Json(json!({ "statement_response": response })))
}

/// Runs the message's query again (for an expired result), from now.
async fn execute_query(
    emulator: &Emulator,
    principal: &Arc<Principal>,
    headers: &HeaderMap,
    ids: (&str, &str, &str),
    attachment: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let (_, status) = query_statement(emulator, principal, ids, attachment)?;
    if !status.is_settled() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!(
                "Message {} is {}; its query can run again once it has finished.",
                ids.2,
                status.as_str()
            ),
        ));
    }
    let (sql, scripted_failure) = {
        let store = lock(&emulator.genie);
        let query = store.message(ids.2).and_then(Message::query);
        let query = query.ok_or_else(|| message_not_found(ids.2))?;
        (query.sql.clone(), query.scripted_failure)
    };
    let space = usable_space(emulator, principal, ids.0)?;
    let settings = emulator.settings();
    let now = Instant::now();
    let run = run_query(
        emulator,
        space,
        principal,
        &sql,
        scripted_failure,
        now,
        &settings,
    )
    .await?;
    let statement = run.statement.clone();
    {
        let mut store = lock(&emulator.genie);
        let message = store
            .message_mut(ids.2)
            .ok_or_else(|| message_not_found(ids.2))?;
        message.rerun(now, run);
    }
    let response = statement_response(emulator, &statement, headers)?;
    Ok(Json(json!({ "statement_response": response })))
}

/// `GET …/attachments/{a}/query-result`.
async fn get_message_attachment_query_result(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    Path((space, conversation, message, attachment)): AttachmentPath,
) -> Result<Json<Value>, ApiError> {
    let ids = (space.as_str(), conversation.as_str(), message.as_str());
    query_result(&emulator, &principal, &headers, ids, Some(&attachment))
}

/// `GET …/query-result/{a}` (deprecated).
async fn get_message_query_result_by_attachment(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    Path((space, conversation, message, attachment)): AttachmentPath,
) -> Result<Json<Value>, ApiError> {
    let ids = (space.as_str(), conversation.as_str(), message.as_str());
    query_result(&emulator, &principal, &headers, ids, Some(&attachment))
}

/// `GET …/query-result` (deprecated): the message's query attachment.
async fn get_message_query_result(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    Path((space, conversation, message)): MessagePath,
) -> Result<Json<Value>, ApiError> {
    let ids = (space.as_str(), conversation.as_str(), message.as_str());
    query_result(&emulator, &principal, &headers, ids, None)
}

/// `POST …/attachments/{a}/execute-query`.
async fn execute_message_attachment_query(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    Path((space, conversation, message, attachment)): AttachmentPath,
) -> Result<Json<Value>, ApiError> {
    let ids = (space.as_str(), conversation.as_str(), message.as_str());
    execute_query(&emulator, &principal, &headers, ids, Some(&attachment)).await
}

/// `POST …/execute-query` (deprecated): the message's query attachment.
async fn execute_message_query(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    Path((space, conversation, message)): MessagePath,
) -> Result<Json<Value>, ApiError> {
    let ids = (space.as_str(), conversation.as_str(), message.as_str());
    execute_query(&emulator, &principal, &headers, ids, None).await
}
