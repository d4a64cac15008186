"""Silent checkpoints: a checkpoint that reported before and then nothing for a while.

"Nothing" is judged on two clocks, and both must agree: no record of a later event time for
``silent_after_minutes`` of stream time, and no record uploaded for as long of upload time (the
Kafka record timestamps). A device sending its buffer late is alive; a backlog read after an
outage is judged by when its records were sent, not by when this worker read them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from streams.concepts.alerting import Alerts
from streams.concepts.base import Input, Timer
from streams.concepts.minutes import DistrictMinutes
from streams.kafka.state import PartitionedState
from streams.rules import codes as c
from streams.rules.alerts import AlertDraft, Occurrence, checkpoint_dedup_key
from streams.rules.compliance import DistrictMinute, StreamClock
from streams.rules.policy import Policy
from streams.times import rfc3339

CHECKPOINT_PREFIX = "c|"  # checkpoint -> last report, silent or not
TICK_S = 1.0


@dataclass(frozen=True, slots=True)
class CheckpointStatus:
    """What is known of a checkpoint (written to the changelog as this dict)."""

    seen: float  # the latest event time it reported
    heard: float  # the latest upload time of its records (-inf: state from before they were kept)
    silent: bool
    district: str
    venue_id: str
    venue_type: str

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CheckpointStatus:
        heard = raw.get("heard")  # absent, or null for -inf written by JSON
        return cls(raw["seen"], -math.inf if heard is None else heard, raw["silent"], raw["district"],
                   raw["venue_id"], raw["venue_type"])

    def to_json(self) -> dict[str, Any]:  # by hand: dataclasses.asdict deep-copies (~5 us a call)
        return {"seen": self.seen, "heard": self.heard, "silent": self.silent, "district": self.district,
                "venue_id": self.venue_id, "venue_type": self.venue_type}


class Checkpoints:
    def __init__(self, state: PartitionedState, alerts: Alerts, minutes: DistrictMinutes, clock: StreamClock,
                 uploads: StreamClock, policy: Policy, owned: Callable[[], set[int]]) -> None:
        self.statuses = state.keyspace(CHECKPOINT_PREFIX)
        # Quiet on both clocks: indexed by each (a checkpoint's times only grow; the index holds
        # the time its quiet could first be reached, checked and deferred when it surfaces).
        self.by_stream = self.statuses.due_index(lambda raw: None if raw["silent"] else self._quiet_from(raw["seen"],
                                                                                                         raw),
                                                 monotone=True)
        self.by_upload = self.statuses.due_index(lambda raw: None if raw["silent"] else self._quiet_from(
            raw.get("heard") if raw.get("heard") is not None else -math.inf, raw), monotone=True)
        self.alerts = alerts
        self.minutes = minutes
        self.clock = clock
        self.uploads = uploads
        self.policy = policy
        self.owned = owned

    def inputs(self) -> Sequence[Input]:
        return ()  # told by the judging of scans and by the entry counts

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.check),)

    def reported(self, checkpoint_id: str, first_t: float, last_t: float, uploaded: float, district: str,
                 venue_id: str, venue_type: str, version: str, partition: int) -> None:
        """A checkpoint reported records of event times ``first_t`` .. ``last_t`` (in the order
        read), uploaded at ``uploaded``; a silent one is resolved."""
        key = CHECKPOINT_PREFIX + checkpoint_id
        raw = self.statuses.get(key)
        if raw is None:
            seen, heard = last_t, uploaded
        else:  # read as CheckpointStatus would, without building one: this runs for every record
            if raw["silent"]:
                self._alert(checkpoint_id, district, venue_id, "resolved", Occurrence(1, raw["seen"], first_t, ()),
                            version, {"silent_since": rfc3339(raw["seen"]), "reported_again_at": rfc3339(first_t)},
                            self.minutes.minute(partition, district, first_t)[0], partition)
            before = raw.get("heard")
            seen, heard = max(raw["seen"], last_t), uploaded if before is None else max(before, uploaded)
        self.statuses.set(key, {"seen": seen, "heard": heard, "silent": False, "district": district,
                                "venue_id": venue_id, "venue_type": venue_type}, partition)

    def check(self, now: float) -> int:
        """Raise CHECKPOINT_SILENT for the checkpoints quiet on both clocks for ``silent_after_minutes``."""
        fired = 0
        for partition in sorted(self.owned()):
            stream_now, upload_now = self.clock.now(partition, now), self.uploads.now(partition, now)
            due = self.by_stream.pop_due(partition, stream_now) + self.by_upload.pop_due(partition, upload_now)
            for key in dict.fromkeys(due):
                raw = self.statuses.get(key)
                if raw is not None and not raw["silent"] and self._silent(key, raw, partition, stream_now, upload_now):
                    fired += 1
        return fired

    def _quiet_from(self, t: float, raw: dict[str, Any]) -> float:
        """When a checkpoint last heard of at ``t`` (on either clock) is quiet, by the policy then."""
        _, params = self.policy.params(t, raw["district"], raw["venue_type"])
        return t + params.silent_after_minutes * 60

    def _silent(self, key: str, raw: dict[str, Any], partition: int, stream_now: float, upload_now: float) -> bool:
        """Raise CHECKPOINT_SILENT if the checkpoint is quiet on both clocks; else index it again."""
        status = CheckpointStatus.from_json(raw)
        version, params = self.policy.params(stream_now, status.district, status.venue_type)
        quiet_s = params.silent_after_minutes * 60
        if stream_now - status.seen < quiet_s:
            self.by_stream.defer(key, partition, status.seen + quiet_s)
        if upload_now - status.heard < quiet_s:
            self.by_upload.defer(key, partition, status.heard + quiet_s)
        if stream_now - status.seen < quiet_s or upload_now - status.heard < quiet_s:
            return False
        checkpoint_id = key[len(CHECKPOINT_PREFIX):]
        self.statuses.set(key, replace(status, silent=True).to_json(), partition)
        self._alert(checkpoint_id, status.district, status.venue_id, "firing",
                    Occurrence(1, status.seen, status.seen, ()), version,
                    {"silent_since": rfc3339(status.seen), "silent_after_minutes": params.silent_after_minutes},
                    self.minutes.minute(partition, status.district, stream_now)[0], partition)
        return True

    def _alert(self, checkpoint_id: str, district: str, venue_id: str, status: str, occurrence: Occurrence,
               version: str, details: dict[str, Any], minute: DistrictMinute, partition: int) -> None:
        self.alerts.emit(AlertDraft(
            c.CHECKPOINT_SILENT, c.WARNING, checkpoint_dedup_key(c.CHECKPOINT_SILENT, checkpoint_id), district,
            venue_id, version, occurrence, checkpoint_id=checkpoint_id, status=status, details=details),
            minute, partition)
