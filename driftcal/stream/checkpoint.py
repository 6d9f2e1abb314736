"""Atomic, versioned checkpoints of the daemon's state, loaded without pickle.

A checkpoint is one ``torch.save`` file holding only tensors, numbers, strings, lists and dicts, so
:func:`load_checkpoint` reads it with ``torch.load(..., weights_only=True)``. Writing goes to a temporary
file in the same folder, which is flushed, fsynced and renamed over the old one (then the folder is
fsynced): a crash leaves either the old or the new checkpoint, never half of one.

Every checkpoint records :data:`FORMAT` and what it belongs to (detector, module, model, cell shape). A
file that cannot be read, has another format, or belongs to another detector raises
:class:`CheckpointError`; the daemon logs it and starts cold instead of crashing.

>>> import tempfile, torch
>>> path = Path(tempfile.mkdtemp()) / "state.pt"
>>> owner = {"detector": "calo", "module": "0", "model": "cell-gain", "shape": [2, 2]}
>>> save_checkpoint(path, {"theta": torch.ones(2, 2), "sequence": 7}, owner=owner)
>>> load_checkpoint(path, owner=owner)["sequence"]
7
>>> load_checkpoint(path, owner={**owner, "shape": [3, 3]})
Traceback (most recent call last):
...
driftcal.stream.checkpoint.CheckpointError: incompatible: checkpoint ... belongs to shape [2, 2], not [3, 3]
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from driftcal.errors import DriftcalError

FORMAT = "driftcal.checkpoint/1"
OWNER_KEYS = ("detector", "module", "model", "shape")


class CheckpointError(DriftcalError):
    """A checkpoint that cannot be used; ``reason`` is ``missing``, ``corrupt`` or ``incompatible``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def save_checkpoint(path: str | Path, state: dict[str, Any], *, owner: dict[str, Any]) -> None:
    """Write ``state`` atomically (temp file, fsync, rename, fsync of the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "owner": {k: owner[k] for k in OWNER_KEYS}, "state": state}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def load_checkpoint(path: str | Path, *, owner: dict[str, Any]) -> dict[str, Any]:
    """The saved state; raises :class:`CheckpointError` when it is missing, corrupt or not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("missing", f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError("corrupt", f"checkpoint {path} cannot be read ({first[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError("incompatible", f"checkpoint {path} has format {found!r}, expected {FORMAT!r}")
    saved = payload.get("owner") or {}
    for key in OWNER_KEYS:
        if saved.get(key) != owner[key]:
            raise CheckpointError(
                "incompatible", f"checkpoint {path} belongs to {key} {saved.get(key)!r}, not {owner[key]!r}"
            )
    state = payload.get("state")
    if not isinstance(state, dict):
        raise CheckpointError("corrupt", f"checkpoint {path} holds no state")
    return state
