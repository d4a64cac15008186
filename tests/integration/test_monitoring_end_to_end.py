"""The monitoring configuration checked with the real tools: Prometheus scraping a real worker
fed by simulated checkpoints, and Alertmanager receiving alerts from the stream."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from streams.contract import topics
from tests import factories as f
from tests.environment import tool
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.integration.monitoring import get_json, query, start_alertmanager, start_prometheus

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def dashboard_queries() -> list[tuple[str, str]]:
    out = []
    for board in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel.get("targets", []):  # a row has none
                out.append((f"{board.stem}: {panel['title']}", target["expr"].replace("$district", "330106")))
    return out


def recording_rules() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/hcs.yml").read_text())
    return [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]


def test_every_dashboard_query_and_recording_rule_returns_data_from_a_real_worker(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    policy = f.policy_file(tmp_path, "drill-3", compliance_window_seconds=5, compliance_grace_seconds=1)
    create_topics(kafka_bootstrap, topic_prefix)
    env = {**worker_env, "HCS_POLICY_FILE": str(policy)}
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    prometheus = start_prometheus(tmp_path, [f"127.0.0.1:{worker.port}"], [ROOT / "deploy/prometheus/rules/hcs.yml"])
    simulator = subprocess.Popen([sys.executable, "-m", "streams", "simulate", "--rate", "300", "--count", "9000",
                                  "--managed", "600",  # plans, and the isolation points' observations
                                  "--case-every", "5",  # cases, traced
                                  "--seed", "5", "--quiet"], env=env, stdout=subprocess.DEVNULL)
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(b"bad", b"not json")])
    # A case of district 330106 at a 330106 venue with someone beside them, who scans again once
    # exposed: the district dashboard's tracing panels have data for certain.
    case_ref, contact_ref = f.pseudonym(424242), f.pseudonym(434343)
    venue = dict(venue_id="330106-trace-1", venue_type="mall", checkpoint_id="330106-trace-1-a")
    now = datetime.now(UTC).replace(microsecond=0)
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [
        (b"330106-trace-1", f.encode(f.scan(**venue, person_ref=ref, at=now - timedelta(minutes=30))))
        for ref in (case_ref, contact_ref)])
    report = {"schema": "hcs.case.v1", "event_id": "mon-case", "case_id": "mon-case", "person_ref": case_ref,
              "district": "330106", "classification": "confirmed", "sampled_at": f.ts(now - timedelta(hours=1)),
              "onset_at": None, "reported_at": f.ts(now)}
    produce(kafka_bootstrap, name(topics.CASES, topic_prefix), [(case_ref.encode(), orjson.dumps(report))])
    contact_scanned = False
    try:
        expressions = [(f"recording rule {r}", r) for r in recording_rules()] + dashboard_queries()
        missing = dict(expressions)
        deadline = time.monotonic() + 120
        while missing and time.monotonic() < deadline:
            for label, expr in list(missing.items()):
                if query(prometheus, expr):
                    del missing[label]
            if not contact_scanned and query(prometheus, 'hcs_exposures_total{district="330106"}'):
                produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(b"330106-trace-1", f.encode(
                    f.scan(**venue, person_ref=contact_ref, at=datetime.now(UTC).replace(microsecond=0))))])
                contact_scanned = True
            time.sleep(1)
        assert not missing, f"no data for: {sorted(missing)}\n{worker.log_tail(20)}"
        # Every metric name passes Prometheus's own lint (Faust's "_events_runtime_ms" did not).
        exposition = worker.metrics_text()
        assert "faust_events_runtime_seconds_count" in exposition
        lint = subprocess.run([tool("promtool"), "check", "metrics"], input=exposition, capture_output=True,
                              text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        compliance = query(prometheus, 'district_measure:hcs_three100_compliance:ratio15m{measure="mask"}')
        assert all(0 <= float(s["value"][1]) <= 1 for s in compliance)
        assert {s["metric"]["district"] for s in query(prometheus, "district:hcs_scans:rate5m")} == {
            "330102", "330105", "330106", "330108", "330109", "330110"}
    finally:
        simulator.kill()
        prometheus.stop()
        worker.stop()


def am_alerts(url: str) -> list[dict[str, Any]]:
    return list(get_json(f"{url}/api/v2/alerts?active=true&silenced=true&inhibited=true"))


def wait_for(predicate: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    return predicate()


def test_an_alert_from_a_scan_reaches_alertmanager_once_even_when_redelivered(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    from streams.dev.localkafka import free_port

    create_topics(kafka_bootstrap, topic_prefix)
    now = datetime.now(f.SHANGHAI)  # current scans: the checkpoint is not silent during the test
    red = f.scan(at=now, health_code={"color": "red"}, venue_id="school-7", venue_type="school",
                 checkpoint_id="gate-1")
    positive = f.scan(at=now, venue_id="school-7", venue_type="school", checkpoint_id="gate-1",
                      nat={"result": "positive", "sampled_at": f.ts(now), "reported_at": None})
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(b"school-7", f.encode(v)) for v in (red, positive)])
    am_port = free_port()
    env = {**worker_env, "HCS_ALERTMANAGER_URL": f"http://127.0.0.1:{am_port}"}
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    # The bridge starts before Alertmanager: it must retry, not drop the alerts.
    bridge = WorkerProcess(env, tmp_path / "bridge.log", command="alerts-bridge").start()
    alertmanager = None
    try:
        # The positive NAT starts a case of its own (trace_on_nat_positive): its trace completes too.
        read(kafka_bootstrap, name(topics.ALERTS, topic_prefix), lambda v: len(v) >= 3)
        time.sleep(2)
        alertmanager = start_alertmanager(tmp_path, ROOT / "deploy/alertmanager/alertmanager.yml", am_port)
        got = wait_for(lambda: len(am_alerts(alertmanager.url)) >= 3 and am_alerts(alertmanager.url))
        assert len(got) == 3, got
        by_kind = {a["labels"]["kind"]: a for a in got}
        assert set(by_kind) == {"KEY_PERSON_DETECTED", "NAT_POSITIVE", "CASE_TRACED"}
        assert by_kind["CASE_TRACED"]["receivers"] == [{"name": "xihu-oncall"}]
        key_person = by_kind["KEY_PERSON_DETECTED"]
        assert {k: key_person["labels"][k] for k in ("alertname", "severity", "district", "venue_id",
                                                     "checkpoint_id", "scope")} == {
            "alertname": "KEY_PERSON_DETECTED", "severity": "critical", "district": "330106",
            "venue_id": "school-7", "checkpoint_id": "gate-1", "scope": "person"}
        assert red["person_ref"] not in json.dumps(key_person["labels"])
        assert key_person["annotations"]["person_ref"] == red["person_ref"]
        assert key_person["receivers"] == [{"name": "xihu-oncall-urgent"}]

        # Redelivery: a second bridge (a new consumer group) posts every alert again.
        again = WorkerProcess({**env, "HCS_APP_ID": env["HCS_APP_ID"] + "-again",
                               "HCS_BRIDGE_PORT": str(free_port())}, tmp_path / "bridge2.log",
                              command="alerts-bridge").start()
        try:
            time.sleep(5)
            assert len(am_alerts(alertmanager.url)) == 3
        finally:
            again.stop()
        log = (tmp_path / "bridge.log").read_text()
        assert "Alertmanager unreachable" in log  # it did retry while Alertmanager was down
    finally:
        bridge.stop()
        worker.stop()
        if alertmanager is not None:
            alertmanager.stop()


def stream_alert(n: int, raised: float, kind: str = "KEY_PERSON_DETECTED") -> dict[str, Any]:
    at = f.ts(datetime.fromtimestamp(raised, f.SHANGHAI))
    person = None if kind == "CHECKPOINT_SILENT" else f.pseudonym(n)
    return {"schema": "hcs.alert.v1", "alert_id": f"alert-{n}",
            "dedup_key": f"{kind}|{person or 'gate-1'}|school-7", "kind": kind,
            "severity": "critical" if person else "warning", "district": "330106", "venue_id": "school-7",
            "checkpoint_id": "gate-1", "person_ref": person, "reasons": ["HEALTH_CODE_RED"] if person else [],
            "event_ids": [f"ev-{n}"], "first_event_time": at, "last_event_time": at, "count": 1,
            "status": "firing", "policy_version": "default-v1", "details": None}


def stream_incident(alert: dict[str, Any]) -> dict[str, Any]:
    """The incident the worker writes for ``alert``: triggered by it."""
    at = alert["first_event_time"]
    return {"schema": "hcs.incident.v1", "incident_id": f"inc-{alert['alert_id']}", "dedup_key": alert["dedup_key"],
            "kind": alert["kind"], "severity": alert["severity"], "district": alert["district"],
            "status": "TRIGGERED", "level": 1, "alert_ids": [alert["alert_id"]], "alert_count": 1,
            "triggered_at": at, "acknowledged_at": None, "resolved_at": None, "escalations": [{"level": 1, "at": at}],
            "updated_at": at, "history": [{"action": "trigger", "at": at, "level": 1, "by_level": None}],
            "alert": alert}


def test_a_bridge_reading_old_incidents_pages_for_none_of_them(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """A bridge on a new consumer group reads the incidents topic from its start: incidents changed
    past their useful life reach Alertmanager as ended, not as active (they paged the urgent receivers)."""
    from streams.dev.localkafka import free_port

    create_topics(kafka_bootstrap, topic_prefix)
    now = time.time()
    raised = {"old finding": now - 3 * 3600, "old silence": now - 8 * 86400, "recent silence": now - 2 * 86400,
              "fresh finding": now - 60}
    alerts = [stream_alert(1, raised["old finding"]), stream_alert(2, raised["old silence"], "CHECKPOINT_SILENT"),
              stream_alert(3, raised["recent silence"], "CHECKPOINT_SILENT"), stream_alert(4, raised["fresh finding"])]
    alerts[2]["checkpoint_id"] = alerts[2]["dedup_key"] = "gate-2"
    produce(kafka_bootstrap, name(topics.INCIDENTS, topic_prefix),
            [(a["dedup_key"].encode(), orjson.dumps(stream_incident(a))) for a in alerts], raised.values())
    am_port = free_port()
    env = {**worker_env, "HCS_ALERTMANAGER_URL": f"http://127.0.0.1:{am_port}"}
    alertmanager = start_alertmanager(tmp_path, ROOT / "deploy/alertmanager/alertmanager.yml", am_port)
    try:
        bridge = WorkerProcess(env, tmp_path / "bridge.log", command="alerts-bridge").start()
        try:
            wait_for(lambda: any(a["annotations"]["alert_id"] == "alert-4" for a in am_alerts(alertmanager.url)))
            time.sleep(2)  # posted in order: the three before it were posted first
            active = sorted(a["annotations"]["alert_id"] for a in am_alerts(alertmanager.url))
        finally:
            bridge.stop()
    finally:
        alertmanager.stop()
    assert active == ["alert-3", "alert-4"]  # a two-day silence still stands; the rest ended


def test_alertmanager_status_reports_the_routing_config(tmp_path: Path) -> None:
    alertmanager = start_alertmanager(tmp_path, ROOT / "deploy/alertmanager/alertmanager.yml")
    try:
        with urllib.request.urlopen(f"{alertmanager.url}/api/v2/status", timeout=5) as resp:
            status = json.loads(resp.read())
        assert "xihu-oncall-urgent" in status["config"]["original"]
    finally:
        alertmanager.stop()
