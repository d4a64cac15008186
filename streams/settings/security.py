"""How every hcs client authenticates to Kafka: TLS and SASL settings, one place for all commands.

Read from the environment once (``HCS_KAFKA_*``, see :meth:`KafkaSecurity.from_env`). The
SASL password is read from a file (``HCS_KAFKA_SASL_PASSWORD_FILE``) when a client is made,
never taken from the environment, and never part of a repr, a log line or an error message.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.errors import ConfigError

ENV_PROTOCOL = "HCS_KAFKA_SECURITY_PROTOCOL"
ENV_MECHANISM = "HCS_KAFKA_SASL_MECHANISM"
ENV_USERNAME = "HCS_KAFKA_SASL_USERNAME"
ENV_PASSWORD_FILE = "HCS_KAFKA_SASL_PASSWORD_FILE"
ENV_CAFILE = "HCS_KAFKA_SSL_CAFILE"
ENV_CERTFILE = "HCS_KAFKA_SSL_CERTFILE"
ENV_KEYFILE = "HCS_KAFKA_SSL_KEYFILE"

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """TLS and SASL settings of the cluster (PLAINTEXT: none)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    _context: dict[str, ssl.SSLContext] = field(default_factory=dict, repr=False, compare=False)

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSecurity:
        """The settings of ``env``; :class:`ConfigError` names the first one that cannot work."""
        protocol = (env.get(ENV_PROTOCOL) or "PLAINTEXT").upper()
        if protocol not in PROTOCOLS:
            raise ConfigError(f"{ENV_PROTOCOL}={protocol!r} must be one of {', '.join(PROTOCOLS)}")
        mechanism = env.get(ENV_MECHANISM) or None
        username = env.get(ENV_USERNAME) or None
        password_file = _path(env, ENV_PASSWORD_FILE)
        cafile, certfile, keyfile = (_path(env, name) for name in (ENV_CAFILE, ENV_CERTFILE, ENV_KEYFILE))
        if protocol.startswith("SASL_"):
            if mechanism is None or mechanism.upper() not in MECHANISMS:
                raise ConfigError(f"{ENV_MECHANISM} must be one of {', '.join(MECHANISMS)} with {protocol}")
            mechanism = mechanism.upper()
            if not username:
                raise ConfigError(f"{ENV_USERNAME} must be set with {protocol}")
            if password_file is None:
                raise ConfigError(f"{ENV_PASSWORD_FILE} must name a file holding the password with {protocol}")
        else:
            extra = [name for name, value in ((ENV_MECHANISM, mechanism), (ENV_USERNAME, username),
                                              (ENV_PASSWORD_FILE, password_file)) if value]
            if extra:
                raise ConfigError(f"{extra[0]} is set, but {ENV_PROTOCOL}={protocol} uses no SASL")
        if protocol in ("SSL", "SASL_SSL"):
            if (certfile is None) != (keyfile is None):
                raise ConfigError(f"{ENV_CERTFILE} and {ENV_KEYFILE} go together (a client certificate and its key)")
        elif cafile or certfile or keyfile:
            raise ConfigError(f"{ENV_CAFILE}/{ENV_CERTFILE}/{ENV_KEYFILE} are set, but {ENV_PROTOCOL}={protocol} "
                              "uses no TLS")
        for name, path in ((ENV_PASSWORD_FILE, password_file), (ENV_CAFILE, cafile), (ENV_CERTFILE, certfile),
                           (ENV_KEYFILE, keyfile)):
            if path is not None and not path.is_file():
                raise ConfigError(f"{name}={path} is not a readable file")
        return cls(protocol, mechanism, username, password_file, cafile, certfile, keyfile)

    def password(self) -> str:
        """The SASL password, read from its file now (a rotated secret is picked up by new clients)."""
        assert self.sasl_password_file is not None
        try:
            secret = self.sasl_password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{ENV_PASSWORD_FILE}={self.sasl_password_file} cannot be read: "
                              f"{exc.strerror}") from None
        if not secret:
            raise ConfigError(f"{ENV_PASSWORD_FILE}={self.sasl_password_file} is empty")
        return secret

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every client (verifying the brokers against the CA file, or the system's)."""
        if not self.uses_tls:
            return None
        if "context" not in self._context:
            from aiokafka.helpers import create_ssl_context

            try:
                self._context["context"] = create_ssl_context(
                    cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile)
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(f"the TLS files cannot be used: {exc}") from None
        return self._context["context"]

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Arguments of an aiokafka producer, consumer or admin client."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.password())
        return kwargs

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` (None for PLAINTEXT)."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(username=self.sasl_username, password=self.password(),
                                         ssl_context=self.ssl_context(), mechanism=self.sasl_mechanism)
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context())
        return None

    def describe(self) -> str:
        """What a log line may say about the connection (never the password)."""
        if self.uses_sasl:
            return f"{self.protocol} as {self.sasl_username!r} ({self.sasl_mechanism})"
        return self.protocol


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw) if raw else None
