"""Batches acknowledged only once handled (streams.kafka.consuming), in Faust's test context."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import pytest

from streams.kafka import consuming

Persist = Callable[[list[Any]], Awaitable[None]]


def make_agent(persist: Persist, finish_on_stop: bool = True) -> tuple[Any, list[list[Any]]]:
    app = faust.App(f"consuming-test-{uuid.uuid4().hex[:8]}", store="memory://", autodiscover=False)
    app.finalize()
    app.flow_control.resume()
    topic = app.topic("records", value_serializer="raw")
    batches: list[list[Any]] = []

    @app.agent(topic)
    async def handle(stream: Any) -> None:
        async for events in consuming.batches(stream, 3, 0.01):
            batches.append(list(events))
            await consuming.complete(consuming.stream_ack(stream), events, functools.partial(persist, list(events)),
                                     finish_on_stop=finish_on_stop)

    return handle, batches


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


def acked(events: list[Any]) -> list[bool]:
    return [event.message.acked for event in events]


def test_a_batch_is_acknowledged_only_after_its_persist_step_and_holds_at_most_max_events() -> None:
    gate = asyncio.Event()
    persisted: list[int] = []

    async def persist(events: list[Any]) -> None:
        await gate.wait()
        persisted.append(len(events))

    agent, batches = make_agent(persist)

    async def scenario() -> None:
        async with agent.test_context() as ctx:
            for i in range(5):
                await ctx.put(value=b"%d" % i, partition=0, wait=False)
            await eventually(lambda: len(batches) == 1)
            assert [e.value for e in batches[0]] == [b"0", b"1", b"2"]  # full at three
            await asyncio.sleep(0.05)
            assert acked(batches[0]) == [False, False, False]  # persist has not finished
            gate.set()
            await eventually(lambda: len(batches) == 2 and all(acked(batches[1])))
            assert all(acked(batches[0]))
            assert [e.value for e in batches[1]] == [b"3", b"4"]  # the rest, after `within`

    asyncio.run(scenario())
    assert persisted == [3, 2]


def test_a_failed_persist_acknowledges_nothing_and_crashes_the_agent() -> None:
    async def persist(events: list[Any]) -> None:
        raise ConnectionError("broker unreachable")

    agent, batches = make_agent(persist)

    async def scenario() -> None:
        async with agent.test_context() as ctx:
            await ctx.put(value=b"a", partition=0, wait=False)
            await ctx.put(value=b"b", partition=0, wait=False)
            await eventually(lambda: len(batches) == 1)
            actor = next(iter(ctx._actors))
            await eventually(lambda: actor.crash_reason is not None)
            assert isinstance(actor.crash_reason, ConnectionError)
            assert acked(batches[0]) == [False, False]

    asyncio.run(scenario())


@pytest.mark.parametrize("finish_on_stop", [True, False])
def test_a_stop_during_persist_finishes_the_batch_first_unless_told_not_to(finish_on_stop: bool) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[int] = []

    async def persist(events: list[Any]) -> None:
        started.set()
        await release.wait()
        finished.append(len(events))

    async def scenario() -> list[bool]:
        agent, batches = make_agent(persist, finish_on_stop)
        async with agent.test_context() as ctx:
            await ctx.put(value=b"a", partition=0, wait=False)
            await started.wait()
            actor = next(iter(ctx._actors))
            actor.actor_task.cancel()  # what stopping the worker (or a rebalance) does to the agent
            await asyncio.sleep(0.05)
            release.set()
            await asyncio.sleep(0.05)
            return acked(batches[0])

    result = asyncio.run(scenario())
    assert result == [finish_on_stop]
    assert finished == ([1] if finish_on_stop else [])
