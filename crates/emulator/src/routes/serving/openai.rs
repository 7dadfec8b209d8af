//! Chat and text completions in OpenAI's wire shapes (`shared/UPSTREAM.md` §4.3,
//! `shared/UPSTREAM-2.md` §2.3–2.4): the whole answer as one JSON body, or the same answer as
//! stream chunks.
//!
//! A streamed chat answer: the first chunk carries `role`; text follows one word per chunk;
//! tool calls come as OpenAI sends them (per call, a chunk with `index`, `id`, `type` and the
//! function `name` with empty `arguments`, then argument fragments carrying only `index`); the
//! last content chunk carries `finish_reason`. With `stream_options.include_usage` one more chunk
//! with `"choices": []` and `usage` comes before `data: [DONE]`; every other chunk has
//! `"usage": null`.

use serde_json::{Map, Value, json};

use super::conversation::{Reply, fragments, pieces, word_count};
use crate::error::ApiError;

/// The end of every OpenAI-style stream.
pub(super) const DONE: &str = "[DONE]";

/// Argument fragments per streamed tool call.
const ARGUMENT_FRAGMENTS: usize = 3;

/// One generated answer and what is needed to render it.
#[derive(Debug)]
pub(super) struct Answer<'a> {
    pub(super) id: String,
    pub(super) created: i64,
    pub(super) model: &'a str,
    pub(super) prompt_tokens: usize,
}

impl Answer<'_> {
    /// The `chat.completion` body.
    pub(super) fn chat_body(&self, reply: &Reply) -> Value {
        let message = match reply {
            Reply::Text { text, .. } => json!({"role": "assistant", "content": text}),
            Reply::ToolCalls(calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect();
                json!({"role": "assistant", "content": null, "tool_calls": calls})
            }
        };
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason()}],
            "usage": usage(self.prompt_tokens, reply.completion_tokens()),
        })
    }

    /// The `chat.completion.chunk` events, `[DONE]` included.
    pub(super) fn chat_chunks(&self, reply: &Reply, include_usage: bool) -> Vec<String> {
        let mut deltas: Vec<Value> = match reply {
            Reply::Text { text, .. } => pieces(text)
                .into_iter()
                .map(|piece| json!({"content": piece}))
                .collect(),
            Reply::ToolCalls(calls) => calls
                .iter()
                .enumerate()
                .flat_map(|(index, call)| {
                    let head = json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": ""}}]});
                    let arguments = fragments(&call.arguments, ARGUMENT_FRAGMENTS)
                        .into_iter()
                        .map(move |f| {
                            json!({"tool_calls": [{"index": index, "function": {"arguments": f}}]})
                        });
                    std::iter::once(head).chain(arguments)
                })
                .collect(),
        };
        if let Some(Value::Object(first)) = deltas.first_mut() {
            first.insert("role".into(), json!("assistant"));
        }
        let last = deltas.len().saturating_sub(1);
        let choices = deltas.into_iter().enumerate().map(|(at, delta)| {
            let finish = (at == last).then(|| reply.finish_reason());
            json!([{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}])
        });
        let usage_total = usage(self.prompt_tokens, reply.completion_tokens());
        self.chunks("chat.completion.chunk", choices, include_usage, usage_total)
    }

    /// The `text_completion` body for one completion per prompt.
    pub(super) fn completion_body(&self, texts: &[Reply]) -> Value {
        let choices: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(index, reply)| {
                json!({"index": index, "text": reply_text(reply), "finish_reason": reply.finish_reason()})
            })
            .collect();
        json!({
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage(self.prompt_tokens, completion_tokens(texts)),
        })
    }

    /// The `text_completion` stream events: each prompt's completion in turn, `[DONE]` included.
    pub(super) fn completion_chunks(&self, texts: &[Reply], include_usage: bool) -> Vec<String> {
        let choices = texts.iter().enumerate().flat_map(|(index, reply)| {
            let parts = pieces(reply_text(reply));
            let last = parts.len().saturating_sub(1);
            parts.into_iter().enumerate().map(move |(at, piece)| {
                let finish = (at == last).then(|| reply.finish_reason());
                json!([{"index": index, "text": piece, "finish_reason": finish, "logprobs": null}])
            })
        });
        let usage_total = usage(self.prompt_tokens, completion_tokens(texts));
        self.chunks("text_completion", choices, include_usage, usage_total)
    }

    fn chunks(
        &self,
        object: &str,
        choices: impl Iterator<Item = Value>,
        include_usage: bool,
        usage_total: Value,
    ) -> Vec<String> {
        let chunk = |choices: Value, usage: Value| {
            json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
                   "choices": choices, "usage": usage})
            .to_string()
        };
        let mut out: Vec<String> = choices.map(|c| chunk(c, Value::Null)).collect();
        if include_usage {
            out.push(chunk(json!([]), usage_total));
        }
        out.push(DONE.to_owned());
        out
    }
}

/// The mid-stream error event of chat and text completions (`shared/UPSTREAM-2.md` §2.5).
pub(super) fn error_event(code: &str, message: &str, _sent: usize) -> String {
    json!({"error": {"message": message, "code": code}}).to_string()
}

/// The prompts of a completions request: a string or a list of strings.
pub(super) fn prompts(body: &Map<String, Value>) -> Result<Vec<&str>, ApiError> {
    let refused = || ApiError::bad_request("'prompt' must be a string or a list of strings.");
    match body.get("prompt") {
        Some(Value::String(p)) => Ok(vec![p.as_str()]),
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|p| p.as_str().ok_or_else(refused))
            .collect(),
        _ => Err(refused()),
    }
}

/// Whether a streamed answer ends with a usage chunk (`stream_options.include_usage`).
pub(super) fn include_usage(body: &Map<String, Value>) -> Result<bool, ApiError> {
    match body.get("stream_options") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(options)) => match options.get("include_usage") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(include)) => Ok(*include),
            Some(_) => Err(ApiError::bad_request(
                "'stream_options.include_usage' must be a boolean.",
            )),
        },
        Some(_) => Err(ApiError::bad_request("'stream_options' must be an object.")),
    }
}

fn reply_text(reply: &Reply) -> &str {
    match reply {
        Reply::Text { text, .. } => text,
        Reply::ToolCalls(_) => "",
    }
}

fn completion_tokens(texts: &[Reply]) -> usize {
    texts.iter().map(|r| word_count(reply_text(r))).sum()
}

pub(super) fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::serving::conversation::ToolCall;

    fn answer() -> Answer<'static> {
        Answer {
            id: "c1".into(),
            created: 1,
            model: "m",
            prompt_tokens: 2,
        }
    }

    fn parsed(chunks: &[String]) -> Vec<Value> {
        chunks
            .iter()
            .filter(|c| *c != DONE)
            .map(|c| serde_json::from_str(c).unwrap())
            .collect()
    }

    #[test]
    fn streamed_text_has_role_first_finish_last_and_usage_only_when_asked() {
        // Arrange
        let reply = Reply::text("You said: hi", None);

        // Act
        let plain = answer().chat_chunks(&reply, false);
        let with_usage = answer().chat_chunks(&reply, true);

        // Assert
        let chunks = parsed(&plain);
        assert_eq!(plain.last().map(String::as_str), Some(DONE));
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(text, "You said: hi");
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
        assert!(chunks.iter().all(|c| c["usage"].is_null()));
        let usage_chunk = &parsed(&with_usage)[3];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["total_tokens"], 5);
    }

    #[test]
    fn streamed_tool_calls_send_the_name_first_then_argument_fragments() {
        // Arrange
        let reply = Reply::ToolCalls(vec![ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: r#"{"x":1}"#.into(),
        }]);

        // Act
        let chunks = parsed(&answer().chat_chunks(&reply, false));

        // Assert
        let head = &chunks[0]["choices"][0]["delta"];
        assert_eq!(head["role"], "assistant");
        assert_eq!(
            head["tool_calls"][0],
            json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}})
        );
        let arguments: String = chunks[1..]
            .iter()
            .map(|c| {
                let call = &c["choices"][0]["delta"]["tool_calls"][0];
                assert_eq!(call["index"], 0);
                assert!(call.get("id").is_none());
                call["function"]["arguments"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(arguments, r#"{"x":1}"#);
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn include_usage_must_be_a_boolean() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        assert!(!include_usage(&body(json!({}))).unwrap());
        assert!(include_usage(&body(json!({"stream_options": {"include_usage": true}}))).unwrap());
        assert!(include_usage(&body(json!({"stream_options": {"include_usage": "yes"}}))).is_err());
        assert!(include_usage(&body(json!({"stream_options": 1}))).is_err());
    }
}
