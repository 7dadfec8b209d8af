#!/usr/bin/env bash
# Node clients against the emulated Lakebase: node-postgres (pg 8.18.0) with a password callback
# that mints per connection, and Databricks' @databricks/lakebase 0.6.0 (with
# @databricks/sdk-experimental 0.17.0), run by Node's built-in test runner.
#
#   bash tests/node-lakebase/run.sh [node --test args...]
#
# Idempotent: runs `npm ci` when node_modules was not installed from the current
# package-lock.json, starts `dbapp emulate --port 0 --lakebase` (the binary is $DBAPP_BIN, or
# <repo>/target/debug/dbapp: build it first with `cargo build -p dbapp`), reads the Postgres
# front's address from /_emulator/info, runs the tests, stops the emulator and exits with the
# tests' code.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${DBAPP_BIN:-$repo/target/debug/dbapp}"
cd "$here"

# npm ci deletes node_modules first, so only run it when the lock file changed since the last one.
if ! cmp -s package-lock.json node_modules/.installed-lock.json 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.installed-lock.json
fi

if [ ! -x "$bin" ]; then
  echo "no emulator binary at $bin: run 'cargo build -p dbapp' or set DBAPP_BIN" >&2
  exit 1
fi

log="$(mktemp -d)"
"$bin" emulate --port 0 --lakebase >"$log/stdout" 2>"$log/stderr" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$log"
}
trap cleanup EXIT

# The first line on stdout is "dbapp emulator listening on <url>"; the private Postgres cluster
# starts before it, so allow for initdb on a busy machine.
url=""
for _ in $(seq 1 120); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "dbapp emulate exited early; its log:" >&2
    cat "$log/stderr" >&2
    exit 1
  fi
  url="$(sed -n 's/^dbapp emulator listening on \(http[^ ]*\).*/\1/p' "$log/stdout" | head -1)"
  [ -n "$url" ] && break
  sleep 0.5
done
if [ -z "$url" ]; then
  echo "dbapp emulate did not start within 60 s; its log:" >&2
  tail -50 "$log/stderr" >&2
  exit 1
fi

# {"lakebase": {"host": …, "port": …}, …}: absent when the front did not start.
front="$(curl -fsS "$url/_emulator/info" | node -e '
  let body = "";
  process.stdin.on("data", (chunk) => (body += chunk));
  process.stdin.on("end", () => {
    const lakebase = JSON.parse(body).lakebase;
    if (!lakebase) process.exit(1);
    console.log(`${lakebase.host} ${lakebase.port}`);
  });
')" || { echo "/_emulator/info reports no Lakebase front" >&2; exit 1; }
read -r front_host front_port <<<"$front"

# Only what the tests set themselves: a stray profile or token must not pick the identity.
unset DATABRICKS_HOST DATABRICKS_TOKEN DATABRICKS_CLIENT_ID DATABRICKS_CLIENT_SECRET \
  DATABRICKS_AUTH_TYPE DATABRICKS_CONFIG_PROFILE PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE \
  PGSSLMODE LAKEBASE_ENDPOINT
export DATABRICKS_CONFIG_FILE=/dev/null
export DBAPP_EMULATOR_URL="$url" LAKEBASE_FRONT_HOST="$front_host" LAKEBASE_FRONT_PORT="$front_port"

set +e
node --test "$@" ./*.test.mjs
code=$?
set -e
if [ "$code" -ne 0 ]; then
  echo "--- emulator log (last 40 lines)" >&2
  tail -40 "$log/stderr" >&2
fi
exit "$code"
