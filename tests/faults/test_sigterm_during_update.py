"""Fault injection: SIGTERM while the first (long) update runs.

Expected: a clean exit with the final publish, the commit and the checkpoint, within the shutdown timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftcal.testing.faults.process_faults import sigterm

from .expect import assert_clean

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_sigterm_during_an_update_publishes_commits_and_checkpoints(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = sigterm(kafka_bootstrap, tmp_path, timeout_s=10.0)
    assert_clean(result)  # consumed == sent: every offset committed at the stop
    details = result.details
    assert details["exit_code"] == 0 and details["exit_seconds"] < details["timeout_seconds"], details
    assert details["update_finished"], details  # the update in flight ended and was published
    assert details["checkpoint_sequence"] == result.published, details
