"""Records the replicated views refused (the register's, the policy versions', the cases'): dead-lettered
once across the workers, and a refused policy version raises ``POLICY_REJECTED`` once.

Every worker reads those topics whole, so each refused record is dead-lettered by the owner of
the scans partition its topic partition maps to, marked in that partition's dedup marks so that
a restart does not repeat it within the dedup horizon. They wait in the views until this worker
owns a partition (its first assignment); records whose partition another worker owns are that
worker's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streams.concepts.alerting import Alerts
from streams.concepts.base import Input, RecordRef, Timer
from streams.concepts.intake import Intake
from streams.concepts.policies import PolicyFeed
from streams.concepts.register import Register
from streams.contract import topics
from streams.contract.models import Rejected
from streams.kafka.replica import Where
from streams.rules.alerts import AlertDraft, Occurrence
from streams.rules.codes import CRITICAL, POLICY_REJECTED
from streams.rules.compliance import DistrictMinute
from streams.rules.policy import Policy

POLICY_DISTRICT = "000000"  # the district of an alert about the whole service (POLICY_REJECTED)
TICK_S = 1.0


class ViewRefusals:
    def __init__(self, policy: Policy, register: Register, policies: PolicyFeed | None, intake: Intake,
                 alerts: Alerts, owned: Callable[[], set[int]],
                 cases: Callable[[], list[tuple[Rejected, Where]]] | None = None,
                 venue_partitions: int = topics.SCANS.partitions) -> None:
        self.policy = policy
        self.venue_partitions = venue_partitions
        self.cases = cases  # the refused case reports (source tracing), taken
        self.register = register
        self.policies = policies
        self.intake = intake
        self.alerts = alerts
        self.owned = owned

    def inputs(self) -> Sequence[Input]:
        return ()

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.dead_letter),)

    def dead_letter(self, now: float) -> int:
        """Dead-letter the refused records this worker owns; how many."""
        owned = self.owned()
        if not owned:
            return 0  # the views keep them meanwhile
        refused: list[tuple[Rejected, Where, str | None, topics.TopicSpec]] = [
            (rejected, where, None, topics.MANAGEMENT) for rejected, where in self.register.take_refused()]
        if self.cases is not None:
            refused += [(rejected, where, None, topics.CASES) for rejected, where in self.cases()]
        if self.policies is not None:
            refused += [(rejected, where, version, topics.POLICIES)
                        for rejected, where, version in self.policies.take_refused()]
        done = 0
        for rejected, where, version, spec in refused:
            state_partition = where.partition % self.venue_partitions
            if state_partition not in owned:
                continue
            ref = RecordRef(spec, where.topic, where.partition, where.offset, where.key)
            if self.intake.dead_letter(rejected, ref, now, state_partition=state_partition) and version is not None:
                self._policy_rejected(version, rejected.detail, now, state_partition)
            done += 1
        return done

    def _policy_rejected(self, version: str, error: str, now: float, partition: int) -> None:
        in_force, _ = self.policy.params(now, "", "")
        # Of no district or venue: the city's (district 000000), for the hcs operators; not
        # counted in any district's minute.
        self.alerts.emit(AlertDraft(POLICY_REJECTED, CRITICAL, f"{POLICY_REJECTED}|{version}", POLICY_DISTRICT,
                                    topics.POLICIES.name, in_force, Occurrence(1, now, now, ()),
                                    details={"version": version, "error": error}), DistrictMinute(), partition)
