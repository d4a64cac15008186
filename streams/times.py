"""Time in hcs: epoch seconds inside, RFC 3339 outside, and the district's zone.

Every timestamp flows through the worker as epoch seconds (float); records carry RFC 3339 with
an explicit offset. Times of the district (alert spans, window starts, district minutes) are
written in Asia/Shanghai (UTC+8 all year: China keeps no daylight saving time, so a fixed
offset is exact and cheaper than a zoneinfo lookup per record); times of the worker itself
(``decided_at``, ``received_at``) in UTC. Calendar days for the rules count in Shanghai too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

SHANGHAI_OFFSET_S = 8 * 3600
SHANGHAI = timezone(timedelta(seconds=SHANGHAI_OFFSET_S), "Asia/Shanghai")
DAY_S = 86400


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 in Asia/Shanghai time, with its offset (milliseconds)."""
    return datetime.fromtimestamp(ts, SHANGHAI).isoformat(timespec="milliseconds")


def utc_rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 in UTC (milliseconds)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def local_time(ts: float) -> str:
    """For people (every console line and table): Asia/Shanghai to the second, with its offset,
    as ``2022-05-10 08:00:00+08`` (ISO 8601; one form everywhere, no fractions)."""
    return datetime.fromtimestamp(ts, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S+08")


def local_time_of(text: str | None) -> str:
    """An RFC 3339 timestamp of a record, as :func:`local_time`; ``-`` when absent, the text as it
    is when it is not a timestamp."""
    if not text:
        return "-"
    try:
        return local_time(parse_rfc3339(text))
    except (TypeError, ValueError):
        return str(text)


def parse_rfc3339(text: str) -> float:
    """An RFC 3339 timestamp with its offset, as epoch seconds."""
    return datetime.fromisoformat(text).timestamp()


def shanghai_day(ts: float) -> int:
    """The calendar day (days since the epoch) of ``ts`` in Asia/Shanghai."""
    return int((ts + SHANGHAI_OFFSET_S) // DAY_S)


def shanghai_day_start(day: int) -> float:
    """The instant Asia/Shanghai calendar day ``day`` (days since the epoch) begins."""
    return day * DAY_S - SHANGHAI_OFFSET_S


def shanghai_date(day: int) -> str:
    """Calendar day ``day`` (days since the epoch) as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(day * DAY_S, UTC).date().isoformat()
