"""The emulator's SQL engine through the official SDK: statement parameters (UPSTREAM-2 §3.2) in a
WHERE clause, with a GROUP BY, checked against the raw rows the same SDK reads from the table.
"""

from __future__ import annotations

from collections import defaultdict

from databricks.sdk.service.sql import StatementParameterListItem, StatementState

WAREHOUSE = "dev-warehouse"


def _all_rows(w, statement, parameters=None):
    response = w.statement_execution.execute_statement(
        warehouse_id=WAREHOUSE, statement=statement, parameters=parameters, wait_timeout="10s"
    )
    assert response.status.state == StatementState.SUCCEEDED, response.status
    chunk = response.result
    rows = list(chunk.data_array or [])
    while chunk.next_chunk_index is not None:
        chunk = w.statement_execution.get_statement_result_chunk_n(response.statement_id, chunk.next_chunk_index)
        rows.extend(chunk.data_array or [])
    return response.manifest, rows


def test_where_with_typed_parameters_and_group_by(pat_client):
    w = pat_client("alice")
    _, orders = _all_rows(w, "SELECT status, quantity, ordered_at FROM main.sales.orders")
    since, minimum = "2026-03-01T00:00:00Z", 3
    expected = defaultdict(lambda: [0, 0])
    for status, quantity, ordered_at in orders:
        if ordered_at >= since and int(quantity) >= minimum:
            expected[status][0] += 1
            expected[status][1] += int(quantity)

    manifest, rows = _all_rows(
        w,
        "SELECT status, COUNT(*) AS n, SUM(quantity) AS units FROM main.sales.orders "
        "WHERE ordered_at >= :since AND quantity >= :minimum GROUP BY status ORDER BY status",
        parameters=[
            StatementParameterListItem(name="since", value="2026-03-01 00:00:00", type="TIMESTAMP"),
            StatementParameterListItem(name="minimum", value=str(minimum), type="INT"),
        ],
    )

    assert expected, "the fixture must have matching orders for this test to mean anything"
    assert rows == [[status, str(n), str(units)] for status, (n, units) in sorted(expected.items())]
    columns = [(c.name, c.type_name.value, c.type_text) for c in manifest.schema.columns]
    assert columns == [("status", "STRING", "STRING"), ("n", "LONG", "BIGINT"), ("units", "LONG", "BIGINT")]


def test_string_parameter_without_type_and_null_value(pat_client):
    w = pat_client("alice")
    _, values = _all_rows(w, "SELECT lifetime_value FROM main.default.customers")

    _, named = _all_rows(
        w,
        "SELECT id FROM main.default.customers WHERE name = :name",
        parameters=[StatementParameterListItem(name="name", value="Grace Hopper")],
    )
    _, nulls = _all_rows(
        w,
        "SELECT COUNT(*) FROM main.default.customers WHERE lifetime_value <=> :v",
        parameters=[StatementParameterListItem(name="v", type="DOUBLE")],
    )

    assert named == [["2"]]
    assert nulls == [[str(sum(1 for (v,) in values if v is None))]]


def test_unbound_parameter_fails_the_statement(pat_client):
    w = pat_client("alice")

    response = w.statement_execution.execute_statement(
        warehouse_id=WAREHOUSE,
        statement="SELECT * FROM main.default.customers WHERE id = :id",
        wait_timeout="10s",
    )

    assert response.status.state == StatementState.FAILED
    assert response.status.error.message.startswith("[UNBOUND_SQL_PARAMETER]")
    assert response.result is None
