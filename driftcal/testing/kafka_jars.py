"""The official Apache Kafka jars for :class:`~driftcal.testing.kafka_broker.LocalKafka`, fetched with Maven.

:func:`fetch` copies ``org.apache.kafka:kafka_2.13`` and its runtime dependencies from Maven Central
into ``<cache>/kafka-<version>/libs`` with ``mvn`` (once; a marker file makes it idempotent, a lock file
serialises concurrent fetches of one version). Maven does not bring an SLF4J binding, so a second pass
adds log4j2's (Kafka 4.4) or reload4j (3.9, 4.0). Needs Java 17+ (``$JAVA_HOME/bin/java`` or ``java``
on ``PATH``) and ``mvn``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from driftcal.errors import DriftcalError

DEFAULT_VERSION = "4.4.0"
ENV_BOOTSTRAP = "DRIFTCAL_KAFKA_BOOTSTRAP"  # use this broker, start nothing
ENV_CACHE = "DRIFTCAL_KAFKA_CACHE"  # jar cache (default ~/.cache/driftcal/kafka)
ENV_VERSION = "DRIFTCAL_KAFKA_VERSION"  # Kafka version for LocalKafka (default DEFAULT_VERSION)
_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_MARKER = ".complete"
log = logging.getLogger(__name__)


class BrokerError(DriftcalError, RuntimeError):
    """The broker could not be fetched, started or reached; ``args[0]`` is one readable line.

    ``log_tail`` (possibly empty) holds the end of the broker's log; ``str()`` appends it.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail

    def __str__(self) -> str:
        return f"{self.args[0]}\n{self.log_tail}" if self.log_tail else self.args[0]


def default_cache() -> Path:
    """``$DRIFTCAL_KAFKA_CACHE``, else ``~/.cache/driftcal/kafka``."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "driftcal" / "kafka")


def default_version() -> str:
    """``$DRIFTCAL_KAFKA_VERSION``, else :data:`DEFAULT_VERSION`."""
    return os.environ.get(ENV_VERSION) or DEFAULT_VERSION


def _java() -> str:
    home_java = Path(os.environ.get("JAVA_HOME") or "/nonexistent", "bin", "java")
    java = str(home_java) if home_java.is_file() else shutil.which("java")
    if not java:
        raise BrokerError("java not found (Kafka needs Java 17+): install a JDK or set JAVA_HOME")
    return java


def _pom(version: str, extras: Sequence[str]) -> str:
    deps = [f"org.apache.kafka:kafka_2.13:{version}", *extras]
    xml = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in (d.split(":") for d in deps)
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>local.driftcal</groupId><artifactId>kafka-libs</artifactId><version>1</version>"
        f"<packaging>pom</packaging><dependencies>{xml}</dependencies></project>\n"
    )


def _logging_extras(libs: Path) -> list[str]:
    """The SLF4J binding Maven does not bring: log4j2's if log4j-core came (4.4), else reload4j (3.9, 4.0)."""
    names = [p.name for p in libs.glob("*.jar")]
    slf4j = next((m[1] for n in names if (m := re.fullmatch(r"slf4j-api-([\d.]+)\.jar", n))), "1.7.36")
    core = next((m[1] for n in names if (m := re.fullmatch(r"log4j-core-([\d.]+)\.jar", n))), None)
    if any(n.startswith(("log4j-slf4j", "slf4j-reload4j", "slf4j-log4j12")) for n in names):
        return []
    if core:
        binding = "log4j-slf4j2-impl" if slf4j.startswith("2.") else "log4j-slf4j-impl"
        return [f"org.apache.logging.log4j:{binding}:{core}"]
    return ["ch.qos.reload4j:reload4j:1.2.25", f"org.slf4j:slf4j-reload4j:{slf4j}"]


def _copy_dependencies(mvn: str, root: Path, version: str, extras: Sequence[str], out: Path) -> None:
    (root / "pom.xml").write_text(_pom(version, extras))
    goal = [f"{_PLUGIN}:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={out}"]
    cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(root / "pom.xml"), *goal]
    try:
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"mvn failed to fetch Kafka {version}: {exc}") from None
    if done.returncode != 0:
        text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
        errors = [ln.removeprefix("[ERROR]").strip() for ln in text.splitlines() if ln.startswith("[ERROR]")]
        why = next((e for e in errors if e), text.strip()[-300:] or f"exit code {done.returncode}")
        raise BrokerError(f"mvn failed to fetch Kafka {version}: {why.removesuffix(' -> [Help 1]')}")


def fetch(version: str = DEFAULT_VERSION, cache: Path | None = None) -> Path:
    """Copy the Kafka ``version`` jars into ``<cache>/kafka-<version>/libs`` (once) and return that folder."""
    root = Path(cache or default_cache()) / f"kafka-{version}"
    libs = root / "libs"
    if (root / _MARKER).exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError(f"mvn not found: install Maven to fetch Kafka {version} (or set {ENV_BOOTSTRAP})")
    _java()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent fetch of the same version waits, then finds it done
        if (root / _MARKER).exists():
            return libs
        t0 = time.monotonic()
        partial = root / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        _copy_dependencies(mvn, root, version, [], partial)
        if extras := _logging_extras(partial):
            _copy_dependencies(mvn, root, version, extras, partial)
        if not (partial / f"kafka_2.13-{version}.jar").is_file():
            raise BrokerError(f"mvn did not produce kafka_2.13-{version}.jar in {partial}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        (root / _MARKER).write_text(f"kafka_2.13 {version}\n")
        log.info("fetched Kafka %s into %s in %.1f s", version, libs, time.monotonic() - t0)
    return libs
