"""Local broker helpers that need no broker."""

from __future__ import annotations

import base64

from streams.dev.localkafka import cluster_id


def test_cluster_ids_are_22_char_uuids_never_starting_with_a_dash() -> None:
    ids = [cluster_id() for _ in range(5000)]  # about 1 in 64 random ids would start with "-"
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
