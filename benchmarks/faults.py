"""Fault report: the five fault scenarios against a real broker, as one JSON document.

    python benchmarks/faults.py [--quick] [--scenarios kill9,broker_outage,...] [--out FILE.json]

It starts its own single-node Kafka (the jars the tests use) unless ``DRIFTCAL_KAFKA_BOOTSTRAP`` names a
broker; ``broker_outage`` always runs on a broker of its own, since it stops and restarts it. Each scenario
is in ``driftcal.testing.faults`` (the same code ``tests/faults/`` asserts on). The last stdout line is
``{"scenarios": {name: {sent, consumed, dead_lettered, published, duplicates, gaps, crashes,
max_rss_bytes, recovery_seconds, details}}}``; a scenario that could not finish has ``-1`` in the figures
it did not measure and its reason in ``details.error``. The exit status is 1 if any scenario failed or
shows a duplicate, a gap or a crash. On 2 cores ``--quick`` took 3 minutes and the full run 4.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from driftcal import __version__
from driftcal.testing.faults.harness import ScenarioResult
from driftcal.testing.faults.input_faults import malformed, overload
from driftcal.testing.faults.process_faults import broker_outage, kill9, sigterm
from driftcal.testing.kafka_broker import LocalKafka

NAMES = ("kill9", "broker_outage", "malformed", "overload", "sigterm")
FIGURES = ("sent", "consumed", "dead_lettered", "published", "duplicates", "gaps", "crashes")


def plans(bootstrap: str, quick: bool) -> dict[str, Callable[[Path], ScenarioResult]]:
    """The scenario calls at the chosen size."""
    return {
        "kill9": lambda w: kill9(bootstrap, w, changed_events=6000 if quick else 20000),
        "broker_outage": lambda w: broker_outage(w, outage_s=35.0),
        "malformed": lambda w: malformed(
            bootstrap, w, bad=1000 if quick else 3000, good_events=3000 if quick else 10000
        ),
        "overload": lambda w: overload(bootstrap, w, factor=3.0, seconds=10.0 if quick else 30.0),
        "sigterm": lambda w: sigterm(bootstrap, w, timeout_s=10.0),
    }


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """``DRIFTCAL_KAFKA_BOOTSTRAP`` if set, else a local single-node Kafka for the run."""
    external = os.environ.get("DRIFTCAL_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    with LocalKafka() as kafka:
        yield kafka.bootstrap


def run_one(name: str, call: Callable[[Path], ScenarioResult]) -> tuple[dict, float]:
    """The scenario's report (or ``-1`` figures and the error) and its wall time."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"driftcal-{name}-") as tmp:
        try:
            report = call(Path(tmp)).report()
        except Exception as exc:  # a timeout or a dead daemon: reported, the other scenarios still run
            message = f"{type(exc).__name__}: {exc}".strip()[:2000]
            report = {**dict.fromkeys((*FIGURES, "max_rss_bytes", "recovery_seconds"), -1),
                      "details": {"error": message}}  # fmt: skip
    return report, time.monotonic() - t0


def failed(report: dict) -> bool:
    return "error" in report["details"] or any(report[k] != 0 for k in ("duplicates", "gaps", "crashes"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller scenarios (about 3 minutes on 2 cores)")
    parser.add_argument("--scenarios", default=",".join(NAMES), help="comma-separated subset (default: all)")
    parser.add_argument("--out", type=Path, help="also write the JSON document here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")

    scenarios: dict[str, dict] = {}
    t0 = time.monotonic()
    with broker() as bootstrap:
        calls = plans(bootstrap, args.quick)
        for name in names:
            report, seconds = run_one(name, calls[name])
            report["details"]["wall_seconds"] = round(seconds, 1)
            scenarios[name] = report
            figures = " ".join(f"{k}={report[k]}" for k in (*FIGURES, "recovery_seconds"))
            rss = report["max_rss_bytes"] / 2**20 if report["max_rss_bytes"] > 0 else -1
            status = "FAILED" if failed(report) else "ok"
            print(f"{name:14s} {status:6s} {figures} max_rss={rss:.0f}MiB ({seconds:.0f} s)", flush=True)
            if "error" in report["details"]:
                print(f"    {report['details']['error'][:300]}", flush=True)
    where = "external" if os.environ.get("DRIFTCAL_KAFKA_BOOTSTRAP") else "local"
    document = {
        "scenarios": scenarios,
        "meta": {"quick": args.quick, "version": __version__, "python": platform.python_version(),
                 "cpus": os.cpu_count(), "broker": where, "wall_seconds": round(time.monotonic() - t0, 1)},
    }  # fmt: skip
    text = json.dumps(document)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(text)
    return 1 if any(failed(r) for r in scenarios.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
