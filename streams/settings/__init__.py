"""Worker settings, read from the environment once at start (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.errors import ConfigError
from streams.settings.security import KafkaSecurity

# Every environment name hcs reads, in one place (docs/interface.md "Settings", plus documented extras).
ENV_BOOTSTRAP = "HCS_BOOTSTRAP"
ENV_APP_ID = "HCS_APP_ID"
ENV_POLICY_FILE = "HCS_POLICY_FILE"
ENV_WEB_PORT = "HCS_WEB_PORT"
ENV_WEB_BIND = "HCS_WEB_BIND"
ENV_BRIDGE_PORT = "HCS_BRIDGE_PORT"
ENV_DATA_DIR = "HCS_DATA_DIR"
ENV_TOPIC_PREFIX = "HCS_TOPIC_PREFIX"
ENV_DEDUP_HORIZON_HOURS = "HCS_DEDUP_HORIZON_HOURS"
ENV_REPLICATION = "HCS_REPLICATION"
ENV_PERSONAL_RETENTION_DAYS = "HCS_PERSONAL_RETENTION_DAYS"
ENV_ALERTMANAGER_URL = "HCS_ALERTMANAGER_URL"
ENV_COMMIT_INTERVAL_S = "HCS_COMMIT_INTERVAL_S"
ENV_PROCESSING_GUARANTEE = "HCS_PROCESSING_GUARANTEE"
ENV_FETCH_MIN_BYTES = "HCS_FETCH_MIN_BYTES"
ENV_FETCH_MAX_WAIT_MS = "HCS_FETCH_MAX_WAIT_MS"
ENV_TABLE_STORE = "HCS_TABLE_STORE"
ENV_STANDBY_REPLICAS = "HCS_STANDBY_REPLICAS"
ENV_VENUE_PARTITIONS = "HCS_VENUE_PARTITIONS"

EXACTLY_ONCE = "exactly_once"
AT_LEAST_ONCE = "at_least_once"

ROCKSDB = "rocksdb"
MEMORY = "memory"
# Faust's store URL of each HCS_TABLE_STORE: ``hcs`` is streams.kafka.store (an entry point).
STORE_URLS = {ROCKSDB: "hcs://", MEMORY: "memory://"}


@dataclass(frozen=True)
class Settings:
    """What a worker needs to know about its surroundings.

    Attributes:
        bootstrap: Kafka bootstrap servers, ``host:port[,host:port]``.
        app_id: consumer group id and prefix of the worker's state (tables, changelogs).
        policy_file: a ``hcs.policy.v1`` JSON file; None means the packaged default policy.
        web_port: port of the worker's web server (``/metrics``).
        web_bind: address the web server binds; loopback unless deployed behind a scraper.
        bridge_port: port of ``hcs alerts-bridge``'s web server (``/metrics``, probes).
        data_dir: where the worker keeps local state (table stores).
        topic_prefix: prepended to every topic name; empty in production, unique per test run.
        dedup_horizon_hours: how long a seen ``event_id`` is remembered for deduplication.
        replication: replication factor of the topics and changelogs the worker creates.
        personal_retention_days: how long the person-level topics it creates keep their records
            (scans, decisions, dead letters, exposures, observations, cases, traces).
        alertmanager_url: where ``hcs alerts-bridge`` posts alerts.
        commit_interval_s: how often consumed offsets are committed (Faust's default).
        kafka: TLS and SASL settings of the cluster (``HCS_KAFKA_*``), for every client.
        processing_guarantee: ``exactly_once`` (each write of outputs and state one Kafka
            transaction) or ``at_least_once`` (outputs, then state; a crash may repeat outputs).
        fetch_min_bytes: the least a fetch of the worker's consumer asks the broker to gather
            before it answers, unless ``fetch_max_wait_ms`` passes first: fewer fetches (less
            CPU) at low rates, for at most that much more latency.
        fetch_max_wait_ms: how long the broker may hold a fetch gathering ``fetch_min_bytes``.
        table_store: ``rocksdb`` (the worker's tables on disk under ``data_dir``, also held in
            memory: a restart that keeps the data dir reads only the changelogs' new records) or
            ``memory`` (every restart reads the changelogs whole).
        standby_replicas: how many other workers keep a warm copy of each partition's tables
            (Faust's ``table_standby_replicas``), ready to take the partition over.
        venue_partitions: the partitions of the venue-keyed topics (scans, entries, decisions,
            observations, findings, the internal topics co-partitioned with them and the venue
            tables' changelogs): at most this many workers of a group share the scans. Fixed for
            a generation of topics; a larger count is a new generation (``hcs migrate``).
    """

    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "hcs-worker"
    policy_file: Path | None = None
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    bridge_port: int = 6067
    data_dir: Path = Path(".hcs")
    topic_prefix: str = ""
    dedup_horizon_hours: float = 48.0
    replication: int = 1
    personal_retention_days: float = 14.0
    alertmanager_url: str = "http://127.0.0.1:9093"
    commit_interval_s: float = 2.8
    processing_guarantee: str = EXACTLY_ONCE
    fetch_min_bytes: int = 16 * 1024
    fetch_max_wait_ms: int = 100
    table_store: str = ROCKSDB
    standby_replicas: int = 1
    venue_partitions: int = 8  # the contract's streams.contract.topics.VENUE_PARTITIONS (a unit test holds them equal)
    kafka: KafkaSecurity = field(default_factory=KafkaSecurity)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        if env.get("BROKER_CREDENTIALS"):
            # Faust reads it on its own, crashes on a string and prints it: never let it through.
            raise ConfigError("BROKER_CREDENTIALS (Faust's own setting) is set: unset it and use the HCS_KAFKA_* "
                              "settings, which read the password from a file")
        defaults = cls()
        policy = env.get(ENV_POLICY_FILE) or None
        return cls(
            bootstrap=_bootstrap(env, defaults.bootstrap),
            app_id=env.get(ENV_APP_ID) or defaults.app_id,
            policy_file=Path(policy) if policy else None,
            web_port=_int(env, ENV_WEB_PORT, defaults.web_port, 1, 65535),
            web_bind=env.get(ENV_WEB_BIND) or defaults.web_bind,
            bridge_port=_int(env, ENV_BRIDGE_PORT, defaults.bridge_port, 1, 65535),
            data_dir=Path(env.get(ENV_DATA_DIR) or defaults.data_dir),
            topic_prefix=env.get(ENV_TOPIC_PREFIX, defaults.topic_prefix),
            dedup_horizon_hours=_float(env, ENV_DEDUP_HORIZON_HOURS, defaults.dedup_horizon_hours),
            replication=_int(env, ENV_REPLICATION, defaults.replication, 1, 10),
            personal_retention_days=_float(env, ENV_PERSONAL_RETENTION_DAYS, defaults.personal_retention_days),
            alertmanager_url=env.get(ENV_ALERTMANAGER_URL) or defaults.alertmanager_url,
            commit_interval_s=_float(env, ENV_COMMIT_INTERVAL_S, defaults.commit_interval_s),
            processing_guarantee=_choice(env, ENV_PROCESSING_GUARANTEE, defaults.processing_guarantee,
                                         (EXACTLY_ONCE, AT_LEAST_ONCE)),
            fetch_min_bytes=_int(env, ENV_FETCH_MIN_BYTES, defaults.fetch_min_bytes, 1, 1024 * 1024),
            fetch_max_wait_ms=_int(env, ENV_FETCH_MAX_WAIT_MS, defaults.fetch_max_wait_ms, 0, 5000),
            table_store=_choice(env, ENV_TABLE_STORE, defaults.table_store, tuple(STORE_URLS)),
            standby_replicas=_int(env, ENV_STANDBY_REPLICAS, defaults.standby_replicas, 0, 8),
            venue_partitions=_int(env, ENV_VENUE_PARTITIONS, defaults.venue_partitions, 1, 1024),
            kafka=KafkaSecurity.from_env(env),
        )

    def client_kwargs(self) -> dict[str, Any]:
        """Arguments of an aiokafka client of the cluster: bootstrap servers, TLS and SASL."""
        return {"bootstrap_servers": self.bootstrap, **self.kafka.aiokafka_kwargs()}

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == EXACTLY_ONCE

    @property
    def store_url(self) -> str:
        """Faust's URL of the tables' store."""
        return STORE_URLS[self.table_store]

    @property
    def broker_url(self) -> str:
        """The bootstrap list in Faust's ``kafka://`` form."""
        return ";".join(f"kafka://{hp.strip()}" for hp in self.bootstrap.split(",") if hp.strip())


def _bootstrap(env: Mapping[str, str], default: str) -> str:
    """``HCS_BOOTSTRAP``: ``host:port[,host:port...]``, each port a number (a client given
    ``foo:bar`` failed deep inside with a traceback)."""
    raw = env.get(ENV_BOOTSTRAP) or default
    for server in raw.split(","):
        host, colon, port = server.strip().rpartition(":")
        if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"{ENV_BOOTSTRAP}={raw!r} is not host:port[,host:port...] "
                              f"({server.strip() or 'an empty entry'!r} is not host:port with a port number)")
    return raw


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name}={value} must be positive")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name)
    if not raw:
        return default
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(allowed)}")
    return raw
