"""The Faust application: ``create_app(settings)`` wires the topics, tables and outputs, the
concepts (:mod:`streams.worker.wiring`), their drains and ticks, the views and /metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from faust.types import TP

from streams.concepts.policies import PolicyFeed
from streams.concepts.register import Register
from streams.concepts.visits import VisitLog, Visits
from streams.contract import topics
from streams.kafka.bulk import Batch
from streams.kafka.cluster import PRODUCER_BATCH_BYTES, transactional_producer
from streams.kafka.health import WATCH_TICK_S, ConnectionWatch
from streams.kafka.output import BatchedOutput
from streams.kafka.patches.app import AtLeastOnceApp, QuietWorker
from streams.kafka.patches.consumer import Consumer
from streams.kafka.patches.recovery import TableManager
from streams.kafka.readiness import Readiness
from streams.kafka.sensor import faust_monitor
from streams.kafka.sinks import PartialsSink, TopicSink, changelog_writer, raw_changelog_writer
from streams.kafka.state import DedupMarks, PartitionedState
from streams.kafka.views import ReplicatedView
from streams.kafka.visits import tombstone
from streams.metrics import Metrics
from streams.rules.policy import Policy, load_policy
from streams.rules.tracing import DAY_S
from streams.settings import ROCKSDB, Settings
from streams.worker.drains import Drains
from streams.worker.web import wire_web
from streams.worker.wiring import Wiring, timer_names

log = logging.getLogger(__name__)

CONSUMER_FETCH_BYTES = 1024 * 1024
FAUST_METRICS_PREFIX = "faust"
VISITS_SEGMENT_MS = 6 * 3600 * 1000  # the visits changelog's segments: time retention deletes whole segments


class HcsApp(AtLeastOnceApp):
    """A Faust app that declares every topic of the contract before it consumes."""

    hcs_settings: Settings
    wiring: Wiring  # every concept, with its state and outputs
    output: BatchedOutput
    metrics: Metrics

    transactions: Any = None  # the transactional producer, in exactly-once mode
    readiness: Readiness  # what /readyz reports
    views: list[ReplicatedView[Any, Any]]  # compacted topics every worker holds whole
    drains: Drains  # the input topics' records, taken in bulk, to the concepts' handlers

    def add_view(self, view: ReplicatedView[Any, Any]) -> None:
        """A view every worker holds whole; started with the app, and the worker judges nothing
        (and is not ready) until it is loaded."""
        self.views.append(view)
        self.readiness.add(f"view {view.name}", view.status)

    async def views_loaded(self) -> None:
        await asyncio.gather(*(view.loaded() for view in self.views))

    def not_loaded(self) -> list[str]:
        """What the timers wait for: the views not loaded yet, and the tables while they recover."""
        waiting = [f"view {view.name}" for view in self.views if not view.caught_up.is_set()]
        if not cast(TableManager, self.tables).recovery.ready:
            waiting.append("tables")
        return waiting

    async def on_first_start(self) -> None:
        self.hcs_settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes only the leaf
        await super().on_first_start()
        for view in self.views:  # started with the app, stopped with it
            await self.add_runtime_dependency(view)
        await self.add_runtime_dependency(self.drains)  # they wait for the views, then for records
        # The topics were ensured by `hcs worker` before Faust started (streams.cli.worker).
        if self.hcs_settings.exactly_once:
            # Started before the agents; its start aborts what a crashed run with the same
            # transactional id left open, so the restarted worker never waits for it.
            self.transactions = transactional_producer(self.hcs_settings)
            await self.transactions.start()
        # Faust's tables declare their changelogs a second after the start, while the consumer
        # may already be joining its group: a changelog made that late is left out of the
        # assignment ("Ignoring missing topic", 2 of 6 test starts) until the consumer's next
        # metadata refresh, minutes later. Declare them first, as the tables would.
        for table in self.tables.values():
            await table.changelog_topic.maybe_declare()

    async def on_started(self) -> None:
        await super().on_started()
        # Everything made so far (modules, Faust's and aiokafka's services) lives as long as the
        # worker: moved out of the collector's generations, full collections no longer walk it
        # (measured: 60 ms pauses down to 15 ms in a 300k-scan run).
        gc.freeze()

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        if self.transactions is not None:  # after the agents, whose last writes it carried
            await self.transactions.stop()

    def kafka_client_kwargs(self) -> dict[str, Any]:
        return self.hcs_settings.client_kwargs()

    def on_tables_recovered(self) -> None:
        self.wiring.state.reindex()  # the keyspaces' indexes miss what recovery put in the table
        if self.wiring.incidents is not None:
            self.wiring.incidents.state.reindex()
        if self.wiring.tracing is not None:
            self.wiring.tracing.reindex()

    async def before_commit(self) -> None:
        await self.output.settle()  # state written for acknowledged records is acknowledged too


def create_app(settings: Settings, policy: Policy | None = None, metrics: Metrics | None = None) -> HcsApp:
    """Build the worker app. ``policy`` defaults to ``HCS_POLICY_FILE`` or the packaged policy."""
    policy = policy if policy is not None else load_policy(settings.policy_file)
    metrics = metrics if metrics is not None else Metrics()
    app = _faust_app(settings)
    app.hcs_settings = settings
    app.fetch_min_bytes, app.fetch_max_wait_ms = settings.fetch_min_bytes, settings.fetch_max_wait_ms
    app.metrics = metrics
    # Faust's own sensor: consumer end and committed offsets per partition (lag), rebalances,
    # commit latency. A fixed prefix keeps dashboards and rules independent of HCS_APP_ID.
    app.monitor = faust_monitor(metrics.registry, FAUST_METRICS_PREFIX)
    watch = ConnectionWatch(f"Kafka at {settings.bootstrap}").install()
    metrics.watch_kafka(lambda: watch.reachable, lambda: watch.outages)
    metrics.watch_partitions(lambda: Counter(tp.topic for tp in app.assignor.assigned_actives()))

    app.output = _output(app, settings)
    wiring = app.wiring = _wiring(app, settings, policy, metrics)
    app.readiness = Readiness()
    app.views = []
    app.add_view(ReplicatedView(wiring.register.replica, settings.client_kwargs()))
    if wiring.tracing is not None and wiring.contacts is not None:  # cases and exposures, on every worker
        app.add_view(ReplicatedView(wiring.tracing.cases, settings.client_kwargs()))
        app.add_view(ReplicatedView(wiring.contacts.replica, settings.client_kwargs()))
        metrics.watch_visits(wiring.tracing.visits.stored)
    if wiring.policies is not None:
        app.add_view(ReplicatedView(wiring.policies.replica, settings.client_kwargs()))
    metrics.watch_policy(lambda: policy.params(time.time(), "", "")[0])
    metrics.watch_register(lambda: wiring.managed_persons(time.time()))
    metrics.watch_findings(wiring.findings_counts)
    metrics.watch_incidents(wiring.incidents_counts)

    app.drains = _drains(app, wiring)

    @app.timer(WATCH_TICK_S, name="watch_kafka")
    async def watch_kafka() -> None:
        watch.check()  # one log line when Kafka is back

    app.readiness.add("timers", app.drains.tick_status)
    wire_web(app, metrics, app.readiness)
    return app


def _faust_app(settings: Settings) -> HcsApp:
    return HcsApp(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=settings.kafka.faust_credentials(),
        store=settings.store_url,
        datadir=str(settings.data_dir / "worker"),
        autodiscover=False,
        topic_partitions=settings.venue_partitions,
        table_standby_replicas=settings.standby_replicas,
        topic_replication_factor=settings.replication,
        consumer_auto_offset_reset="earliest",
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host=settings.web_bind,
        web_in_thread=False,
        producer_acks=-1,
        # One Kafka batch per partition per flush: aiokafka makes a second batch of the same
        # partition wait until the first is sent, so 16 KB batches cost a round trip per 60
        # decisions of a gateway batch. 512 KiB stays under the broker's 1 MB message limit.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        Worker=QuietWorker,
        # A crashed worker's partitions move to the others after this long (Faust's default: 60 s).
        broker_session_timeout=20.0,
        broker_heartbeat_interval=3.0,
        broker_commit_interval=settings.commit_interval_s,
        # A revoke waits until every event the agents took is handled, written and acknowledged
        # (Faust's default). Without it a partition moved to another worker while this one's last
        # write (a transaction) was in flight: the new owner recovered the state without that
        # write's dedup marks and judged its records again (the two-worker test, 1 run in 4).
        stream_wait_empty=True,
        # Per partition per fetch (Faust's default, kept on purpose). 4 MiB once looked faster,
        # but only because it hid the fetch stalls that HCS_FETCH_MAX_WAIT_MS (100 ms)
        # removes; with those gone 1 MiB judges gateway batches as fast or faster (56-57k vs
        # 48-53k scans/s) and halves the consumer thread's CPU: a 4 MiB-per-partition response
        # of ~26 MB is copied through fresh pages three times on its way in, holding the GIL.
        # A record larger than this (a gateway batch may reach 1 MiB) still comes whole (KIP-74).
        consumer_max_fetch_size=CONSUMER_FETCH_BYTES,
    )


def _output(app: HcsApp, settings: Settings) -> BatchedOutput:
    """Every output of a batch, state included, in one write (one transaction in exactly-once mode)."""
    # Exactly-once: the app's transactional producer; else Faust's own, which its aiokafka driver
    # keeps started behind _ensure_producer().
    producer: Callable[[], Any] = ((lambda: app.transactions) if settings.exactly_once
                                   else (lambda: cast(Any, app.producer)._ensure_producer()))
    return BatchedOutput(producer,
                         topics.worker_topics(settings.topic_prefix, settings.app_id, settings.venue_partitions),
                         transactional=settings.exactly_once)


def _wiring(app: HcsApp, settings: Settings, policy: Policy, metrics: Metrics) -> Wiring:
    """The concepts over the worker's three changelogged tables and its outputs."""
    output = app.output
    seen = app.Table("seen", partitions=settings.venue_partitions, key_type=str,
                     help="event ids already judged, per venue partition, until the dedup horizon")
    state = app.Table("state", partitions=settings.venue_partitions, key_type=str,
                      help="per-venue state: rechecks, alert memos, compliance windows, checkpoints, partials")
    stats = app.Table("district-stats", partitions=topics.DISTRICT_STATS.partitions, key_type=str,
                      help="per-district minute partials and source watermarks")
    incidents = app.Table("incidents", partitions=topics.ALERTS.partitions, key_type=str,
                          help="every alert dedup key's incident, by the alerts' partitions")
    scans_name = topics.topic_name(topics.SCANS, settings.topic_prefix)
    alerts_name = topics.topic_name(topics.ALERTS, settings.topic_prefix)

    def is_active(partition: int) -> bool:
        return TP(scans_name, partition) in app.assignor.assigned_actives()

    def owns_alerts(partition: int) -> bool:
        return TP(alerts_name, partition) in app.assignor.assigned_actives()

    partials = topics.partials_topic_name(settings.topic_prefix, settings.app_id)
    on_disk = settings.table_store == ROCKSDB
    venue_state = PartitionedState(state, changelog_writer(output, state, on_disk))
    visits = _visits(app, policy, venue_state)
    return Wiring(policy, venue_state,
                  DedupMarks(seen, changelog_writer(output, seen, on_disk)),
                  PartitionedState(stats, changelog_writer(output, stats, on_disk)),
                  TopicSink(output, settings.topic_prefix, settings.app_id),
                  PartialsSink(output, partials, topics.PARTIALS.partitions), metrics,
                  dedup_horizon_s=settings.dedup_horizon_hours * 3600, is_active=is_active,
                  # Every managed person's plan and the policy versions published meanwhile: read
                  # whole before the first scan is judged, and followed after.
                  register=Register(topics.topic_name(topics.MANAGEMENT, settings.topic_prefix)),
                  policies=PolicyFeed(topics.topic_name(topics.POLICIES, settings.topic_prefix), policy),
                  visits=visits, cases_topic=topics.topic_name(topics.CASES, settings.topic_prefix),
                  exposures_topic=topics.topic_name(topics.EXPOSURES, settings.topic_prefix),
                  incidents=PartitionedState(incidents, changelog_writer(output, incidents, on_disk)),
                  owns_alerts=owns_alerts, venue_partitions=settings.venue_partitions)


def _visits(app: HcsApp, policy: Policy, state: PartitionedState) -> Visits:
    """Every decided scan's visit, in a table on disk whatever HCS_TABLE_STORE says (two weeks of
    a city's visits do not fit in memory). Its changelog is compacted (the sweep's tombstones
    remove expired visits) and deletes by time too, after the retention in force at start."""
    settings = app.hcs_settings
    retention_s = policy.defaults_at(time.time()).visit_retention_days * DAY_S
    # Its records are the store's own bytes (streams.kafka.visits), read back as they are: raw.
    changelog = app.topic(topics.changelog_topic_name(settings.app_id, "visits"), partitions=settings.venue_partitions,
                          retention=retention_s, compacting=True, deleting=True, internal=True, allow_empty=True,
                          key_serializer="raw", value_serializer="raw", config={"segment.ms": str(VISITS_SEGMENT_MS)})
    table = app.Table("visits", partitions=settings.venue_partitions, key_type=str, store="hcs-visits:visits",
                      changelog_topic=changelog,
                      help="every decided scan's visit (source tracing), until visit_retention_days")
    return Visits(lambda: cast(VisitLog, table.data), raw_changelog_writer(app.output, table), tombstone, state,
                  policy, lambda: app.wiring.owned(), time.time)


def _drains(app: HcsApp, wiring: Wiring) -> Drains:
    """A drain per input of the concepts, a tick per timer interval, and the release of revoked partitions."""
    settings = app.hcs_settings

    def ack(batch: Batch) -> None:
        cast(Consumer, app.consumer).ack_batch(batch)  # the consumer is made when the app starts

    drains = Drains(wiring.flush, app.output, app.metrics, ack, app.views_loaded)
    drains.waiting_for = app.not_loaded
    venue_topics = set()
    for inp in wiring.inputs():
        name = topics.cluster_topic_name(inp.spec, settings.topic_prefix, settings.app_id)
        topic = app.topic(name, partitions=topics.partitions(inp.spec, settings.venue_partitions),
                          key_serializer="raw", value_serializer="raw")
        app.topics.add(topic)  # subscribed by Faust's consumer group, its records handed over whole
        drains.add(inp, app.bulk_intake.add(name))
        if inp.by_venue:
            venue_topics.add(name)

    # mode types the handler as generic in an unbound sender type, which mypy cannot match.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def release_partitions(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        """Another worker may now add to the revoked partitions' state: drop what is cached of it."""
        wiring.release({tp.partition for tp in revoked if tp.topic in venue_topics})

    by_interval = wiring.timers()
    for every_s, name in timer_names(list(by_interval)).items():
        app.timer(every_s, name=name)(drains.add_tick(name, by_interval[every_s]))
    return drains
