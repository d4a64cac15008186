"""Re-keying: what is read under one key but belongs under another goes through an internal topic.

One mechanism for every use: an internal topic of the worker (``<app id>-<name>``, declared in
:data:`streams.contract.topics.INTERNAL`), written through the worker's outputs in the batch
that raised it (so in its transaction) and keyed by the new key, whose partition's owner reads
it as an input of the concept it belongs to. :func:`forward` sends one record so (a breach by an
isolation point's resident, raised on another venue's partition, goes to the point's findings).
Aggregates add watermarks on top, below.

Aggregates: figures kept per source partition, merged under a new key by that key's owner.
Some figures cannot be kept where their records are read: a district's scans are spread over
every venue partition. Each source partition keeps its part of a figure (in its own state) and,
once its stream time has passed the part's position (a minute's end, plus the grace), sends it
keyed by the new key (:func:`part`), followed by a watermark to every partition of the internal
topic (:func:`watermark`): "everything of mine up to ``through`` is sent". The partition of the
internal topic that a key hashes to owns it: :class:`Owner` keeps the parts per source (a part
sent again replaces, never adds) and emits the merged figure of a position once every source's
watermark has passed it. Sources are the partitions of the topic the parts come from.

Records of the internal topic: ``{"source", "key", "at", "part"}`` and ``{"source", "through"}``.
(A part written by hcs 0.1.0 named them ``district``, ``minute`` and ``figures``; still read.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson

from streams.contract.encoding import encode
from streams.contract.records import Part, Watermark
from streams.contract.topics import INTERNAL, TopicSpec
from streams.kafka.state import PartitionedState

Merged = TypeVar("Merged")


def forward(send: Callable[[TopicSpec, bytes | None, bytes], None], spec: TopicSpec, key: str, value: bytes) -> None:
    """Send ``value`` to the partition of ``key`` on the internal topic ``spec``, for its owner."""
    if spec not in INTERNAL:
        raise ValueError(f"{spec.name} is not an internal topic of the worker")
    send(spec, key.encode(), value)


def part(source: int, key: str, at: float, payload: Any) -> bytes:
    """A source partition's part of the figure of ``key`` at position ``at``."""
    return encode(Part(source, key, at, payload))


def watermark(source: int, through: float) -> bytes:
    """Every part of ``source`` at a position up to ``through`` was sent (to every owner partition)."""
    return encode(Watermark(source, through))


class Owner(Generic[Merged]):
    """The owner side of one re-keying, on its own prefixes of a state table.

    ``merge`` folds the parts of one key and position (JSON, as sent) into a figure; ``emit``
    gets each figure once, with its key and position, in no particular order across keys.
    """

    def __init__(self, name: str, state: PartitionedState, sources: int,
                 merge: Callable[[list[Any]], Merged], emit: Callable[[str, float, Merged], None],
                 prefix: str | None = None) -> None:
        self.name = name
        self.state = state
        self.sources = sources
        self.merge = merge
        self.emit = emit
        # Its keys in the state table (``prefix`` defaults to "<name>|"; the district statistics
        # keep the bare prefixes they were written with before this module).
        base = f"{name}|" if prefix is None else prefix
        self.pending = state.keyspace(f"{base}p|")  # key|at -> {source: part}
        self.marks = state.keyspace(f"{base}wm|")  # owner partition -> {source: through}
        self.done = state.keyspace(f"{base}done|")  # owner partition -> last position emitted

    def on_record(self, value: bytes, partition: int) -> int:
        """Handle one part or watermark read from ``partition``; return how many figures were emitted."""
        message: dict[str, Any] = orjson.loads(value)
        if "through" in message:
            return self._on_watermark(int(message["source"]), float(message["through"]), partition)
        key = message["key"] if "key" in message else message["district"]
        at = float(message["at"] if "at" in message else message["minute"])
        self._on_part(str(message["source"]), key, at, message["part"] if "part" in message else message["figures"],
                      partition)
        return 0

    def _on_part(self, source: str, key: str, at: float, payload: Any, partition: int) -> None:
        done = self.done.get(f"{self.done.prefix}{partition}")
        if done is not None and at <= done:
            return  # sent again after its position was emitted
        state_key = f"{self.pending.prefix}{key}|{at}"
        parts = dict(self.pending.get(state_key) or {})
        parts[source] = payload
        self.pending.set(state_key, parts, partition)

    def _on_watermark(self, source: int, through: float, partition: int) -> int:
        marks_key = f"{self.marks.prefix}{partition}"
        marks = dict(self.marks.get(marks_key) or {})
        if through <= marks.get(str(source), float("-inf")):
            return 0
        marks[str(source)] = through
        self.marks.set(marks_key, marks, partition)
        if len(marks) < self.sources:
            return 0  # some source has not reported yet
        low = min(marks.values())
        done_key = f"{self.done.prefix}{partition}"
        done = self.done.get(done_key)
        if done is not None and low <= done:
            return 0
        emitted = 0
        prefix_len = len(self.pending.prefix)
        for state_key, owner, parts in self.pending.items():
            if owner != partition:
                continue
            key, at_text = state_key[prefix_len:].rsplit("|", 1)
            at = float(at_text)
            if at > low:
                continue
            self.emit(key, at, self.merge(list(parts.values())))
            self.pending.delete(state_key)
            emitted += 1
        self.done.set(done_key, low, partition)
        return emitted
