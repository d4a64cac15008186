"""Is the worker alive, is it ready, and how far has it got with recovering its tables.

``/livez`` answers while the worker's event loop runs: a liveness probe restarts a hung
process, never one waiting for Kafka (a broker outage must not restart every worker).
``/readyz`` answers 200 only once every readiness check holds, 503 with what is missing
otherwise. The first check is ``tables``: after a restart the worker reads its state back from
the changelogs (minutes for a large data dir) and judges nothing meanwhile; a rolling update
must wait for it before it takes the next worker down.

:class:`RecoveryProgress` turns Faust's recovery offsets into records read of records to read,
per table, for the log and for ``/readyz``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TableProgress:
    read: int
    total: int

    def describe(self) -> str:
        share = 100.0 * self.read / self.total if self.total else 100.0
        return f"{self.read:,} of {self.total:,} records ({share:.0f}%)"


@dataclass(slots=True)
class RecoveryProgress:
    """Records of the changelogs read since this recovery started, per table.

    ``start`` snapshots the offsets the recovery starts from (nothing recovered yet: -1);
    :meth:`of` then compares the offsets reached with each partition's last offset.
    """

    base: dict[Any, int | None] = field(default_factory=dict)

    def start(self, offsets: Mapping[Any, int | None]) -> None:
        self.base = dict(offsets)

    def of(self, offsets: Mapping[Any, int | None], highwaters: Mapping[Any, int | None],
           table_of: Callable[[Any], str]) -> dict[str, TableProgress]:
        read: dict[str, int] = {}
        total: dict[str, int] = {}
        for tp, highwater in highwaters.items():
            if highwater is None:  # Faust's "not known yet"
                continue
            base = _offset(self.base.get(tp))
            name = table_of(tp)
            read[name] = read.get(name, 0) + max(0, min(_offset(offsets.get(tp)), highwater) - base)
            total[name] = total.get(name, 0) + max(0, highwater - base)
        return {name: TableProgress(read[name], total[name]) for name in sorted(total)}


def _offset(value: int | None) -> int:
    return -1 if value is None else value


def summary(progress: Mapping[str, TableProgress]) -> str:
    """One line: the total, then each table."""
    overall = TableProgress(sum(p.read for p in progress.values()), sum(p.total for p in progress.values()))
    tables = "; ".join(f"{name} {p.describe()}" for name, p in progress.items())
    return f"{overall.describe()}" + (f": {tables}" if tables else "")


def tables_pending(completed: bool, recovering: bool, rebalancing: bool,
                   progress: Mapping[str, TableProgress]) -> str | None:
    """What the tables check waits for, in words (None once the tables are ready): "not
    recovering, everything read" alone left a reader guessing."""
    if completed and not recovering:
        return None
    if recovering:
        return f"recovering its tables from their changelogs: {summary(progress)}"
    if rebalancing:
        return "a rebalance of its consumer group: partitions are being assigned"
    return "its partitions: it has not joined its consumer group yet, or holds no partition"


@dataclass(slots=True)
class Readiness:
    """Named checks, each returning (ready, detail for ``/readyz``).

    The page names its process (``pid``): ``hcs run`` takes "ready" only from its own worker, not
    from another one that happens to answer on the port.
    """

    checks: dict[str, Callable[[], tuple[bool, dict[str, Any]]]] = field(default_factory=dict)
    pid: int = field(default_factory=os.getpid)

    def add(self, name: str, check: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        self.checks[name] = check

    def status(self) -> tuple[bool, dict[str, Any]]:
        results = {name: check() for name, check in self.checks.items()}
        ready = all(ok for ok, _ in results.values())
        return ready, {"ready": ready, "pid": self.pid,
                       "waiting_for": [name for name, (ok, _) in results.items() if not ok],
                       "checks": {name: {"ready": ok, **detail} for name, (ok, detail) in results.items()}}
