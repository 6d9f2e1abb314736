"""Shared fixtures: ``kafka_bootstrap``, a Kafka broker for the whole session (integration tests), and
``cli``, the ``driftcal`` command run in-process (its :class:`Outcome`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from driftcal.cli import main
from driftcal.testing import kafka_broker


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka broker: ``$DRIFTCAL_KAFKA_BOOTSTRAP``, testcontainers, or a local broker.

    Fails (never skips) when no broker can be had: an integration test that silently skips proves nothing.
    """
    try:
        with kafka_broker.kafka_bootstrap() as bootstrap:
            yield bootstrap
    except kafka_broker.BrokerError as exc:
        pytest.fail(f"no Kafka broker for the integration tests: {exc}", pytrace=False)


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()

    def assert_input_error(self, *needles: str) -> str:
        """Exit 2, exactly one stderr line ``driftcal: error: ...`` containing every needle."""
        assert self.code == 2, (self.code, self.err)
        assert "Traceback" not in self.err
        assert len(self.err_lines) == 1, self.err
        line = self.err_lines[0]
        assert line.startswith("driftcal: error: "), line
        for needle in needles:
            assert needle.lower() in line.lower(), (needle, line)
        return line


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    def run(*argv: object) -> Outcome:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
