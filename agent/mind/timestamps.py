"""Times as the store keeps them: fixed-width UTC strings that sort as the times do."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["now", "parse_timestamp", "timestamp"]


def now() -> datetime:
    """The current time, time-zone aware (UTC)."""
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    """``moment`` as stored: ISO-8601 UTC with milliseconds, e.g. ``2024-05-01T09:30:00.250Z``.

    All stored times share this fixed-width form, so comparing the strings compares the times.
    Raises ValueError for a naive datetime: the store will not guess its time zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: give it a time zone")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """A stored :func:`timestamp` read back as an aware datetime."""
    # Python 3.10's fromisoformat does not accept the 'Z' suffix.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
