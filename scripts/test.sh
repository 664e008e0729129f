#!/usr/bin/env bash
# The whole test suite: the Rust workspace's tests, then the Python package built into a
# virtualenv and its pytest suite (python/tests), which also drives the `reel` binary.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked

target="${CARGO_TARGET_DIR:-target}"
venv="${REEL_PY_VENV:-$target/py-venv}"
python3 -m venv "$venv"
venv="$(cd "$venv" && pwd)"  # absolute: the build backend runs in another directory
"$venv/bin/pip" install -q --disable-pip-version-check "maturin>=1.7,<2" "pytest>=7"
# Builds the extension (release) with the maturin just installed: no second download.
PATH="$venv/bin:$PATH" "$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --force-reinstall ./python
REEL_BIN="$target/debug/reel" "$venv/bin/pytest" -q python/tests
