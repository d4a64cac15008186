"""The handlers of the worker's concepts, built on plain values: a dict for a table, recorders
for the outputs, explicit clocks. No Faust anywhere."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from streams.concepts.alerting import Alerts
from streams.concepts.intake import Intake
from streams.concepts.minutes import DistrictMinutes
from streams.concepts.rechecks import Rechecks
from streams.concepts.silence import Checkpoints
from streams.concepts.windows import ComplianceWindows
from streams.contract import topics
from streams.kafka.state import DedupMarks, PartitionedState
from streams.metrics import Metrics
from streams.rules.compliance import StreamClock
from streams.rules.policy import load_policy


class Table:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}


class Outputs:
    """Every record sent, decoded, by topic; partials and watermarks of the internal topic."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.partials: list[dict[str, Any]] = []
        self.watermarks: list[dict[str, Any]] = []

    def send(self, spec: topics.TopicSpec, key: bytes | None, value: bytes) -> None:
        self.sent[spec.name].append(orjson.loads(value))

    def send_many(self, spec: topics.TopicSpec, key: bytes | None, values: list[bytes]) -> None:
        for value in values:
            self.send(spec, key, value)

    def partial(self, district: str, value: bytes) -> None:
        self.partials.append(orjson.loads(value))

    def watermark(self, value: bytes) -> None:
        self.watermarks.append(orjson.loads(value))

    def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.sent[topics.ALERTS.name] if kind is None or a["kind"] == kind]


class Handlers:
    """Every concept's handler over one state table, owning partition 0 only."""

    def __init__(self, horizon_s: float = 48 * 3600) -> None:
        self.state = PartitionedState(Table(), lambda partition, records: None)
        self.seen = DedupMarks(Table(), lambda partition, records: None)
        self.out = Outputs()
        self.metrics = Metrics()
        self.policy = load_policy()
        self.clock, self.uploads = StreamClock(), StreamClock()

        def owned() -> set[int]:
            return {0}

        self.intake = Intake(self.seen, self.out, self.metrics, horizon_s, owned)
        self.alerts = Alerts(self.state, self.out, self.metrics, horizon_s, owned)
        self.minutes = DistrictMinutes(self.state, self.out, self.clock, self.policy, owned)
        self.rechecks = Rechecks(self.state, self.alerts, self.minutes, self.clock, self.policy, owned)
        self.windows = ComplianceWindows(self.state, self.alerts, self.minutes, self.metrics, self.clock, owned)
        self.checkpoints = Checkpoints(self.state, self.alerts, self.minutes, self.clock, self.uploads,
                                       self.policy, owned)

    def stream_time(self, t: float, wall: float, uploaded: float | None = None) -> None:
        """Partition 0 has read records up to event time ``t``, uploaded at ``uploaded``, at ``wall``."""
        self.clock.observe(0, t, wall)
        self.uploads.observe(0, wall if uploaded is None else uploaded, wall)
