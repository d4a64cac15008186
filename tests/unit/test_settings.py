"""Settings come from the environment names of docs/interface.md, with defaults and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.settings import Settings


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({})
    assert (s.bootstrap, s.app_id, s.web_port, s.policy_file) == ("127.0.0.1:9092", "hcs-worker", 6066, None)


def test_every_contract_setting_is_read() -> None:
    s = Settings.from_env({"HCS_BOOTSTRAP": "k1:9092,k2:9092", "HCS_APP_ID": "xihu", "HCS_POLICY_FILE": "/p.json",
                           "HCS_WEB_PORT": "7000", "HCS_DATA_DIR": "/var/lib/hcs"})
    assert s.bootstrap == "k1:9092,k2:9092"
    assert s.broker_url == "kafka://k1:9092;kafka://k2:9092"
    assert (s.app_id, s.policy_file, s.web_port, s.data_dir) == ("xihu", Path("/p.json"), 7000, Path("/var/lib/hcs"))


@pytest.mark.parametrize(("name", "value", "message"), [
    ("HCS_WEB_PORT", "http", "HCS_WEB_PORT='http' is not an integer"),
    ("HCS_WEB_PORT", "70000", "HCS_WEB_PORT=70000 is outside 1..65535"),
    ("HCS_DEDUP_HORIZON_HOURS", "-1", "HCS_DEDUP_HORIZON_HOURS=-1.0 must be positive"),
    ("HCS_BOOTSTRAP", "foo:bar", "HCS_BOOTSTRAP='foo:bar' is not host:port[,host:port...]"),
    ("HCS_BOOTSTRAP", "k1:9092,k2", "'k2' is not host:port with a port number"),
    ("HCS_BOOTSTRAP", "k1:99999", "'k1:99999' is not host:port"),
    ("HCS_STANDBY_REPLICAS", "9", "HCS_STANDBY_REPLICAS=9 is outside 0..8"),
])
def test_a_bad_setting_is_refused_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert message in str(refused.value)


def test_standby_replicas_default_to_fausts_one_and_reach_the_worker_app() -> None:
    from streams.worker.app import create_app

    assert Settings.from_env({}).standby_replicas == 1
    app = create_app(Settings.from_env({"HCS_STANDBY_REPLICAS": "0"}))
    assert app.conf.table_standby_replicas == 0


def test_bootstraps_of_several_servers_and_ipv6_are_taken() -> None:
    assert Settings.from_env({"HCS_BOOTSTRAP": "k1:9092, [::1]:9093"}).bootstrap == "k1:9092, [::1]:9093"


def test_venue_partitions_default_to_the_contracts_count_and_shape_the_worker_and_its_topics() -> None:
    from streams.contract import topics
    from streams.worker.app import create_app

    assert Settings.from_env({}).venue_partitions == topics.VENUE_PARTITIONS == topics.SCANS.partitions
    settings = Settings.from_env({"HCS_VENUE_PARTITIONS": "16", "HCS_APP_ID": "g2"})
    app = create_app(settings)
    assert app.conf.topic_partitions == 16
    assert {name: app.tables[name].partitions for name in ("seen", "state", "visits")} == dict.fromkeys(
        ("seen", "state", "visits"), 16)
    assert app.tables["incidents"].partitions == topics.ALERTS.partitions  # not venue-keyed: unchanged
    assert app.wiring.venue_partitions == 16 and app.wiring.tracing is not None and app.wiring.tracing.sources == 16
    required = topics.required_partitions("", "g2", 16)
    venue_keyed = {topics.cluster_topic_name(spec, "", "g2") for spec in topics.VENUE_KEYED}
    assert {name: required[name] for name in venue_keyed} == dict.fromkeys(venue_keyed, 16)
    assert required["g2-seen-changelog"] == required["g2-state-changelog"] == 16
    assert required[topics.ALERTS.name] == topics.ALERTS.partitions
    assert required[topics.DISTRICT_STATS.name] == topics.DISTRICT_STATS.partitions


def test_a_venue_partition_count_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"HCS_VENUE_PARTITIONS=0 is outside 1\.\.1024"):
        Settings.from_env({"HCS_VENUE_PARTITIONS": "0"})
