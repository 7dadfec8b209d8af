//! The scripted chat model: what a conversation says (validated in every shape the OpenAI chat
//! contract allows, `shared/UPSTREAM-2.md` §2.4) and what a `chat` endpoint answers to it.
//!
//! Accepted messages: `system`, `developer` and `user` with content; `assistant` with content,
//! or with `content` null, absent or blank plus `tool_calls`; `tool` with `tool_call_id` and
//! content. Content is a string or a list of `{"type": "text", "text": …}` parts. Anything else is
//! `400 INVALID_PARAMETER_VALUE` naming the message. The Responses API (`responses.rs`) builds
//! the same [`Conversation`] from its own input items.
//!
//! The answer comes from the endpoint's fixture [`ChatRule`]s, else repeats the last user
//! message (`You said: …`). Tokens are whitespace-separated words: they size `usage`, cut
//! answers at `max_tokens` and split streamed text into chunks.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::fixture::ChatRule;
use crate::state::group_id;

/// What the scripted model needs to know about a conversation.
#[derive(Debug)]
pub(super) struct Conversation {
    /// The text of the last `user` message.
    last_user: String,
    /// The content of the last message when it is a tool result.
    tool_result: Option<String>,
    /// Words in every message's text.
    pub(super) prompt_tokens: usize,
    /// Names of the functions the request offers, unless `tool_choice` is `"none"`.
    callable: Vec<String>,
    /// How many messages there were, so tool call ids differ between turns.
    turns: usize,
}

/// One message, as the Responses API and chat messages both reduce to it.
#[derive(Debug)]
pub(super) struct Turn {
    pub(super) role: Role,
    pub(super) text: String,
}

/// The roles the scripted model tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `system`, `developer` or `assistant`: context only.
    Other,
    User,
    Tool,
}

impl Conversation {
    /// Builds a conversation from validated turns and the request's `tools`/`tool_choice`.
    pub(super) fn new(turns: Vec<Turn>, callable: Vec<String>) -> Result<Self, ApiError> {
        let last_user = turns
            .iter()
            .rev()
            .find(|t| t.role == Role::User)
            .map(|t| t.text.clone())
            .ok_or_else(|| ApiError::bad_request("No user message to answer."))?;
        let tool_result = turns
            .last()
            .filter(|t| t.role == Role::Tool)
            .map(|t| t.text.clone());
        Ok(Self {
            last_user,
            tool_result,
            prompt_tokens: turns.iter().map(|t| word_count(&t.text)).sum(),
            callable,
            turns: turns.len(),
        })
    }

    /// Validates the chat `messages` of a request body.
    pub(super) fn from_chat(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::bad_request("'messages' must be a non-empty array."))?;
        let turns = messages
            .iter()
            .enumerate()
            .map(|(index, message)| chat_turn(message).map_err(|m| invalid_message(index, &m)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(turns, callable_tools(body, |tool| tool.get("function"))?)
    }

    /// The answer of a model scripted by `rules`, cut at `max_tokens` words.
    pub(super) fn reply(&self, rules: &[ChatRule], max_tokens: Option<u64>) -> Reply {
        let last_user = self.last_user.to_ascii_lowercase();
        let rule = rules.iter().find(|rule| {
            rule.when_user_contains
                .as_ref()
                .is_none_or(|s| last_user.contains(&s.to_ascii_lowercase()))
                && rule.after_tool == self.tool_result.is_some()
                && rule
                    .tool_calls
                    .iter()
                    .all(|call| self.callable.contains(&call.name))
        });
        match rule {
            Some(rule) if !rule.tool_calls.is_empty() => Reply::ToolCalls(
                rule.tool_calls
                    .iter()
                    .enumerate()
                    .map(|(index, call)| ToolCall {
                        id: format!(
                            "call_{}",
                            group_id(&format!("{}:{index}:{}", self.turns, self.last_user))
                        ),
                        name: call.name.clone(),
                        arguments: call.arguments.to_string(),
                    })
                    .collect(),
            ),
            Some(rule) => {
                let template = rule.reply.as_deref().unwrap_or_default();
                let text = template
                    .replace("{user}", &self.last_user)
                    .replace("{tool_result}", self.tool_result.as_deref().unwrap_or(""));
                Reply::text(&text, max_tokens)
            }
            None => Reply::text(&format!("You said: {}", self.last_user), max_tokens),
        }
    }
}

/// What the model answers.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    /// Text, with `stop` or (cut at `max_tokens`) `length` as its finish reason.
    Text {
        text: String,
        finish_reason: &'static str,
    },
    /// Function calls; the finish reason is `tool_calls`.
    ToolCalls(Vec<ToolCall>),
}

/// One function call of a [`Reply`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ToolCall {
    pub(super) id: String,
    pub(super) name: String,
    /// The arguments as a JSON string, as the wire carries them.
    pub(super) arguments: String,
}

impl Reply {
    /// `text`, cut to `max_tokens` words with finish reason `length` when it is longer.
    pub(super) fn text(text: &str, max_tokens: Option<u64>) -> Self {
        match max_tokens {
            Some(max) if word_count(text) as u64 > max => {
                let cut: Vec<&str> = text
                    .split_whitespace()
                    .take(usize::try_from(max).unwrap_or(usize::MAX))
                    .collect();
                Self::Text {
                    text: cut.join(" "),
                    finish_reason: "length",
                }
            }
            _ => Self::Text {
                text: text.to_owned(),
                finish_reason: "stop",
            },
        }
    }

    pub(super) fn finish_reason(&self) -> &'static str {
        match self {
            Self::Text { finish_reason, .. } => finish_reason,
            Self::ToolCalls(_) => "tool_calls",
        }
    }

    /// Words generated: the text's, or each call's arguments' (at least one per call).
    pub(super) fn completion_tokens(&self) -> usize {
        match self {
            Self::Text { text, .. } => word_count(text),
            Self::ToolCalls(calls) => calls.iter().map(|c| word_count(&c.arguments).max(1)).sum(),
        }
    }
}

fn invalid_message(index: usize, problem: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid message at index {index}: {problem}"))
}

/// One chat message, validated.
fn chat_turn(message: &Value) -> Result<Turn, String> {
    let role = message
        .get("role")
        .and_then(Value::as_str)
        .ok_or("'role' must be a string")?;
    let content = message.get("content").filter(|c| !c.is_null());
    let tool_calls = message.get("tool_calls").filter(|c| !c.is_null());
    match role {
        "assistant" => {
            if let Some(calls) = tool_calls {
                validate_tool_calls(calls)?;
            }
            let text = content.map(content_text).transpose()?.unwrap_or_default();
            if tool_calls.is_none() && content.is_none() {
                return Err("an assistant message needs 'content' or 'tool_calls'".into());
            }
            Ok(Turn {
                role: Role::Other,
                text,
            })
        }
        "system" | "developer" | "user" | "tool" => {
            if tool_calls.is_some() {
                return Err(format!("a {role} message cannot have 'tool_calls'"));
            }
            let content = content.ok_or_else(|| format!("a {role} message needs 'content'"))?;
            let role = match role {
                "user" => Role::User,
                "tool" => {
                    message
                        .get("tool_call_id")
                        .and_then(Value::as_str)
                        .filter(|id| !id.is_empty())
                        .ok_or("a tool message needs a string 'tool_call_id'")?;
                    Role::Tool
                }
                _ => Role::Other,
            };
            Ok(Turn {
                role,
                text: content_text(content)?,
            })
        }
        other => Err(format!(
            "unknown role '{other}' (system, developer, user, assistant or tool)"
        )),
    }
}

/// The text of a content string or a list of text parts.
fn content_text(content: &Value) -> Result<String, String> {
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|part| {
                let kind = part.get("type").and_then(Value::as_str);
                match (kind, part.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(text)) => Ok(text),
                    _ => Err(
                        "content parts must be {\"type\": \"text\", \"text\": <string>}".to_owned(),
                    ),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.join("")),
        _ => Err("'content' must be a string or a list of text parts".into()),
    }
}

fn validate_tool_calls(calls: &Value) -> Result<(), String> {
    let calls = calls
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or("'tool_calls' must be a non-empty array")?;
    for call in calls {
        let id = call.get("id").and_then(Value::as_str);
        let kind = call.get("type").and_then(Value::as_str);
        let function = call.get("function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str);
        if id.is_none() || kind != Some("function") || name.is_none() || arguments.is_none() {
            return Err("each tool call needs 'id', 'type': 'function' and 'function' with string 'name' and 'arguments'".into());
        }
    }
    Ok(())
}

/// The function names of the request's `tools` (found in each tool by `function`), or none when
/// `tool_choice` is `"none"`.
pub(super) fn callable_tools(
    body: &Map<String, Value>,
    function: impl Fn(&Value) -> Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(ApiError::bad_request("'tools' must be an array.")),
    };
    let names = tools
        .iter()
        .filter(|tool| tool.get("type").and_then(Value::as_str) == Some("function"))
        .map(|tool| {
            function(tool)
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| ApiError::bad_request("Each function tool needs a 'name'."))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let none = body.get("tool_choice").and_then(Value::as_str) == Some("none");
    Ok(if none { Vec::new() } else { names })
}

/// Splits text into stream pieces, one word each with the whitespace before it, so the pieces
/// join back into the text exactly. Empty text is one empty piece.
pub(super) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() && in_word {
            out.push(&text[start..at]);
            start = at;
        }
        in_word = !c.is_whitespace();
    }
    if start < text.len() || out.is_empty() {
        out.push(&text[start..]);
    }
    out
}

/// Splits a string into at most `n` consecutive non-empty fragments (at character boundaries).
pub(super) fn fragments(text: &str, n: usize) -> Vec<&str> {
    let chars = text.chars().count();
    let size = chars.div_ceil(n.max(1)).max(1);
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(at, _)| at)
        .step_by(size)
        .chain([text.len()])
        .collect();
    let out: Vec<&str> = bounds.windows(2).map(|w| &text[w[0]..w[1]]).collect();
    if out.is_empty() { vec![""] } else { out }
}

pub(super) fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixture::ScriptedToolCall;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn weather_rules() -> Vec<ChatRule> {
        vec![
            ChatRule {
                when_user_contains: Some("Weather".into()),
                after_tool: false,
                reply: None,
                tool_calls: vec![ScriptedToolCall {
                    name: "get_weather".into(),
                    arguments: json!({"city": "Paris"}),
                }],
            },
            ChatRule {
                when_user_contains: None,
                after_tool: true,
                reply: Some("Tool said {tool_result} about {user}".into()),
                tool_calls: vec![],
            },
        ]
    }

    const WEATHER_TOOL: &str = "get_weather";

    #[test]
    fn every_message_shape_of_a_tool_round_trip_is_accepted() {
        // Arrange
        let body = object(json!({
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
                {"role": "user", "content": "what is the weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": WEATHER_TOOL, "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
            "tools": [{"type": "function", "function": {"name": WEATHER_TOOL}}]}));

        // Act
        let conversation = Conversation::from_chat(&body).expect("valid");
        let reply = conversation.reply(&weather_rules(), None);

        // Assert
        assert_eq!(
            reply,
            Reply::Text {
                text: "Tool said sunny about what is the weather?".into(),
                finish_reason: "stop"
            }
        );
    }

    #[test]
    fn a_tool_rule_fires_only_when_its_tool_is_offered() {
        // Arrange
        let ask = |tools: Value| {
            let body = object(
                json!({"messages": [{"role": "user", "content": "WEATHER please"}],
                "tools": tools}),
            );
            Conversation::from_chat(&body)
                .unwrap()
                .reply(&weather_rules(), None)
        };

        // Act
        let offered = ask(json!([{"type": "function", "function": {"name": WEATHER_TOOL}}]));
        let not_offered = ask(json!([]));

        // Assert
        let Reply::ToolCalls(calls) = offered else {
            panic!("expected tool calls, got {offered:?}")
        };
        assert_eq!(calls[0].name, WEATHER_TOOL);
        assert_eq!(calls[0].arguments, r#"{"city":"Paris"}"#);
        assert_eq!(not_offered.finish_reason(), "stop");
    }

    #[test]
    fn malformed_messages_are_refused_with_their_index() {
        let refused = [
            json!([{"role": "user"}]),
            json!([{"role": "user", "content": null}]),
            json!([{"role": "assistant", "content": null}]),
            json!([{"role": "user", "content": "x"}, {"role": "tool", "content": "x"}]),
            json!([{"role": "user", "content": [{"type": "image_url"}]}]),
            json!([{"role": "wizard", "content": "x"}]),
            json!([{"role": "assistant", "tool_calls": [{"id": "c"}]}]),
            json!([{"content": "x"}]),
        ];
        for messages in refused {
            let result = Conversation::from_chat(&object(json!({ "messages": messages })));
            assert!(result.is_err(), "{messages} was accepted");
        }
        assert!(Conversation::from_chat(&object(json!({"messages": "hi"}))).is_err());
        assert!(
            Conversation::from_chat(&object(
                json!({"messages": [{"role": "system", "content": "x"}]})
            ))
            .is_err()
        );
    }

    #[test]
    fn max_tokens_cuts_with_finish_reason_length() {
        assert_eq!(
            Reply::text("one two three", Some(2)),
            Reply::Text {
                text: "one two".into(),
                finish_reason: "length"
            }
        );
        assert_eq!(Reply::text("one", Some(2)).finish_reason(), "stop");
    }

    #[test]
    fn pieces_and_fragments_join_back_into_their_text() {
        assert_eq!(pieces("You said:  hi"), ["You", " said:", "  hi"]);
        assert_eq!(pieces(""), [""]);
        assert_eq!(pieces(" lead"), [" lead"]);
        let args = r#"{"city":"Paris"}"#;
        let parts = fragments(args, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), args);
        assert_eq!(fragments("é", 3), ["é"]);
        assert_eq!(fragments("", 3), [""]);
    }
}
