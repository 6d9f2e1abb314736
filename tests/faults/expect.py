"""Every fault scenario must end with no duplicate, no gap and no crash."""

from __future__ import annotations

from driftcal.testing.faults.harness import ScenarioResult


def assert_clean(result: ScenarioResult) -> None:
    """No duplicate or missing sequence number, no crash, at least one publication, everything consumed."""
    report = result.report()
    assert result.duplicates == 0 and result.gaps == 0, report
    assert result.crashes == 0, report
    assert result.published >= 1, report
    assert result.consumed == result.sent, report  # every offset committed: nothing skipped
