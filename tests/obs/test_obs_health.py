"""Liveness/readiness transitions of :class:`driftcal.obs.Health` under a fake clock."""

from __future__ import annotations

import json

import pytest

from driftcal.obs import Health


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


@pytest.fixture
def clock():
    return Clock()


def test_alive_then_stuck(clock):
    h = Health(stuck_after_s=60, clock=clock)
    alive, body = h.healthz()
    assert alive and body["status"] == "ok" and body["seconds_since_beat"] is None  # start-up grace
    clock.advance(30)
    h.beat()
    clock.advance(59)
    alive, body = h.healthz()
    assert alive and body["seconds_since_beat"] == 59 and body["beats"] == 1
    clock.advance(2)
    alive, body = h.healthz()
    assert not alive and body["status"] == "stuck" and body["seconds_since_beat"] == 61
    h.beat()
    assert h.healthz()[0]
    json.dumps(body)  # the body is a JSON document


def test_never_beating_is_stuck_after_the_grace_period(clock):
    h = Health(stuck_after_s=10, clock=clock)
    clock.advance(11)
    assert not h.healthz()[0]


def test_not_ready_until_reference_filled(clock):
    h = Health(clock=clock)
    h.beat()
    h.progress()
    ready, body = h.readyz()
    assert not ready and body["failing"] == ["reference_ready"]
    assert body["checks"] == {"alive": True, "reference_ready": False, "broker_reachable": True}
    h.set_reference_ready(True)
    ready, body = h.readyz()
    assert ready and body["status"] == "ready" and body["failing"] == []
    h.set_reference_ready(False)
    assert not h.readyz()[0]


def test_broker_timeout(clock):
    h = Health(broker_timeout_s=30, clock=clock)
    h.set_reference_ready(True)
    h.beat()
    ready, body = h.readyz()
    assert not ready and body["failing"] == ["broker_reachable"] and body["seconds_since_progress"] is None
    h.progress()
    assert h.readyz()[0]
    clock.advance(20)
    h.beat()
    clock.advance(11)  # progress 31 s old, beat 11 s old
    ready, body = h.readyz()
    assert not ready and body["failing"] == ["broker_reachable"] and body["seconds_since_progress"] == 31
    assert h.healthz()[0]  # a broker outage is not a liveness failure
    h.progress()
    assert h.readyz()[0]


def test_explicit_broker_ok_for_in_memory_transports(clock):
    h = Health(clock=clock)
    h.set_reference_ready(True)
    h.set_broker_ok(True)
    h.beat()
    assert h.readyz()[0]
    clock.advance(3600)
    h.beat()
    ready, body = h.readyz()
    assert ready and body["broker_ok_declared"] is True
    h.set_broker_ok(False)
    assert not h.readyz()[0]
    h.progress()  # a successful fetch contradicts the declared outage
    assert h.readyz()[0]
    h.set_broker_ok(None)
    clock.advance(31)
    h.beat()
    assert not h.readyz()[0]


def test_stuck_loop_is_not_ready(clock):
    h = Health(stuck_after_s=60, clock=clock)
    h.set_reference_ready(True)
    h.set_broker_ok(True)
    h.beat()
    clock.advance(61)
    ready, body = h.readyz()
    assert not ready and body["failing"] == ["alive"]


def test_rejects_non_positive_timeouts():
    with pytest.raises(ValueError):
        Health(stuck_after_s=0)
