"""A worker judges nothing, and is not ready, until every replicated view is loaded."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson

from streams.contract import topics
from streams.kafka.patches.recovery import TableManager
from streams.kafka.views import ReplicatedView
from tests import factories as f
from tests.agents.conftest import feed, make_app, running, until


def decode(key: bytes | None, value: bytes | None) -> tuple[str, Any]:
    return (key or b"").decode(), None if value is None else orjson.loads(value)


def test_scans_wait_for_the_views_and_readyz_names_the_view_not_loaded() -> None:
    app, sink, _ = make_app()
    view: ReplicatedView[str, Any] = ReplicatedView.of("register", "register-topic", {}, decode)
    app.add_view(view)
    ready, detail = app.readiness.status()
    assert not ready and detail["checks"]["view register"] == {
        "ready": False, "topic": "register-topic", "keys": 0, "records": 0, "skipped": 0}

    async def scenario() -> None:
        await feed(app, "judge_scans", [(b"venue-1", f.encode(f.scan()), 0, None)], wait=False)
        await asyncio.sleep(0.3)
        assert sink.of(topics.DECISIONS) == []  # held: the register is not loaded
        assert not app.drains.inboxes["judge_scans"].idle
        view.apply(b"person-1", b'{"status": "isolating"}')
        view.caught_up.set()
        await until(lambda: app.drains.inboxes["judge_scans"].idle)
        assert len(sink.of(topics.DECISIONS)) == 1

    asyncio.run(running(app, scenario))
    assert view.data == {"person-1": {"status": "isolating"}}
    assert app.readiness.status()[1]["checks"]["view register"]["ready"] is True


def test_timers_wait_for_the_views_and_the_tables_and_readyz_says_what_they_wait_for() -> None:
    app, _, _ = make_app()
    view: ReplicatedView[str, Any] = ReplicatedView.of("register", "register-topic", {}, decode)
    app.add_view(view)
    ticked: list[int] = []
    flush = app.drains.flush

    def counting_flush() -> None:  # a tick that runs ends with one write of what it did
        ticked.append(1)
        flush()

    app.drains.flush = counting_flush
    recovery = cast(TableManager, app.tables).recovery

    async def scenario() -> None:
        recovery.completed.clear()
        await app.drains.ticks["tick_every_1s"]()
        assert ticked == []  # an isolation day closed now would have no residents
        assert app.readiness.status()[1]["checks"]["timers"] == {
            "ready": False, "waiting_for": ["view register", "tables"]}
        view.caught_up.set()
        await app.drains.ticks["tick_every_1s"]()
        assert ticked == []
        assert app.readiness.status()[1]["checks"]["timers"]["waiting_for"] == ["tables"]
        recovery.completed.set()
        await app.drains.ticks["tick_every_1s"]()
        assert len(ticked) == 1

    asyncio.run(running(app, scenario))
