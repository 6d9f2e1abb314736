"""The observability HTTP server over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from driftcal.obs import Health, Metrics, ObsServer


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


@pytest.fixture
def served():
    metrics, health = Metrics(), Health(clock=Clock())
    server = ObsServer(metrics, health, host="127.0.0.1", port=0)
    port = server.start()
    try:
        yield metrics, health, f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_metrics_endpoint(served):
    metrics, _, base = served
    metrics.set_distance("calo", "0", 0.25, 0.5, alarm=False)
    status, headers, body = get(base + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST
    text = body.decode()
    assert 'driftcal_wasserstein_distance{detector="calo",module="0"} 0.25' in text
    assert "# TYPE driftcal_events_consumed_total counter" in text


def test_healthz_and_readyz_transitions(served):
    _, health, base = served
    status, headers, body = get(base + "/healthz")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["status"] == "ok"

    health.beat()
    status, _, body = get(base + "/readyz")
    doc = json.loads(body)
    assert status == 503 and doc["status"] == "not_ready"
    assert set(doc["failing"]) == {"reference_ready", "broker_reachable"}

    health.set_reference_ready(True)
    health.progress()
    status, _, body = get(base + "/readyz")
    assert status == 200 and json.loads(body)["checks"]["broker_reachable"] is True
    status, _, _ = get(base + "/readyz?verbose=1")
    assert status == 200


def test_stuck_loop_fails_healthz(served):
    _, health, base = served
    health.beat()
    health._clock.t += health.stuck_after_s + 1
    status, _, body = get(base + "/healthz")
    assert status == 503 and json.loads(body)["status"] == "stuck"


def test_unknown_path_is_404(served):
    _, _, base = served
    assert get(base + "/")[0] == 404
    assert get(base + "/metrics/extra")[0] == 404


def test_head_has_no_body(served):
    _, _, base = served
    req = urllib.request.Request(base + "/metrics", method="HEAD")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200 and int(resp.headers["Content-Length"]) > 0 and resp.read() == b""


def test_port_in_use_is_a_readable_oserror():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = ObsServer(Metrics(), Health(), host="127.0.0.1", port=port)
        with pytest.raises(OSError, match=f"127.0.0.1:{port}.*in use"):
            server.start()


def test_two_servers_cannot_share_a_port():
    first = ObsServer(Metrics(), Health(), host="127.0.0.1", port=0)
    port = first.start()
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            ObsServer(Metrics(), Health(), host="127.0.0.1", port=port).start()
    finally:
        first.stop()


def test_stop_is_idempotent_and_frees_the_port():
    server = ObsServer(Metrics(), Health(), host="127.0.0.1", port=0)
    port = server.start()
    with pytest.raises(RuntimeError):
        server.start()
    server.stop()
    server.stop()
    with ObsServer(Metrics(), Health(), host="127.0.0.1", port=port) as again:
        assert again.port == port
        assert get(again.url + "/healthz")[0] == 200
