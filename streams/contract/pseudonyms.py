"""What a person pseudonym looks like, and how an ID number is told apart from one.

A device sends ``person_ref``: the keyed hash of ``streams.dev.device.person_ref``, written as
lowercase hexadecimal. hcs accepts 16 to 128 lowercase hex characters (other devices may keep a
shorter or a longer digest) and nothing else, so a name (Chinese or Latin) or an ID number with
its ``X`` check character never gets in. An 18-digit value that passes the GB 11643-1999 check
digit is a resident ID number, although it fits the charset: it is refused too. Identifiers of
places (``checkpoint_id``, ``venue_id``) are free text, but must not hold an ID number either.
"""

from __future__ import annotations

import re

PERSON_REF_PATTERN = "^[0-9a-f]{16,128}$"
PERSON_REF_FORM = "16 to 128 lowercase hex characters (a keyed hash, never an ID number or a name)"

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# 18 characters, not inside a longer run of digits: 17 digits and a digit or X.
_ID_SHAPE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_HEX_DIGITS = b"0123456789abcdef"


def is_pseudonym(text: str) -> bool:
    """True if ``text`` has the form of :data:`PERSON_REF_PATTERN` (checked as bytes: a fifth of
    a regex match's cost, on every scan)."""
    return 16 <= len(text) <= 128 and not text.encode().translate(None, _HEX_DIGITS)


def is_resident_id(text: str) -> bool:
    """True if ``text`` is 17 digits and the GB 11643 check character of them."""
    if len(text) != 18 or not text[:17].isdigit() or not text[:17].isascii():
        return False
    total = sum(int(d) * w for d, w in zip(text[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == text[17].upper()


def holds_resident_id(text: str) -> bool:
    """True if an 18-character resident ID number (valid check character) appears in ``text``."""
    if len(text) < 18:
        return False
    return any(is_resident_id(m.group()) for m in _ID_SHAPE.finditer(text))
