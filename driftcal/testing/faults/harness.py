"""The pieces every fault scenario uses: a daemon process, producers, readers and the result record.

:class:`DaemonProcess` runs ``python -m driftcal run`` on a YAML config, samples its resident memory in a
background thread, reads ``/metrics``, ``/healthz`` and ``/readyz``, and counts *crashes*: exits nobody
asked for, and a non-zero exit after SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

import driftcal
from driftcal.coefficients import CoefficientDocument

ROOT = Path(driftcal.__file__).resolve().parents[1]


@dataclass
class ScenarioResult:
    """What one scenario measured; the nine integers are the fault report's contract.

    ``sent``/``consumed`` count input *messages* (consumed: acknowledged by the group's committed offset),
    ``dead_lettered`` the messages in the dead-letter topic, ``published`` the coefficient documents a
    ``read_committed`` reader sees, ``duplicates``/``gaps`` repeated and missing sequence numbers among
    them, ``crashes`` unrequested exits, ``max_rss_bytes`` the daemon's peak resident memory and
    ``recovery_seconds`` the time from the end of the fault to recovery (rounded up). ``details`` holds
    what each scenario checks beyond these.
    """

    sent: int = 0
    consumed: int = 0
    dead_lettered: int = 0
    published: int = 0
    duplicates: int = 0
    gaps: int = 0
    crashes: int = 0
    max_rss_bytes: int = 0
    recovery_seconds: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """The JSON form: the nine integers, then ``details``."""
        return asdict(self)


def sequence_faults(sequences: Sequence[int]) -> tuple[int, int]:
    """``(duplicates, gaps)`` of sequence numbers that should read 1, 2, 3, ...

    >>> sequence_faults([1, 2, 2, 4])
    (1, 1)
    """
    duplicates = len(sequences) - len(set(sequences))
    gaps = (max(sequences) - len(set(sequences))) if sequences else 0
    return duplicates, gaps


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of the metric family ``name`` in an exposition ``text``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.split()[-1])
    return total


class DaemonProcess:
    """``driftcal run`` on ``config`` as a subprocess, logging to ``workdir/<name>.log``."""

    def __init__(self, config: dict[str, Any], workdir: Path, name: str = "daemon") -> None:
        self.config, self.port = config, int(config["metrics"]["port"])
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.crashes = 0
        self.max_rss_bytes = 0  # VmHWM: the peak over the process's life
        self.rss_bytes = 0  # VmRSS at the last sample
        self.window_rss_bytes = 0  # the largest VmRSS sampled since mark_rss()
        self._expected_exit = False
        self._sampler: threading.Thread | None = None

    def start(self) -> DaemonProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTCAL_")}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["OMP_NUM_THREADS"] = "1"
        self._expected_exit = False
        with self.log_path.open("a") as log:
            command = [sys.executable, "-m", "driftcal", "run", "--config", str(self.config_path)]
            self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self._sampler = threading.Thread(target=self._sample, args=(self.proc,), daemon=True)
        self._sampler.start()
        return self

    def _sample(self, proc: subprocess.Popen[bytes]) -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
                self.rss_bytes = int(fields["VmRSS"].split()[0]) * 1024
                self.window_rss_bytes = max(self.window_rss_bytes, self.rss_bytes)
                peak = int(fields.get("VmHWM", fields["VmRSS"]).split()[0]) * 1024
                self.max_rss_bytes = max(self.max_rss_bytes, peak)
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.1)

    def mark_rss(self) -> int:
        """Start a new window for :attr:`window_rss_bytes`; the current VmRSS."""
        self.window_rss_bytes = self.rss_bytes
        return self.rss_bytes

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def get(self, path: str) -> tuple[int, str]:
        """``(status, body)`` of ``GET /path``; status 0 when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def metric(self, name: str) -> float:
        """Sum over labels of the family ``name`` (0 when the endpoint does not answer)."""
        return metric_sum(self.get("metrics")[1], name)

    def published(self) -> int:
        """Documents this process published (``driftcal_coefficients_published_total``)."""
        return int(self.metric("driftcal_coefficients_published_total"))

    def events_consumed(self) -> int:
        """Events this process stored (``driftcal_events_consumed_total``)."""
        return int(self.metric("driftcal_events_consumed_total"))

    def ready(self) -> bool:
        return self.get("readyz")[0] == 200

    def until(
        self, condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.25
    ) -> float:
        """Wait until ``condition()``; seconds waited. Raises ``AssertionError`` on timeout or death."""
        t0 = time.monotonic()
        while not condition():
            if not self.alive:
                self._note_exit()
                raise AssertionError(f"daemon exited while waiting for {what}: {self.log_tail()}")
            if time.monotonic() - t0 > timeout_s:
                tail = self.log_tail(2000)
                raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}: {tail}")
            time.sleep(every_s)
        return time.monotonic() - t0

    def kill9(self) -> None:
        """SIGKILL, as a crashing host would; not counted as a crash."""
        assert self.proc is not None
        self._expected_exit = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout_s: float = 60.0) -> tuple[int, float]:
        """SIGTERM and wait: ``(exit code, seconds)``; a non-zero code or a hang counts as a crash."""
        assert self.proc is not None
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self._expected_exit = True
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if code != 0:
            self.crashes += 1
        return code, time.monotonic() - t0

    def _note_exit(self) -> None:
        if not self._expected_exit:
            self.crashes += 1
            self._expected_exit = True  # count it once

    def close(self) -> None:
        """Kill what is left (after a failure); an unexpected earlier exit is counted."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            self._note_exit()
        else:
            self._expected_exit = True
            self.proc.kill()
            self.proc.wait()


async def produce(
    bootstrap: str, topic: str, blobs: Iterable[bytes], *, rate_per_s: float | None = None
) -> float:
    """Send ``blobs`` (at ``rate_per_s`` messages per second if given) and flush; seconds taken."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_request_size=4 << 20)
    await producer.start()
    t0 = time.monotonic()
    try:
        for i, blob in enumerate(blobs):
            if rate_per_s:
                ahead = t0 + i / rate_per_s - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await producer.send(topic, blob)
        await producer.flush()
    finally:
        await producer.stop()
    return time.monotonic() - t0


async def committed_values(bootstrap: str, topic: str) -> list[bytes]:
    """Every message value a ``read_committed`` reader of ``topic`` sees, in order (until 2 s of quiet)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    values: list[bytes] = []
    try:
        idle = 0
        while idle < 4:
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            values += [r.value for part in batch.values() for r in part]
    finally:
        await consumer.stop()
    return values


async def committed_documents(bootstrap: str, topic: str) -> list[CoefficientDocument]:
    """Every coefficient document a ``read_committed`` reader of ``topic`` sees, in order."""
    return [CoefficientDocument.from_json(value) for value in await committed_values(bootstrap, topic)]


async def read_all(bootstrap: str, topic: str, *, expected: int, timeout_s: float = 60.0) -> list:
    """Records of ``topic`` from the start until ``expected`` arrived, or until ``timeout_s`` (then fewer)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for part in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def committed_offset(bootstrap: str, group: str, topic: str) -> int:
    """The offset ``group`` committed on partition 0 of ``topic`` (0 when none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return int(await consumer.committed(TopicPartition(topic, 0)) or 0)
    finally:
        await consumer.stop()


def record_publications(result: ScenarioResult, bootstrap: str, topic: str) -> list[CoefficientDocument]:
    """Count the committed documents of ``topic`` into ``result`` (published, duplicates, gaps)."""
    docs = asyncio.run(committed_documents(bootstrap, topic))
    result.published = len(docs)
    result.duplicates, result.gaps = sequence_faults([d.sequence for d in docs])
    return docs


def dumps(results: dict[str, ScenarioResult]) -> str:
    """The fault report line: ``{"scenarios": {name: {...}}}``."""
    return json.dumps({"scenarios": {name: r.report() for name, r in results.items()}})
