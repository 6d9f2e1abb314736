"""End to end against a real Kafka broker: ``driftcal replay`` → ``driftcal run`` (a subprocess) → topics.

The reference set goes to the reference topic and a time-dependently aged stream to the input topic
(paced, so the daemon tracks while the detector ages), with malformed messages in between. The test
reads the coefficient topic, scrapes ``/metrics`` over HTTP, checks the dead-letter topic, then stops the
daemon with SIGTERM and expects a clean exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from driftcal.calib.metrics import active_cells, rmse
from driftcal.coefficients import CoefficientDocument
from driftcal.sim.drifting import DriftingCalorimeter
from driftcal.sim.geometry import CalorimeterGeometry
from driftcal.sim.readout import Readout
from driftcal.testing.kafka_broker import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

N_REFERENCE = 6000
N_STREAM = 9000
ROOT = Path(__file__).resolve().parents[2]


def _driftcal(*args: str) -> list[str]:
    return [sys.executable, "-m", "driftcal", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTCAL_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _config(path: Path, bootstrap: str, topics: dict[str, str], port: int, transactions: bool) -> Path:
    config = {
        "detector": {"name": "e2e", "module": "0", "model": "cell-gain", "shape": [4, 8, 8],
                     "noise": 0.05, "threshold": 0.15},
        "kafka": {"bootstrap": bootstrap, "group_id": f"g-{uuid.uuid4().hex[:6]}", **topics,
                  "transactions": transactions, "transactional_id": f"tx-{uuid.uuid4().hex[:6]}"},
        "reference": {"source": "topic", "first_events": N_REFERENCE, "max_events": N_REFERENCE},
        "window": {"max_events": 5000, "min_events": 2000},
        "update": {"every_events": 1000, "every_seconds": 3, "steps": 30, "initial_steps": 400,
                   "critic": "mlp", "lr_theta": 0.005, "device": "cpu"},
        "publish": {"heartbeat_seconds": 5},
        "alarm": {"floor_steps": 50},
        "metrics": {"host": "127.0.0.1", "port": port},
        "shutdown_timeout_seconds": 30,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


async def _read(bootstrap: str, topic: str, *, until: float) -> list:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    records: list = []
    try:
        while time.monotonic() < until:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and records:
                break
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def _send_bad(bootstrap: str, topic: str, blobs: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for blob in blobs:
            await producer.send_and_wait(topic, blob)
    finally:
        await producer.stop()


def _counter(text: str, name: str) -> float:
    """Sum of a counter's series in a Prometheus exposition."""
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{"))


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


@pytest.mark.parametrize("transactions", [False, True], ids=["at-least-once", "transactions"])
def test_replay_run_publish_scrape_dlq(kafka_bootstrap: str, tmp_path: Path, transactions: bool) -> None:
    sim = DriftingCalorimeter(
        CalorimeterGeometry(layers=4, height=8, width=8, plates_per_layer=3),
        readout=Readout(noise=0.05, threshold=0.15), rate=5e-6, start=100_000, seed=3,
    )  # fmt: skip
    reference = sim.reference(N_REFERENCE)
    stream = sim.stream(N_STREAM)
    truth_end = sim.truth()  # gains after the last streamed event
    mask = active_cells(reference)
    np.save(tmp_path / "reference.npy", reference)
    np.save(tmp_path / "stream.npy", stream)

    tag = uuid.uuid4().hex[:6]
    topics = {"input_topic": f"events-{tag}", "reference_topic": f"reference-{tag}",
              "output_topic": f"coefficients-{tag}", "dlq_topic": f"dlq-{tag}"}  # fmt: skip
    port = free_port()
    config = _config(tmp_path / "daemon.yaml", kafka_bootstrap, topics, port, transactions)
    replay = ["replay", "--bootstrap", kafka_bootstrap, "--detector", "e2e", "--batch-size", "250"]
    subprocess.run(
        _driftcal(*replay, "--input", str(tmp_path / "reference.npy"), "--topic", topics["reference_topic"]),
        check=True, env=_env(), timeout=120,
    )  # fmt: skip
    bad = [b"", b"\x00" * 5, b"not a safetensors blob at all", (10**9).to_bytes(8, "little") + b"{}"]
    asyncio.run(_send_bad(kafka_bootstrap, topics["input_topic"], bad))

    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log:
        command = _driftcal("run", "--config", str(config))
        daemon = subprocess.Popen(command, env=_env(), stdout=log, stderr=log)
    try:
        producer = subprocess.Popen(
            _driftcal(*replay, "--input", str(tmp_path / "stream.npy"), "--topic", topics["input_topic"],
                      "--rate", "600", "--first-event", "0"),
            env=_env(),
        )  # fmt: skip
        assert producer.wait(timeout=180) == 0
        # the stream is in; give the daemon time for its last updates after the final events
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                text = _scrape(port)
            except OSError:  # not serving yet
                text = ""
            if _counter(text, "driftcal_events_consumed_total") >= N_REFERENCE + N_STREAM:
                break
            assert daemon.poll() is None, log_path.read_text()[-3000:]
            time.sleep(1.0)
        # a few more updates on the final window (waiting on the daemon's own counter, not a fixed time)
        deadline = time.monotonic() + 240
        while _counter(_scrape(port), "driftcal_updates_total") < 4 and time.monotonic() < deadline:
            assert daemon.poll() is None, log_path.read_text()[-3000:]
            time.sleep(1.0)
        metrics_text = _scrape(port)
        assert _counter(metrics_text, "driftcal_updates_total") >= 4
        for path, status in (("healthz", "ok"), ("readyz", "ready")):  # alive, reference filled, broker up
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=5) as response:
                assert response.status == 200 and json.loads(response.read())["status"] == status
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()

    assert "driftcal_wasserstein_distance{" in metrics_text
    promtool = ["promtool", "check", "metrics"]
    lint = subprocess.run(promtool, input=metrics_text, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
    docs = [
        CoefficientDocument.from_json(r.value)
        for r in asyncio.run(_read(kafka_bootstrap, topics["output_topic"], until=time.monotonic() + 30))
    ]
    assert len(docs) >= 3
    assert all(d.key == "e2e/0" and d.model == "cell-gain" for d in docs)
    sequences = [d.sequence for d in docs]
    assert sequences == list(range(1, len(docs) + 1)), sequences
    last = docs[-1].array()
    untouched = rmse(np.ones_like(last), truth_end, mask)
    achieved = rmse(last, truth_end, mask)
    print(json.dumps({"transactions": transactions, "rmse_ones": untouched, "rmse_daemon": achieved,
                      "documents": len(docs)}))  # fmt: skip
    assert achieved <= 0.5 * untouched, (achieved, untouched)

    dead = asyncio.run(_read(kafka_bootstrap, topics["dlq_topic"], until=time.monotonic() + 30))
    assert sorted(r.value for r in dead) == sorted(bad)
    for record in dead:
        headers = dict(record.headers)
        assert headers["driftcal-error"].split(b":")[0] in {b"empty", b"truncated", b"size", b"bad_header"}
        assert headers["driftcal-source"].startswith(f"{topics['input_topic']}/0/".encode())
