"""HTTP endpoints for Prometheus and the orchestrator: ``/metrics``, ``/healthz``, ``/readyz``.

Served by a :class:`http.server.ThreadingHTTPServer` in a daemon thread, so the asyncio loop of the
daemon is never involved in answering a probe (a stuck loop therefore shows up as a failing
``/healthz`` instead of a hanging one). No per-request logging.

- ``GET /metrics``: :meth:`Metrics.exposition`, content type ``CONTENT_TYPE_LATEST``;
- ``GET /healthz`` / ``GET /readyz``: 200 or 503 with the JSON body of :class:`Health`;
- anything else: 404 (``HEAD`` is answered like ``GET`` without a body).

>>> from driftcal.obs.health import Health
>>> from driftcal.obs.metrics import Metrics
>>> with ObsServer(Metrics(), Health(), host="127.0.0.1", port=0) as server:
...     server.port > 0
True
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from driftcal.obs.health import Health
from driftcal.obs.metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_PORT = 9108


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # SO_REUSEADDR: rebinding after a restart, not sharing a live port
    allow_reuse_port = False


def _handler(metrics: Metrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "driftcal-obs"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes, content_type: str, head: bool) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _answer(self, head: bool) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            try:
                if path == "/metrics":
                    self._send(200, metrics.exposition(), CONTENT_TYPE_LATEST, head)
                elif path in ("/healthz", "/readyz"):
                    ok, body = health.healthz() if path == "/healthz" else health.readyz()
                    data = (json.dumps(body, sort_keys=True) + "\n").encode()
                    self._send(200 if ok else 503, data, "application/json", head)
                else:
                    data = b'{"error": "not found", "paths": ["/metrics", "/healthz", "/readyz"]}\n'
                    self._send(404, data, "application/json", head)
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception:
                log.exception("obs server: error answering %s", path)
                with contextlib.suppress(OSError):
                    self._send(500, b'{"error": "internal"}\n', "application/json", head)

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

    return Handler


class ObsServer:
    """Serve ``metrics`` and ``health`` over HTTP from a daemon thread.

    ``port=0`` binds an ephemeral port; :meth:`start` returns the port actually bound. A taken port
    raises :class:`OSError` whose message names ``host:port``.
    """

    def __init__(
        self, metrics: Metrics, health: Health, host: str = "0.0.0.0", port: int = DEFAULT_PORT
    ) -> None:
        self.metrics, self.health = metrics, health
        self.host, self.port = host, int(port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server (``http://host:port``)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> int:
        """Bind and start serving; returns the bound port. Starting twice is an error."""
        if self._server is not None:
            raise RuntimeError(f"ObsServer already running on {self.host}:{self.port}")
        server_cls = _Server
        if ":" in self.host:  # IPv6 literal such as "::"
            server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            server = server_cls((self.host, self.port), _handler(self.metrics, self.health))
        except OSError as exc:
            hint = " (port already in use: another driftcal daemon or exporter?)"
            hint = hint if exc.errno == errno.EADDRINUSE else ""
            raise OSError(
                exc.errno,
                f"cannot serve metrics/health on {self.host}:{self.port}: {exc.strerror or exc}{hint}",
            ) from exc
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"obs-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("serving /metrics, /healthz, /readyz on %s:%d", self.host, self.port)
        return self.port

    def stop(self) -> None:
        """Stop serving and close the socket; a no-op when not running."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ObsServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
