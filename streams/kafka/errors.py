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
        if len(self.messages) > 200:  # a command running for days keeps only the latest
            del self.messages[:100]


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


AUTH, DENIED, TLS, UNREACHABLE = "auth", "denied", "tls", "unreachable"


def classify(exc: BaseException, logged: list[str] | tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(kind, what to add) of an error of a Kafka client (``logged``: what aiokafka logged
    meanwhile), or None if it is not about reaching or entering the cluster (a bug)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the cause may be wrapped
        seen.add(id(current))
        if isinstance(current, _AUTH):
            return AUTH, ""
        if isinstance(current, _DENIED):
            return DENIED, _denied(current)
        if isinstance(current, ssl.SSLError):
            return TLS, str(current.reason or current)
        if isinstance(current, errors.KafkaConnectionError):
            told = " ".join([str(current), *logged])
            if "AuthenticationFailed" in told or "Authentication failed" in told:
                return AUTH, ""
            if "CERTIFICATE_VERIFY_FAILED" in told.upper() or "CERTIFICATE VERIFY FAILED" in told.upper():
                return TLS, "the broker's certificate cannot be verified (HCS_KAFKA_SSL_CAFILE)"
            return UNREACHABLE, str(current).splitlines()[0][:200]
        current = current.__cause__ or current.__context__
    return None


_RESOURCE = {errors.TopicAuthorizationFailedError: "topic", errors.GroupAuthorizationFailedError: "group",
             errors.TransactionalIdAuthorizationFailed: "transactional id",
             errors.ClusterAuthorizationFailedError: "cluster"}


def _denied(exc: BaseException) -> str:
    """What was denied: the kind of resource and its names, as the error carries them."""
    kind = next((name for cls, name in _RESOURCE.items() if isinstance(exc, cls)), "resource")
    names: list[str] = []
    for arg in exc.args:
        if isinstance(arg, str) and arg and " " not in arg:
            names.append(arg)
        elif isinstance(arg, (list, set, tuple, frozenset)):
            names += sorted(str(a) for a in arg)
    what = f"{kind} {', '.join(names)}" if names else kind
    operation = _operation(exc)
    return f"{operation} on {what}" if operation else f"access to {what}"


def _operation(exc: BaseException) -> str | None:
    """Write or Read, by where in aiokafka the refusal was raised (a producer's send, a
    consumer's fetch or offsets), or None if neither."""
    tb = exc.__traceback__
    where = None
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith("aiokafka.producer"):
            where = "Write"
        elif module.startswith("aiokafka.consumer") and where is None:
            where = "Read"
        tb = tb.tb_next
    return where


def is_refusal(exc: BaseException, logged: list[str] | tuple[str, ...] = ()) -> bool:
    """True for an error that retrying cannot mend (credentials, permissions, TLS trust)."""
    kind = classify(exc, logged)
    return kind is not None and kind[0] != UNREACHABLE


def describe_client_error(exc: BaseException, settings: Settings,
                          logged: list[str] | tuple[str, ...] = ()) -> str | None:
    """A one-line reason for an error of a client of ``settings``'s cluster, or None if it is
    not about reaching or entering the cluster (a bug, to be raised as it is)."""
    kind = classify(exc, logged)
    if kind is None:
        return None
    where = f"Kafka at {settings.bootstrap} ({settings.kafka.describe()})"
    return {
        AUTH: f"{where} refused the credentials: authentication failed (check the user and the password file)",
        DENIED: f"{where} denied {kind[1]}: no ACL allows it for this user (`hcs acl plan` lists each "
                f"role's)",
        TLS: f"TLS with {where} failed: {kind[1]}",
        UNREACHABLE: f"cannot reach {where}: {kind[1]}",
    }[kind[0]]
