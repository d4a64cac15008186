"""The scale-out benchmark's own pieces, without a broker: what it reads of a worker's /metrics
and the table it prints (its runs are in docs/performance.md; no test asserts a figure)."""

from __future__ import annotations

import http.server
import threading
from types import SimpleNamespace
from typing import Any

from benchmarks.scaleout import Scale, Worker, scrape, table
from streams.dev.localkafka import free_port

PAGE = b"""# TYPE hcs_scans_total counter
hcs_scans_total{district="330106",venue_type="mall",decision="ALLOW"} 1200.0
hcs_scans_total{district="330110",venue_type="school",decision="DENY"} 34.0
# TYPE hcs_partitions_assigned gauge
hcs_partitions_assigned{topic="x.single.hcs.scans.v1"} 3.0
hcs_partitions_assigned{topic="x.single.hcs.entries.v1"} 5.0
"""


def test_it_reads_the_scans_judged_and_the_scan_partitions_owned() -> None:
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        worker = SimpleNamespace(port=server.server_address[1])
        assert scrape(worker, "x.single.hcs.scans.v1") == (1234, 3)  # type: ignore[arg-type]
    finally:
        server.shutdown()
        server.server_close()
    assert scrape(SimpleNamespace(port=free_port()), "t") is None  # type: ignore[arg-type]  # not up yet


def test_the_table_compares_with_one_worker_and_says_when_cores_are_shared() -> None:
    runs = [Scale("single", 1, 4.2, 4.2, 10.0, 150_000, 15_000.0, [Worker(150_000, 9.0, 8)]),
            Scale("single", 2, 5.0, 9.1, 10.0, 160_000, 16_000.0, [Worker(90_000, 6.0, 4), Worker(70_000, 5.0, 4)])]
    printed = table(runs, cpus=2)
    lines = printed.splitlines()
    assert "1.07x" in lines[2] and lines[2].endswith("4/4") and lines[1].endswith("8")
    assert "55%" in lines[2]  # CPU per worker: (6 + 5) / 2 over 10 s
    assert "not a speed-up" in printed
    assert "not a speed-up" not in table(runs, cpus=16)
