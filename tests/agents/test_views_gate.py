"""A worker judges nothing, and is not ready, until every replicated view is loaded."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from streams import topics
from streams.app import HcsApp
from streams.views import ReplicatedView
from tests import factories as f
from tests.agents.conftest import RecordingSink, make_app


def decode(key: bytes | None, value: bytes | None) -> tuple[str, Any]:
    return (key or b"").decode(), None if value is None else orjson.loads(value)


def test_scans_wait_for_the_views_and_readyz_names_the_view_not_loaded() -> None:
    app, sink, _ = make_app()
    view: ReplicatedView[str, Any] = ReplicatedView("register", "register-topic", {}, decode)
    app.add_view(view)
    ready, detail = app.readiness.status()
    assert not ready and detail["checks"]["view register"] == {
        "ready": False, "topic": "register-topic", "keys": 0, "records": 0, "skipped": 0}

    async def scenario(app: HcsApp, sink: RecordingSink) -> None:
        async with app.agents["judge_scans"].test_context() as ctx:
            put = asyncio.ensure_future(ctx.put(value=f.encode(f.scan()), key=b"venue-1", partition=0))
            await asyncio.sleep(0.3)
            assert sink.of(topics.DECISIONS) == []  # held: the register is not loaded
            view.apply(b"person-1", b'{"status": "isolating"}')
            view.caught_up.set()
            await asyncio.wait_for(put, 5)
        assert len(sink.of(topics.DECISIONS)) == 1

    asyncio.run(scenario(app, sink))
    assert view.data == {"person-1": {"status": "isolating"}}
    assert app.readiness.status()[1]["checks"]["view register"]["ready"] is True
