"""dbapp's own streaming chat route read with plain HTTP and a plain SSE parser.

A `dbapp serve` process (the same binary) runs against the session's emulator, as a Databricks
App would against its workspace, with a SQLite store in a temporary directory. The client is
`requests` with `stream=True`: lines are read as they arrive and parsed by the rules both official
parsers share (UPSTREAM-2 §2.2): `data:` lines, `:` comments ignored, an event at each blank line,
`[DONE]` at the end. What this pins from outside the Rust code: the framing a browser or any HTTP
client sees, the chunks passed through as OpenAI chunks, the usage chunk, the error event's
envelope, and the conversation recorded under the header's id.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests

from conftest import SP_CLIENT_ID, SP_CLIENT_SECRET, TOKENS, _binary, _stop

START_TIMEOUT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dbapp_url(emulator_url: str) -> Iterator[str]:
    """`dbapp serve` against the emulator, with its own SQLite store; yields its base URL."""
    directory = Path(tempfile.mkdtemp(prefix="dbapp-serve-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "DBAPP_", "PG", "LAKEBASE_"))}
    env.update(
        DATABRICKS_HOST=emulator_url,
        DATABRICKS_CLIENT_ID=SP_CLIENT_ID,
        DATABRICKS_CLIENT_SECRET=SP_CLIENT_SECRET,
        DATABRICKS_APP_PORT=str(port),
        DBAPP_SQLITE_PATH=str(directory / "dbapp.db"),
        DBAPP_LOG_FORMAT="json",
    )
    log = open(directory / "serve.log", "w")
    process = subprocess.Popen([str(_binary()), "serve"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"dbapp serve did not start:\n{(directory / 'serve.log').read_text()}")
        time.sleep(0.05)
    yield url
    _stop(process)


def events(response: requests.Response) -> Iterator[Tuple[str, str]]:
    """(`data`, …) and (`comment`, …) items as the lines arrive."""
    data: List[str] = []
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if data:
                yield "data", "\n".join(data)
                data = []
        elif line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)


def chat(url: str, body: Dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{url}/api/model-serving/endpoints/chat/chat",
        json=body,
        headers={"X-Forwarded-Access-Token": TOKENS["alice"]},
        stream=True,
        timeout=30,
    )


def test_a_streamed_answer_is_openai_chunks_then_usage_then_done(dbapp_url: str):
    response = chat(dbapp_url, {"messages": [{"role": "user", "content": "one two three four"}]})

    items = [value for kind, value in events(response) if kind == "data"]

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert items[-1] == "[DONE]"
    chunks = [json.loads(item) for item in items[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.endswith("one two three four")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert len(chunks) >= 4


def test_the_answer_is_recorded_in_the_conversation_the_header_names(dbapp_url: str):
    response = chat(dbapp_url, {"messages": [{"role": "user", "content": "remember me"}]})
    conversation_id = response.headers["X-Conversation-Id"]
    streamed = "".join(
        (json.loads(v)["choices"] or [{"delta": {}}])[0]["delta"].get("content") or ""
        for kind, v in events(response)
        if kind == "data" and v != "[DONE]"
    )

    # The answer is stored before `[DONE]` goes out, so it is there at once.
    response = requests.get(
        f"{dbapp_url}/api/conversations/{conversation_id}",
        headers={"X-Forwarded-Access-Token": TOKENS["alice"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    conversation = response.json()

    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][1]["content"] == streamed
    assert conversation["messages"][1]["outcome"] == "completed"


def test_a_failure_mid_stream_is_one_error_event_with_the_envelope(dbapp_url: str, control):
    control.fault(path="/serving-endpoints/chat/invocations", error_after_chunks=2)
    response = chat(dbapp_url, {"messages": [{"role": "user", "content": "a b c d e f"}]})

    items = [value for kind, value in events(response) if kind == "data"]

    assert len(items) == 3
    error = json.loads(items[-1])["error"]
    assert error["error_code"] == "MODEL_ERROR"
    assert error["correlation_id"] == response.headers["X-Correlation-ID"]
    assert "[DONE]" not in items
