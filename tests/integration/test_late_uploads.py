"""A checkpoint uploading late is alive; one that uploads nothing is silent (a real broker and worker)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.contract import topics
from tests import factories as f
from tests.integration.kafka_io import create_topics, name, produce, read, running_worker

pytestmark = pytest.mark.integration


def test_a_late_upload_is_not_reported_silent_and_a_checkpoint_gone_quiet_is(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    now = time.time()
    half_hour_ago = datetime.fromtimestamp(now - 1800, f.SHANGHAI)
    venue = dict(venue_id="xihu-mall", venue_type="mall", district="330106")
    # One venue, so one partition and one stream clock: the live checkpoint moves it to now.
    records = [
        # Scanned half an hour ago and sent then; nothing since: silent (the default is 10 min).
        (f.scan(**venue, checkpoint_id="cp-gone", at=half_hour_ago), now - 1800),
        # Scanned half an hour ago while offline, sent now with the device's buffer: alive.
        (f.scan(**venue, checkpoint_id="cp-buffer", at=half_hour_ago + timedelta(seconds=1)), None),
    ] + [(f.scan(**venue, checkpoint_id="cp-live", at=datetime.fromtimestamp(now - 5 + i, f.SHANGHAI)), None)
         for i in range(5)]
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix),
            [(s["venue_id"].encode(), f.encode(s)) for s, _ in records], [at for _, at in records])

    with running_worker(worker_env, tmp_path / "worker.log"):
        def silent(values: list[dict[str, Any]]) -> bool:
            return any(v["kind"] == "CHECKPOINT_SILENT" for v in values)

        # Three ticks of the silence timer after the first alert: cp-buffer would be in them.
        alerts = read(kafka_bootstrap, name(topics.ALERTS, topic_prefix), silent, timeout_s=90, settle_s=3)

    silent_ones = [(a["checkpoint_id"], a["status"]) for a in alerts if a["kind"] == "CHECKPOINT_SILENT"]
    assert silent_ones == [("cp-gone", "firing")]
