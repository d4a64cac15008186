"""The worker's probes while it waits for its cluster at start, before its web server exists.

``hcs worker`` makes its topics before Faust starts, waiting out a cluster that cannot be reached
(one line, then retries). Meanwhile a liveness probe must see a live process (a Kafka outage must
not get every worker restarted) and a readiness probe a clear "not yet": this serves ``/livez``
(200) and ``/readyz`` (503, ``"waiting_for": ["kafka"]``, in the shape of the worker's own) on the web port until
the wait is over; the worker's own pages take the port then.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's name
        if self.path == "/livez":
            self._answer(200, b"ok\n", "text/plain")
        elif self.path == "/readyz":
            # The shape of the worker's own /readyz: its checks, none ready yet, Kafka awaited.
            body = json.dumps({"ready": False, "pid": os.getpid(), "waiting_for": ["kafka"], "checks": {
                "kafka": {"ready": False, "detail": "it reaches its cluster and checks its topics before it starts"},
                "tables": {"ready": False, "recovering": False, "tables": {}}}}).encode()
            self._answer(503, body, "application/json")
        else:
            self._answer(404, b"not found\n", "text/plain")

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass  # probes every few seconds: no log line each


@contextmanager
def probes_while_waiting(host: str, port: int) -> Iterator[None]:
    """Serve the waiting pages on ``host:port`` for the block; the port is free again after."""
    server = http.server.ThreadingHTTPServer((host, port), _Pages)
    thread = threading.Thread(target=server.serve_forever, name="hcs-waiting-probes", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
