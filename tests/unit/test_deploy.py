"""docker-compose.yml and deploy/ stay consistent with the local setup and with each other."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams import settings as settings_module
from tests.environment import tool

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_runs_kafka_worker_simulator_and_the_monitoring_stack() -> None:
    assert set(compose()["services"]) == {"kafka", "worker", "simulator", "alerts-bridge", "prometheus",
                                          "alertmanager", "grafana"}


def test_compose_runs_the_kafka_version_of_the_local_broker() -> None:
    pom = ET.parse(ROOT / "streams/localkafka/pom.xml").getroot()
    version = pom.findtext("m:properties/m:kafka.version", namespaces={"m": "http://maven.apache.org/POM/4.0.0"})
    assert version and version.startswith("4.")
    assert compose()["services"]["kafka"]["image"] == f"apache/kafka:{version}"


def test_every_file_compose_mounts_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            assert (ROOT / host).exists(), f"{name} mounts missing {host}"
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").is_file()


def test_the_worker_is_configured_only_with_settings_hcs_reads() -> None:
    known = {v for k, v in vars(settings_module).items() if k.startswith("ENV_")}
    for name in ("worker", "simulator", "alerts-bridge"):
        assert set(compose()["services"][name]["environment"]) <= known


def test_the_worker_reaches_kafka_on_an_advertised_listener() -> None:
    services = compose()["services"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{services['worker']['environment']['HCS_BOOTSTRAP']}" in advertised


def test_prometheus_finds_every_worker_replica_on_the_port_compose_exposes() -> None:
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    worker = compose()["services"]["worker"]
    assert sd["names"] == ["worker"] and str(sd["port"]) == worker["environment"]["HCS_WEB_PORT"]
    assert worker["expose"] == [worker["environment"]["HCS_WEB_PORT"]]


def test_the_bridge_posts_to_the_alertmanager_compose_runs() -> None:
    bridge = compose()["services"]["alerts-bridge"]
    assert bridge["command"] == ["alerts-bridge"]
    assert bridge["environment"]["HCS_ALERTMANAGER_URL"] == "http://alertmanager:9093"


def test_grafana_dashboards_are_provisioned_from_the_mounted_folder() -> None:
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/hcs.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = dict(v.split(":")[:2][::-1] for v in compose()["services"]["grafana"]["volumes"])
    assert path in mounts and list((ROOT / mounts[path]).glob("*.json"))


def test_prometheus_config_and_rules_pass_promtool() -> None:
    promtool = tool("promtool")
    for args in (["check", "config", "deploy/prometheus/prometheus.yml"],
                 ["check", "rules", *map(str, sorted((ROOT / "deploy/prometheus/rules").glob("*.yml")))]):
        result = subprocess.run([promtool, *args], cwd=ROOT, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_passes_amtool() -> None:
    amtool = tool("amtool")
    result = subprocess.run([amtool, "check-config", "deploy/alertmanager/alertmanager.yml"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_manifests_use_the_contract_settings() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/hcs-worker.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    known = {v for k, v in vars(settings_module).items() if k.startswith("ENV_")}
    assert env <= known and {"HCS_BOOTSTRAP", "HCS_APP_ID", "HCS_WEB_PORT"} <= env


def test_promtool_unit_tests_cover_every_rule_and_pass() -> None:
    promtool = tool("promtool")
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/hcs.yml").read_text())
    tests = yaml.safe_load((ROOT / "deploy/prometheus/tests/hcs_test.yml").read_text())
    records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tested_exprs = {t["expr"] for case in tests["tests"] for t in case.get("promql_expr_test", [])}
    tested_alerts = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])
                     if t["exp_alerts"]}
    assert records <= tested_exprs, records - tested_exprs
    assert alerts <= tested_alerts, alerts - tested_alerts
    result = subprocess.run([promtool, "test", "rules", "deploy/prometheus/tests/hcs_test.yml"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receiver"), [
    ("district=330106 severity=critical kind=KEY_PERSON_DETECTED", "xihu-oncall-urgent"),
    ("district=330106 severity=warning kind=THREE_100_VIOLATION", "xihu-oncall"),
    ("district=330110 severity=critical kind=NAT_POSITIVE", "yuhang-oncall-urgent"),
    ("district=330102 severity=warning kind=CHECKPOINT_SILENT", "shangcheng-oncall"),
    ("scope=service severity=critical alertname=HcsWorkerDown", "hcs-operators"),
    ("district=330199 severity=warning", "city-command-centre"),
])
def test_alerts_are_routed_by_district_and_severity(labels: str, receiver: str) -> None:
    amtool = tool("amtool")
    result = subprocess.run([amtool, "config", "routes", "test", "--config.file=deploy/alertmanager/alertmanager.yml",
                             *labels.split()], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_silent_checkpoints_inhibit_their_checkpoint_alerts() -> None:
    config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    (rule,) = config["inhibit_rules"]
    assert rule["source_matchers"] == ['kind="CHECKPOINT_SILENT"'] and rule["equal"] == ["checkpoint_id"]
    assert 'scope="checkpoint"' in rule["target_matchers"]
