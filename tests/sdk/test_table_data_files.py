"""Fixture tables whose rows live in data files: a Parquet file written by pandas/pyarrow with
their defaults (Snappy, nanosecond timestamps, dictionary pages) and a CSV file, queried through
the official SDK with a join, a typed parameter and per-user permissions.
"""

from __future__ import annotations

from typing import Any, Dict

import pandas as pd
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.service.sql import StatementParameterListItem, StatementState

from conftest import TOKENS

WAREHOUSE = "dev-warehouse"


def _column(name: str, type_text: str, type_name: str) -> Dict[str, Any]:
    return {"name": name, "type_text": type_text, "type_name": type_name}


def _client(url: str, user: str) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=url, token=TOKENS[user], auth_type="pat", retry_timeout_seconds=5))


def _run(w: WorkspaceClient, statement: str, parameters=None):
    return w.statement_execution.execute_statement(
        warehouse_id=WAREHOUSE, statement=statement, parameters=parameters, wait_timeout="10s"
    )


def test_parquet_and_csv_tables_join_with_parameters_as_the_user(default_fixture, emulator_with_fixture, tmp_path):
    # Arrange: rides in Parquet (pandas defaults), zones in CSV, in a schema only alice may read
    (tmp_path / "data").mkdir()
    rides = pd.DataFrame(
        {
            "ride_id": pd.Series([1, 2, 3, 4], dtype="int64"),
            "zone": ["north", "south", "north", None],
            "fare": [12.5, 7.25, 30.0, 9.0],
            "shared": [False, True, False, True],
            "started_at": pd.to_datetime(
                ["2026-01-31 08:00:00", "2026-01-31 09:30:00.5", "2026-02-01 18:15:00", "2026-02-02 07:00:00"],
                format="ISO8601",
            ),
        }
    )
    rides.to_parquet(tmp_path / "data" / "rides.parquet", index=False)
    (tmp_path / "data" / "zones.csv").write_text('zone,label\nnorth,"North, upper"\nsouth,South\n')
    fixture = default_fixture
    fixture["catalogs"][0]["schemas"].append(
        {
            "name": "mobility",
            "readers": ["alice@example.com"],
            "tables": [
                {
                    "name": "rides",
                    "data_file": "data/rides.parquet",
                    "columns": [
                        _column("ride_id", "bigint", "LONG"),
                        _column("zone", "string", "STRING"),
                        _column("fare", "double", "DOUBLE"),
                        _column("shared", "boolean", "BOOLEAN"),
                        _column("started_at", "timestamp", "TIMESTAMP"),
                    ],
                },
                {
                    "name": "zones",
                    "data_file": "data/zones.csv",
                    "columns": [_column("zone", "string", "STRING"), _column("label", "string", "STRING")],
                },
            ],
        }
    )
    url = emulator_with_fixture(fixture)
    alice, bob = _client(url, "alice"), _client(url, "bob")

    # Act
    joined = _run(
        alice,
        "SELECT z.label, COUNT(*) AS rides, SUM(r.fare) AS fares, MIN(r.started_at) AS first "
        "FROM main.mobility.rides r JOIN main.mobility.zones z ON r.zone = z.zone "
        "WHERE r.fare >= :min_fare GROUP BY z.label ORDER BY z.label",
        parameters=[StatementParameterListItem(name="min_fare", value="7.25", type="DOUBLE")],
    )
    every = _run(alice, "SELECT ride_id, zone, shared, started_at FROM main.mobility.rides ORDER BY ride_id")
    refused = _run(bob, "SELECT COUNT(*) FROM main.mobility.rides")

    # Assert
    assert joined.status.state == StatementState.SUCCEEDED, joined.status
    assert joined.result.data_array == [
        ["North, upper", "2", "42.5", "2026-01-31T08:00:00Z"],
        ["South", "1", "7.25", "2026-01-31T09:30:00.500Z"],
    ]
    assert [c.type_name.value for c in joined.manifest.schema.columns] == ["STRING", "LONG", "DOUBLE", "TIMESTAMP"]
    assert every.result.data_array == [
        ["1", "north", "false", "2026-01-31T08:00:00Z"],
        ["2", "south", "true", "2026-01-31T09:30:00.500Z"],
        ["3", "north", "false", "2026-02-01T18:15:00Z"],
        ["4", None, "true", "2026-02-02T07:00:00Z"],
    ]
    assert refused.status.state == StatementState.FAILED
    assert refused.status.error.message.startswith("[INSUFFICIENT_PERMISSIONS]")
