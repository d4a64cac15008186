"""hcs case report checks a report as the worker would; hcs trace counts, never lists, people."""

from __future__ import annotations

import time

import pytest

from streams.errors import CaseError
from streams.ops import cases
from tests import factories as f


def test_a_report_is_made_as_the_worker_reads_it_and_a_bad_one_is_refused_before_it_is_written() -> None:
    now = time.time()
    value = cases.case_record(f.pseudonym(1), "330106", now - 3600, now, onset_at=now - 7200, case_id="HZ-9")
    assert (value["case_id"], value["person_ref"], value["classification"]) == ("HZ-9", f.pseudonym(1), "confirmed")
    with pytest.raises(CaseError, match="person_ref: must be"):
        cases.case_record("11010519491231002X", "330106", now - 3600, now)
    with pytest.raises(CaseError, match="reported_at: is before sampled_at"):
        cases.case_record(f.pseudonym(1), "330106", now, now - 60)


def test_the_trace_summary_counts_contacts_per_venue_and_type_and_names_nobody() -> None:
    trace = {"district": "330106", "status": "complete", "visits": 3, "venues": 2, "contacts": 3,
             "started_at": "2022-05-10T00:00:00Z", "completed_at": "2022-05-10T00:00:02Z"}
    exposures = [{"venue_id": v, "venue_type": t, "district": "330106", "person_ref": f.pseudonym(p)}
                 for v, t, p in (("mall-1", "mall", 1), ("mall-1", "mall", 2), ("school-1", "school", 1))]
    lines = cases.summary("HZ-9", trace, exposures)
    text = "\n".join(lines)
    assert lines[0].startswith("case HZ-9 (330106): complete; 3 visits at 2 venues, 3 contacts")
    assert "mall-1    mall    330106    2" in text and "by venue type: mall 2, school 1" in text
    assert "2 distinct contacts in 3 exposures" in text
    assert not any(f.pseudonym(p) in text for p in (1, 2))
    assert cases.summary("HZ-0", None, []) == [
        "case HZ-0: no trace yet (is the report on hcs.cases.v1, and a worker running?)"]
