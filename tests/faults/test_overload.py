"""Fault injection: a producer at 3x the daemon's measured consume capacity, then the catch-up.

Resident memory must stay within the configured data budget plus a fixed overhead, the lag metric must rise,
nothing may be dropped or dead-lettered, and the daemon must catch up once the flood ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftcal.testing.faults.input_faults import overload

from .expect import assert_clean

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_three_times_capacity_bounded_memory_rising_lag_nothing_dropped_then_caught_up(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = overload(kafka_bootstrap, tmp_path, factor=3.0, seconds=10.0)
    assert_clean(result)
    d = result.details
    assert d["achieved_factor"] >= 2.7, d  # the producer really offered about 3x what the daemon can take
    assert d["load_peak_rss_bytes"] <= d["rss_limit_bytes"], d
    excess_events = (d["offered_events_per_s"] - d["capacity_events_per_s"]) * d["overload_seconds"]
    excess = excess_events / 100  # in messages of 100 events
    assert d["lag_max"] >= d["lag_before"] + 0.3 * excess, d
    assert d["lag_after"] == 0, d
    assert d["events_consumed"] == d["events_sent"] and result.dead_lettered == 0, d
