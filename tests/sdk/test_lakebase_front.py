"""The emulated Lakebase's Postgres front with real Postgres clients: psycopg 3 (libpq) with
`sslmode=require`, and databricks-ai-bridge 0.22.0's `LakebasePool` in its three modes, unchanged.

The module runs its own emulator, `dbapp emulate --lakebase` (a private Postgres cluster behind
the front), with the front on port 5432 of a random loopback address (127.x.y.z, never 127.0.0.1,
where the machine's own Postgres listens): `LakebasePool` always connects to
`<host from the API>:5432`, and instances and endpoints report the front's address as their host.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any, Dict, Iterator

import psycopg
import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.service.postgres import Project, ProjectSpec
from databricks_ai_bridge.lakebase import LakebasePool

from conftest import SP_CLIENT_ID, SP_CLIENT_SECRET, TOKENS, running_emulator

INSTANCE = "dev-lakebase"
FIXTURE_ENDPOINT = "projects/dev/branches/production/endpoints/primary"
WAIT = None


@pytest.fixture(scope="module")
def lakebase_url() -> Iterator[str]:
    """This module's emulator, with a Lakebase front on <random 127.x.y.z>:5432."""
    address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    with running_emulator("--lakebase", "--lakebase-listen", f"{address}:5432") as url:
        yield url


@pytest.fixture
def front(lakebase_url: str) -> Dict[str, Any]:
    info = requests.get(f"{lakebase_url}/_emulator/info", timeout=10).json()
    assert info["lakebase"] is not None, info
    return info["lakebase"]


@pytest.fixture
def user_client(lakebase_url: str):
    """`user_client("alice")`: a PAT client of this module's emulator."""

    def build(user: str) -> WorkspaceClient:
        return WorkspaceClient(config=Config(host=lakebase_url, token=TOKENS[user], auth_type="pat"))

    return build


@pytest.fixture
def app_client(lakebase_url: str) -> WorkspaceClient:
    """The service principal `dbapp-sp` over OAuth M2M, as an app."""
    config = Config(
        host=lakebase_url, client_id=SP_CLIENT_ID, client_secret=SP_CLIENT_SECRET, auth_type="oauth-m2m"
    )
    return WorkspaceClient(config=config)


def expire(lakebase_url: str, token: str) -> None:
    requests.post(f"{lakebase_url}/_emulator/tokens/expire", json={"token": token}, timeout=10).raise_for_status()


def credential(client, instance: str = INSTANCE) -> str:
    return client.database.generate_database_credential(
        instance_names=[instance], request_id=str(uuid.uuid4())
    ).token


def connect(front: Dict[str, Any], user: str, password: str, **extra: Any) -> psycopg.Connection:
    return psycopg.connect(
        host=front["host"],
        port=front["port"],
        user=user,
        password=password,
        dbname="databricks_postgres",
        sslmode=extra.pop("sslmode", "require"),
        connect_timeout=10,
        **extra,
    )


def refusal(front: Dict[str, Any], user: str, password: str, **extra: Any) -> str:
    with pytest.raises(psycopg.OperationalError) as raised:
        connect(front, user, password, **extra).close()
    return str(raised.value)


def test_psycopg_logs_in_over_tls_with_two_credentials_of_one_role(user_client, front):
    w = user_client("alice")
    first = credential(w)
    second = credential(w)

    with connect(front, "alice@example.com", first) as a, connect(front, "alice@example.com", second) as b:
        user_a = a.execute("SELECT current_user").fetchone()[0]
        encrypted = a.pgconn.ssl_in_use
        user_b = b.execute("SELECT current_user").fetchone()[0]
        a.execute("CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text)")
        a.execute("INSERT INTO notes VALUES (1, 'hello') ON CONFLICT (id) DO NOTHING")
        a.commit()
        body = b.execute("SELECT body FROM notes WHERE id = 1").fetchone()[0]

    assert first != second
    assert user_a == user_b == "alice@example.com"
    assert encrypted
    assert body == "hello"


def test_a_verifying_client_trusts_the_published_certificate(user_client, front, tmp_path):
    # sslmode=verify-full checks the chain and that the certificate names the host dialled.
    root = tmp_path / "lakebase-front.pem"
    root.write_text(front["certificate_pem"])
    token = credential(user_client("alice"))

    with connect(front, "alice@example.com", token, sslmode="verify-full", sslrootcert=str(root)) as conn:
        who = conn.execute("SELECT current_user").fetchone()[0]

    assert who == "alice@example.com"


def test_refusals_carry_the_texts_lakebase_sends(user_client, front, lakebase_url):
    alice = user_client("alice")
    bobs = credential(user_client("bob"))
    expired = credential(alice)
    expire(lakebase_url, expired)
    failed = 'password authentication failed for user "alice@example.com"'

    assert failed in refusal(front, "alice@example.com", "dev-token-alice")  # a PAT
    assert failed in refusal(front, "alice@example.com", expired)
    assert failed in refusal(front, "alice@example.com", bobs)
    assert "connection is insecure (try using `sslmode=require`)" in refusal(
        front, "alice@example.com", credential(alice), sslmode="disable"
    )


def test_an_open_session_outlives_its_token(user_client, front, lakebase_url):
    token = credential(user_client("alice"))
    with connect(front, "alice@example.com", token) as conn:
        expire(lakebase_url, token)

        still = conn.execute("SELECT current_user").fetchone()[0]

        assert still == "alice@example.com"
    assert "password authentication failed" in refusal(front, "alice@example.com", token)


def test_a_cancel_request_reaches_the_backend_through_the_front(user_client, front):
    w = user_client("alice")
    sleeping = "SELECT pg_sleep(30) -- cancel me"
    with connect(front, "alice@example.com", credential(w)) as conn, connect(
        front, "alice@example.com", credential(w), autocommit=True
    ) as watcher:

        def cancel_once_running() -> None:
            # The signal: the backend reports the statement active.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                active = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = %s",
                    (sleeping,),
                ).fetchone()[0]
                if active:
                    conn.cancel_safe()
                    return

        canceller = threading.Thread(target=cancel_once_running, daemon=True)
        canceller.start()
        begun = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(sleeping)
        canceller.join(10)

    assert time.monotonic() - begun < 20


def test_lakebase_pool_in_instance_mode(user_client, front):
    pool = LakebasePool(instance_name=INSTANCE, workspace_client=user_client("bob"), min_size=1, max_size=2)
    try:
        with pool.connection() as conn:
            row = conn.execute("SELECT current_user AS who, current_database() AS db").fetchone()
    finally:
        pool.close()

    assert pool.host == front["host"]
    assert row == {"who": "bob@example.com", "db": "databricks_postgres"}


def test_lakebase_pool_in_endpoint_mode(app_client, front):
    pool = LakebasePool(autoscaling_endpoint=FIXTURE_ENDPOINT, workspace_client=app_client, min_size=1, max_size=2)
    try:
        with pool.connection() as conn:
            row = conn.execute("SELECT current_user AS who, current_database() AS db").fetchone()
    finally:
        pool.close()

    assert row["who"] == "dbapp-sp"
    assert row["db"].startswith("lakebase_branch_dev_production_"), row


def test_lakebase_pool_in_project_branch_mode_opens_the_branch_database(user_client, front):
    w = user_client("alice")
    w.postgres.create_project(project=Project(spec=ProjectSpec()), project_id="front").wait(WAIT)

    pool = LakebasePool(project="front", branch="production", workspace_client=w, min_size=1, max_size=2)
    try:
        with pool.connection() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS per_branch (id int)")
            row = conn.execute("SELECT current_user AS who, current_database() AS db").fetchone()
    finally:
        pool.close()
    # The fixture project's branch is another database: the table is not there.
    fixture_branch = LakebasePool(autoscaling_endpoint=FIXTURE_ENDPOINT, workspace_client=w, min_size=1, max_size=1)
    try:
        with fixture_branch.connection() as conn:
            elsewhere = conn.execute("SELECT to_regclass('per_branch') AS t").fetchone()["t"]
    finally:
        fixture_branch.close()

    assert row["who"] == "alice@example.com"
    assert row["db"].startswith("lakebase_branch_front_production_"), row
    assert elsewhere is None
