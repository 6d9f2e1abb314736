"""``promtool check metrics`` on a real scrape: valid format and no lint findings."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from driftcal.obs import Health, Metrics, ObsServer


def promtool() -> str:
    path = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if path is None:
        pytest.fail(
            "promtool not found: install Debian's `prometheus` package (apt-get install prometheus) "
            "to lint the exposed metrics"
        )
    return path


def scrape(metrics: Metrics) -> bytes:
    with (
        ObsServer(metrics, Health(), host="127.0.0.1", port=0) as server,
        urllib.request.urlopen(server.url + "/metrics", timeout=5) as resp,
    ):
        return resp.read()


def fill(m: Metrics) -> Metrics:
    m.consumed("events", 5)
    m.rejected("truncated")
    m.update("calo", "0", "ok", 0.3)
    m.update("calo", "0", "error")
    m.published("calo", "0")
    m.set_distance("calo", "0", 0.12, 0.2, alarm=True)
    m.set_noise_floor("calo", "0", 0.02)
    m.set_rmse("calo", "0", 0.01)
    m.set_coefficients("calo", "0", [0.9, 1.0, 1.1])
    m.set_coefficients("tracker", "1", [float("nan")])
    m.set_reservoir("reference", 1000)
    m.set_reservoir("window", 100)
    m.set_lag("events", 0, 42)
    m.set_queue(2)
    m.build_info("cpu")
    return m


@pytest.mark.parametrize("make", [Metrics, lambda: fill(Metrics())], ids=["empty", "filled"])
def test_promtool_check_metrics_is_clean(make):
    text = scrape(make())
    assert b"driftcal_wasserstein_distance" in text
    proc = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    findings = (proc.stdout + proc.stderr).decode().strip()
    assert proc.returncode == 0, findings
    assert findings == "", findings
