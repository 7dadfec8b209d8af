"""The official Databricks Python SDK (databricks-sdk 0.162.0) against the dbapp emulator.

Each test drives the SDK exactly as an application would — explicit `auth_type`, nothing taken
from the environment — and checks both what the SDK hands back and, through the emulator's
request log (`GET /_emulator/requests`), what went over the wire. The wire contracts are those of
shared/UPSTREAM.md; the workspace is the emulator's default fixture.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import pytest

from databricks.sdk.errors import (
    InternalError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
)
from databricks.sdk.service.catalog import CatalogInfo, ColumnTypeName
from databricks.sdk.service.serving import (
    ChatMessage,
    ChatMessageRole,
    EndpointStateConfigUpdate,
    EndpointStateReady,
)
from databricks.sdk.service.sql import StatementState

UC = "/api/2.1/unity-catalog"

USERS = {
    "alice": {
        "user_name": "alice@example.com",
        "display_name": "Alice Example",
        "groups": {"users", "data-analysts"},
    },
    "bob": {"user_name": "bob@example.com", "display_name": "Bob Example", "groups": {"users"}},
    "admin": {"user_name": "admin@example.com", "display_name": "Admin Example", "groups": {"users", "admins"}},
}

CUSTOMERS_COLUMNS = [
    ("id", "bigint", ColumnTypeName.LONG, False),
    ("name", "string", ColumnTypeName.STRING, True),
    ("email", "string", ColumnTypeName.STRING, True),
    ("signup_date", "date", ColumnTypeName.DATE, True),
    ("is_active", "boolean", ColumnTypeName.BOOLEAN, True),
    ("lifetime_value", "double", ColumnTypeName.DOUBLE, True),
]
CUSTOMERS_ROWS = 25


def query_of(entry: dict) -> dict:
    """The query string of a logged request, parsed."""
    return parse_qs(entry.get("query") or "", keep_blank_values=True)


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def names(items) -> list:
    return [item.name for item in items]


# --- identity: SCIM Me over PAT and OAuth M2M --------------------------------------------------


@pytest.mark.parametrize("user", ["alice", "bob", "admin"])
def test_current_user_me_with_pat(pat_client, control, user):
    expected = USERS[user]

    me = pat_client(user).current_user.me()

    assert me.user_name == expected["user_name"]
    assert me.display_name == expected["display_name"]
    assert me.active is True
    groups = {g.display for g in me.groups or []}
    assert groups == expected["groups"]
    assert ("admins" in groups) == (user == "admin")
    assert [e.value for e in me.emails or []] == [expected["user_name"]]
    (call,) = control.requests(path_prefix="/api/2.0/preview/scim/v2/Me")
    assert call["principal"] == expected["user_name"]
    assert "auth/pat" in call["user_agent"]


def test_current_user_me_with_oauth_m2m_service_principal(sp_client, control):
    me = sp_client().current_user.me()

    assert me.user_name == "dbapp-sp"
    assert me.display_name == "dbapp-sp"
    assert me.active is True
    # What the SDK had to do to get there: host metadata, the OIDC discovery document it points
    # at, the client-credentials exchange, then the call with the minted Bearer token.
    log = [(r["method"], r["path"], r["status"]) for r in control.requests()]
    assert log.index(("GET", "/.well-known/databricks-config", 200)) < log.index(
        ("GET", "/oidc/.well-known/oauth-authorization-server", 200)
    )
    assert log.index(("GET", "/oidc/.well-known/oauth-authorization-server", 200)) < log.index(
        ("POST", "/oidc/v1/token", 200)
    )
    (call,) = control.requests(path_prefix="/api/2.0/preview/scim/v2/Me")
    assert call["status"] == 200
    assert call["principal"] == "dbapp-sp"
    assert "auth/oauth-m2m" in call["user_agent"]


# --- Unity Catalog --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user,expected",
    [("alice", {"main", "samples"}), ("bob", {"main"}), ("admin", {"main", "samples"})],
)
def test_catalogs_list_per_user(pat_client, control, user, expected):
    catalogs = list(pat_client(user).catalogs.list())

    assert all(isinstance(c, CatalogInfo) for c in catalogs)
    assert set(names(catalogs)) == expected
    assert len(catalogs) == len(expected), "no catalog may be listed twice"
    main = next(c for c in catalogs if c.name == "main")
    assert main.full_name in (None, "main")
    # PY asks for the paginated form (max_results=0) and the emulator served it.
    (call,) = control.requests(path_prefix=f"{UC}/catalogs")
    assert query_of(call).get("max_results") == ["0"]


@pytest.mark.parametrize(
    "user,expected",
    [("alice", {"default", "sales"}), ("bob", {"default"})],
)
def test_schemas_list_per_user(pat_client, user, expected):
    schemas = list(pat_client(user).schemas.list(catalog_name="main"))

    assert set(names(schemas)) - {"information_schema"} == expected
    for schema in schemas:
        assert schema.catalog_name == "main"
        assert schema.full_name == f"main.{schema.name}"


def test_tables_list_and_get_with_columns(pat_client):
    w = pat_client("alice")

    tables = list(w.tables.list(catalog_name="main", schema_name="default"))
    table = w.tables.get("main.default.customers")

    assert set(names(tables)) == {"customers", "products", "regions"}
    for t in tables:
        assert (t.catalog_name, t.schema_name, t.full_name) == ("main", "default", f"main.default.{t.name}")
    assert table.full_name == "main.default.customers"
    assert (table.catalog_name, table.schema_name, table.name) == ("main", "default", "customers")
    assert table.table_type is not None and table.table_type.value == "MANAGED"
    assert table.data_source_format is not None and table.data_source_format.value == "DELTA"
    got = [(c.name, c.type_text, c.type_name, c.nullable) for c in table.columns or []]
    assert got == CUSTOMERS_COLUMNS
    assert [c.position for c in table.columns] == list(range(len(CUSTOMERS_COLUMNS)))


def _list_everything(w):
    return (
        sorted(names(w.catalogs.list())),
        sorted(names(w.schemas.list(catalog_name="main"))),
        sorted(names(w.tables.list(catalog_name="main", schema_name="default"))),
    )


def _page_requests(control, what):
    return [r for r in control.requests(path_prefix=f"{UC}/{what}") if r["path"] == f"{UC}/{what}"]


def test_sdk_paginates_one_item_pages(pat_client, control):
    w = pat_client("alice")
    expected = _list_everything(w)
    control.reset()
    # PY always sends max_results=0 ("server-chosen size"), which the emulator serves with
    # default_page_size; max_page_size alone caps only explicit max_results > 0 (see the report:
    # with max_page_size=1 alone the SDK still gets one 100-item page). Set both.
    control.config(default_page_size=1, max_page_size=1)

    got = _list_everything(w)

    assert got == expected
    assert got == (["main", "samples"], ["default", "sales"], ["customers", "products", "regions"])
    for what, count in (("catalogs", 2), ("schemas", 2), ("tables", 3)):
        calls = _page_requests(control, what)
        assert all(c["status"] == 200 for c in calls), calls
        with_token = [c for c in calls if query_of(c).get("page_token")]
        # One request per item (plus at most one trailing empty page), the first one without a
        # token, every later one following a page_token.
        assert count <= len(calls) <= count + 1, calls
        assert len(with_token) == len(calls) - 1 >= 1, calls
        tokens = [query_of(c)["page_token"][0] for c in with_token]
        assert len(set(tokens)) == len(tokens), "each page must hand out a fresh token"


def test_sdk_follows_tokens_across_empty_pages(pat_client, control):
    w = pat_client("alice")
    control.config(empty_pages=True)

    got = _list_everything(w)

    assert got == (["main", "samples"], ["default", "sales"], ["customers", "products", "regions"])
    for what in ("catalogs", "schemas", "tables"):
        calls = _page_requests(control, what)
        # An empty first page with a token, the data, then one more empty page: at least 3.
        assert len(calls) >= 3, calls
        assert len([c for c in calls if query_of(c).get("page_token")]) >= 2, calls


def test_sdk_paginates_small_and_empty_pages_together(pat_client, control):
    control.config(default_page_size=1, max_page_size=1, empty_pages=True)

    tables = list(pat_client("alice").tables.list(catalog_name="main", schema_name="default"))

    assert sorted(names(tables)) == ["customers", "products", "regions"]
    calls = _page_requests(control, "tables")
    assert len(calls) >= 5, calls  # leading empty page + 3 single-item pages + trailing empty page
    assert len([c for c in calls if query_of(c).get("page_token")]) == len(calls) - 1


# --- Model Serving --------------------------------------------------------------------------------


def test_serving_endpoints_list(pat_client):
    endpoints = list(pat_client("alice").serving_endpoints.list())

    assert {"echo", "chat", "broken", "not-ready"} <= set(names(endpoints))
    by_name = {e.name: e for e in endpoints}
    assert by_name["chat"].task == "llm/v1/chat"
    assert by_name["chat"].state.ready == EndpointStateReady.READY
    assert by_name["not-ready"].state.ready == EndpointStateReady.NOT_READY


def test_serving_endpoint_get(pat_client):
    w = pat_client("alice")

    chat = w.serving_endpoints.get("chat")
    not_ready = w.serving_endpoints.get("not-ready")

    assert chat.name == "chat"
    assert chat.task == "llm/v1/chat"
    assert chat.state.ready == EndpointStateReady.READY
    assert chat.state.config_update == EndpointStateConfigUpdate.NOT_UPDATING
    entities = chat.config.served_entities
    assert [e.name for e in entities] == ["chat-1"]
    assert entities[0].entity_name == "databricks-meta-llama-3-3-70b-instruct"
    assert not_ready.state.ready == EndpointStateReady.NOT_READY
    assert not_ready.state.config_update == EndpointStateConfigUpdate.IN_PROGRESS


def test_serving_query_echo_returns_its_input(pat_client, control):
    inputs = {"text": "hello", "n": [1, 2, 3]}

    response = pat_client("alice").serving_endpoints.query(name="echo", inputs=inputs)

    # "echo returns its input": the predictions carry back exactly what was sent as `inputs`.
    assert response.predictions == inputs, response
    # The `served-model-name` response header reaches the SDK's response object.
    assert response.served_model_name == "echo-1"
    (call,) = control.requests(path_prefix="/serving-endpoints/echo/invocations")
    assert call["method"] == "POST" and call["status"] == 200


def test_serving_query_chat(pat_client, control):
    w = pat_client("alice")

    response = w.serving_endpoints.query(
        name="chat", messages=[ChatMessage(role=ChatMessageRole.USER, content="hi")]
    )
    raw = control.raw(
        "POST",
        "/serving-endpoints/chat/invocations",
        token="dev-token-alice",
        json={"messages": [{"role": "user", "content": "hi"}]},
    )

    assert response.choices, response
    choice = response.choices[0]
    assert choice.message.role == ChatMessageRole.ASSISTANT
    assert "hi" in choice.message.content
    assert response.usage is not None and response.usage.total_tokens >= 1
    # The wire carries OpenAI's snake_case `finish_reason`; PY 0.162.0's V1ResponseChoiceElement
    # reads only the camelCase `finishReason`, so what the SDK exposes is exactly the camelCase
    # field — None when the service sends snake_case only (UPSTREAM §4.3 quirk).
    wire_choice = raw.json()["choices"][0]
    assert wire_choice["finish_reason"] == "stop"
    assert choice.finish_reason == wire_choice.get("finishReason")


def test_serving_query_broken_endpoint_raises_internal_error(pat_client, control):
    with pytest.raises(InternalError):
        pat_client("alice").serving_endpoints.query(name="broken", inputs={"x": 1})

    calls = control.requests(path_prefix="/serving-endpoints/broken/invocations")
    assert [c["status"] for c in calls] == [500], "a 500 must not be retried"


# --- SQL Statement Execution ----------------------------------------------------------------------


def test_statement_execution_polls_and_fetches_all_chunks(pat_client, control):
    control.config(sql_pending_ms=400, sql_running_ms=400, sql_chunk_rows=10)
    w = pat_client("alice")

    submitted = w.statement_execution.execute_statement(
        warehouse_id="dev-warehouse", statement="SELECT * FROM main.default.customers", wait_timeout="0s"
    )
    states = [submitted.status.state]
    deadline = time.monotonic() + 20
    status = submitted
    while status.status.state in (StatementState.PENDING, StatementState.RUNNING):
        assert time.monotonic() < deadline, f"statement still {status.status.state} after 20 s"
        time.sleep(0.05)
        status = w.statement_execution.get_statement(submitted.statement_id)
        states.append(status.status.state)

    assert submitted.statement_id
    assert submitted.status.state == StatementState.PENDING
    assert StatementState.RUNNING in states
    assert status.status.state == StatementState.SUCCEEDED, status.status
    manifest = status.manifest
    assert [c.name for c in manifest.schema.columns] == [c[0] for c in CUSTOMERS_COLUMNS]
    assert manifest.schema.column_count == len(CUSTOMERS_COLUMNS)
    assert manifest.total_row_count == CUSTOMERS_ROWS
    assert manifest.total_chunk_count == 3
    assert [(c.chunk_index, c.row_offset, c.row_count) for c in manifest.chunks] == [(0, 0, 10), (1, 10, 10), (2, 20, 5)]
    # Follow the chain from the first chunk, as an application would.
    chunk = status.result
    rows = list(chunk.data_array)
    fetched = [chunk.chunk_index]
    while chunk.next_chunk_index is not None:
        chunk = w.statement_execution.get_statement_result_chunk_n(submitted.statement_id, chunk.next_chunk_index)
        fetched.append(chunk.chunk_index)
        rows.extend(chunk.data_array)
    assert fetched == [0, 1, 2]
    assert len(rows) == CUSTOMERS_ROWS
    assert rows[0] == ["1", "Ada Lovelace", "ada.lovelace@example.org", "2025-02-04", "true", "1652.97"]
    assert all(v is None or isinstance(v, str) for row in rows for v in row), "data_array holds strings or null"
    assert rows[6][5] is None  # Margaret Hamilton's lifetime_value is NULL
    # Chunks can also be fetched in any order.
    last = w.statement_execution.get_statement_result_chunk_n(submitted.statement_id, 2)
    assert last.row_offset == 20 and len(last.data_array) == 5 and last.next_chunk_index is None


def test_failed_statement_is_http_200_with_state_failed(pat_client, control):
    w = pat_client("alice")

    bad_syntax = w.statement_execution.execute_statement(
        warehouse_id="dev-warehouse", statement="SELEC nonsense FROM", wait_timeout="10s"
    )
    missing_table = w.statement_execution.execute_statement(
        warehouse_id="dev-warehouse", statement="SELECT * FROM main.default.no_such_table", wait_timeout="10s"
    )

    for response in (bad_syntax, missing_table):
        assert response.status.state == StatementState.FAILED, response
        assert response.status.error is not None and response.status.error.message
        assert response.result is None
    calls = [c for c in control.requests(path_prefix="/api/2.0/sql/statements") if c["method"] == "POST"]
    assert [c["status"] for c in calls] == [200, 200]
    again = w.statement_execution.get_statement(bad_syntax.statement_id)
    assert again.status.state == StatementState.FAILED


# --- Lakebase ---------------------------------------------------------------------------------------


def test_generate_database_credential_with_m2m(sp_client, control):
    before = datetime.now(timezone.utc)

    credential = sp_client().database.generate_database_credential(
        instance_names=["dev-lakebase"], request_id=str(uuid.uuid4())
    )

    assert credential.token
    assert credential.expiration_time
    expires = datetime.fromisoformat(credential.expiration_time.replace("Z", "+00:00"))
    assert before + timedelta(minutes=50) < expires < before + timedelta(minutes=70)
    claims = jwt_claims(credential.token)
    assert claims["sub"] == "dbapp-sp"
    (call,) = control.requests(path_prefix="/api/2.0/database/credentials")
    assert call["principal"] == "dbapp-sp" and call["status"] == 200


def test_get_database_instance(pat_client):
    instance = pat_client("alice").database.get_database_instance("dev-lakebase")

    assert instance.name == "dev-lakebase"
    assert instance.uid == "8a4d2c1e-0000-4000-8000-00000000beef"
    assert instance.state is not None and instance.state.value == "AVAILABLE"
    assert instance.read_write_dns == "instance-8a4d2c1e.database.cloud.databricks.com"
    assert instance.pg_version == "PG_VERSION_16"
    assert instance.capacity == "CU_1"


# --- errors -------------------------------------------------------------------------------------------


def test_not_found_raises_sdk_not_found(pat_client, control):
    w = pat_client("alice")

    with pytest.raises(NotFound) as catalog:
        w.catalogs.get("no_such_catalog")
    with pytest.raises(NotFound) as table:
        w.tables.get("main.default.no_such_table")
    control.fault(path=f"{UC}/catalogs", status=404, count=1)
    with pytest.raises(NotFound) as injected:
        list(w.catalogs.list())

    assert catalog.value.error_code == "CATALOG_DOES_NOT_EXIST"
    assert table.value.error_code == "TABLE_DOES_NOT_EXIST"
    assert injected.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert list(w.catalogs.list()), "the injected fault fired once only"


def test_permission_denied_raises_sdk_permission_denied(pat_client, control):
    bob = pat_client("bob")

    with pytest.raises(PermissionDenied) as denied:
        list(bob.schemas.list(catalog_name="samples"))
    control.fault(path="/api/2.0/serving-endpoints", status=403, count=1)
    with pytest.raises(PermissionDenied) as injected:
        list(bob.serving_endpoints.list())

    assert denied.value.error_code == "PERMISSION_DENIED"
    assert injected.value.error_code == "PERMISSION_DENIED"


def test_too_many_requests_surfaces_as_sdk_too_many_requests(pat_client, control):
    # PY retries every 429 (and 503) until its retry budget is spent, whatever the body: the
    # error customizer gives each one `retry_after_secs` (Retry-After, or 1 s when absent), and
    # `retried()` retries anything that has it. There is no 429 shape it surfaces directly. With a
    # 1 s budget it gives up after ~1-2 s and raises TimeoutError("Timed out after 0:00:01") whose
    # __cause__ is the last TooManyRequests (RequestLimitExceeded for REQUEST_LIMIT_EXCEEDED).
    control.fault(path="/api/2.0/preview/scim/v2/Me", status=429, count=1000, retry_after=0)
    w = pat_client("alice", retry_timeout_seconds=1)

    started = time.monotonic()
    with pytest.raises((TooManyRequests, TimeoutError)) as raised:
        w.current_user.me()
    elapsed = time.monotonic() - started

    error = raised.value if isinstance(raised.value, TooManyRequests) else raised.value.__cause__
    assert isinstance(error, TooManyRequests), repr(raised.value)
    assert error.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert elapsed < 10
    statuses = [c["status"] for c in control.requests(path_prefix="/api/2.0/preview/scim/v2/Me")]
    assert statuses and set(statuses) == {429}


@pytest.mark.parametrize("status", [429, 503])
def test_transient_fault_is_retried_transparently_honouring_retry_after(pat_client, control, status):
    control.fault(path="/api/2.0/preview/scim/v2/Me", status=status, count=1, retry_after=1)

    started = time.monotonic()
    me = pat_client("alice").current_user.me()
    elapsed = time.monotonic() - started

    assert me.user_name == "alice@example.com"
    calls = control.requests(path_prefix="/api/2.0/preview/scim/v2/Me")
    assert [c["status"] for c in calls] == [status, 200]
    assert calls[0]["fault"] is True
    assert elapsed >= 1.0, "Retry-After: 1 was honoured"


def test_unknown_token_raises_permission_denied_with_integer_error_code(pat_client, control):
    with pytest.raises(PermissionDenied) as raised:
        pat_client("alice", token="dapi-no-such-token").current_user.me()

    # The body is {"error_code": 403, "message": "Invalid access token."}: an integer code that PY
    # parses without crashing (it maps by HTTP status) and keeps as the int 403.
    assert raised.value.error_code == 403
    assert str(raised.value).startswith("Invalid access token.")
    assert "unable to parse response" not in str(raised.value)
    (call,) = control.requests(path_prefix="/api/2.0/preview/scim/v2/Me")
    assert call["status"] == 403


def test_expired_oauth_token_raises_permission_denied_jwt_has_expired(pat_client, control):
    token = control.mint_token("alice@example.com", ttl_secs=3600)
    w = pat_client("alice", token=token)
    assert w.current_user.me().user_name == "alice@example.com"

    control.expire_token(token)
    with pytest.raises(PermissionDenied) as raised:
        w.current_user.me()

    assert raised.value.error_code == 403
    assert str(raised.value).startswith("JWT has expired")
