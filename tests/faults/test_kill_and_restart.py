"""Fault injection: kill -9 of the daemon mid-stream, then a restart, with transactions and checkpoints.

A ``read_committed`` reader of the coefficient topic must see sequence numbers 1, 2, 3, ... with no gap and no
repeat, and the coefficients after the restart must continue from the checkpoint, not start again from 1.0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftcal.testing.faults.process_faults import kill9

from .expect import assert_clean

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_kill_9_then_restart_continues_without_gaps_duplicates_or_a_reset(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = kill9(kafka_bootstrap, tmp_path)
    assert_clean(result)
    details = result.details
    assert details["checkpoint_written"] and details["warm_start"], details
    assert result.dead_lettered == 0
    # never back to 1.0: every document, before and after the restart, is far closer to the truth
    assert max(details["errors_to_truth"]) < 0.5 * details["ones_error"], details
