"""Three 100% and district statistics through a real broker and a real ``hcs worker``."""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.contract import topics
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.schema_check import assert_valid

pytestmark = pytest.mark.integration


def test_two_districts_yield_the_expected_violations_and_district_stats_totals(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    policy = f.policy_file(tmp_path, "drill-2", compliance_window_seconds=60, compliance_grace_seconds=2,
                           silent_after_minutes=100)
    create_topics(kafka_bootstrap, topic_prefix)
    # Three minutes ago, on a minute boundary: recent enough not to be late, old enough to be closed.
    start = datetime.fromtimestamp(math.floor(time.time() / 60) * 60 - 180, f.SHANGHAI)

    def at(i: int) -> datetime:
        return start + timedelta(seconds=5 * i)

    venues: dict[str, dict[str, Any]] = {
        "A": dict(venue_id="xihu-mall", venue_type="mall", district="330106", checkpoint_id="xihu-mall-1"),
        "B": dict(venue_id="xihu-school", venue_type="school", district="330106", checkpoint_id="xihu-school-1"),
        "C": dict(venue_id="yuhang-office", venue_type="office", district="330110", checkpoint_id="yuhang-office-1"),
        "D": dict(venue_id="yuhang-hospital", venue_type="hospital", district="330110",
                  checkpoint_id="yuhang-hospital-1"),
    }
    sent = [f.scan(**venues["A"], at=at(i)) for i in range(5)]
    sent += [f.scan(**venues["B"], at=at(0)), f.scan(**venues["B"], at=at(1), temperature_c=None),
             f.scan(**venues["B"], at=at(2), mask=False), f.scan(**venues["B"], at=at(3))]
    sent += [f.scan(**venues["C"], at=at(i)) for i in range(3)]
    sent += [f.scan(**venues["D"], at=at(0)), f.scan(**venues["D"], at=at(1), mask=None)]

    def count(v: str, n: int) -> dict[str, Any]:
        return {"schema": "hcs.entries.v1", "event_id": f"count-{v}", "window_start": f.ts(start),
                "window_end": f.ts(start + timedelta(seconds=60)), "entries": n,
                **{k: venues[v][k] for k in ("venue_id", "venue_type", "district", "checkpoint_id")}}

    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(s["venue_id"].encode(), f.encode(s)) for s in sent])
    produce(kafka_bootstrap, name(topics.ENTRIES, topic_prefix),
            [(venues[v]["venue_id"].encode(), f.encode(count(v, n))) for v, n in (("A", 5), ("B", 7))])

    expected_scans = {"330106": 9, "330110": 5}
    worker = WorkerProcess({**worker_env, "HCS_POLICY_FILE": str(policy)}, tmp_path / "worker.log").start()
    try:
        def totals_reached(records: list[dict[str, Any]]) -> bool:
            scans = Counter[str]()
            alerts = Counter[str]()
            for r in records:
                scans[r["district"]] += r["scans"]
                alerts[r["district"]] += sum(r["alerts"].values())
            return dict(scans) == expected_scans and alerts["330106"] >= 1 and alerts["330110"] >= 1

        stats = read(kafka_bootstrap, name(topics.DISTRICT_STATS, topic_prefix), totals_reached, timeout_s=90,
                     settle_s=3)
        alerts = read(kafka_bootstrap, name(topics.ALERTS, topic_prefix), lambda v: len(v) >= 2, settle_s=1)
        metrics = worker.metrics_text()
    finally:
        worker.stop()

    violations = {a["checkpoint_id"]: a for a in alerts if a["kind"] == "THREE_100_VIOLATION"}
    assert len(alerts) == 2 and set(violations) == {"xihu-school-1", "yuhang-hospital-1"}
    assert {k: violations["xihu-school-1"]["details"][k] for k in
            ("scans", "entries", "code_misses", "temperature_misses", "mask_misses")} == {
        "scans": 4, "entries": 7, "code_misses": 3, "temperature_misses": 1, "mask_misses": 1}
    assert {k: violations["yuhang-hospital-1"]["details"][k] for k in
            ("entries", "code_misses", "temperature_misses", "mask_misses")} == {
        "entries": None, "code_misses": 0, "temperature_misses": 0, "mask_misses": 1}
    assert_valid("alert.v1", alerts)
    assert_valid("district-stats.v1", stats)

    def total(district: str, field: str) -> Counter[str]:
        out = Counter[str]()
        for r in stats:
            if r["district"] == district:
                out.update(r[field])
        return out

    def three100(district: str) -> dict[str, tuple[int, int]]:
        return {m: (sum(r["three100"][m]["ok"] for r in stats if r["district"] == district),
                    sum(r["three100"][m]["miss"] for r in stats if r["district"] == district))
                for m in ("code", "temperature", "mask")}

    assert len({(r["district"], r["window_start"]) for r in stats}) == len(stats)  # one record per district-minute
    assert total("330106", "decisions") == {"ALLOW": 7, "DENY": 2}
    assert total("330106", "reasons") == {"TEMP_NOT_MEASURED": 1, "NO_MASK": 1}
    assert total("330110", "decisions") == {"ALLOW": 5}
    assert three100("330106") == {"code": (9, 3), "temperature": (8, 1), "mask": (8, 1)}
    assert three100("330110") == {"code": (5, 0), "temperature": (5, 0), "mask": (4, 1)}
    assert total("330106", "alerts") == {"THREE_100_VIOLATION": 1}
    assert 'hcs_three100_checks_total{district="330106",measure="code",outcome="miss"} 3.0' in metrics
    assert 'hcs_entries_total{district="330106",venue_type="school"} 7.0' in metrics
