"""A throwaway certificate authority and a broker certificate for 127.0.0.1: the secured local
broker's own (streams/dev/localkafka/secure.py), made in the test's directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from streams.dev.localkafka.secure import Pki
from streams.dev.localkafka.secure import make_pki as _make_pki
from tests.environment import unavailable

TestPki = Pki


def make_pki(directory: Path) -> Pki:
    if shutil.which("openssl") is None:
        unavailable("openssl", "not installed (apt-get install openssl)")
    return _make_pki(directory, days=2)
