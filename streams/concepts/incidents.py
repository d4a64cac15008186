"""The on-call loop: every alert's incident, moved by the alerts, the on-call team's actions and
processing time (the contract's "Alert acknowledgement and escalation").

The worker reads its own alerts back from ``hcs.alerts.v1`` (committed ones only, in exactly-once
mode) with the actions of ``hcs.alert-actions.v1``: both keyed by dedup_key with as many
partitions, so one worker holds an incident, its alerts and its actions. Incidents live in a
table of their own, partitioned as the alerts are, and move by the pure state machine of
:mod:`streams.rules.incidents`. Escalations and ack timeouts are met by processing time from a
due-time index over that table: it is rebuilt from the recovered table after a restart or a
rebalance, so an escalation that fell due meanwhile fires once, when the partition is owned
again. Every change writes the incident's state, its whole history and latest alert included, to
``hcs.incidents.v1``. A refused action is dead-lettered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import msgspec

from streams.concepts.base import Input, RecordRef, Sink, Timer
from streams.concepts.intake import Intake
from streams.contract import topics
from streams.contract.codec import decode_alert_action
from streams.contract.encoding import encode
from streams.contract.models import Rejected
from streams.contract.records import Alert
from streams.kafka.state import PartitionedState
from streams.metrics import Metrics
from streams.rules import incidents as rules
from streams.rules.incidents import Escalation, Incident, Refused
from streams.rules.policy import Policy
from streams.times import DAY_S

INCIDENT_PREFIX = "i|"  # dedup_key -> Incident (the latest of its key)
TICK_S = 1.0  # escalations and ack timeouts are met within this long
SWEEP_S = 600.0
KEEP_RESOLVED_S = 35 * DAY_S  # a resolved incident is kept (refusing actions on it) this long
LINGER_S = 0.25  # an incident's change waits at most this long for a write of the scans to ride in

_ALERT = msgspec.json.Decoder(Alert)


class Incidents:
    def __init__(self, state: PartitionedState, intake: Intake, sink: Sink, metrics: Metrics, policy: Policy,
                 owned: Callable[[], set[int]]) -> None:
        self.state = state
        self.incidents = state.typed(INCIDENT_PREFIX, Incident)
        self.policy = policy
        self.timeline = self.incidents.due_index(self._due)
        self.intake = intake
        self.sink = sink
        self.metrics = metrics
        self.owned = owned  # the alerts' partitions this worker owns now
        self._now = 0.0  # the processing time the due index is computed at (plans by the policy then)

    def inputs(self) -> Sequence[Input]:
        # The alerts' partitions are dedup keys', not venues': nothing of the venue state to release.
        # Alerts trickle in beside the scans: their few outputs ride along in the scans' writes.
        return (Input("follow_alerts", topics.ALERTS, self.on_alert_record, by_venue=False, linger_s=LINGER_S),
                Input("follow_alert_actions", topics.ALERT_ACTIONS, self.on_action_record, by_venue=False,
                      linger_s=LINGER_S))

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.tick), Timer(SWEEP_S, lambda now: self.sweep(now, self.owned())))

    def plans(self, now: float) -> Mapping[str, Escalation]:
        """The escalation plans by severity in force at ``now`` (the policy's defaults)."""
        return dict(self.policy.defaults_at(now).escalation)

    def _due(self, incident: Incident) -> float | None:
        return rules.due(incident, self.plans(self._now))

    # -- records ---------------------------------------------------------------------------------

    def on_alert_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """One alert the worker raised: it triggers its dedup key's incident, or is appended to it."""
        try:
            alert = _ALERT.decode(value or b"")
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:  # not the worker's: someone else wrote it
            self.intake.dead_letter(Rejected("SCHEMA_INVALID", f"not an hcs.alert.v1 record: {exc}", value or b""),
                                    ref, now)
            return
        key = INCIDENT_PREFIX + alert.dedup_key
        before = self.incidents.get(key)
        self._now = now
        after = rules.on_alert(before, alert, now)
        if after is not None:
            self._save(key, before, after, ref.partition)

    def on_action_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """One on-call action: applied to its incident, or dead-lettered."""
        item = decode_alert_action(value, now)
        if not isinstance(item, Rejected) and ref.key is not None and ref.key != item.dedup_key.encode():
            item = Rejected("SCHEMA_INVALID", "dedup_key: is not the record's key (key actions by the alert's "
                            "dedup_key, as the alerts are)", value or b"")
        if isinstance(item, Rejected):
            self.intake.dead_letter(item, ref, now)
            return
        key = INCIDENT_PREFIX + item.dedup_key
        before = self.incidents.get(key)
        self._now = now
        after = rules.act(before, item, now)
        if isinstance(after, Refused):
            self.intake.dead_letter(Rejected(after.reason, after.detail, value or b""), ref, now)
        elif after is None:
            self.metrics.duplicates(topics.ALERT_ACTIONS.name).inc()
        else:
            self._save(key, before, after, ref.partition)

    # -- time ------------------------------------------------------------------------------------

    def tick(self, now: float) -> int:
        """Escalations and ack timeouts due by ``now`` on the owned partitions; returns the changes."""
        changed = 0
        self._now = now
        plans = self.plans(now)
        for partition in sorted(self.owned()):
            for key in self.timeline.pop_due(partition, now):
                incident = self.incidents.get(key)
                if incident is None:
                    continue
                moved = rules.tick(incident, now, plans)
                if moved is not None:
                    self._save(key, incident, moved, partition)
                    changed += 1
                elif (at := rules.due(incident, plans)) is not None:
                    self.timeline.defer(key, partition, at)  # its plan moved it later
        return changed

    def sweep(self, now: float, owned: set[int]) -> int:
        """Forget resolved incidents kept long enough (their last record stays on the topic)."""
        old = [key for key, partition, incident in self.incidents.items() if partition in owned
               and incident.status == rules.RESOLVED and now - incident.updated_at > KEEP_RESOLVED_S]
        for key in old:
            self.incidents.delete(key)
        return len(old)

    def counts(self, owned: set[int]) -> Counter[tuple[str, str]]:
        """This worker's incidents by (district, status)."""
        return Counter((incident.district, incident.status) for _, partition, incident in self.incidents.items()
                       if partition in owned)

    def get(self, dedup_key: str) -> Incident | None:
        return self.incidents.get(INCIDENT_PREFIX + dedup_key)

    # -- one change ------------------------------------------------------------------------------

    def _save(self, key: str, before: Incident | None, after: Incident, partition: int) -> None:
        """Keep ``after``, write its record, count its notifications and its first ack."""
        self.incidents.set(key, after, partition)
        self.sink.send(topics.INCIDENTS, after.dedup_key.encode(), encode(rules.record(after)))
        same = before is not None and before.incident_id == after.incident_id
        for level, _ in after.escalations[len(before.escalations) if same and before is not None else 0:]:
            self.metrics.escalations(after.district, after.severity, str(level)).inc()
        if after.acknowledged_at is not None and (not same or before is None or before.acknowledged_at is None):
            self.metrics.time_to_acknowledge(after.district, after.severity).observe(
                max(0.0, after.acknowledged_at - after.triggered_at))
