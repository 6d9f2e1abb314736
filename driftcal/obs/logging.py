"""Logging setup of the daemon: plain lines or one JSON object per line, on stderr.

:func:`setup_logging` is idempotent: calling it again replaces the handler it installed before (and
only that one; handlers installed by others, e.g. pytest's, are left alone).

>>> import io, json as _json
>>> buf = io.StringIO()
>>> _ = setup_logging("info", json=True, stream=buf)
>>> logging.getLogger("driftcal.demo").info("hello %s", "world", extra={"detector": "calo"})
>>> record = _json.loads(buf.getvalue())
>>> record["level"], record["logger"], record["message"], record["detector"]
('INFO', 'driftcal.demo', 'hello world', 'calo')
>>> teardown_logging()
"""

from __future__ import annotations

import json as _json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_driftcal_handler"
# attributes every LogRecord has; anything else came in through ``extra=`` and goes into the JSON object
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC ISO 8601), ``level``, ``logger``, ``message``, extras.

    Exceptions go under ``exception`` as the formatted traceback.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Serialise ``record``; values that JSON cannot hold are converted with ``str``."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _json.dumps(out, default=str, ensure_ascii=False)


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(str(level).strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r} (use DEBUG, INFO, WARNING, ERROR or CRITICAL)")
    return value


def setup_logging(
    level: str | int = "INFO", json: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Configure the root logger once: ``level``, plain or JSON lines on ``stream`` (default stderr).

    Returns the installed handler. Unknown level names raise :class:`ValueError`.
    """
    numeric = _level(level)
    teardown_logging()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(PLAIN_FORMAT))
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.captureWarnings(True)
    return handler


def teardown_logging() -> None:
    """Remove the handler installed by :func:`setup_logging`, if any."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
            handler.close()
            logging.captureWarnings(False)
