"""Restart-to-ready by state size: ``python -m benchmarks.restart --keys 100000,1000000``.

Fills a worker's state changelog with ``keys`` records as a long run leaves it (alert memos of
distinct dedup keys, spread over the 8 venue partitions), then starts a real ``hcs worker`` on it
twice with the same data dir — as a restart that keeps its data dir — and times each from the
process start to ``/readyz`` answering 200, with the recovery time the worker logs and its
resident memory once ready. Each table store of ``--stores`` starts on the same changelog: with
``memory`` every start replays the whole changelog; with ``rocksdb`` the first start writes it to
disk, and a restart loads the disk and reads only what came after its last persisted offset.
Starts its own local broker unless ``HCS_BOOTSTRAP`` is set.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import click
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.run import worker_ready
from streams.contract import topics
from streams.contract.encoding import encode
from streams.dev.localkafka import LocalKafka, free_port
from streams.kafka.cluster import ensure_topics
from streams.rules.alerts import AlertMemo
from streams.settings import Settings

RECOVERED = re.compile(r"tables recovered in ([0-9.]+) s")


async def fill(bootstrap: str, changelog: str, keys: int) -> None:
    """``keys`` alert memos in the state changelog, as the worker writes them (JSON key, [partition, value])."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # made as Faust makes a table's changelog
        await admin.create_topics([NewTopic(changelog, topics.SCANS.partitions, 1,
                                            topic_configs={"cleanup.policy": "compact,delete"})])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        now = time.time()
        for i in range(keys):
            partition = i % topics.SCANS.partitions
            memo = AlertMemo(now - 60, 0, now - 60, now - 60, ())
            await producer.send(changelog, encode([partition, memo]), key=encode(f"a|KEY_PERSON_DETECTED|{i:064x}|v"),
                                partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def rss_mib(pid: int) -> float:
    """A process's resident memory, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_to_ready(env: dict[str, str], log: Path, timeout_s: float = 1800.0) -> tuple[float, float | None, float]:
    """Seconds from a worker's start to /readyz 200, the recovery time it logged and its resident
    memory then (MiB); stops it."""
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streams", "worker", "-l", "info"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while time.monotonic() - started < timeout_s:
            if proc.poll() is not None:
                raise click.ClickException(f"the worker exited with {proc.returncode}: see {log}")
            if worker_ready(env["HCS_WEB_PORT"]):
                took = time.monotonic() - started
                found = RECOVERED.search(log.read_text(errors="replace"))
                return took, float(found.group(1)) if found else None, rss_mib(proc.pid)
            time.sleep(0.2)
        raise click.ClickException(f"not ready in {timeout_s:.0f} s: see {log}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


@click.command()
@click.option("--keys", default="100000,1000000", show_default=True, help="State sizes, comma-separated.")
@click.option("--stores", default="memory,rocksdb", show_default=True, help="HCS_TABLE_STORE values, comma-separated.")
def main(keys: str, stores: str) -> None:
    kafka = None
    bootstrap = os.environ.get("HCS_BOOTSTRAP")
    work = Path(tempfile.mkdtemp(prefix="hcs-restart-"))
    if not bootstrap:
        kafka = LocalKafka(work / "broker", heap="1g", owned=True)
        bootstrap = kafka.start(port=free_port()).bootstrap or ""
    try:
        for n in (int(k) for k in keys.split(",")):
            app_id = f"restart-{uuid.uuid4().hex[:8]}"
            settings = Settings(bootstrap=bootstrap, app_id=app_id)
            asyncio.run(ensure_topics(settings))
            asyncio.run(fill(bootstrap, topics.changelog_topic_name(app_id, "state"), n))
            for store in stores.split(","):
                env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_")}
                env.update(HCS_BOOTSTRAP=bootstrap, HCS_APP_ID=app_id, HCS_WEB_PORT=str(free_port()),
                           HCS_DATA_DIR=str(work / f"{app_id}-{store}"), HCS_TABLE_STORE=store)
                first = start_to_ready(env, work / f"{app_id}-{store}-1.log")
                kept = start_to_ready(env, work / f"{app_id}-{store}-2.log")  # the same data dir, kept
                click.echo(f"{n:,} keys, {store} store: first start ready in {first[0]:.1f} s "
                           f"(recovery {first[1]} s, {first[2]:.0f} MiB), restart with the data dir kept "
                           f"{kept[0]:.1f} s (recovery {kept[1]} s, {kept[2]:.0f} MiB)")
    finally:
        if kafka is not None:
            kafka.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
