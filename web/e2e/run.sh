#!/usr/bin/env bash
# End-to-end tests of the web UI: starts `dbapp dev` on a free port, waits for /health, runs
# the tests in headless Debian Chromium (playwright-core, no browser download), stops the
# server and exits with the tests' code. Idempotent; run from anywhere.
#   bash e2e/run.sh [FILE…]   only these test files (e.g. e2e/genie.test.mjs); all by default
#   DBAPP_BIN=path/to/dbapp   the binary (default: ../target/debug/dbapp, built if missing)
#   BASE_URL=http://…          test an already running server instead of starting one
#   EMULATOR_URL=http://…      with BASE_URL: its emulator, for the tests that inject faults
#                              (skipped without it); found in dev's log when run.sh starts it
set -euo pipefail
web="$(cd "$(dirname "$0")/.." && pwd)"
cd "$web"

if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
[ -d node_modules ] || npm ci --no-audit --no-fund

mkdir -p e2e/.run e2e/screenshots
if [ -z "${BASE_URL:-}" ]; then
  bin="${DBAPP_BIN:-$web/../target/debug/dbapp}"
  if [ ! -x "$bin" ]; then
    (cd "$web/.." && cargo build -p dbapp --locked)
  fi
  state="$(mktemp -d)"
  # A small upload cap, so data.test.mjs can show a 413 without sending 100 MiB (the default).
  export DBAPP_VOLUME_UPLOAD_MAX_BYTES="${DBAPP_VOLUME_UPLOAD_MAX_BYTES:-2097152}"
  # Port 0 and a private state directory: a free port, and an empty dev store on every run.
  "$bin" dev --port 0 --dir "$state/.dbapp" >e2e/.run/dev.log 2>&1 &
  pid=$!
  cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$state"
  }
  trap cleanup EXIT
  # dev's first line on stdout is `dbapp dev: serving on <url>`; then /health must answer.
  ready=""
  for _ in $(seq 1 240); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "dbapp dev exited early; its log:" >&2
      cat e2e/.run/dev.log >&2
      exit 1
    fi
    url="$(sed -n 's/^dbapp dev: serving on \(http[^ ]*\).*/\1/p' e2e/.run/dev.log | head -1)"
    if [ -n "$url" ] && curl -fsS "$url/health" >/dev/null 2>&1; then
      export BASE_URL="$url"
      ready=1
      break
    fi
    sleep 0.5
  done
  if [ -z "$ready" ]; then
    echo "dbapp dev did not answer /health within 120 s; its log:" >&2
    tail -50 e2e/.run/dev.log >&2
    exit 1
  fi
  # The workspace emulator's own URL, for its control API (fault injection: slow streams): dev
  # logs it as `emulator.started` (colours stripped). The app never proxies `/_emulator`.
  emulator="$(sed 's/\x1b\[[0-9;]*m//g' e2e/.run/dev.log |
    sed -n 's/.*emulator\.started.*url[=:] *"\{0,1\}\(http:\/\/[^ "]*\).*/\1/p' | head -1)"
  if [ -z "$emulator" ]; then
    echo "dbapp dev did not log the emulator's URL (emulator.started); its log:" >&2
    tail -50 e2e/.run/dev.log >&2
    exit 1
  fi
  export EMULATOR_URL="$emulator"
fi

echo "e2e against $BASE_URL (screenshots in web/e2e/screenshots/)"
set +e
files=("$@")
[ "${#files[@]}" -gt 0 ] || files=(e2e/chartScale.test.mjs e2e/app.test.mjs e2e/data.test.mjs e2e/genie.test.mjs e2e/assistant.test.mjs e2e/layout.test.mjs)
node --test --test-concurrency=1 --test-timeout=120000 "${files[@]}"
code=$?
set -e
exit "$code"
