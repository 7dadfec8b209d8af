//! Streaming chat (`POST /api/model-serving/endpoints/{name}/chat`) against the emulator's
//! streaming endpoints: events pass through as they arrive, heartbeats, cancellation, errors
//! before and during the stream, and the tool-call round trip.

use std::time::{Duration, Instant};

use dbapp_emulator::FaultRule;
use serde_json::{Value, json};

use crate::app::{ALICE, Options, assert_error, spawn_app, spawn_app_with};

const CHAT_UPSTREAM: &str = "/serving-endpoints/chat/invocations";

/// One piece of a stream as the client saw it, with when it arrived.
#[derive(Debug)]
struct Received {
    at: Instant,
    /// The `data` of an event, or `None` for a comment.
    data: Option<String>,
}

/// Reads the SSE body piece by piece, as a browser would, until it ends or `stop` says so.
async fn read_events(
    mut response: reqwest::Response,
    mut stop: impl FnMut(&[Received]) -> bool,
) -> (Vec<Received>, reqwest::Response) {
    let mut parser = dbapp_databricks::sse::SseParser::new();
    let mut received = Vec::new();
    let mut pending = String::new();
    while let Some(bytes) = response.chunk().await.expect("the stream reads") {
        let at = Instant::now();
        pending.push_str(std::str::from_utf8(&bytes).unwrap());
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            if block.starts_with(':') {
                received.push(Received { at, data: None });
            }
        }
        parser.feed(&bytes);
        while let Some(data) = parser.next_event() {
            received.push(Received {
                at,
                data: Some(data),
            });
        }
        if stop(&received) {
            break;
        }
    }
    (received, response)
}

fn data(received: &[Received]) -> Vec<&str> {
    received.iter().filter_map(|r| r.data.as_deref()).collect()
}

/// The text of the content deltas, in order.
fn text_of(events: &[&str]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

fn user(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn tokens_reach_the_client_as_the_endpoint_sends_them() {
    // Arrange: 150 ms between the endpoint's chunks.
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).chunk_latency(Duration::from_millis(150)))
        .unwrap();

    // Act
    let response = app
        .chat(ALICE, "chat", &user("one two three four five six"))
        .send()
        .await;
    let status = response.status();
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
    let (received, _) = read_events(response, |_| false).await;

    // Assert: the first chunk arrived long before the last, and the stream ended with [DONE].
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/event-stream");
    let events = data(&received);
    assert_eq!(events.last(), Some(&"[DONE]"), "{events:?}");
    assert!(
        text_of(&events).ends_with("one two three four five six"),
        "{events:?}"
    );
    let chunks: Vec<&Received> = received.iter().filter(|r| r.data.is_some()).collect();
    assert!(chunks.len() >= 4, "{events:?}");
    let spread = chunks.last().unwrap().at - chunks[0].at;
    let gaps = u32::try_from(chunks.len() - 1).unwrap();
    assert!(
        spread >= Duration::from_millis(150) * gaps * 9 / 10,
        "the chunks arrived together ({spread:?} for {gaps} gaps): the answer was buffered"
    );
    let usage: Value = serde_json::from_str(events[events.len() - 2]).unwrap();
    assert!(
        usage["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{usage}"
    );
}

#[tokio::test]
async fn a_silent_endpoint_gets_heartbeats_so_proxies_keep_the_stream() {
    // Arrange: a 1 s heartbeat and 2.5 s between chunks.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_CHAT_HEARTBEAT_SECS", "1")],
        ..Options::default()
    })
    .await;
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).chunk_latency(Duration::from_millis(2_500)))
        .unwrap();

    // Act: read until the second data event.
    let response = app.chat(ALICE, "chat", &user("hello there")).send().await;
    let (received, _) = read_events(response, |r| data(r).len() >= 2).await;

    // Assert: a comment came between the first and second events.
    let first = received.iter().position(|r| r.data.is_some()).unwrap();
    let second = received.iter().rposition(|r| r.data.is_some()).unwrap();
    assert!(
        received[first..second].iter().any(|r| r.data.is_none()),
        "{received:?}"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_abandons_the_generation_at_once() {
    // Arrange: a long answer, 200 ms per chunk.
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).chunk_latency(Duration::from_millis(200)))
        .unwrap();
    let words = vec!["word"; 60].join(" ");

    // Act: read one event and hang up.
    let response = app.chat(ALICE, "chat", &user(&words)).send().await;
    let (received, response) = read_events(response, |r| !data(r).is_empty()).await;
    let hung_up = Instant::now();
    drop(response);
    let cancelled = wait_for_metric(
        &app,
        "chat_streams_total{endpoint=\"chat\",outcome=\"cancelled\"} 1",
    )
    .await;

    // Assert: the server noticed within about one chunk, long before the 12 s answer ends.
    assert_eq!(data(&received).len(), 1);
    assert!(cancelled, "the stream was never counted as cancelled");
    assert!(
        hung_up.elapsed() < Duration::from_secs(2),
        "{:?}",
        hung_up.elapsed()
    );
}

/// Polls `/metrics` (as the admin) until it contains `line`, for at most 5 s.
async fn wait_for_metric(app: &crate::app::TestApp, line: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if app.metrics(crate::app::ADMIN).text().await.contains(line) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn an_error_mid_stream_ends_it_with_the_api_envelope() {
    // Arrange: the endpoint fails after two chunks.
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).error_after_chunks(2))
        .unwrap();

    // Act
    let response = app.chat(ALICE, "chat", &user("a b c d e f g")).send().await;
    let correlation = response.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (received, _) = read_events(response, |_| false).await;

    // Assert: two chunks, then one error event, and no [DONE].
    let events = data(&received);
    assert_eq!(events.len(), 3, "{events:?}");
    let last: Value = serde_json::from_str(events[2]).unwrap();
    assert_eq!(last["error"]["error_code"], "MODEL_ERROR", "{last}");
    assert_eq!(last["error"]["correlation_id"], correlation.as_str());
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream"),
        "{last}"
    );
}

#[tokio::test]
async fn a_dropped_upstream_connection_ends_the_stream_with_an_error_event() {
    // Arrange
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).drop_after_chunks(2))
        .unwrap();

    // Act
    let response = app.chat(ALICE, "chat", &user("a b c d e f g")).send().await;
    let (received, _) = read_events(response, |_| false).await;

    // Assert
    let events = data(&received);
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last.get("error").is_some(), "{events:?}");
    assert!(!events.contains(&"[DONE]"));
    assert_eq!(
        app.emulator.requests(CHAT_UPSTREAM).len(),
        1,
        "a stream is never retried"
    );
}

#[tokio::test]
async fn a_tool_call_round_trip_streams_the_call_then_the_answer() {
    // Arrange
    let app = spawn_app().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let question = json!({"role": "user", "content": "What is the weather in Paris?"});

    // Act 1: the model calls the tool.
    let response = app
        .chat(
            ALICE,
            "chat",
            &json!({"messages": [question], "tools": tools}),
        )
        .send()
        .await;
    let (received, _) = read_events(response, |_| false).await;
    let chunks: Vec<Value> = data(&received)
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    let call_id = chunks
        .iter()
        .find_map(|c| {
            c.pointer("/choices/0/delta/tool_calls/0/id")
                .and_then(Value::as_str)
        })
        .expect("a tool call")
        .to_owned();
    let finish = chunks.iter().find_map(|c| {
        c.pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
    });

    // Act 2: the assistant's call (content null) and the tool's result go back.
    let follow_up = json!({"messages": [
        question,
        {"role": "assistant", "content": null, "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "18 °C and sunny"}
    ], "tools": tools});
    let response = app.chat(ALICE, "chat", &follow_up).send().await;
    let status = response.status();
    let (received, _) = read_events(response, |_| false).await;

    // Assert
    assert_eq!(finish, Some("tool_calls"));
    assert_eq!(status, 200);
    assert!(
        text_of(&data(&received)).contains("18 °C and sunny"),
        "{received:?}"
    );
}

#[tokio::test]
async fn errors_before_the_stream_are_ordinary_json_answers() {
    // Arrange
    let app = spawn_app().await;

    // Act / Assert
    assert_error(
        app.chat(ALICE, "nope", &user("hi")).send().await,
        404,
        "ENDPOINT_NOT_FOUND",
    )
    .await;
    assert_error(
        app.chat(ALICE, "not-ready", &user("hi")).send().await,
        409,
        "ENDPOINT_NOT_READY",
    )
    .await;
    let body = assert_error(
        app.chat(ALICE, "chat", &json!({"messages": []}))
            .send()
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["detail"]["field"], "messages");
    let body = assert_error(
        app.chat(
            ALICE,
            "chat",
            &json!({"messages": [{"role": "tool", "content": "x"}]}),
        )
        .send()
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["detail"]["field"], "messages[0]");
    assert!(app.emulator.requests(CHAT_UPSTREAM).is_empty());
}

/// The caller's conversation `id` once it holds `messages` messages (the answer is recorded
/// when its stream ends, off the request), for at most 10 s.
async fn conversation_with(
    app: &crate::app::TestApp,
    token: &str,
    id: &str,
    messages: usize,
) -> Value {
    // The conversation itself is written beside the stream, so it may not exist yet either.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app
            .get_json(&format!("/api/conversations/{id}"), Some(token))
            .await;
        let late = Instant::now() > deadline;
        if status == 404 && !late {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(status, 200, "{body}");
        if body["messages"].as_array().unwrap().len() >= messages || late {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_new_conversation_records_the_question_and_the_streamed_answer() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .chat(ALICE, "chat", &user("  tell me   something nice "))
        .send()
        .await;
    let id = response.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (received, _) = read_events(response, |_| false).await;
    let streamed = text_of(&data(&received));
    let conversation = conversation_with(&app, ALICE, &id, 2).await;

    // Assert
    assert_eq!(conversation["title"], "tell me something nice");
    assert_eq!(conversation["endpoint_name"], "chat");
    let messages = conversation["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{conversation}");
    assert_eq!(messages[0]["role"], "user");
    let answer = &messages[1];
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["content"], streamed.as_str());
    assert_eq!(answer["outcome"], "completed");
    assert_eq!(answer["finish_reason"], "stop");
    assert!(
        answer["completion_tokens"].as_i64().unwrap() > 0,
        "{answer}"
    );
    assert!(answer["first_token_ms"].as_i64().unwrap() <= answer["latency_ms"].as_i64().unwrap());
    assert_eq!(answer["endpoint_name"], "chat");
}

#[tokio::test]
async fn continuing_a_conversation_sends_its_stored_messages_first() {
    // Arrange: a first turn in which the model calls the weather tool.
    let app = spawn_app().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let first = app
        .chat(
            ALICE,
            "chat",
            &json!({"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": tools}),
        )
        .send()
        .await;
    let id = first.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    read_events(first, |_| false).await;
    let recorded = conversation_with(&app, ALICE, &id, 2).await;
    let call = recorded["messages"][1]["tool_calls"][0].clone();

    // Act: only the tool's result is sent; the question and the call come from the store.
    let follow_up = json!({"conversation_id": id, "tools": tools, "messages": [
        {"role": "tool", "tool_call_id": call["id"], "content": "21 °C"}
    ]});
    let response = app.chat(ALICE, "chat", &follow_up).send().await;
    let same_id = response.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (received, _) = read_events(response, |_| false).await;
    let conversation = conversation_with(&app, ALICE, &id, 4).await;

    // Assert
    assert_eq!(recorded["messages"][1]["content"], Value::Null);
    assert_eq!(recorded["messages"][1]["finish_reason"], "tool_calls");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(same_id, id);
    assert!(text_of(&data(&received)).contains("21 °C"), "{received:?}");
    let roles: Vec<&str> = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
}

#[tokio::test]
async fn failed_and_cancelled_turns_are_recorded_with_their_outcome() {
    // Arrange
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).error_after_chunks(2).times(1))
        .unwrap();

    // Act 1: a stream that fails after two chunks.
    let failed = app.chat(ALICE, "chat", &user("a b c d e")).send().await;
    let failed_id = failed.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    read_events(failed, |_| false).await;
    let failed = conversation_with(&app, ALICE, &failed_id, 2).await;

    // Act 2: a stream the client abandons after its second event.
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).chunk_latency(Duration::from_millis(200)))
        .unwrap();
    let cancelled = app
        .chat(ALICE, "chat", &user(&vec!["w"; 40].join(" ")))
        .send()
        .await;
    let cancelled_id = cancelled.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, response) = read_events(cancelled, |r| data(r).len() >= 2).await;
    drop(response);
    let cancelled = conversation_with(&app, ALICE, &cancelled_id, 2).await;

    // Assert
    let answer = &failed["messages"][1];
    assert_eq!(answer["outcome"], "failed", "{failed}");
    assert_eq!(answer["error_code"], "MODEL_ERROR");
    let answer = &cancelled["messages"][1];
    assert_eq!(answer["outcome"], "cancelled", "{cancelled}");
    assert!(!answer["content"].as_str().unwrap().is_empty(), "{answer}");
}

#[tokio::test]
async fn a_failure_before_the_stream_is_recorded_and_a_refused_request_leaves_nothing() {
    // Arrange: the endpoint refuses the stream outright.
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).status(500).times(1))
        .unwrap();

    // Act
    let refused = app.chat(ALICE, "chat", &user("hello")).send().await;
    let (_, listed) = app.get_json("/api/conversations", Some(ALICE)).await;
    let nul = app.chat(ALICE, "chat", &user("a\u{0}b")).send().await;
    let (_, after) = app.get_json("/api/conversations", Some(ALICE)).await;

    // Assert: the 502 turn is in its conversation; the refused NUL left no conversation.
    assert_error(refused, 502, "MODEL_ERROR").await;
    assert_eq!(listed["total_count"], 1, "{listed}");
    let id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let conversation = conversation_with(&app, ALICE, &id, 2).await;
    assert_eq!(conversation["messages"][1]["outcome"], "failed");
    assert_eq!(conversation["messages"][1]["error_code"], "MODEL_ERROR");
    assert_error(nul, 400, "INVALID_REQUEST").await;
    assert_eq!(after["total_count"], 1, "{after}");
}

#[tokio::test]
async fn another_users_conversation_cannot_be_continued() {
    // Arrange
    let app = spawn_app().await;
    let mine = app.chat(ALICE, "chat", &user("secret plans")).send().await;
    let id = mine.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    read_events(mine, |_| false).await;
    conversation_with(&app, ALICE, &id, 2).await;

    // Act
    let theirs = app
        .chat(
            crate::app::BOB,
            "chat",
            &json!({"conversation_id": id, "messages": [{"role": "user", "content": "and?"}]}),
        )
        .send()
        .await;

    // Assert: not found for bob, and alice's conversation unchanged.
    assert_error(theirs, 404, "CONVERSATION_NOT_FOUND").await;
    let conversation = conversation_with(&app, ALICE, &id, 2).await;
    assert_eq!(conversation["messages"].as_array().unwrap().len(), 2);
    assert_eq!(app.emulator.requests(CHAT_UPSTREAM).len(), 1);
}

#[tokio::test]
async fn without_a_store_chat_streams_unrecorded_and_cannot_continue() {
    // Arrange
    let app = spawn_app_with(Options {
        store: false,
        ..Options::default()
    })
    .await;

    // Act
    let response = app.chat(ALICE, "chat", &user("hi")).send().await;
    let header = response.headers().get("x-conversation-id").cloned();
    let (received, _) = read_events(response, |_| false).await;
    let continued = app
        .chat(
            ALICE,
            "chat",
            &json!({"conversation_id": "6f1c0d1e-0000-4000-8000-000000000000", "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await;

    // Assert
    assert!(header.is_none());
    assert_eq!(data(&received).last(), Some(&"[DONE]"));
    assert_error(continued, 503, "STORAGE_NOT_CONFIGURED").await;
}

#[tokio::test]
async fn chat_turns_count_against_the_invocation_quota() {
    // Arrange: one invocation a minute.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_QUOTA_INVOCATIONS_PER_MINUTE", "1")],
        ..Options::default()
    })
    .await;
    let first = app.chat(ALICE, "chat", &user("one")).send().await;
    read_events(first, |_| false).await;

    // Act
    let over = app.chat(ALICE, "chat", &user("two")).send().await;

    // Assert: refused before any call, and no second conversation.
    let body = assert_error(over, 429, "RATE_LIMITED").await;
    assert_eq!(body["detail"]["quota"], "invocations");
    assert_eq!(app.emulator.requests(CHAT_UPSTREAM).len(), 1);
    let (_, listed) = app.get_json("/api/conversations", Some(ALICE)).await;
    assert_eq!(listed["total_count"], 1, "{listed}");
}

#[tokio::test]
async fn a_turn_holds_a_recording_slot_until_its_answer_is_stored() {
    // Arrange: a slow answer.
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new(CHAT_UPSTREAM).chunk_latency(Duration::from_millis(100)))
        .unwrap();
    let max = dbapp_server::routes::chat::MAX_CHAT_RECORDINGS;
    let free = || app.state.chat_recordings.available_permits();

    // Act: read the first event, then the rest.
    let response = app.chat(ALICE, "chat", &user("a b c d")).send().await;
    let id = response.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, response) = read_events(response, |r| !data(r).is_empty()).await;
    let during = free();
    read_events(response, |_| false).await;
    conversation_with(&app, ALICE, &id, 2).await;

    // Assert: one slot taken while streaming, all free once the answer is stored (before
    // `[DONE]` went out).
    assert_eq!(during, max - 1);
    assert_eq!(free(), max);
}

#[tokio::test]
async fn the_last_event_goes_out_once_the_answer_is_stored() {
    // Arrange: the store's write lock is held elsewhere, so the turn's writes wait.
    let app = spawn_app().await;
    let max = dbapp_server::routes::chat::MAX_CHAT_RECORDINGS;
    let free = || app.state.chat_recordings.available_permits();
    let mut lock = crate::history::lock_store(&app).await;

    // Act: read up to the usage chunk (the endpoint is done), then let the store go.
    let response = app.chat(ALICE, "chat", &user("hold on")).send().await;
    let id = response.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let usage = |r: &[Received]| data(r).iter().any(|d| d.contains("\"choices\":[]"));
    let (before, response) = read_events(response, usage).await;
    let held = free();
    sqlx::Executor::execute(&mut lock, "COMMIT").await.unwrap();
    let (rest, _) = read_events(response, |_| false).await;
    let (status, conversation) = app
        .get_json(&format!("/api/conversations/{id}"), Some(ALICE))
        .await;

    // Assert: no [DONE] while the answer could not be stored; once it came, the answer is there
    // without waiting.
    assert!(!data(&before).contains(&"[DONE]"));
    assert_eq!(held, max - 1);
    assert_eq!(data(&rest), ["[DONE]"]);
    assert_eq!(status, 200, "{conversation}");
    assert_eq!(conversation["messages"].as_array().unwrap().len(), 2);
    assert_eq!(conversation["messages"][1]["outcome"], "completed");
}
