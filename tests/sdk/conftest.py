"""Fixtures for the official-SDK compatibility check.

One emulator process serves the whole session (a test that needs another fixture starts its
own with `emulator_with_fixture`): `dbapp emulate --port 0` (the binary comes from
`DBAPP_BIN`, default `<repo>/target/debug/dbapp`). Its single stdout line gives the URL; its
logs (stderr) go to a temporary file that is printed if it fails to start. Before every test the
emulator is reset (`POST /_emulator/reset`: faults, settings, tokens, statements and request log
as at start), and the environment is scrubbed of `DATABRICKS_*` and friends so that nothing
outside this directory — variables, `~/.databrickscfg` — can influence how the SDK authenticates.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests

from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^dbapp emulator listening on (http://127\.0\.0\.1:\d+)\s*$")
START_TIMEOUT_SECONDS = 30.0

TOKENS = {
    "alice": "dev-token-alice",
    "bob": "dev-token-bob",
    "admin": "dev-token-admin",
}
SP_CLIENT_ID = "dbapp-sp"
SP_CLIENT_SECRET = "dev-secret"

# Retry budget of the SDK clients the tests build. Nothing a test does on purpose is retried for
# long (tests that inject retryable faults build their own client with a 1 s budget), so this only
# bounds how long an unexpected retry loop can stall a test.
DEFAULT_RETRY_TIMEOUT_SECONDS = 15


def _binary() -> Path:
    return Path(os.environ.get("DBAPP_BIN") or REPO / "target" / "debug" / "dbapp")


@contextmanager
def running_emulator(*args: str) -> Iterator[str]:
    """Runs `dbapp emulate --port 0 <args>` and yields its base URL; SIGTERM when done."""
    binary = _binary()
    if not binary.is_file():
        pytest.fail(f"emulator binary {binary} not found: run `cargo build -p dbapp` or set DBAPP_BIN")
    log = tempfile.NamedTemporaryFile(prefix="dbapp-emulator-", suffix=".log", delete=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBAPP_EMULATOR_")}
    process = subprocess.Popen(
        [str(binary), "emulate", "--port", "0", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        text=True,
    )
    # Read the first stdout line on a thread so that a silent or hung process cannot block us.
    first_line: List[str] = []
    got_line = threading.Event()

    def read_stdout() -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        first_line.append(line)
        got_line.set()
        for _ in process.stdout:  # keep draining so the child can never block on a full pipe
            pass

    threading.Thread(target=read_stdout, name="emulator-stdout", daemon=True).start()
    try:
        if not got_line.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError(f"no listening line within {START_TIMEOUT_SECONDS:.0f} s")
        match = LISTENING.match(first_line[0])
        if not match:
            raise RuntimeError(f"unexpected first stdout line {first_line[0]!r} (exit code {process.poll()})")
    except RuntimeError as e:
        _stop(process)
        pytest.fail(f"emulator {binary} did not start: {e}\n--- stderr ---\n{Path(log.name).read_text()}")
    try:
        yield match.group(1)
    finally:
        _stop(process)
        log.close()
        os.unlink(log.name)


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    """The session's emulator, on the default fixture."""
    with running_emulator() as url:
        yield url


@pytest.fixture(scope="session")
def default_fixture() -> Dict[str, Any]:
    """The default fixture as `dbapp emulate --print-fixture` prints it (a fresh copy per use)."""
    text = subprocess.run(
        [str(_binary()), "emulate", "--print-fixture"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(text)


@pytest.fixture
def emulator_with_fixture(tmp_path: Path) -> Iterator[Callable[[Dict[str, Any]], str]]:
    """`emulator_with_fixture(fixture)`: writes `fixture` to `tmp_path/fixture.json` (so data
    files it names are relative to `tmp_path`), starts an emulator on it, and yields its URL."""
    with ExitStack() as stack:

        def start(fixture: Dict[str, Any]) -> str:
            path = tmp_path / "fixture.json"
            path.write_text(json.dumps(fixture))
            return stack.enter_context(running_emulator("--fixture", str(path)))

        yield start


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Control:
    """The emulator's `/_emulator/` control API (no token; never faulted or logged)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False  # never route loopback traffic through a proxy from the environment

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.http.request(method, f"{self.base_url}/_emulator{path}", timeout=10, **kwargs)
        assert response.ok, f"{method} /_emulator{path} -> {response.status_code} {response.text}"
        return response

    def reset(self) -> None:
        self._call("POST", "/reset")

    def config(self, **patch: Any) -> Dict[str, Any]:
        """Patches the run-time settings, e.g. `config(max_page_size=1, empty_pages=True)`."""
        return self._call("PUT", "/config", json=patch).json()

    def fault(self, **spec: Any) -> int:
        """Adds a fault rule (fields of `crates/emulator/src/faults.rs`); returns its id."""
        return self._call("POST", "/faults", json=spec).json()["id"]

    def faults(self) -> List[Dict[str, Any]]:
        return self._call("GET", "/faults").json()["faults"]

    def mint_token(self, principal: str, ttl_secs: int = 3600, scopes: Optional[List[str]] = None) -> str:
        """A JWT-shaped token; with `scopes`, limited to them as the Apps proxy's user tokens are."""
        body: Dict[str, Any] = {"principal": principal, "ttl_secs": ttl_secs}
        if scopes is not None:
            body["scopes"] = scopes
        return self._call("POST", "/tokens", json=body).json()["token"]

    def expire_token(self, token: str) -> None:
        self._call("POST", "/tokens/expire", json={"token": token})

    def warehouse_state(self, warehouse_id: str, state: str) -> None:
        """Puts a warehouse in RUNNING, STOPPED, STARTING or STOPPING from now on."""
        self._call("PUT", f"/warehouses/{warehouse_id}", json={"state": state})

    def app_credentials(self, name: str) -> Dict[str, str]:
        """`client_id` and `client_secret` of an app's own service principal (what its container gets)."""
        return self._call("GET", f"/apps/{name}/credentials").json()

    def sessions(self) -> List[Dict[str, Any]]:
        """The open SQL sessions: session_id, owner, warehouse_id, catalog, schema, session_confs."""
        return self._call("GET", "/sessions").json()["sessions"]

    def requests(self, path_prefix: Optional[str] = None) -> List[Dict[str, Any]]:
        """The request log: dicts with method, path, query, principal, status, fault, user_agent."""
        params = {"path_prefix": path_prefix} if path_prefix else None
        return self._call("GET", "/requests", params=params).json()["requests"]

    def raw(self, method: str, path: str, token: Optional[str] = None, **kwargs: Any) -> requests.Response:
        """A workspace request made without the SDK, to see exactly what went over the wire."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, f"{self.base_url}{path}", headers=headers, timeout=10, **kwargs)


@pytest.fixture(scope="session")
def control(emulator_url: str) -> Control:
    return Control(emulator_url)


@pytest.fixture(autouse=True)
def reset_emulator(control: Control) -> None:
    """Every test starts from the emulator's initial state."""
    control.reset()


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the environment or a profile file may take part in SDK authentication."""
    prefixes = ("DATABRICKS_", "ARM_", "AZURE_", "GOOGLE_", "ACTIONS_ID_TOKEN_", "SYSTEM_ACCESSTOKEN")
    for name in list(os.environ):
        if name.startswith(prefixes) or name in ("IS_IN_DB_MODEL_SERVING_ENV", "IS_IN_DATABRICKS_MODEL_SERVING_ENV"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-such-databrickscfg"))
    # requests honours *_PROXY variables; keep loopback traffic direct.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def pat_client(emulator_url: str):
    """`pat_client("alice", retry_timeout_seconds=1)`: a PAT client for a fixture user."""

    def build(user: str, token: Optional[str] = None, retry_timeout_seconds: int = DEFAULT_RETRY_TIMEOUT_SECONDS):
        config = Config(
            host=emulator_url,
            token=token if token is not None else TOKENS[user],
            auth_type="pat",
            retry_timeout_seconds=retry_timeout_seconds,
        )
        return WorkspaceClient(config=config)

    return build


@pytest.fixture
def sp_client(emulator_url: str):
    """An OAuth M2M client for the service principal `dbapp-sp`."""

    def build(retry_timeout_seconds: int = DEFAULT_RETRY_TIMEOUT_SECONDS):
        config = Config(
            host=emulator_url,
            client_id=SP_CLIENT_ID,
            client_secret=SP_CLIENT_SECRET,
            auth_type="oauth-m2m",
            retry_timeout_seconds=retry_timeout_seconds,
        )
        return WorkspaceClient(config=config)

    return build
