"""SQL warehouses, statement result options and databricks-sql-connector against the emulator.

The SDK half drives `w.warehouses` (list, stop_and_wait, start_and_wait, whose waiter counts
STOPPED as a failure of a start) and `w.statement_execution` with `EXTERNAL_LINKS` +
`ARROW_STREAM`, downloading the link the way cloud storage wants it: without a token. The
connector half runs `databricks-sql-connector` with `use_sea=True` (the Statement Execution API
and SQL sessions), with its default cloud fetch and with `use_cloud_fetch=False`.
"""

from __future__ import annotations

import datetime
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlparse

import pyarrow
import pytest
import requests
from databricks import sql as dbsql
from databricks.sdk.service.sql import Disposition, Format, State, StatementState

from conftest import TOKENS

WAREHOUSE = "dev-warehouse"
HTTP_PATH = f"/sql/1.0/warehouses/{WAREHOUSE}"


def connect(emulator_url: str, **kwargs):
    """A connector session as alice, over plain HTTP to the emulator's port."""
    port = urlparse(emulator_url).port
    return dbsql.connect(
        server_hostname="http://127.0.0.1",
        _port=port,
        http_path=HTTP_PATH,
        access_token=TOKENS["alice"],
        use_sea=True,
        enable_telemetry=False,
        **kwargs,
    )


# --- warehouses ---------------------------------------------------------------------------------


def test_warehouses_list_and_get(pat_client, emulator_url):
    w = pat_client("alice")

    warehouses = list(w.warehouses.list())
    one = w.warehouses.get(WAREHOUSE)

    assert [x.id for x in warehouses] == [WAREHOUSE]
    assert one.state == State.RUNNING
    assert one.odbc_params.path == HTTP_PATH
    assert one.odbc_params.port == urlparse(emulator_url).port
    assert one.cluster_size == "Small"
    assert one.num_clusters == 1


def test_warehouses_stop_and_wait_then_start_and_wait(pat_client, control):
    control.config(warehouse_start_ms=300, warehouse_stop_ms=300)
    w = pat_client("alice")

    stopped = w.warehouses.stop_and_wait(WAREHOUSE, timeout=timedelta(seconds=30))
    started = w.warehouses.start_and_wait(WAREHOUSE, timeout=timedelta(seconds=30))

    assert stopped.state == State.STOPPED
    assert started.state == State.RUNNING
    assert started.num_clusters == 1
    calls = [(r["method"], r["path"]) for r in control.requests("/api/2.0/sql/warehouses")]
    assert ("POST", f"/api/2.0/sql/warehouses/{WAREHOUSE}/stop") in calls
    assert ("POST", f"/api/2.0/sql/warehouses/{WAREHOUSE}/start") in calls


def test_a_statement_starts_a_stopped_warehouse_and_waits_for_it(pat_client, control):
    control.config(warehouse_start_ms=300)
    control.warehouse_state(WAREHOUSE, "STOPPED")
    w = pat_client("alice")

    response = w.statement_execution.execute_statement(
        statement="SELECT COUNT(*) FROM main.default.regions", warehouse_id=WAREHOUSE, wait_timeout="10s"
    )

    assert response.status.state == StatementState.SUCCEEDED
    assert response.result.data_array == [["3"]]
    assert w.warehouses.get(WAREHOUSE).state == State.RUNNING


# --- statements with external links ------------------------------------------------------------


def test_execute_statement_external_links_arrow_stream_fetched_without_a_token(pat_client):
    w = pat_client("alice")

    response = w.statement_execution.execute_statement(
        statement="SELECT * FROM main.default.customers",
        warehouse_id=WAREHOUSE,
        disposition=Disposition.EXTERNAL_LINKS,
        format=Format.ARROW_STREAM,
        wait_timeout="10s",
    )
    link = response.result.external_links[0]
    plain = requests.Session()
    plain.trust_env = False  # no proxy, and certainly no credentials from the environment
    download = plain.get(link.external_link, timeout=10)
    with_token = plain.get(
        link.external_link, headers={"Authorization": f"Bearer {TOKENS['alice']}"}, timeout=10
    )
    table = pyarrow.ipc.open_stream(download.content).read_all()

    assert response.status.state == StatementState.SUCCEEDED
    assert response.manifest.format == Format.ARROW_STREAM
    assert download.status_code == 200
    assert with_token.status_code == 400, "a presigned URL refuses a second auth mechanism"
    assert link.byte_count == len(download.content)
    assert table.num_rows == 25 == link.row_count
    assert table.schema.types == [
        pyarrow.int64(),
        pyarrow.string(),
        pyarrow.string(),
        pyarrow.date32(),
        pyarrow.bool_(),
        pyarrow.float64(),
    ]
    first = table.slice(0, 1).to_pylist()[0]
    assert first["id"] == 1
    assert first["signup_date"] == datetime.date(2025, 2, 4)
    assert first["is_active"] is True
    assert first["lifetime_value"] == 1652.97


# --- databricks-sql-connector, use_sea=True ----------------------------------------------------


@pytest.mark.parametrize("cloud_fetch", [True, False], ids=["cloud-fetch", "inline"])
def test_sql_connector_runs_a_query(emulator_url, control, cloud_fetch):
    with connect(emulator_url, use_cloud_fetch=cloud_fetch) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM main.default.products")
            rows = cursor.fetchall()
            description = [d[0] for d in cursor.description]
        assert len(control.sessions()) == 1

    assert description == ["id", "name", "price", "category"]
    assert len(rows) == 8
    assert (rows[0].id, rows[0].name, rows[0].price) == (1, "Notebook", Decimal("12.50"))
    assert rows[7].price is None
    assert control.sessions() == [], "closing the connection deletes its session"
    paths = {r["path"] for r in control.requests("/api/2.0/sql/")}
    assert "/api/2.0/sql/sessions" in paths


def test_sql_connector_session_catalog_and_schema_are_the_defaults(emulator_url):
    with connect(emulator_url, catalog="samples", schema="nyctaxi") as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM trips")
            (count,) = cursor.fetchone()

    assert count == 60


def test_sql_connector_fetches_every_cloud_fetch_chunk(emulator_url, control):
    control.config(sql_chunk_rows=7)

    with connect(emulator_url) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM main.sales.orders")
            rows = cursor.fetchall()

    assert [r.order_id for r in rows] == sorted(r.order_id for r in rows)
    assert len(rows) == 120
    assert rows[0].ordered_at == datetime.datetime(2026, 2, 2, 7, 13, tzinfo=datetime.timezone.utc)
    chunk_calls = [r for r in control.requests("/api/2.0/sql/statements/") if "/result/chunks/" in r["path"]]
    assert chunk_calls, "links past the first come from the chunk endpoint"


def test_sql_connector_named_parameters(emulator_url):
    with connect(emulator_url) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM main.default.customers WHERE id = :id", {"id": 3})
            rows = cursor.fetchall()

    assert [r.name for r in rows] == ["Alan Turing"]
