"""``driftcal run --config FILE``: the streaming daemon on Kafka.

Settings come from the YAML file, overridden by ``DRIFTCAL_*`` environment variables (nested with
``__``). A bad configuration is rejected before anything starts, one line per problem. SIGTERM or SIGINT
stops it cleanly (final publish and commit); the exit code is 0 after a clean stop within
``shutdown_timeout_seconds``, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from driftcal.config import ConfigError, Settings, load_settings


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``run``."""
    parser = subparsers.add_parser(
        "run",
        help="run the streaming calibration daemon",
        description="Consume event batches from Kafka, track the coefficients, publish them.",
    )
    parser.add_argument("--config", type=Path, required=True, metavar="FILE", help="YAML settings file")
    return parser


def report_config_error(exc: ConfigError) -> None:
    """One ``driftcal: error:`` line per problem, on stderr."""
    for problem in exc.problems:
        print(f"driftcal: error: invalid configuration: {problem}", file=sys.stderr)


def load_or_report(path: Path | None, **overrides: object) -> Settings | None:
    """Settings, or None after printing one ``driftcal: error:`` line per problem."""
    try:
        return load_settings(path, **overrides)
    except ConfigError as exc:
        report_config_error(exc)
        return None


def run(args: argparse.Namespace) -> int:
    """Validate the settings, then serve until stopped."""
    settings = load_or_report(args.config)
    if settings is None:
        return 2
    from driftcal.obs.logging import setup_logging, teardown_logging
    from driftcal.stream.kafka import client_security
    from driftcal.stream.runner import serve

    try:  # the secret and TLS files are read once, before anything starts
        security = client_security(settings.kafka.security)
    except ConfigError as exc:
        report_config_error(exc)
        return 2
    setup_logging(settings.log_level, json=settings.log_json)
    try:
        return 0 if asyncio.run(serve(settings, security)) else 1
    finally:
        teardown_logging()
