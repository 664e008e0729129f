"""Shared fixtures: the `reel` binary of this checkout, for tests that check the CLI and
Python share one store."""

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def reel_bin() -> str:
    """The `reel` command: $REEL_BIN, else this checkout's debug build (built if missing)."""
    env = os.environ.get("REEL_BIN")
    if env:
        return env
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "reel"
    if not binary.exists():
        cargo = shutil.which("cargo")
        assert cargo, "set REEL_BIN or put cargo on PATH to build the reel binary"
        subprocess.run([cargo, "build", "-q", "-p", "reel-cli"], cwd=ROOT, check=True)
    return str(binary)
