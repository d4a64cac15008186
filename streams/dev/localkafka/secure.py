"""The local broker secured (``hcs broker start --secure``): TLS, one SCRAM user per role with
the ACLs of deploy/kafka/acls.toml, and a client settings file per role.

Everything lives under the broker's state dir, in ``secure/``: a throwaway certificate authority
and the broker's certificate for 127.0.0.1 (made with openssl), the users' passwords (made once,
kept with mode 600), and ``clients/<role>.env`` with ``<role>.password`` beside it, so that
``set -a; . clients/worker.env; set +a`` then ``hcs worker`` runs the worker as ``worker``.
``admin`` is the super user (it applies the ACLs; the simulator of ``hcs run`` uses it too).
The broker's own PLAINTEXT and controller listeners stay on 127.0.0.1 for the broker itself.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streams.dev.localkafka import HOST, SecureListener
from streams.errors import BrokerError

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    keystore: Path  # the broker's key and certificate, PKCS#12
    keystore_password: str


def make_pki(directory: Path, days: int = 365) -> Pki:
    """A certificate authority and a broker certificate for 127.0.0.1 in ``directory`` (kept if made)."""
    password_path = directory / "keystore.password"
    if (directory / "broker.p12").is_file() and password_path.is_file():
        return Pki(directory / "ca.crt", directory / "broker.p12", password_path.read_text().strip())
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BrokerError("openssl is not installed (apt-get install openssl): it makes the secured broker's "
                          "certificates")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"openssl {args[0]} failed: {done.stderr.strip()[-300:]}")

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", str(days),
        "-subj", "/CN=hcs local CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj", f"/CN={HOST}")
    (directory / "san.ext").write_text(f"subjectAltName=IP:{HOST}\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "broker.crt", "-days", str(days), "-extfile", "san.ext")
    password = secrets.token_urlsafe(16)
    run("pkcs12", "-export", "-in", "broker.crt", "-inkey", "broker.key", "-out", "broker.p12",
        "-passout", f"pass:{password}", "-name", "broker")
    _private(password_path, password)
    return Pki(directory / "ca.crt", directory / "broker.p12", password)


def _private(path: Path, text: str) -> None:
    """Write a secret readable by its owner alone."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")


def passwords(directory: Path, users: tuple[str, ...]) -> dict[str, str]:
    """Each user's password, made once and kept (mode 600) in ``directory``."""
    path = directory / "users.json"
    try:
        known: dict[str, str] = json.loads(path.read_text())
    except FileNotFoundError:
        known = {}
    if any(user not in known for user in users):
        known.update({user: secrets.token_urlsafe(18) for user in users if user not in known})
        directory.mkdir(parents=True, exist_ok=True)
        _private(path, json.dumps(known))
    return {user: known[user] for user in users}


def listener(state_dir: Path, port: int, roles: tuple[str, ...]) -> SecureListener:
    """The SASL_SSL listener of the secured broker, with the ACLs enforced and a user per role."""
    secure = state_dir / "secure"
    pki = make_pki(secure / "pki")
    users = passwords(secure, (ADMIN, *roles))
    return SecureListener(port, pki.keystore, pki.keystore_password, tuple(users.items()), MECHANISM,
                          super_users=(ADMIN,))


def client_files(state_dir: Path, bootstrap: str, roles: tuple[str, ...]) -> Path:
    """``clients/<role>.env`` (and ``admin.env``) with each role's settings, the password in a
    file beside it; returns the folder."""
    secure = state_dir / "secure"
    folder = secure / "clients"
    folder.mkdir(parents=True, exist_ok=True)
    ca = (secure / "pki" / "ca.crt").resolve()
    for user, password in passwords(secure, (ADMIN, *roles)).items():
        secret = folder / f"{user}.password"
        _private(secret, password)
        (folder / f"{user}.env").write_text(
            f"# hcs as {user} on the local secured broker (`set -a; . {user}.env; set +a`)\n"
            f"HCS_BOOTSTRAP={bootstrap}\nHCS_KAFKA_SECURITY_PROTOCOL=SASL_SSL\nHCS_KAFKA_SASL_MECHANISM={MECHANISM}\n"
            f"HCS_KAFKA_SASL_USERNAME={user}\nHCS_KAFKA_SASL_PASSWORD_FILE={secret.resolve()}\n"
            f"HCS_KAFKA_SSL_CAFILE={ca}\n")
    return folder


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of a client settings file (comments and blanks skipped)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values
