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

SEVERITY_COLOUR = {"critical": "red", "warning": "yellow", "info": "cyan"}
DECISION_COLOUR = {"DENY": "red", "RECHECK": "yellow", "ALLOW_WITH_REPORT": "cyan", "ALLOW": "green"}


def _short(ref: str | None) -> str:
    # A pseudonym already; the first 12 characters are enough for on-call to match repeats.
    return f"{ref[:12]}…" if ref else "-"


def format_alert(alert: dict[str, Any], colour: bool = True) -> str:
    severity = str(alert.get("severity", "?"))
    head = f"{severity.upper():<8} {alert.get('kind', '?'):<20} {alert.get('status', '?'):<8}"
    if colour:
        head = click.style(head, fg=SEVERITY_COLOUR.get(severity), bold=severity == "critical")
    where = f"district {alert.get('district')} venue {alert.get('venue_id')}"
    if alert.get("checkpoint_id"):
        where += f" checkpoint {alert['checkpoint_id']}"
    reasons = ",".join(alert.get("reasons") or []) or "-"
    details = alert.get("details")
    extra = " " + " ".join(f"{k}={v}" for k, v in details.items()) if isinstance(details, dict) else ""
    return (f"{alert.get('last_event_time', '?')}  {head} {where}  reasons {reasons}  "
            f"count {alert.get('count', 1)}  person {_short(alert.get('person_ref'))}{extra}")


STEP_WORDS = {"trigger": "new", "append": "again", "escalate": "escalated", "ack": "acked",
              "timeout": "ack timed out", "resolve": "resolved"}


def format_incident(incident: dict[str, Any], colour: bool = True) -> str:
    """An incident's change: its status, level and latest step, then its latest alert's line."""
    history = incident.get("history") or [{}]
    step = STEP_WORDS.get(str(history[-1].get("action")), "?")
    state = f"{incident.get('status', '?'):<12} L{incident.get('level', '?')} {step:<13}"
    return f"{state} {format_alert(incident.get('alert') or {}, colour)}"


def format_decision(decision: dict[str, Any], colour: bool = True) -> str:
    kind = str(decision.get("decision", "?"))
    head = f"{kind:<17}"
    if colour:
        head = click.style(head, fg=DECISION_COLOUR.get(kind))
    reasons = ",".join(decision.get("reasons") or []) or "-"
    late = "  late" if decision.get("late") else ""
    return (f"{decision.get('event_time', '?')}  {head} district {decision.get('district')} "
            f"{decision.get('venue_type')} {decision.get('venue_id')} checkpoint {decision.get('checkpoint_id')}  "
            f"reasons {reasons}{late}")


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
