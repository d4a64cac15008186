"""The path that pages people, with a real worker, a real bridge and a real Alertmanager running
deploy/alertmanager/alertmanager.yml (its webhooks pointed at this test, its waits shortened):
level 2 reaches the district's supervisors, an acknowledged incident is not re-notified, a silent
checkpoint inhibits its three-100% alerts, and the bridge stops at once with Alertmanager down."""

from __future__ import annotations

import http.server
import json
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from streams import cli
from streams.contract import topics
from streams.dev.localkafka import free_port
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.integration.monitoring import Server, get_json, start_alertmanager
from tests.integration.test_monitoring_end_to_end import stream_alert, stream_incident, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
REPEAT_S = 2  # Alertmanager's repeat interval here: a firing alert is notified again this often
ESCALATION = {"critical": {"levels": [0, 0.1, 1.0], "ack_timeout_minutes": 5}}


class Hooks:
    """The on-call tools: every webhook notification Alertmanager sends, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self, dedup_id: str, path_end: str = "") -> list[tuple[str, dict[str, str]]]:
        """(path, labels) of each firing notification of the alert ``dedup_id``."""
        return [(path, alert["labels"]) for path, body in list(self.received) if path.endswith(path_end)
                for alert in body["alerts"] if alert["status"] == "firing" and alert["labels"]["dedup_id"] == dedup_id]


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    yield server
    server.server.shutdown()


def alertmanager_config(tmp_path: Path, hook_port: int) -> Path:
    """deploy/alertmanager/alertmanager.yml with its webhooks here and its waits in seconds."""
    config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())

    def shorten(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", "0s"), ("group_interval", "1s"), ("repeat_interval", f"{REPEAT_S}s")):
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = hook["url"].replace("127.0.0.1:5001", f"127.0.0.1:{hook_port}")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def am_alerts(alertmanager: Server, **filters: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = get_json(f"{alertmanager.url}/api/v2/alerts")
    return [a for a in alerts if all(a["labels"].get(k) == v for k, v in filters.items())]


def test_level_2_pages_the_supervisors_and_an_acknowledged_incident_is_not_renotified(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, hooks: Hooks) -> None:
    policy = f.policy_file(tmp_path, "paging-1", escalation=ESCALATION)
    am_port = free_port()
    env = {**worker_env, "HCS_POLICY_FILE": str(policy), "HCS_ALERTMANAGER_URL": f"http://127.0.0.1:{am_port}"}
    create_topics(kafka_bootstrap, topic_prefix)
    alertmanager = start_alertmanager(tmp_path, alertmanager_config(tmp_path, hooks.port), am_port)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    bridge = WorkerProcess(env, tmp_path / "bridge.log", command="alerts-bridge").start()
    try:
        scan = f.scan(at=datetime.now(f.SHANGHAI), health_code={"color": "red"}, venue_id="school-3",
                      venue_type="school", checkpoint_id="gate-3")
        produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(b"school-3", f.encode(scan))])
        level1 = wait_for(lambda: am_alerts(alertmanager, level="1", incident_status="TRIGGERED"))
        assert level1[0]["receivers"] == [{"name": "xihu-oncall-urgent"}]
        dedup_id = level1[0]["labels"]["dedup_id"]
        # Level 2, six seconds on: the supervisors' route, as Alertmanager's own API shows it.
        level2 = wait_for(lambda: am_alerts(alertmanager, level="2", status_active="x") or [
            a for a in am_alerts(alertmanager, level="2") if a["status"]["state"] == "active"])
        assert level2[0]["receivers"] == [{"name": "xihu-supervisors"}]
        assert wait_for(lambda: hooks.firing(dedup_id, "/330106/supervisors"))
        assert not [a for a in am_alerts(alertmanager, level="1") if a["status"]["state"] == "active"]  # ended

        out = CliRunner().invoke(cli.cli, ["ack", level2[0]["annotations"]["alert_id"], "--level", "2"], env=env)
        assert out.exit_code == 0, out.output
        acked = wait_for(lambda: [a for a in am_alerts(alertmanager, incident_status="ACKNOWLEDGED")
                                  if a["status"]["state"] == "active"])
        assert acked[0]["receivers"] == [{"name": "acknowledged"}]
        time.sleep(REPEAT_S + 2)  # what was in flight at the ack
        notified = len(hooks.firing(dedup_id))
        time.sleep(3 * REPEAT_S + 2)  # three repeat intervals: a firing alert would have been notified again
        assert len(hooks.firing(dedup_id)) == notified, hooks.firing(dedup_id)[notified:]
        assert not [a for a in am_alerts(alertmanager, incident_status="TRIGGERED") if a["status"]["state"] == "active"]

        bridge_metrics = urllib.request.urlopen(f"http://127.0.0.1:{env['HCS_BRIDGE_PORT']}/metrics", timeout=5)
        text = bridge_metrics.read().decode()
        assert "hcs_bridge_lag_records 0.0" in text and "hcs_bridge_oldest_unposted_seconds 0.0" in text, text
        posted = next(line for line in text.splitlines() if line.startswith("hcs_bridge_alerts_posted_total"))
        assert float(posted.split()[1]) >= 4, text  # L1, L1 ended + L2, L2 ended + acknowledged
        with urllib.request.urlopen(f"http://127.0.0.1:{env['HCS_BRIDGE_PORT']}/readyz", timeout=5) as ready:
            assert ready.status == 200
    finally:
        bridge.stop()
        worker.stop()
        alertmanager.stop()


def test_a_silent_checkpoint_inhibits_its_three_100_violations(tmp_path: Path, hooks: Hooks) -> None:
    alertmanager = start_alertmanager(tmp_path, alertmanager_config(tmp_path, hooks.port))
    try:
        silent = {"labels": {"alertname": "CHECKPOINT_SILENT", "kind": "CHECKPOINT_SILENT", "severity": "warning",
                             "district": "330106", "venue_id": "mall-1", "checkpoint_id": "gate-1",
                             "scope": "checkpoint", "level": "1", "incident_status": "TRIGGERED"}}
        violation = {"labels": {**silent["labels"], "alertname": "THREE_100_VIOLATION",
                                "kind": "THREE_100_VIOLATION"}}
        elsewhere = {"labels": {**violation["labels"], "checkpoint_id": "gate-2"}}
        body = orjson.dumps([silent, violation, elsewhere])
        request = urllib.request.Request(f"{alertmanager.url}/api/v2/alerts", data=body,
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).close()

        def states() -> dict[tuple[str, str], str]:
            return {(a["labels"]["kind"], a["labels"]["checkpoint_id"]): a["status"]["state"]
                    for a in am_alerts(alertmanager)}

        wait_for(lambda: states().get(("THREE_100_VIOLATION", "gate-1")) == "suppressed", 20)
        assert states() == {("CHECKPOINT_SILENT", "gate-1"): "active",
                            ("THREE_100_VIOLATION", "gate-1"): "suppressed",  # inhibited by the silence
                            ("THREE_100_VIOLATION", "gate-2"): "active"}
    finally:
        alertmanager.stop()


def test_the_bridge_stops_cleanly_at_once_while_alertmanager_is_down(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    alert = stream_alert(1, time.time())
    produce(kafka_bootstrap, name(topics.INCIDENTS, topic_prefix),
            [(alert["dedup_key"].encode(), orjson.dumps(stream_incident(alert)))])
    env = {**worker_env, "HCS_ALERTMANAGER_URL": f"http://127.0.0.1:{free_port()}"}  # nobody listens
    bridge = WorkerProcess(env, tmp_path / "bridge.log", command="alerts-bridge").start()
    try:
        assert wait_for(lambda: "Alertmanager unreachable" in bridge.log_path.read_text(), 30)
        time.sleep(2)  # well into its retries
        with urllib.request.urlopen(f"http://127.0.0.1:{env['HCS_BRIDGE_PORT']}/livez", timeout=5) as live:
            assert live.status == 200
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{env['HCS_BRIDGE_PORT']}/readyz", timeout=5)
            raise AssertionError("ready while Alertmanager is down")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503 and json.loads(exc.read())["alertmanager_failing"] is True
        began = time.monotonic()
        code = bridge.stop(signal.SIGTERM, timeout_s=20)
        took = time.monotonic() - began
    finally:
        bridge.stop(signal.SIGKILL)
    log = bridge.log_path.read_text(errors="replace")
    assert code == 0 and took < 2.0, (code, took, bridge.log_tail(40))
    assert "We experienced a crash" not in log and "Traceback" not in log, bridge.log_tail(60)
    # What it had not had accepted is read again by its successor: nothing was acknowledged.
    assert read(kafka_bootstrap, name(topics.INCIDENTS, topic_prefix), lambda v: len(v) >= 1)
