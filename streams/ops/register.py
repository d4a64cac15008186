"""``hcs register show|put|release``: the key-personnel register by hand, checked as the worker
checks it (pseudonyms only: a record naming a person otherwise is refused before it is written).

The register's own system writes ``hcs.management.v1`` (keyed by ``person_ref``, compacted: the
latest record is the plan, a tombstone releases the person). These commands are for the office
that keeps it when that system is down, and for trying hcs out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import orjson

from streams.contract.codec import decode_plan
from streams.contract.models import Plan, Rejected
from streams.contract.pseudonyms import PERSON_REF_FORM, is_pseudonym, is_resident_id
from streams.errors import InspectionError
from streams.ops.console import latest_values, send_records

READ_TIMEOUT_S = 20.0


async def plans(client: Mapping[str, Any], topic: str, timeout_s: float = READ_TIMEOUT_S) -> dict[str, Any]:
    """Every person's latest register record (decoded JSON), released ones left out."""
    return await latest_values(client, topic, "register", timeout_s)


def checked(raw: bytes) -> tuple[str, Plan | None, dict[str, Any]]:
    """A register record from a file, checked by the worker's own decoder: (person_ref, its plan
    or None when it releases, the record); raises :class:`InspectionError` in one line."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InspectionError(f"not written: not JSON ({exc})") from None
    ref = record.get("person_ref") if isinstance(record, dict) else None
    if not isinstance(ref, str):
        raise InspectionError("not written: person_ref: is required")
    pseudonym_only(ref)
    decoded = decode_plan(ref.encode(), raw)
    if isinstance(decoded, Rejected):
        raise InspectionError(f"not written: {decoded.detail}")
    return decoded[0], decoded[1], record


def pseudonym_only(ref: str) -> None:
    """Refuse, without echoing it, a person_ref that is not a pseudonym (or is an ID number)."""
    if not is_pseudonym(ref) or (len(ref) == 18 and is_resident_id(ref)):
        raise InspectionError(f"not written: person_ref: must be {PERSON_REF_FORM}")


def describe(ref: str, record: Mapping[str, Any] | None) -> list[str]:
    """What the register says of one person, as lines (its phases, from and to)."""
    if record is None:
        return [f"{ref}: not on the register (never, or released)"]
    decoded = decode_plan(ref.encode(), orjson.dumps(record))
    if isinstance(decoded, Rejected) or decoded[1] is None:
        return [f"{ref}: {record.get('status', '?')} (plan {record.get('plan_id', '?')})"]
    plan = decoded[1]
    lines = [f"{ref}: plan {plan.plan_id} {plan.plan}, managed by district {plan.district}"
             + (f", isolation point {plan.isolation_point_id}" if plan.isolation_point_id else "")]
    day = plan.start_day
    for kind, days in plan.phases:
        lines.append(f"  {kind:<22} {_date(day)} to {_date(day + days - 1)} ({days} days)")
        day += days
    return lines


def _date(day: int) -> str:
    return date.fromordinal(day + date(1970, 1, 1).toordinal()).isoformat()


async def put(client: Mapping[str, Any], topic: str, ref: str, raw: bytes) -> None:
    await send_records(client, topic, [(ref.encode(), raw)])


async def release(client: Mapping[str, Any], topic: str, ref: str) -> None:
    """The tombstone that ends a person's management."""
    await send_records(client, topic, [(ref.encode(), None)])
