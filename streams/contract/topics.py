"""The topics of the public interface (docs/interface.md), declared once: names, keys and partition counts."""

from __future__ import annotations

from dataclasses import dataclass

# How long a topic keeps its records (the contract's "Access control and retention"):
PERSONAL = "personal"  # person-level health data: personal_retention_days (14), the tracing horizon
ONCALL = "on-call"  # alerts, incidents, findings and their statuses: 180 days
STATISTICS = "statistics"  # district statistics, isolation days, people counts: 400 days
FOREVER = "forever"  # the register and the policies: compacted, kept (a record goes by a tombstone)
RETENTION_DAYS = {ONCALL: 180, STATISTICS: 400}
DAY_MS = 86_400_000


# The partitions of the venue-keyed topics (scans and every topic co-partitioned with them) unless
# HCS_VENUE_PARTITIONS says otherwise: the ceiling of a group's parallelism.
VENUE_PARTITIONS = 8


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    compacted: bool = False  # the latest record of each key is its value (a null value removes it)
    keep: str = PERSONAL  # its retention class


SCANS = TopicSpec("hcs.scans.v1", VENUE_PARTITIONS, "venue_id")
ENTRIES = TopicSpec("hcs.entries.v1", VENUE_PARTITIONS, "venue_id", keep=STATISTICS)
DECISIONS = TopicSpec("hcs.decisions.v1", VENUE_PARTITIONS, "venue_id")
ALERTS = TopicSpec("hcs.alerts.v1", 4, "dedup_key", keep=ONCALL)
DISTRICT_STATS = TopicSpec("hcs.district-stats.v1", 4, "district", keep=STATISTICS)
DLQ = TopicSpec("hcs.dlq.v1", 4, "original key")
# The key-personnel register, written by the register's system, read whole by every worker.
MANAGEMENT = TopicSpec("hcs.management.v1", 4, "person_ref", compacted=True, keep=FOREVER)
# Isolation points' observations, keyed by the point (a venue): co-partitioned with scans.
OBSERVATIONS = TopicSpec("hcs.observations.v1", VENUE_PARTITIONS, "isolation_point_id")
ISOLATION_STATUS = TopicSpec("hcs.isolation-status.v1", 4, "isolation_point_id", keep=STATISTICS)
# Inspectors' findings, keyed by venue (co-partitioned with scans: a venue's findings meet the
# alerts that count as their recurrences), and every finding's latest state with its history.
FINDINGS = TopicSpec("hcs.findings.v1", VENUE_PARTITIONS, "venue_id", keep=ONCALL)
FINDING_STATUS = TopicSpec("hcs.finding-status.v1", 4, "finding_id", compacted=True, keep=ONCALL)
# Policy versions published to the running workers, read whole by every worker.
POLICIES = TopicSpec("hcs.policies.v1", 1, "version", compacted=True, keep=FOREVER)
# Source tracing: cases reported (read whole by every worker), the exposures found (read whole
# by every worker too: a contact is stopped at every checkpoint), and each case's trace.
CASES = TopicSpec("hcs.cases.v1", 4, "person_ref")
EXPOSURES = TopicSpec("hcs.exposures.v1", 4, "person_ref")
TRACES = TopicSpec("hcs.traces.v1", 4, "case_id", compacted=True)
# The on-call loop: actions on alerts' incidents (keyed by dedup_key: co-partitioned with the
# alerts, so an incident's alerts and actions meet on one worker), and each incident's state.
ALERT_ACTIONS = TopicSpec("hcs.alert-actions.v1", ALERTS.partitions, "dedup_key", keep=ONCALL)
INCIDENTS = TopicSpec("hcs.incidents.v1", ALERTS.partitions, "dedup_key", compacted=True, keep=ONCALL)
ALL: tuple[TopicSpec, ...] = (SCANS, ENTRIES, DECISIONS, ALERTS, DISTRICT_STATS, DLQ, MANAGEMENT, OBSERVATIONS,
                              ISOLATION_STATUS, FINDINGS, FINDING_STATUS, POLICIES, CASES, EXPOSURES, TRACES,
                              ALERT_ACTIONS, INCIDENTS)

# The worker's internal topic of district-minute partials (step one of the district stats),
# named after the worker's app id: not part of the contract.
PARTIALS = TopicSpec("district-partials", DISTRICT_STATS.partitions, "district", keep=STATISTICS)
# ... and of recurrences raised at one venue for another's findings (an isolation point's
# resident breaching isolation elsewhere), keyed by the finding's venue, as the findings are.
RECURRENCES = TopicSpec("finding-recurrences", FINDINGS.partitions, "venue_id", keep=ONCALL)
# ... and of each venue partition's report of a case's trace, keyed by the case: the owner of
# the case's partition puts the reports together into its Trace.
TRACE_REPORTS = TopicSpec("trace-reports", SCANS.partitions, "case_id")
INTERNAL: tuple[TopicSpec, ...] = (PARTIALS, RECURRENCES, TRACE_REPORTS)

# The venue-keyed topics and those co-partitioned with them: a venue's records of each, and its
# state, share one partition number. Their count is a setting (HCS_VENUE_PARTITIONS, by default
# the partitions declared above), the same for all of them, fixed for a generation of topics.
VENUE_KEYED: frozenset[TopicSpec] = frozenset({SCANS, ENTRIES, DECISIONS, OBSERVATIONS, FINDINGS, RECURRENCES,
                                                TRACE_REPORTS})


def partitions(spec: TopicSpec, venue_partitions: int = VENUE_PARTITIONS) -> int:
    """The topic's partition count when the venue-keyed topics have ``venue_partitions``."""
    return venue_partitions if spec in VENUE_KEYED else spec.partitions


def topic_name(spec: TopicSpec, prefix: str = "") -> str:
    """The topic's name on the cluster: the contract name behind an optional prefix."""
    return f"{prefix}{spec.name}"


def partials_topic_name(prefix: str, app_id: str) -> str:
    """The name on the cluster of the worker's internal partials topic."""
    return internal_topic_name(PARTIALS, prefix, app_id)


def internal_topic_name(spec: TopicSpec, prefix: str, app_id: str) -> str:
    """The name on the cluster of one of the worker's internal topics."""
    return f"{prefix}{app_id}-{spec.name}"


def cluster_topic_name(spec: TopicSpec, prefix: str, app_id: str) -> str:
    """The name on the cluster of a contract topic or of one of the worker's internal topics."""
    return internal_topic_name(spec, prefix, app_id) if spec in INTERNAL else topic_name(spec, prefix)


def leader_topic_name(app_id: str) -> str:
    """Faust's topic of one partition whose owner is the group's leader (for ``on_leader`` work)."""
    return f"{app_id}-__assignor-__leader"


def worker_topics(prefix: str, app_id: str, venue_partitions: int = VENUE_PARTITIONS) -> dict[str, int]:
    """Every topic the worker declares and writes (besides Faust's changelogs), with its partitions.

    Faust's leader topic is among them: Faust declares it while its consumer already subscribes
    to it, and the first metadata fetch logged "Topic ... not found in cluster metadata" at ERROR
    on a fresh cluster; made before Faust starts, it is there.
    """
    names = {topic_name(spec, prefix): partitions(spec, venue_partitions) for spec in ALL}
    for spec in INTERNAL:
        names[internal_topic_name(spec, prefix, app_id)] = partitions(spec, venue_partitions)
    names[leader_topic_name(app_id)] = 1
    return names


def tables(venue_partitions: int = VENUE_PARTITIONS) -> dict[str, int]:
    """The worker's tables (name -> partitions): each changelog has as many partitions as the topic
    whose partitions its keys follow (seen and state: the venue topics; stats: districts;
    incidents: the alerts' dedup keys). The visits' changelog, venue-keyed too, is Faust's to make:
    it keeps its records by time as well (streams.worker.app)."""
    return {"seen": venue_partitions, "state": venue_partitions,
            "district-stats": DISTRICT_STATS.partitions, "incidents": ALERTS.partitions}


def changelog_topic_name(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{app_id}-{table}-changelog"


def topic_config(spec: TopicSpec, personal_days: float) -> dict[str, str]:
    """The cleanup policy and retention a topic is created with, by its retention class."""
    if spec.keep == FOREVER:
        return {"cleanup.policy": "compact", "retention.ms": "-1"}
    days = personal_days if spec.keep == PERSONAL else RETENTION_DAYS[spec.keep]
    return {"cleanup.policy": "compact,delete" if spec.compacted else "delete", "retention.ms": str(int(days * DAY_MS))}


# The tables' changelogs keep their state until a tombstone removes it (a sweep, an expiry): a
# checkpoint's status, a finding, an incident may stay unchanged for longer than any retention.
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "retention.ms": "-1"}


def worker_topic_configs(prefix: str, app_id: str, personal_days: float) -> dict[str, dict[str, str]]:
    """Every topic the worker creates (contract, internal, the tables' changelogs) with its config."""
    configs = {topic_name(spec, prefix): topic_config(spec, personal_days) for spec in ALL}
    configs.update({internal_topic_name(spec, prefix, app_id): topic_config(spec, personal_days)
                    for spec in INTERNAL})
    configs.update({changelog_topic_name(app_id, table): dict(CHANGELOG_CONFIG) for table in tables()})
    return configs


def required_partitions(prefix: str, app_id: str, venue_partitions: int = VENUE_PARTITIONS) -> dict[str, int]:
    """Every topic whose partition count the worker relies on, with that count."""
    counts = worker_topics(prefix, app_id, venue_partitions)
    counts.update({changelog_topic_name(app_id, table): n for table, n in tables(venue_partitions).items()})
    return counts
