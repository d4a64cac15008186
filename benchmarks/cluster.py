"""Where a benchmark runs: a work dir of its own, and the caller's cluster (``HCS_BOOTSTRAP``) or a
local broker of its own in that dir, stopped and removed with it at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.dev.localkafka import LocalKafka, free_port


@contextmanager
def cluster(name: str) -> Iterator[tuple[str, Path]]:
    """(bootstrap, work dir) for the block; the work dir (and the broker's data) goes after it."""
    work = Path(tempfile.mkdtemp(prefix=f"hcs-{name}-"))
    kafka = None
    bootstrap = os.environ.get("HCS_BOOTSTRAP")
    try:
        if not bootstrap:
            kafka = LocalKafka(work / "broker", heap="1g", owned=True)
            bootstrap = kafka.start(port=free_port()).bootstrap or ""
        yield bootstrap, work
    finally:
        if kafka is not None:
            kafka.stop()
        shutil.rmtree(work, ignore_errors=True)
