"""Alert deduplication and the shapes of Alert and Decision records (pure functions).

A person alert's ``dedup_key`` is emitted once, then repeats within ``alert_dedup_minutes``
(event time) of that emission are counted, not emitted. The first repeat after the window is
emitted again and carries, in ``count`` and ``event_ids``, every occurrence since the previous
emission (itself included). Alert ids are derived from the dedup key and the first event id, so
a re-emission after a crash has the same ``alert_id`` and consumers can drop it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from streams.contract.records import Alert
from streams.times import rfc3339

MAX_EVENT_IDS = 100  # an alert lists at most this many event ids (the newest); count stays exact
_ALERT_NS = uuid.UUID("6f1c3a52-3f4e-4a5e-9d0f-2d4c8b7e9a10")


class AlertMemo(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What is remembered per dedup key: the last emission and what was folded since (in the
    changelog as a JSON array)."""

    emitted_at: float  # event time of the occurrence that was last emitted
    count: int  # occurrences since that emission, not yet emitted
    first_event_time: float
    last_event_time: float
    event_ids: tuple[str, ...]



@dataclass(frozen=True, slots=True)
class Occurrence:
    """The alert to emit now: how many occurrences it stands for and their span."""

    count: int
    first_event_time: float
    last_event_time: float
    event_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert to raise, before its id and times are derived: what every raiser fills in.

    ``occurrence`` is None for a person alert handed to admission (:func:`admit` decides whether
    and with which occurrence it goes out); ``venue_type`` is not written, it is told to the
    alert's observers (supervision counts a checkpoint's violations by it)."""

    kind: str
    severity: str
    dedup_key: str
    district: str
    venue_id: str
    policy_version: str
    occurrence: Occurrence | None = None
    checkpoint_id: str | None = None
    person_ref: str | None = None
    reasons: tuple[str, ...] = ()
    status: str = "firing"
    details: dict[str, Any] | None = None
    venue_type: str | None = None


def person_dedup_key(kind: str, person_ref: str, venue_id: str) -> str:
    return f"{kind}|{person_ref}|{venue_id}"


def checkpoint_dedup_key(kind: str, checkpoint_id: str, *more: str) -> str:
    """``kind|checkpoint_id`` (CHECKPOINT_SILENT) or ``kind|checkpoint_id|window_start`` (THREE_100_VIOLATION)."""
    return "|".join((kind, checkpoint_id, *more))


def admit(memo: AlertMemo | None, event_id: str, event_time: float,
          dedup_minutes: float) -> tuple[Occurrence | None, AlertMemo]:
    """Fold one occurrence into the memo of its dedup key; return what to emit (or None)."""
    if memo is None:
        occ = Occurrence(1, event_time, event_time, (event_id,))
        return occ, AlertMemo(event_time, 0, event_time, event_time, ())
    if event_time - memo.emitted_at <= dedup_minutes * 60:
        first = min(memo.first_event_time, event_time) if memo.count else event_time
        last = max(memo.last_event_time, event_time) if memo.count else event_time
        ids = (*memo.event_ids, event_id)[-MAX_EVENT_IDS:]
        return None, msgspec.structs.replace(memo, count=memo.count + 1, first_event_time=first,
                                             last_event_time=last, event_ids=ids)
    count = memo.count + 1
    first = min(memo.first_event_time, event_time) if memo.count else event_time
    ids = (*memo.event_ids, event_id)[-MAX_EVENT_IDS:] if memo.count else (event_id,)
    occ = Occurrence(count, first, event_time, ids)
    return occ, AlertMemo(event_time, 0, event_time, event_time, ())


def alert_id(dedup_key: str, first_event_id: str, status: str = "firing") -> str:
    return str(uuid.uuid5(_ALERT_NS, f"{dedup_key}|{first_event_id}|{status}"))


def alert_record(draft: AlertDraft) -> Alert:
    """The ``hcs.alert.v1`` record of a draft; its id is derived, so a re-sent copy is equal."""
    occurrence = draft.occurrence
    if occurrence is None:
        raise ValueError(f"{draft.kind}: an alert goes out with its occurrence")
    return Alert(
        alert_id=alert_id(draft.dedup_key, occurrence.event_ids[0] if occurrence.event_ids else
                          rfc3339(occurrence.first_event_time), draft.status),
        dedup_key=draft.dedup_key, kind=draft.kind, severity=draft.severity, district=draft.district,
        venue_id=draft.venue_id, checkpoint_id=draft.checkpoint_id, person_ref=draft.person_ref,
        reasons=list(draft.reasons), event_ids=list(occurrence.event_ids),
        first_event_time=rfc3339(occurrence.first_event_time), last_event_time=rfc3339(occurrence.last_event_time),
        count=occurrence.count, status=draft.status, policy_version=draft.policy_version, details=draft.details)
