"""docker-compose.yml and deploy/ stay consistent with the local setup and with each other."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams import settings as settings_module
from streams.settings import security as kafka_security
from tests.environment import tool

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_runs_kafka_worker_simulator_and_the_monitoring_stack() -> None:
    assert set(compose()["services"]) == {"kafka", "worker", "simulator", "alerts-bridge", "prometheus",
                                          "alertmanager", "grafana"}


def test_compose_binds_its_ports_to_this_machine_and_sets_no_default_password() -> None:
    services = compose()["services"]
    published = {name: svc["ports"] for name, svc in services.items() if "ports" in svc}
    assert set(published) == {"kafka", "prometheus", "alertmanager", "grafana"}
    assert all(str(port).startswith("127.0.0.1:") for ports in published.values() for port in ports), published
    password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert password.startswith("${GRAFANA_ADMIN_PASSWORD:?"), password  # compose refuses to start without one


def test_the_network_policies_let_in_only_prometheus_and_let_out_only_kafka_dns_and_alertmanager() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in manifests() if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"hcs-worker", "hcs-alerts-bridge"}
    for name, port in (("hcs-worker", 6066), ("hcs-alerts-bridge", 6067)):
        spec = policies[name]
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
        assert [p["port"] for rule in spec["ingress"] for p in rule["ports"]] == [port]
        out = sorted(p["port"] for rule in spec["egress"] for p in rule["ports"])
        assert out == ([53, 53, 9093] if name == "hcs-worker" else [53, 53, 9093, 9093]), out


def test_compose_runs_the_kafka_version_of_the_local_broker() -> None:
    pom = ET.parse(ROOT / "streams/dev/localkafka/pom.xml").getroot()
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
    job, bridge_job = prom["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    worker = compose()["services"]["worker"]
    assert sd["names"] == ["worker"] and str(sd["port"]) == worker["environment"]["HCS_WEB_PORT"]
    assert worker["expose"] == [worker["environment"]["HCS_WEB_PORT"]]
    # The alerts bridge on its default port, bound where Prometheus reaches it.
    bridge = compose()["services"]["alerts-bridge"]
    assert bridge_job["job_name"] == "hcs-alerts-bridge"
    assert bridge_job["static_configs"] == [{"targets": ["alerts-bridge:6067"]}]
    assert bridge["environment"]["HCS_WEB_BIND"] == "0.0.0.0"


def test_the_bridge_posts_to_the_alertmanager_compose_runs() -> None:
    bridge = compose()["services"]["alerts-bridge"]
    assert bridge["command"] == ["alerts-bridge"]
    assert bridge["environment"]["HCS_ALERTMANAGER_URL"] == "http://alertmanager:9093"


def test_grafana_dashboards_are_provisioned_from_the_mounted_folder() -> None:
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/hcs.yml").read_text())
    source = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    grafana = compose()["services"]["grafana"]
    # The provisioning files name their paths by environment variables (Grafana expands them):
    # compose sets them for its containers, the README for a Grafana without Docker.
    assert provider["providers"][0]["options"]["path"] == "${HCS_DASHBOARDS_DIR}"
    assert source["datasources"][0]["url"] == "${HCS_PROMETHEUS_URL}"
    path = grafana["environment"]["HCS_DASHBOARDS_DIR"]
    assert grafana["environment"]["HCS_PROMETHEUS_URL"] == "http://prometheus:9090"
    mounts = dict(v.split(":")[:2][::-1] for v in grafana["volumes"])
    assert path in mounts and list((ROOT / mounts[path]).glob("*.json"))
    readme = (ROOT / "README.md").read_text()
    assert "HCS_DASHBOARDS_DIR=$PWD/deploy/grafana/dashboards" in readme


def test_prometheus_config_and_rules_pass_promtool() -> None:
    promtool = tool("promtool")
    for args in (["check", "config", "deploy/prometheus/prometheus.yml"],
                 ["check", "config", "deploy/prometheus/local.yml"],
                 ["check", "rules", *map(str, sorted((ROOT / "deploy/prometheus/rules").glob("*.yml")))]):
        result = subprocess.run([promtool, *args], cwd=ROOT, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_passes_amtool() -> None:
    amtool = tool("amtool")
    result = subprocess.run([amtool, "check-config", "deploy/alertmanager/alertmanager.yml"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receiver"), [
    # A traced contact stopped at a checkpoint pages the venue district's on-call at once.
    (["alertname=CONTACT_DETECTED", "severity=critical", "district=330106", "venue_id=330106-mall-001"],
     "xihu-oncall-urgent"),
    # A case traced goes to the case's district's on-call, grouped.
    (["alertname=CASE_TRACED", "severity=warning", "district=330105", "venue_id=hcs.cases.v1"], "gongshu-oncall"),
])
def test_source_tracings_alerts_reach_the_district_on_call(labels: list[str], receiver: str) -> None:
    result = subprocess.run([tool("amtool"), "config", "routes", "test",
                             "--config.file=deploy/alertmanager/alertmanager.yml", *labels],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == receiver, result.stdout + result.stderr


KUBERNETES_VERSION = "1.31.0"  # the oldest Kubernetes still maintained when these were written


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted((ROOT / "deploy/kubernetes").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def resource(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name)


def workload(name: str) -> dict[str, Any]:
    """The Deployment or StatefulSet ``name``."""
    return next(d for d in manifests() if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == name)


def container(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = workload(name)["spec"]["template"]["spec"]["containers"][0]
    return spec


def test_kubernetes_manifests_are_valid_against_the_kubernetes_schemas() -> None:
    import kubernetes_validate

    docs = manifests()
    assert {d["kind"] for d in docs} == {"Namespace", "ServiceAccount", "Deployment", "StatefulSet", "Service",
                                         "PodDisruptionBudget", "ConfigMap", "NetworkPolicy"}
    for doc in docs:  # strict: an unknown field (a typo) is an error too
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_worker_and_the_bridge_run_the_versioned_image_with_the_settings_they_read() -> None:
    from importlib.metadata import version

    known = {v for k, v in vars(settings_module).items() if k.startswith("ENV_")}
    known |= {v for k, v in vars(kafka_security).items() if k.startswith("ENV_")}
    config = resource("ConfigMap", "hcs-kafka")["data"]
    for name, command in (("hcs-worker", "worker"), ("hcs-alerts-bridge", "alerts-bridge")):
        spec = container(name)
        assert spec["image"].rsplit(":", 1)[1] == version("hcs") and not spec["image"].endswith(":latest")
        assert spec["args"][0] == command
        env = {e["name"]: e for e in spec["env"]} | {k: {"value": v} for k, v in config.items()}
        assert set(env) <= known, set(env) - known
        # Kafka credentials come from the Secret: the username as a reference, the password as a file.
        # One Secret per role: the worker and the bridge log in as different users.
        secret = {"hcs-worker": "hcs-kafka-worker", "hcs-alerts-bridge": "hcs-kafka-bridge"}[name]
        assert env["HCS_KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"]["name"] == secret
        mounts = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}
        volumes = {v["name"]: v for v in workload(name)["spec"]["template"]["spec"]["volumes"]}
        assert volumes["kafka"]["secret"]["secretName"] == secret
        assert Path(config["HCS_KAFKA_SASL_PASSWORD_FILE"]).parent == Path(mounts["kafka"])
        assert not any("PASSWORD" in e and "value" in env[e] and e != "HCS_KAFKA_SASL_PASSWORD_FILE" for e in env)
    assert {e["name"]: e for e in container("hcs-alerts-bridge")["env"]}["HCS_ALERTMANAGER_URL"]["value"] == (
        "http://alertmanager.monitoring:9093")


def test_everything_goes_in_a_namespace_of_its_own_made_first() -> None:
    files = sorted((ROOT / "deploy/kubernetes").glob("*.yaml"))
    first = [d for d in yaml.safe_load_all(files[0].read_text()) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in first] == [("Namespace", "hcs")]
    assert first[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(d["metadata"].get("namespace") == "hcs" for d in manifests() if d["kind"] != "Namespace")


def test_no_placeholder_cluster_address_is_applied_the_bootstrap_is_the_operators() -> None:
    applied = "\n".join(path.read_text() for path in (ROOT / "deploy/kubernetes").glob("*.yaml"))
    assert all("HCS_BOOTSTRAP" not in d.get("data", {}) for d in manifests() if d["kind"] == "ConfigMap")
    for name in ("hcs-worker", "hcs-alerts-bridge"):
        env = {e["name"]: e for e in container(name)["env"]}
        assert env["HCS_BOOTSTRAP"]["valueFrom"]["configMapKeyRef"] == {"name": "hcs-kafka-bootstrap",
                                                                        "key": "HCS_BOOTSTRAP"}
    assert "kubectl -n hcs create configmap hcs-kafka-bootstrap" in applied  # how to make it, said
    assert not any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == "hcs-kafka-bootstrap" for d in manifests())


@pytest.mark.parametrize("name", ["hcs-worker", "hcs-alerts-bridge"])
def test_pods_run_as_their_own_account_unprivileged_on_a_read_only_root(name: str) -> None:
    pod = workload(name)["spec"]["template"]["spec"]
    account = resource("ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(name)["securityContext"]
    assert security == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}
    # What hcs writes has a volume: its data dir, and /tmp.
    mounts = {m["mountPath"]: m["name"] for m in container(name)["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container(name)["env"]}
    assert "/tmp" in mounts and env["HCS_DATA_DIR"] in mounts
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"])


def test_workers_are_spread_over_nodes_where_there_are_nodes_enough() -> None:
    pod = workload("hcs-worker")["spec"]["template"]
    terms = pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    term = terms[0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_prometheus_on_kubernetes_scrapes_every_pod_of_the_headless_services_under_the_rules_job_names() -> None:
    promtool = tool("promtool")
    result = subprocess.run([promtool, "check", "config", "deploy/prometheus/kubernetes.yml"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((ROOT / "deploy/prometheus/kubernetes.yml").read_text())
    rules = (ROOT / "deploy/prometheus/rules/hcs.yml").read_text()
    for job in config["scrape_configs"]:
        assert f'up{{job="{job["job_name"]}"}}' in rules
        (sd,) = job["dns_sd_configs"]
        service = resource("Service", job["job_name"])
        assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
        assert sd["names"] == [f"{job['job_name']}.hcs.svc.cluster.local"]
        pod = workload(job["job_name"])["spec"]["template"]
        assert str(sd["port"]) == pod["metadata"]["annotations"]["prometheus.io/port"]
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_the_worker_is_probed_on_livez_and_readyz_of_its_web_port() -> None:
    spec = container("hcs-worker")
    env = {e["name"]: e.get("value") for e in spec["env"]}
    port = next(p for p in spec["ports"] if p["name"] == spec["readinessProbe"]["httpGet"]["port"])
    assert str(port["containerPort"]) == env["HCS_WEB_PORT"]
    assert spec["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["startupProbe"]["httpGet"]["path"] == "/livez"  # served while the cluster is awaited
    for name in ("hcs-worker", "hcs-alerts-bridge"):
        probe = container(name)["startupProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 300
    assert resource("StatefulSet", "hcs-worker")["spec"]["updateStrategy"]["type"] == "RollingUpdate"


def test_each_worker_keeps_its_tables_on_a_volume_of_its_own_at_its_data_dir() -> None:
    worker = resource("StatefulSet", "hcs-worker")["spec"]
    env = {e["name"]: e.get("value") for e in container("hcs-worker")["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container("hcs-worker")["volumeMounts"]}
    claims = {c["metadata"]["name"]: c for c in worker["volumeClaimTemplates"]}
    assert env["HCS_TABLE_STORE"] == "rocksdb" and mounts["data"] == env["HCS_DATA_DIR"]
    assert "data" in claims and claims["data"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "data" not in {v["name"] for v in worker["template"]["spec"]["volumes"]}  # not an emptyDir
    assert resource("Service", worker["serviceName"])["spec"]["clusterIP"] == "None"


def _bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return float(quantity[: -len(unit)]) * factor
    return float(quantity)


def test_worker_memory_is_sized_from_the_dedup_figures_of_the_readme() -> None:
    """~175 bytes per dedup id (README, measured), 48 h of 50 scans/s, ~400 MB for the process,
    and on every worker the whole key-personnel register: ~290 bytes a plan, room for 10⁶."""
    ids = 50 * 3600 * 48
    dedup, process = ids * 175, 400e6 + 290 * 10**6
    readme = (ROOT / "README.md").read_text()
    assert "about 175 bytes each" in readme and "8.6 million ids" in readme
    assert "about 290 bytes a plan" in readme
    spec = container("hcs-worker")
    replicas = workload("hcs-worker")["spec"]["replicas"]
    assert {e["name"]: e.get("value") for e in spec["env"]}["HCS_DEDUP_HORIZON_HOURS"] == "48"
    assert _bytes(spec["resources"]["requests"]["memory"]) >= dedup / replicas + process
    # One worker left holds every partition's ids.
    assert _bytes(spec["resources"]["limits"]["memory"]) >= dedup + process


def test_a_disruption_budget_keeps_all_but_one_worker() -> None:
    pdb = resource("PodDisruptionBudget", "hcs-worker")["spec"]
    labels = workload("hcs-worker")["spec"]["template"]["metadata"]["labels"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"].items() <= labels.items()


def test_the_policy_config_map_is_a_valid_policy_mounted_where_the_worker_reads_it(tmp_path: Path) -> None:
    from streams.rules.policy import load_policy

    text = resource("ConfigMap", "hcs-policy")["data"]["policy.json"]
    (tmp_path / "policy.json").write_text(text)
    assert load_policy(tmp_path / "policy.json").versions
    spec = container("hcs-worker")
    mounts = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}
    policy_file = {e["name"]: e.get("value") for e in spec["env"]}["HCS_POLICY_FILE"]
    assert Path(policy_file) == Path(mounts["policy"]) / "policy.json"


def test_long_running_compose_services_restart_by_themselves() -> None:
    services = compose()["services"]
    assert {name for name, s in services.items() if s.get("restart") != "unless-stopped"} == set()


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
    # A breach in Xihu by a person Gongshu manages: both districts' urgent receivers.
    ("district=330106 managing_district=330105 severity=critical kind=ISOLATION_BREACH",
     "gongshu-oncall-urgent,xihu-oncall-urgent"),
    ("district=330110 managing_district=330102 severity=warning kind=MONITORING_RESTRICTED",
     "shangcheng-oncall,yuhang-oncall"),
    # Incidents: level 1 as before, level 2 the district's supervisors, level 3 its leadership,
    # whatever the severity; an acknowledged incident notifies nobody.
    ("district=330106 severity=critical kind=KEY_PERSON_DETECTED level=1 incident_status=TRIGGERED",
     "xihu-oncall-urgent"),
    ("district=330106 severity=critical kind=KEY_PERSON_DETECTED level=2 incident_status=TRIGGERED",
     "xihu-supervisors"),
    ("district=330108 severity=warning kind=CHECKPOINT_SILENT level=2 incident_status=TRIGGERED",
     "binjiang-supervisors"),
    ("district=330106 severity=critical kind=KEY_PERSON_DETECTED level=3 incident_status=TRIGGERED",
     "xihu-leadership"),
    ("district=330106 managing_district=330105 severity=critical kind=ISOLATION_BREACH level=2",
     "gongshu-supervisors,xihu-supervisors"),
    ("district=330106 severity=critical kind=KEY_PERSON_DETECTED level=2 incident_status=ACKNOWLEDGED",
     "acknowledged"),
    ("scope=service severity=critical alertname=POLICY_REJECTED level=1 incident_status=ACKNOWLEDGED",
     "acknowledged"),
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
    config_receivers = {r["name"]: r for r in config["receivers"]}
    assert "webhook_configs" not in config_receivers["acknowledged"]  # notifies nobody


def test_keda_scales_the_worker_statefulset_on_its_groups_lag_up_to_one_worker_a_partition() -> None:
    from streams.contract import topics

    docs = {d["kind"]: d for d in yaml.safe_load_all(
        (ROOT / "deploy/kubernetes/autoscaling/hcs-worker-keda.yaml").read_text()) if d}
    scaled, auth = docs["ScaledObject"]["spec"], docs["TriggerAuthentication"]["spec"]
    worker = resource("StatefulSet", "hcs-worker")
    assert scaled["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "hcs-worker"}
    assert scaled["maxReplicaCount"] == topics.SCANS.partitions  # the ceiling of parallelism
    # Never below two (a warm standby of each partition's state), and a drain takes one at a time.
    budget = resource("PodDisruptionBudget", "hcs-worker")["spec"]
    assert scaled["minReplicaCount"] >= 2 and budget["maxUnavailable"] == 1
    down = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300 and down["policies"] == [
        {"type": "Pods", "value": 1, "periodSeconds": 300}]
    (trigger,) = scaled["triggers"]
    meta = trigger["metadata"]
    config = resource("ConfigMap", "hcs-kafka")["data"]
    assert trigger["type"] == "kafka" and meta["consumerGroup"] == config["HCS_APP_ID"]
    assert meta["topic"] == topics.SCANS.name and meta["allowIdleConsumers"] == "false"
    env = {e["name"] for e in container("hcs-worker")["env"]}
    assert meta["bootstrapServersFromEnv"] in env
    assert (meta["sasl"], meta["tls"]) == ("scram_sha512", "enable")
    assert config["HCS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512" and config["HCS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    secret = next(v for v in worker["spec"]["template"]["spec"]["volumes"] if v["name"] == "kafka")["secret"]
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["secretTargetRef"]}
    assert refs == {"username": (secret["secretName"], "username"), "password": (secret["secretName"], "password"),
                    "ca": (secret["secretName"], "ca.pem")}
    assert int(meta["lagThreshold"]) < 10_000  # it scales before HcsWorkerLagging pages
    assert all(d["metadata"]["namespace"] == "hcs" for d in docs.values())
