#!/usr/bin/env bash
# Builds the binary the bundle ships, deploy/app/dbapp.gz.0 and .1 (docs/deployment.md).
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
bin="${CARGO_TARGET_DIR:-target}/dist/dbapp"

# The highest glibc symbol version the binary needs must exist on the runtime (2.35).
needed=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)
echo "$bin needs ${needed}"
if [ "$(printf '%s\n%s\n' "${needed#GLIBC_}" 2.35 | sort -V | tail -1)" != "2.35" ]; then
  echo "error: ${needed} is newer than the Apps runtime's glibc 2.35; build on an older distribution" >&2
  exit 1
fi

# Apps refuses any file over 10 MiB (UPSTREAM §1.5). The binary is compressed and the stream
# cut into two equal parts (app.yaml joins and unpacks them at start): 20 MiB of compressed
# binary fit, twice what one file allows, without trading speed for size (docs/deployment.md,
# "Size"). Older outputs are removed first, so nothing stale is uploaded.
rm -f deploy/app/dbapp.gz deploy/app/dbapp.gz.*
gzip -9 -c "$bin" > "$bin.gz"
size=$(stat -c %s "$bin.gz")
echo "$bin.gz: ${size} bytes, shipped as two parts (limit 10485760 each)"
split -n 2 -d -a 1 "$bin.gz" deploy/app/dbapp.gz.
for part in deploy/app/dbapp.gz.0 deploy/app/dbapp.gz.1; do
  if [ "$(stat -c %s "$part")" -gt 10485760 ]; then
    echo "error: $part is over Databricks Apps' 10 MiB file limit" >&2
    exit 1
  fi
done
if ! cat deploy/app/dbapp.gz.0 deploy/app/dbapp.gz.1 | cmp -s - "$bin.gz"; then
  echo "error: the parts do not join into $bin.gz" >&2
  exit 1
fi
