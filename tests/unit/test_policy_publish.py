"""`hcs policy publish` says what a version changes and when it applies, and refuses one that
would never apply to the scans of now (a valid_from before the version in force) unless forced."""

from __future__ import annotations

from typing import Any

import pytest

from streams.errors import ConfigError
from streams.ops import policy_admin
from streams.rules.policy import Policy, load_policy, parse_policy

NOW = 1_796_000_000.0  # 2026-11-30


def version(name: str, valid_from: str, **sections: Any) -> Any:
    return parse_policy({"schema": "hcs.policy.v1", "versions": [
        {"version": name, "valid_from": valid_from, "defaults": sections.get("defaults", {}),
         "venue_types": sections.get("venue_types", {}), "districts": sections.get("districts", {})}]})[0]


def in_force() -> Policy:
    policy = load_policy()
    policy.put(version("strict", "2026-11-01T00:00:00+08:00", defaults={"fever_threshold_c": 37.2}))
    return policy


def test_a_version_starting_before_the_one_in_force_is_refused_unless_forced() -> None:
    policy = in_force()
    old = version("late", "2026-10-01T00:00:00+08:00", venue_types={"mall": {"fever_threshold_c": 37.0}})
    with pytest.raises(ConfigError, match=r"before strict .* never to the scans of now"):
        policy_admin.to_publish([old], policy, None, NOW)
    assert policy_admin.to_publish([old], policy, None, NOW, force=True)[0]["version"] == "late"


def test_the_changes_against_the_version_in_force_are_said_per_venue_type_and_district() -> None:
    policy = in_force()
    malls = version("malls", "2026-12-01T00:00:00+08:00", venue_types={"mall": {"dwell_minutes": 60}},
                    districts={"330106": {"venue_types": {"school": {"nat_window_hours": 24}}}})
    lines = policy_admin.changes(policy, malls, NOW)
    # Filled from the packaged defaults (the contract), not from "strict": the threshold goes back,
    # and it is said for every venue type rather than silently.
    assert "mall: fever_threshold_c 37.2 -> 37.3; dwell_minutes 90 -> 60" in lines
    assert "school: fever_threshold_c 37.2 -> 37.3" in lines
    assert "school [330106]: nat_window_hours 48 -> 24; fever_threshold_c 37.2 -> 37.3" in lines
    assert not any(line.startswith("mall [") for line in lines)  # the district changes nothing more there
    assert policy_admin.takes_effect(malls, NOW).startswith("takes effect at 2026-12-01T00:00:00.000+08:00 (in ")
    strict = policy.get("strict")
    assert strict is not None
    assert policy_admin.changes(policy, strict, NOW) == ["no parameter changes against strict"]
