"""Helpers for the CLI tests: run ``main`` in-process, write arrays, stand in for the fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from driftcal.calib import fit as fitting


@pytest.fixture
def save(tmp_path: Path):
    def write(name: str, array: np.ndarray, *, allow_pickle: bool = False) -> Path:
        path = tmp_path / name
        np.save(path, array, allow_pickle=allow_pickle)
        return path

    return write


@dataclass
class FakeFit:
    """Records the call and returns a FitResult with coefficients of the data's cell shape."""

    value: float = 0.9
    calls: list[dict] = field(default_factory=list)

    def __call__(self, reference: np.ndarray, changed: np.ndarray, **kwargs: object) -> fitting.FitResult:
        self.calls.append({"reference": reference, "changed": changed, **kwargs})
        cells = reference.shape[1:]
        return fitting.FitResult(
            model=kwargs["model"],
            method="ratio-of-means" if kwargs["method"] == "auto" else str(kwargs["method"]),
            coefficients=np.full(cells, self.value),
            uncertainty=np.full(cells, 0.01),
            distance_before=0.5,
            distance_after=0.05,
            steps=7,
        )


@pytest.fixture
def fake_fit(monkeypatch: pytest.MonkeyPatch) -> FakeFit:
    fake = FakeFit()
    monkeypatch.setattr(fitting, "fit", fake)
    return fake


@pytest.fixture
def calo_pair(save):
    """A small valid cell-gain pair: (N, 2, 3, 3) energies."""
    rng = np.random.default_rng(0)
    reference = rng.exponential(1.0, size=(200, 2, 3, 3)).astype(np.float32)
    changed = (0.9 * rng.exponential(1.0, size=(150, 2, 3, 3))).astype(np.float32)
    return save("ref.npy", reference), save("chg.npy", changed)


@pytest.fixture
def tracker_pair(save):
    """A small valid plane-shift pair: (N, 4) hit coordinates."""
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(100, 4)).astype(np.float32)
    changed = (rng.normal(size=(80, 4)) + np.array([0.0, 0.1, -0.2, 0.0])).astype(np.float32)
    return save("ref.npy", reference), save("chg.npy", changed)
