"""The embedded demo: the real daemon on an in-process simulated stream, no broker.

A simulated DAQ (:class:`~driftcal.sim.drifting.DriftingCalorimeter`) first sends reference events of
the nominal detector, then a stream whose gains keep falling with the events seen (time-dependent
aging, already aged by ``start`` events when streaming begins), with a malformed message every
``bad_every`` batches to show the dead-letter path, and optionally a sudden step of the whole module's
gains (from ``step_at`` streamed events on, times ``step_factor``) to show the drift alarm. Everything
goes through the wire codec and the in-memory broker, so the daemon runs exactly as in production.
Since the simulation knows the truth, the demo scores the daemon's coefficients against it (RMSE over
cells with signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftcal.calib.metrics import active_cells, rmse
from driftcal.config import Settings
from driftcal.obs.health import Health
from driftcal.obs.metrics import Metrics
from driftcal.sim.aging import ModuleDrop
from driftcal.sim.drifting import DriftingCalorimeter
from driftcal.sim.geometry import CalorimeterGeometry
from driftcal.sim.readout import Readout
from driftcal.stream.codec import EventBatch, encode
from driftcal.stream.daemon import Daemon
from driftcal.stream.memory import MemoryBroker, MemorySink, MemorySource
from driftcal.stream.transport import Outgoing

log = logging.getLogger(__name__)

#: The demo's settings; ``configs/demo.yaml`` holds the same values (a test keeps them equal).
DEMO_SETTINGS: dict[str, Any] = {
    "detector": {
        "name": "demo-calo", "module": "0", "model": "cell-gain", "shape": [4, 8, 8],
        "noise": 0.05, "threshold": 0.15,
    },
    "reference": {"source": "first-events", "first_events": 8000, "max_events": 8000},
    "window": {"max_events": 8000, "min_events": 2000},
    "update": {
        "every_events": 1000, "every_seconds": 5.0, "steps": 30, "initial_steps": 400,
        "critic": "mlp", "lr_theta": 0.005, "tracking_lr": 0.001, "device": "auto",
    },
    "publish": {"heartbeat_seconds": 10.0},
    "alarm": {"floor_steps": 100},
    "metrics": {"enabled": True, "port": 9108},
}  # fmt: skip


@dataclass
class DemoStream:
    """How the simulated detector ages (see :class:`~driftcal.sim.drifting.DriftingCalorimeter`)."""

    rate: float = 5e-6  # relative loss per hit
    start: int = 100_000  # events of aging before the demo starts
    epsilon: float = 0.3  # cell-to-cell spread of the aging speed
    events_per_second: float = 250.0
    batch_size: int = 250
    bad_every: int = 25  # a malformed message every this many batches (0: none)
    seed: int = 0
    step_at: int | None = None  # streamed events (after the reference) at which the gains step
    step_factor: float = 0.5  # factor on every cell's gain from step_at on (< 1 a drop, > 1 a jump)

    def drops(self) -> tuple[ModuleDrop, ...]:
        """The sudden gain step of the whole module, if any, at its absolute stream position.

        >>> DemoStream(start=10, step_at=5, step_factor=0.4).drops()[0].at_event
        15
        >>> DemoStream().drops()
        ()
        """
        if self.step_at is None:
            return ()
        if self.step_at < 0 or self.step_factor <= 0:
            raise ValueError(f"need step_at >= 0 and step_factor > 0, got {self.step_at}, {self.step_factor}")
        at = self.start + self.step_at
        return (ModuleDrop(at_event=at, cells=(slice(None),), factor=self.step_factor),)


@dataclass
class DemoReport:
    """What the demo measured; :meth:`summary` is the ``--json`` line."""

    events: int = 0
    updates: int = 0
    published: int = 0
    rejected: int = 0
    rmse_initial: float | None = None
    rmse_final: float | None = None
    rmse_uncorrected_final: float | None = None
    distance_initial: float | None = None
    distance_final: float | None = None
    noise_floor: float | None = None
    device: str = ""
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        keys = (
            "events", "updates", "published", "rejected", "rmse_initial", "rmse_final",
            "rmse_uncorrected_final", "distance_initial", "distance_final", "noise_floor", "device",
            "seconds",
        )  # fmt: skip
        return {k: getattr(self, k) for k in keys}


def _geometry(shape: list[int]) -> CalorimeterGeometry:
    layers, height, width = shape
    return CalorimeterGeometry(layers=layers, height=height, width=width, plates_per_layer=3)


async def _produce(
    sim: DriftingCalorimeter, sink: MemorySink, topic: str, detector: str, stream: DemoStream,
    n_reference: int, stop: asyncio.Event,
) -> None:  # fmt: skip
    """Reference events first (as fast as they simulate), then the aging stream at the configured rate."""
    sent, batches, t0 = 0, 0, time.monotonic()
    while not stop.is_set():
        in_reference = sent < n_reference
        n = min(stream.batch_size, n_reference - sent) if in_reference else stream.batch_size
        events = await asyncio.to_thread(sim.reference if in_reference else sim.stream, n)
        now = time.time()
        batch = EventBatch(detector=detector, module="0", first_event=sent, run=1, first_time=now,
                           last_time=now, energy=events)  # fmt: skip
        await sink.send(Outgoing(topic, encode(batch), key=f"{detector}/0".encode()))
        sent += n
        batches += 1
        if stream.bad_every and batches % stream.bad_every == 0:
            await sink.send(Outgoing(topic, encode(batch)[: 40 + batches % 50], key=b"demo/bad"))
        if not in_reference:
            ahead = (sent - n_reference) / stream.events_per_second - (time.monotonic() - t0)
            if ahead > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ahead)
        else:
            t0 = time.monotonic()


async def run_demo(
    settings: Settings,
    *,
    duration_s: float,
    stream: DemoStream | None = None,
    metrics: Metrics | None = None,
    health: Health | None = None,
    on_status: Callable[[DemoReport], None] | None = None,
) -> DemoReport:
    """Run the daemon on the simulated stream for ``duration_s`` seconds and score it against truth."""
    stream = stream or DemoStream()
    det = settings.detector
    if det.model != "cell-gain" or len(det.shape) != 3:
        raise ValueError("the demo simulates a calorimeter: detector.model cell-gain with shape [L, H, W]")
    readout = Readout(noise=det.noise or 0.0, threshold=det.threshold)
    sim = await asyncio.to_thread(
        DriftingCalorimeter, _geometry(det.shape), readout=readout, rate=stream.rate, start=stream.start,
        epsilon=stream.epsilon, seed=stream.seed, drops=stream.drops(),
    )  # fmt: skip
    mask = active_cells(await asyncio.to_thread(sim.reference, 4000))
    report = DemoReport()
    report.rmse_initial = rmse(np.ones(sim.shape), sim.truth(), mask)

    def score(daemon: Daemon) -> None:
        truth = sim.truth()
        report.updates = daemon.updates
        report.rmse_final = rmse(daemon.coefficients(), truth, mask)
        report.rmse_uncorrected_final = rmse(np.ones(sim.shape), truth, mask)
        report.distance_final = daemon.distance
        report.distance_initial = daemon.distance_initial
        report.noise_floor = daemon.floor
        report.history.append({"events": float(sim.position - stream.start), "rmse": report.rmse_final})
        daemon.metrics.set_rmse(det.name, det.module, report.rmse_final)

    broker = MemoryBroker()
    k = settings.kafka
    daemon = Daemon(
        settings, events=MemorySource(broker, [k.input_topic], group_id=k.group_id), sink=MemorySink(broker),
        metrics=metrics, health=health, on_update=score,
    )  # fmt: skip
    report.device = str(daemon.calibrator.device)
    stop = asyncio.Event()
    producer = asyncio.create_task(
        _produce(
            sim, MemorySink(broker), k.input_topic, det.name, stream, settings.reference.first_events, stop
        )
    )
    runner = asyncio.create_task(daemon.run())
    start = time.monotonic()
    try:
        while time.monotonic() - start < duration_s and not runner.done():
            await asyncio.sleep(0.5)
            report.events = daemon.reservoir.seen + daemon.window.total
            report.published = daemon.policy.sequence
            report.rejected = daemon.rejected
            report.seconds = time.monotonic() - start
            if on_status is not None:
                on_status(report)
    finally:
        stop.set()
        daemon.request_stop()
        await asyncio.gather(producer, return_exceptions=True)
        await runner
    report.published = daemon.policy.sequence
    report.seconds = time.monotonic() - start
    return report
