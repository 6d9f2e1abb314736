"""``driftcal simulate calorimeter|tracker``: write a reference/changed/truth dataset to a folder.

Writes ``DIR/reference.npy``, ``DIR/changed.npy``, ``DIR/truth.npy`` and ``DIR/meta.json`` and
prints one summary line. Options left out keep the simulator's defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from driftcal.cli.options import float_list, non_negative_float, positive_int

FILES = ("reference", "changed", "truth")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``simulate`` with one sub-command per detector."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a reference and a changed (aged/misaligned) dataset",
        description="Simulate a reference dataset, a changed one, and the true coefficients.",
    )
    detectors = parser.add_subparsers(dest="detector", metavar="DETECTOR", required=True)

    calo = detectors.add_parser("calorimeter", help="sampling calorimeter with aged cell gains")
    _common(calo)
    calo.add_argument("--epsilon", type=non_negative_float, help="spread of the aging gains")
    calo.add_argument("--threshold", type=non_negative_float, help="zero-suppression threshold")
    calo.add_argument("--layers", type=positive_int, help="number of layers L")
    calo.add_argument("--height", type=positive_int, help="cells per layer, vertically (H)")
    calo.add_argument("--width", type=positive_int, help="cells per layer, horizontally (W)")
    calo.add_argument("--plates-per-layer", type=positive_int, help="absorber plates per layer")
    calo.add_argument("--particle", choices=("pi-", "e-"), help="beam particle")

    trk = detectors.add_parser("tracker", help="N-plane tracker with shifted planes")
    _common(trk)
    planes = trk.add_mutually_exclusive_group()
    planes.add_argument("--planes", type=positive_int, help="P planes equally spaced in z over [0, 1]")
    planes.add_argument("--z", type=float_list, metavar="Z1,Z2,...", help="plane positions in z")
    trk.add_argument(
        "--shift",
        type=float_list,
        metavar="S1,S2,...",
        help="true shift of each plane (one per plane; the first and last define the frame)",
    )
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=positive_int, required=True, metavar="N", help="events per dataset")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--noise", type=non_negative_float, metavar="SIGMA", help="electronic noise σ")
    parser.add_argument("--n-changed", type=positive_int, metavar="N", help="events in the changed dataset")


def run(args: argparse.Namespace) -> int:
    """Simulate, write the four files, print one line."""
    dataset = _simulate(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    shapes = {}
    for name in FILES:
        array = np.asarray(getattr(dataset, name))
        np.save(out / f"{name}.npy", array, allow_pickle=False)
        shapes[name] = tuple(array.shape)
    (out / "meta.json").write_text(json.dumps(dataset.meta, indent=2, default=_jsonable) + "\n")
    described = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
    print(
        f"simulated {args.detector}: wrote {out}/{{reference,changed,truth}}.npy and meta.json ({described})"
    )
    return 0


def _simulate(args: argparse.Namespace) -> Any:
    common = {"seed": args.seed, **_given(args, noise="noise", n_changed="n_changed")}
    if args.detector == "calorimeter":
        from driftcal.sim import Beam, CalorimeterGeometry, make_calorimeter_dataset

        geometry = _given(
            args, layers="layers", height="height", width="width", plates_per_layer="plates_per_layer"
        )
        if geometry:
            common["geometry"] = CalorimeterGeometry(**geometry)
        if args.particle is not None:
            common["beam"] = Beam(particle=args.particle)
        return make_calorimeter_dataset(
            args.events, **common, **_given(args, epsilon="epsilon", threshold="threshold")
        )

    z = args.z
    if args.planes is not None:
        z = tuple(float(v) for v in np.linspace(0.0, 1.0, args.planes))
    if z is not None:
        _check_planes(z)

    from driftcal.sim import TrackerGeometry, make_tracker_dataset

    if z is not None:
        common["geometry"] = TrackerGeometry(z=z)
    if args.shift is not None:
        n_planes = len(z) if z is not None else len(TrackerGeometry().z)
        if len(args.shift) != n_planes:
            raise ValueError(f"--shift gives {len(args.shift)} values but the tracker has {n_planes} planes")
        common["shifts"] = np.asarray(args.shift, dtype=np.float64)
    return make_tracker_dataset(args.events, **common)


def _check_planes(z: tuple[float, ...]) -> None:
    if len(z) < 3:
        raise ValueError(f"a tracker needs at least 3 planes, got {len(z)}")
    if any(b <= a for a, b in itertools.pairwise(z)):
        raise ValueError(f"plane positions must increase strictly, got --z {','.join(f'{v:g}' for v in z)}")


def _given(args: argparse.Namespace, **names: str) -> dict[str, Any]:
    """Keyword arguments for the options the user gave (the others keep the simulator's defaults)."""
    return {key: getattr(args, attr) for key, attr in names.items() if getattr(args, attr) is not None}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)
