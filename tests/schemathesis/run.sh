#!/usr/bin/env bash
# schemathesis (from PyPI) against the OpenAPI document of a running `dbapp dev`: every
# operation is called with generated valid and invalid inputs, and the run fails on any 5xx or
# any response that the document does not describe (status, content type, headers, body).
#
#   bash tests/schemathesis/run.sh                      # CI smoke: ~60–120 s in all
#   ST_MAX_TIME=900 ST_MAX_EXAMPLES=500 bash tests/schemathesis/run.sh   # a longer run
#   bash tests/schemathesis/run.sh --seed 42            # extra args go to `schemathesis run`
#
# Environment: DBAPP_BIN (default <repo>/target/debug/dbapp; build it first with
# `cargo build -p dbapp`), ST_USER (the dev identity layer's demo user: alice, bob or admin;
# default admin, who may call every route), ST_MAX_TIME (seconds, default 75),
# ST_MAX_EXAMPLES (per operation, default 40), ST_SEED (default 1: runs replay).
#
# Idempotent: creates the venv <repo>/.venv-schemathesis when missing and installs the pinned
# requirements; `dbapp dev` runs on a free port with its state in a temporary directory, and is
# stopped (by its PID) however the run ends. The report lands in <repo>/test-output/schemathesis.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv-schemathesis"
bin="${DBAPP_BIN:-$repo/target/debug/dbapp}"
user="${ST_USER:-admin}"
max_time="${ST_MAX_TIME:-75}"
max_examples="${ST_MAX_EXAMPLES:-40}"
seed="${ST_SEED:-1}"
report="$repo/test-output/schemathesis"

if [ ! -x "$bin" ]; then
    echo "no dbapp binary at $bin: run \`cargo build -p dbapp\` first" >&2
    exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$here/requirements.txt"

state="$(mktemp -d)"
out="$state/dev.out"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$state"
}
trap cleanup EXIT

# Logs at warn: the run makes thousands of requests and CI keeps the output.
RUST_LOG=warn DBAPP_LOG_FORMAT=json "$bin" dev --port 0 --dir "$state/dbapp" >"$out" 2>"$state/dev.err" &
pid=$!
url=""
for _ in $(seq 300); do
    url="$(sed -n 's/^dbapp dev: serving on \(http[^ ]*\).*/\1/p' "$out" | head -n1)"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$state/dev.err" >&2; echo "dbapp dev exited" >&2; exit 2; }
    sleep 0.1
done
[ -n "$url" ] || { echo "dbapp dev printed no URL within 30 s" >&2; exit 2; }
echo "dbapp dev at $url (pid $pid), acting as $user"

mkdir -p "$report"
# schemathesis keeps its example database (for `st replay`) in ./.schemathesis: under the report.
cd "$report"
set +e
# One worker: with two, CPython 3.11's AST constructor can fail under threads ("AST constructor
# recursion depth mismatch", python/cpython#106905) while hypothesis describes a strategy, an
# error of the tool that ended one CI run. The run is bounded by --max-time either way.
"$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$url/api/openapi.json" \
    --url "$url" \
    -H "Cookie: dbapp_dev_user=$user" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
    --phases examples,coverage,fuzzing \
    --max-time "$max_time" \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --workers 1 \
    --request-timeout 20 \
    --suppress-health-check too_slow,filter_too_much \
    --report junit --report-dir "$report" \
    --output-truncate true \
    "$@"
code=$?
set -e
if ! kill -0 "$pid" 2>/dev/null; then
    echo "dbapp dev died during the run" >&2
    cat "$state/dev.err" >&2
    code=1
fi
exit "$code"
