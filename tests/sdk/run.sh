#!/usr/bin/env bash
# Runs the official Databricks Python SDK (databricks-sdk 0.162.0), the `openai` client (3.51.0,
# on the OpenAI-compatible serving routes) and databricks-sql-connector (4.9.0, use_sea=True)
# against the dbapp emulator.
#
#   bash tests/sdk/run.sh [pytest args...]
#
# Idempotent: creates the venv <repo>/.venv-sdk when missing and (re)installs the pinned
# requirements, then runs pytest and exits with its code. The emulator binary is $DBAPP_BIN, or
# <repo>/target/debug/dbapp (build it first with `cargo build -p dbapp`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv-sdk"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# --no-deps: requirements.txt is the complete pinned set (see the note at its top: databricks-sdk
# 0.162.0 declares a certifi release the reachable registry does not serve).
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$here/requirements.txt"

cd "$here"
set +e
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
code=$?
set -e
exit "$code"
