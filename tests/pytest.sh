#!/usr/bin/env bash
# Runs pytest in one of the Python suites against the dbapp emulator, in the shared venv
# <repo>/.venv-sdk with tests/sdk/requirements.txt's pinned set (the official Databricks SDK,
# `openai`, databricks-sql-connector, requests):
#
#   bash tests/pytest.sh <suite dir> [pytest args...]
#
# Idempotent: creates the venv when missing and (re)installs the pinned requirements, then runs
# pytest in <suite dir> and exits with its code. tests/sdk/run.sh and tests/deploy/run.sh call it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
suite="$1"
shift
venv="$repo/.venv-sdk"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# --no-deps: requirements.txt is the complete pinned set (see the note at its top: databricks-sdk
# 0.162.0 declares a certifi release the reachable registry does not serve).
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    -r "$repo/tests/sdk/requirements.txt"

cd "$suite"
set +e
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
code=$?
set -e
exit "$code"
