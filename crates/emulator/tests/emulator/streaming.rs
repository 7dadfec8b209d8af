//! Model Serving's OpenAI-compatible side: `stream: true` as server-sent events (framing, chunk
//! by chunk delivery, usage, tool calls), the scripted chat model across a tool round trip,
//! completions, embeddings, Responses, and stream faults (chunk latency, a cut connection, an
//! error event), through the typed control methods and the `/_emulator/` HTTP API.

use std::time::{Duration, Instant};

use dbapp_emulator::FaultRule;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::support::{ALICE, TestEmulator, send, spawn};

const CHAT: &str = "/serving-endpoints/chat/completions";
const WEATHER_TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]"#;

fn weather_tools() -> Value {
    serde_json::from_str(WEATHER_TOOLS).expect("valid JSON")
}

/// Parses an SSE body the strict way both clients of `shared/UPSTREAM-2.md` §2.2 accept it:
/// every event is exactly one `data: ` line followed by a blank line. Returns the data values.
fn sse_data(body: &str) -> Vec<String> {
    let events: Vec<&str> = body.split("\n\n").collect();
    let (last, events) = events.split_last().expect("at least one piece");
    assert_eq!(*last, "", "the body ends with a blank line: {body:?}");
    events
        .iter()
        .map(|event| {
            assert!(!event.contains('\n'), "one line per event: {event:?}");
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("only data lines: {event:?}"))
                .to_owned()
        })
        .collect()
}

/// The JSON chunks of a stream that must end with `[DONE]`.
fn chunks_until_done(body: &str) -> Vec<Value> {
    let data = sse_data(body);
    let (done, chunks) = data.split_last().expect("some events");
    assert_eq!(done, "[DONE]");
    chunks
        .iter()
        .map(|c| serde_json::from_str(c).expect("a JSON chunk"))
        .collect()
}

async fn stream_chat(te: &TestEmulator, body: Value) -> Response {
    te.request(Method::POST, CHAT, ALICE)
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn a_streamed_chat_is_sse_chunk_by_chunk_with_finish_reason_and_done() {
    // Arrange
    let te = spawn().await;

    // Act
    let response = stream_chat(
        &te,
        json!({"model": "chat", "stream": true,
               "messages": [{"role": "user", "content": "tell me a story"}]}),
    )
    .await;
    let content_type = response.headers()["content-type"].clone();
    let served = response.headers()["served-model-name"].clone();
    let body = response.text().await.unwrap();

    // Assert
    assert_eq!(content_type, "text/event-stream");
    assert_eq!(served, "chat-1");
    let chunks = chunks_until_done(&body);
    assert_eq!(chunks.len(), 6, "one chunk per word: {body}");
    assert_eq!(content_of(&chunks), "You said: tell me a story");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks[..5]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    assert!(
        chunks
            .iter()
            .all(|c| c["usage"].is_null() && c["id"] == chunks[0]["id"])
    );
}

#[tokio::test]
async fn the_usage_chunk_comes_before_done_only_when_asked() {
    // Arrange
    let te = spawn().await;
    let request = |include: bool| {
        json!({"model": "chat", "stream": true, "stream_options": {"include_usage": include},
               "messages": [{"role": "user", "content": "hi"}]})
    };

    // Act
    let with = stream_chat(&te, request(true)).await.text().await.unwrap();
    let without = stream_chat(&te, request(false)).await.text().await.unwrap();

    // Assert
    let with = chunks_until_done(&with);
    let usage = with.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4})
    );
    let without = chunks_until_done(&without);
    assert_eq!(without.len(), with.len() - 1);
    assert!(without.iter().all(|c| c["usage"].is_null()));
}

#[tokio::test]
async fn the_first_chunk_arrives_while_the_rest_of_the_stream_is_held() {
    // Arrange: every chunk after the first waits a minute, so the rest is not produced yet.
    let te = spawn().await;
    te.handle
        .inject_fault(FaultRule::new(CHAT).chunk_latency(Duration::from_secs(60)))
        .unwrap();
    let mut response = stream_chat(
        &te,
        json!({"model": "chat", "stream": true,
               "messages": [{"role": "user", "content": "one two three"}]}),
    )
    .await;

    // Act
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the first chunk is flushed before the held ones")
        .unwrap()
        .expect("a chunk");

    // Assert
    let first = String::from_utf8(first.to_vec()).unwrap();
    let data = sse_data(&first);
    let chunk: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(chunk["choices"][0]["delta"]["content"], "You");
    assert_eq!(te.handle.faults()[0].fired, 1);
}

#[tokio::test]
async fn the_fixture_chunk_latency_paces_every_chunk_after_the_first() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.serving_chunk_latency_ms = 40)
        .unwrap();

    // Act
    let started = Instant::now();
    let body = stream_chat(
        &te,
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "a b"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let elapsed = started.elapsed();

    // Assert: 4 chunks plus [DONE] leave four gaps.
    assert_eq!(sse_data(&body).len(), 5);
    assert!(elapsed >= Duration::from_millis(160), "{elapsed:?}");
}

#[tokio::test]
async fn a_tool_call_round_trip_calls_the_tool_then_answers_from_its_result() {
    // Arrange
    let te = spawn().await;
    let question = json!({"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]});

    // Act: first turn, then the second turn as ChatDatabricks sends it.
    let (first_status, first) = te
        .post(
            CHAT,
            ALICE,
            json!({"model": "chat", "messages": [question], "tools": weather_tools()}),
        )
        .await;
    let message = first["choices"][0]["message"].clone();
    let call_id = message["tool_calls"][0]["id"].as_str().unwrap().to_owned();
    let (second_status, second) = te
        .post(
            CHAT,
            ALICE,
            json!({"model": "chat", "tools": weather_tools(), "messages": [
                question,
                message,
                {"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"}]}),
        )
        .await;

    // Assert
    assert_eq!(first_status, StatusCode::OK, "{first}");
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    let function = &message["tool_calls"][0]["function"];
    assert_eq!(function["name"], "get_weather");
    let arguments: Value = serde_json::from_str(function["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "Paris", "unit": "celsius"}));
    assert_eq!(second_status, StatusCode::OK, "{second}");
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "The weather tool says: 18C and sunny"
    );
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn streamed_tool_calls_send_id_and_name_first_then_argument_deltas() {
    // Arrange
    let te = spawn().await;

    // Act
    let body = stream_chat(
        &te,
        json!({"model": "chat", "stream": true, "tools": weather_tools(),
               "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await
    .text()
    .await
    .unwrap();

    // Assert
    let chunks = chunks_until_done(&body);
    let calls: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["delta"]["tool_calls"][0])
        .collect();
    assert_eq!(calls[0]["index"], 0);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(
        calls[1..]
            .iter()
            .all(|c| c["index"] == 0 && c.get("id").is_none())
    );
    let arguments: String = calls
        .iter()
        .map(|c| c["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert!(calls.len() >= 3, "arguments arrive in fragments: {body}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn malformed_messages_are_refused_with_the_databricks_error_body() {
    // Arrange
    let te = spawn().await;
    let ask =
        |messages: Value| te.post(CHAT, ALICE, json!({"model": "chat", "messages": messages}));

    // Act
    let (missing_id, missing_id_body) = ask(json!([
        {"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]))
    .await;
    let (null_content, _) = ask(json!([{"role": "user", "content": null}])).await;
    let (empty_assistant, _) = ask(json!([
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": null}]))
    .await;

    // Assert
    assert_eq!(missing_id, StatusCode::BAD_REQUEST);
    assert_eq!(missing_id_body["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        missing_id_body["message"]
            .as_str()
            .unwrap()
            .contains("index 1: a tool message needs a string 'tool_call_id'"),
        "{missing_id_body}"
    );
    assert_eq!(null_content, StatusCode::BAD_REQUEST);
    assert_eq!(empty_assistant, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn invocations_stream_too_and_mlflow_style_bodies_work() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = send(
        te.request(Method::POST, "/serving-endpoints/chat/invocations", ALICE)
            .json(&json!({"messages": [{"role": "user", "content": "hi"}], "stream": true})),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    let chunks = chunks_until_done(body.as_str().unwrap());
    assert_eq!(content_of(&chunks), "You said: hi");
}

#[tokio::test]
async fn completions_stream_text_chunks_and_answer_whole() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, whole) = te
        .post(
            "/serving-endpoints/completions",
            ALICE,
            json!({"model": "complete", "prompt": "Once upon"}),
        )
        .await;
    let (_, streamed) = te
        .post(
            "/serving-endpoints/completions",
            ALICE,
            json!({"model": "complete", "prompt": "Once upon", "stream": true,
                   "stream_options": {"include_usage": true}}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["choices"][0]["text"], "Completion of: Once upon");
    assert_eq!(whole["usage"]["total_tokens"], 6);
    let chunks = chunks_until_done(streamed.as_str().unwrap());
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "Completion of: Once upon");
    assert_eq!(chunks.last().unwrap()["usage"], whole["usage"]);
}

#[tokio::test]
async fn embeddings_answer_floats_or_base64_and_ignore_stream() {
    // Arrange
    let te = spawn().await;
    let path = "/serving-endpoints/embeddings";

    // Act
    let (status, floats) = te
        .post(
            path,
            ALICE,
            json!({"model": "embed", "input": ["a", "b"], "stream": true}),
        )
        .await;
    let (_, base64) = te
        .post(
            path,
            ALICE,
            json!({"model": "embed", "input": "a", "encoding_format": "base64"}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{floats}");
    assert_eq!(floats["data"].as_array().unwrap().len(), 2);
    assert_eq!(floats["data"][1]["index"], 1);
    assert_eq!(floats["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_ne!(
        floats["data"][0]["embedding"],
        floats["data"][1]["embedding"]
    );
    // 8 float32 values are 32 bytes, 44 characters of base64.
    assert_eq!(base64["data"][0]["embedding"].as_str().unwrap().len(), 44);
}

#[tokio::test]
async fn a_route_refuses_an_endpoint_that_does_not_serve_its_protocol() {
    let te = spawn().await;
    let (status, body) = te
        .post(
            CHAT,
            ALICE,
            json!({"model": "embed", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn responses_answer_whole_or_as_numbered_events() {
    // Arrange
    let te = spawn().await;
    let path = "/serving-endpoints/responses";

    // Act
    let (status, whole) = te
        .post(path, ALICE, json!({"model": "chat", "input": "hello"}))
        .await;
    let (_, streamed) = te
        .post(
            path,
            ALICE,
            json!({"model": "chat", "input": [{"role": "user", "content": "hello"}], "stream": true}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["object"], "response");
    assert_eq!(whole["status"], "completed");
    assert_eq!(whole["output"][0]["content"][0]["text"], "You said: hello");
    let events = chunks_until_done(streamed.as_str().unwrap());
    assert_eq!(events[0]["type"], "response.created");
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "You said: hello");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(
        last["response"]["output"][0]["content"],
        whole["output"][0]["content"]
    );
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_stream_dropped_after_two_chunks_breaks_the_connection_mid_body() {
    // Arrange
    let te = spawn().await;
    te.handle
        .inject_fault(FaultRule::new(CHAT).drop_after_chunks(2).times(1))
        .unwrap();

    // Act
    let mut response = stream_chat(
        &te,
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "a b c"}]}),
    )
    .await;
    let mut received = String::new();
    let outcome = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => received.push_str(&String::from_utf8_lossy(&bytes)),
            other => break other,
        }
    };

    // Assert
    assert!(
        outcome.is_err(),
        "the body ends in an error, not a clean end"
    );
    let data = sse_data(&received);
    assert_eq!(data.len(), 2, "{received}");
    assert!(!data.contains(&"[DONE]".to_owned()));
}

#[tokio::test]
async fn an_error_after_chunks_sends_the_error_event_and_ends_the_stream() {
    // Arrange: the rule is added over HTTP, as the Python tests do.
    let te = spawn().await;
    let (status, _) = send(te.http.post(te.url("/_emulator/faults")).json(&json!({
        "path": CHAT, "error_after_chunks": 1, "error_code": "RESOURCE_EXHAUSTED",
        "message": "capacity gone"})))
    .await;

    // Act
    let body = stream_chat(
        &te,
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "a b c"}]}),
    )
    .await
    .text()
    .await
    .unwrap();

    // Assert
    assert_eq!(status, StatusCode::CREATED);
    let data = sse_data(&body);
    assert_eq!(data.len(), 2, "{body}");
    let error: Value = serde_json::from_str(&data[1]).unwrap();
    assert_eq!(
        error,
        json!({"error": {"message": "capacity gone", "code": "RESOURCE_EXHAUSTED"}})
    );
}

#[tokio::test]
async fn stream_faults_leave_answers_that_are_not_streamed_alone() {
    // Arrange
    let te = spawn().await;
    te.handle
        .inject_fault(FaultRule::new(CHAT).drop_after_chunks(0))
        .unwrap();

    // Act
    let (status, body) = te
        .post(
            CHAT,
            ALICE,
            json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["choices"][0]["message"]["content"], "You said: hi");
}
