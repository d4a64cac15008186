"""Produce to and read from a real broker, and run real ``hcs worker`` processes, for tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.contract import topics
from streams.dev.localkafka import die_with_parent
from streams.kafka.cluster import ensure_topics
from streams.settings import Settings


def create_topics(bootstrap: str, prefix: str) -> None:
    asyncio.run(ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix)))


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]],
            sent_at: Iterable[float | None] | None = None) -> int:
    """Send ``records`` (key, value) in order; ``sent_at``: the record timestamps (seconds) a
    producer sending them then would have set (default: now, as any producer does)."""
    async def run() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            items = list(records)
            stamps = list(sent_at) if sent_at is not None else [None] * len(items)
            futures = [await producer.send(topic, value=value, key=key,
                                           timestamp_ms=None if at is None else int(at * 1000))
                       for (key, value), at in zip(items, stamps, strict=True)]
            await producer.flush()
            for fut in futures:
                await fut
            return len(futures)
        finally:
            await producer.stop()

    return asyncio.run(run())


def read(bootstrap: str, topic: str, until: Callable[[list[dict[str, Any]]], bool],
         timeout_s: float = 60.0, settle_s: float = 0.0) -> list[dict[str, Any]]:
    """Read ``topic`` from the beginning until ``until(values)`` holds (then ``settle_s`` more
    seconds, to catch anything extra), or the timeout passes. Values are decoded JSON with
    ``_key`` added."""

    async def run() -> list[dict[str, Any]]:
        # As every reader of the worker's outputs must: records of aborted transactions are not outputs.
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    isolation_level="read_committed",
                                    enable_auto_commit=False, group_id=None)
        await consumer.start()
        values: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        try:
            while time.monotonic() < deadline:
                if settle_until is not None and time.monotonic() >= settle_until:
                    break
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for rec in records:
                        value = orjson.loads(rec.value)
                        value["_key"] = rec.key.decode() if rec.key is not None else None
                        values.append(value)
                if settle_until is None and until(values):
                    settle_until = time.monotonic() + settle_s
            return values
        finally:
            await consumer.stop()

    return asyncio.run(run())


def read_records(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, bytes, bytes | None, int]]:
    """Every committed record of ``topic`` from its beginning to its end now, as (partition, key,
    value, timestamp in ms): a changelog as table recovery reads it."""
    from aiokafka import TopicPartition

    async def run() -> list[tuple[int, bytes, bytes | None, int]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                    enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            found: list[tuple[int, bytes, bytes | None, int]] = []
            deadline = time.monotonic() + 30
            left = set(tps)
            while left and time.monotonic() < deadline:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    found += [(tp.partition, r.key, r.value, r.timestamp) for r in records]
                left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of each partition of ``topic`` that has one."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def run() -> dict[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}

    return asyncio.run(run())


def child_setup() -> None:
    """``preexec_fn`` of the commands a test starts: they die with the test, and a SIGINT stops
    them even when the test run itself was started in the background with SIGINT ignored (which
    a child would inherit, and Python would then never raise KeyboardInterrupt)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def name(spec: topics.TopicSpec, prefix: str) -> str:
    return topics.topic_name(spec, prefix)


class WorkerProcess:
    """A real ``hcs worker`` (or another Faust command of hcs) in a subprocess; ready once it says
    Ready and, for the worker, its /readyz answers 200."""

    def __init__(self, env: dict[str, str], log_path: Path, command: str = "worker") -> None:
        self.env = env
        self.log_path = log_path
        self.command = command
        self.port = int(env["HCS_WEB_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([sys.executable, "-m", "streams", self.command, "-l", "info"],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=child_setup)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            has_web = self.command == "worker"
            if b"Worker]: Ready" in self.log_path.read_bytes() and (not has_web or self.ready()):
                return self
            time.sleep(0.3)
        raise RuntimeError(f"worker not ready in {timeout_s}s:\n{self.log_tail()}")

    def ready(self) -> bool:
        """/readyz says ready: the worker's tables are recovered and it judges records."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:  # an HTTPError (503) included
            return False

    def metrics_text(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
                return str(resp.read().decode())
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)


@contextmanager
def running_worker(env: dict[str, str], log_path: Path) -> Iterator[WorkerProcess]:
    """A started ``hcs worker``, stopped when the block ends."""
    proc = WorkerProcess(env, log_path).start()
    try:
        yield proc
    finally:
        proc.stop()
