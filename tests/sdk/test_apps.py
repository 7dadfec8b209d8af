"""Databricks Apps' control plane against the emulator with the official SDK (databricks-sdk
0.162.0, `w.apps`).

The SDK's waiters (`create_and_wait`, `start_and_wait`, `stop_and_wait`, `deploy_and_wait`,
`create_update_and_wait`) poll `GET /api/2.0/apps/{name}` (or the deployment, or the update) with
1 s, 2 s, … between polls until the target state. The emulator settles transitions without
processes after `apps_transition_ms` (0 by default); the first test sets it so the waiters really
poll. `dbapp emulate` runs deployed apps (`run_apps`), so a deployment succeeds only once the
uploaded app listens on `DATABRICKS_APP_PORT`, and `app.url` reaches it through the emulated Apps
proxy: the last tests deploy a Python and a Node app and call them.
"""

from __future__ import annotations

import json

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import InvalidParameterValue, OperationFailed, ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service.apps import (
    App,
    AppDeployment,
    AppDeploymentMode,
    AppDeploymentState,
    AppResource,
    AppResourceSqlWarehouse,
    AppResourceSqlWarehouseSqlWarehousePermission,
    ApplicationState,
    AppUpdateUpdateStatusUpdateState,
    ComputeSize,
    ComputeState,
)
from databricks.sdk.service.workspace import ImportFormat

# A stdlib Python app that answers every GET with its app name and the identity headers the proxy
# added. It waits a moment before listening, as an app importing its framework does, so that the
# first poll of `deploy_and_wait` sees the deployment IN_PROGRESS.
PYTHON_APP = b"""
import json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "app": os.environ["DATABRICKS_APP_NAME"],
            "runtime": "python",
            "email": self.headers.get("X-Forwarded-Email"),
            "authorization": self.headers.get("Authorization"),
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

time.sleep(0.5)
ThreadingHTTPServer(("0.0.0.0", int(os.environ["DATABRICKS_APP_PORT"])), Handler).serve_forever()
"""

# The same with Node's stdlib, started by the default command (`npm run start`).
NODE_SERVER = b"""
const http = require("http");
http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({
    app: process.env.DATABRICKS_APP_NAME,
    runtime: "node",
    email: req.headers["x-forwarded-email"] || null,
    authorization: req.headers["authorization"] || null,
  }));
}).listen(Number(process.env.DATABRICKS_APP_PORT), "0.0.0.0");
process.on("SIGTERM", () => process.exit(0));
"""
NODE_PACKAGE = json.dumps({"name": "node-app", "private": True, "scripts": {"start": "node server.js"}}).encode()


def upload_app(w: WorkspaceClient, folder: str) -> None:
    """Uploads a small Python app (app.yaml and app.py) to `folder`, as a deploy does before it
    names the folder as the source code path."""
    w.workspace.mkdirs(folder)
    w.workspace.upload(f"{folder}/app.yaml", b"command: [python3, app.py]\n", format=ImportFormat.AUTO, overwrite=True)
    w.workspace.upload(f"{folder}/app.py", PYTHON_APP, format=ImportFormat.AUTO, overwrite=True)


DEFAULT_SCOPES = ["iam.access-control:read", "iam.current-user:read"]
SOURCE = "/Workspace/Users/alice@example.com/my-app"


def test_create_and_wait_then_deploy_and_wait_polls_until_the_app_runs(pat_client, control):
    control.config(apps_transition_ms=1200)
    w = pat_client("alice")

    created = w.apps.create_and_wait(App(name="my-app", description="Demo"))
    upload_app(w, SOURCE)
    deployment = w.apps.deploy_and_wait(
        "my-app", AppDeployment(source_code_path=SOURCE, mode=AppDeploymentMode.SNAPSHOT)
    )
    app = w.apps.get("my-app")
    app_polls = [r for r in control.requests("/api/2.0/apps/my-app") if r["method"] == "GET" and r["path"] == "/api/2.0/apps/my-app"]
    deployment_polls = [r for r in control.requests("/api/2.0/apps/my-app/deployments/") if r["method"] == "GET"]

    assert created.compute_status.state == ComputeState.ACTIVE
    assert created.creator == "alice@example.com"
    assert created.url.startswith("http://127.0.0.1:")
    assert len(app_polls) >= 2, "create_and_wait saw STARTING first"
    assert deployment.status.state == AppDeploymentState.SUCCEEDED
    assert deployment.source_code_path == SOURCE
    assert len(deployment_polls) >= 2, "deploy_and_wait saw IN_PROGRESS first"
    assert app.app_status.state == ApplicationState.RUNNING
    assert app.active_deployment.deployment_id == deployment.deployment_id
    assert app.compute_size == ComputeSize.MEDIUM
    assert [d.deployment_id for d in w.apps.list_deployments("my-app")] == [deployment.deployment_id]


def test_deploy_and_wait_fails_when_the_source_code_path_was_never_uploaded(pat_client):
    w = pat_client("alice")
    w.apps.create_and_wait(App(name="no-source"))

    with pytest.raises(OperationFailed, match="does not exist"):
        w.apps.deploy_and_wait("no-source", AppDeployment(source_code_path=f"{SOURCE}-missing"))

    deployment = w.apps.list_deployments("no-source").__next__()
    assert deployment.status.state == AppDeploymentState.FAILED
    assert w.apps.get("no-source").active_deployment is None


def test_update_without_a_mask_resets_the_scopes_and_a_masked_update_keeps_them(pat_client):
    w = pat_client("alice")
    warehouse = AppResource(
        name="warehouse",
        sql_warehouse=AppResourceSqlWarehouse(
            id="dev-warehouse", permission=AppResourceSqlWarehouseSqlWarehousePermission.CAN_USE
        ),
    )
    w.apps.create_and_wait(App(name="scoped", user_api_scopes=["sql"], resources=[warehouse]))

    masked = w.apps.create_update_and_wait(
        "scoped", update_mask="description", app=App(name="scoped", description="Masked")
    )
    after_mask = w.apps.get("scoped")
    # A full replacement that sends everything it read (output fields included) keeps it all.
    after_mask.compute_size = ComputeSize.LARGE
    round_trip = w.apps.update("scoped", after_mask)
    # What databricks-ai-bridge's deploy did before PR #608: only the resources, no mask.
    replaced = w.apps.update("scoped", App(name="scoped", resources=[warehouse]))

    assert masked.status.state == AppUpdateUpdateStatusUpdateState.SUCCEEDED
    assert after_mask.description == "Masked"
    assert after_mask.user_api_scopes == ["sql"]
    assert round_trip.user_api_scopes == ["sql"]
    assert round_trip.description == "Masked"
    assert round_trip.compute_size == ComputeSize.LARGE
    assert replaced.user_api_scopes is None
    assert replaced.description is None
    assert replaced.resources[0].sql_warehouse.id == "dev-warehouse"


def test_a_scope_change_reaches_the_compute_after_stop_and_wait_and_start_and_wait(pat_client):
    w = pat_client("alice")
    w.apps.create_and_wait(App(name="obo"))

    w.apps.create_update_and_wait("obo", update_mask="user_api_scopes", app=App(name="obo", user_api_scopes=["sql"]))
    before_restart = w.apps.get("obo")
    stopped = w.apps.stop_and_wait("obo")
    started = w.apps.start_and_wait("obo")

    assert before_restart.user_api_scopes == ["sql"]
    assert before_restart.effective_user_api_scopes == DEFAULT_SCOPES
    assert stopped.compute_status.state == ComputeState.STOPPED
    assert started.compute_status.state == ComputeState.ACTIVE
    assert started.effective_user_api_scopes == DEFAULT_SCOPES + ["sql"]


def test_the_apps_own_service_principal_gets_an_oauth_token(pat_client, control, emulator_url):
    w = pat_client("alice")
    app = w.apps.create_and_wait(App(name="with-sp"))
    credentials = control.app_credentials("with-sp")

    # What the app's container would do with DATABRICKS_CLIENT_ID/SECRET.
    as_app = WorkspaceClient(
        config=Config(
            host=emulator_url,
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
            auth_type="oauth-m2m",
        )
    )
    me = as_app.current_user.me()

    assert credentials["client_id"] == app.service_principal_client_id
    assert me.user_name == app.service_principal_client_id
    assert me.display_name == app.service_principal_name
    assert me.id == str(app.service_principal_id)


def test_sdk_errors_and_paged_lists(pat_client):
    w = pat_client("alice")
    for i in range(3):
        w.apps.create(App(name=f"app-{i}"))

    with pytest.raises(ResourceAlreadyExists):
        w.apps.create(App(name="app-0"))
    with pytest.raises(ResourceDoesNotExist):
        w.apps.get("missing")
    with pytest.raises(InvalidParameterValue):
        w.apps.create(App(name="Not_Valid"))
    names = [a.name for a in w.apps.list(page_size=2)]

    assert names == ["app-0", "app-1", "app-2"]


def test_a_deployed_python_app_answers_at_its_url_through_the_proxy(pat_client):
    w = pat_client("alice")
    w.apps.create_and_wait(App(name="py-app"))
    upload_app(w, f"{SOURCE}-py")

    deployment = w.apps.deploy_and_wait(
        "py-app", AppDeployment(source_code_path=f"{SOURCE}-py", mode=AppDeploymentMode.SNAPSHOT)
    )
    app = w.apps.get("py-app")
    answer = requests.get(app.url, headers={"Authorization": "Bearer dev-token-alice"}, timeout=10)
    anonymous = requests.get(app.url, timeout=10)

    assert deployment.status.state == AppDeploymentState.SUCCEEDED
    assert app.app_status.state == ApplicationState.RUNNING
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"app": "py-app", "runtime": "python", "email": "alice@example.com", "authorization": None}
    assert answer.headers["x-emulator-replica"] == "0"
    assert anonymous.status_code == 401


def test_a_deployed_node_app_runs_with_the_default_command(pat_client):
    w = pat_client("alice")
    folder = f"{SOURCE}-node"
    w.apps.create_and_wait(App(name="node-app"))
    w.workspace.mkdirs(folder)
    w.workspace.upload(f"{folder}/package.json", NODE_PACKAGE, format=ImportFormat.AUTO, overwrite=True)
    w.workspace.upload(f"{folder}/server.js", NODE_SERVER, format=ImportFormat.AUTO, overwrite=True)

    deployment = w.apps.deploy_and_wait("node-app", AppDeployment(source_code_path=folder))
    app = w.apps.get("node-app")
    answer = requests.get(app.url, headers={"Authorization": "Bearer dev-token-bob"}, timeout=10)
    stopped = w.apps.stop_and_wait("node-app")

    assert deployment.status.state == AppDeploymentState.SUCCEEDED
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"app": "node-app", "runtime": "node", "email": "bob@example.com", "authorization": None}
    assert stopped.compute_status.state == ComputeState.STOPPED
