"""One run per data dir: a process that uses ``HCS_DATA_DIR`` (a worker, ``hcs run``) holds a lock
on it for its life, so a second one on the same dir is refused in one line naming the first,
instead of fencing its producer or stopping its broker.

The lock is an ``flock`` on a file in the dir, which the kernel releases when the process ends,
however it ends: a crash leaves no stale lock. The file holds the holder's pid, for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from streams.errors import ConfigError

_held: dict[Path, IO[str]] = {}  # the locks this process holds, open for its life


def hold(data_dir: Path, what: str, advice: str) -> None:
    """Lock ``data_dir`` for ``what`` (a worker, hcs run) until the process ends; if another
    process holds it, raise :class:`ConfigError` naming that process and ``advice``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = (data_dir / f"{what.replace(' ', '-')}.lock").resolve()
    if path in _held:  # held already, by this process
        return
    handle = open(path, "a+", encoding="ascii")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise ConfigError(f"another {what} (pid {holder}) uses {data_dir}: {advice}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held[path] = handle
