"""Load and validate the arrays given to ``driftcal fit``.

Every check raises :class:`~driftcal.errors.InputError` with one line that names the file (or the
label the caller gives) and the problem. Files are read with ``np.load(..., allow_pickle=False)``:
driftcal never unpickles anything.

Shapes (see the CLI contract):

- ``cell-gain``: ``(N, *cells)`` with at least 2 dimensions, e.g. a calorimeter ``(N, L, H, W)``;
  readings must not lie below the noise floor (``-5 σ`` with ``--noise σ``, else 0).
- ``plane-shift``: ``(N, P)`` hit coordinates with ``P ≥ 3`` planes.

>>> ref = np.ones((10, 2, 3), dtype=np.float32)
>>> validate_pair(ref, 0.9 * ref, model="cell-gain")
>>> validate_pair(ref, ref[:, :1], model="cell-gain", labels=("ref.npy", "chg.npy"))
Traceback (most recent call last):
...
driftcal.errors.InputError: chg.npy has cells of shape (1, 3) but ref.npy has (2, 3); they must match
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from driftcal.errors import InputError

MODELS = ("cell-gain", "plane-shift")
NOISE_FLOOR_SIGMAS = 5.0
MIN_PLANES = 3

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_DTYPE_NAMES = {
    "b": "booleans",
    "c": "complex numbers",
    "O": "Python objects",
    "U": "strings",
    "S": "byte strings",
    "V": "structured records",
    "M": "datetimes",
    "m": "timedeltas",
}


def load_array(path: str | os.PathLike[str], *, name: str) -> np.ndarray:
    """Read one ``.npy`` array as float32, refusing anything that is not a plain numeric array.

    ``name`` says what the file is for (``"reference"``, ``"changed"``, ``"truth"``); messages read
    ``<name> file '<path>' ...``. Integers and float64 are converted to float32.
    """
    label = f"{name} file '{path}'"
    return as_float32(_read_npy(path, label), label=label)


def load_groups(path: str | os.PathLike[str], *, cell_shape: tuple[int, ...]) -> np.ndarray:
    """Read a group map (``driftcal fit --groups``) as int64 labels, without passing through float32
    (which would merge channel ids above 2²⁴), and check it with :func:`validate_groups`."""
    label = f"groups file '{path}'"
    return validate_groups(_read_npy(path, label), cell_shape=cell_shape, label=label)


def _read_npy(path: str | os.PathLike[str], label: str) -> np.ndarray:
    """One plain ``.npy`` array as stored (``allow_pickle=False``), or an InputError naming ``label``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{label} does not exist")
    if p.is_dir():
        raise InputError(f"{label} is a directory, not a .npy file")
    try:
        with p.open("rb") as fh:
            magic = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise InputError(f"{label} cannot be read: {exc.strerror or exc}") from None
    if magic.startswith(_ZIP_MAGIC):
        raise InputError(f"{label} is an .npz archive, not a single array; save each array with np.save")
    if magic != _NPY_MAGIC:
        raise InputError(f"{label} is not a NumPy .npy array (no .npy header); save it with np.save")
    try:
        array = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise InputError(
                f"{label} holds an object array (pickled data), which driftcal never loads"
            ) from None
        raise InputError(f"{label} is not a readable .npy array: {_one_line(exc)}") from None
    except (EOFError, OSError, SyntaxError, TypeError) as exc:
        raise InputError(f"{label} is not a readable .npy array: {_one_line(exc)}") from None
    if not isinstance(array, np.ndarray):  # pragma: no cover - np.load of a .npy always gives an array
        raise InputError(f"{label} does not hold a single array")
    return array


def as_float32(array: np.ndarray, *, label: str) -> np.ndarray:
    """Convert a numeric array to float32; reject booleans, complex numbers, objects and strings."""
    _check_dtype(array, label)
    return np.ascontiguousarray(array, dtype=np.float32)


def validate_array(
    array: np.ndarray, *, model: str, noise: float | None = None, label: str = "array"
) -> None:
    """Check one dataset on its own: dtype, emptiness, rank for ``model``, NaN/Inf, noise floor."""
    _check_model(model)
    _check_dtype(array, label)
    shape = tuple(array.shape)
    if array.size == 0:
        if array.ndim == 0 or shape[0] == 0:
            raise InputError(f"{label} is empty: 0 events (shape {shape})")
        raise InputError(f"{label} is empty: 0 cells per event (shape {shape})")
    if model == "cell-gain" and array.ndim < 2:
        raise InputError(
            f"{label} has shape {shape}, but cell-gain needs (N, *cells) with at least 2 dimensions, "
            "e.g. a calorimeter (N, L, H, W)"
        )
    if model == "plane-shift" and (array.ndim != 2 or shape[1] < MIN_PLANES):
        raise InputError(
            f"{label} has shape {shape}, but plane-shift needs (N, P) hit coordinates "
            f"with P ≥ {MIN_PLANES} planes"
        )
    _check_finite(array, label)
    if model == "cell-gain":
        _check_noise_floor(array, noise, label)


def validate_pair(
    reference: np.ndarray,
    changed: np.ndarray,
    *,
    model: str,
    noise: float | None = None,
    labels: tuple[str, str] = ("reference", "changed"),
) -> None:
    """Check a reference/changed pair for ``model``; the event counts may differ, the cells may not."""
    validate_array(reference, model=model, noise=noise, label=labels[0])
    validate_array(changed, model=model, noise=noise, label=labels[1])
    ref_cells, chg_cells = tuple(reference.shape[1:]), tuple(changed.shape[1:])
    if ref_cells != chg_cells:
        what = "planes" if model == "plane-shift" else "cells of shape"
        raise InputError(
            f"{labels[1]} has {what} {_dims(chg_cells, model)} but {labels[0]} has "
            f"{_dims(ref_cells, model)}; they must match"
        )


def validate_truth(
    truth: np.ndarray, *, model: str, cell_shape: tuple[int, ...], label: str = "truth"
) -> None:
    """Check true coefficients: one per cell (``cell_shape``) or per plane (``(P,)``), all finite."""
    _check_model(model)
    _check_dtype(truth, label)
    expected = tuple(cell_shape)
    if truth.size == 0:
        raise InputError(f"{label} is empty (shape {tuple(truth.shape)})")
    if tuple(truth.shape) != expected:
        what = "one shift per plane" if model == "plane-shift" else "one gain per cell"
        raise InputError(f"{label} has shape {tuple(truth.shape)}, expected {expected} ({what} of the data)")
    _check_finite(truth, label)


def validate_groups(groups: np.ndarray, *, cell_shape: tuple[int, ...], label: str = "groups") -> np.ndarray:
    """Check a group map (one whole-number label per cell; negative: no group); returns it as int64."""
    _check_dtype(groups, label)
    expected = tuple(cell_shape)
    if tuple(groups.shape) != expected:
        raise InputError(f"{label} has shape {tuple(groups.shape)}, expected {expected} (one label per cell)")
    _check_finite(groups, label)
    if (groups != np.round(groups)).any():
        raise InputError(f"{label} must hold whole numbers (a group label per cell; negative: no group)")
    return groups.astype(np.int64)


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise InputError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")


def _check_dtype(array: np.ndarray, label: str) -> None:
    kind = array.dtype.kind
    if kind not in "fiu":
        what = _DTYPE_NAMES.get(kind, f"dtype {array.dtype}")
        raise InputError(f"{label} holds {what} (dtype {array.dtype}); expected float or integer values")


def _check_finite(array: np.ndarray, label: str) -> None:
    bad = ~np.isfinite(array)
    n_bad = int(bad.sum())
    if n_bad:
        n_nan = int(np.isnan(array).sum())
        first = np.unravel_index(int(np.flatnonzero(bad)[0]), array.shape)
        raise InputError(
            f"{label} contains {n_bad} non-finite values ({n_nan} NaN, {n_bad - n_nan} Inf), "
            f"the first at index {tuple(int(i) for i in first)}"
        )


def _check_noise_floor(array: np.ndarray, noise: float | None, label: str) -> None:
    minimum = float(array.min())
    if noise:
        floor = -NOISE_FLOOR_SIGMAS * float(noise)
        if minimum < floor:
            raise InputError(
                f"{label} has energies below the noise floor: minimum {minimum:.6g} < {floor:.6g} "
                f"(-{NOISE_FLOOR_SIGMAS:g} × --noise {noise:g})"
            )
    elif minimum < 0:
        raise InputError(
            f"{label} has energies below the noise floor: minimum {minimum:.6g} < 0 "
            "(give --noise SIGMA for pedestal-subtracted readout without zero suppression)"
        )


def _dims(cells: tuple[int, ...], model: str) -> str:
    if model == "plane-shift" and len(cells) == 1:
        return str(cells[0])
    return str(cells)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
