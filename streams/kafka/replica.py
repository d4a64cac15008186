"""A replica of a compacted topic: the latest value of each key, kept as its records are read.

Pure: it is handed records (by a :class:`streams.kafka.views.ReplicatedView` in the worker, or by a
test) and decodes and applies them; the concepts that hold one (the register, the policy feed)
import nothing of Kafka's clients or Faust.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

# (key, value) of a record -> (view key, value or None to remove it); raise ValueError if invalid.
Decoder = Callable[[bytes | None, bytes | None], tuple[K, V | None]]


class Where(NamedTuple):
    """Where a record of a view's topic came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


class InvalidRecord(ValueError):
    """A record a view's decoder refuses, with what the decoder made of it."""

    def __init__(self, detail: str, refused: Any = None) -> None:
        super().__init__(detail)
        self.refused = refused  # what the decoder made of it (the register: a Rejected)


class Replica(Generic[K, V]):
    """The current value of every key of ``topic``, from the records applied in offset order.

    A record the decoder cannot read is skipped and counted (``skipped``), and handed to
    ``on_invalid``: it is the producer's to fix, and one bad record must not stop every worker.
    The key's previous value stays.
    """

    def __init__(self, name: str, topic: str, decode: Decoder[K, V],
                 on_change: Callable[[K, V | None, V | None], None] | None = None,
                 on_invalid: Callable[[Where, bytes | None, ValueError], None] | None = None) -> None:
        self.name = name
        self.topic = topic
        self.decode = decode
        self.on_change = on_change  # (key, old value, new value), after the change
        self.on_invalid = on_invalid  # (where, value, error) of a record that could not be decoded
        self.data: dict[K, V] = {}
        self.records = 0  # read since the start
        self.skipped = 0  # could not be decoded

    def apply(self, key: bytes | None, value: bytes | None, partition: int = 0, offset: int = -1) -> None:
        """One record of the topic, in offset order."""
        self.records += 1
        try:
            view_key, decoded = self.decode(key, value)
        except (ValueError, TypeError, KeyError) as exc:
            self.skipped += 1
            # The reason's code only: a detail may quote the value, which may hold person data.
            log.warning("view %s: skipped record %s[%d]@%d: %s", self.name, self.topic, partition, offset,
                        getattr(getattr(exc, "refused", None), "reason", None) or type(exc).__name__)
            if self.on_invalid is not None:
                error = exc if isinstance(exc, ValueError) else ValueError(type(exc).__name__)
                self.on_invalid(Where(self.topic, partition, offset, key), value, error)
            return
        old = self.data.pop(view_key, None) if decoded is None else self.data.get(view_key)
        if decoded is not None:
            self.data[view_key] = decoded
        if self.on_change is not None:
            self.on_change(view_key, old, decoded)
