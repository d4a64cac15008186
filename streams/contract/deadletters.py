"""The DeadLetter record of a refused record: bounded in size, and never carrying the refused value.

A dead letter must always be writable, or the record it stands for would stop the worker: a
2 MB record base64-encoded is 2.7 MB, over the dead-letter topic's message limit, and the failed
write stopped the worker on every restart. So the payload kept is at most
:data:`MAX_PAYLOAD_BYTES` of the record (``payload_truncated`` says when it was cut), with the
record's full size and the SHA-256 digest of the payload before it was cut; the original key is
kept up to :data:`MAX_KEY_BYTES`. The value of the field a record was refused for (``redact``,
e.g. an ID number sent as ``person_ref``) is replaced by ``"[redacted]"`` in the payload.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import orjson

from streams.contract.encoding import encode
from streams.contract.models import Rejected
from streams.contract.records import DeadLetter

MAX_PAYLOAD_BYTES = 64 * 1024  # the largest accepted scan: every refused scan of a batch fits whole
MAX_KEY_BYTES = 1024
REDACTED = "[redacted]"


_STEP = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def path_steps(path: str) -> list[str] | None:
    """The steps of a field path as refusals name it (``phases[0].kind``, ``health_code.color``,
    ``cities[2].name``), or None if it is not one."""
    steps, at = [], 0
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None or match.end() == at:
            return None
        steps.append(match.group(1) if match.group(1) is not None else match.group(2))
        at = match.end()
    return steps or None


def redacted(payload: bytes, path: str) -> bytes | None:
    """``payload`` (a JSON object) with the scalar at ``path`` (``a.b[0].c``, the notation of
    every refusal's detail) replaced, or None if the path cannot be followed (then no part of the
    payload is kept). An array or object there is kept: it was refused for its shape, not for a
    value a person could be named by."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    steps = path_steps(path)
    if steps is None:
        return None
    node: Any = value
    *parents, last = steps
    try:
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: int | str = int(last) if isinstance(node, list) else last
        if isinstance(node, dict) and last not in node:
            return payload  # a missing field: nothing to hide
        if not isinstance(node, (dict, list)):
            return None
        if isinstance(node[key], (dict, list)):  # type: ignore[index]
            return payload  # a wrong shape (an array too long, an object for a string): no value of a person
        node[key] = REDACTED  # type: ignore[index]
    except (KeyError, IndexError, ValueError, TypeError):
        return None
    return orjson.dumps(value)


def dead_letter(rejected: Rejected, topic: str, partition: int, offset: int, received_at: str) -> bytes:
    """The encoded DeadLetter of ``rejected``, read from ``topic[partition]@offset``."""
    payload = rejected.payload
    size = len(payload)
    redaction = False
    if rejected.redact and rejected.redact != "(record)":
        kept = redacted(payload, rejected.redact)
        redaction = kept is not payload  # the same object back: nothing needed hiding
        payload = kept if kept is not None else b""
    # The digest of what is kept, never of a record holding the refused value: an ID number has
    # few enough possible values to be found again from a digest of the rest of the record.
    digest = hashlib.sha256(payload).hexdigest()
    truncated = len(payload) > MAX_PAYLOAD_BYTES
    return encode(DeadLetter(
        source_topic=topic, partition=partition, offset=offset, reason=rejected.reason, detail=rejected.detail,
        payload_b64=base64.b64encode(payload[:MAX_PAYLOAD_BYTES]).decode("ascii"), payload_size=size,
        payload_sha256=digest, payload_truncated=truncated,
        payload_redacted=rejected.redact if redaction else None, received_at=received_at))


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The original key, cut to :data:`MAX_KEY_BYTES`."""
    return key if key is None or len(key) <= MAX_KEY_BYTES else key[:MAX_KEY_BYTES]
