"""The one timestamp codec for SQLite's text columns, shared by every path that writes them.

SQLAlchemy's SQLite DATETIME (under schema.UTCDateTime) writes the same text; a test holds the
two to it. Fixed width, UTC, so text order is time order and `run_at <= :now` stays indexable.
"""

from __future__ import annotations

from datetime import UTC, datetime

FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def encode(value: datetime) -> str:
    """`value` (aware) as stored: FORMAT, in UTC."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def encode_optional(value: datetime | None) -> str | None:
    return None if value is None else encode(value)


def decode(text: str) -> datetime:
    """The aware UTC datetime a stored text means."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
