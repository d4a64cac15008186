"""Growing past the partitions: a new generation of topics with more venue partitions, the old
generation's state carried into it, and the old generation's inputs relayed into it.

The venue partitions are the ceiling of a group's parallelism, and they cannot be raised in place:
a venue's records and its state share a partition number (murmur2 of the venue id modulo the
count), so more partitions move most venues, and each venue's state would have to move with it
while its records go on arriving. A generation is a topic prefix, an app id and a venue
partition count (``HCS_TOPIC_PREFIX``, ``HCS_APP_ID``, ``HCS_VENUE_PARTITIONS``); the move, with
the old generation's workers stopped (``hcs migrate``; README, "Growing past the partitions"):

1. the new generation's topics are made (:func:`streams.kafka.cluster.ensure_topics`);
2. the old tables' changelogs are read to their end and each record written to the new changelog
   partition its key belongs to (:mod:`streams.ops.placement`): a venue's state goes where the venue's
   records will go, what is looked up by an id that names no venue (dedup marks, alert memos)
   goes to every new partition that inherits the old one's venues, what belongs to a partition
   number stays at it;
3. the old inputs are relayed into the new topics, keyed as they are: the device-facing and
   internal topics from where the old group stopped, the topics read whole (the register, the
   policies, cases, exposures) and the compacted records (finding status, traces, incidents)
   from their beginning, for as long as anyone still writes to the old generation.

The new generation's workers start once the state is carried; devices and the other writers
switch to the new prefix at their pace meanwhile. A scan sent to the old topics is relayed; a
scan sent again to the new ones (a device retrying across its switch) meets the dedup mark the
old generation made: every scan is decided once. The relay is at least once (it resumes from
its own committed positions), which the same marks absorb.

The new count must be a multiple of the old one: each new partition then inherits the venues of
exactly one old partition (``q mod old``), which is what lets the state that names no venue be
carried without knowing it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.contract import topics
from streams.errors import ConfigError
from streams.kafka.output import partition_for
from streams.ops.placement import SEEN_MOVES, STATE_MOVES, Placer, seen_record, state_record, visit_record


@dataclass(frozen=True)
class Generation:
    """A generation of topics: their prefix, the workers' app id, the venue partitions."""

    prefix: str
    app_id: str
    venue_partitions: int

    def name(self, spec: topics.TopicSpec) -> str:
        return topics.cluster_topic_name(spec, self.prefix, self.app_id)

    def changelog(self, table: str) -> str:
        return topics.changelog_topic_name(self.app_id, table)

    def partitions(self, spec: topics.TopicSpec) -> int:
        return topics.partitions(spec, self.venue_partitions)


def check_move(old: Generation, new: Generation) -> None:
    """Refuse a move that cannot carry the state (:class:`ConfigError`)."""
    if new.venue_partitions % old.venue_partitions:
        raise ConfigError(f"HCS_VENUE_PARTITIONS={new.venue_partitions} is not a multiple of the old generation's "
                          f"{old.venue_partitions}: each new partition must inherit the venues of one old one "
                          f"(e.g. {old.venue_partitions} -> {old.venue_partitions * 2})")
    if new.app_id == old.app_id or new.prefix == old.prefix:
        raise ConfigError("the new generation needs its own HCS_TOPIC_PREFIX and HCS_APP_ID "
                          f"(old: {old.prefix!r}, {old.app_id!r}; new: {new.prefix!r}, {new.app_id!r})")


# -- the move --------------------------------------------------------------------------------------

# Read from the old group's committed offsets on: what its workers consume.
CONSUMED = (topics.SCANS, topics.ENTRIES, topics.OBSERVATIONS, topics.FINDINGS, topics.ALERTS,
            topics.ALERT_ACTIONS, topics.PARTIALS, topics.RECURRENCES, topics.TRACE_REPORTS)
# Read from their beginning: what every worker reads whole, and the compacted records of record.
WHOLE = (topics.MANAGEMENT, topics.POLICIES, topics.CASES, topics.EXPOSURES, topics.FINDING_STATUS, topics.TRACES,
         topics.INCIDENTS)
VENUE_TABLES = ("seen", "state", "visits")
SAME_TABLES = ("district-stats", "incidents")  # keyed by district, by alert: their partitions do not change


@dataclass
class Carried:
    """What the move carried: records read and written per changelog, and relayed per topic."""

    read: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)
    relayed: Counter[str] = field(default_factory=Counter)
    moves: Counter[str] = field(default_factory=Counter)


async def group_members(admin: Any, group: str) -> int:
    """How many members the consumer group has now (0: none, or no such group)."""
    described = await admin.describe_consumer_groups([group])
    for response in described:
        for entry in response.groups:
            if entry[1] == group:
                return len(entry[5])
    return 0


async def carry_state(client: dict[str, Any], old: Generation, new: Generation, counts: dict[str, int],
                      out: Carried, say: Callable[[str], None]) -> None:
    """Every old changelog's records, read to their end, written where they belong in the new ones
    (``counts``: the partitions of the old topics that exist)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    producer = AIOKafkaProducer(**client, acks="all", enable_idempotence=True, linger_ms=20,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        for table in (*VENUE_TABLES, *SAME_TABLES):
            source, target = old.changelog(table), new.changelog(table)
            if source not in counts:
                say(f"  {table}: no changelog {source} (nothing to carry)")
                continue
            consumer = AIOKafkaConsumer(**client, group_id=None, enable_auto_commit=False,
                                        isolation_level="read_committed")
            await consumer.start()
            try:
                tps = [TopicPartition(source, p) for p in range(counts[source])]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                ends = await consumer.end_offsets(tps)
                placer = Placer(SEEN_MOVES if table == "seen" else STATE_MOVES, old.venue_partitions,
                                new.venue_partitions)
                sends = []
                remaining = {tp for tp in tps if ends[tp] > await consumer.position(tp)}
                quiet = 0  # polls in a row that brought nothing: past a partition's last record (a
                while remaining and quiet < 5:  # transaction marker may end it), it is read whole
                    fetched = await consumer.getmany(*remaining, timeout_ms=1000)
                    quiet = 0 if fetched else quiet + 1
                    for tp, records in fetched.items():
                        for record in records:
                            out.read[table] += 1
                            # Its timestamp kept: the visits' changelog deletes by time, from the visit's.
                            stamp = record.timestamp if record.timestamp_type == 0 else None
                            for q, key, value in _route(table, record, tp.partition, placer, new.venue_partitions):
                                sends.append(await producer.send(target, value, key=key, partition=q,
                                                                 timestamp_ms=stamp))
                                out.written[table] += 1
                    for tp in list(remaining):
                        if await consumer.position(tp) >= ends[tp]:
                            remaining.discard(tp)
                    if len(sends) > 10_000:
                        await asyncio.gather(*sends)
                        sends = []
                await asyncio.gather(*sends)
                out.moves.update(placer.counts)
                say(f"  {table}: {out.read[table]:,} records read, {out.written[table]:,} written to {target}")
            finally:
                await consumer.stop()
    finally:
        await producer.stop()


def _route(table: str, record: Any, partition: int, placer: Placer, new: int) -> list[tuple[int, bytes, bytes | None]]:
    if table == "visits":
        return visit_record(record.key, record.value, partition, new)
    if table == "seen":
        return seen_record(record.key, record.value, partition, placer)
    if table == "state":
        return state_record(record.key, record.value, partition, placer)
    return [(partition, record.key, record.value)]  # partitions unchanged: as it is


async def start_positions(admin: Any, old: Generation, counts: dict[str, int], relay_group: str
                          ) -> dict[Any, int]:
    """Where the relay reads each old topic partition from: its own committed position (a relay
    resumed), else the old group's (what its workers consumed), else the beginning."""
    from aiokafka import TopicPartition

    own = await admin.list_consumer_group_offsets(relay_group)
    workers = await admin.list_consumer_group_offsets(old.app_id)
    positions: dict[Any, int] = {}
    for spec in (*CONSUMED, *WHOLE):
        name = old.name(spec)
        for p in range(counts.get(name, 0)):
            tp = TopicPartition(name, p)
            done = own.get(tp) or (workers.get(tp) if spec in CONSUMED else None)
            positions[tp] = done.offset if done is not None and done.offset >= 0 else -1
    return positions


async def relay(client: dict[str, Any], admin: Any, old: Generation, new: Generation, counts: dict[str, int],
                out: Carried, say: Callable[[str], None], until_idle_s: float | None,
                report_every_s: float = 60.0) -> None:
    """Forward the old generation's inputs to the new one, keyed as they are, until they were idle
    ``until_idle_s`` (None: until stopped); each forwarded batch's position committed once written."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import OffsetAndMetadata

    relay_group = f"{old.app_id}-relay-to-{new.app_id}"
    targets = {old.name(spec): spec for spec in (*CONSUMED, *WHOLE)}
    consumer = AIOKafkaConsumer(**client, group_id=relay_group, enable_auto_commit=False,
                                isolation_level="read_committed", auto_offset_reset="earliest")
    producer = AIOKafkaProducer(**client, acks="all", enable_idempotence=True, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        positions = await start_positions(admin, old, counts, relay_group)
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            if offset >= 0:
                consumer.seek(tp, offset)
            else:
                await consumer.seek_to_beginning(tp)
        idle_since = last_report = time.monotonic()
        while until_idle_s is None or time.monotonic() - idle_since < until_idle_s:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            sends, done = [], {}
            for tp, records in batches.items():
                spec = targets[tp.topic]
                name, count = new.name(spec), new.partitions(spec)
                for record in records:
                    q = partition_for(record.key, count) if record.key is not None else tp.partition % count
                    sends.append(await producer.send(name, record.value, key=record.key, partition=q,
                                                     timestamp_ms=record.timestamp if record.timestamp_type == 0
                                                     else None, headers=list(record.headers or ())))
                    out.relayed[spec.name] += 1
                done[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
            if sends:
                await asyncio.gather(*sends)
                await consumer.commit(done)
                idle_since = time.monotonic()
            if time.monotonic() - last_report >= report_every_s:
                last_report = time.monotonic()
                say(f"  relayed so far: {_counts(out.relayed)}")
    finally:
        await producer.stop()
        await consumer.stop()


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counter.items())) or "nothing"


async def migrate(settings: Any, old: Generation, until_idle_s: float | None,
                  say: Callable[[str], None] = print) -> Carried:
    """The whole move into the generation of ``settings`` (see the module's doc)."""
    from streams.kafka.cluster import admin_client, ensure_topics, partition_counts

    new = Generation(settings.topic_prefix, settings.app_id, settings.venue_partitions)
    check_move(old, new)
    client = settings.client_kwargs()
    admin = await admin_client(settings)
    out = Carried()
    try:
        for group, who in ((old.app_id, "old"), (new.app_id, "new")):
            if members := await group_members(admin, group):
                raise ConfigError(f"the {who} generation's group {group} has {members} worker(s) running: "
                                  "stop the old generation's workers first, start the new one's after the state "
                                  "is carried")
        say(f"moving {old.prefix or '(no prefix)'} {old.app_id} ({old.venue_partitions} venue partitions) -> "
            f"{new.prefix or '(no prefix)'} {new.app_id} ({new.venue_partitions})")
        wanted = [old.changelog(t) for t in (*VENUE_TABLES, *SAME_TABLES)] + [old.name(s) for s in (*CONSUMED, *WHOLE)]
        existing = set(await admin.list_topics())
        counts = await partition_counts(admin, [n for n in wanted if n in existing])
        made = await ensure_topics(settings)
        await _visits_changelog(admin, old, new, settings.replication, existing)
        say(f"  topics of the new generation: {len(made)} made")
        await carry_state(client, old, new, counts, out, say)
        say(f"state carried ({_counts(out.moves)}); start the new generation's workers now, and switch "
            f"the devices and every other writer to {new.prefix or '(no prefix)'}")
        say("relaying the old generation's inputs" + (f" until idle for {until_idle_s:g} s" if until_idle_s
                                                        else " until stopped (Ctrl-C)"))
        await relay(client, admin, old, new, counts, out, say, until_idle_s)
        say(f"relayed: {_counts(out.relayed)}")
        return out
    finally:
        await admin.close()


async def _visits_changelog(admin: Any, old: Generation, new: Generation, replication: int,
                            existing: set[str]) -> None:
    """The new visits' changelog, made as the old one is (Faust makes it at a worker's start, with
    the retention of the policy in force): compacted and deleted by time, the same retention.
    ``existing``: the topics before the move (making the new generation's topics does not make it)."""
    from aiokafka.admin import NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    source, target = old.changelog("visits"), new.changelog("visits")
    if target in existing or source not in existing:
        return
    keep = ("cleanup.policy", "retention.ms", "segment.ms")
    configs: dict[str, str] = {}
    for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, source)]):
        for resource in response.resources:
            configs.update({entry[0]: entry[1] for entry in resource[4] if entry[0] in keep})
    await admin.create_topics([NewTopic(target, new.venue_partitions, replication, topic_configs=configs)])

