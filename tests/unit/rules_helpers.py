"""Judge factory-built scans through the real decoder, as the worker does."""

from __future__ import annotations

from typing import Any

from streams.contract.codec import decode_scans
from streams.contract.models import ScanEvent
from streams.rules.judge import Judgement, judge
from streams.rules.policy import Policy, load_policy
from tests import factories as f

DEFAULT = load_policy()


def decoded(value: dict[str, Any]) -> ScanEvent:
    (item,) = decode_scans(f.encode(value))
    assert isinstance(item, ScanEvent), item
    return item


def verdict(policy: Policy = DEFAULT, recheck_open: bool = False, **fields: Any) -> Judgement:
    scan = decoded(f.scan(**fields))
    _, params = policy.params(scan.event_time, scan.district, scan.venue_type)
    return judge(scan, params, recheck_open)
