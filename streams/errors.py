"""The errors hcs raises; every one derives from :class:`HcsError`."""

from __future__ import annotations


class HcsError(Exception):
    """Base class of every error hcs raises on purpose."""


class ConfigError(HcsError):
    """A setting or a policy file is invalid; the message names the bad field."""


class BrokerError(HcsError):
    """The local Kafka broker cannot be provided (Java/Maven missing, port taken, start failed)."""


class ClusterAccessError(HcsError):
    """The cluster refused this client: its credentials, its permissions, or TLS trust."""


class TopicShapeError(HcsError):
    """A topic the worker relies on exists with another partition count than hcs declares."""


class DecodeError(HcsError):
    """A record cannot be accepted; ``reason`` is a DeadLetter reason code of docs/interface.md."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class InspectionError(HcsError):
    """A finding action that would be refused, said before anything is written."""


class CaseError(HcsError):
    """A case report that would be refused, said before anything is written."""
