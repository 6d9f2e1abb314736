"""A local single-node KRaft Kafka broker run from the official Apache jars, for integration tests.

* :func:`~driftcal.testing.kafka_jars.fetch` (re-exported here) copies ``org.apache.kafka:kafka_2.13``
  and its runtime dependencies from Maven Central into ``<cache>/kafka-<version>/libs`` with ``mvn``
  (once; a marker file makes it idempotent).
* :class:`LocalKafka` formats a temporary log dir and runs ``kafka.Kafka`` as broker *and* controller on
  two free 127.0.0.1 ports; ``stop()``/``start()`` restart it on the same ports and data (outage tests),
  ``close()`` removes everything.
* :func:`kafka_bootstrap` is what the test fixture uses: ``$DRIFTCAL_KAFKA_BOOTSTRAP``, else a
  testcontainers Kafka when a Docker engine answers, else :class:`LocalKafka`.

Needs Java 17+ (``$JAVA_HOME/bin/java`` or ``java`` on ``PATH``) and, to fetch, ``mvn``. Tested with
Kafka 4.4.0 (the default) and 4.0.1 and 3.9.1 on OpenJDK 17 with aiokafka 0.14: produce/consume with
headers, group commits, transactions with ``read_committed``, restart. Command line::

    python -m driftcal.testing.kafka_broker fetch [--version V]   # prints the libs folder
    python -m driftcal.testing.kafka_broker start [--port P]      # prints bootstrap=127.0.0.1:P
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Collection, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from driftcal.testing.kafka_config import (  # used here and re-exported
    _LOG4J1,
    _LOG4J2,
    new_cluster_id,
    server_properties,
)
from driftcal.testing.kafka_jars import (  # noqa: F401 (re-exported)
    DEFAULT_VERSION,
    ENV_BOOTSTRAP,
    ENV_CACHE,
    ENV_VERSION,
    BrokerError,
    _java,
    default_cache,
    default_version,
    fetch,
)

ENV_IMAGE = "DRIFTCAL_KAFKA_IMAGE"  # image for the testcontainers path (default: testcontainers')
# gentle on two cores: small heap, serial GC, C1 only (fast start-up, little JIT work)
_JVM = ["-Xmx512m", "-Xms256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError"]
log = logging.getLogger(__name__)
T = TypeVar("T")


def free_port(exclude: Collection[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that is free right now (not in ``exclude``)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in exclude:
            return port


def _in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (SO_REUSEADDR, as Java binds: TIME_WAIT is fine)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh event loop in a worker thread (callable inside a loop too)."""
    with ThreadPoolExecutor(1, thread_name_prefix="kafka-broker") as pool:
        return pool.submit(asyncio.run, coro).result()


async def _probe(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 10)
        if not (await asyncio.wait_for(admin.describe_cluster(), 10)).get("brokers"):
            raise BrokerError(f"no broker in the metadata of {bootstrap} yet")
    finally:
        await admin.close()


_BROKERS: weakref.WeakSet[LocalKafka] = weakref.WeakSet()


class LocalKafka:
    """A single-node KRaft Kafka (broker and controller) in a JVM subprocess; a context manager.

    ``start()`` fetches the jars if needed, picks free ports, formats a temporary log dir and waits until
    the broker answers a metadata request. ``stop()`` (SIGTERM) and ``kill()`` (SIGKILL) keep ports and
    data so that ``start()`` brings the same broker back; ``close()`` stops it and removes its folder.
    These calls block (seconds): from async code use ``await asyncio.to_thread(broker.start)``.
    """

    def __init__(
        self,
        version: str | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        cache: Path | None = None,
        overrides: Mapping[str, object] | None = None,
        start_timeout: float = 90.0,
    ) -> None:
        self.version = version or default_version()
        self.port, self.controller_port = port, controller_port
        self.cache, self.overrides, self.start_timeout = cache, dict(overrides or {}), start_timeout
        self.workdir: Path | None = None
        self._libs: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:<port>"`` (known once started)."""
        if self.port is None:
            raise BrokerError("LocalKafka has no port before start()")
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the broker's log (WARN and above) and of its stdout/stderr."""
        if self.workdir is None:
            return ""
        parts = [_tail(self.workdir / name, lines) for name in ("broker.log", "stdout.log")]
        return "\n".join(p for p in parts if p)

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        assert self.workdir is not None and self._libs is not None
        return [
            _java(),
            *_JVM,
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
            *("-cp", f"{self._libs}{os.sep}*", main, *args),
        ]

    def _prepare(self) -> None:
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port(exclude={self.port})
        self.workdir = Path(tempfile.mkdtemp(prefix="driftcal-kafka-"))
        _BROKERS.add(self)
        config = self.workdir / "server.properties"
        data = self.workdir / "data"
        config.write_text(server_properties(self.port, self.controller_port, data, self.overrides))
        (self.workdir / "log4j2.properties").write_text(_LOG4J2.format(log=self.workdir / "broker.log"))
        (self.workdir / "log4j.properties").write_text(_LOG4J1.format(log=self.workdir / "broker.log"))
        cmd = self._java_cmd("kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(config))
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
            self.close()
            raise BrokerError(f"formatting the log dir failed (exit {done.returncode})", tail)

    def start(self) -> LocalKafka:
        """Start (or restart) the broker and wait until it answers; raises :class:`BrokerError`."""
        if self.running:
            return self
        if self._libs is None:
            self._libs = fetch(self.version, self.cache)
        if self.workdir is None:
            self._prepare()
        assert self.workdir is not None
        if busy := [p for p in (self.port, self.controller_port) if p is not None and _in_use(p)]:
            raise BrokerError(f"cannot start Kafka: port {busy[0]} on 127.0.0.1 is in use")
        t0 = time.monotonic()
        self._out = open(self.workdir / "stdout.log", "ab")  # noqa: SIM115 - closed by stop()
        cmd = self._java_cmd("kafka.Kafka", str(self.workdir / "server.properties"))
        self._proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(t0)
        except BaseException:
            self.kill()
            raise
        log.info("Kafka %s up on %s in %.1f s", self.version, self.bootstrap, time.monotonic() - t0)
        return self

    def _wait_ready(self, t0: float) -> None:
        assert self._proc is not None and self.port is not None
        last: Exception | None = None
        while True:
            if (code := self._proc.poll()) is not None:
                raise BrokerError(f"Kafka {self.version} exited ({code}) during start-up", self.log_tail())
            if time.monotonic() - t0 > self.start_timeout:
                raise BrokerError(
                    f"Kafka {self.version} not ready on {self.bootstrap} after {self.start_timeout:.0f} s "
                    f"(last probe: {str(last)[:200]})",
                    self.log_tail(),
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                _run_async(_probe(self.bootstrap))
                return
            except Exception as exc:
                last = exc
            time.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the broker (SIGKILL after ``timeout`` s); ports and data stay for ``start()``."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._out is not None:
            self._out.close()
            self._out = None

    def kill(self) -> None:
        """SIGKILL the broker (an unclean outage); ports and data stay for ``start()``."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.stop()

    def restart(self) -> LocalKafka:
        """``stop()`` then ``start()``: the same broker on the same ports with the same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the broker and remove its folder (log dir included)."""
        self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        _BROKERS.discard(self)

    def __enter__(self) -> LocalKafka:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


@atexit.register
def _kill_leftovers() -> None:
    for broker in list(_BROKERS):
        broker.kill()
        broker.close()


async def create_topics(
    bootstrap: str, topics: Mapping[str, Mapping[str, Any]], *, exist_ok: bool = True, timeout: float = 30.0
) -> None:
    """Create ``{name: {"partitions": 1, "replication_factor": 1, "config": {...}}}`` and wait for leaders."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import for_code

    new = [
        NewTopic(
            name,
            int(spec.get("partitions", 1)),
            int(spec.get("replication_factor", 1)),
            topic_configs={k: str(v) for k, v in dict(spec.get("config", {})).items()},
        )
        for name, spec in topics.items()
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        response = await admin.create_topics(new, timeout_ms=int(timeout * 1000))
        for name, code, *message in response.topic_errors:
            if code and not (exist_ok and code == 36):  # 36: TOPIC_ALREADY_EXISTS
                why = " ".join(str(m) for m in message if m)
                raise BrokerError(f"cannot create topic {name!r}: {for_code(code).__name__} {why}".strip())
        deadline = time.monotonic() + timeout
        while True:
            described = await admin.describe_topics(list(topics))
            if all(
                not t["error_code"] and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"topics {sorted(topics)} have no leaders after {timeout:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def _docker_kafka() -> type | None:
    """testcontainers' ``KafkaContainer`` if it is installed and a Docker engine answers, else None."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:
        return None
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from testcontainers.kafka import KafkaContainer
        except ImportError:
            return None
    return KafkaContainer


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    """Yield a bootstrap: ``$DRIFTCAL_KAFKA_BOOTSTRAP``, else testcontainers, else :class:`LocalKafka`."""
    if bootstrap := os.environ.get(ENV_BOOTSTRAP, "").strip():
        log.warning("Kafka: using %s from $%s", bootstrap, ENV_BOOTSTRAP)
        yield bootstrap
        return
    if (container_cls := _docker_kafka()) is not None:
        image = os.environ.get(ENV_IMAGE)
        with (container_cls(image) if image else container_cls()).with_kraft() as container:
            bootstrap = container.get_bootstrap_server()
            log.warning("Kafka: testcontainers %s on %s", container.image, bootstrap)
            yield bootstrap
        return
    with LocalKafka() as broker:
        log.warning("Kafka: local Kafka %s from the Apache jars on %s", broker.version, broker.bootstrap)
        yield broker.bootstrap


def main(argv: Sequence[str] | None = None) -> int:
    """``fetch [--version V] [--cache DIR]`` or ``start [--port P] [--version V] [--cache DIR]``."""
    parser = argparse.ArgumentParser(prog="kafka-local", description="A local single-node Kafka for tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("fetch", "download the jars, print their folder"), ("start", "run a broker")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--version", default=None, help=f"Kafka version (default {default_version()})")
        cmd.add_argument("--cache", type=Path, default=None, help=f"jar cache (default {default_cache()})")
    sub.choices["start"].add_argument("--port", type=int, default=None, help="broker port (default: free)")
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the readiness probe's retries are noise here
    try:
        if args.command == "fetch":
            print(fetch(args.version or default_version(), args.cache))
            return 0
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM: stop like Ctrl-C
        with LocalKafka(args.version, port=args.port, cache=args.cache) as broker:
            print(f"bootstrap={broker.bootstrap}", flush=True)
            while broker.running:
                time.sleep(0.5)
            raise BrokerError(f"Kafka {broker.version} on {broker.bootstrap} exited", broker.log_tail())
    except KeyboardInterrupt:
        return 0
    except BrokerError as exc:
        lines = exc.log_tail.strip().splitlines()
        why = next((ln for ln in lines if " ERROR " in ln or "Exception:" in ln), lines[-1] if lines else "")
        suffix = f"; log: {why.strip()}" if why else ""
        print(f"kafka-local: error: {exc.args[0]}{suffix}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
