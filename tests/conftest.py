"""Shared fixtures: the optional development data and a runner for the real command-line tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amlc.paths import ROOT, SHARED_DATA


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared/amlc2024 (competition CSVs, dev images); tests that need it skip without it."""
    if not (SHARED_DATA / "train.csv").exists():
        pytest.skip(f"development data not found ({SHARED_DATA.name} beside the checkout)")
    return SHARED_DATA


def run_cli(*args: str | os.PathLike, cwd: Path = ROOT, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python <args>` as a user would, from the project root, capturing text output."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=full_env, text=True,
                          capture_output=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
