"""A busy machine, made on purpose: ``--background-load N`` runs N processes that each spin on a
core for as long as the benchmark runs, so that a contender's cost per scan with neighbours can be
measured as repeatably as without (a shared machine's brokers and workers, at their busiest)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from streams.dev.localkafka import die_with_parent

SPIN = "while True: pass"


@contextmanager
def neighbours(n: int) -> Iterator[list[int]]:
    """``n`` spinning processes for the block (their pids); none after it, or if the caller dies."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL, start_new_session=True,
                              preexec_fn=die_with_parent) for _ in range(n)]
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
