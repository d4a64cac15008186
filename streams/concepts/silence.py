"""Silent checkpoints: a checkpoint that reported before and then nothing for a while.

"Nothing" is judged on two clocks, and both must agree: no record of a later event time for
``silent_after_minutes`` of stream time, and no record uploaded for as long of upload time (the
Kafka record timestamps). A device sending its buffer late is alive; a backlog read after an
outage is judged by when its records were sent, not by when this worker read them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

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


class CheckpointStatus(msgspec.Struct, gc=False):
    """What is known of a checkpoint."""

    seen: float  # the latest event time it reported
    silent: bool
    district: str
    venue_id: str
    venue_type: str
    # The latest upload time of its records; None: state from before they were kept (absent,
    # or -inf, which JSON writes as null).
    heard: float | None = None

    @property
    def heard_at(self) -> float:
        return -math.inf if self.heard is None else self.heard


class Checkpoints:
    def __init__(self, state: PartitionedState, alerts: Alerts, minutes: DistrictMinutes, clock: StreamClock,
                 uploads: StreamClock, policy: Policy, owned: Callable[[], set[int]]) -> None:
        self.statuses = state.typed(CHECKPOINT_PREFIX, CheckpointStatus)
        # Quiet on both clocks: indexed by each (a checkpoint's times only grow; the index holds
        # the time its quiet could first be reached, checked and deferred when it surfaces).
        self.by_stream = self.statuses.due_index(
            lambda status: None if status.silent else self._quiet_from(status.seen, status), monotone=True)
        self.by_upload = self.statuses.due_index(
            lambda status: None if status.silent else self._quiet_from(status.heard_at, status), monotone=True)
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
        status = self.statuses.get(key)
        if status is None:
            seen, heard = last_t, uploaded
        else:
            if status.silent:
                self._alert(checkpoint_id, district, venue_id, "resolved", Occurrence(1, status.seen, first_t, ()),
                            version, {"silent_since": rfc3339(status.seen), "reported_again_at": rfc3339(first_t)},
                            self.minutes.minute(partition, district, first_t)[0], partition)
            seen, heard = max(status.seen, last_t), max(status.heard_at, uploaded)
        self.statuses.set(key, CheckpointStatus(seen, False, district, venue_id, venue_type, heard), partition)

    def check(self, now: float) -> int:
        """Raise CHECKPOINT_SILENT for the checkpoints quiet on both clocks for ``silent_after_minutes``."""
        fired = 0
        for partition in sorted(self.owned()):
            stream_now, upload_now = self.clock.now(partition, now), self.uploads.now(partition, now)
            due = self.by_stream.pop_due(partition, stream_now) + self.by_upload.pop_due(partition, upload_now)
            for key in dict.fromkeys(due):
                status = self.statuses.get(key)
                if status is not None and not status.silent and self._silent(key, status, partition, stream_now,
                                                                             upload_now):
                    fired += 1
        return fired

    def _quiet_from(self, t: float, status: CheckpointStatus) -> float:
        """When a checkpoint last heard of at ``t`` (on either clock) is quiet, by the policy then."""
        _, params = self.policy.params(t, status.district, status.venue_type)
        return t + params.silent_after_minutes * 60

    def _silent(self, key: str, status: CheckpointStatus, partition: int, stream_now: float,
                upload_now: float) -> bool:
        """Raise CHECKPOINT_SILENT if the checkpoint is quiet on both clocks; else index it again."""
        version, params = self.policy.params(stream_now, status.district, status.venue_type)
        quiet_s = params.silent_after_minutes * 60
        heard_recently = stream_now - status.seen < quiet_s
        uploaded_recently = upload_now - status.heard_at < quiet_s
        if heard_recently:
            self.by_stream.defer(key, partition, status.seen + quiet_s)
        if uploaded_recently:
            self.by_upload.defer(key, partition, status.heard_at + quiet_s)
        if heard_recently or uploaded_recently:
            return False
        checkpoint_id = key[len(CHECKPOINT_PREFIX):]
        self.statuses.set(key, msgspec.structs.replace(status, silent=True), partition)
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
