"""Policy versions from hcs.policies.v1 applied to a worker's policy (no broker): validated as
files are, immutable once in force by their published_at, refused records changing nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.concepts.policies import PolicyFeed
from streams.errors import ConfigError
from streams.rules.policy import load_policy, parse_policy
from streams.times import rfc3339

T = 1_652_140_800.0  # 2022-05-10 08:00 +08:00
H = 3600.0


def record(version: str, valid_from: float, published_at: float, **fields: Any) -> bytes:
    return orjson.dumps({"schema": "hcs.policy-version.v1", "version": version, "valid_from": rfc3339(valid_from),
                         "published_at": rfc3339(published_at), **fields})


def feed() -> PolicyFeed:
    return PolicyFeed("hcs.policies.v1", load_policy())


def test_a_published_version_applies_from_its_valid_from_and_a_scheduled_one_may_change() -> None:
    f = feed()
    f.apply(b"v4", record("v4", T, T - H, defaults={"fever_threshold_c": 37.0}, note="stricter"))
    assert f.policy.params(T - 1, "330106", "mall")[0] == "default-v1"
    version, params = f.policy.params(T, "330106", "mall")
    assert (version, params.fever_threshold_c) == ("v4", 37.0)
    assert f.policy.get("v4").note == "stricter" and f.policy.get("v4").source == "topic"  # type: ignore[union-attr]
    # Not yet in force when published: rescheduled and changed.
    f.apply(b"v4", record("v4", T + H, T - 1, defaults={"fever_threshold_c": 36.9}))
    assert f.policy.params(T, "330106", "mall")[0] == "default-v1"
    assert f.policy.params(T + H, "330106", "mall")[1].fever_threshold_c == 36.9
    assert f.take_refused() == []


@pytest.mark.parametrize(("key", "value", "detail"), [
    (b"v4", record("v4", T, T + 1, defaults={"fever_threshold_c": 38.0}), "version v4 is in force since"),
    (b"v5", record("v5", T, T, venue_types={"scool": {}}), "venue_types.scool: unknown venue type"),
    (b"v5", record("v6", T, T), "version: is not the record's key"),
    (b"v5", record("v5", T, T, defaults={"alert_dedup_minutes": 0}), "defaults.alert_dedup_minutes: 0 would emit"),
    (b"v5", b"{", "not UTF-8 JSON"),
    (b"v5", record("v5", T, T), "valid_from: the same as version v4's: two versions cannot take effect at once"),
    (b"v4", None, "a version cannot be deleted"),
    (None, record("v5", T, T), "key: must be the record's version"),
])
def test_a_refused_record_changes_nothing_and_is_handed_on(key: bytes | None, value: bytes | None,
                                                           detail: str) -> None:
    f = feed()
    f.apply(b"v4", record("v4", T, T - H, defaults={"fever_threshold_c": 37.0}))
    before = list(f.policy.versions)
    f.apply(key, value, 0, 7)
    assert f.policy.versions == before
    (rejected, where, version), = f.take_refused()
    assert detail in rejected.detail and where.offset == 7 and version == (key or b"").decode()


def test_the_same_version_read_again_after_a_restart_is_accepted() -> None:
    """A worker reading the topic again, long after: a version in force now, unchanged, is fine."""
    f = feed()
    same = record("v4", T, T - H, defaults={"fever_threshold_c": 37.0})
    f.apply(b"v4", same)
    f.apply(b"v4", same)
    assert f.take_refused() == [] and f.policy.get("v4") is not None


@pytest.mark.parametrize(("versions", "message"), [
    ([{"version": "b", "valid_from": "2022-06-01T00:00:00+08:00"},
      {"version": "a", "valid_from": "2022-05-01T00:00:00+08:00"}],
     "versions.1.valid_from: is before versions.0's: list versions in the order they take effect"),
    ([{"version": "a", "valid_from": "2022-05-01T00:00:00+08:00",
       "venue_types": {"school": {"compliance_grace_seconds": 90000}}}],
     "versions.0.venue_types.school.compliance_grace_seconds: 90000 s is longer than a day"),
    ([{"version": "a", "valid_from": "2022-05-01T00:00:00+08:00",
       "districts": {"330106": {"venue_types": {"mall": {"alert_dedup_minutes": 0}}}}}],
     "versions.0.districts.330106.venue_types.mall.alert_dedup_minutes: 0 would emit every repeat"),
])
def test_files_out_of_order_or_with_params_that_cannot_work_are_refused_with_the_reason(
        versions: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_policy({"schema": "hcs.policy.v1", "versions": versions}, "test")


def test_publish_refuses_an_invalid_file_before_it_asks_the_cluster(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from streams import cli

    bad = tmp_path / "bad.json"
    bad.write_text(orjson.dumps({"schema": "hcs.policy.v1", "versions": [
        {"version": "v9", "valid_from": "2022-05-10T08:00:00+08:00", "venue_types": {"scool": {}}}]}).decode())
    result = CliRunner().invoke(cli.cli, ["policy", "publish", str(bad)],
                                env={"HCS_BOOTSTRAP": "127.0.0.1:1"})  # nothing listens there
    assert (result.exit_code, result.output) == (
        1, "hcs: invalid policy " + str(bad) + ": versions.0.venue_types.scool: unknown venue type\n")
    two = tmp_path / "two.json"
    two.write_text(orjson.dumps({"schema": "hcs.policy.v1", "versions": [
        {"version": "a", "valid_from": "2022-05-10T08:00:00+08:00"},
        {"version": "b", "valid_from": "2022-05-11T08:00:00+08:00"}]}).decode())
    result = CliRunner().invoke(cli.cli, ["policy", "publish", str(two), "--valid-from", "2022-06-01T00:00:00+08:00"],
                                env={"HCS_BOOTSTRAP": "127.0.0.1:1"})
    assert result.exit_code == 1 and "--valid-from sets one version's start; the file has 2" in result.output
