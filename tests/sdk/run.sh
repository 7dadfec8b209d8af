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
exec bash "$here/../pytest.sh" "$here" "$@"
