"""Policy files: version selection by event time, override precedence, refusal naming the field."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.errors import ConfigError
from streams.rules import codes as c
from streams.rules.policy import load_policy, parse_policy
from tests import factories as f
from tests.unit.rules_helpers import verdict

T0 = f.T0


def write(tmp_path: Path, versions: list[dict[str, Any]]) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"schema": "hcs.policy.v1", "versions": versions}))
    return path


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    return write(tmp_path, [
        {"version": "2022.04", "valid_from": "2022-04-01T00:00:00+08:00"},
        {"version": "2022.05", "valid_from": f.ts(T0),
         "defaults": {"fever_threshold_c": 37.5},
         "venue_types": {"mall": {"nat_window_hours": 24}},
         "districts": {"330106": {"venue_types": {"mall": {"nat_window_hours": 12}}}}},
    ])


def test_the_version_with_the_latest_valid_from_not_after_the_event_applies(two_versions: Path) -> None:
    policy = load_policy(two_versions)
    before = (T0 - timedelta(seconds=1)).timestamp()
    assert policy.params(before, "330102", "mall")[0] == "2022.04"
    assert policy.params(T0.timestamp(), "330102", "mall")[0] == "2022.05"


def test_params_span_says_for_which_event_times_they_stay_in_force(two_versions: Path) -> None:
    policy = load_policy(two_versions)
    first_from = policy.versions[0].valid_from
    before = (T0 - timedelta(seconds=1)).timestamp()
    version, params, start, end = policy.params_span(before, "330106", "mall")
    assert (version, params) == policy.params(before, "330106", "mall")
    assert (start, end) == (-math.inf, T0.timestamp())  # the first version also covers what is before it
    assert policy.params_span(first_from - 86400, "330106", "mall")[2:] == (-math.inf, T0.timestamp())
    assert policy.params_span(T0.timestamp(), "330106", "mall")[2:] == (T0.timestamp(), math.inf)


def test_a_version_only_changes_what_it_names(two_versions: Path) -> None:
    policy = load_policy(two_versions)
    _, school = policy.params(T0.timestamp(), "330102", "school")
    assert (school.nat_window_hours, school.fever_threshold_c, school.popup_action) == (48, 37.5, "deny")


def test_district_and_venue_type_beats_venue_type_beats_defaults(two_versions: Path) -> None:
    policy = load_policy(two_versions)
    assert policy.params(T0.timestamp(), "330106", "mall")[1].nat_window_hours == 12
    assert policy.params(T0.timestamp(), "330102", "mall")[1].nat_window_hours == 24
    assert policy.params(T0.timestamp(), "330102", "hotel")[1].nat_window_hours == 72


def test_a_scan_is_judged_by_the_version_in_force_at_its_event_time(two_versions: Path) -> None:
    policy = load_policy(two_versions)
    temp = 37.4  # a fever under 2022.04 (37.3), not under 2022.05 (37.5)
    assert verdict(policy, at=T0 - timedelta(minutes=1), district="330102", temperature_c=temp).decision == c.RECHECK
    assert verdict(policy, at=T0, district="330102", temperature_c=temp).decision == c.ALLOW


def test_a_district_override_changes_the_decision(two_versions: Path) -> None:
    policy = load_policy(two_versions)
    nat = {"result": "negative", "sampled_at": f.ts(T0 - timedelta(hours=13)), "reported_at": None}
    assert verdict(policy, nat=nat, district="330106").reasons == (c.NAT_EXPIRED,)
    assert verdict(policy, nat=nat, district="330102").reasons == ()


@pytest.mark.parametrize(("versions", "message"), [
    ([{"version": "x", "valid_from": "2022-01-01T00:00:00+08:00", "defaults": {"fever_threshold_c": "hot"}}],
     "versions.0.defaults.fever_threshold_c: must be number"),
    ([{"version": "x", "valid_from": "2022-01-01T00:00:00+08:00", "venue_types": {"casino": {}}}],
     "versions.0.venue_types"),
    ([{"version": "x", "valid_from": "2022-01-01T00:00:00+08:00", "defaults": {"fever_treshold_c": 37.5}}],
     "versions.0.defaults: must not contain {'fever_treshold_c'} properties"),
    ([{"version": "x"}], "versions.0: must contain ['valid_from'] properties"),
    # Source tracing's horizon is one for the whole district: set in defaults only.
    ([{"version": "x", "valid_from": "2022-01-01T00:00:00+08:00",
       "venue_types": {"mall": {"visit_retention_days": 30}}}],
     "versions.0.venue_types.mall: must not contain {'visit_retention_days'} properties"),
    ([{"version": "x", "valid_from": "2022-01-01T00:00:00"}],
     "versions.0.valid_from: must be an RFC 3339 timestamp with an explicit offset"),
    ([{"version": "x", "valid_from": "2022-01-01T00:00:00Z"}, {"version": "x", "valid_from": "2022-02-01T00:00:00Z"}],
     "version names must be unique"),
])
def test_an_invalid_policy_is_refused_naming_the_field(tmp_path: Path, versions: list[dict[str, Any]],
                                                      message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(write(tmp_path, versions))
    assert message in str(info.value)


def test_a_policy_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{")
    with pytest.raises(ConfigError, match="is not JSON"):
        load_policy(path)


def test_policy_check_prints_effective_parameters_per_venue_type(two_versions: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "streams", "policy", "check", str(two_versions)],
                         capture_output=True, text=True, check=True).stdout
    header = out.split("version 2022.05")[1].splitlines()[1]
    assert header.split() == list(c.VENUE_TYPES)  # whole names, in the contract's order
    row = next(line for line in out.split("version 2022.05")[1].splitlines() if line.strip().startswith("fever"))
    assert row.split()[1:] == ["37.5"] * 12
    assert out.strip().endswith("OK (2 version(s))")


def test_policy_check_fails_with_the_field_on_an_invalid_file(tmp_path: Path) -> None:
    bad = write(tmp_path, [{"version": "x", "valid_from": "2022-01-01T00:00:00Z", "defaults": {"popup_action": "ban"}}])
    result = subprocess.run([sys.executable, "-m", "streams", "policy", "check", str(bad)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "versions.0.defaults.popup_action" in result.stderr


def test_the_packaged_policy_matches_the_contract_table() -> None:
    policy = load_policy()
    table = {vt: policy.params(T0.timestamp(), "330106", vt)[1] for vt in c.VENUE_TYPES}
    assert table["other"].nat_window_hours is None and not table["other"].temperature_required
    assert table["transport_hub"].itinerary_required and table["transport_hub"].vaccination_required
    assert [vt for vt, p in table.items() if p.popup_action == "deny"] == [
        "school", "kindergarten", "nursing_home", "hospital", "isolation_point", "government"]
    assert {vt: p.dwell_minutes for vt, p in table.items()} == {
        "school": 480, "kindergarten": 480, "office": 480, "government": 240, "hotel": 720, "hospital": 120,
        "nursing_home": 120, "mall": 90, "transport_hub": 60, "other": 60, "supermarket": 45, "isolation_point": None}
    assert [vt for vt, p in table.items() if p.traced_contact_action == "report"] == ["hospital"]
    defaults = policy.defaults_at(T0.timestamp())
    assert (defaults.trace_on_nat_positive, defaults.visit_retention_days, defaults.trace_lookback_days,
            defaults.contact_min_overlap_minutes, defaults.contact_flag_days) == (True, 14, 4, 10, 7)


@pytest.mark.parametrize(("version", "message"), [
    ({"venue_types": {"scool": {}}}, "versions.0.venue_types.scool: unknown venue type"),
    ({"districts": {"330106": {"venue_types": {"mal": {}}}}},
     "versions.0.districts.330106.venue_types.mal: unknown venue type"),
    ({"districts": {"3301": {}}}, "versions.0.districts.3301: must be a 6-digit GB/T 2260 district code, e.g. 330106"),
])
def test_a_bad_venue_type_or_district_key_is_named_in_the_error(version: dict[str, Any], message: str) -> None:
    doc = {"schema": "hcs.policy.v1", "versions": [
        {"version": "a", "valid_from": "2022-01-01T00:00:00+08:00", **version}]}
    with pytest.raises(ConfigError) as caught:
        parse_policy(doc)
    assert str(caught.value) == f"invalid policy document: {message}"
