"""docs/devices.md stays true: its example records are valid and accepted, its pseudonym
function is the devices' own."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streams.contract.codec import decode_entries, decode_scans
from streams.contract.models import EntryCount, ScanEvent
from streams.dev.device import person_ref
from tests.schema_check import assert_valid

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "devices.md").read_text()


def test_the_example_records_are_valid_and_accepted() -> None:
    scan, entries = (json.loads(block) for block in re.findall(r"```json\n(.*?)```", GUIDE, re.S))
    assert_valid("scan.v1", [scan])
    assert_valid("entries.v1", [entries])
    assert isinstance(decode_scans(json.dumps(scan).encode())[0], ScanEvent)
    assert isinstance(decode_entries(json.dumps(entries).encode()), EntryCount)


def test_the_guides_pseudonym_is_the_devices() -> None:
    code = re.search(r"```python\n(import hashlib, hmac.*?)```", GUIDE, re.S)
    assert code is not None
    scope: dict[str, object] = {}
    exec(code.group(1), scope)  # the guide's own snippet, checked against the product
    guide_ref = scope["person_ref"]
    assert callable(guide_ref)
    key = b"district-key-0123456789"
    assert guide_ref(" 33010619900101123x ", key) == person_ref("33010619900101123X", key)
