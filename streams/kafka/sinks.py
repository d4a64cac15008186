"""Where the pipeline's outputs go: the contract topics, the internal partials, the changelogs.

All of them through the one :class:`~streams.kafka.output.BatchedOutput`, so that a batch's outputs,
its state and its changelog records are written together (one transaction in exactly-once mode).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.contract import topics
from streams.contract.encoding import encode
from streams.kafka.output import BatchedOutput, Record
from streams.kafka.state import ChangelogSend


class TopicSink:
    """Outputs to the contract topics (behind the prefix), through the batched output."""

    def __init__(self, output: BatchedOutput, prefix: str, app_id: str = "") -> None:
        self._output = output
        self._names = {spec.name: topics.topic_name(spec, prefix) for spec in topics.ALL}
        # ... and the internal topics written record by record (the partials have their own sink).
        for spec in (topics.RECURRENCES, topics.TRACE_REPORTS):
            self._names[spec.name] = topics.internal_topic_name(spec, prefix, app_id)

    def send(self, spec: topics.TopicSpec, key: bytes | None, value: bytes) -> None:
        self._output.add(self._names[spec.name], key, value)

    def send_many(self, spec: topics.TopicSpec, key: bytes | None, values: list[bytes]) -> None:
        if values:
            self._output.add_many(self._names[spec.name], key, values)


class PartialsSink:
    """District-minute partials keyed by district, and watermarks to every partition."""

    def __init__(self, output: BatchedOutput, topic: str, partitions: int) -> None:
        self._output, self._topic, self._partitions = output, topic, partitions

    def partial(self, district: str, value: bytes) -> None:
        self._output.add(self._topic, district.encode(), value)

    def watermark(self, value: bytes) -> None:
        for partition in range(self._partitions):
            self._output.add(self._topic, None, value, partition)


def changelog_writer(output: BatchedOutput, table: Any, on_disk: bool = False) -> ChangelogSend:
    """Writes a table's changelog records as Faust's recovery reads them (JSON key and value);
    ``on_disk``: the table's store (:class:`streams.kafka.store.Store`) gets them once Kafka holds them."""
    topic = table.changelog_topic.get_topic_name()
    output.send_after_outputs(topic)
    if on_disk:
        def written(partition: int, records: list[Record], last_offset: int) -> None:
            table.data.apply_written(partition, records, last_offset)  # the store is made when the app starts

        output.on_written(topic, written)

    def send(partition: int, records: list[tuple[str, Any]]) -> None:
        output.add_to(topic, partition, [(encode(key), None if value is None else encode(value))
                                         for key, value in records])

    return send


def raw_changelog_writer(output: BatchedOutput, table: Any) -> Callable[[int, list[Record]], None]:
    """Writes a table's changelog records already encoded (the visits'); the table's store
    (:class:`streams.kafka.visits.VisitStore`) is told what Kafka holds of them."""
    topic = table.changelog_topic.get_topic_name()
    output.send_after_outputs(topic)

    def written(partition: int, records: list[Record], last_offset: int) -> None:
        table.data.apply_written(partition, records, last_offset)

    output.on_written(topic, written)

    def send(partition: int, records: list[Record]) -> None:
        output.add_to(topic, partition, records)

    return send
