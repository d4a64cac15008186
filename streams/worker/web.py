"""The worker's web pages: ``/metrics`` for Prometheus, ``/livez`` and ``/readyz`` for probes."""

from __future__ import annotations

from typing import Any, cast

import faust

from streams.kafka.patches.recovery import TableManager
from streams.kafka.readiness import Readiness, tables_pending
from streams.metrics import Metrics


def wire_web(app: faust.App, metrics: Metrics, readiness: Readiness) -> None:
    """The pages, on the app's web server: served from the worker's start."""

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    def tables_recovered() -> tuple[bool, dict[str, Any]]:
        recovery = cast(TableManager, app.tables).recovery
        progress = recovery.progress()
        pending = tables_pending(recovery.completed.is_set(), recovery.in_recovery, app.rebalancing, progress)
        return recovery.ready, {"recovering": recovery.in_recovery,
                                **({"pending": pending} if pending else {}),
                                "tables": {name: {"read": p.read, "total": p.total} for name, p in progress.items()}}

    readiness.add("tables", tables_recovered)

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        return web.text("ok\n")  # the event loop answers: alive (Kafka's state is not asked)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready, detail = readiness.status()
        return web.json(detail, status=200 if ready else 503)
