"""The worker's side of the cluster: its topics made and checked before it starts, the cluster
waited for while it is unreachable, and its transactional producer."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from streams.contract import topics
from streams.errors import ClusterAccessError, TopicShapeError
from streams.kafka.errors import client_errors, describe_client_error, is_refusal
from streams.settings import Settings

log = logging.getLogger(__name__)

PRODUCER_BATCH_BYTES = 512 * 1024
PRODUCER_REQUEST_BYTES = 1024 * 1024
TRANSACTION_TIMEOUT_MS = 15_000


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the contract topics that do not exist yet; return the names created.

    Raises :class:`TopicShapeError` if a topic the worker relies on exists with another
    partition count (made by hand, or by a broker that auto-creates topics): per-venue state
    lives in the partition of the venue's scans, so scans, entries, decisions and the tables'
    changelogs must all have the counts hcs declares; the worker does not adapt.
    """
    admin = await admin_client(settings)
    try:
        existing = set(await admin.list_topics())
        required = topics.required_partitions(settings.topic_prefix, settings.app_id, settings.venue_partitions)
        check_partitions(required, await partition_counts(admin, [n for n in required if n in existing]))
        # The internal partials topic too: created by Faust on subscription, it raced the consumer;
        # and the tables' changelogs, compacted only (Faust would make them as it likes).
        configs = topics.worker_topic_configs(settings.topic_prefix, settings.app_id,
                                              settings.personal_retention_days)
        missing = [NewTopic(name, partitions, settings.replication, topic_configs=configs[name])
                   for name, partitions in required.items() if name not in existing and name in configs]
        missing += [NewTopic(name, partitions, settings.replication)
                    for name, partitions in required.items() if name not in existing and name not in configs]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
            await _wait_for_leaders(settings, missing)
        present = sorted(name for name in configs if name in existing)
        for line in config_mismatches(configs, await _topic_configs(admin, present)):
            log.warning(line)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _topic_configs(admin: Any, names: list[str]) -> dict[str, dict[str, str]]:
    """The cleanup policy and retention of existing topics, as the broker has them."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    if not names:
        return {}
    found: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]):
        for resource in response.resources:
            error_code, _, _, name, entries = resource[:5]
            if not error_code:
                found[name] = {entry[0]: entry[1] for entry in entries
                               if entry[0] in ("cleanup.policy", "retention.ms")}
    return found


def config_mismatches(wanted: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]) -> list[str]:
    """One line per existing topic whose cleanup policy or retention is not what hcs creates it with."""
    lines = []
    for name, config in sorted(actual.items()):
        expected = wanted.get(name)
        if expected is None:
            continue
        differs = {key: (config.get(key), value) for key, value in expected.items()
                   if _normal(key, config.get(key)) != _normal(key, value)}
        if differs:
            lines.append(f"topic {name} keeps its records otherwise than hcs would create it: "
                         + ", ".join(f"{key} {_readable(key, have)} (hcs: {_readable(key, want)})"
                                     for key, (have, want) in differs.items())
                         + f"; change it with kafka-configs.sh --alter --entity-type topics --entity-name {name} "
                         f"--add-config " + ",".join(f"{k}={_quoted(v)}" for k, (_, v) in differs.items()))
    return lines


def _normal(key: str, value: str | None) -> str | None:
    return ",".join(sorted(value.split(","))) if key == "cleanup.policy" and value else value


def _readable(key: str, value: str | None) -> str:
    if key == "retention.ms" and value is not None and value.lstrip("-").isdigit():
        ms = int(value)
        return "forever" if ms < 0 else f"{ms / topics.DAY_MS:g} days"
    return str(value)


def _quoted(value: str) -> str:
    return f"[{value}]" if "," in value else value


async def wait_for_cluster(settings: Settings) -> None:
    """Return once the cluster answers (saying once that it does not, and retrying with backoff)."""
    admin = await admin_client(settings)
    await admin.close()


async def admin_client(settings: Settings, retry_s: float = 2.0, max_retry_s: float = 30.0) -> Any:
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


async def _wait_for_leaders(settings: Settings, created: list[NewTopic], timeout_s: float = 15.0) -> None:
    """Until the partitions of the topics just made answer offset requests. A reader asking for
    their offsets at once (the register's view, at the worker's start) got NotLeaderForPartition
    while the broker took up their leadership, which aiokafka logs as errors while it retries:
    those retries happen here, their log lines kept off the console."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    partitions = [TopicPartition(t.name, p) for t in created for p in range(t.num_partitions)]
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), group_id=None, enable_auto_commit=False)
    with client_errors():
        await consumer.start()
        try:
            await asyncio.wait_for(consumer.end_offsets(partitions), timeout_s)
        except (TimeoutError, KafkaError):
            pass  # the reader will retry on its own; this wait only spares its log lines
        finally:
            await consumer.stop()


async def partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
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
