"""Scenarios that stress the input: ``malformed`` messages and ``overload`` beyond the consume capacity."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from pathlib import Path

import numpy as np

from driftcal.stream.reservoir import capacity_for
from driftcal.testing.faults.corpus import REASON, interleaved
from driftcal.testing.faults.harness import (
    DaemonProcess,
    ScenarioResult,
    committed_offset,
    produce,
    read_all,
    record_publications,
)
from driftcal.testing.faults.workload import SHAPE, aged_stream, blobs_of, daemon_config, topic_size

#: Headroom over the configured data budget for allocator slack, Kafka fetch buffers and update temporaries.
RSS_ALLOWANCE_BYTES = 64 << 20


def _committed(bootstrap: str, config: dict) -> int:
    k = config["kafka"]
    return asyncio.run(committed_offset(bootstrap, k["group_id"], k["input_topic"]))


def malformed(
    bootstrap: str, workdir: Path, *, bad: int = 1000, good_events: int = 3000, seed: int = 11
) -> ScenarioResult:
    """``bad`` malformed messages of 11 kinds (:mod:`.corpus`) among ``good_events`` good events.

    ``recovery_seconds``: from the last message sent to every offset committed. ``details``:
    ``events_sent``/``events_consumed``, ``misfiled`` (dead letters with a wrong reason, wrong bytes or a
    good message among them) and ``missing_letters``.
    """
    events = np.random.default_rng(seed).gamma(2.0, 1.0, (good_events, *SHAPE)).astype(np.float32)
    corpus = list(interleaved(events, bad, detector="faults", batch=50, seed=seed + 1))
    update = {"every_events": 1000, "steps": 5, "initial_steps": 20}
    config = daemon_config(bootstrap, "faults", detector={"noise": 0.05}, update=update)
    k = config["kafka"]
    result = ScenarioResult(sent=len(corpus))
    daemon = DaemonProcess(config, workdir, "malformed")
    try:
        daemon.start().until(lambda: "assigned partitions" in daemon.log_tail(100_000), 120, "an assignment")
        asyncio.run(produce(bootstrap, k["input_topic"], [blob for blob, _ in corpus]))
        t0 = time.monotonic()
        daemon.until(lambda: _committed(bootstrap, config) >= len(corpus), 180, "every offset committed", 1.0)
        result.recovery_seconds = math.ceil(time.monotonic() - t0)
        result.details["events_consumed"] = daemon.events_consumed()
        result.details["rejected_metric"] = int(daemon.metric("driftcal_messages_rejected_total"))
        daemon.terminate()
    finally:
        daemon.close()
    letters = asyncio.run(read_all(bootstrap, k["dlq_topic"], expected=bad, timeout_s=60))
    kinds = [kind for _, kind in corpus]
    misfiled = 0
    for record in letters:
        headers = dict(record.headers)
        topic, partition, offset = headers["driftcal-source"].decode().rsplit("/", 2)
        kind = kinds[int(offset)] if (topic, partition) == (k["input_topic"], "0") else None
        reason = headers["driftcal-error"].decode().split(":")[0]
        if kind is None or reason not in REASON[kind] or record.value != corpus[int(offset)][0]:
            misfiled += 1
    result.consumed = _committed(bootstrap, config)
    result.dead_lettered = len(letters)
    record_publications(result, bootstrap, k["output_topic"])
    result.crashes, result.max_rss_bytes = daemon.crashes, daemon.max_rss_bytes
    result.details |= {"events_sent": good_events, "bad_sent": bad, "misfiled": misfiled,
                       "missing_letters": max(0, bad - len(letters))}  # fmt: skip
    return result


def memory_budget_bytes(config: dict, message_bytes: int) -> int:
    """The data the daemon may hold: reservoir and window capacity, and two full ingest queues.

    A queued batch holds its message and, at worst, a dense copy of its events: ``2 × message_bytes``.
    """
    shape, ref, win = config["detector"]["shape"], config["reference"], config["window"]
    per_event = 4 * math.prod(shape)
    stores = capacity_for(shape, ref["max_events"], ref.get("max_bytes", 1 << 30))
    stores += capacity_for(shape, win["max_events"], win.get("max_bytes", 512 << 20))
    queues = 2 * config.get("queue_max_batches", 64) * 2 * message_bytes
    return stores * per_event + queues


def overload(
    bootstrap: str, workdir: Path, *, factor: float = 3.0, seconds: float = 12.0, seed: int = 51
) -> ScenarioResult:
    """Produce at ``factor`` × the measured consume capacity for ``seconds``, then let the daemon catch up.

    The capacity is measured first, as the rate at which the daemon works off a backlog. ``recovery_seconds``:
    from the end of the overload to every offset committed. ``details``: ``capacity_events_per_s``,
    ``offered_events_per_s``, ``lag_before``/``lag_max``/``lag_after`` (``driftcal_consumer_lag_messages``),
    ``baseline_rss_bytes`` (VmRSS before the overload: interpreter, torch, clients and models, the fixed
    overhead), ``startup_peak_rss_bytes`` (VmHWM then), ``load_peak_rss_bytes`` (the largest VmRSS from the
    start of the overload to the catch-up), ``memory_budget_bytes``, ``rss_limit_bytes`` (baseline + budget
    + :data:`RSS_ALLOWANCE_BYTES`), ``events_sent``/``events_consumed``.
    """
    config = daemon_config(
        bootstrap, "load",
        window={"max_events": 4000}, queue_max_batches=8,
        update={"every_events": 500, "every_seconds": 1.0, "steps": 60, "initial_steps": 100},
    )  # fmt: skip
    topic, batch = config["kafka"]["input_topic"], 100
    backlog = blobs_of(aged_stream(1000, 9000, seed), "load", batch)
    asyncio.run(produce(bootstrap, topic, backlog))
    daemon = DaemonProcess(config, workdir, "overload")
    lags: list[float] = []
    stop_sampling = threading.Event()

    def sample_lag() -> None:
        while not stop_sampling.wait(0.5):
            lags.append(daemon.metric("driftcal_consumer_lag_messages"))

    sampler = threading.Thread(target=sample_lag, daemon=True)
    result = ScenarioResult()
    try:
        daemon.start().until(lambda: daemon.events_consumed() >= 3000, 180, "3,000 events (updates running)")
        c0, t0 = daemon.events_consumed(), time.monotonic()
        daemon.until(lambda: time.monotonic() - t0 >= 4.0 or daemon.events_consumed() >= 9000, 60, "a rate")
        capacity = (daemon.events_consumed() - c0) / (time.monotonic() - t0)
        baseline_rss, startup_peak = daemon.mark_rss(), daemon.max_rss_bytes
        offered = factor * max(capacity, 1.0)
        n_msgs = max(1, math.ceil(offered * seconds / batch))
        flood = blobs_of(aged_stream(0, n_msgs * batch, seed + 1), "load", batch)
        sampler.start()
        lag_before = daemon.metric("driftcal_consumer_lag_messages")
        took = asyncio.run(produce(bootstrap, topic, flood, rate_per_s=offered / batch))
        t_end = time.monotonic()
        total = len(backlog) + len(flood)
        daemon.until(lambda: _committed(bootstrap, config) >= total, 600, "catching up", 1.0)
        result.recovery_seconds = math.ceil(time.monotonic() - t_end)
        time.sleep(1.0)
        lag_after = daemon.metric("driftcal_consumer_lag_messages")
        events = daemon.events_consumed()
        load_peak = daemon.window_rss_bytes  # before the stop: interpreter teardown has its own transient
        daemon.terminate()
    finally:
        stop_sampling.set()
        daemon.close()
    budget = memory_budget_bytes(config, max(len(b) for b in flood))
    result.sent, result.consumed = total, _committed(bootstrap, config)
    result.dead_lettered = topic_size(bootstrap, config["kafka"]["dlq_topic"])
    record_publications(result, bootstrap, config["kafka"]["output_topic"])
    result.crashes, result.max_rss_bytes = daemon.crashes, daemon.max_rss_bytes
    result.details |= {
        "capacity_events_per_s": round(capacity, 1), "offered_events_per_s": round(offered, 1),
        "achieved_factor": round(len(flood) * batch / took / max(capacity, 1.0), 2),
        "overload_seconds": round(took, 1),
        "lag_before": lag_before, "lag_max": max(lags, default=0.0), "lag_after": lag_after,
        "baseline_rss_bytes": baseline_rss, "startup_peak_rss_bytes": startup_peak,
        "load_peak_rss_bytes": load_peak, "memory_budget_bytes": budget,
        "rss_limit_bytes": baseline_rss + budget + RSS_ALLOWANCE_BYTES,
        "events_sent": total * batch, "events_consumed": events,
    }  # fmt: skip
    return result
