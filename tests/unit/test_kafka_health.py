"""ConnectionWatch: aiokafka's per-attempt errors during an outage become one line lost, one line back."""

from __future__ import annotations

import logging

import pytest

from streams.kafka.health import QUIET_S, ConnectionWatch


def record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.conn", level, __file__, 1, message, None, None)


def test_an_outage_is_one_line_lost_and_one_line_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    watch = ConnectionWatch("Kafka at k:9092", clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "streams.kafka.health")
    errors = ["Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9092)",
              "Unable to update metadata from [1]", "Failed fetch messages from 1: NodeNotReadyError: ..."]
    for i in range(300):
        now[0] += 0.05
        assert watch.filter(record(errors[i % 3])) is False  # dropped
    assert not watch.check()
    now[0] += QUIET_S - 0.1
    assert not watch.check()  # still within the quiet time
    now[0] += 0.2
    assert watch.check() and watch.outages == 1
    assert [r.getMessage() for r in caplog.records] == [
        "lost Kafka at k:9092 (Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9092)); "
        "retrying, and saying so once it is back",
        "Kafka at k:9092 is reachable again after 15 s (299 client errors not logged)"]


def test_other_warnings_and_debug_lines_pass_and_start_no_outage() -> None:
    watch = ConnectionWatch("Kafka", clock=lambda: 0.0)
    assert watch.filter(record("Topic t not found in cluster metadata", logging.WARNING))
    assert watch.filter(record("Unable connect to node with id 1", logging.DEBUG))
    assert watch.filter(record("Heartbeat failed for group g because it is rebalancing", logging.WARNING))
    assert watch.reachable and watch.outages == 0
