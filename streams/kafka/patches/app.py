"""The app and worker patches: a Faust app on the patched transport and table manager, and
Faust's worker without its terminal spinner."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import faust

from streams.kafka.bulk import BulkIntake
from streams.kafka.patches.consumer import Transport
from streams.kafka.patches.recovery import TableManager

log = logging.getLogger(__name__)

# The upstream methods these patches replace, with digests of their source (see the package's docstring).
REPLACES = {
    "faust.app.base.App.__init__": "698e2bf236c67369",
    "faust.app.base.App._new_transport": "42db531312dd776f",
    "faust.worker.Worker.__init__": "25a4d782432f0968",
    # Faust's flag the spinner and "not starting" then, mode's banner and stop: both kept but the banner.
    "faust.worker.Worker._on_sigint": "327193230c65ea83",
    "faust.worker.Worker._on_sigterm": "ba99cf23ea875c02",
}


class AtLeastOnceApp(faust.App):
    """A Faust app on :class:`Transport` and :class:`TableManager`."""

    # How long the broker may hold a fetch that finds fewer new bytes than fetch_min_bytes
    # (Faust hard-codes 1,500 ms). aiokafka keeps one fetch in flight per broker, and partitions
    # whose records are still buffered are left out of it: once those are handed over they wait
    # for the fetch in flight, which, when it asked only for idle partitions, the broker holds
    # for this long. At 1.5 s the worker sat idle ~30% of the time on gateway batches (and it
    # likely caused the stalls of over a second once seen with single-scan records).
    fetch_max_wait_ms: int = 100
    fetch_min_bytes: int = 1  # aiokafka's default; the worker takes HCS_FETCH_MIN_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("TableManager", TableManager)
        super().__init__(*args, **kwargs)
        # Topics whose records the consumer hands over whole, each to its drain.
        self.bulk_intake = BulkIntake(self.flow_control)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Connection arguments (bootstrap, TLS, SASL) of an aiokafka client of this app's
        cluster, for the recovery of its tables; an app with tables provides them."""
        raise NotImplementedError(f"{type(self).__name__} has tables but no Kafka client settings")

    def on_tables_recovered(self) -> None:
        """Called after each table recovery (recovery fills the stores directly)."""

    async def before_commit(self) -> None:
        """Awaited before offsets are committed; raise to stop the commit (and the worker)."""


STOP_DEADLINE_S = 10.0  # a stop asked by a signal ends within this long, whatever Kafka's state


class QuietWorker(faust.Worker):
    """Faust's worker without its terminal spinner, stopping in bounded time on a signal.

    At log levels from WARN up the spinner sets the root logger to DEBUG so that it can spin on
    every record; every debug call of Faust and aiokafka then builds a LogRecord. Profiled with
    py-spy: about 10% of the worker's CPU, for a spinner nobody watches in production.

    On SIGTERM or SIGINT it says so in one line (not mode's ``-INT-`` banner) and stops as
    Faust does: the batches in hand are written and acknowledged, the group is left. With Kafka
    gone that stop never ends (a producer's stop flushes batches no broker takes: a worker sent
    SIGTERM a minute after its broker died was still running five minutes later), so after
    :data:`STOP_DEADLINE_S` the process exits anyway, saying so. Nothing is lost: what was not
    committed (offsets, an open transaction) is read again by the worker that takes the
    partitions, exactly once in exactly-once mode; the tables on disk are made for a crash.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None

    def _on_sigint(self) -> None:  # mode's names
        self._stopping(signal.SIGINT)

    def _on_sigterm(self) -> None:
        self._stopping(signal.SIGTERM)

    def _stopping(self, signum: signal.Signals) -> None:
        self._flag_as_shutdown_by_signal()  # as Faust's own handlers do
        if not self._signal_stop_time:
            log.warning("stopping on %s: finishing the batches in hand (at most %.0f s)", signum.name,
                        STOP_DEADLINE_S)
            self.loop.call_later(STOP_DEADLINE_S, self._overdue, signum)
        self._schedule_shutdown(signum)

    def _overdue(self, signum: signal.Signals) -> None:
        log.warning("not stopped %.0f s after %s (is Kafka unreachable?): exiting now; what was not committed "
                    "is read again by the worker that takes the partitions", STOP_DEADLINE_S, signum.name)
        logging.shutdown()
        os._exit(0)  # stopped as asked, nothing lost: the stop's remaining waits are for a cluster that is gone

