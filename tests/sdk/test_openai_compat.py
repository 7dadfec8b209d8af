"""The real `openai` Python client (3.51.0) against the emulator's OpenAI-compatible routes.

Databricks documents `OpenAI(base_url=f"{host}/serving-endpoints", api_key=<token>)` with the
endpoint name as `model` (shared/UPSTREAM-2.md §2.1). These tests use exactly that against the
default fixture: `chat` (scripted: a weather question with a `get_weather` tool offered calls
the tool, the tool's result is then quoted), `embed` and `complete`. What they pin is what the
issue said was broken: streaming that yields nothing, and the second turn of a tool-using agent.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import openai
import pytest
from openai import OpenAI

from conftest import TOKENS

WEATHER_TOOL: Dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
QUESTION = {"role": "user", "content": "What is the weather in Paris?"}


@pytest.fixture
def client(emulator_url: str) -> OpenAI:
    # No retries: a test that sees an error should see it once, not after backoff.
    return OpenAI(base_url=f"{emulator_url}/serving-endpoints", api_key=TOKENS["alice"], max_retries=0)


def test_chat_completion_non_streaming(client: OpenAI, control):
    completion = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello there"}])

    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "You said: hello there"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 4)
    (call,) = control.requests(path_prefix="/serving-endpoints/chat/completions")
    assert call["principal"] == "alice@example.com" and call["status"] == 200


def test_chat_completion_streaming_yields_chunks_and_usage(client: OpenAI):
    stream = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    content_chunks = [c for c in chunks if c.choices]
    assert len(content_chunks) >= 2, chunks
    assert "".join(c.choices[0].delta.content or "" for c in content_chunks) == "You said: tell me a story"
    assert content_chunks[0].choices[0].delta.role == "assistant"
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in content_chunks[:-1])
    # The usage chunk is the last one, with no choices (stream_options.include_usage).
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 6
    assert usage_chunk.usage.total_tokens == usage_chunk.usage.prompt_tokens + 6


def test_streaming_without_include_usage_has_no_usage_chunk(client: OpenAI):
    chunks = list(
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], stream=True)
    )

    assert len(chunks) == 3
    assert all(c.choices and c.usage is None for c in chunks)


def test_tool_call_history_round_trip(client: OpenAI):
    # Turn 1: the model asks for the tool.
    first = client.chat.completions.create(model="chat", messages=[QUESTION], tools=[WEATHER_TOOL])
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    (call,) = message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}

    # Turn 2: the assistant message echoed back with content None, then the tool's result, as
    # ChatDatabricks sends the second turn of every tool-using agent.
    history: List[Dict[str, Any]] = [
        QUESTION,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = client.chat.completions.create(model="chat", messages=history, tools=[WEATHER_TOOL])

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "The weather tool says: 18C and sunny"


def test_streamed_tool_call_assembles_from_deltas(client: OpenAI):
    stream = client.chat.completions.create(model="chat", messages=[QUESTION], tools=[WEATHER_TOOL], stream=True)

    name, call_id, arguments, finish = "", None, "", None
    for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            assert delta_call.index == 0
            call_id = call_id or delta_call.id
            name += (delta_call.function and delta_call.function.name) or ""
            arguments += (delta_call.function and delta_call.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish

    assert name == "get_weather"
    assert call_id and call_id.startswith("call_")
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert finish == "tool_calls"


def test_content_as_text_parts_is_accepted(client: OpenAI):
    completion = client.chat.completions.create(
        model="chat",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
            {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
        ],
    )

    assert completion.choices[0].message.content == "You said: hi there"


def test_malformed_message_is_a_bad_request_with_the_emulator_message(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}, {"role": "tool", "content": "no id"}]
        )

    assert raised.value.status_code == 400
    assert "tool_call_id" in raised.value.message


def test_embeddings(client: OpenAI):
    # The client asks for base64 by default and decodes it into floats.
    response = client.embeddings.create(model="embed", input=["hello", "world"])
    again = client.embeddings.create(model="embed", input="hello", encoding_format="float")

    vectors = [d.embedding for d in response.data]
    assert [d.index for d in response.data] == [0, 1]
    assert all(len(v) == 8 for v in vectors)
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-5
    assert vectors[0] != vectors[1]
    assert again.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)


def test_completions_streaming(client: OpenAI):
    chunks = list(client.completions.create(model="complete", prompt="Once upon a time", stream=True))

    assert len(chunks) >= 2
    assert "".join(c.choices[0].text for c in chunks) == "Completion of: Once upon a time"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_responses_whole_and_streamed(client: OpenAI):
    response = client.responses.create(model="chat", input="hello")
    events = list(client.responses.create(model="chat", input="hello", stream=True))

    assert response.output_text == "You said: hello"
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 2 and "".join(deltas) == "You said: hello"
    assert events[-1].response.output_text == "You said: hello"


def test_an_error_mid_stream_raises_after_the_chunks_before_it(client: OpenAI, control):
    control.fault(
        path="/serving-endpoints/chat/completions",
        error_after_chunks=2,
        error_code="RESOURCE_EXHAUSTED",
        message="capacity gone",
    )
    received: List[str] = []

    with pytest.raises(openai.APIError, match="capacity gone"):
        for chunk in client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "a b c"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")

    assert received == ["You", " said:"]


def test_a_stream_cut_mid_body_is_a_connection_error(client: OpenAI, control):
    control.fault(path="/serving-endpoints/chat/completions", drop_after_chunks=1, count=1)
    received: List[str] = []

    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "a b c"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")

    assert received == ["You"]
