"""The Faust application: ``create_app(settings)`` wires topics, state, agents, timers and /metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import faust
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from faust.types import TP
from mode import CrashingSupervisor

from streams import consuming, faust_patches, topics
from streams.aggregation import StatsOwner, district_stats_owner
from streams.encoding import encode
from streams.errors import ClusterAccessError, TopicShapeError
from streams.faust_sensor import faust_monitor
from streams.kafka_errors import client_errors, describe_client_error, is_refusal
from streams.kafka_health import ConnectionWatch
from streams.metrics import Metrics
from streams.output import BatchedOutput, Sealed
from streams.pipeline import Pipeline, RecordRef
from streams.readiness import Readiness
from streams.rules.policy import Policy, load_policy
from streams.settings import Settings
from streams.state import ChangelogSend, DedupMarks, PartitionedState
from streams.views import ReplicatedView

log = logging.getLogger(__name__)

SCAN_BATCH_MAX = 1000  # records handed to the pipeline at once
SCAN_BATCH_WITHIN_S = 0.005
OVERLAP_MIN_S = 0.005  # a batch handled for at least this long is written while the next is handled
RECHECK_TICK_S = 5.0  # FEVER_UNRESOLVED fires within this long after a recheck window ends
WINDOW_TICK_S = 1.0  # compliance windows, silent checkpoints and district minutes close this often
SWEEP_TICK_S = 60.0
CONSUMER_FETCH_BYTES = 1024 * 1024
FAUST_METRICS_PREFIX = "faust"
PRODUCER_BATCH_BYTES = 512 * 1024
PRODUCER_REQUEST_BYTES = 1024 * 1024
TRANSACTION_TIMEOUT_MS = 15_000


class TopicSink:
    """Outputs to the contract topics (behind the prefix), through the batched output."""

    def __init__(self, output: BatchedOutput, prefix: str) -> None:
        self._output = output
        self._names = {spec.name: topics.topic_name(spec, prefix) for spec in topics.ALL}

    def send(self, spec: topics.TopicSpec, key: bytes | None, value: bytes) -> None:
        self._output.add(self._names[spec.name], key, value)

    def send_many(self, spec: topics.TopicSpec, key: bytes | None, values: list[bytes]) -> None:
        if values:
            self._output.add_many(self._names[spec.name], key, values)


class PartialsSink:
    """District-minute partials keyed by district, and watermarks to every partition."""

    def __init__(self, output: BatchedOutput, topic: str, partitions: int) -> None:
        self._output, self._topic, self._partitions = output, topic, partitions

    def partial(self, district: str, value: bytes) -> None:
        self._output.add(self._topic, district.encode(), value)

    def watermark(self, value: bytes) -> None:
        for partition in range(self._partitions):
            self._output.add(self._topic, None, value, partition)


def changelog_writer(output: BatchedOutput, table: Any) -> ChangelogSend:
    """Writes a table's changelog records as Faust's recovery reads them (JSON key and value)."""
    topic = table.changelog_topic.get_topic_name()
    output.send_after_outputs(topic)

    def send(partition: int, records: list[tuple[str, Any]]) -> None:
        output.add_to(topic, partition, [(encode(key), None if value is None else encode(value))
                                         for key, value in records])

    return send


class QuietWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    At log levels from WARN up the spinner sets the root logger to DEBUG so that it can spin on
    every record; every debug call of Faust and aiokafka then builds a LogRecord. Profiled with
    py-spy: about 10% of the worker's CPU, for a spinner nobody watches in production.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None


class HcsApp(faust_patches.AtLeastOnceApp):
    """A Faust app that declares every topic of the contract before it consumes."""

    hcs_settings: Settings
    pipeline: Pipeline
    stats_owner: StatsOwner
    output: BatchedOutput
    metrics: Metrics

    transactions: Any = None  # the transactional producer, in exactly-once mode
    readiness: Readiness  # what /readyz reports
    views: list[ReplicatedView[Any, Any]]  # compacted topics every worker holds whole

    def add_view(self, view: ReplicatedView[Any, Any]) -> None:
        """A view every worker holds whole; started with the app, and the worker judges nothing
        (and is not ready) until it is loaded."""
        self.views.append(view)
        self.readiness.add(f"view {view.name}", view.status)

    async def views_loaded(self) -> None:
        await asyncio.gather(*(view.loaded() for view in self.views))

    async def on_first_start(self) -> None:
        self.hcs_settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes only the leaf
        await super().on_first_start()
        for view in self.views:  # started with the app, stopped with it
            await self.add_runtime_dependency(view)
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
        self.pipeline.state.reindex()  # the keyspaces' indexes miss what recovery put in the table

    async def before_commit(self) -> None:
        await self.output.settle()  # state written for acknowledged records is acknowledged too


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the contract topics that do not exist yet; return the names created.

    Raises :class:`TopicShapeError` if a topic the worker relies on exists with another
    partition count (made by hand, or by a broker that auto-creates topics): per-venue state
    lives in the partition of the venue's scans, so scans, entries, decisions and the tables'
    changelogs must all have the counts hcs declares; the worker does not adapt.
    """
    admin = await _admin(settings)
    try:
        existing = set(await admin.list_topics())
        required = topics.required_partitions(settings.topic_prefix, settings.app_id)
        check_partitions(required, await _partition_counts(admin, [n for n in required if n in existing]))
        # The internal partials topic too: created by Faust on subscription, it raced the consumer.
        wanted = topics.worker_topics(settings.topic_prefix, settings.app_id)
        missing = [NewTopic(name, partitions, settings.replication)
                   for name, partitions in wanted.items() if name not in existing]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()


async def wait_for_cluster(settings: Settings) -> None:
    """Return once the cluster answers (saying once that it does not, and retrying with backoff)."""
    admin = await _admin(settings)
    await admin.close()


async def _admin(settings: Settings, retry_s: float = 2.0, max_retry_s: float = 30.0) -> Any:
    """A started admin client; while the cluster cannot be reached, one log line, then retries
    with backoff (a worker started before its broker waits for it)."""
    wait = retry_s
    warned = False
    while True:
        admin = AIOKafkaAdminClient(**settings.client_kwargs(), client_id=f"{settings.app_id}-admin")
        try:
            with client_errors() as logged:
                await admin.start()
        except KafkaConnectionError as exc:
            await admin.close()
            if is_refusal(exc, logged):  # wrong credentials or an untrusted certificate: no retry mends it
                raise ClusterAccessError(describe_client_error(exc, settings, logged) or str(exc)) from None
            if not warned:
                log.warning("Kafka at %s is unreachable; retrying (every %.0f s at most)", settings.bootstrap,
                            max_retry_s)
                warned = True
            await asyncio.sleep(wait)
            wait = min(wait * 2, max_retry_s)
            continue
        if warned:
            log.warning("Kafka at %s is reachable again", settings.bootstrap)
        return admin


async def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    described = await admin.describe_topics(names)
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


def check_partitions(required: dict[str, int], actual: dict[str, int]) -> None:
    """Raise :class:`TopicShapeError` for the first topic whose partition count is not the required one."""
    for name, count in sorted(actual.items()):
        if name in required and count != required[name]:
            raise TopicShapeError(
                f"topic {name} has {count} partitions, hcs needs {required[name]}: per-venue state is kept by "
                f"partition, so its topics must have the declared counts (recreate the topic, or use another "
                f"HCS_TOPIC_PREFIX / HCS_APP_ID)")


def transactional_id(settings: Settings) -> str:
    """This worker's transactional id: the app id and an instance id kept in its data dir.

    Stable across restarts on the same data dir, so a restarted worker's producer fences its
    crashed predecessor and aborts the transaction it left open at once; distinct per data
    dir, so workers sharing the partitions never fence each other.
    """
    path = settings.data_dir / "instance-id"
    try:
        instance = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        instance = ""
    if not instance:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        instance = uuid.uuid4().hex[:12]
        path.write_text(instance + "\n", encoding="ascii")
    return f"{settings.app_id}-{instance}"


def transactional_producer(settings: Settings) -> Any:
    """The producer of the worker's transactions (outputs, changelogs and partials together)."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        **settings.client_kwargs(),
        client_id=f"{settings.app_id}-transactions",
        transactional_id=transactional_id(settings),
        # A transaction a crashed worker left open (on a data dir that was lost) holds back
        # read_committed readers of its partitions until the broker aborts it after this long.
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        acks="all",
        max_batch_size=PRODUCER_BATCH_BYTES,
        max_request_size=PRODUCER_REQUEST_BYTES,
    )


def create_app(settings: Settings, policy: Policy | None = None, metrics: Metrics | None = None) -> HcsApp:
    """Build the worker app. ``policy`` defaults to ``HCS_POLICY_FILE`` or the packaged policy."""
    policy = policy if policy is not None else load_policy(settings.policy_file)
    metrics = metrics if metrics is not None else Metrics()
    app = HcsApp(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=settings.kafka.faust_credentials(),
        store="memory://",
        datadir=str(settings.data_dir / "worker"),
        autodiscover=False,
        topic_partitions=topics.SCANS.partitions,
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
        # but only because it hid the fetch stalls that streams.faust_patches.FETCH_MAX_WAIT_MS
        # removes; with those gone 1 MiB judges gateway batches as fast or faster (56-57k vs
        # 48-53k scans/s) and halves the consumer thread's CPU: a 4 MiB-per-partition response
        # of ~26 MB is copied through fresh pages three times on its way in, holding the GIL.
        # A record larger than this (a gateway batch may reach 1 MiB) still comes whole (KIP-74).
        consumer_max_fetch_size=CONSUMER_FETCH_BYTES,
    )
    app.hcs_settings = settings
    app.metrics = metrics
    # Faust's own sensor: consumer end and committed offsets per partition (lag), rebalances,
    # commit latency. A fixed prefix keeps dashboards and rules independent of HCS_APP_ID.
    app.monitor = faust_monitor(metrics.registry, FAUST_METRICS_PREFIX)

    watch = ConnectionWatch(f"Kafka at {settings.bootstrap}").install()
    metrics.watch_kafka(lambda: watch.reachable, lambda: watch.outages)

    scans_name = topics.topic_name(topics.SCANS, settings.topic_prefix)
    scans_topic = app.topic(scans_name, partitions=topics.SCANS.partitions,
                            key_serializer="raw", value_serializer="raw")
    entries_topic = app.topic(topics.topic_name(topics.ENTRIES, settings.topic_prefix),
                              partitions=topics.ENTRIES.partitions, key_serializer="raw", value_serializer="raw")
    partials_topic = app.topic(topics.partials_topic_name(settings.topic_prefix, settings.app_id),
                               partitions=topics.PARTIALS.partitions, key_serializer="raw",
                               value_serializer="raw")
    seen = app.Table("seen", partitions=topics.SCANS.partitions, key_type=str,
                     help="event ids already judged, per venue partition, until the dedup horizon")
    state = app.Table("state", partitions=topics.SCANS.partitions, key_type=str,
                      help="per-venue state: rechecks, alert memos, compliance windows, checkpoints, partials")
    stats = app.Table("district-stats", partitions=topics.DISTRICT_STATS.partitions, key_type=str,
                      help="per-district minute partials and source watermarks")

    def is_active(partition: int) -> bool:
        return TP(scans_name, partition) in app.assignor.assigned_actives()

    partials_name = partials_topic.get_topic_name()
    # Exactly-once: the app's transactional producer; else Faust's own, which its aiokafka driver
    # keeps started behind _ensure_producer().
    producer: Callable[[], Any] = ((lambda: app.transactions) if settings.exactly_once
                                   else (lambda: cast(Any, app.producer)._ensure_producer()))
    output = BatchedOutput(producer, topics.worker_topics(settings.topic_prefix, settings.app_id),
                           transactional=settings.exactly_once)
    app.output = output
    sink = TopicSink(output, settings.topic_prefix)
    pipeline = Pipeline(policy, PartitionedState(state, changelog_writer(output, state)),
                        DedupMarks(seen, changelog_writer(output, seen)), sink,
                        PartialsSink(output, partials_name, topics.PARTIALS.partitions), metrics,
                        dedup_horizon_s=settings.dedup_horizon_hours * 3600, is_active=is_active)
    owner = district_stats_owner(PartitionedState(stats, changelog_writer(output, stats)), sink,
                                 sources=topics.SCANS.partitions)
    app.pipeline = pipeline
    app.stats_owner = owner
    entries_name = entries_topic.get_topic_name()

    # mode types the handler as generic in an unbound sender type, which mypy cannot match.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def release_partitions(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        """Another worker may now add to the revoked partitions' state: drop what is cached of it."""
        pipeline.release({tp.partition for tp in revoked if tp.topic in (scans_name, entries_name)})

    Handler = Callable[[bytes | None, RecordRef, float], None]

    def seal() -> Sealed:
        """State changes to their changelogs, and every pending record taken for one write."""
        pipeline.flush()
        owner.state.flush()
        return output.seal()

    async def persist() -> None:
        """State changes to their changelogs, then every pending record out and acknowledged."""
        await output.write(seal())

    async def drain(stream: Any, spec: topics.TopicSpec, handle: Handler) -> None:
        """Hand each batch's records to ``handle``; ack them once the outputs and state are durable.

        Batches are written while the next ones are handled (the broker's round trip overlaps
        the work), in order, one write at a time (:class:`consuming.OrderedWriter`).
        """
        writer: consuming.OrderedWriter[Sealed] = consuming.OrderedWriter(stream, seal, output.write)
        await app.views_loaded()  # nothing is judged before every view is loaded
        try:
            async for events in consuming.batches(stream, SCAN_BATCH_MAX, SCAN_BATCH_WITHIN_S):
                started = time.perf_counter()
                now = time.time()
                for event in events:
                    msg = event.message
                    ref = RecordRef(spec, msg.topic, msg.partition, msg.offset, msg.key, msg.timestamp)
                    try:
                        handle(event.value, ref, now)
                    except Exception as exc:
                        # A bug, not bad input (input errors are dead letters). The contract's
                        # DeadLetter reasons have no code for it, so it is logged (no payload: it
                        # holds person data) and counted for an alert, and the worker goes on.
                        log.exception("record %s[%d]@%d failed: %s", msg.topic, msg.partition, msg.offset,
                                      type(exc).__name__)
                        metrics.processing_errors(spec.name).inc()
                writer.handled(events)
                writer.check()  # an earlier batch could not be written: stop, unacknowledged
                if time.perf_counter() - started < OVERLAP_MIN_S or writer.backlog >= SCAN_BATCH_MAX:
                    # A quick batch (single-scan records: Faust's per-record path is the cost)
                    # is written before the next is taken, so that records gather meanwhile into
                    # a larger next batch, as writes cost per batch; a long one (gateway
                    # batches) overlaps its write with the next batch's handling.
                    await writer.finish()
        finally:
            # A stop lets the batches in hand finish: written and acknowledged, or neither.
            await writer.finish()

    # A batch whose outputs could not be written (Kafka unreachable beyond the producer's
    # retries) stops the worker unacknowledged; its restart reads the batch again.
    @app.agent(scans_topic, name="judge_scans", supervisor_strategy=CrashingSupervisor)
    async def judge_scans(stream: Any) -> None:
        """Judge every scan of every record: decode -> dedup -> rules -> emit -> count."""
        await drain(stream, topics.SCANS, pipeline.on_scan_record)

    @app.agent(entries_topic, name="count_entries", supervisor_strategy=CrashingSupervisor)
    async def count_entries(stream: Any) -> None:
        """Add people counted at checkpoints to their compliance windows: decode -> dedup -> count."""
        await drain(stream, topics.ENTRIES, pipeline.on_entries_record)

    @app.agent(partials_topic, name="aggregate_district_stats", supervisor_strategy=CrashingSupervisor)
    async def aggregate_district_stats(stream: Any) -> None:
        """Merge every partition's part of each district minute; emit when all have passed it."""
        def on_partial(value: bytes | None, ref: RecordRef, now: float) -> None:
            owner.on_record(value or b"", ref.partition)  # internal records: an empty one is a bug

        await drain(stream, topics.PARTIALS, on_partial)

    @app.timer(RECHECK_TICK_S, name="expire_rechecks")
    async def expire_rechecks() -> None:
        pipeline.expire_rechecks(time.time())
        await persist()

    @app.timer(WINDOW_TICK_S, name="close_windows")
    async def close_windows() -> None:
        now = time.time()
        pipeline.close_windows(now)
        pipeline.check_silent(now)
        pipeline.close_minutes(now)
        await persist()

    @app.timer(WINDOW_TICK_S, name="watch_kafka")
    async def watch_kafka() -> None:
        watch.check()  # one log line when Kafka is back

    @app.timer(SWEEP_TICK_S, name="sweep_state")
    async def sweep_state() -> None:
        pipeline.sweep(time.time())
        await persist()

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    readiness = Readiness()
    app.readiness = readiness
    app.views = []

    def tables_recovered() -> tuple[bool, dict[str, Any]]:
        recovery = cast(faust_patches.TableManager, app.tables).recovery
        progress = recovery.progress()
        return recovery.ready, {"recovering": recovery.in_recovery,
                                "tables": {name: {"read": p.read, "total": p.total} for name, p in progress.items()}}

    readiness.add("tables", tables_recovered)

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        return web.text("ok\n")  # the event loop answers: alive (Kafka's state is not asked)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready, detail = readiness.status()
        return web.json(detail, status=200 if ready else 503)

    return app


class BridgeApp(faust_patches.AtLeastOnceApp):
    """The alerts bridge; closes its HTTP session when it stops."""

    alertmanager: Any

    async def on_stop(self) -> None:
        await self.alertmanager.close()
        await super().on_stop()


def create_bridge_app(settings: Settings) -> BridgeApp:
    """The ``hcs alerts-bridge`` app: its own consumer group on the alerts topic, no web server."""
    from streams.bridge import AlertmanagerClient, to_alertmanager

    (settings.data_dir / "alerts-bridge").mkdir(parents=True, exist_ok=True)  # Faust makes only the leaf
    app = BridgeApp(
        f"{settings.app_id}-alerts-bridge",
        broker=settings.broker_url,
        broker_credentials=settings.kafka.faust_credentials(),
        store="memory://",
        datadir=str(settings.data_dir / "alerts-bridge"),
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        Worker=QuietWorker,
        broker_session_timeout=20.0,
        broker_heartbeat_interval=3.0,
    )
    alerts_topic = app.topic(topics.topic_name(topics.ALERTS, settings.topic_prefix),
                             key_serializer="raw", value_serializer="raw")
    client = AlertmanagerClient(settings.alertmanager_url)
    watch = ConnectionWatch(f"Kafka at {settings.bootstrap}").install()

    @app.timer(WINDOW_TICK_S, name="watch_kafka")
    async def watch_kafka() -> None:
        watch.check()  # one log line when Kafka is back

    @app.agent(alerts_topic, name="post_alerts", supervisor_strategy=CrashingSupervisor)
    async def post_alerts(stream: Any) -> None:
        """Post each batch of alerts; the batch is acknowledged only after Alertmanager took it."""
        async for events in consuming.batches(stream, 100, 0.2):
            now = time.time()
            batch = []
            for event in events:
                try:
                    # The record's timestamp is when the worker raised the alert: its age.
                    batch.append(to_alertmanager(orjson.loads(event.value), now, event.message.timestamp))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("skipping an alert record that is not hcs.alert.v1: %s", type(exc).__name__)

            async def post(alerts: list[dict[str, Any]] = batch) -> None:
                if alerts:
                    await client.post(alerts)

            # A stop does not wait for an unreachable Alertmanager: the batch stays unacknowledged
            # and is posted again after a restart (Alertmanager merges the repeat).
            await consuming.complete(stream, events, post, finish_on_stop=False)

    app.alertmanager = client
    return app
