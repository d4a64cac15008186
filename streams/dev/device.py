"""Device-side helpers that real checkpoint integrations can reuse: making a person pseudonym.

A device never sends an ID number or a name. It sends ``person_ref``: an HMAC-SHA256 of the
normalised ID number under a key provisioned to the district's devices (``HCS_PERSON_KEY``), so
the same person gets the same pseudonym at every checkpoint and nobody without the key can
reverse or recompute it.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from streams.errors import ConfigError

ENV_PERSON_KEY = "HCS_PERSON_KEY"


def person_key_from_env(environ: dict[str, str] | None = None) -> bytes:
    raw = (environ if environ is not None else os.environ).get(ENV_PERSON_KEY, "")
    if len(raw) < 16:
        raise ConfigError(f"{ENV_PERSON_KEY} must hold a secret of at least 16 characters")
    return raw.encode()


def person_ref(id_number: str, key: bytes) -> str:
    """The pseudonym of an ID number: 64 hex chars, stable for one key."""
    normalised = "".join(id_number.split()).upper().encode()
    return hmac.new(key, normalised, hashlib.sha256).hexdigest()
