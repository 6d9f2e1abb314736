"""Scenarios that take a process away: the daemon (``kill9``, ``sigterm``) or the broker."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from driftcal.stream.checkpoint import load_checkpoint
from driftcal.testing.faults.harness import (
    DaemonProcess,
    ScenarioResult,
    committed_offset,
    produce,
    record_publications,
)
from driftcal.testing.faults.workload import (
    SHAPE,
    TRUTH,
    aged_stream,
    blobs_of,
    daemon_config,
    rms_to_truth,
    topic_size,
)
from driftcal.testing.kafka_broker import LocalKafka


def _wait_committed(daemon: DaemonProcess, bootstrap: str, config: dict, n: int, timeout_s: float) -> None:
    k = config["kafka"]
    daemon.until(
        lambda: asyncio.run(committed_offset(bootstrap, k["group_id"], k["input_topic"])) >= n,
        timeout_s, f"offset {n} committed", every_s=1.0,
    )  # fmt: skip


def _finish(result: ScenarioResult, bootstrap: str, config: dict, daemons: list[DaemonProcess]) -> None:
    k = config["kafka"]
    result.consumed = asyncio.run(committed_offset(bootstrap, k["group_id"], k["input_topic"]))
    result.dead_lettered = topic_size(bootstrap, k["dlq_topic"])
    docs = record_publications(result, bootstrap, k["output_topic"])
    result.crashes = sum(d.crashes for d in daemons)
    result.max_rss_bytes = max(d.max_rss_bytes for d in daemons)
    result.details["errors_to_truth"] = [round(rms_to_truth(d.array()), 4) for d in docs]


def kill9(bootstrap: str, workdir: Path, *, changed_events: int = 6000, seed: int = 21) -> ScenarioResult:
    """SIGKILL mid-stream with transactions and checkpoints on, then a restart on the rest of the stream.

    ``recovery_seconds``: from the restart to the restarted daemon's first publication. ``details``:
    ``warm_start`` (the restart loaded the checkpoint), ``errors_to_truth`` per document and ``ones_error``
    (the RMSE of coefficients of 1.0, where a reset would fall back to).
    """
    blobs = blobs_of(aged_stream(2000, changed_events, seed), "kill")
    config = daemon_config(
        bootstrap, "kill",
        kafka={"transactions": True, "transactional_id": f"tx-{workdir.name}-{seed}",
               "group_instance_id": f"kill-{workdir.name}-{seed}"},
        reference={"first_events": 2000, "max_events": 2000},
        window={"min_events": 500},
        update={"every_seconds": 1.0, "initial_steps": 150, "lr_theta": 0.005},
        publish={"heartbeat_seconds": 1.0},
        alarm={"floor_steps": 10},
        checkpoint={"path": str(workdir / "state.pt"), "every_seconds": 1.0},
    )  # fmt: skip
    topic, half = config["kafka"]["input_topic"], len(blobs) * 5 // 8
    result = ScenarioResult(sent=len(blobs))
    asyncio.run(produce(bootstrap, topic, blobs[:half]))
    first, second = DaemonProcess(config, workdir, "first"), DaemonProcess(config, workdir, "second")
    try:
        first.start().until(lambda: first.published() >= 4, 180, "4 documents")
        first.kill9()  # mid-stream: no chance to publish, commit or checkpoint
        result.details["checkpoint_written"] = (workdir / "state.pt").is_file()
        asyncio.run(produce(bootstrap, topic, blobs[half:]))
        second.start()
        recovery = second.until(lambda: second.published() >= 1, 180, "a document after the restart")
        result.recovery_seconds = math.ceil(recovery)
        _wait_committed(second, bootstrap, config, len(blobs), 180)
        second.until(lambda: second.published() >= 4, 120, "4 documents")
        second.terminate()
    finally:
        first.close()
        second.close()
    _finish(result, bootstrap, config, [first, second])
    result.details["warm_start"] = "warm start from" in second.log_path.read_text()
    result.details["ones_error"] = round(rms_to_truth(1.0 + 0 * TRUTH), 4)
    return result


def sigterm(bootstrap: str, workdir: Path, *, timeout_s: float = 10.0, seed: int = 31) -> ScenarioResult:
    """SIGTERM while a million-step first update runs: a clean exit with publish, commit and checkpoint.

    ``recovery_seconds``: from SIGTERM to the exit. ``details``: ``exit_code``, ``exit_seconds``,
    ``update_finished`` (the update in flight ended and was published, no second began),
    ``checkpoint_sequence`` and ``timeout_seconds``.
    """
    blobs = blobs_of(aged_stream(1000, 1000, seed), "term")
    config = daemon_config(
        bootstrap, "term",
        window={"max_events": 1000},
        update={"initial_steps": 1_000_000},  # an update that never ends on its own
        checkpoint={"path": str(workdir / "state.pt")},
        shutdown_timeout_seconds=timeout_s,
    )  # fmt: skip
    asyncio.run(produce(bootstrap, config["kafka"]["input_topic"], blobs))
    result = ScenarioResult(sent=len(blobs))
    daemon = DaemonProcess(config, workdir, "term")
    try:
        daemon.start().until(lambda: "assigned partitions" in daemon.log_tail(100_000), 120, "an assignment")
        daemon.until(lambda: daemon.events_consumed() >= 2000, 60, "every event")
        time.sleep(2.0)  # the million-step first update is under way
        code, seconds = daemon.terminate(timeout_s + 20)
    finally:
        daemon.close()
    result.recovery_seconds = math.ceil(seconds)
    _finish(result, bootstrap, config, [daemon])
    log = daemon.log_path.read_text()
    owner = {"detector": "term", "module": "0", "model": "cell-gain", "shape": list(SHAPE)}
    state = load_checkpoint(workdir / "state.pt", owner=owner)
    result.details |= {
        "exit_code": code, "exit_seconds": round(seconds, 2), "timeout_seconds": timeout_s,
        "update_finished": "update 1:" in log and "published sequence 1" in log and "update 2:" not in log,
        "checkpoint_sequence": int(state["sequence"]),
    }  # fmt: skip
    return result


def broker_outage(workdir: Path, *, outage_s: float = 35.0, seed: int = 41) -> ScenarioResult:
    """Stop the (own, local) broker for ``outage_s`` mid-stream, then start it again.

    ``recovery_seconds``: from the broker's restart to ``/readyz`` answering 200 again. ``details``:
    ``not_ready_after_seconds`` (outage start to ``/readyz`` 503), ``alive_during_outage`` (``/healthz``
    200 while the broker was away) and ``events_sent``/``events_consumed``. The daemon must publish again
    after the outage before it is stopped.
    """
    stream = aged_stream(1000, 3000, seed)
    blobs = blobs_of(stream, "outage")
    result = ScenarioResult(sent=len(blobs))
    with LocalKafka() as broker:  # a broker of its own: this scenario stops it
        bootstrap = broker.bootstrap
        config = daemon_config(
            bootstrap, "outage",
            kafka={"request_timeout_ms": 5000, "transactions": True, "transactional_id": f"tx-out-{seed}"},
        )  # fmt: skip
        topic = config["kafka"]["input_topic"]
        asyncio.run(produce(bootstrap, topic, blobs[: len(blobs) // 2]))
        daemon = DaemonProcess(config, workdir, "outage")
        try:
            daemon.start().until(
                lambda: daemon.ready() and daemon.events_consumed() >= len(stream) // 2,
                120, "ready with the first half consumed",
            )  # fmt: skip
            before = daemon.published()
            broker.stop()
            t0 = time.monotonic()
            waited = daemon.until(lambda: daemon.get("readyz")[0] == 503, outage_s + 30, "not ready")
            result.details["not_ready_after_seconds"] = round(waited, 1)
            result.details["alive_during_outage"] = daemon.get("healthz")[0] == 200
            time.sleep(max(0.0, outage_s - (time.monotonic() - t0)))
            broker.start()
            result.recovery_seconds = math.ceil(daemon.until(daemon.ready, 90, "ready again"))
            asyncio.run(produce(bootstrap, topic, blobs[len(blobs) // 2 :]))
            daemon.until(lambda: daemon.events_consumed() >= len(stream), 120, "every event consumed")
            result.details["events_consumed"] = daemon.events_consumed()
            _wait_committed(daemon, bootstrap, config, len(blobs), 60)
            daemon.until(lambda: daemon.published() > before, 60, "a document after the outage")
            daemon.terminate()
        finally:
            daemon.close()
        result.details["events_sent"] = len(stream)
        _finish(result, bootstrap, config, [daemon])
    return result
