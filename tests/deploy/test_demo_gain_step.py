"""``driftcal demo --gain-step EVENTS:FACTOR``: the drift the live Prometheus test injects."""

from __future__ import annotations

import numpy as np
import pytest

from driftcal.cli import main
from driftcal.cli.demo import gain_step
from driftcal.sim.drifting import DriftingCalorimeter
from driftcal.sim.geometry import CalorimeterGeometry
from driftcal.stream.demo import DemoStream


def test_gain_step_multiplies_every_gain_from_the_given_event_on() -> None:
    stream = DemoStream(start=1000, step_at=200, step_factor=3.0, rate=1e-6)
    sim = DriftingCalorimeter(
        CalorimeterGeometry(layers=2, height=4, width=4), rate=stream.rate, start=stream.start,
        drops=stream.drops(), seed=0, occupancy_events=200,
    )  # fmt: skip
    earlier, before, after = sim.truth(1198), sim.truth(1199), sim.truth(1200)
    np.testing.assert_allclose(before / earlier, 1.0, rtol=1e-3)  # the aging law alone is smooth
    np.testing.assert_allclose(after / before, 3.0, rtol=1e-3)  # every cell steps at event 200
    assert DemoStream().drops() == ()


@pytest.mark.parametrize("bad", ["3", "x:2", "10:0", "-1:2", "10:nan", "10:"])
def test_gain_step_rejects_bad_values(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--gain-step", bad]) == 2
    assert "--gain-step" in capsys.readouterr().err


def test_gain_step_parses() -> None:
    assert gain_step("2500:3") == (2500, 3.0)
    assert gain_step("0:0.5") == (0, 0.5)
    with pytest.raises(ValueError, match="step_at"):
        DemoStream(step_at=-1).drops()
