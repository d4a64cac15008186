"""Fault drill: a fuzzed stream of hostile scan records through a real worker.

Every case (10,000 in CI; ``HCS_FUZZ_CASES=100000`` on demand; seed ``HCS_FUZZ_SEED``) must end
as the oracle of :mod:`tests.drills.fuzz` says, which is independent of the worker's decoder:
every valid scan exactly one decision, every bad record or batch scan exactly one dead letter
with a contract reason, no processing error, and the worker alive. The same cases are first
checked against the decoder alone, so a disagreement names its record.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from streams.contract import topics
from streams.contract.codec import decode_scans
from streams.contract.models import Rejected, ScanEvent
from tests.drills.fuzz import PERSONAL, cases
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.schema_check import assert_valid

pytestmark = [pytest.mark.integration, pytest.mark.drill]

CASES = int(os.environ.get("HCS_FUZZ_CASES", "10000"))
SEED = int(os.environ.get("HCS_FUZZ_SEED", "20221201"))
REASONS = {"NOT_JSON", "SCHEMA_INVALID", "UNSUPPORTED_SCHEMA", "TOO_LARGE"}


def test_the_decoder_agrees_with_the_oracle_on_every_case() -> None:
    now = time.time()
    for n, case in enumerate(cases(CASES, SEED)):
        items = decode_scans(case.value, case.key, now)
        decided = tuple(i.event_id for i in items if isinstance(i, ScanEvent))
        dead = sum(isinstance(i, Rejected) for i in items)
        assert (decided, dead) == (case.decided, case.dead), (n, case.value[:400], items)


def test_a_fuzzed_stream_yields_one_decision_per_valid_scan_and_one_dead_letter_per_bad_one(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    fuzzed = list(cases(CASES, SEED))
    expected = {event_id for case in fuzzed for event_id in case.decided}
    dead_expected = sum(case.dead for case in fuzzed)
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(case.key, case.value) for case in fuzzed])
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix),
                         lambda v: expected <= {d["event_id"] for d in v}, timeout_s=300, settle_s=3)
        dead = read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: len(v) >= dead_expected,
                    timeout_s=120, settle_s=3)
        metrics = worker.metrics_text()
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.stop()

    decided = Counter(d["event_id"] for d in decisions)
    print(f"{len(fuzzed)} records: {len(expected)} valid scans decided, {len(dead)} dead letters "
          f"({Counter(d['reason'] for d in dead)})")
    assert set(decided) == expected and max(decided.values()) == 1
    assert len(dead) == dead_expected and {d["reason"] for d in dead} <= REASONS
    assert_valid("deadletter.v1", dead)
    details = " ".join(d["detail"] for d in dead)
    for value in PERSONAL:
        assert value not in details, value  # no detail echoes what it refused
    assert "hcs_processing_errors_total{" not in metrics
    log = worker.log_path.read_text(errors="replace")
    assert "[ERROR]" not in log and "Traceback" not in log, worker.log_tail()
