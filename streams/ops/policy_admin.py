"""``hcs policy publish``, ``list`` and ``rollback``: operators change the policy of running workers.

Everything a worker would refuse is refused here first, by the worker's own code: a file is
validated by :func:`streams.rules.policy.load_policy`, and the topic's versions are read through
a :class:`streams.concepts.policies.PolicyFeed` over the versions this machine's worker would start with
(the packaged default and ``HCS_POLICY_FILE``), so that a change of a version in force is said
before anything is written. The workers judge every record again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from streams.concepts.policies import PolicyFeed, version_record
from streams.contract.models import Plan
from streams.errors import ConfigError
from streams.kafka.views import ReplicatedView
from streams.ops.console import columns, send_records
from streams.rules.policy import PARAM_NAMES, Policy, PolicyVersion, load_policy
from streams.times import SHANGHAI, local_time, rfc3339

READ_TIMEOUT_S = 20.0


async def current(client: Mapping[str, Any], topic: str, policy_file: Path | None,
                  timeout_s: float = READ_TIMEOUT_S) -> tuple[Policy, list[tuple[str, str]]]:
    """The versions a worker would hold now, and the topic's refused records (version, why)."""
    policy = load_policy(policy_file)
    feed = PolicyFeed(topic, policy)
    await ReplicatedView(feed.replica, client).read_once(timeout_s)
    return policy, [(version, rejected.detail) for rejected, _, version in feed.take_refused()]


async def register_plans(client: Mapping[str, Any], topic: str, timeout_s: float = 120.0) -> dict[str, Plan]:
    """Every managed person's plan on the register now (for a replay), read to the topic's end."""
    from streams.concepts.register import Register

    register = Register(topic)
    await ReplicatedView(register.replica, client).read_once(timeout_s)
    return register.plans


def read_file(file: Path, valid_from: float | None) -> list[PolicyVersion]:
    """``file``'s versions, validated as a worker validates them (before anything is asked of
    the cluster), ``valid_from`` replacing a one-version file's."""
    versions = load_policy(file).versions
    if valid_from is not None:
        if len(versions) != 1:
            raise ConfigError(f"{file}: --valid-from sets one version's start; the file has {len(versions)}")
        versions = [dataclasses.replace(versions[0], valid_from=valid_from)]
    return versions


def to_publish(versions: list[PolicyVersion], policy: Policy, note: str | None, now: float,
               force: bool = False) -> list[dict[str, Any]]:
    """The records that publish ``versions`` over the workers' ``policy``, or a
    :class:`ConfigError` saying why a worker would refuse one, or why it would do nothing for the
    scans of now (a ``valid_from`` before the version in force; ``force`` publishes it anyway)."""
    records = []
    in_force = policy.version_at(now)
    for version in versions:
        known = policy.get(version.version)
        if known is not None and not known.same_rules(version) and known.valid_from <= now:
            raise ConfigError(f"version {version.version} is in force since {rfc3339(known.valid_from)} "
                              f"({known.source}) and cannot change: give the new rules a new version name")
        if (not force and in_force is not None and version.version != in_force.version
                and version.valid_from < in_force.valid_from):
            raise ConfigError(
                f"version {version.version} would take effect at {rfc3339(version.valid_from)}, before "
                f"{in_force.version} (in force since {rfc3339(in_force.valid_from)}): it would apply only to late "
                f"scans of the time between, never to the scans of now; give a later --valid-from (e.g. now), "
                f"or --force for those late scans")
        records.append(version_record(version, now, note))
    return records


def takes_effect(version: PolicyVersion, now: float) -> str:
    """When a published version applies, as its publisher reads it."""
    if version.valid_from <= now:
        return "in force now (scans of now are judged by it)"
    minutes = (version.valid_from - now) / 60
    wait = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    return f"takes effect at {rfc3339(version.valid_from)} (in {wait})"


def changes(policy: Policy, version: PolicyVersion, now: float) -> list[str]:
    """What ``version`` changes against the version in force now, per venue type, and for each
    district either version names where it differs from that: ``venue_type [district]: param old -> new``."""
    current = policy.version_at(now) or policy.versions[0]

    def diff(district: str) -> dict[str, list[str]]:
        before, after = policy.effective_table(current, district), policy.effective_table(version, district)
        return {venue_type: [f"{name} {_shown(getattr(before[venue_type], name))} -> {_shown(getattr(new, name))}"
                             for name in PARAM_NAMES if getattr(before[venue_type], name) != getattr(new, name)]
                for venue_type, new in after.items()}

    everywhere = diff("")
    lines = [f"{venue_type}: " + "; ".join(changed) for venue_type, changed in everywhere.items() if changed]
    for district in sorted(set(version.districts) | set(current.districts)):
        lines += [f"{venue_type} [{district}]: " + "; ".join(changed)
                  for venue_type, changed in diff(district).items() if changed != everywhere[venue_type]]
    return lines or [f"no parameter changes against {current.version}"]


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return ",".join(map(str, value))
    if isinstance(value, tuple):
        return "/".join(f"{severity} {','.join(f'{m:g}' for m in plan.levels)}" for severity, plan in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def rollback(policy: Policy, name: str, now: float, note: str | None) -> dict[str, Any]:
    """The record that makes version ``name``'s rules apply again from ``now``, as a new version."""
    old = policy.get(name)
    if old is None:
        known = ", ".join(v.version for v in policy.versions)
        raise ConfigError(f"no version {name} (the versions: {known})")
    stamp = datetime.fromtimestamp(now, SHANGHAI).strftime("%Y%m%dT%H%M%S")
    again = dataclasses.replace(old, version=f"{name[:40]}-again-{stamp}", valid_from=float(int(now)), source="topic")
    return version_record(again, now, note or f"rollback to {name}")


async def publish(client: Mapping[str, Any], topic: str, records: list[dict[str, Any]]) -> None:
    """Write the records, keyed by version, acknowledged by every in-sync replica."""
    await send_records(client, topic, [(record["version"].encode(), orjson.dumps(record)) for record in records])


def listing(policy: Policy, refused: list[tuple[str, str]], now: float | None = None) -> list[str]:
    """The versions, oldest first, marking the one in force now and the scheduled ones."""
    now = time.time() if now is None else now
    in_force, _ = policy.params(now, "", "")  # as a scan of now is judged (the first before any starts)
    rows = [("version", "valid from", "source", "state", "note")]
    for version in policy.versions:
        state = "current" if version.version == in_force else "scheduled" if version.valid_from > now else "past"
        start = local_time(version.valid_from)
        rows.append((version.version, start, version.source, state, version.note))
    lines = columns(rows)
    lines += [f"refused: {version or '(no key)'}: {why}" for version, why in refused]
    return lines
