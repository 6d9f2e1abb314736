"""Fault injection: 1,000 malformed messages among good ones, against a real broker and a real daemon process.

Every bad message must land in the dead-letter topic with the right reason, its source offset and its original
bytes, every good event must be used, and the process must stay alive and stop cleanly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftcal.testing.faults.input_faults import malformed

from .expect import assert_clean

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_a_thousand_malformed_messages_are_dead_lettered_and_every_good_event_is_used(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = malformed(kafka_bootstrap, tmp_path, bad=1000, good_events=3000)
    assert_clean(result)
    details = result.details
    assert result.dead_lettered == 1000 and details["rejected_metric"] == 1000, details
    assert details["misfiled"] == 0 and details["missing_letters"] == 0, details
    assert details["events_consumed"] == details["events_sent"] == 3000, details
