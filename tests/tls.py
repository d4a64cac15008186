"""A throwaway certificate authority and a broker certificate for 127.0.0.1, made with openssl."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.environment import unavailable


@dataclass(frozen=True)
class TestPki:
    ca_cert: Path
    keystore: Path  # the broker's key and certificate, PKCS#12
    keystore_password: str


def make_pki(directory: Path) -> TestPki:
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("openssl", "not installed (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=hcs test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "broker.crt", "-days", "2", "-extfile", "san.ext")
    password = "keystore-pass"
    run("pkcs12", "-export", "-in", "broker.crt", "-inkey", "broker.key", "-out", "broker.p12",
        "-passout", f"pass:{password}", "-name", "broker")
    return TestPki(directory / "ca.crt", directory / "broker.p12", password)
