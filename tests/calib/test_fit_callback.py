"""``fit``'s per-step callback (RMSE vs step), early stop, skipped distance probes and the bf16 switch."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from driftcal.calib.fit import fit
from driftcal.calib.recipes import default_recipe
from driftcal.calib.training import run_engine
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
    d = _data()
    result = fit(
        d.reference,
        d.changed,
        model="cell-gain",
        recipe=SMALL,
        steps=50,
        device="cpu",
        callback=lambda engine, _stats: engine.steps >= 3,
        probe_steps=0,
    )
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
