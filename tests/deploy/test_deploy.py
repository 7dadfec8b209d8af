"""`dbapp deploy` end to end, against `dbapp emulate --lakebase`, which runs deployed apps behind
an emulated Apps proxy (one URL per app, any emulator-issued token, `x-emulator-replica` on every
answer, round robin over `compute_max_instances` replicas; logs at `/_emulator/apps/{name}/logs`).

The tests run in file order on one emulator and one app, `dbapp` of the project's own `deploy/`:
deployed as alice, used as alice and bob, redeployed with one more scope (compute restart),
redeployed with three replicas and put under load, and stopped (SIGTERM).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
APP = "dbapp"
TOKENS = {"alice": "dev-token-alice", "bob": "dev-token-bob", "admin": "dev-token-admin"}
EMAILS = {user: f"{user}@example.com" for user in TOKENS}
# app.yaml names the instance as a literal (`LAKEBASE_INSTANCE_NAME`, equal to the bundle's
# default `lakebase_instance`), so the emulator's fixture instance is renamed to match it.
INSTANCE = "dbapp-lakebase"
VARS = ["--var", "warehouse_id=dev-warehouse", "--var", f"lakebase_instance={INSTANCE}"]
HTTP_TIMEOUT = 30

# The SDK check's emulator launcher (first stdout line, stderr to a file, SIGTERM at the end).
_spec = importlib.util.spec_from_file_location("sdk_conftest", REPO / "tests" / "sdk" / "conftest.py")
assert _spec and _spec.loader
sdk_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sdk_conftest)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    fixture = json.loads(
        subprocess.run(
            [os.environ["DBAPP_BIN"], "emulate", "--print-fixture"], check=True, capture_output=True, text=True
        ).stdout
    )
    fixture["database_instances"][0]["name"] = INSTANCE
    path = tmp_path_factory.mktemp("fixture") / "fixture.json"
    path.write_text(json.dumps(fixture))
    with sdk_conftest.running_emulator("--lakebase", "--fixture", str(path)) as url:
        yield url


def deploy(host: str, bundle: Path, *extra: str) -> subprocess.CompletedProcess:
    """`dbapp deploy` as alice; the rest of the environment is kept (build.sh needs cargo, npm)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(DATABRICKS_HOST=host, DATABRICKS_TOKEN=TOKENS["alice"], NO_COLOR="1", RUST_BACKTRACE="0")
    run = subprocess.run(
        [os.environ["DBAPP_BIN"], "deploy", "--dir", str(bundle), *VARS, *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    print(run.stdout, run.stderr)
    return run


def api(host: str, method: str, path: str, **kwargs) -> requests.Response:
    """A workspace API call as alice."""
    headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
    return requests.request(method, f"{host}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs)


def app_object(host: str) -> Dict:
    response = api(host, "GET", f"/api/2.0/apps/{APP}")
    response.raise_for_status()
    return response.json()


def as_user(host: str, user: str, method: str, path: str, **kwargs) -> requests.Response:
    """A request to the deployed app through the emulated proxy, as `user`."""
    url = app_object(host)["url"].rstrip("/")
    headers = {"Authorization": f"Bearer {TOKENS[user]}"}
    return requests.request(method, f"{url}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs)


def bundle_copy(tmp_path: Path, edit) -> Path:
    """A copy of deploy/ (with the binary the first deploy built), databricks.yml edited."""
    target = tmp_path / "deploy"
    shutil.copytree(REPO / "deploy", target)
    yml = target / "databricks.yml"
    yml.write_text(edit(yml.read_text()))
    return target


def test_deploy_the_project_bundle(host: str) -> None:
    extra = os.environ.get("DBAPP_DEPLOY_EXTRA_ARGS", "").split()
    run = deploy(host, REPO / "deploy", *extra)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[7/7] smoke" in run.stdout
    assert "answered for alice@example.com" in run.stdout
    assert app_object(host)["app_status"]["state"] == "RUNNING"


def test_each_user_sees_only_their_own_data(host: str) -> None:
    # Act: the same key, a different value per user.
    for user in ("alice", "bob"):
        me = as_user(host, user, "GET", "/api/user/me")
        assert me.status_code == 200, me.text
        assert me.json()["user_id"] == EMAILS[user]
        put = as_user(host, user, "PUT", "/api/preferences/e2e-colour", json={"colour": user})
        assert put.status_code in (200, 201), put.text

    # Assert
    for user, other in (("alice", "bob"), ("bob", "alice")):
        listed = as_user(host, user, "GET", "/api/preferences")
        assert listed.status_code == 200, listed.text
        values = [item["value"] for item in listed.json()["items"] if item["key"] == "e2e-colour"]
        assert values == [{"colour": user}], listed.json()
        assert {"colour": other} not in [item["value"] for item in listed.json()["items"]]


def test_a_changed_scope_restarts_the_compute(host: str, tmp_path: Path) -> None:
    # Arrange
    before = set(app_object(host)["effective_user_api_scopes"])
    assert "vector-search" not in before
    bundle = bundle_copy(tmp_path, lambda t: t.replace("        - genie ", "        - vector-search\n        - genie ", 1))

    # Act
    run = deploy(host, bundle, "--no-build")

    # Assert
    assert run.returncode == 0, run.stdout + run.stderr
    assert "user_api_scopes changed" in run.stdout and "compute restarted" in run.stdout
    after = set(app_object(host)["effective_user_api_scopes"])
    assert after - before == {"vector-search"}


def test_three_replicas_serve_every_write_without_errors(host: str, tmp_path: Path) -> None:
    # Arrange: three instances of the same app (same service principal, same Lakebase role).
    bundle = bundle_copy(
        tmp_path,
        lambda t: t.replace(
            "      source_code_path: ./app\n",
            "      source_code_path: ./app\n      compute_min_instances: 3\n      compute_max_instances: 3\n",
            1,
        ),
    )
    run = deploy(host, bundle, "--no-build")
    assert run.returncode == 0, run.stdout + run.stderr
    replicas = requests.get(f"{host}/_emulator/apps/{APP}/replicas", timeout=HTTP_TIMEOUT).json()
    assert len(replicas) == 3, replicas
    url = app_object(host)["url"].rstrip("/")
    writes = [(user, f"load-{i}", {"user": user, "n": i}) for i in range(100) for user in TOKENS]

    def put(write) -> str:
        user, key, value = write
        response = requests.put(
            f"{url}/api/preferences/{key}",
            json=value,
            headers={"Authorization": f"Bearer {TOKENS[user]}"},
            timeout=HTTP_TIMEOUT,
        )
        return "" if response.status_code in (200, 201) else f"{user} {key}: {response.status_code} {response.text}"

    # Act
    with ThreadPoolExecutor(max_workers=12) as pool:
        errors = [e for e in pool.map(put, writes) if e]

    # Assert: no errors, and every user's writes read back through every replica.
    assert errors == [], errors[:10]
    for user in TOKENS:
        expected = {key: value for u, key, value in writes if u == user}
        seen: Dict[str, List[str]] = {}
        for _ in range(30):
            response = requests.get(
                f"{url}/api/preferences",
                headers={"Authorization": f"Bearer {TOKENS[user]}"},
                timeout=HTTP_TIMEOUT,
            )
            assert response.status_code == 200, response.text
            replica = response.headers["x-emulator-replica"]
            items = {i["key"]: i["value"] for i in response.json()["items"] if i["key"].startswith("load-")}
            assert items == expected, f"{user} through replica {replica}"
            seen.setdefault(replica, []).append(user)
            if len(seen) == 3:
                break
        assert len(seen) == 3, f"{user} reached only replicas {sorted(seen)}"


def test_stopping_the_app_sends_sigterm_and_it_exits(host: str) -> None:
    # Act
    stop = api(host, "POST", f"/api/2.0/apps/{APP}/stop", json={})
    assert stop.status_code == 200, stop.text
    deadline = time.monotonic() + 60
    while app_object(host)["compute_status"]["state"] != "STOPPED":
        assert time.monotonic() < deadline, app_object(host)["compute_status"]
        time.sleep(0.5)

    # Assert: each replica's last lifecycle line says it ended on SIGTERM (not SIGKILL).
    lines = requests.get(f"{host}/_emulator/apps/{APP}/logs", timeout=HTTP_TIMEOUT).text.splitlines()
    for replica in range(3):
        lifecycle = [line for line in lines if line.startswith(f"[{replica}] [emulator] ")]
        assert lifecycle, f"no lifecycle line of replica {replica}: {lines[-20:]}"
        assert "exited after SIGTERM in" in lifecycle[-1], lifecycle[-3:]
