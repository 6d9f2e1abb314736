"""Fault injection: the broker goes away for about 30 s mid-stream and comes back.

The daemon must keep running (no restart), report not ready while the broker is gone and ready again after,
and use every event: the ones produced before the outage and the ones produced after it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml

from driftcal.testing.kafka_broker import LocalKafka, create_topics, free_port

from .corpus import good_blob
from .test_kill_and_restart import SHAPE, TRUTH, _committed_documents, _produce, _start

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

OUTAGE_S = 35  # readiness turns false after 30 s without a broker round trip


def _get(port: int, path: str) -> tuple[int, dict | str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=5) as response:
            body = response.read().decode()
            return response.status, json.loads(body) if path != "metrics" else body
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read().decode())
    except OSError:
        return 0, {}


def _consumed(port: int) -> float:
    _, text = _get(port, "metrics")
    name = "driftcal_events_consumed_total{"
    return sum(float(ln.split()[-1]) for ln in str(text).splitlines() if ln.startswith(name))


def _until(condition, daemon, log_path: Path, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert daemon.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {log_path.read_text()[-2000:]}"
        time.sleep(0.5)


def test_broker_outage_readiness_and_nothing_lost(tmp_path: Path) -> None:
    rng = np.random.default_rng(41)
    stream = np.concatenate([
        rng.gamma(2.0, 1.0, (1000, *SHAPE)), rng.gamma(2.0, 1.0, (3000, *SHAPE)) * TRUTH
    ]).astype(np.float32)  # fmt: skip
    blobs = [good_blob(stream[i : i + 100], "outage", i) for i in range(0, len(stream), 100)]
    tag = uuid.uuid4().hex[:6]
    topics = {"input_topic": f"in-{tag}", "output_topic": f"out-{tag}", "dlq_topic": f"dlq-{tag}"}
    with LocalKafka() as broker:  # a broker of its own: this test stops it
        bootstrap = broker.bootstrap
        asyncio.run(create_topics(bootstrap, {topics["input_topic"]: {}}))
        asyncio.run(_produce(bootstrap, topics["input_topic"], blobs[:25]))
        port = free_port()
        config = tmp_path / "outage.yaml"
        config.write_text(yaml.safe_dump({
            "detector": {"name": "outage", "shape": list(SHAPE)},
            "kafka": {"bootstrap": bootstrap, "group_id": f"g-{tag}", "request_timeout_ms": 5000,
                      "transactions": True, "transactional_id": f"tx-{tag}", **topics},
            "reference": {"source": "first-events", "first_events": 1000, "max_events": 1000},
            "window": {"max_events": 2000, "min_events": 500},
            "update": {"every_events": 500, "every_seconds": 2.0, "steps": 10, "initial_steps": 100,
                       "critic": "mlp", "device": "cpu"},
            "alarm": {"floor_steps": 5},
            "metrics": {"host": "127.0.0.1", "port": port},
        }))  # fmt: skip
        log_path = tmp_path / "daemon.log"
        daemon = _start(config, port, log_path)
        try:
            _until(lambda: _get(port, "readyz")[0] == 200 and _consumed(port) >= 2500, daemon, log_path, 120,
                   "ready with the first half consumed")  # fmt: skip
            broker.stop()
            t0 = time.monotonic()
            _until(lambda: _get(port, "readyz")[0] == 503, daemon, log_path, OUTAGE_S + 30, "not ready")
            assert _get(port, "healthz")[0] == 200  # alive all along
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t0)))
            broker.start()
            _until(lambda: _get(port, "readyz")[0] == 200, daemon, log_path, 90, "ready again")
            asyncio.run(_produce(bootstrap, topics["input_topic"], blobs[25:]))
            _until(lambda: _consumed(port) >= len(stream), daemon, log_path, 120, "every event consumed")
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0, log_path.read_text()[-3000:]
        finally:
            if daemon.poll() is None:
                daemon.kill()
        docs = asyncio.run(_committed_documents(bootstrap, topics["output_topic"]))
    assert docs and [d.sequence for d in docs] == list(range(1, len(docs) + 1))
