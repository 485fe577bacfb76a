"""Cron ticks in a time zone: DST gaps skipped, repeated hours fired once, catch-up policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from durableq.core.errors import InvalidInput
from durableq.core.schedules import Schedule

NEW_YORK = ZoneInfo("America/New_York")


def schedule(cron: str = "* * * * *", **options: object) -> Schedule:
    return Schedule(name="s", cron=cron, type="t", **options)  # type: ignore[arg-type]


def ticks(s: Schedule, start: datetime, count: int) -> list[datetime]:
    found, at = [], start
    for _ in range(count):
        nxt = s.next_after(at)
        assert nxt is not None
        found.append(nxt)
        at = nxt
    return found


def local(values: list[datetime]) -> list[str]:
    return [v.astimezone(NEW_YORK).strftime("%m-%d %H:%M %Z") for v in values]


def test_spring_forward_skips_a_time_that_does_not_exist() -> None:
    # 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not happen that day.
    s = schedule("30 2 * * *", timezone="America/New_York")
    start = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)
    assert local(ticks(s, start, 3)) == ["03-09 02:30 EDT", "03-10 02:30 EDT", "03-11 02:30 EDT"]


def test_spring_forward_keeps_a_time_that_exists() -> None:
    s = schedule("30 1 * * *", timezone="America/New_York")
    start = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)
    assert local(ticks(s, start, 3)) == ["03-08 01:30 EST", "03-09 01:30 EDT", "03-10 01:30 EDT"]


def test_fall_back_fires_a_repeated_time_once() -> None:
    # 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens twice, fires once (the first).
    s = schedule("30 1 * * *", timezone="America/New_York")
    start = datetime(2026, 10, 31, 12, tzinfo=NEW_YORK)
    assert local(ticks(s, start, 3)) == ["11-01 01:30 EDT", "11-02 01:30 EST", "11-03 01:30 EST"]
    fired = ticks(s, start, 2)
    assert fired[1] - fired[0] == timedelta(hours=25)


def test_fall_back_leaves_a_time_after_the_fold_alone() -> None:
    s = schedule("30 2 * * *", timezone="America/New_York")
    start = datetime(2026, 10, 31, 12, tzinfo=NEW_YORK)
    assert local(ticks(s, start, 2)) == ["11-01 02:30 EST", "11-02 02:30 EST"]


def test_next_after_from_inside_the_repeated_hour() -> None:
    s = schedule("30 1 * * *", timezone="America/New_York")
    # 01:10 EST, the second pass through 01:xx: today's 01:30 already fired (at 01:30 EDT).
    second_pass = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)
    assert local([s.next_after(second_pass)]) == ["11-02 01:30 EST"]  # type: ignore[list-item]


def test_weekdays_in_a_zone() -> None:
    s = schedule("0 7 * * mon-fri", timezone="Europe/Berlin")
    start = datetime(2026, 12, 4, 8, tzinfo=UTC)  # a Friday, after 07:00 in Berlin
    assert ticks(s, start, 2) == [
        datetime(2026, 12, 7, 6, tzinfo=UTC),  # Monday 07:00 CET
        datetime(2026, 12, 8, 6, tzinfo=UTC),
    ]


def test_aliases_and_seconds() -> None:
    assert schedule("@hourly").next_after(datetime(2026, 1, 1, 0, 30, tzinfo=UTC)) == datetime(
        2026, 1, 1, 1, tzinfo=UTC
    )
    every_ten = schedule("*/10 * * * * *")
    assert every_ten.next_after(datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 0, 10, tzinfo=UTC
    )


T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def minutes(*offsets: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in offsets]


@pytest.mark.parametrize(
    ("catch_up", "now", "expected"),
    [
        # On time (within a minute of the tick): every policy fires it.
        ("none", T0 + timedelta(seconds=5), minutes(0)),
        ("latest", T0 + timedelta(seconds=5), minutes(0)),
        ("all", T0 + timedelta(seconds=5), minutes(0)),
        # Down for 10 minutes and 30 seconds.
        ("none", T0 + timedelta(minutes=10, seconds=30), minutes(10)),
        ("latest", T0 + timedelta(minutes=10, seconds=30), minutes(10)),
        ("all", T0 + timedelta(minutes=10, seconds=30), minutes(7, 8, 9, 10)),
        # Not due yet.
        ("all", T0 - timedelta(seconds=1), []),
    ],
)
def test_due_ticks_by_catch_up(catch_up: str, now: datetime, expected: list[datetime]) -> None:
    s = schedule("* * * * *", catch_up=catch_up, max_catch_up=4)
    assert s.due(T0, now) == expected


def test_none_skips_a_tick_more_than_a_minute_late() -> None:
    now = T0 + timedelta(minutes=90)
    assert schedule("0 * * * *", catch_up="none").due(T0, now) == []
    assert schedule("0 * * * *", catch_up="latest").due(T0, now) == minutes(60)
    assert schedule("0 * * * *", catch_up="all").due(T0, now) == minutes(0, 60)


def test_catch_up_all_is_oldest_first_and_bounded() -> None:
    s = schedule("* * * * *", catch_up="all", max_catch_up=1000)
    due = s.due(T0, T0 + timedelta(hours=2))
    assert len(due) == 121 and due == sorted(due) and due[0] == T0


def test_a_long_downtime_costs_little_for_latest() -> None:
    s = schedule("* * * * * *", catch_up="latest")
    now = T0 + timedelta(days=365)
    assert s.due(T0, now) == [now.replace(microsecond=0)]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"cron": "61 * * * *"}, "invalid cron"),
        ({"cron": ""}, "cron must be a cron expression"),
        ({"cron": "@daily", "timezone": "Nowhere/City"}, "unknown time zone"),
        ({"cron": "@daily", "catch_up": "some"}, "unknown catch_up"),
        ({"cron": "@daily", "max_catch_up": 0}, "max_catch_up"),
        ({"cron": "@daily", "max_catch_up": True}, "max_catch_up"),
        ({"cron": "@daily", "no_overlap": "yes"}, "no_overlap"),
    ],
)
def test_bad_definitions(options: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        Schedule(name="s", type="t", **options)  # type: ignore[arg-type]
