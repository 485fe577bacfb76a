"""Parsing the durations and instants that users type: `1h30m`, `500ms`, ISO 8601."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from durableq.core.errors import InvalidInput

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_MAX_SECONDS = 10 * 365 * 86400.0

DURATION_HELP = "use e.g. 500ms, 30s, 5m, 2h, 1h30m or plain seconds"


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises InvalidInput with a hint on anything else."""
    cleaned = text.strip().lower()
    seconds = _parse_plain(cleaned)
    if seconds is None:
        seconds = _parse_units(cleaned)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"invalid duration {text!r}: {DURATION_HELP}")
    if seconds > _MAX_SECONDS:
        raise InvalidInput(f"duration {text!r} is too long: at most 10 years")
    return seconds


def _parse_plain(text: str) -> float | None:
    if not re.fullmatch(r"\d+(?:\.\d+)?", text):
        return None
    return float(text)


def _parse_units(text: str) -> float | None:
    if not text or _PART.sub("", text):
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time; one without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"invalid date-time {text!r}: use ISO 8601, e.g. 2026-01-31T09:30:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return in_utc(parsed, text)


def in_utc(value: datetime, shown: object) -> datetime:
    """`value` in UTC; one whose UTC falls outside years 1-9999 (9999-12-31T23:59-01:00) is
    refused as input rather than left to overflow later."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"date-time {shown!s} is out of range once in UTC: use years 1 to 9999"
        ) from None


def format_duration(seconds: float) -> str:
    """A short human form, e.g. 1h30m, 45s, 250ms."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2])
