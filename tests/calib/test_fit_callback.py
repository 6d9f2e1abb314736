"""``fit``'s per-step callback (RMSE vs step), early stop, the time budget, skipped distance probes, bf16."""

import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from driftcal.calib.fit import fit
from driftcal.calib.recipes import default_recipe
from driftcal.calib.training import run_engine
from driftcal.errors import InputError
from driftcal.sim import CalorimeterGeometry, make_calorimeter_dataset

TINY = CalorimeterGeometry(layers=2, height=4, width=4)
_DEFAULT = default_recipe("cell-gain", TINY.shape)
SMALL = replace(_DEFAULT, width=4, engine=replace(_DEFAULT.engine, batch_size=32))  # fast on shared cores


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models: torch's OpenMP threads only cost time on shared cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data():
    return make_calorimeter_dataset(400, geometry=TINY, seed=2)


def _small_fit(**kwargs):
    """The adversarial fit of the tiny data set with the small recipe, on the CPU."""
    d = _data()
    return fit(d.reference, d.changed, model="cell-gain", recipe=SMALL, device="cpu", **kwargs)


def test_callback_sees_every_step_and_the_engine():
    d = _data()
    seen = []

    def record(engine, stats):
        seen.append((engine.steps, stats["distance"], engine.coefficients().shape))

    result = fit(
        d.reference,
        d.changed,
        model="cell-gain",
        recipe=SMALL,
        steps=5,
        seed=0,
        device="cpu",
        callback=record,
        probe_steps=0,
    )
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5]
    assert all(shape == torch.Size(TINY.shape) for _, _, shape in seen)
    assert all(np.isfinite(dist) for _, dist, _ in seen)
    assert result.steps == 5
    assert result.distance_before is None and result.distance_after is None  # probes skipped


def test_callback_returning_true_stops_the_run():
    result = _small_fit(steps=50, callback=lambda engine, _stats: engine.steps >= 3, probe_steps=0)
    assert result.steps == 3


def test_default_fit_still_probes_and_bf16_is_a_no_op_on_cpu():
    d = _data()
    plain = fit(
        d.reference, d.changed, model="cell-gain", recipe=SMALL, steps=3, seed=1, device="cpu", probe_steps=2
    )
    bf16 = fit(
        d.reference,
        d.changed,
        model="cell-gain",
        recipe=SMALL,
        steps=3,
        seed=1,
        device="cpu",
        probe_steps=2,
        bf16=True,
    )
    assert plain.distance_before is not None and plain.distance_after is not None
    np.testing.assert_array_equal(plain.coefficients, bf16.coefficients)


def test_run_engine_without_callback_is_unchanged():
    from driftcal.calib.recipes import make_engine

    d = _data()
    ref, chg = torch.as_tensor(d.reference), torch.as_tensor(d.changed)
    runs = []
    for callback in (None, lambda engine, stats: None):
        engine = make_engine("cell-gain", TINY.shape, recipe=SMALL, seed=0, device="cpu")
        engine.prepare(ref, chg)
        run_engine(engine, ref, chg, steps=4, callback=callback)
        runs.append(engine.coefficients())
    torch.testing.assert_close(runs[0], runs[1])


class _Clock:
    """A clock that advances one second per engine step (the callback ticks it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_budget_stops_in_time_for_the_reserved_steps():
    from driftcal.calib.training import TimeBudget

    clock = _Clock()
    budget = TimeBudget(deadline=10.0, reserve_steps=3, clock=clock, margin=1.0)
    budget.start()
    inner_calls = []
    on_step = budget.callback(lambda engine, stats: inner_calls.append(1))
    stopped_at = None
    for step in range(1, 20):
        clock.now += 1.0  # each step takes 1 s
        if on_step(None, {}):
            stopped_at = step
            break
    # after step 6 (t = 6 s), one more step and 3 reserved ones would end at 10 s: still allowed;
    # after step 7 (t = 7 s) they would end at 11 s, past the deadline
    assert stopped_at == 7 and budget.cut
    assert len(inner_calls) == 7
    assert budget.seconds_per_step == 1.0
    assert budget.allows(3) and not budget.allows(4)
    budget.note_probe(seconds=1.0, steps=2)  # a probe step costs 0.5 s
    assert budget.allows(6, probe=True) and not budget.allows(7, probe=True)
    budget.margin = 1.25
    assert budget.allows(2) and not budget.allows(3)  # 3 x 1.25 s > the 3 s left


def test_no_deadline_never_stops():
    from driftcal.calib.training import TimeBudget

    budget = TimeBudget.of(None)
    budget.start()
    on_step = budget.callback()
    assert not any(on_step(None, {}) for _ in range(50))
    assert budget.allows(10**9) and not budget.cut


def test_time_budget_cuts_the_refinement_and_keeps_the_checked_start():
    t0 = time.monotonic()
    # 5 s: room for the probes' 15 steps even at 50 ms a step on a loaded machine
    result = _small_fit(steps=100_000, probe_steps=5, time_budget=5.0)
    elapsed = time.monotonic() - t0
    assert result.time_limited
    assert 0 < result.steps < 100_000
    # the refinement stopped in time for the acceptance probes (the distance at 1, probed last, may be
    # skipped on a loaded machine)
    assert result.refined is not None and result.distance_start is not None
    assert np.isfinite(result.coefficients).all()
    assert elapsed < 5.0 + 5.0  # the budget bounds the call (slack for a loaded machine)


def test_no_budget_is_not_time_limited_and_bad_budget_is_an_input_error():
    assert not _small_fit(steps=3, probe_steps=2).time_limited
    with pytest.raises(InputError, match="--time-budget"):
        _small_fit(steps=3, time_budget=0)
