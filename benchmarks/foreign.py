"""The fit on data from a simulator that is not ours, run the way an outside check runs it.

    python benchmarks/foreign.py [--seeds 3] [--settings foreign-dose,foreign-patchy,foreign-clean]
                                 [--methods ratio-of-means,quantile,auto,adversarial,auto+groups]
                                 [--events 30000]
                                 [--out FILE.json]

Issue 4 is checked from outside "on data made by a different simulator (other geometry, shower shapes, aging
law, threshold and noise)". This script is such a simulator, written without ``driftcal.sim``, so that
nothing in the fit can lean on what our own simulator happens to do:

- **geometry**: 4 layers of 20 x 20 cells (1,600 cells), layers 4, 5, 7 and 10 X0 deep;
- **showers**: energy log-uniform in 2-50 GeV; depth from a gamma profile (t_max = ln(E / 20 MeV) - 0.5);
  lateral spread from an exponential core that widens with depth plus a 25 % exponential halo; beam spot
  σ = 4 cells; tilted tracks; energy deposited as lognormal spots, 40 per GeV;
- **readout**: gain x signal + Gaussian noise (σ = 0.08), zero-suppressed at 0.3 (3.75 σ), or no noise and no
  threshold (``foreign-clean``);
- **aging**: ``dose``: a power law of each cell's expected dose with a different rate per layer, 2 %
  lognormal scatter, and 1 % failed channels at 0.3-0.5; ``patchy``: 5 x 5-cell high-voltage groups with
  gains uniform in [0.75, 1] times 2 % scatter, independent of the dose.

The detector has 5 x 5-cell high-voltage groups in every setting; ``auto+groups`` gives their map to the fit
(``--method auto --groups``), as an operator who knows the wiring would. Under the dose law the gains do not
follow the groups, which tests that a map that does not matter does no harm.

Every method runs through the CLI (``python -m driftcal fit --method M --threshold T --noise SIGMA``) on
``.npy`` files, and the RMSE is computed here over the cells with at least 50 readings > 0 in the reference.
The last stdout line is the whole result as one JSON document; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from driftcal.calib.metrics import mean_std

LAYERS_X0 = np.array([4.0, 5.0, 7.0, 10.0])  # layer depths in radiation lengths
SIDE = 20
SPOTS_PER_GEV = 40
SPOT_MEV = 0.05  # mean visible energy of one spot
SETTINGS: dict[str, dict] = {
    "foreign-dose": {"aging": "dose", "noise": 0.08, "threshold": 0.3},
    "foreign-patchy": {"aging": "patchy", "noise": 0.08, "threshold": 0.3},
    "foreign-clean": {"aging": "dose", "noise": None, "threshold": None},
}
METHODS = ("ratio-of-means", "quantile", "auto", "adversarial", "auto+groups")
DEFAULT_METHODS = ("ratio-of-means", "quantile", "auto", "adversarial")
GROUP = 5  # cells per side of a high-voltage group


def showers(events: int, rng: np.random.Generator, chunk: int = 1000) -> np.ndarray:
    """Noise-free visible energy ``(events, 4, 20, 20)`` (float32) of electromagnetic showers."""
    cells = len(LAYERS_X0) * SIDE * SIDE
    edges = np.concatenate([[0.0], np.cumsum(LAYERS_X0)])
    out = np.empty((events, cells), dtype=np.float32)
    for start in range(0, events, chunk):
        n = min(chunk, events - start)
        energy = np.exp(rng.uniform(np.log(2.0), np.log(50.0), n))
        spots = rng.poisson(energy * SPOTS_PER_GEV)
        event = np.repeat(np.arange(n), spots)
        e = energy[event]
        t_max = np.log(e / 0.02) - 0.5
        depth = rng.gamma(0.5 * t_max + 1.0, 1.0 / 0.5)
        layer = np.searchsorted(edges, depth, side="right") - 1
        x0, y0 = rng.normal(SIDE / 2, 4.0, n), rng.normal(SIDE / 2, 4.0, n)
        sx, sy = rng.normal(0.0, 0.03, n), rng.normal(0.0, 0.03, n)
        halo = rng.random(len(event)) < 0.25
        radius = rng.exponential(np.where(halo, 3.0, 0.5 * (1.0 + depth / 10.0)))
        phi = rng.uniform(0.0, 2.0 * np.pi, len(event))
        x = np.floor(x0[event] + sx[event] * depth + radius * np.cos(phi)).astype(np.int64)
        y = np.floor(y0[event] + sy[event] * depth + radius * np.sin(phi)).astype(np.int64)
        keep = (layer >= 0) & (layer < len(LAYERS_X0)) & (x >= 0) & (x < SIDE) & (y >= 0) & (y < SIDE)
        index = event * cells + (layer * SIDE + y) * SIDE + x
        deposit = SPOT_MEV * rng.lognormal(-0.125, 0.5, len(event))  # mean 1 x SPOT_MEV
        sums = np.bincount(index[keep], deposit[keep], minlength=n * cells)
        out[start : start + n] = sums.reshape(n, cells)
    return out.reshape(events, len(LAYERS_X0), SIDE, SIDE)


def gains(kind: str, dose: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """True gains ``(4, 20, 20)`` for the aging law ``kind`` given each cell's expected dose."""
    scatter = np.exp(rng.normal(0.0, 0.02, dose.shape))
    if kind == "dose":
        rate = np.array([0.35, 0.45, 0.3, 0.2])[:, None, None]
        g = np.exp(-rate * (dose / dose.max()) ** 0.6) * scatter
        failed = rng.random(dose.shape) < 0.01
        g[failed] = rng.uniform(0.3, 0.5, int(failed.sum()))
        return g
    if kind == "patchy":
        return rng.uniform(0.75, 1.0, (len(LAYERS_X0) * (SIDE // GROUP) ** 2))[hv_groups()] * scatter
    raise ValueError(f"unknown aging law {kind!r}")


def hv_groups() -> np.ndarray:
    """The high-voltage group of every cell ``(4, 20, 20)``: 5 x 5-cell squares, numbered layer by layer."""
    layer, row, col = np.indices((len(LAYERS_X0), SIDE, SIDE))
    per_side = SIDE // GROUP
    return (layer * per_side + row // GROUP) * per_side + col // GROUP


def readout(signal: np.ndarray, setting: dict, rng: np.random.Generator) -> np.ndarray:
    if setting["noise"] is None:
        return signal
    reading = signal + rng.normal(0.0, setting["noise"], signal.shape).astype(np.float32)
    reading[reading < setting["threshold"]] = 0.0
    return reading


def dataset(setting: dict, events: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference readings, changed readings and the true gains."""
    rng = np.random.default_rng(seed)
    reference_signal = showers(events, rng)
    changed_signal = showers(events, rng)
    dose = np.concatenate([reference_signal, changed_signal]).mean(0, dtype=np.float64)
    truth = gains(setting["aging"], dose, rng)
    reference = readout(reference_signal, setting, rng)
    changed = readout(changed_signal * truth.astype(np.float32), setting, rng)
    return reference, changed, truth


def cli_fit(method: str, folder: Path, setting: dict, seed: int) -> tuple[np.ndarray, float, str]:
    """Run ``python -m driftcal fit`` on the files in ``folder``; coefficients, seconds, its summary line."""
    out = folder / f"{method}.json"
    command = [sys.executable, "-m", "driftcal", "fit", "--reference", str(folder / "ref.npy")]
    command += ["--changed", str(folder / "chg.npy"), "--model", "cell-gain"]
    command += (
        ["--method", "auto", "--groups", str(folder / "groups.npy")]
        if method == "auto+groups"
        else ["--method", method]
    )
    command += ["--seed", str(seed), "--out", str(out), "--no-progress"]
    if setting["noise"] is not None:
        command += ["--threshold", str(setting["threshold"]), "--noise", str(setting["noise"])]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"driftcal fit --method {method} failed: {done.stderr.strip()}")
    document = json.loads(out.read_text())
    coefficients = np.asarray(document["coefficients"], dtype=np.float64)
    return coefficients, seconds, done.stdout.strip()  # with --out, the summary line goes to stdout


def run(settings: list[str], seeds: list[int], methods: list[str], events: int) -> dict:
    results: dict[str, dict] = {}
    for name in settings:
        setting = SETTINGS[name]
        values: dict[str, dict[str, list[float]]] = {m: {"rmse": [], "seconds": []} for m in methods}
        for seed in seeds:
            reference, changed, truth = dataset(setting, events, seed)
            mask = (reference > 0).sum(0) >= 50
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                np.save(folder / "ref.npy", reference)
                np.save(folder / "chg.npy", changed)
                np.save(folder / "groups.npy", hv_groups())
                for method in methods:
                    coefficients, seconds, line = cli_fit(method, folder, setting, seed)
                    error = float(np.sqrt(np.mean((coefficients.reshape(truth.shape) - truth)[mask] ** 2)))
                    values[method]["rmse"].append(error)
                    values[method]["seconds"].append(seconds)
                    print(
                        f"  {name} seed={seed} {method:15s} rmse={error:.4f} {seconds:.0f}s | {line}",
                        file=sys.stderr,
                        flush=True,
                    )
        results[name] = {
            "setting": {**setting, "events": events, "cells": len(LAYERS_X0) * SIDE * SIDE},
            "methods": {
                m: {
                    "values": v,
                    **{k: dict(zip(("mean", "std"), mean_std(x), strict=True)) for k, x in v.items()},
                }
                for m, v in values.items()
            },
        }
    return results


def _table(results: dict) -> str:
    lines = []
    for name, result in results.items():
        methods = result["methods"]
        base = methods.get("ratio-of-means", {}).get("rmse", {}).get("mean")
        quantile = methods.get("quantile", {}).get("rmse", {}).get("mean")
        for method, summary in methods.items():
            m, s = summary["rmse"]["mean"], summary["rmse"]["std"]
            ratios = [
                f"{m / ref:.2f}x {label}" for label, ref in (("ratio", base), ("quantile", quantile)) if ref
            ]
            lines.append(
                f"{name:15s} {method:15s} rmse {m:.4f} ± {s:.4f}  ({', '.join(ratios)})  "
                f"{summary['seconds']['mean']:.0f} s"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    settings, methods = args.settings.split(","), args.methods.split(",")
    unknown = [s for s in settings if s not in SETTINGS] + [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown settings or methods: {', '.join(unknown)}")
    results = run(settings, list(range(args.seeds)), methods, args.events)
    print(_table(results), file=sys.stderr)
    document = {"benchmark": "foreign", "events": args.events, "seeds": args.seeds, "results": results}
    if args.out:
        args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
