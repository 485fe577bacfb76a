"""Recurring jobs through the scheduler service and the store, with the time passed in.

Downtime is a jump of the `now` given to `run_once`: each catch_up policy is tried across one,
a schedule added after the downtime does not catch up, `no_overlap` holds a tick back while the
previous job works, and two daemons' schedulers racing for the same tick make one job.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from durableq.client import Client
from durableq.core.builder import JobBuilder
from durableq.core.jobs import JobKeys, JobStatus
from durableq.core.schedules import Schedule
from durableq.store.api import open_store
from durableq.worker.services.scheduler import Scheduler

T0 = datetime(2026, 6, 1, 11, 59, 30, tzinfo=UTC)  # the first tick: 12:00


def every_minute(catch_up: str = "latest", **options: object) -> Schedule:
    return Schedule(
        name="tick",
        cron="* * * * *",
        type="echo",
        payload={"n": 1},
        catch_up=catch_up,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def scheduler(client: Client, *schedules: Schedule) -> Scheduler:
    return Scheduler(client.store, JobBuilder(client.settings), schedules)


def ticks(client: Client) -> list[datetime]:
    found = client.jobs(limit=10_000)
    assert all(job.schedule == "tick" for job in found)
    return sorted(job.schedule_tick for job in found if job.schedule_tick is not None)


def minute(n: int) -> datetime:
    return datetime(2026, 6, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=n)


def test_a_new_schedule_fires_from_its_next_tick_on(any_client: Client) -> None:
    service = scheduler(any_client, every_minute())
    assert service.run_once(T0).fired == {}
    [info] = any_client.store.schedules(T0)
    assert info.next_run_at == minute(0) and info.active and info.last_job_id is None
    report = service.run_once(minute(0) + timedelta(seconds=1))
    [job_id] = report.fired["tick"]
    job = any_client.get(job_id)
    assert (job.schedule, job.schedule_tick, job.type, job.payload) == (
        "tick",
        minute(0),
        "echo",
        {"n": 1},
    )
    [info] = any_client.store.schedules(T0)
    assert info.last_job_id == job_id and info.next_run_at == minute(1)
    assert info.last_tick == minute(0) and info.last_job_status == "pending"


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [("none", []), ("latest", [minute(9)]), ("all", [minute(6), minute(7), minute(8), minute(9)])],
)
def test_downtime_by_catch_up(any_client: Client, catch_up: str, expected: list[datetime]) -> None:
    service = scheduler(any_client, every_minute(catch_up, max_catch_up=4))
    service.run_once(T0)
    # All daemons down from 11:59:30 to 12:09:45, back 45 s after the 12:09 tick.
    later = scheduler(any_client, every_minute(catch_up, max_catch_up=4))
    report = later.run_once(minute(9) + timedelta(seconds=45))
    if catch_up == "none":  # the 12:09 tick is on time (within a minute): it fires
        expected = [minute(9)]
    assert ticks(any_client) == expected
    assert sum(len(ids) for ids in report.fired.values()) == len(expected)
    [info] = any_client.store.schedules(T0)
    assert info.next_run_at == minute(10)


def test_none_skips_ticks_missed_by_more_than_a_minute(any_client: Client) -> None:
    hourly = Schedule(name="tick", cron="0 * * * *", type="echo", catch_up="none")
    scheduler(any_client, hourly).run_once(T0)
    report = scheduler(any_client, hourly).run_once(minute(90))  # 13:30: 13:00 is long gone
    assert report.fired == {} and ticks(any_client) == []
    [info] = any_client.store.schedules(T0)
    assert info.next_run_at == minute(120)


def test_a_schedule_added_after_the_downtime_does_not_catch_up(any_client: Client) -> None:
    service = scheduler(any_client, every_minute("all"))
    assert service.run_once(minute(30) + timedelta(seconds=10)).fired == {}
    assert ticks(any_client) == []
    assert service.run_once(minute(31) + timedelta(seconds=1)).fired["tick"]
    assert ticks(any_client) == [minute(31)]


def test_no_overlap_skips_ticks_while_the_previous_job_works(any_client: Client) -> None:
    service = scheduler(any_client, every_minute(no_overlap=True))
    service.run_once(T0)
    [first] = service.run_once(minute(0)).fired["tick"]
    report = service.run_once(minute(1))
    assert report.skipped_overlap == ["tick"] and ticks(any_client) == [minute(0)]
    any_client.cancel(first)
    assert service.run_once(minute(2)).fired["tick"]
    assert ticks(any_client) == [minute(0), minute(2)]


def test_two_schedulers_racing_for_a_tick_make_one_job(any_client: Client) -> None:
    other_store = open_store(any_client.engine)  # a second daemon on the same database
    one = scheduler(any_client, every_minute("all"))
    two = Scheduler(other_store, JobBuilder(any_client.settings), [every_minute("all")])
    one.run_once(T0)
    two.run_once(T0)
    for n in range(5):
        # Both read the same next tick before either fires it: only one CAS can win.
        now = minute(n) + timedelta(seconds=1)
        expected = any_client.store.schedule_next_runs()["tick"]
        assert expected is not None
        schedule = every_minute("all")
        job = any_client.new_job("echo")
        tick_job = replace(job, keys=JobKeys(schedule="tick", schedule_tick=expected))
        won = [
            store.fire_schedule("tick", expected, schedule.next_after(now), [tick_job], False, now)
            for store in (any_client.store, other_store)
        ]
        assert [fired.won for fired in won] == [True, False]
        assert one.run_once(now).fired == {} and two.run_once(now).fired == {}
    assert ticks(any_client) == [minute(n) for n in range(5)]


def test_a_schedule_nobody_declares_any_more_is_shown_inactive(any_client: Client) -> None:
    scheduler(any_client, every_minute()).run_once(T0)
    later = any_client.store.schedules(T0 + timedelta(minutes=6))
    assert [info.active for info in later] == [False]
    assert [info.active for info in any_client.store.schedules(T0 + timedelta(minutes=1))] == [True]


def test_a_changed_cron_starts_again_from_now(any_client: Client) -> None:
    scheduler(any_client, every_minute()).run_once(T0)
    hourly = Schedule(name="tick", cron="0 * * * *", type="echo")
    scheduler(any_client, hourly).run_once(minute(5))
    [info] = any_client.store.schedules(T0)
    assert info.cron == "0 * * * *" and info.next_run_at == minute(60)


def test_a_full_queue_holds_a_tick_back_until_there_is_room(any_client: Client) -> None:
    any_client.set_queue("default", max_pending=1)
    any_client.enqueue("filler")
    service = scheduler(any_client, every_minute())
    service.run_once(T0)
    assert service.run_once(minute(0)).held_back == ["tick"]
    filler = next(job for job in any_client.jobs() if job.type == "filler")
    any_client.cancel(filler.id)
    report = service.run_once(minute(0) + timedelta(seconds=5))
    assert report.fired["tick"]
    assert any_client.get(report.fired["tick"][0]).status is JobStatus.PENDING
