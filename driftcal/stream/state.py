"""What of a daemon goes into a checkpoint, and how it comes back.

Saved: the calibrator (θ, critic, both optimizers, averaged θ, step, RNG), the window (oldest to newest)
and its interval of validity, the publication state (last sequence number, last published
coefficients and status), the noise floor and distances, the update count, and, when the reference is
the first events of the stream, the reference reservoir (for ``topic`` and ``files`` the reference is
read again at start, so restoring it too would count it twice).

:func:`restore` builds the restored pieces first and swaps them in only when all of them loaded, so a
checkpoint that does not fit the configuration (another critic, another window size) leaves the daemon
exactly as cold as it was.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from driftcal.stream.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from driftcal.stream.publisher import PublishPolicy, WindowIOV
from driftcal.stream.reservoir import Reservoir, Window

if TYPE_CHECKING:
    from driftcal.stream.daemon import Daemon

log = logging.getLogger(__name__)


def owner(daemon: Daemon) -> dict[str, Any]:
    det = daemon.settings.detector
    return {"detector": det.name, "module": det.module, "model": det.model, "shape": list(det.shape)}


def snapshot(daemon: Daemon) -> dict[str, Any]:
    """The daemon's state as tensors and plain values (host copies of the stores)."""
    policy = daemon.policy
    state: dict[str, Any] = {
        "calibrator": daemon.calibrator.state_dict(),
        "window": daemon.window.state(),
        "iov": [dict(entry) for entry in daemon.iov.entries],
        "sequence": policy.sequence,
        "last_published": None if policy.last is None else torch.from_numpy(policy.last.copy()),
        "last_status": policy.last_status,
        "updates": daemon.updates,
        "floor": daemon.floor,
        "distance": daemon.distance,
        "distance_initial": daemon.distance_initial,
        "status": daemon.status,
    }
    if daemon.settings.reference.source == "first-events":
        state["reservoir"] = daemon.reservoir.state()
    return state


def restore(daemon: Daemon, state: dict[str, Any]) -> None:
    """Load ``state`` into ``daemon``; raises (and changes nothing) when it does not fit."""
    from driftcal.stream.components import make_calibrator

    s = daemon.settings
    calibrator = make_calibrator(s)
    calibrator.load_state_dict(state["calibrator"])
    shape, device = tuple(s.detector.shape), calibrator.device
    window = Window(shape, max_events=s.window.max_events, max_bytes=s.window.max_bytes, device=device)
    window.restore(state["window"])
    iov = WindowIOV(window.capacity)
    iov.entries.extend(dict(entry) for entry in state["iov"])
    publish = s.publish
    policy = PublishPolicy(
        min_change=publish.min_change, heartbeat_s=publish.heartbeat_seconds, sequence=int(state["sequence"])
    )
    if state["last_published"] is not None:
        policy.last = state["last_published"].double().numpy()
        policy.last_status = state["last_status"]
        policy.last_time = daemon.clock()
    reservoir = None
    if "reservoir" in state and s.reference.source == "first-events":
        reservoir = Reservoir(shape, max_events=s.reference.max_events, max_bytes=s.reference.max_bytes,
                              device=device, seed=s.update.seed)  # fmt: skip
        reservoir.restore(state["reservoir"])
    daemon.calibrator, daemon.window, daemon.iov, daemon.policy = calibrator, window, iov, policy
    if reservoir is not None:
        daemon.reservoir = reservoir
    daemon.updates = int(state["updates"])
    daemon.floor, daemon.distance = state["floor"], state["distance"]
    daemon.distance_initial, daemon.status = state["distance_initial"], state["status"]


def load_into(daemon: Daemon) -> bool:
    """Warm-start ``daemon`` from its checkpoint file; False (cold start) when there is none that fits."""
    path = daemon.settings.checkpoint.path
    if path is None:
        return False
    try:
        restore(daemon, load_checkpoint(path, owner=owner(daemon)))
    except CheckpointError as exc:
        if exc.reason == "missing":
            log.info("no checkpoint at %s: cold start", path)
        else:
            log.error("checkpoint refused, starting cold: %s", exc)
        return False
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        log.error("checkpoint %s does not fit this configuration, starting cold: %s", path, exc)
        return False
    low, high = float(np.min(daemon.coefficients())), float(np.max(daemon.coefficients()))
    log.info(
        "warm start from %s: %d updates, sequence %d, coefficients %.4g..%.4g, window %d events",
        path, daemon.updates, daemon.policy.sequence, low, high, daemon.window.size,
    )  # fmt: skip
    return True


async def save(daemon: Daemon) -> bool:
    """Write the daemon's checkpoint from its loop (no update in flight); False when writing failed.

    The snapshot is taken on the loop; the file is written in a worker thread, during which the loop
    awaits, so nothing changes the saved tensors.
    """
    path = daemon.settings.checkpoint.path
    if path is None:
        return False
    try:
        await asyncio.to_thread(save_checkpoint, path, snapshot(daemon), owner=owner(daemon))
    except OSError as exc:
        log.error("checkpoint to %s failed: %s", path, exc)
        return False
    return True
