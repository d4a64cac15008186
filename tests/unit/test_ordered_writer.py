"""Handled batches written in order, one write at a time, while the next are handled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from streams.kafka.consuming import OrderedWriter


class FakeStream:
    def __init__(self) -> None:
        self.acked: list[Any] = []

    async def ack_all(self, events: Sequence[Any]) -> None:
        self.acked.extend(events)


class Harness:
    """Seals are the events handled since the last seal; each write waits for its gate."""

    def __init__(self) -> None:
        self.stream = FakeStream()
        self.handled: list[str] = []
        self.seals: list[list[str]] = []
        self.gates: list[asyncio.Future[None]] = []
        self.written: list[list[str]] = []
        self.writer: OrderedWriter[list[str], str] = OrderedWriter(self.stream.ack_all, self.seal, self.write)

    def handle(self, *events: str) -> None:
        self.handled.extend(events)
        self.writer.handled(events)

    def seal(self) -> list[str]:
        sealed, self.handled = self.handled, []
        self.seals.append(sealed)
        return sealed

    async def write(self, sealed: list[str]) -> None:
        gate = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        await gate
        self.written.append(sealed)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_batches_handled_during_a_write_share_the_next_write_and_are_acked_after_it() -> None:
    async def scenario() -> None:
        h = Harness()
        h.handle("a1", "a2")
        h.handle("b1")  # the first write is in flight: b waits for the next one
        h.handle("c1")
        await settle()
        assert h.seals == [["a1", "a2"]] and h.stream.acked == [] and h.writer.backlog == 2
        h.gates[0].set_result(None)
        await settle()
        assert h.written == [["a1", "a2"]] and h.stream.acked == ["a1", "a2"]
        assert h.seals == [["a1", "a2"], ["b1", "c1"]]  # sealed as soon as the write before was done
        await settle()
        h.gates[1].set_result(None)
        await h.writer.finish()
        assert h.stream.acked == ["a1", "a2", "b1", "c1"]

    asyncio.run(scenario())


def test_a_failed_write_stops_every_later_write_and_is_raised() -> None:
    async def scenario() -> None:
        h = Harness()
        h.handle("a1")
        h.handle("b1")
        await settle()
        h.gates[0].set_exception(OSError("broker unreachable"))
        await settle()
        with pytest.raises(OSError, match="unreachable"):
            h.writer.check()
        h.handle("c1")
        with pytest.raises(OSError):
            await h.writer.finish()
        assert h.seals == [["a1"]] and h.stream.acked == []

    asyncio.run(scenario())


def test_finish_returns_once_the_write_in_flight_and_what_was_handled_meanwhile_are_written() -> None:
    async def scenario() -> None:
        h = Harness()
        h.handle("a1")
        h.handle("b1")
        finishing = asyncio.ensure_future(h.writer.finish())
        await settle()
        assert not finishing.done()
        h.gates[0].set_result(None)
        await settle()
        assert not finishing.done()  # b1 is being written now
        await settle()
        h.gates[1].set_result(None)
        await finishing
        assert h.written == [["a1"], ["b1"]] and h.stream.acked == ["a1", "b1"]

    asyncio.run(scenario())
