"""Shared fixtures: one tiny run of ``benchmarks/paper.py --quick`` per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"

#: ``--quick`` at a tiny size: 2 × 4 × 4 cells, 300 + 300 events, 3 seeds, a few steps, two points per sweep
TINY_ARGS = [
    "--quick",
    "--geometry", "2x4x4",
    "--events", "300",
    "--seeds", "3",
    "--steps", "4",
    "--batch-size", "64",
    "--width", "8",
    "--record-every", "1",
    "--epsilons", "0,0.01",
    "--thresholds-sigma", "1,3",
    "--sigmas", "1e-3,2e-2",
    "--tracker-events", "2000",
    "--tracker-steps", "4",
]  # fmt: skip


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.fixture(scope="session")
def paper_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Run the tiny quick benchmark once; returns (path, document)."""
    out = tmp_path_factory.mktemp("paper") / "result.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "paper.py"), *TINY_ARGS, "--out", str(out)],
        cwd=ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(out.read_text())


@pytest.fixture
def bench_modules(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the benchmark modules (``paper_data``, ``paper_tracker``, ...) importable."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return BENCHMARKS
