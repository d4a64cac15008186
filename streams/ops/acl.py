"""``hcs acl plan`` and ``hcs acl apply``: the roles of ``deploy/kafka/acls.toml`` as Kafka ACLs.

The file names each role's operations per topic, group, transactional id and the cluster;
:func:`bindings` expands it for one deployment (its topic prefix and app id) into ACL bindings of
one SASL user per role. :func:`apply` makes the cluster's ACLs of those users match: it creates
the missing bindings and deletes those of these users the file no longer names (idempotent),
through Kafka's admin API (librdkafka's, by confluent-kafka: aiokafka has none for ACLs).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.contract import topics
from streams.errors import ConfigError
from streams.settings import Settings

ROLES = ("device", "isolation-staff", "inspector", "register", "cdc", "operator", "oncall", "worker", "bridge")
OPERATIONS = {"Read": "READ", "Write": "WRITE", "Create": "CREATE", "Describe": "DESCRIBE",
              "DescribeConfigs": "DESCRIBE_CONFIGS", "IdempotentWrite": "IDEMPOTENT_WRITE", "All": "ALL"}
_KINDS = {"topics": ("TOPIC", "LITERAL"), "topic_prefixes": ("TOPIC", "PREFIXED"), "groups": ("GROUP", "LITERAL"),
          "group_prefixes": ("GROUP", "PREFIXED"), "transactional_id_prefixes": ("TRANSACTIONAL_ID", "PREFIXED")}
CLUSTER_NAME = "kafka-cluster"


@dataclass(frozen=True, order=True)
class Binding:
    """One ALLOW ACL: ``principal`` may do ``operation`` on the resource (any host)."""

    principal: str  # User:<name>
    resource: str  # TOPIC GROUP TRANSACTIONAL_ID BROKER (the cluster)
    pattern: str  # LITERAL PREFIXED
    name: str
    operation: str  # READ WRITE ... (confluent-kafka's AclOperation names)

    def line(self) -> str:
        kind = "cluster" if self.resource == "BROKER" else self.resource.lower().replace("_", "-")
        where = f"{kind} {self.name}" + ("*" if self.pattern == "PREFIXED" else "")
        return f"{self.principal:<24} {self.operation.lower().replace('_', '-'):<17} {where}"


def load_roles(path: Path) -> dict[str, Any]:
    """The roles of an ACL file, checked: every role of the contract, known keys and operations."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"ACL file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"ACL file {path} is not TOML: {exc}") from None
    roles: dict[str, Any] = doc.get("roles", {})
    missing = [r for r in ROLES if r not in roles]
    if missing:
        raise ConfigError(f"{path}: roles.{missing[0]}: missing (every role of the contract is named)")
    for role, spec in roles.items():
        for i, rule in enumerate(spec.get("allow", [])):
            where = f"{path}: roles.{role}.allow[{i}]"
            unknown = set(rule) - {*_KINDS, "cluster", "operations"}
            if unknown:
                raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
            bad = [op for op in rule.get("operations", []) if op not in OPERATIONS]
            if bad or not rule.get("operations"):
                raise ConfigError(f"{where}.operations: {bad[0] if bad else 'none'} is not one of "
                                  f"{', '.join(OPERATIONS)}")
    return roles


def bindings(roles: Mapping[str, Any], topic_prefix: str = "", app_id: str = "hcs-worker",
             user_prefix: str = "") -> list[Binding]:
    """Every ACL binding the roles mean for a deployment, sorted."""
    contract = {spec.name for spec in topics.ALL}
    out: set[Binding] = set()
    for role, spec in roles.items():
        principal = f"User:{user_prefix}{role}"
        for rule in spec.get("allow", []):
            operations = [OPERATIONS[op] for op in rule["operations"]]
            resources: list[tuple[str, str, str]] = []
            for key, (resource, pattern) in _KINDS.items():
                for name in rule.get(key, []):
                    if key == "topics":
                        if name not in contract:
                            raise ConfigError(f"roles.{role}: topic {name} is not a topic of the contract")
                        name = topics.topic_name(next(s for s in topics.ALL if s.name == name), topic_prefix)
                    else:
                        name = name.format(prefix=topic_prefix, app_id=app_id)
                    resources.append((resource, pattern, name))
            if rule.get("cluster"):
                resources.append(("BROKER", "LITERAL", CLUSTER_NAME))  # librdkafka's name of Kafka's CLUSTER
            out.update(Binding(principal, resource, pattern, name, op)
                       for resource, pattern, name in resources for op in operations)
    return sorted(out)


def plan_lines(wanted: Iterable[Binding], present: Iterable[Binding] | None = None) -> list[str]:
    """What applying would do: ``+`` a binding to create, ``-`` one to delete, ``=`` one in place
    (without the cluster's ACLs: every binding, as ``+``)."""
    wanted, have = set(wanted), set(present or ())
    lines = [f"{'=' if b in have else '+'} {b.line()}" for b in sorted(wanted)]
    lines += [f"- {b.line()}" for b in sorted(have - wanted)]
    return lines


def admin_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's admin client settings from hcs's (``HCS_BOOTSTRAP``, ``HCS_KAFKA_*``)."""
    kafka = settings.kafka
    # librdkafka's own log: warnings and errors only (its info lines are no news to an operator).
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap, "security.protocol": kafka.protocol,
                              "log_level": 4}
    if kafka.uses_sasl:
        config.update({"sasl.mechanism": kafka.sasl_mechanism, "sasl.username": kafka.sasl_username,
                       "sasl.password": kafka.password()})
    for key, value in (("ssl.ca.location", kafka.ssl_cafile), ("ssl.certificate.location", kafka.ssl_certfile),
                       ("ssl.key.location", kafka.ssl_keyfile)):
        if value:
            config[key] = str(value)
    return config


def _admin(config: Mapping[str, Any]) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(dict(config))


def present(config: Mapping[str, Any], principals: Iterable[str], timeout_s: float = 20.0,
            admin: Any = None) -> list[Binding]:
    """The cluster's ALLOW bindings of ``principals`` (through ``admin``, else a client of ``config``)."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    admin = admin if admin is not None else _admin(config)
    found: set[Binding] = set()
    for principal in sorted(set(principals)):
        anything: Any = None  # any resource name, any host
        query = AclBindingFilter(ResourceType.ANY, anything, ResourcePatternType.ANY, principal, anything,
                                 AclOperation.ANY, AclPermissionType.ALLOW)
        for acl in admin.describe_acls(query, request_timeout=timeout_s).result():
            found.add(Binding(acl.principal, acl.restype.name, acl.resource_pattern_type.name, acl.name,
                              acl.operation.name))
    return sorted(found)


def apply(config: Mapping[str, Any], wanted: list[Binding], timeout_s: float = 20.0) -> tuple[int, int]:
    """Create the missing bindings and delete those of the same users the plan no longer has;
    (created, deleted)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    admin = _admin(config)
    have = set(present(config, {b.principal for b in wanted}, timeout_s, admin))
    create = [b for b in wanted if b not in have]
    delete = sorted(have - set(wanted))

    def acl(b: Binding, kind: Any) -> Any:
        return kind(ResourceType[b.resource], b.name, ResourcePatternType[b.pattern], b.principal, "*",
                    AclOperation[b.operation], AclPermissionType.ALLOW)

    if create:
        for future in admin.create_acls([acl(b, AclBinding) for b in create], request_timeout=timeout_s).values():
            future.result()
    if delete:
        for future in admin.delete_acls([acl(b, AclBindingFilter) for b in delete],
                                        request_timeout=timeout_s).values():
            future.result()
    return len(create), len(delete)


def describe_error(exc: Exception) -> str:
    """One line for a failure of librdkafka's admin client (its KafkaError's text, never a password)."""
    error = exc.args[0] if exc.args else exc
    text = getattr(error, "str", None)
    return str(text() if callable(text) else error).splitlines()[0]
