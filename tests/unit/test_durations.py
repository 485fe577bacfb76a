"""Parsing what users type: durations (`1h30m`, `500ms`) and ISO 8601 instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from durableq.core.durations import format_duration, parse_duration, parse_instant
from durableq.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("30", 30.0),
        ("2.5", 2.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m30s500ms", 90.5),
        ("1.5h", 5400.0),
        (" 10S ", 10.0),
    ],
)
def test_good_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", " ", "abc", "-5", "-5s", "5x", "1h 30m", "s", "1.s", "nan", "inf", "1e3", "5m-"]
)
def test_bad_durations_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"invalid duration .*use e\.g\. 500ms"):
        parse_duration(text)


def test_absurdly_long_duration_is_refused() -> None:
    with pytest.raises(InvalidInput, match="too long"):
        parse_duration("4000d")


def test_ten_years_is_the_longest_accepted() -> None:
    assert parse_duration("3650d") == 3650 * 86400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T09:30:00Z", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31T09:30:00+00:00", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31T10:30:00+01:00", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31 09:30:00.250", datetime(2026, 1, 31, 9, 30, 0, 250000, tzinfo=UTC)),
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
    ],
)
def test_good_instants_are_utc(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_instant_without_offset_is_taken_as_utc() -> None:
    assert parse_instant("2026-06-01T12:00:00").tzinfo is not None
    assert parse_instant("2026-06-01T12:00:00") == datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_offset_is_converted_not_dropped() -> None:
    parsed = parse_instant("2026-06-01T12:00:00-05:00")
    assert parsed == datetime(2026, 6, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
    assert parsed.hour == 17


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01", "2026-01-31T25:00", "31/01/2026"])
def test_bad_instants_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"use ISO 8601, e\.g\. 2026-01-31T09:30:00Z"):
        parse_instant(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (5, "5.0s"), (45, "45s"), (90, "1m30s"), (5400, "1h30m"), (90061, "1d1h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
