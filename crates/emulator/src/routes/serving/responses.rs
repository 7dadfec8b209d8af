//! The Responses API of a `chat` endpoint (`POST /serving-endpoints/responses`, or an
//! invocation whose body has `input` and no `messages`; `shared/UPSTREAM-2.md` §2.5): its input
//! items reduced to a [`Conversation`], and the answer as a `response` object or as stream
//! events.
//!
//! Input: a string (one user message), or a list of items: messages (`role` with string content
//! or `input_text`/`output_text`/`text` parts), `function_call {call_id, name, arguments}` and
//! `function_call_output {call_id, output}`; `instructions` is a system message. Function tools
//! are `{"type": "function", "name": …}`. `max_output_tokens` cuts text as `max_tokens` does.
//!
//! Stream events carry `type` and an increasing `sequence_number`: `response.created`, then per
//! output item `response.output_item.added`, its `response.output_text.delta` (one word each) or
//! `response.function_call_arguments.delta` fragments, `response.output_item.done`; then
//! `response.completed` with the whole response, and `[DONE]` (OpenAI itself sends no `[DONE]`
//! here; both parsers stop at it, see `docs/emulator.md`).

use serde_json::{Map, Value, json};

use super::conversation::{Conversation, Reply, Role, Turn, callable_tools, fragments, pieces};
use super::openai::{Answer, DONE};
use crate::error::ApiError;
use crate::state::group_id;

/// Argument fragments per streamed function call.
const ARGUMENT_FRAGMENTS: usize = 3;

/// The conversation of a Responses request.
pub(super) fn conversation(body: &Map<String, Value>) -> Result<Conversation, ApiError> {
    let mut turns = Vec::new();
    match body.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => turns.push(Turn {
            role: Role::Other,
            text: text.clone(),
        }),
        Some(_) => return Err(ApiError::bad_request("'instructions' must be a string.")),
    }
    match body.get("input") {
        Some(Value::String(text)) => turns.push(Turn {
            role: Role::User,
            text: text.clone(),
        }),
        Some(Value::Array(items)) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                let turn = input_turn(item).map_err(|m| {
                    ApiError::bad_request(format!("Invalid input item at index {index}: {m}"))
                })?;
                turns.push(turn);
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "'input' must be a string or a non-empty list of items.",
            ));
        }
    }
    Conversation::new(turns, callable_tools(body, |tool| Some(tool))?)
}

fn input_turn(item: &Value) -> Result<Turn, String> {
    let text_of = |key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("'{key}' must be a string"))
    };
    match item.get("type").and_then(Value::as_str) {
        Some("function_call") => {
            text_of("call_id")?;
            text_of("name")?;
            Ok(Turn {
                role: Role::Other,
                text: text_of("arguments")?,
            })
        }
        Some("function_call_output") => {
            text_of("call_id")?;
            Ok(Turn {
                role: Role::Tool,
                text: text_of("output")?,
            })
        }
        None | Some("message") => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("user") => Role::User,
                Some("system" | "developer" | "assistant") => Role::Other,
                _ => return Err("'role' must be user, system, developer or assistant".into()),
            };
            let text = match item.get("content") {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|part| {
                        let kind = part.get("type").and_then(Value::as_str);
                        match (kind, part.get("text").and_then(Value::as_str)) {
                            (Some("input_text" | "output_text" | "text"), Some(text)) => Ok(text),
                            _ => Err("content parts must be input_text or output_text with a string 'text'".to_owned()),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(""),
                _ => return Err("'content' must be a string or a list of text parts".into()),
            };
            Ok(Turn { role, text })
        }
        Some(other) => Err(format!("unsupported item type '{other}'")),
    }
}

impl Answer<'_> {
    /// The output items of a reply, in their final (`completed`) state.
    fn output_items(&self, reply: &Reply) -> Vec<Value> {
        match reply {
            Reply::Text { text, .. } => vec![json!({
                "type": "message", "id": format!("msg_{}", self.id), "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            })],
            Reply::ToolCalls(calls) => calls
                .iter()
                .map(|call| {
                    json!({"type": "function_call", "id": format!("fc_{}", group_id(&call.id)),
                       "call_id": call.id, "name": call.name, "arguments": call.arguments,
                       "status": "completed"})
                })
                .collect(),
        }
    }

    /// The `response` object, `completed` with its output, or `in_progress` without.
    fn response(&self, reply: &Reply, completed: bool) -> Value {
        let mut response = json!({
            "id": self.id, "object": "response", "created_at": self.created, "model": self.model,
            "status": if completed { "completed" } else { "in_progress" },
            "output": if completed { self.output_items(reply) } else { Vec::new() },
            "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
        });
        if completed {
            let output_tokens = reply.completion_tokens();
            response["usage"] = json!({
                "input_tokens": self.prompt_tokens,
                "output_tokens": output_tokens,
                "total_tokens": self.prompt_tokens + output_tokens,
            });
            if let Reply::Text {
                finish_reason: "length",
                ..
            } = reply
            {
                response["status"] = json!("incomplete");
                response["incomplete_details"] = json!({"reason": "max_output_tokens"});
            }
        }
        response
    }

    /// The whole `response` body.
    pub(super) fn responses_body(&self, reply: &Reply) -> Value {
        self.response(reply, true)
    }

    /// The stream events, `[DONE]` included.
    pub(super) fn responses_events(&self, reply: &Reply) -> Vec<String> {
        let mut events =
            vec![json!({"type": "response.created", "response": self.response(reply, false)})];
        for (output_index, done) in self.output_items(reply).into_iter().enumerate() {
            let item_id = done["id"].clone();
            let mut added = done.clone();
            added["status"] = json!("in_progress");
            let deltas: Vec<Value> = if done["type"] == "message" {
                added["content"] = json!([]);
                let text = done["content"][0]["text"].as_str().unwrap_or_default();
                pieces(text)
                    .into_iter()
                    .map(|delta| {
                        json!({"type": "response.output_text.delta", "item_id": item_id,
                        "output_index": output_index, "content_index": 0, "delta": delta})
                    })
                    .collect()
            } else {
                added["arguments"] = json!("");
                let arguments = done["arguments"].as_str().unwrap_or_default();
                fragments(arguments, ARGUMENT_FRAGMENTS)
                    .into_iter()
                    .map(|delta| {
                        json!({"type": "response.function_call_arguments.delta",
                        "item_id": item_id, "output_index": output_index, "delta": delta})
                    })
                    .collect()
            };
            events.push(json!({"type": "response.output_item.added", "output_index": output_index, "item": added}));
            events.extend(deltas);
            events.push(json!({"type": "response.output_item.done", "output_index": output_index, "item": done}));
        }
        events.push(json!({"type": "response.completed", "response": self.response(reply, true)}));
        let mut out: Vec<String> = events
            .into_iter()
            .enumerate()
            .map(|(sequence, mut event)| {
                event["sequence_number"] = json!(sequence);
                event.to_string()
            })
            .collect();
        out.push(DONE.to_owned());
        out
    }
}

/// The mid-stream error event of the Responses API (`type: "error"`).
pub(super) fn error_event(code: &str, message: &str, sent: usize) -> String {
    json!({"type": "error", "code": code, "message": message, "sequence_number": sent}).to_string()
}

/// `max_output_tokens`, if the request sets it.
pub(super) fn max_output_tokens(body: &Map<String, Value>) -> Option<u64> {
    body.get("max_output_tokens").and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::serving::conversation::word_count;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn answer() -> Answer<'static> {
        Answer {
            id: "resp_1".into(),
            created: 1,
            model: "m",
            prompt_tokens: 1,
        }
    }

    #[test]
    fn input_items_of_a_function_call_round_trip_are_accepted() {
        // Arrange
        let body = object(json!({"instructions": "be brief", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]}));

        // Act
        let parsed = conversation(&body).expect("valid");

        // Assert
        assert_eq!(
            parsed.prompt_tokens,
            word_count("be brief weather? {} sunny")
        );
        assert!(conversation(&object(json!({"input": []}))).is_err());
        assert!(
            conversation(&object(
                json!({"input": [{"type": "function_call_output"}]})
            ))
            .is_err()
        );
    }

    #[test]
    fn streamed_text_is_numbered_and_ends_with_the_completed_response() {
        // Arrange
        let reply = Reply::text("hello there", None);

        // Act
        let events = answer().responses_events(&reply);

        // Assert
        assert_eq!(events.last().map(String::as_str), Some(DONE));
        let parsed: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let types: Vec<&str> = parsed.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.output_item.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let numbers: Vec<u64> = parsed
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5]);
        let completed = &parsed[5]["response"];
        assert_eq!(completed["output"][0]["content"][0]["text"], "hello there");
        assert_eq!(completed["usage"]["output_tokens"], 2);
    }
}
