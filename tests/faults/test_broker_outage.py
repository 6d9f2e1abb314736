"""Fault injection: the broker goes away for about 30 s mid-stream and comes back.

The daemon must keep running (no restart), report not ready while the broker is gone and ready again after,
and use every event: the ones produced before the outage and the ones produced after it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftcal.testing.faults.process_faults import broker_outage

from .expect import assert_clean

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


def test_broker_outage_readiness_and_nothing_lost(tmp_path: Path) -> None:
    result = broker_outage(tmp_path, outage_s=35.0)  # readiness turns false after 30 s without a round trip
    assert_clean(result)
    details = result.details
    assert details["alive_during_outage"] and details["not_ready_after_seconds"] <= 65, details
    assert details["events_consumed"] == details["events_sent"], details
    assert result.recovery_seconds <= 90
