"""Policy versions published to running workers (``hcs.policies.v1``), on every worker.

A replica (:mod:`streams.kafka.replica`; the worker feeds it from a replicated view) of the
compacted topic, keyed by ``version``: loaded
before the worker judges its first scan, followed afterwards. Each record is validated by the
code that validates policy files (:func:`streams.rules.policy.parse_policy`) and put into the
worker's :class:`Policy` beside the packaged default and ``HCS_POLICY_FILE``'s versions, so that
scans are judged by the version in force at their event time as before, without a restart.

Versions are immutable once in force: a record that changes a version whose ``valid_from`` had
passed when it was published (its ``published_at``: every worker, and a worker reading the topic
again after a restart, judges a record the same way) is refused, as is one that does not
validate or a tombstone of a version. A refused record leaves the versions as they were; it is
handed to :meth:`PolicyFeed.take_refused` (dead letter and ``POLICY_REJECTED``).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

import orjson

from streams.contract.models import Rejected
from streams.contract.validation import SchemaViolation, validate
from streams.errors import ConfigError
from streams.kafka.replica import InvalidRecord, Replica, Where
from streams.rules.policy import Policy, PolicyVersion, parse_policy
from streams.times import rfc3339

log = logging.getLogger(__name__)

POLICY_VERSION_SCHEMA = "hcs.policy-version.v1"
RULE_FIELDS = ("version", "valid_from", "defaults", "venue_types", "districts")


class PolicyFeed:
    """The topic's versions, applied to ``policy`` as they are read."""

    def __init__(self, topic: str, policy: Policy) -> None:
        self.policy = policy
        self.replica: Replica[str, PolicyVersion] = Replica("policies", topic, self._decode, on_change=self._changed,
                                                            on_invalid=self._refused)
        self._refused_records: list[tuple[Rejected, Where, str]] = []

    def apply(self, key: bytes | None, value: bytes | None, partition: int = 0, offset: int = -1) -> None:
        """One record of the topic (what the view does with each; also for tests without a broker)."""
        self.replica.apply(key, value, partition, offset)

    def _decode(self, key: bytes | None, value: bytes | None) -> tuple[str, PolicyVersion | None]:
        name = _key(key, value)
        if value is None:
            raise _refusal(name, "a version cannot be deleted: publish a new one (hcs policy rollback)", b"")
        version = decode_version(name, value)
        same_start = [v.version for v in self.policy.versions
                      if v.valid_from == version.valid_from and v.version != name]
        if same_start:
            raise _refusal(name, f"valid_from: the same as version {same_start[0]}'s: two versions cannot take "
                           "effect at once", value)
        known = self.policy.get(name)
        if known is not None and not known.same_rules(version):
            published = _published_at(value)
            if known.valid_from <= published:
                raise _refusal(name, f"version {name} is in force since {rfc3339(known.valid_from)} and cannot "
                               "change: publish a new version", value)
        return name, version

    def _changed(self, name: str, old: PolicyVersion | None, new: PolicyVersion | None) -> None:
        if new is not None:
            known = self.policy.get(name)
            self.policy.put(new)
            if known is None or not known.same_rules(new):
                log.info("policy version %s, valid from %s, read from %s", name, rfc3339(new.valid_from),
                         self.replica.topic)

    def _refused(self, where: Where, value: bytes | None, error: ValueError) -> None:
        refused = getattr(error, "refused", None)
        rejected = refused if isinstance(refused, Rejected) else Rejected("SCHEMA_INVALID", str(error), value or b"")
        name = where.key.decode(errors="replace") if where.key else ""
        self._refused_records.append((rejected, where, name))

    def take_refused(self) -> list[tuple[Rejected, Where, str]]:
        """The records refused since the last call (to be dead-lettered and alerted), with the
        version each was for."""
        taken, self._refused_records = self._refused_records, []
        return taken


def decode_version(name: str, value: bytes) -> PolicyVersion:
    """A ``hcs.policy-version.v1`` record, validated as a policy file's version is; raises
    :class:`InvalidRecord` naming the field."""
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"not JSON: {exc}", Rejected("NOT_JSON", f"not UTF-8 JSON: {exc}", value)) from None
    try:
        validate("policy-version.v1", record)
    except SchemaViolation as exc:
        reason = "UNSUPPORTED_SCHEMA" if isinstance(record, dict) and record.get("schema") != POLICY_VERSION_SCHEMA \
            else "SCHEMA_INVALID"
        raise _refusal(name, exc.detail, value, reason) from None
    if record["version"] != name:
        raise _refusal(name, "version: is not the record's key", value)
    item = {field: record[field] for field in RULE_FIELDS if field in record}
    try:
        (version,) = parse_policy({"schema": "hcs.policy.v1", "versions": [item]}, f"version {name}", "topic")
    except ConfigError as exc:
        raise _refusal(name, str(exc).replace(f"invalid policy version {name}: versions.0.", ""), value) from None
    return dataclasses.replace(version, note=record.get("note") or "")


def version_record(version: PolicyVersion, published_at: float, note: str | None) -> dict[str, Any]:
    """The ``hcs.policy-version.v1`` record that publishes ``version``."""
    record: dict[str, Any] = {"schema": POLICY_VERSION_SCHEMA, **version.document(),
                              "published_at": rfc3339(published_at)}
    if note:
        record["note"] = note
    return record


def _key(key: bytes | None, value: bytes | None) -> str:
    try:
        name = key.decode() if key else ""
    except UnicodeDecodeError:
        name = ""
    if not name:
        raise _refusal("", "key: must be the record's version", value or b"")
    return name


def _published_at(value: bytes) -> float:
    return datetime.fromisoformat(orjson.loads(value)["published_at"]).timestamp()


def _refusal(name: str, detail: str, value: bytes, reason: str = "SCHEMA_INVALID") -> InvalidRecord:
    return InvalidRecord(detail, Rejected(reason, detail, value))
