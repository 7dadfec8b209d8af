#!/usr/bin/env bash
# End-to-end test of `dbapp deploy`: deploys the project's own deploy/ bundle to the emulator
# (`dbapp emulate --lakebase`, which runs deployed apps behind an emulated Apps proxy) and
# checks the deployed app as alice and bob, a redeploy with a changed scope, three replicas on
# one emulated Lakebase under load, and a stop (SIGTERM).
#
#   bash tests/deploy/run.sh [pytest args...]
#
# Runs in the SDK check's venv (tests/pytest.sh: requests and databricks-sdk). The binary is
# $DBAPP_BIN, default <repo>/target/release/dbapp; the first deploy runs deploy/build.sh, which
# builds the shipped binary (the dist profile, without the emulator, under Apps'
# 10 MiB limit with its compressed stream cut in two).
# DBAPP_DEPLOY_EXTRA_ARGS (e.g. --no-build, with deploy/app/dbapp.gz.0 and .1 already built) is added to
# that first deploy, for reruns.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DBAPP_BIN="${DBAPP_BIN:-$here/../../target/release/dbapp}"
exec bash "$here/../pytest.sh" "$here" "$@"
