"""``driftcal simulate``: options reach the simulator, files are written; end to end with ``fit``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from driftcal.coefficients import CoefficientDocument

# --- with stand-ins for the simulator: what the CLI passes on -------------------------------------


@dataclass
class FakeGeometry:
    layers: int = 40
    height: int = 16
    width: int = 16
    plates_per_layer: int = 1


@dataclass
class FakeTrackerGeometry:
    z: tuple[float, ...] = (0.0, 0.5, 1.0)


@dataclass
class FakeBeam:
    particle: str = "pi-"


@dataclass
class FakeSim:
    calls: list[tuple[str, int, dict]] = field(default_factory=list)

    def calorimeter(self, n_events, **kwargs):
        self.calls.append(("calorimeter", n_events, kwargs))
        g = kwargs.get("geometry", FakeGeometry())
        cells = (g.layers, g.height, g.width)
        meta = {"geometry": g, "epsilon": np.float32(0.25), "shape": np.array(cells)}
        return self._dataset(n_events, cells, meta)

    def tracker(self, n_events, **kwargs):
        self.calls.append(("tracker", n_events, kwargs))
        g = kwargs.get("geometry", FakeTrackerGeometry())
        return self._dataset(n_events, (len(g.z),), {"z": g.z})

    @staticmethod
    def _dataset(n, cells, meta):
        return SimpleNamespace(
            reference=np.ones((n, *cells), np.float32),
            changed=np.ones((n, *cells), np.float32),
            truth=np.ones(cells),
            meta=meta,
        )


@pytest.fixture
def fake_sim(monkeypatch):
    import driftcal.sim

    fake = FakeSim()
    for name, value in {
        "make_calorimeter_dataset": fake.calorimeter,
        "make_tracker_dataset": fake.tracker,
        "CalorimeterGeometry": FakeGeometry,
        "TrackerGeometry": FakeTrackerGeometry,
        "Beam": FakeBeam,
    }.items():
        monkeypatch.setattr(driftcal.sim, name, value, raising=False)
    return fake


def test_calorimeter_options_reach_the_simulator(cli, fake_sim, tmp_path):
    out = tmp_path / "calo"
    outcome = cli(
        "simulate", "calorimeter", "--events", "30", "--out", out, "--seed", "3", "--epsilon", "0.05",
        "--noise", "0.01", "--threshold", "0.1", "--layers", "2", "--height", "4", "--width", "5",
        "--plates-per-layer", "2", "--particle", "e-", "--n-changed", "20",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    ((kind, n, kwargs),) = fake_sim.calls
    assert (kind, n) == ("calorimeter", 30)
    assert kwargs == {
        "seed": 3,
        "noise": 0.01,
        "n_changed": 20,
        "geometry": FakeGeometry(layers=2, height=4, width=5, plates_per_layer=2),
        "beam": FakeBeam(particle="e-"),
        "epsilon": 0.05,
        "threshold": 0.1,
    }
    meta = json.loads((out / "meta.json").read_text())
    assert meta == {
        "geometry": {"layers": 2, "height": 4, "width": 5, "plates_per_layer": 2},
        "epsilon": 0.25,
        "shape": [2, 4, 5],
    }
    assert len(outcome.out.strip().splitlines()) == 1


def test_defaults_are_the_simulators(cli, fake_sim, tmp_path):
    assert cli("simulate", "calorimeter", "--events", "5", "--out", tmp_path).code == 0
    assert cli("simulate", "tracker", "--events", "5", "--out", tmp_path).code == 0
    assert [c[2] for c in fake_sim.calls] == [{"seed": 0}, {"seed": 0}]


def test_tracker_planes_and_shifts(cli, fake_sim, tmp_path):
    argv = ("simulate", "tracker", "--events", "8", "--out", tmp_path, "--noise", "0.002")
    assert cli(*argv, "--planes", "5", "--shift", "0,0.1,-0.1,0.2,0").code == 0
    assert cli(*argv, "--z", "0,0.3,1").code == 0
    (_, _, first), (_, _, second) = fake_sim.calls
    assert first["geometry"] == FakeTrackerGeometry(z=(0.0, 0.25, 0.5, 0.75, 1.0))
    np.testing.assert_allclose(first["shifts"], [0, 0.1, -0.1, 0.2, 0])
    assert first["noise"] == 0.002
    assert second["geometry"] == FakeTrackerGeometry(z=(0.0, 0.3, 1.0))
    assert np.load(tmp_path / "reference.npy").shape == (8, 3)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--planes", "2"), "at least 3 planes"),
        (("--z", "0,1"), "at least 3 planes"),
        (("--z", "0,1,0.5"), "increase strictly"),
        (("--shift", "0,0.1"), "--shift gives 2 values but the tracker has 3 planes"),
        (("--planes", "4", "--shift", "0,0.1,0"), "the tracker has 4 planes"),
    ],
)
def test_bad_tracker_options(cli, fake_sim, tmp_path, extra, needle):
    cli("simulate", "tracker", "--events", "8", "--out", tmp_path, *extra).assert_input_error(needle)
    assert not fake_sim.calls


def test_out_is_a_file(cli, fake_sim, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cli("simulate", "tracker", "--events", "8", "--out", blocker).assert_input_error("file")


# --- with the real simulator and fit ------------------------------------------------------------


def test_simulate_calorimeter_files(cli, tmp_path):
    out = tmp_path / "calo"
    argv = ("simulate", "calorimeter", "--events", "300", "--layers", "2", "--height", "4", "--width", "4")
    outcome = cli(*argv, "--out", out, "--epsilon", "0.05")
    assert outcome.code == 0, outcome.err
    assert sorted(p.name for p in out.iterdir()) == ["changed.npy", "meta.json", "reference.npy", "truth.npy"]
    assert np.load(out / "reference.npy", allow_pickle=False).shape == (300, 2, 4, 4)
    assert np.load(out / "changed.npy", allow_pickle=False).shape[1:] == (2, 4, 4)
    assert np.load(out / "truth.npy", allow_pickle=False).shape == (2, 4, 4)
    assert isinstance(json.loads((out / "meta.json").read_text()), dict)
    assert len(outcome.out.strip().splitlines()) == 1


def test_simulate_tracker_files(cli, tmp_path):
    out = tmp_path / "trk"
    outcome = cli("simulate", "tracker", "--events", "300", "--planes", "4", "--out", out)
    assert outcome.code == 0, outcome.err
    assert np.load(out / "reference.npy", allow_pickle=False).shape == (300, 4)
    assert np.load(out / "truth.npy", allow_pickle=False).shape == (4,)


def test_simulate_then_fit_round_trip(cli, tmp_path):
    data, doc_path = tmp_path / "calo", tmp_path / "gains.json"
    argv = ("simulate", "calorimeter", "--events", "300", "--layers", "2", "--height", "4", "--width", "4")
    assert cli(*argv, "--out", data, "--epsilon", "0.05", "--seed", "1").code == 0
    outcome = cli(
        "fit", "--reference", data / "reference.npy", "--changed", data / "changed.npy",
        "--model", "cell-gain", "--method", "ratio-of-means", "--truth", data / "truth.npy",
        "--out", doc_path, "--no-progress",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    summary, scored = outcome.out.strip().splitlines()
    assert summary.startswith("cell-gain (ratio-of-means): 32 coefficients") and str(doc_path) in summary
    assert scored.startswith("truth: RMSE ") and "active cells of the reference" in scored

    doc = CoefficientDocument.from_json(doc_path.read_text())
    n_changed = np.load(data / "changed.npy", allow_pickle=False).shape[0]
    assert doc.model == "cell-gain" and doc.method == "ratio-of-means" and doc.shape == [2, 4, 4]
    assert (doc.iov.first_event, doc.iov.last_event) == (0, n_changed - 1)
    assert doc.status == "converged"
    assert {"rmse", "n_cells"} <= set(doc.metrics)
    assert 0 < doc.metrics["n_cells"] <= 32
    truth = np.load(data / "truth.npy", allow_pickle=False)
    assert np.all(np.isfinite(doc.array())) and doc.array().shape == truth.shape
