"""Fault drill: poison records of every kind, each alone on the scans topic of a running worker.

Each once crashed the worker, and its restart crashed again on the same record (a crash loop:
the valid scans after it were never judged). Now every one is dead-lettered with a contract
reason, the worker stays up, and the valid scans after it are judged once each.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.contract import topics
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, read, running_worker
from tests.schema_check import assert_valid

pytestmark = [pytest.mark.integration, pytest.mark.drill]

TOPIC_MAX_BYTES = 4 * 1024 * 1024
ID_NUMBER = f.valid_id_number("330106", "19900101", "124")


def poison() -> list[tuple[str, bytes, str]]:
    """(what, record, the dead letter's reason) of every poison record the drills found."""
    deep = b"[" * 10_000 + b"]" * 10_000
    good = f.encode(f.scan())
    return [
        ("2 MB scan", f.encode(f.scan(note="x" * 2_000_000)), "TOO_LARGE"),
        ("900 KB not JSON", b"\x00 not json " * 80_000, "NOT_JSON"),
        ("1,001-scan batch", f.encode(f.batch([f.scan() for _ in range(1001)])), "SCHEMA_INVALID"),
        ("truncated JSON", good[: len(good) // 2], "NOT_JSON"),
        ("10,000 levels deep", good[:-1] + b',"x":' + deep + b"}", "SCHEMA_INVALID"),
        ("ID number as person_ref", f.encode(f.scan(person_ref=ID_NUMBER)), "SCHEMA_INVALID"),
        ("name as person_ref", f.encode(f.scan(person_ref="王小明王小明王小明王小明王小明王小明")), "SCHEMA_INVALID"),
        ("no schema", f.encode({k: v for k, v in f.scan().items() if k != "schema"}), "UNSUPPORTED_SCHEMA"),
        ("empty", b"", "NOT_JSON"),
    ]


def produce_large(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=TOPIC_MAX_BYTES)
        await producer.start()
        try:
            for key, value in records:  # one by one, in order
                await (await producer.send(topic, value=value, key=key))
        finally:
            await producer.stop()

    asyncio.run(run())


def create_large_scans_topic(bootstrap: str, topic: str) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, topics.SCANS.partitions, 1,
                                                topic_configs={"max.message.bytes": str(TOPIC_MAX_BYTES)})])
        finally:
            await admin.close()

    asyncio.run(run())


@pytest.fixture
def worker(worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str,
           tmp_path: Path) -> Iterator[WorkerProcess]:
    create_large_scans_topic(kafka_bootstrap, name(topics.SCANS, topic_prefix))
    create_topics(kafka_bootstrap, topic_prefix)
    with running_worker(worker_env, tmp_path / "worker.log") as proc:
        yield proc


ENTRY = {"schema": "hcs.entries.v1", "event_id": "c-1", "checkpoint_id": "cp-1", "venue_id": "venue-1",
         "venue_type": "mall", "district": "330106", "window_start": "2022-05-10T08:00:00+08:00",
         "window_end": "2022-05-10T08:01:00+08:00", "entries": 0}


def test_poison_entry_counts_are_dead_lettered_and_never_count(
        worker: WorkerProcess, kafka_bootstrap: str, topic_prefix: str) -> None:
    huge = f.encode(ENTRY).replace(b'"entries":0', b'"entries":' + b"1" * 31)
    no_schema = f.encode({k: v for k, v in ENTRY.items() if k != "schema"})
    good = f.encode({**ENTRY, "event_id": "c-2", "entries": 7})
    produce_large(kafka_bootstrap, name(topics.ENTRIES, topic_prefix),
                  [(b"venue-1", huge), (b"venue-1", no_schema), (b"venue-1", good)])
    dead = read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: len(v) >= 2, settle_s=2)
    assert sorted((d["reason"], d["detail"].split(":")[0]) for d in dead) == [
        ("SCHEMA_INVALID", "entries"), ("UNSUPPORTED_SCHEMA", "schema")]
    deadline = time.monotonic() + 30
    while 'hcs_entries_total{district="330106",venue_type="mall"} 7.0' not in worker.metrics_text():
        assert time.monotonic() < deadline, worker.metrics_text()
        time.sleep(0.2)


def test_every_poison_record_is_dead_lettered_and_the_scans_after_it_are_judged(
        worker: WorkerProcess, kafka_bootstrap: str, topic_prefix: str) -> None:
    bad = poison()
    records: list[tuple[bytes, bytes]] = []
    valid: list[str] = []
    for _, value, _ in bad:
        records.append((b"venue-1", value))
        after = [f.scan() for _ in range(5)]
        valid += [s["event_id"] for s in after]
        records += [(b"venue-1", f.encode(s)) for s in after]
    produce_large(kafka_bootstrap, name(topics.SCANS, topic_prefix), records)

    decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= len(valid),
                     timeout_s=90, settle_s=2)
    dead = read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: len(v) >= len(bad), settle_s=1)

    assert sorted(d["event_id"] for d in decisions) == sorted(valid)  # each once
    assert [d["reason"] for d in sorted(dead, key=lambda d: d["offset"])] == [reason for _, _, reason in bad]
    assert_valid("deadletter.v1", dead)
    for letter, (what, value, _) in zip(sorted(dead, key=lambda d: d["offset"]), bad, strict=True):
        assert letter["payload_size"] == len(value), what
        kept = base64.b64decode(letter["payload_b64"])
        assert len(kept) <= 64 * 1024 and letter["payload_truncated"] == (len(kept) < len(value) and
                                                                           not letter["payload_redacted"]), what
        if not letter["payload_redacted"]:
            assert value.startswith(kept) and letter["payload_sha256"] == hashlib.sha256(value).hexdigest(), what
    id_letter = next(d for d in dead if "resident ID number" in d["detail"])
    assert ID_NUMBER.encode() not in base64.b64decode(id_letter["payload_b64"])
    assert orjson.loads(base64.b64decode(id_letter["payload_b64"]))["person_ref"] == "[redacted]"

    assert worker.proc is not None and worker.proc.poll() is None  # alive
    log = worker.log_path.read_text()
    assert "hcs_entries_total{" not in worker.metrics_text()  # no entry count was accepted above
    assert "[ERROR]" not in log and "Traceback" not in log, worker.log_tail()
    assert ID_NUMBER not in log and ID_NUMBER not in str(dead)
    assert "hcs_processing_errors_total{" not in worker.metrics_text()
