"""The two baselines of the benchmark, each run as its own process:

- ``raw``: a plain aiokafka consumer, orjson decode, a trivial check and one decision per scan
  produced in batches (``create_batch``/``send_batch`` per partition): the practical limit of
  Python on this machine;
- ``bare``: a Faust agent that only decodes and forwards one small record per scan.

Both append ``{"t": wall, "n": scans done}`` lines to a progress file twice a second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import orjson


def scans_of(value: bytes) -> list[dict[str, Any]]:
    doc = orjson.loads(value)
    return doc["scans"] if doc.get("schema") == "hcs.scan-batch.v1" else [doc]


def decision_of(scan: dict[str, Any]) -> bytes:
    # The trivial check: green code and a mask.
    ok = scan["health_code"]["color"] == "green" and scan.get("mask") is True
    return orjson.dumps({"event_id": scan["event_id"], "decision": "ALLOW" if ok else "DENY"})


class Progress:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.n = 0
        self._last = 0.0

    def add(self, n: int) -> None:
        first = self.n == 0 and n > 0
        self.n += n
        now = time.time()
        if first or now - self._last >= 0.5:  # the first sample marks when work began
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        self._last = now or time.time()
        with self.path.open("ab") as out:
            out.write(orjson.dumps({"t": self._last, "n": self.n}) + b"\n")


async def run_raw(bootstrap: str, source: str, sink: str, group: str, progress: Progress) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from benchmarks.run import client_kwargs

    consumer = AIOKafkaConsumer(source, **client_kwargs(bootstrap), group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=32 * 1024 * 1024)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap), linger_ms=5, max_batch_size=1024 * 1024,
                                max_request_size=4 * 1024 * 1024)
    await consumer.start()
    await producer.start()
    partitions = sorted(await producer.partitions_for(sink))
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            if not batches:
                progress.add(0)
                continue
            out: dict[int, Any] = {}
            sent = []
            done = 0
            for records in batches.values():
                for record in records:
                    for scan in scans_of(record.value):
                        partition = partitions[hash(scan["venue_id"]) % len(partitions)]
                        batch = out.get(partition)
                        if batch is None:
                            batch = out[partition] = producer.create_batch()
                        if batch.append(key=None, value=decision_of(scan), timestamp=None) is None:
                            sent.append(await producer.send_batch(batch, sink, partition=partition))
                            batch = out[partition] = producer.create_batch()
                            batch.append(key=None, value=decision_of(scan), timestamp=None)
                        done += 1
            sent += [await producer.send_batch(b, sink, partition=p) for p, b in out.items() if b.record_count()]
            await asyncio.gather(*sent)
            await consumer.commit()
            progress.add(done)
    finally:
        await consumer.stop()
        await producer.stop()


def run_bare(bootstrap: str, source: str, sink: str, group: str, progress: Progress) -> None:
    import faust

    # Faust's data dir defaults to "<id>-data" in the working directory; keep it in the bench's
    # work dir (next to the progress file), which the bench removes when it ends.
    from benchmarks.run import bench_security
    from streams.kafka.patches.app import QuietWorker  # the same fix of Faust's logging trap as hcs, to be fair

    app = faust.App(group, broker=f"kafka://{bootstrap}", broker_credentials=bench_security().faust_credentials(),
                    store="memory://", web_enabled=False,
                    autodiscover=False, consumer_auto_offset_reset="earliest", Worker=QuietWorker,
                    datadir=str(progress.path.parent / f"{group}-data"))
    src = app.topic(source, key_serializer="raw", value_serializer="raw")
    out = app.topic(sink, key_serializer="raw", value_serializer="raw")

    @app.agent(src)
    async def forward(stream: Any) -> None:
        async for value in stream:
            scans = scans_of(value)
            for scan in scans:
                out.send_soon(key=scan["venue_id"].encode(), value=decision_of(scan))
            progress.add(len(scans))

    @app.timer(0.5)  # type: ignore[untyped-decorator]
    async def report() -> None:
        progress.flush()

    sys.argv = ["bench-bare", "worker", "-l", "warn", "--without-web"]
    app.main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["raw", "bare"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--progress", required=True, type=Path)
    args = parser.parse_args()
    progress = Progress(args.progress)
    progress.flush()
    if args.kind == "raw":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_raw(args.bootstrap, args.source, args.sink, args.group, progress))
    else:
        run_bare(args.bootstrap, args.source, args.sink, args.group, progress)


if __name__ == "__main__":
    main()
