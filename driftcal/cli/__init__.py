"""The ``driftcal`` command: one module per command group, each with ``add_parser`` and ``run``.

To add a command, write ``driftcal/cli/<name>.py`` with

- ``add_parser(subparsers) -> argparse.ArgumentParser``: registers the subcommand and its options;
- ``run(args) -> int``: does the work and returns the exit code;

and add ``"<name>"`` to :data:`COMMANDS`. The command modules are thin: they parse, call into the
package, and print.

Errors are reported in one line on stderr, ``driftcal: error: <message>``: exit code 2 for bad input
(:class:`~driftcal.errors.DriftcalError`, unreadable files, bad values) and for usage errors, exit
code 1 for anything unexpected (set ``DRIFTCAL_DEBUG=1`` to see its traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from driftcal import __version__
from driftcal.errors import DriftcalError

#: Command modules under ``driftcal.cli``, in the order ``driftcal --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "simulate",
    "fit",
    "run",
    "demo",
    "replay",
    "report",
)

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command in :data:`COMMANDS` registered."""
    parser = argparse.ArgumentParser(
        prog="driftcal",
        description="Detector calibration by matching a reference and a changed dataset.",
    )
    parser.add_argument("--version", action="version", version=f"driftcal {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``driftcal`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse has printed already
        return _exit_code(exc.code)
    try:
        return int(args._run(args))
    except (DriftcalError, OSError, ValueError) as exc:
        _error(_describe(exc))
        return EXIT_INPUT
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("DRIFTCAL_DEBUG") == "1":
            raise
        _error(f"unexpected {type(exc).__name__}: {_describe(exc)} (set DRIFTCAL_DEBUG=1 for the traceback)")
        return EXIT_UNEXPECTED


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    return EXIT_UNEXPECTED


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        target = f" '{exc.filename}'" if exc.filename is not None else ""
        return f"{exc.strerror}{target}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _error(message: str) -> None:
    print(f"driftcal: error: {message}", file=sys.stderr)


__all__ = ["COMMANDS", "build_parser", "main"]
