#!/usr/bin/env bash
# Builds the binary the bundle ships, deploy/app/dbapp.gz (docs/deployment.md).
#
# Requires: Linux x86-64 with glibc no newer than the Databricks Apps runtime's (Ubuntu 22.04,
# glibc 2.35), the pinned Rust toolchain, Node.js/npm for the embedded UI, binutils (strip,
# objdump) and gzip. A musl build would avoid the glibc question, but the
# x86_64-unknown-linux-musl target is not installed on the project's machines.
#
# `dbapp deploy` runs this script as its first step.
set -euo pipefail
cd "$(dirname "$0")/.."

(cd web && npm ci && npm run build)
# The dist profile (root Cargo.toml): fat LTO, one codegen unit, no symbols; and no emulator
# (`--no-default-features`: the app only serves). Measured 2026-12-05: 25.6 MB, 10.1 MB
# compressed — the only build that fits Apps' 10 MiB file limit (docs/deployment.md, "Size").
cargo build --locked --profile dist -p dbapp --no-default-features

# The highest glibc symbol version the binary needs must exist on the runtime (2.35).
needed=$(objdump -T target/dist/dbapp | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)
echo "target/dist/dbapp needs ${needed}"
if [ "$(printf '%s\n%s\n' "${needed#GLIBC_}" 2.35 | sort -V | tail -1)" != "2.35" ]; then
  echo "error: ${needed} is newer than the Apps runtime's glibc 2.35; build on an older distribution" >&2
  exit 1
fi

# Apps refuses files over 10 MiB: compress (app.yaml unpacks it), and refuse to ship more.
gzip -9 -c target/dist/dbapp > deploy/app/dbapp.gz
size=$(stat -c %s deploy/app/dbapp.gz)
echo "deploy/app/dbapp.gz: ${size} bytes (limit 10485760)"
if [ "$size" -gt 10485760 ]; then
  echo "error: deploy/app/dbapp.gz is over Databricks Apps' 10 MiB file limit" >&2
  exit 1
fi
