"""What a failed Kafka client tells its user: one line, with no secret in it."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import errors

from streams.settings import Settings

_AUTH = (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError, errors.AuthenticationMethodNotSupported)
_DENIED = (errors.TopicAuthorizationFailedError, errors.GroupAuthorizationFailedError,
           errors.ClusterAuthorizationFailedError, errors.TransactionalIdAuthorizationFailed)


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def client_errors() -> Iterator[list[str]]:
    """What aiokafka logs (WARNING and up) inside the block, kept from the terminal: aiokafka
    raises "Unable to bootstrap" whatever went wrong and logs the reason (a refused SASL
    handshake, an untrusted certificate) on the side, once per attempt."""
    logger = logging.getLogger("aiokafka")
    handler, propagate = _Collected(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def is_refusal(exc: BaseException, logged: list[str] | tuple[str, ...] = ()) -> bool:
    """True for an error that retrying cannot mend (credentials, permissions, TLS trust)."""
    described = describe_client_error(exc, Settings(), logged)
    return described is not None and not described.startswith("cannot reach")


def describe_client_error(exc: BaseException, settings: Settings,
                          logged: list[str] | tuple[str, ...] = ()) -> str | None:
    """A one-line reason for an error of a client of ``settings``'s cluster (``logged``: what
    aiokafka logged meanwhile), or None if it is not about reaching or entering the cluster (a
    bug, to be raised as it is)."""
    where = f"Kafka at {settings.bootstrap} ({settings.kafka.describe()})"
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # the cause may be wrapped
        seen.add(id(exc))
        if isinstance(exc, _AUTH):
            return f"{where} refused the credentials: authentication failed (check the user and the password file)"
        if isinstance(exc, _DENIED):
            return f"{where} denied an operation: {type(exc).__name__} (the user lacks an ACL)"
        if isinstance(exc, ssl.SSLError):
            return f"TLS with {where} failed: {exc.reason or exc}"
        if isinstance(exc, errors.KafkaConnectionError):
            told = " ".join([str(exc), *logged])
            if "AuthenticationFailed" in told or "Authentication failed" in told:
                return f"{where} refused the credentials: authentication failed (check the user and the password file)"
            if "CERTIFICATE_VERIFY_FAILED" in told.upper() or "CERTIFICATE VERIFY FAILED" in told.upper():
                return f"TLS with {where} failed: the broker's certificate cannot be verified (HCS_KAFKA_SSL_CAFILE)"
            return f"cannot reach {where}: {str(exc).splitlines()[0][:200]}"
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None
