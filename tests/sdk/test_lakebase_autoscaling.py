"""Lakebase Autoscaling against the emulator with the official SDK (databricks-sdk 0.162.0,
`w.postgres`) and databricks-ai-bridge 0.22.0's LakebasePool host resolution.

`create_project(...).wait()` and friends poll `GET /api/2.0/postgres/{operation.name}` (PY
retries.py `poll`: 1 s, 2 s, … between polls) until `done`, then read `response`; a delete's
`response` is `google.protobuf.Empty`. The emulator finishes operations at once unless
`postgres_operation_ms` says otherwise; one test sets it so the waiter really polls.

LakebasePool opens a psycopg pool to `<host>:5432` as soon as it is built; this module's session
emulator has no Postgres behind it, so the tests here drive its base class `_LakebaseBase`, which
does everything before that (resolve the host — endpoint mode: `get_endpoint`; project/branch
mode: `list_endpoints` and the first READ_WRITE endpoint —, infer the user from SCIM Me, mint the
first credential) without connecting. `test_lakebase_front.py` runs the whole pool against the
emulated Lakebase's Postgres front.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from databricks.sdk.common.lro import LroOptions
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.errors import AlreadyExists, BadRequest, NotFound
from databricks.sdk.service.postgres import (
    Branch,
    BranchSpec,
    Endpoint,
    EndpointSpec,
    EndpointType,
    Project,
    ProjectSpec,
)

from databricks_ai_bridge.lakebase import _LakebaseBase
from google.protobuf.duration_pb2 import Duration

WAIT = LroOptions(timeout=timedelta(seconds=60))
FIXTURE_ENDPOINT = "projects/dev/branches/production/endpoints/primary"
FIXTURE_HOST = "ep-primary.database.us-west-2.cloud.databricks.com"


def test_the_fixture_project_is_listed_with_its_branch_and_endpoint(pat_client):
    w = pat_client("alice")

    projects = list(w.postgres.list_projects())
    branches = list(w.postgres.list_branches(parent="projects/dev"))
    endpoints = list(w.postgres.list_endpoints(parent="projects/dev/branches/production"))

    assert [p.name for p in projects] == ["projects/dev"]
    assert projects[0].status.default_branch == "projects/dev/branches/production"
    assert [b.name for b in branches] == ["projects/dev/branches/production"]
    assert branches[0].status.default is True
    assert [e.name for e in endpoints] == [FIXTURE_ENDPOINT]
    assert endpoints[0].status.endpoint_type == EndpointType.ENDPOINT_TYPE_READ_WRITE
    assert endpoints[0].status.hosts.host == FIXTURE_HOST


def test_a_project_branch_and_endpoint_are_created_waited_on_listed_and_deleted(pat_client):
    w = pat_client("alice")

    project = w.postgres.create_project(
        project=Project(spec=ProjectSpec(display_name="SDK app", pg_version=17)), project_id="sdk-app"
    ).wait(WAIT)
    branch = w.postgres.create_branch(
        parent="projects/sdk-app",
        branch=Branch(spec=BranchSpec(ttl=Duration(seconds=7200))),
        branch_id="feature-x",
    ).wait(WAIT)
    endpoint = w.postgres.create_endpoint(
        parent=branch.name,
        endpoint=Endpoint(
            spec=EndpointSpec(
                endpoint_type=EndpointType.ENDPOINT_TYPE_READ_WRITE,
                autoscaling_limit_min_cu=0.5,
                autoscaling_limit_max_cu=2,
            )
        ),
        endpoint_id="rw",
    ).wait(WAIT)
    branches = [b.name for b in w.postgres.list_branches(parent=project.name)]
    endpoints = list(w.postgres.list_endpoints(parent=branch.name))
    credential = w.postgres.generate_database_credential(endpoint=endpoint.name)
    updated = w.postgres.update_endpoint(
        name=endpoint.name,
        endpoint=Endpoint(spec=EndpointSpec(endpoint_type=EndpointType.ENDPOINT_TYPE_READ_WRITE, autoscaling_limit_max_cu=4)),
        update_mask=FieldMask(["spec.autoscaling_limit_max_cu"]),
    ).wait(WAIT)
    w.postgres.delete_endpoint(name=endpoint.name).wait(WAIT)
    w.postgres.delete_branch(name=branch.name).wait(WAIT)
    after = [b.name for b in w.postgres.list_branches(parent=project.name)]
    with_deleted = [b.name for b in w.postgres.list_branches(parent=project.name, show_deleted=True)]
    w.postgres.delete_project(name=project.name, purge=True).wait(WAIT)

    assert project.name == "projects/sdk-app"
    assert project.status.display_name == "SDK app"
    assert project.status.pg_version == 17
    assert project.status.owner == "alice@example.com"
    assert branch.name == "projects/sdk-app/branches/feature-x"
    assert branch.status.source_branch == "projects/sdk-app/branches/production"
    assert branch.status.expire_time is not None
    assert branches == ["projects/sdk-app/branches/production", "projects/sdk-app/branches/feature-x"]
    assert [e.name for e in endpoints] == ["projects/sdk-app/branches/feature-x/endpoints/rw"]
    assert endpoint.status.autoscaling_limit_min_cu == 0.5
    assert endpoint.status.hosts.host.endswith(".cloud.databricks.com")
    assert credential.token and credential.expire_time is not None
    assert updated.status.autoscaling_limit_max_cu == 4
    assert after == ["projects/sdk-app/branches/production"]
    assert len(with_deleted) == 2
    with pytest.raises(NotFound):
        w.postgres.get_project(name="projects/sdk-app")
    with pytest.raises(NotFound):
        w.postgres.generate_database_credential(endpoint=endpoint.name)


def test_a_new_project_brings_production_and_primary(pat_client):
    w = pat_client("bob")

    w.postgres.create_project(project=Project(spec=ProjectSpec()), project_id="implicit").wait(WAIT)
    endpoint = w.postgres.get_endpoint(name="projects/implicit/branches/production/endpoints/primary")
    databases = list(w.postgres.list_databases(parent="projects/implicit/branches/production"))

    assert endpoint.status.endpoint_type == EndpointType.ENDPOINT_TYPE_READ_WRITE
    assert endpoint.status.current_state.value == "ACTIVE"
    assert [d.status.postgres_database for d in databases] == ["databricks_postgres"]


def test_the_waiter_polls_until_a_slow_operation_is_done(pat_client, control):
    control.config(postgres_operation_ms=1500)
    w = pat_client("alice")

    started = time.monotonic()
    operation = w.postgres.create_project(project=Project(spec=ProjectSpec()), project_id="slow")
    first_done = operation.done()
    project = operation.wait(WAIT)
    elapsed = time.monotonic() - started
    polls = [r for r in control.requests("/api/2.0/postgres/projects/slow/operations/") if r["method"] == "GET"]

    assert first_done is False
    assert project.name == "projects/slow"
    assert elapsed >= 1.4
    assert len(polls) >= 2


def test_sdk_errors_for_duplicates_unknown_parents_and_bad_limits(pat_client):
    w = pat_client("alice")

    with pytest.raises(AlreadyExists):
        w.postgres.create_project(project=Project(spec=ProjectSpec()), project_id="dev")
    with pytest.raises(NotFound):
        w.postgres.create_branch(parent="projects/nope", branch=Branch(spec=BranchSpec()), branch_id="b")
    with pytest.raises(BadRequest):
        w.postgres.create_endpoint(
            parent="projects/dev/branches/production",
            endpoint=Endpoint(
                spec=EndpointSpec(endpoint_type=EndpointType.ENDPOINT_TYPE_READ_ONLY, autoscaling_limit_max_cu=128)
            ),
            endpoint_id="big",
        )
    with pytest.raises(BadRequest):
        w.postgres.create_project(project=Project(spec=ProjectSpec()), project_id="Not_Valid")


def test_lakebase_pool_resolves_the_host_in_endpoint_mode(pat_client):
    w = pat_client("alice")

    base = _LakebaseBase(autoscaling_endpoint=FIXTURE_ENDPOINT, workspace_client=w)
    token = base._mint_token()

    assert base.host == FIXTURE_HOST
    assert base.username == "alice@example.com"
    assert token.count(".") == 2
    assert "sslmode=require" in base._conninfo() and f"host={FIXTURE_HOST}" in base._conninfo()


def test_lakebase_pool_resolves_the_read_write_endpoint_in_project_branch_mode(pat_client):
    w = pat_client("alice")
    w.postgres.create_project(project=Project(spec=ProjectSpec()), project_id="aib").wait(WAIT)
    w.postgres.create_branch(parent="projects/aib", branch=Branch(spec=BranchSpec()), branch_id="dev").wait(WAIT)
    # A read-only endpoint first, so that picking the READ_WRITE one is what is tested.
    w.postgres.create_endpoint(
        parent="projects/aib/branches/dev",
        endpoint=Endpoint(spec=EndpointSpec(endpoint_type=EndpointType.ENDPOINT_TYPE_READ_ONLY)),
        endpoint_id="reader",
    ).wait(WAIT)
    writer = w.postgres.create_endpoint(
        parent="projects/aib/branches/dev",
        endpoint=Endpoint(spec=EndpointSpec(endpoint_type=EndpointType.ENDPOINT_TYPE_READ_WRITE)),
        endpoint_id="writer",
    ).wait(WAIT)

    by_names = _LakebaseBase(project="aib", branch="dev", workspace_client=w)
    by_path = _LakebaseBase(branch="projects/aib/branches/dev", workspace_client=w)
    token = by_names._mint_token()

    assert by_names.host == writer.status.hosts.host
    assert by_names._endpoint_name == "projects/aib/branches/dev/endpoints/writer"
    assert by_path.host == writer.status.hosts.host
    assert token.count(".") == 2


def test_lakebase_pool_reports_an_unknown_branch_or_endpoint(pat_client):
    w = pat_client("alice")

    with pytest.raises(ValueError, match="Unable to list endpoints"):
        _LakebaseBase(project="dev", branch="nope", workspace_client=w)
    with pytest.raises(ValueError, match="Unable to resolve Lakebase autoscaling endpoint"):
        _LakebaseBase(autoscaling_endpoint="projects/dev/branches/production/endpoints/nope", workspace_client=w)
