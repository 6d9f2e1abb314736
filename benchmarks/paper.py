"""Reproduce the paper's studies with both baselines beside the adversarial method, mean ± std over seeds.

    python benchmarks/paper.py [--quick | --scale paper] [--studies esum,...] --out RESULT.json
    driftcal report --from RESULT.json --out DIR          # figures and a Markdown summary

Modes: ``--quick`` is a CPU run of about 4 minutes (4 × 8 × 8 cells, 4k + 4k events, 80 steps of batch
128); the default is a CPU run of about half an hour (6 × 16 × 16 cells as in ``benchmarks/recovery.py``,
20k + 20k events, 150 steps of batch 256: 18 adversarial calorimeter fits at about 0.5 s per step on one
core); ``--scale paper`` is for a GPU (40 × 16 × 16 cells, 1e5 + 1e5 events, batch 8192, critic width 64,
bf16 autocast; see ``benchmarks/gpu.sh``). Every size can be overridden (``--events``, ``--steps``,
``--geometry``, ...).

Studies (sections of the result document, each with the methods ``adversarial``, ``ratio_of_means`` and
``w1_per_cell``): ``esum`` (Fig. 4), ``tracker_noise`` (Fig. 5), ``rmse_vs_epoch`` (Fig. 6), ``cellwise``
(Fig. 7), ``esum_calibrated`` (Fig. 8), ``epsilon_sweep`` (Fig. 9), ``threshold_sweep`` (new). See
``paper_calo.py`` and ``paper_tracker.py`` for what each measures.

On the CPU torch runs single-threaded by default (``--threads``): on shared cores, torch's OpenMP threads
stall badly (a step measured 13× slower with 2 threads than with 1 on a loaded 2-core machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from paper_calo import CALO_STUDIES, run_calorimeter
from paper_studies import Scale, calorimeter_recipe, log
from paper_tracker import run_tracker

from driftcal import __version__
from driftcal.calib.recipes import make_critic
from driftcal.report.load import SCHEMA, STUDIES
from driftcal.report.reference import PAPER, PAPER_EPSILON

SCALES: dict[str, Scale] = {
    "quick": Scale(
        name="quick",
        geometry=(4, 8, 8, 3),
        events=4000,
        seeds=3,
        steps=80,
        epsilons=(0.0, 0.01, 0.05),
        n_sigmas=(1.0, 3.0),
        noise=0.05,
        tracker_events=20_000,
        sigmas=(1e-4, 1e-3, 1e-2, 3e-2),
        tracker_steps=300,
        record_every=5,
        batch_size=128,
    ),
    "default": Scale(
        name="default",
        geometry=(6, 16, 16, 3),
        events=20_000,
        seeds=3,
        steps=150,
        epsilons=(0.0, 0.01, 0.05),
        n_sigmas=(1.0, 3.0, 6.0),
        noise=0.05,
        tracker_events=50_000,
        sigmas=(1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2),
        tracker_steps=None,
        record_every=10,
    ),
    "paper": Scale(
        name="paper",
        geometry=(40, 16, 16, 1),
        events=100_000,
        seeds=3,
        steps=2000,
        epsilons=(0.0, 0.01, 0.02, 0.03, 0.05),
        n_sigmas=(1.0, 3.0, 6.0),
        noise=0.05,
        tracker_events=100_000,
        sigmas=(1e-5, 1e-4, 1e-3, 3e-3, 6e-3, 1e-2, 2e-2, 3e-2),
        tracker_steps=None,
        record_every=20,
        batch_size=8192,
        width=64,
        bf16=True,
        sim_workers=max(1, (os.cpu_count() or 1) - 1),
    ),
}

#: dense bf16 tensor-core peak (TFLOPS, no sparsity) by a substring of the GPU's name, first match wins
BF16_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("A40", 150.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
)


def bf16_peak(name: str) -> float | None:
    """The GPU's dense bf16 peak in TFLOPS, from its name (None when unknown).

    >>> bf16_peak("NVIDIA H100 80GB HBM3"), bf16_peak("Tesla T4")
    (989.0, None)
    """
    for key, peak in BF16_PEAK_TFLOPS:
        if key.lower() in name.lower():
            return peak
    return None


def critic_flops(scale: Scale) -> dict[str, float]:
    """FLOPs of one critic forward per event (conv and linear multiply-adds × 2) and of one engine step.

    A step is ``n_critic`` critic updates (forward and backward on B real + B transformed events ≈ 3 × 2B
    forwards; the gradient penalty's double backward on B interpolates ≈ 6B more) and one θ update
    (forward and backward through the critic on B events ≈ 3B). An estimate, good to a factor of ~1.5.
    """
    shape = scale.calorimeter().shape
    recipe = calorimeter_recipe(scale, shape)
    critic = make_critic(shape, recipe)
    total = [0.0]

    def hook(module: torch.nn.Module, _inp: Any, out: torch.Tensor) -> None:
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total[0] += 2.0 * k * out.numel()
        elif isinstance(module, torch.nn.Linear):
            total[0] += 2.0 * module.in_features * out.numel()

    handles = [
        m.register_forward_hook(hook)
        for m in critic.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    with torch.no_grad():
        critic.body(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    per_event = total[0]
    b, n_critic = recipe.engine.batch_size, recipe.engine.n_critic
    gp = 6.0 if recipe.engine.lipschitz == "gp" else 0.0
    per_step = n_critic * (6.0 + gp) * b * per_event + 3.0 * b * per_event
    return {"forward_per_event": per_event, "per_step": per_step, "events_per_step": b * (2 * n_critic + 1)}


def performance(scale: Scale, info: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    """Steps/s, events/s and the share of the GPU's bf16 peak of the adversarial calorimeter fits."""
    flops = critic_flops(scale)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    peak = bf16_peak(device) if torch.cuda.is_available() else None
    out: dict[str, Any] = {"device": device, "flops": flops, "bf16_peak_tflops": peak}
    rate = info.get("measured_steps_per_s")
    if rate:
        out["steps_per_s"] = rate
        out["events_per_s"] = rate * flops["events_per_step"]
        out["tflops"] = rate * flops["per_step"] / 1e12
        out["share_of_bf16_peak"] = out["tflops"] / peak if peak else None
    cell = sections.get("cellwise", {}).get("methods", {}).get("adversarial")
    steps = sections.get("rmse_vs_epoch", {}).get("methods", {}).get("adversarial", {}).get("steps")
    if cell and steps:  # end to end, with data transfer, held-out checks and the RMSE recording
        out["end_to_end_steps_per_s"] = steps["mean"] / cell["seconds"]["mean"]
    return out


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _geometry(text: str) -> tuple[int, int, int, int]:
    parts = [int(v) for v in text.lower().split("x")]
    if len(parts) not in (3, 4) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected LxHxW or LxHxWxPLATES, got {text!r}")
    return (*parts, 1) if len(parts) == 3 else tuple(parts)  # type: ignore[return-value]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="CPU run of a few minutes")
    mode.add_argument("--scale", choices=("default", "paper"), default=None, help="paper: the GPU run")
    p.add_argument("--out", type=Path, required=True, help="write the result document here")
    p.add_argument(
        "--studies", default=",".join(STUDIES), help=f"comma-separated subset of {','.join(STUDIES)}"
    )
    p.add_argument("--seeds", type=int)
    p.add_argument("--events", type=int, help="reference (= changed) calorimeter events per seed")
    p.add_argument("--geometry", type=_geometry, help="LxHxW[xPLATES_PER_LAYER]")
    p.add_argument("--steps", type=int, help="adversarial steps per calorimeter fit")
    p.add_argument("--fit-seconds", type=float, help="instead of --steps: time per adversarial fit")
    p.add_argument("--epsilons", type=_floats)
    p.add_argument("--thresholds-sigma", type=_floats, help="threshold sweep in units of --noise")
    p.add_argument("--noise", type=float, help="readout noise σ (MeV) of the threshold sweep")
    p.add_argument("--sigmas", type=_floats, help="tracker hit noise values")
    p.add_argument("--tracker-events", type=int)
    p.add_argument("--tracker-steps", type=int)
    p.add_argument("--record-every", type=int, help="steps between points of the RMSE curve")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--width", type=int, help="conv critic width")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--sim-workers", type=int, help="processes simulating showers")
    p.add_argument("--threads", type=int, help="torch CPU threads (default 1 on the CPU)")
    return p.parse_args(argv)


def build_scale(args: argparse.Namespace) -> Scale:
    name = "quick" if args.quick else (args.scale or "default")
    scale = SCALES[name]
    overrides = {
        "seeds": args.seeds,
        "events": args.events,
        "geometry": args.geometry,
        "steps": args.steps,
        "fit_seconds": args.fit_seconds,
        "epsilons": args.epsilons,
        "n_sigmas": args.thresholds_sigma,
        "noise": args.noise,
        "sigmas": args.sigmas,
        "tracker_events": args.tracker_events,
        "tracker_steps": args.tracker_steps,
        "record_every": args.record_every,
        "batch_size": args.batch_size,
        "width": args.width,
        "device": args.device,
        "sim_workers": args.sim_workers,
    }
    scale = replace(scale, **{k: v for k, v in overrides.items() if v is not None})
    if args.fit_seconds is not None and args.steps is None:
        scale = replace(scale, steps=None)
    if args.no_bf16:
        scale = replace(scale, bf16=False)
    return scale


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scale = build_scale(args)
    studies = [s for s in args.studies.split(",") if s]
    unknown = sorted(set(studies) - set(STUDIES))
    if unknown or scale.seeds < 1:
        print(
            f"paper.py: error: unknown studies {unknown} (choose from {','.join(STUDIES)})", file=sys.stderr
        )
        return 2
    on_gpu = scale.device != "cpu" and torch.cuda.is_available()
    if args.threads or not on_gpu:
        torch.set_num_threads(args.threads or 1)
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    log(f"paper.py: mode {scale.name}, studies {','.join(studies)}, device {'cuda' if on_gpu else 'cpu'}")
    sections: dict[str, Any] = {}
    info: dict[str, Any] = {}
    if set(studies) & set(CALO_STUDIES):
        calo, info = run_calorimeter(scale, set(studies))
        sections.update(calo)
    t_tracker = time.perf_counter()
    if "tracker_noise" in studies:
        sections["tracker_noise"] = run_tracker(scale)
    doc: dict[str, Any] = {
        "benchmark": "paper",
        "schema": SCHEMA,
        "mode": scale.name,
        "studies": [s for s in STUDIES if s in sections],
        "methods": {
            "adversarial": "driftcal's adversarial fit (driftcal fit --method adversarial)",
            "ratio_of_means": "ratio of per-cell means (the paper's baseline); tracker: difference of means",
            "w1_per_cell": "per-cell 1-D W1 fit, threshold-aware (driftcal fit --method quantile)",
        },
        "settings": {**asdict(scale), "studies": studies},
        "versions": {
            "driftcal": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "environment": {
            "device": "cuda" if on_gpu else "cpu",
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "started": started.isoformat(timespec="seconds"),
        "timings": {
            "total_seconds": time.perf_counter() - t0,
            "calorimeter": info.get("seconds"),
            "tracker_seconds": time.perf_counter() - t_tracker if "tracker_noise" in studies else None,
        },
        "paper": {"numbers": PAPER, "epsilon": PAPER_EPSILON},
        **sections,
    }
    if set(studies) & set(CALO_STUDIES):
        doc["calorimeter_run"] = {k: v for k, v in info.items() if k != "seconds"}
        doc["performance"] = performance(scale, info, sections)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_finite(doc), indent=1, allow_nan=False))
    log(f"paper.py: wrote {args.out} in {doc['timings']['total_seconds']:.0f}s")
    return 0


def _finite(value: Any) -> Any:
    """JSON-ready copy: numpy scalars and arrays as Python values, NaN and ±Inf as null."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


if __name__ == "__main__":
    raise SystemExit(main())
