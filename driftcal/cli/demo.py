"""``driftcal demo``: the daemon on an in-process simulated stream, with no broker.

It serves ``/metrics``, ``/healthz`` and ``/readyz`` while it runs, shows a live status line (events,
updates, distance, RMSE to the simulated truth) on stderr, and prints a summary at the end; with
``--json`` the last stdout line is one JSON document with ``events``, ``updates``, ``rmse_initial``,
``rmse_final``, ``distance_initial`` and ``distance_final`` (and a few more).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path

from driftcal.cli.options import positive_float

DEFAULT_DURATION_S = 90.0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="run the daemon on an embedded simulated stream (no broker)",
        description="Run the daemon on an in-process simulated calorimeter that keeps aging.",
    )
    parser.add_argument(
        "--duration", type=positive_float, default=DEFAULT_DURATION_S, metavar="S",
        help=f"seconds to run (default {DEFAULT_DURATION_S:.0f})",
    )  # fmt: skip
    parser.add_argument("--metrics-port", type=int, metavar="P", help="metrics port (default 9108; 0: any)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML overriding the demo settings")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated detector (default 0)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    parser.add_argument(
        "--gain-step", type=gain_step, metavar="EVENTS:FACTOR",
        help="from this many streamed events on (after the reference), multiply every gain of the "
        "module by FACTOR (< 1: a sudden drop, > 1: a jump; 3 raises the drift alarm)",
    )  # fmt: skip
    return parser


def gain_step(text: str) -> tuple[int, float]:
    """``EVENTS:FACTOR`` of ``--gain-step``.

    >>> gain_step("3000:3"), gain_step("500:0.3")
    ((3000, 3.0), (500, 0.3))
    """
    events, sep, factor = text.partition(":")
    try:
        at, f = int(events), float(factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected EVENTS:FACTOR, got {text!r}") from None
    if not sep or at < 0 or not (math.isfinite(f) and f > 0):
        raise argparse.ArgumentTypeError(f"expected EVENTS >= 0 and a finite FACTOR > 0, got {text!r}")
    return at, f


def _status_printer(tty: bool):  # noqa: ANN202 - a closure
    last = [0.0]

    def show(report) -> None:  # noqa: ANN001
        if not tty and report.seconds - last[0] < 5:
            return
        last[0] = report.seconds
        dist = "-" if report.distance_final is None else f"{report.distance_final:.4g}"
        now = "-" if report.rmse_final is None else f"{report.rmse_final:.4f}"
        line = (
            f"[{report.seconds:5.0f}s] events {report.events:>7d} | updates {report.updates:>4d} | "
            f"distance {dist} | RMSE to truth {report.rmse_initial:.4f} -> {now} | "
            f"published {report.published} | rejected {report.rejected}"
        )
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return show


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the result."""
    from driftcal.cli.run import load_or_report
    from driftcal.obs import Health, Metrics, ObsServer
    from driftcal.obs.logging import setup_logging, teardown_logging
    from driftcal.stream.demo import DEMO_SETTINGS, DemoStream, run_demo

    overrides = dict(DEMO_SETTINGS) if args.config is None else {}
    if args.metrics_port is not None:
        overrides["metrics"] = {**DEMO_SETTINGS["metrics"], "port": args.metrics_port}
    settings = load_or_report(args.config, **overrides)
    if settings is None:
        return 2
    setup_logging("WARNING")
    metrics, health = Metrics(), Health()
    server = None
    if settings.metrics.enabled:
        server = ObsServer(metrics, health, host=settings.metrics.host, port=settings.metrics.port)
        port = server.start()
        print(f"driftcal demo: metrics on http://127.0.0.1:{port}/metrics", file=sys.stderr)
    tty = sys.stderr.isatty()
    step = {} if args.gain_step is None else {"step_at": args.gain_step[0], "step_factor": args.gain_step[1]}
    try:
        report = asyncio.run(
            run_demo(
                settings,
                duration_s=args.duration,
                stream=DemoStream(seed=args.seed, **step),
                metrics=metrics,
                health=health,
                on_status=_status_printer(tty),
            )
        )
    finally:
        if server is not None:
            server.stop()
        teardown_logging()
    if tty:
        print(file=sys.stderr)
    summary = report.summary()
    nan = float("nan")
    print(
        f"driftcal demo: {summary['events']} events, {summary['updates']} updates, RMSE to truth "
        f"{summary['rmse_initial']:.4f} (no correction at start) -> {summary['rmse_final'] or nan:.4f}"
        f" (uncorrected now: {summary['rmse_uncorrected_final'] or nan:.4f})",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(summary))
    return 0
