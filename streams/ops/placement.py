"""Where each record of a venue table's changelog goes when the venue partitions grow (``hcs
migrate``, :mod:`streams.ops.migrate`): a pure function of the record, the keyspace it belongs
to and the two partition counts; no Kafka here.

A venue's state goes where the venue's records will go (murmur2 of the venue id modulo the new
count); what is looked up by an id that names no venue (dedup marks, alert memos) goes to every
new partition that inherits the old one's venues — with the new count a multiple of the old one,
the partitions ``q`` with ``q mod old == p``; what belongs to a partition number stays at it.
Every keyspace of the worker says how it moves (:data:`STATE_MOVES`, a unit test holds it): a key
of no known keyspace is refused rather than guessed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from streams.concepts.alerting import ALERT_PREFIX
from streams.concepts.intake import DEAD_LETTER_PREFIX, DEDUP_PREFIX
from streams.concepts.isolation import POINT_PREFIX
from streams.concepts.minutes import CLOSED_PREFIX, MINUTE_PREFIX
from streams.concepts.rechecks import RECHECK_PREFIX
from streams.concepts.silence import CHECKPOINT_PREFIX
from streams.concepts.supervision import ENDED_PREFIX, FINDING_PREFIX, TALLY_PREFIX, VERIFIED_PREFIX
from streams.concepts.tracing import COMBINE_PREFIX, EXPOSED_PREFIX, NAT_CASE_MARK, TRACE_PREFIX
from streams.concepts.visits import VENUE_PREFIX
from streams.concepts.windows import WINDOW_PREFIX
from streams.kafka.output import partition_for
from streams.kafka.state import PARTITION_SPAN

# How the records of each keyspace of the venue tables move (a key's prefix, up to its first "|"):
VENUE_FIRST = "venue in key"  # to its venue's partition, the venue the key's first field
VENUE_LAST = "venue last in key"  # ... the key's last field
VENUE_IN_VALUE = "venue in value"  # ... the value's venue_id (its tombstone follows it)
CASE = "by case"  # the key is a case id: to the partition of its trace reports
EVERY = "to every heir"  # looked up by an id that names no venue: every partition inheriting the old one's venues
SAME = "same partition"  # belongs to a partition number: it stays at it
DROP = "dropped"  # positions of the old generation's records: meaningless in the new one

STATE_MOVES: dict[str, str] = {
    VENUE_PREFIX: VENUE_FIRST, POINT_PREFIX: VENUE_FIRST, RECHECK_PREFIX: VENUE_FIRST, FINDING_PREFIX: VENUE_FIRST,
    ENDED_PREFIX: VENUE_FIRST, VERIFIED_PREFIX: VENUE_FIRST, EXPOSED_PREFIX: VENUE_LAST,
    CHECKPOINT_PREFIX: VENUE_IN_VALUE, WINDOW_PREFIX: VENUE_IN_VALUE, COMBINE_PREFIX: CASE,
    ALERT_PREFIX: EVERY, TALLY_PREFIX: EVERY, NAT_CASE_MARK: EVERY,
    # A case's trace mark says the partition traced it: a new partition without one traces the
    # case again over the visits it inherited (contacts already exposed are not exposed again).
    TRACE_PREFIX: SAME, MINUTE_PREFIX: SAME, CLOSED_PREFIX: SAME,
}
SEEN_MOVES: dict[str, str] = {DEDUP_PREFIX: EVERY, DEAD_LETTER_PREFIX: DROP}


def _prefix(key: str) -> str:
    return key[:key.index("|") + 1] if "|" in key else key


def descendants(partition: int, old: int, new: int) -> list[int]:
    """The new partitions that inherit the venues of old ``partition`` (``new`` a multiple of ``old``)."""
    return list(range(partition, new, old))


class Placer:
    """Where each record of a venue table's changelog goes in the new generation.

    ``moves`` maps each keyspace prefix to its rule; a value-placed key remembers its partition,
    so that its tombstone follows it. A key of no known keyspace is refused: a new keyspace must
    say how it moves (:data:`STATE_MOVES`).
    """

    def __init__(self, moves: dict[str, str], old: int, new: int) -> None:
        self.moves, self.old, self.new = moves, old, new
        self._placed: dict[str, int] = {}
        self.counts: Counter[str] = Counter()

    def place(self, key: str, value: Any, partition: int) -> list[int]:
        """The new partitions of one record (``value`` None: a tombstone) read from old ``partition``."""
        prefix = _prefix(key)
        move = self.moves.get(prefix)
        if move is None:
            raise ValueError(f"state key of no known keyspace ({prefix!r}): say how it moves in STATE_MOVES")
        self.counts[move] += 1
        if move == VENUE_FIRST:
            return [partition_for(key[len(prefix):].split("|", 1)[0].encode(), self.new)]
        if move == VENUE_LAST:
            return [partition_for(key.rsplit("|", 1)[1].encode(), self.new)]
        if move == CASE:
            return [partition_for(key[len(prefix):].encode(), self.new)]
        if move == VENUE_IN_VALUE:
            if value is None:
                placed = self._placed.pop(key, None)
                return [] if placed is None else [placed]
            placed = self._placed[key] = partition_for(str(value[1]["venue_id"]).encode(), self.new)
            return [placed]
        if move == EVERY:
            return descendants(partition, self.old, self.new)
        if move == SAME:
            return [partition]
        return []  # DROP


def state_record(key: bytes, value: bytes | None, partition: int, placer: Placer
                 ) -> list[tuple[int, bytes, bytes | None]]:
    """A record of a ``[partition, payload]`` table (state) as it goes to the new changelog."""
    decoded = None if value is None else orjson.loads(value)
    out = []
    for q in placer.place(orjson.loads(key), decoded, partition):
        out.append((q, key, None if decoded is None else orjson.dumps([q, decoded[1]])))
    return out


def seen_record(key: bytes, value: bytes | None, partition: int, placer: Placer
                ) -> list[tuple[int, bytes, bytes | None]]:
    """A dedup table's record (a mark packs its partition: ``expiry * PARTITION_SPAN + partition``)."""
    mark = None if value is None else int(orjson.loads(value))
    return [(q, key, None if mark is None else str(mark // PARTITION_SPAN * PARTITION_SPAN + q).encode())
            for q in placer.place(orjson.loads(key), mark, partition)]


def visit_record(key: bytes, value: bytes | None, partition: int, new: int) -> list[tuple[int, bytes, bytes | None]]:
    """A visit's record (``v`` venue ``\\0`` ...): to its venue's partition."""
    return [(partition_for(key[1:].split(b"\0", 1)[0], new), key, value)]
