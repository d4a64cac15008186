"""One path notation everywhere: every decoder names a refused field as the dead letter's
redaction follows it (``phases[0].kind``), so a dead letter keeps the record, the refused value
alone hidden; a register record's dead letter once kept nothing (its path was not followed)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import orjson
import pytest

from streams.contract import codec
from streams.contract.deadletters import REDACTED, dead_letter, path_steps, redacted
from streams.contract.models import Rejected
from tests import factories as f

NOW = f.T0.timestamp() + 3600


def refused(value: Any) -> Rejected:
    assert isinstance(value, Rejected), value
    return value


def scan_batch(raw: bytes) -> Rejected:
    return refused(next(r for r in codec.decode_scans(raw) if isinstance(r, Rejected)))


def observation() -> dict[str, Any]:
    return {"schema": "hcs.observation.v1", "event_id": "o-1", "isolation_point_id": "iso-1", "district": "330105",
            "person_ref": f.pseudonym(1), "kind": "temperature", "value": 36.6, "at": f.ts(f.T0)}


def finding() -> dict[str, Any]:
    return {"schema": "hcs.finding-event.v1", "event_id": "fe-1", "finding_id": "F-1", "venue_id": "v-1",
            "venue_type": "mall", "district": "330106", "action": "open", "problem": "MASK", "at": f.ts(f.T0)}


def case() -> dict[str, Any]:
    return {"schema": "hcs.case.v1", "event_id": "c-1", "case_id": "C-1", "person_ref": f.pseudonym(2),
            "district": "330106", "classification": "confirmed", "sampled_at": f.ts(f.T0),
            "reported_at": f.ts(f.T0)}


def action() -> dict[str, Any]:
    return {"schema": "hcs.alert-action.v1", "event_id": "a-1", "dedup_key": "K|x|v", "action": "ack",
            "at": f.ts(f.T0), "level": 1}


def set_at(value: dict[str, Any], steps: list[str], new: Any) -> dict[str, Any]:
    changed = deepcopy(value)
    node: Any = changed
    for step in steps[:-1]:
        node = node[int(step)] if isinstance(node, list) else node[step]
    node[int(steps[-1]) if isinstance(node, list) else steps[-1]] = new
    return changed


# (decoder, a valid record, the path of a nested field to break, a value its schema refuses)
CASES: list[tuple[str, Callable[[bytes], Rejected], dict[str, Any], str, Any]] = [
    ("scan", lambda raw: refused(codec.decode_scans(raw)[0]), f.scan(), "health_code.color", "purple"),
    ("scan itinerary", lambda raw: refused(codec.decode_scans(raw)[0]),
     f.scan(itinerary={"as_of": f.ts(f.T0), "cities": [{"name": "Hangzhou", "starred": False,
                                                         "last_seen_at": f.ts(f.T0)}]}),
     "itinerary.cities[0].starred", "maybe"),
    ("batch", scan_batch, f.batch([f.scan(), f.scan()]), "scans[1].health_code.color", "purple"),
    ("entries", lambda raw: refused(codec.decode_entries(raw)),
     {"schema": "hcs.entries.v1", "event_id": "e-1", "checkpoint_id": "cp-1", "venue_id": "v-1",
      "venue_type": "mall", "district": "330106", "window_start": f.ts(f.T0), "window_end": f.ts(f.T0),
      "entries": 3}, "entries", "three"),
    ("register", lambda raw: refused(codec.decode_plan(f.pseudonym(1).encode(), raw)), f.plan(),
     "phases[0].kind", "quarantine-ish"),
    ("observation", lambda raw: refused(codec.decode_observation(raw)), observation(), "kind", "weight"),
    ("finding", lambda raw: refused(codec.decode_finding_event(raw)), finding(), "problem", "NOISE"),
    ("case", lambda raw: refused(codec.decode_case(raw)), case(), "classification", "suspected"),
    ("alert action", lambda raw: refused(codec.decode_alert_action(raw)), action(), "action", "snooze"),
]


@pytest.mark.parametrize(("name", "decode", "valid", "path", "bad"), CASES, ids=[c[0] for c in CASES])
def test_each_refusal_names_a_path_the_dead_letter_follows(
        name: str, decode: Callable[[bytes], Rejected], valid: dict[str, Any], path: str, bad: Any) -> None:
    steps = path_steps(path)
    assert steps is not None
    raw = orjson.dumps(set_at(valid, steps, bad))
    rejected = decode(raw)
    assert rejected.reason == "SCHEMA_INVALID" and rejected.detail.startswith(f"{path}:"), rejected.detail
    where = "scans[1]." if name == "batch" else ""
    assert rejected.redact == path.removeprefix(where)
    letter = orjson.loads(dead_letter(rejected, "t", 0, 0, f.ts(f.T0)))
    kept = orjson.loads(base64.b64decode(letter["payload_b64"]))
    assert kept, f"{name}: the dead letter kept nothing"
    node: Any = kept
    for step in path_steps(rejected.redact) or []:
        node = node[int(step)] if isinstance(node, list) else node[step]
    assert node == REDACTED and letter["payload_redacted"] == rejected.redact
    assert str(bad) not in base64.b64decode(letter["payload_b64"]).decode()


def test_paths_in_either_notation_are_followed_and_nonsense_is_not() -> None:
    payload = orjson.dumps({"a": [{"b": "secret"}]})
    assert orjson.loads(redacted(payload, "a[0].b") or b"") == {"a": [{"b": REDACTED}]}
    assert orjson.loads(redacted(payload, "a.0.b") or b"") == {"a": [{"b": REDACTED}]}
    assert redacted(payload, "a[7].b") is None and path_steps("a[x]") is None
