"""Tracker study of ``benchmarks/paper.py`` (Fig. 5): |Δx̂₂ − Δx₂| against the hit noise σ.

Three planes at z = 0, 0.5, 1; the middle one shifted by Δx₂ = 0.01 (the paper's toy); half the tracks
inclined. For every σ and seed, N reference and N changed tracks are simulated and fitted by the three
methods (the tracker analogues of the baselines, see :mod:`paper_studies`).

The statistical floor is that of the residual-based estimate. The residual of the middle plane,
``r = h₂ − [(1 − w) h₁ + w h₃]`` with ``w = (z₂ − z₁)/(z₃ − z₁)``, cancels the track's entry point and
slope event by event, so ``Var r = σ² (1 + (1 − w)² + w²)`` (= 1.5 σ² for w = ½). The estimate
``mean(r | changed) − mean(r | reference)`` from N + N tracks has the standard error

    σ_floor = σ · sqrt(2 (1 + (1 − w)² + w²) / N)      (= σ · sqrt(3 / N) for the middle plane),

and, being Gaussian, a mean absolute error of ``σ_floor · sqrt(2/π)``. The frame-corrected difference of
means is algebraically the same estimator (the mean of residuals is the residual of the means), so
``ratio_of_means`` should sit on the floor. Two scales mark where the shift stops being identifiable:
a single track's residual resolves it while ``σ · sqrt(1.5) < Δx₂``, and the whole sample resolves it while
``σ_floor < Δx₂ / 10`` (a 10 % error); a method has lost it at the smallest σ where its mean error exceeds
``Δx₂ / 10``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from paper_studies import Scale, log, stat_rows

from driftcal.calib.baselines import MeanShift, QuantileShift
from driftcal.calib.fit import fit
from driftcal.sim import TrackerGeometry, make_tracker_dataset

Z = (0.0, 0.5, 1.0)
SHIFT = 0.01
LOST_FRACTION = 0.1


def floor(sigma: float, events: int, z: tuple[float, ...] = Z, plane: int = 1) -> float:
    """Standard error of the residual-based shift estimate of ``plane`` from ``events`` + ``events`` tracks.

    >>> round(floor(1e-3, 30000), 8)
    1e-05
    """
    w = (z[plane] - z[0]) / (z[-1] - z[0])
    return sigma * math.sqrt(2.0 * (1.0 + (1.0 - w) ** 2 + w**2) / events)


def _lost(sigmas: list[float], errors: list[float]) -> float | None:
    for sigma, err in zip(sigmas, errors, strict=True):
        if err > LOST_FRACTION * SHIFT:
            return sigma
    return None


def run_tracker(scale: Scale) -> dict[str, Any]:
    """Fit every method at every σ and seed; returns the ``tracker_noise`` section."""
    geometry = TrackerGeometry(z=Z)
    sigmas = list(scale.sigmas)
    rows: dict[str, dict[str, list[list[float]]]] = {
        m: {"abs_error": [], "seconds": []} for m in ("adversarial", "ratio_of_means", "w1_per_cell")
    }
    t_all = time.perf_counter()
    for sigma in sigmas:
        for m in rows:
            rows[m]["abs_error"].append([])
            rows[m]["seconds"].append([])
        for seed in range(scale.seeds):
            data = make_tracker_dataset(scale.tracker_events, geometry=geometry, noise=sigma, seed=seed)
            truth = float(data.truth[1])
            for method in rows:
                t0 = time.perf_counter()
                if method == "adversarial":
                    est = fit(
                        data.reference,
                        data.changed,
                        model="plane-shift",
                        method="adversarial",
                        steps=scale.tracker_steps,
                        seed=seed,
                        device=scale.device,
                        probe_steps=0,
                    ).coefficients
                elif method == "ratio_of_means":
                    est = MeanShift(z=Z).fit(data.reference, data.changed)
                else:
                    est = QuantileShift(z=Z).fit(data.reference, data.changed)
                rows[method]["abs_error"][-1].append(abs(float(est[1]) - truth))
                rows[method]["seconds"][-1].append(time.perf_counter() - t0)
            log(
                f"  tracker σ={sigma:.0e} seed={seed} "
                + " ".join(f"{m}={rows[m]['abs_error'][-1][-1]:.2e}" for m in rows)
            )
    notes = {
        "adversarial": "driftcal fit --model plane-shift --method adversarial (MLP critic on whitened hits)",
        "ratio_of_means": "the tracker analogue of the ratio of means: difference of per-plane means, "
        "frame-corrected; algebraically the residual-based estimate",
        "w1_per_cell": "per-plane 1-D W1 fit of the marginals (QuantileShift)",
    }
    methods: dict[str, Any] = {}
    for m, values in rows.items():
        err = stat_rows(values["abs_error"])
        methods[m] = {
            "abs_error": err,
            "seconds": stat_rows(values["seconds"]),
            "sigma_lost": _lost(sigmas, err["mean"]),
            "note": notes[m],
        }
    stderr = [floor(s, scale.tracker_events) for s in sigmas]
    return {
        "figure": "Fig. 5",
        "title": "Tracker |Δx̂₂ − Δx₂| vs hit noise σ",
        "settings": {
            "z": list(Z),
            "shift": SHIFT,
            "events": scale.tracker_events,
            "seeds": list(range(scale.seeds)),
            "inclined_fraction": geometry.inclined_fraction,
            "max_slope": geometry.max_slope,
            "adversarial_steps": scale.tracker_steps,
        },
        "x": {"name": "sigma", "values": sigmas},
        "metric": "abs_error",
        "floor": {
            "formula": "sigma * sqrt(2 * (1 + (1 - w)^2 + w^2) / N), w = 1/2: sigma * sqrt(3 / N)",
            "stderr": stderr,
            "expected_abs_error": [s * math.sqrt(2.0 / math.pi) for s in stderr],
        },
        "identifiability": {
            "lost_when": f"mean |error| > {LOST_FRACTION:g} x shift",
            "threshold_abs_error": LOST_FRACTION * SHIFT,
            "per_track_sigma": SHIFT / math.sqrt(1.5),
            "sample_sigma": LOST_FRACTION * SHIFT / math.sqrt(3.0 / scale.tracker_events),
        },
        "methods": methods,
        "seconds": time.perf_counter() - t_all,
    }
