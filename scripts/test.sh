#!/usr/bin/env bash
# The whole test suite, in both modes taskleak supports:
#   - with `--cfg tokio_unstable` (spawn sites, stacks, ignore rules), in target/
#   - without it (leaks counted only), in target/stable
# with every feature on (`http`, `serde`), so the monitoring tests run too.
# Each mode keeps its own target directory so that neither rebuilds the other.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> tests with --cfg tokio_unstable"
RUSTFLAGS="--cfg tokio_unstable" cargo test --all-features "$@"

echo "==> tests without --cfg tokio_unstable"
CARGO_TARGET_DIR=target/stable cargo test --all-features "$@"
