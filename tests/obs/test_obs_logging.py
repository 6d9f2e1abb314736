"""``setup_logging``: plain and JSON lines, idempotence, level validation."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from driftcal.obs import setup_logging, teardown_logging


@pytest.fixture(autouse=True)
def restore_root():
    root = logging.getLogger()
    level = root.level
    yield
    teardown_logging()
    root.setLevel(level)


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_driftcal_handler", False)]


def test_plain_format():
    buf = io.StringIO()
    setup_logging("debug", stream=buf)
    logging.getLogger("driftcal.test").debug("x=%d", 3)
    line = buf.getvalue().strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} DEBUG driftcal\.test: x=3", line), line


def test_json_lines_with_extras_and_exception():
    buf = io.StringIO()
    setup_logging("INFO", json=True, stream=buf)
    log = logging.getLogger("driftcal.test")
    log.debug("hidden")
    log.info("published", extra={"detector": "calo", "n": 3})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    first, second = (json.loads(line) for line in buf.getvalue().splitlines())
    assert first["message"] == "published" and first["detector"] == "calo" and first["n"] == 3
    assert first["level"] == "INFO" and first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exception"]


def test_idempotent():
    buf = io.StringIO()
    setup_logging(stream=buf)
    setup_logging(stream=buf)
    setup_logging("WARNING", stream=buf)
    assert len(ours()) == 1
    logging.getLogger("driftcal.test").warning("once")
    assert buf.getvalue().count("once") == 1
    assert logging.getLogger().level == logging.WARNING


def test_unknown_level():
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD")
