#!/usr/bin/env bash
# The main job, end to end on an offline machine: install what it needs, then publish a
# verified release to a throwaway registry on 127.0.0.1 (see xtask/examples/local_release.rs).
# Extra arguments go to `cargo xtask publish`, e.g. `--dry-run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
cargo build -q -p xtask --bin xtask --example local_release
exec "target/debug/examples/local_release" "$@"
