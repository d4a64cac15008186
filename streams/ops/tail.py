"""``hcs tail``: follow the alerts' incidents (and optionally decisions) as one readable line each.

Every alert the worker raises reaches ``hcs.incidents.v1`` as a change of its incident (a
trigger, or an alert appended to a live one), so following the incidents shows every alert with
its incident's status and level, and the on-call team's acks and the escalations in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import click
import orjson

from streams.kafka.health import watched
from streams.times import local_time_of

SEVERITY_COLOUR = {"critical": "red", "warning": "yellow", "info": "cyan"}
DECISION_COLOUR = {"DENY": "red", "RECHECK": "yellow", "ALLOW_WITH_REPORT": "cyan", "ALLOW": "green"}


def _short(ref: str | None) -> str:
    # A pseudonym already; its first characters are enough for on-call to match repeats.
    return f"{ref[:PERSON_CHARS]}…" if ref else "-"


PERSON_CHARS = 10
SEVERITY_WORD = {"critical": "CRIT", "warning": "WARN", "info": "INFO"}
LIST_ITEMS = 3  # a list in details shows its first items and how many more


def _value(value: Any) -> str | None:
    """A details value as people read it (None: left out): times of day in the district's zone,
    lists joined, no Python reprs."""
    if value is None or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        shown = ",".join(str(_value(v)) for v in value[:LIST_ITEMS])
        return shown + (f"+{len(value) - LIST_ITEMS}" if len(value) > LIST_ITEMS else "")
    if isinstance(value, dict):
        return ",".join(f"{k}:{_value(v)}" for k, v in value.items() if _value(v) is not None)
    text = str(value)
    if len(text) >= 20 and text[4:5] == "-" and text[10:11] == "T":  # an RFC 3339 time: its time of day
        return _clock(text)
    return text


def _clock(text: Any) -> str:
    """A record's RFC 3339 time as its time of day in the district's zone (the line has the date)."""
    return local_time_of(str(text))[11:19] if text else "?"


def _misses(d: Mapping[str, Any]) -> str:
    missed = [f"{name} {d[f'{name}_misses']}" for name in ("code", "temperature", "mask")
              if d.get(f"{name}_misses")]
    return (f"{_clock(d.get('window_start'))}-{_clock(d.get('window_end'))} {d.get('scans', '?')} scans, "
            f"missed {', '.join(missed) or 'none'}")


def _plan(d: Mapping[str, Any]) -> str:
    return f"{d.get('plan')} {d.get('phase')} day {d.get('day')}, of {d.get('managing_district')}"


def _cases(d: Mapping[str, Any]) -> str:
    cases = d.get("case_ids") or ["?"]
    more = f" +{len(cases) - 1}" if len(cases) > 1 else ""
    return f"case {cases[0]}{more}, exposed {_clock(d.get('last_exposure_at'))}"


# What the on-call team reads first of each kind's details (the record has them all).
SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "THREE_100_VIOLATION": _misses,
    "ISOLATION_BREACH": _plan,
    "MONITORING_RESTRICTED": _plan,
    "CONTACT_DETECTED": _cases,
    "CHECKPOINT_SILENT": lambda d: f"silent since {_clock(d.get('silent_since'))}",
    "RESIDENT_FEVER": lambda d: f"{_value(d.get('temperature_c'))} °C",
    "CASE_TRACED": lambda d: f"{d.get('visits')} visits, {d.get('venues')} venues, {d.get('contacts')} contacts",
    "FINDING_OVERDUE": lambda d: f"finding {d.get('finding_id')} {d.get('problem')}, due {_clock(d.get('deadline'))}",
    "FINDING_REOPENED": lambda d: f"finding {d.get('finding_id')} {d.get('problem')}, "
                                  f"{d.get('repeat_count')} times",
}


def _details(kind: str, details: Any) -> str:
    if not isinstance(details, dict) or not details:
        return ""
    summary = SUMMARIES.get(kind)
    if summary is not None:
        return f"  {summary(details)}"
    said = [(key, _value(value)) for key, value in details.items()]
    return "  " + " ".join(f"{key}={text}" for key, text in said if text is not None)


def _where(alert: Mapping[str, Any]) -> str:
    """District, venue, checkpoint: each left out when the next one's id begins with it."""
    ids = [str(alert[k]) for k in ("district", "venue_id", "checkpoint_id") if alert.get(k)]
    kept = [i for i, nxt in zip(ids, [*ids[1:], ""], strict=True) if not nxt.startswith(i)]
    return " ".join(kept) or "-"


def format_alert(alert: dict[str, Any], colour: bool = True) -> str:
    """One alert in a line: when (the district's time), what, where, how often, whom, and what
    its kind's details say first. Its reasons are shown when they say more than its kind; its
    status when it is not firing."""
    severity, kind = str(alert.get("severity", "?")), str(alert.get("kind", "?"))
    head = f"{SEVERITY_WORD.get(severity, severity.upper())} {kind:<19}"
    if colour:
        head = click.style(head, fg=SEVERITY_COLOUR.get(severity), bold=severity == "critical")
    parts = [local_time_of(alert.get("last_event_time")), head, _where(alert)]
    if alert.get("status", "firing") != "firing":
        parts.append(str(alert["status"]))
    reasons = list(alert.get("reasons") or [])
    if reasons and reasons != [kind]:
        parts.append(",".join(reasons))
    if (alert.get("count") or 1) > 1:
        parts.append(f"count {alert['count']}")
    if alert.get("person_ref"):
        parts.append(f"person {_short(alert['person_ref'])}")
    return " ".join(parts) + _details(kind, alert.get("details"))


STEP_WORDS = {"trigger": "new", "append": "again", "escalate": "escalated", "ack": "acked",
              "timeout": "timed out", "resolve": "resolved"}


def format_incident(incident: dict[str, Any], colour: bool = True) -> str:
    """An incident's change: its status, level and latest step, then its latest alert's line."""
    history = incident.get("history") or [{}]
    step = STEP_WORDS.get(str(history[-1].get("action")), "?")
    state = f"{incident.get('status', '?'):<12} L{incident.get('level', '?')} {step:<9}"
    return f"{state} {format_alert(incident.get('alert') or {}, colour)}"


def format_decision(decision: dict[str, Any], colour: bool = True) -> str:
    kind = str(decision.get("decision", "?"))
    head = f"{kind:<17}"
    if colour:
        head = click.style(head, fg=DECISION_COLOUR.get(kind))
    reasons = ",".join(decision.get("reasons") or []) or "-"
    late = " late" if decision.get("late") else ""
    return (f"{local_time_of(decision.get('event_time'))} {head} {decision.get('district')} "
            f"{decision.get('venue_type')} {decision.get('venue_id')} {decision.get('checkpoint_id')} "
            f"{reasons}{late}")


async def follow(client: Mapping[str, Any], incidents_topic: str, decisions_topic: str | None, from_beginning: bool,
                 emit: Callable[[str], None], colour: bool, max_lines: int | None, timeout_s: float | None) -> int:
    """Print records until ``max_lines`` were printed or ``timeout_s`` passed (forever if both None)."""
    from aiokafka import AIOKafkaConsumer

    wanted = [incidents_topic] + ([decisions_topic] if decisions_topic else [])
    # read_committed: the worker writes in transactions; an aborted one's records are no alerts.
    consumer = AIOKafkaConsumer(*wanted, **client, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed",
                                auto_offset_reset="earliest" if from_beginning else "latest")
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()  # a refused or unreachable cluster: close what the start opened
        raise
    deadline = time.monotonic() + timeout_s if timeout_s else None
    # While the cluster is away the consumer retries by itself: one line then, one once it is back.
    try:
        async with watched(f"Kafka at {client.get('bootstrap_servers')}"):
            printed = await _print(consumer, incidents_topic, emit, colour, max_lines, deadline)
    finally:
        await consumer.stop()
    return printed


async def _print(consumer: Any, incidents_topic: str, emit: Callable[[str], None], colour: bool,
                 max_lines: int | None, deadline: float | None) -> int:
    printed = 0
    while (max_lines is None or printed < max_lines) and (deadline is None or time.monotonic() < deadline):
        batches = await consumer.getmany(timeout_ms=500)
        records = sorted((r for rs in batches.values() for r in rs), key=lambda r: r.timestamp)
        for record in records:
            try:
                value = orjson.loads(record.value)
            except orjson.JSONDecodeError:
                emit(f"(unreadable record on {record.topic} offset {record.offset})")
                continue
            if record.value is None:
                continue  # a compacted topic's tombstone
            is_incident = record.topic == incidents_topic
            emit(format_incident(value, colour) if is_incident else format_decision(value, colour))
            printed += 1
            if max_lines is not None and printed >= max_lines:
                break
    return printed
