"""``benchmarks/gpu.sh`` in its tiny CPU mode: no GPU, nothing installed, the current interpreter."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from driftcal.report.figures import FILES

from .conftest import BENCHMARKS, ROOT, bench_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash"),
]


def test_gpu_script_tiny_cpu_mode(tmp_path):
    env = bench_env()
    env.update(DRIFTCAL_GPU_SH_TINY="1", DRIFTCAL_PYTHON=sys.executable, DRIFTCAL_GPU_BUDGET_S="300")
    out = tmp_path / "gpu"
    proc = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu.sh"), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for needle in ("steps/s:", "events/s:", "share of the bf16 peak:", "RMSE adversarial:"):
        assert needle in proc.stdout, proc.stdout
    doc = json.loads((out / "result.json").read_text())
    assert doc["mode"] == "paper"
    assert doc["studies"] == ["esum", "rmse_vs_epoch", "cellwise", "esum_calibrated"]
    assert len(doc["cellwise"]["methods"]["adversarial"]["rmse"]["values"]) == 3
    for study in doc["studies"]:
        assert (out / FILES[study]).exists()
    assert (out / "summary.md").exists()
    assert not (out / "venv").exists()  # nothing installed
