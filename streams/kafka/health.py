"""Whether the worker reaches Kafka: one log line when the cluster is lost, one when it is back.

While a broker is down, aiokafka logs every failed attempt of every client (connections,
metadata, fetches, the group coordinator): 3,191 error lines in a 15 s outage, burying what
matters. :class:`ConnectionWatch` is a logging filter on aiokafka's loggers that drops those
lines, says once that the cluster was lost (and which error came first), and, once no
connection error was seen for :data:`QUIET_S`, that it is back. The state is exported as
``hcs_kafka_reachable`` (1 or 0) and ``hcs_kafka_outages_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)

QUIET_S = 3.0  # clients retry every 0.1-2 s while the cluster is down; this long without an error: it is back
WATCH_TICK_S = 1.0  # how often an app's timer asks the watch (ConnectionWatch.check) to log that it is back

# Messages aiokafka logs for each failed attempt while it cannot reach a broker.
_OUTAGE_MESSAGES = (
    "Unable connect to node", "Unable to update metadata", "Failed fetch messages", "Group Coordinator Request failed",
    "NodeNotReadyError", "KafkaConnectionError", "Connection at", "Connect call failed", "Marking the coordinator dead",
    "Heartbeat session expired", "Heartbeat failed", "Error sending HeartbeatRequest", "Heartbeat send request failed",
    "Could not send", "Cannot send", "Got error produce response", "Unable to request metadata",
    "RequestTimedOutError",
)


class ConnectionWatch(logging.Filter):
    """A filter for aiokafka's loggers; ``clock`` is a monotonic clock (injectable in tests)."""

    def __init__(self, describe: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.describe = describe  # e.g. "Kafka at 127.0.0.1:9092"
        self.clock = clock
        self.reachable = True
        self.outages = 0
        self.suppressed = 0
        self._last_error = -1e18
        self._lost_at = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if "rebalancing" in message or not any(text in message for text in _OUTAGE_MESSAGES):
            return True  # a heartbeat refused during a rebalance is the group at work, not an outage
        now = self.clock()
        self._last_error = now
        if self.reachable:
            self.reachable = False
            self.outages += 1
            self._lost_at = now
            self.suppressed = 0
            log.warning("lost %s (%s); retrying, and saying so once it is back", self.describe,
                        message.splitlines()[0][:200])
        else:
            self.suppressed += 1
        return False

    def check(self, answered: bool = False) -> bool:
        """Called every second or so: notice that the cluster is back. Returns ``reachable``.
        ``answered``: the caller just had a request answered, so it is back now."""
        now = self.clock()
        if not self.reachable and (answered or now - self._last_error >= QUIET_S):
            self.reachable = True
            log.warning("%s is reachable again after %.0f s (%d client errors not logged)", self.describe,
                        self._last_error - self._lost_at, self.suppressed)
        return self.reachable

    def install(self, prefix: str = "aiokafka") -> ConnectionWatch:
        """Add this filter to every logger under ``prefix`` (all of them exist once aiokafka is imported)."""
        for name in self._loggers(prefix):
            logging.getLogger(name).addFilter(self)
        return self

    def uninstall(self, prefix: str = "aiokafka") -> None:
        for name in self._loggers(prefix):
            logging.getLogger(name).removeFilter(self)

    @staticmethod
    def _loggers(prefix: str) -> list[str]:
        return [name for name in logging.root.manager.loggerDict if name == prefix or name.startswith(prefix + ".")]


@contextlib.asynccontextmanager
async def watched(describe: str, every_s: float = 1.0) -> AsyncIterator[ConnectionWatch]:
    """A :class:`ConnectionWatch` for a command's clients while the block runs (``hcs simulate``,
    ``hcs tail``): checked every ``every_s``, so the line saying the cluster is back comes too."""
    watch = ConnectionWatch(describe).install()

    async def check() -> None:
        while True:
            await asyncio.sleep(every_s)
            watch.check()

    task = asyncio.create_task(check())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        watch.uninstall()
