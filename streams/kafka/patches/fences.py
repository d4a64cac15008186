"""A fenced transactional producer, recognised and ended in one line.

Kafka answers a transaction request of a fenced producer with ``PRODUCER_FENCED`` (error 90,
KIP-588) where older brokers answered ``INVALID_PRODUCER_EPOCH`` (47); the Java client handles
both alike. aiokafka 0.14 does not know code 90: a fenced ``EndTxn`` came back as
``UnknownError`` ("Could not end transaction due to unexpected error"), the producer went to its
fatal state, and the next drain's ``begin_transaction`` failed on an assertion. Code 90 is read
as 47 here, so aiokafka raises its ``ProducerFenced`` for it as it does for 47.
"""

from __future__ import annotations

import logging
import os

from aiokafka import errors

log = logging.getLogger(__name__)

PRODUCER_FENCED = 90  # Kafka's Errors.PRODUCER_FENCED
EXIT_FENCED = 3  # the exit code of a worker whose transactional producer was fenced

errors.kafka_errors.setdefault(PRODUCER_FENCED, errors.InvalidProducerEpoch)


def fenced(*failures: BaseException | None) -> bool:
    """Whether any of ``failures`` (or what caused them) is a fence of the producer."""
    for failure in failures:
        while failure is not None:
            if isinstance(failure, errors.ProducerFenced):
                return True
            failure = failure.__cause__ or failure.__context__
    return False


def exit_fenced(exc: BaseException, producer_failure: BaseException | None = None) -> None:
    """If ``exc`` is, or comes of, a fence of this worker's transactional producer (which may
    have died of it in its sender, ``producer_failure``, before a write saw it), say so in one
    line and end the process (exit :data:`EXIT_FENCED`): another process runs with this worker's
    transactional id (its data dir's instance id), and this one can write nothing any more."""
    if fenced(exc, producer_failure):
        log.error("fenced: another worker took this worker's transactional id (a second process on the same "
                  "HCS_DATA_DIR, or a copy of it); this one exits, its uncommitted work is that one's now")
        logging.shutdown()
        os._exit(EXIT_FENCED)
