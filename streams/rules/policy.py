"""Policy as versioned data: loading, validation and the effective parameters of a scan.

Effective parameters of (event_time, district, venue_type) are merged, later over earlier:
packaged defaults, packaged venue-type row, then the selected version's ``defaults``,
``venue_types[type]`` and ``districts[code].venue_types[type]``. So inside a version the
precedence is district+venue_type > venue_type > defaults, and anything a version leaves out
keeps the packaged value (an operator who changes one number does not lose the table).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.contract.validation import SchemaViolation, validate
from streams.errors import ConfigError
from streams.rules.codes import VENUE_TYPES
from streams.rules.incidents import Escalation, parse_plans

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.json")


@dataclass(frozen=True, slots=True)
class Params:
    """The effective policy parameters for one venue type in one district (docs/interface.md)."""

    nat_window_hours: float | None
    nat_accept_pending_hours: float | None
    vaccination_required: bool
    min_vaccine_doses: int
    itinerary_required: bool
    itinerary_lookback_days: int
    itinerary_risk_action: str
    popup_action: str
    temperature_required: bool
    fever_threshold_c: float
    recheck_window_minutes: float
    alert_dedup_minutes: float
    compliance_window_seconds: float
    compliance_grace_seconds: float
    silent_after_minutes: float
    isolation_action: str  # deny or report: a person in isolation scanned here (Managed personnel)
    monitoring_action: str  # deny or report: a person under health monitoring scanned here
    temperature_checks_per_day: int  # an isolation point's residents (Isolation-point observations)
    nat_schedule_days: tuple[int, ...]  # days of the centralized phase a NAT sample is due on
    observation_grace_minutes: float  # a point's day closes this long after its end (stream time)
    rectify_deadline_hours: float  # a finding's default deadline after it is opened (Closed-loop supervision)
    lookback_days: float  # a verified finding is looked back at this long after its verification
    auto_finding_violations: int  # a checkpoint's violation windows in a local day that open a finding
    dwell_minutes: float | None  # how long a scan here counts as a visit (Source tracing); None: not a visit
    traced_contact_action: str  # deny or report: a traced contact scanned here
    # Source tracing, set in a version's defaults only (read from :meth:`Policy.defaults_at`):
    trace_on_nat_positive: bool  # a positive NAT read by the worker starts a trace
    visit_retention_days: float  # a visit is kept this long after its event_time
    trace_lookback_days: float  # a trace reads the case's visits from this long before onset
    contact_min_overlap_minutes: float  # one visit's least shared time with the case's
    contact_flag_days: float  # a contact is flagged this long after their last overlap
    # Alert escalation, by severity, set in a version's defaults only (hashable: parse_plans).
    escalation: tuple[tuple[str, Escalation], ...]


PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Params))


@dataclass(frozen=True)
class PolicyVersion:
    version: str
    valid_from: float
    defaults: Mapping[str, Any]
    venue_types: Mapping[str, Mapping[str, Any]]
    districts: Mapping[str, Mapping[str, Mapping[str, Any]]]  # code -> venue_type -> params
    source: str = "file"  # packaged | file | topic (where the worker got it: for `hcs policy list`)
    note: str = ""  # why it was published (a topic version's note)

    def same_rules(self, other: PolicyVersion) -> bool:
        """Whether ``other`` says the same as this version (its source aside)."""
        return (self.valid_from, self.defaults, self.venue_types, self.districts) == (
            other.valid_from, other.defaults, other.venue_types, other.districts)

    def document(self) -> dict[str, Any]:
        """The version as a policy file's ``versions`` item (``valid_from`` in RFC 3339)."""
        return {"version": self.version,
                "valid_from": datetime.fromtimestamp(self.valid_from, UTC).isoformat().replace("+00:00", "Z"),
                "defaults": dict(self.defaults), "venue_types": {k: dict(v) for k, v in self.venue_types.items()},
                "districts": {d: {"venue_types": {k: dict(v) for k, v in spec.items()}}
                              for d, spec in self.districts.items()}}


class Policy:
    """A set of policy versions; ``params`` picks the one in force at an event time."""

    def __init__(self, versions: list[PolicyVersion], base: PolicyVersion) -> None:
        self._base = base
        self._set(versions)

    def _set(self, versions: list[PolicyVersion]) -> None:
        self.versions = sorted(versions, key=lambda v: v.valid_from)
        self._starts = [v.valid_from for v in self.versions]
        self._cache: dict[tuple[int, str, str], Params] = {}

    def get(self, name: str) -> PolicyVersion | None:
        return next((v for v in self.versions if v.version == name), None)

    def put(self, version: PolicyVersion) -> None:
        """Add ``version``, or replace the one of its name (a running worker's new versions)."""
        self._set([v for v in self.versions if v.version != version.version] + [version])

    def version_at(self, event_time: float) -> PolicyVersion | None:
        """The version with the latest ``valid_from`` <= ``event_time`` (None before the first)."""
        i = bisect.bisect_right(self._starts, event_time) - 1
        return self.versions[i] if i >= 0 else None

    def params(self, event_time: float, district: str, venue_type: str) -> tuple[str, Params]:
        """(version name, effective params) for a scan. Before the first version, the first applies."""
        return self._params(self._index(event_time), district, venue_type)

    def _index(self, event_time: float) -> int:
        return max(bisect.bisect_right(self._starts, event_time) - 1, 0)

    def _params(self, i: int, district: str, venue_type: str) -> tuple[str, Params]:
        key = (i, district, venue_type)
        cached = self._cache.get(key)
        version = self.versions[i]
        if cached is None:
            cached = self._cache[key] = self._merge(version, district, venue_type)
        return version.version, cached

    def params_span(self, event_time: float, district: str, venue_type: str) -> tuple[str, Params, float, float]:
        """:meth:`params`, and the span ``[start, end)`` of event times in which they are in force."""
        i = self._index(event_time)
        version, params = self._params(i, district, venue_type)
        start = self._starts[i] if i > 0 else -math.inf  # the first version also covers what is before it
        end = self._starts[i + 1] if i + 1 < len(self._starts) else math.inf
        return version, params, start, end

    def defaults_at(self, event_time: float) -> Params:
        """The version's defaults over the packaged ones (for figures that span venue types)."""
        return self.params(event_time, "", "")[1]

    def _merge(self, version: PolicyVersion, district: str, venue_type: str) -> Params:
        merged: dict[str, Any] = {}
        merged.update(self._base.defaults)
        merged.update(self._base.venue_types.get(venue_type, {}))
        if version is not self._base:
            merged.update(version.defaults)
            merged.update(version.venue_types.get(venue_type, {}))
        merged.update(version.districts.get(district, {}).get(venue_type, {}))
        values: dict[str, Any] = {name: merged[name] for name in PARAM_NAMES}
        values["nat_schedule_days"] = tuple(values["nat_schedule_days"])  # a JSON list; Params are hashable
        values["escalation"] = parse_plans(values["escalation"])
        return Params(**values)

    def effective_table(self, version: PolicyVersion, district: str = "") -> dict[str, Params]:
        """Every venue type's effective params under ``version`` (for ``hcs policy check``)."""
        return {vt: self._merge(version, district, vt) for vt in VENUE_TYPES}


def _parse_version(raw: Mapping[str, Any], where: str, source: str) -> PolicyVersion:
    try:
        valid_from = datetime.fromisoformat(str(raw["valid_from"]).upper()).timestamp()
    except ValueError as exc:
        raise ConfigError(f"{where}.valid_from: {raw['valid_from']!r} is not a valid timestamp ({exc})") from None
    return PolicyVersion(
        version=raw["version"],
        valid_from=valid_from,
        defaults=dict(raw.get("defaults", {})),
        venue_types={k: dict(v) for k, v in raw.get("venue_types", {}).items()},
        districts={d: {k: dict(v) for k, v in spec.get("venue_types", {}).items()}
                   for d, spec in raw.get("districts", {}).items()},
        source=source,
    )


DAY_S = 86400


def _incoherent(params: Mapping[str, Any]) -> tuple[str, str] | None:
    """(param, why) of a value the schema allows but the worker cannot work with, or None."""
    grace = params.get("compliance_grace_seconds")
    if grace is not None and grace > DAY_S:
        return ("compliance_grace_seconds", f"{grace:g} s is longer than a day: every checkpoint window would "
                "wait that long to close, and be held in memory meanwhile")
    if params.get("alert_dedup_minutes") == 0:
        return ("alert_dedup_minutes", "0 would emit every repeat of a person alert: use at least 1")
    for severity, plan in (params.get("escalation") or {}).items():
        levels = plan.get("levels", [0])
        if levels[0] != 0:
            return ("escalation", f"{severity}.levels: the first level is notified at the trigger: start at 0")
        if any(b <= a for a, b in itertools.pairwise(levels)):
            return ("escalation", f"{severity}.levels: minutes must increase from level to level")
    window = params.get("compliance_window_seconds")
    if window is not None and window > DAY_S:
        return ("compliance_window_seconds", f"{window:g} s is longer than a day: a window must fit a local day")
    return None


def _check_coherent(version: PolicyVersion, where: str) -> None:
    levels: list[tuple[str, Mapping[str, Any]]] = [(f"{where}.defaults", version.defaults)]
    levels += [(f"{where}.venue_types.{vt}", p) for vt, p in version.venue_types.items()]
    levels += [(f"{where}.districts.{d}.venue_types.{vt}", p)
               for d, spec in version.districts.items() for vt, p in spec.items()]
    for path, params in levels:
        wrong = _incoherent(params)
        if wrong is not None:
            raise ConfigError(f"{path}.{wrong[0]}: {wrong[1]}")


def parse_policy(doc: Any, source: str = "document", origin: str = "file") -> list[PolicyVersion]:
    """Validate a ``hcs.policy.v1`` document; raise :class:`ConfigError` naming the bad field.
    ``origin``: where the versions come from (packaged, file, topic)."""
    try:
        validate("policy.v1", doc)
    except SchemaViolation as exc:
        raise ConfigError(f"invalid policy {source}: {exc.detail}") from None
    versions = [_parse_version(v, f"versions.{i}", origin) for i, v in enumerate(doc["versions"])]
    names = [v.version for v in versions]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"invalid policy {source}: versions: version names must be unique, repeated: {dup}")
    for i, (before, after) in enumerate(itertools.pairwise(versions), start=1):
        if after.valid_from == before.valid_from:
            raise ConfigError(f"invalid policy {source}: versions.{i}.valid_from: the same as versions.{i - 1}'s: "
                              "two versions cannot take effect at once")
        if after.valid_from < before.valid_from:
            raise ConfigError(f"invalid policy {source}: versions.{i}.valid_from: is before versions.{i - 1}'s: "
                              "list versions in the order they take effect")
    try:
        for i, version in enumerate(versions):
            _check_coherent(version, f"versions.{i}")
    except ConfigError as exc:
        raise ConfigError(f"invalid policy {source}: {exc}") from None
    return versions


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"policy file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"policy file {path} is not JSON: {exc}") from None


def load_policy(path: Path | None = None) -> Policy:
    """The policy in ``path`` (HCS_POLICY_FILE), or the packaged default policy when None."""
    base_versions = parse_policy(_read_json(DEFAULT_POLICY_PATH), "packaged default", "packaged")
    base = base_versions[0]
    missing = [n for n in PARAM_NAMES if n not in base.defaults]
    if missing:  # the packaged defaults must be complete: they fill every version's gaps
        raise ConfigError(f"packaged default policy lacks defaults.{missing[0]}")
    if path is None:
        return Policy(base_versions, base)
    return Policy(parse_policy(_read_json(path), str(path)), base)
