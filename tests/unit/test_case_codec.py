"""hcs.case.v1 decoded as the tracing concept reads it; a bad report is refused with its reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from streams.contract.codec import decode_case
from streams.contract.models import CaseReport, Rejected
from tests import factories as f

ID_NUMBER = "11010519491231002X"  # a valid GB 11643 resident ID number (the standard's example)


def case(**overrides: Any) -> dict[str, Any]:
    value = {"schema": "hcs.case.v1", "event_id": "case-ev-1", "case_id": "HZ-2022-0001",
             "person_ref": f.pseudonym(9001), "district": "330106", "classification": "confirmed",
             "sampled_at": f.ts(f.T0), "onset_at": None, "reported_at": f.ts(f.T0 + timedelta(hours=20))}
    value.update(overrides)
    return value


def test_a_case_report_decodes_to_its_times() -> None:
    onset = f.T0 - timedelta(days=1)
    decoded = decode_case(orjson.dumps(case(onset_at=f.ts(onset))))
    assert decoded == CaseReport("HZ-2022-0001", f.pseudonym(9001), "330106", "confirmed", f.T0.timestamp(),
                                 onset.timestamp(), (f.T0 + timedelta(hours=20)).timestamp(), "case-ev-1")


@pytest.mark.parametrize(("overrides", "detail"), [
    ({"person_ref": ID_NUMBER}, "person_ref: must be"),
    ({"person_ref": "张三" * 8}, "person_ref: must be"),
    ({"case_id": f"HZ-{ID_NUMBER}"}, "case_id: holds a resident ID number"),
    ({"classification": "suspected"}, "classification"),
    ({"reported_at": f.ts(f.T0 - timedelta(minutes=1))}, "reported_at: is before sampled_at"),
    ({"sampled_at": "2022-05-10T08:00:00"}, "sampled_at"),
    ({"district": "3301"}, "district"),
])
def test_a_bad_report_is_refused_naming_the_field_and_never_echoing_an_id_number(overrides: dict[str, Any],
                                                                                 detail: str) -> None:
    refused = decode_case(orjson.dumps(case(**overrides)))
    assert isinstance(refused, Rejected) and detail in refused.detail, refused
    assert ID_NUMBER not in refused.detail


def test_a_report_read_before_it_was_made_is_refused() -> None:
    refused = decode_case(orjson.dumps(case()), now=f.T0.timestamp())
    assert isinstance(refused, Rejected) and "reported_at: more than" in refused.detail
