"""The simulated on-call team: acks most new incidents after a while, resolves most acked ones, once each."""

from __future__ import annotations

import orjson

from streams.contract.codec import decode_alert_action
from streams.contract.models import AlertAction
from streams.dev.responder import Responder


def incident(n: int, status: str = "TRIGGERED", level: int = 1) -> dict[str, object]:
    return {"incident_id": f"inc-{n}", "dedup_key": f"KEY_PERSON_DETECTED|p{n}|v", "status": status, "level": level}


def test_most_new_incidents_are_acked_after_a_while_and_once() -> None:
    responder = Responder(ack_after_s=20, ack_share=0.8, seed=3)
    for n in range(100):
        responder.read(incident(n), 1000.0)
        responder.read(incident(n), 1001.0)  # an alert appended: the same state, decided already
    assert list(responder.due(1009.0)) == []  # not before half the delay
    actions = [decode_alert_action(value, 1030.0) for _, value in responder.due(1030.0)]
    assert all(isinstance(a, AlertAction) and a.action == "ack" and a.level == 1 for a in actions)
    keys = {a.dedup_key for a in actions if isinstance(a, AlertAction)}
    assert 65 <= len(actions) <= 95 and len(keys) == len(actions)
    assert responder.counts["oncall_acks_sent"] == len(actions)


def test_acked_incidents_are_mostly_resolved_later_and_an_escalated_one_is_acked_at_its_level() -> None:
    responder = Responder(ack_after_s=10, ack_share=1.0, seed=5)
    for n in range(50):
        responder.read(incident(n, "ACKNOWLEDGED"), 0.0)
    resolves = list(responder.due(100.0))
    assert 25 <= len(resolves) <= 45 and all(orjson.loads(v)["action"] == "resolve" for _, v in resolves)
    responder.read(incident(99, "TRIGGERED", 2), 200.0)
    [(key, value)] = list(responder.due(300.0))
    assert key == b"KEY_PERSON_DETECTED|p99|v" and orjson.loads(value)["level"] == 2


def test_an_action_on_an_incident_resolved_meanwhile_is_not_sent() -> None:
    responder = Responder(ack_after_s=10, ack_share=1.0, seed=2)
    responder.read(incident(1), 0.0)
    responder.read({**incident(1), "status": "RESOLVED"}, 5.0)  # its checkpoint reported again
    responder.read(incident(2), 0.0)
    responder.read({**incident(2), "incident_id": "inc-2b"}, 6.0)  # resolved, and a new incident since
    sent = [orjson.loads(value) for _, value in responder.due(100.0)]
    assert [(v["dedup_key"], v["action"]) for v in sent] == [("KEY_PERSON_DETECTED|p2|v", "ack")]  # the new one's
    assert responder.counts["oncall_acks_sent"] == 1
