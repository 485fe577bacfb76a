"""The throughput history: the rollup counts every finished job and failed attempt once, in its
minute, with durations and waits; racing rollups write each minute once; old minutes are
forgotten. Both stores, time passed in."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from durableq.client import Client
from durableq.core.errors import InvalidInput
from durableq.core.history import Outcome, bucketize, parse_window
from durableq.core.jobs import JobStatus
from durableq.store.schema import job_minutes_table
from tests.support.factories import T0, at, insert_error, insert_jobs

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
START = T0.replace(second=0, microsecond=0)  # 09:30:00


def _finished(client: Client, n: int, status: JobStatus, second: float, **columns: object) -> None:
    """`n` jobs that ran from `second - 2` to `second` after T0, due 1 s before they started."""
    insert_jobs(
        client.engine,
        n,
        status,
        created_at=at(second - 5),
        run_at=at(second - 3),
        started_at=at(second - 2),
        finished_at=at(second),
        **columns,  # type: ignore[arg-type]
    )


def _history_rows(client: Client) -> int:
    with client.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(job_minutes_table)).scalar_one()
        )


def test_each_job_lands_in_its_minute_with_its_outcome(any_client: Client) -> None:
    _finished(any_client, 3, JobStatus.COMPLETED, 10)  # 09:30
    _finished(any_client, 2, JobStatus.COMPLETED, 70, queue="mail", job_type="email")  # 09:31
    _finished(any_client, 1, JobStatus.FAILED, 75)  # 09:31
    _finished(any_client, 4, JobStatus.CANCELED, 130)  # 09:32
    failing = insert_jobs(any_client.engine, 1, JobStatus.PENDING, attempts=1)[0]
    insert_error(any_client.engine, failing, 1)  # failed_at T0: 09:30

    report = any_client.store.roll_up(at(10 * MINUTE), settle=0, keep=7 * DAY)
    assert report.rolled_up_to == START + timedelta(minutes=10)
    counts, done = any_client.store.history(START, START + timedelta(hours=1))
    assert done == report.rolled_up_to
    got = {(c.minute.minute, c.outcome): c.count for c in counts}
    assert got == {
        (30, Outcome.COMPLETED): 3,
        (30, Outcome.ERRORED): 1,
        (31, Outcome.COMPLETED): 2,
        (31, Outcome.FAILED): 1,
        (32, Outcome.CANCELED): 4,
    }
    completed_30 = next(c for c in counts if c.minute.minute == 30 and c.outcome == "completed")
    assert completed_30.duration == pytest.approx(6.0, abs=1e-3)  # 3 jobs x 2 s
    assert completed_30.wait == pytest.approx(3.0, abs=1e-3)  # 3 jobs x 1 s
    mail, _ = any_client.store.history(START, START + timedelta(hours=1), ["mail"])
    assert [(c.minute.minute, c.outcome, c.count) for c in mail] == [(31, Outcome.COMPLETED, 2)]


def test_a_minute_is_rolled_up_once_and_only_once_settled(any_client: Client) -> None:
    _finished(any_client, 2, JobStatus.COMPLETED, 10)  # 09:30
    _finished(any_client, 5, JobStatus.COMPLETED, 100)  # 09:31:40
    store = any_client.store
    # At 09:32:30 with 60 s to settle: only 09:30 is settled.
    first = store.roll_up(at(2.5 * MINUTE), settle=60, keep=7 * DAY)
    assert first.rolled_up_to == START + timedelta(minutes=1)
    again = store.roll_up(at(2.5 * MINUTE), settle=60, keep=7 * DAY)
    assert again.rows == 0 and again.rolled_up_to == first.rolled_up_to
    store.roll_up(at(5 * MINUTE), settle=60, keep=7 * DAY)
    counts, _ = store.history(START, START + timedelta(hours=1))
    assert sorted((c.minute.minute, c.count) for c in counts) == [(30, 2), (31, 5)]


def test_racing_rollups_count_each_job_once(any_client: Client) -> None:
    for second in range(0, 3600, 7):
        _finished(any_client, 1, JobStatus.COMPLETED, second + 3)
    errors: list[BaseException] = []

    def roll() -> None:
        try:
            for hour in range(1, 4):
                any_client.store.roll_up(at(hour * HOUR), 0, 7 * DAY)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=roll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    counts, _ = any_client.store.history(START, START + timedelta(hours=3))
    assert sum(c.count for c in counts) == len(range(0, 3600, 7))


def test_old_minutes_are_forgotten_after_their_retention(any_client: Client) -> None:
    _finished(any_client, 1, JobStatus.COMPLETED, 10)
    any_client.store.roll_up(at(HOUR), settle=0, keep=7 * DAY)
    assert _history_rows(any_client) == 1
    report = any_client.store.roll_up(at(8 * DAY), settle=0, keep=7 * DAY)
    assert report.pruned == 1 and _history_rows(any_client) == 0


def test_the_first_rollup_starts_at_the_oldest_job_it_keeps(any_client: Client) -> None:
    _finished(any_client, 1, JobStatus.COMPLETED, 10)  # older than the history keeps
    _finished(any_client, 1, JobStatus.COMPLETED, 2 * DAY)
    report = any_client.store.roll_up(at(2 * DAY + HOUR), settle=0, keep=DAY)
    assert report.rows == 1
    counts, _ = any_client.store.history(START, START + timedelta(days=3))
    assert [c.minute for c in counts] == [(T0 + timedelta(days=2)).replace(second=0, microsecond=0)]


def test_history_buckets_a_window_ending_now(client: Client) -> None:
    _finished(client, 2, JobStatus.COMPLETED, 10)
    _finished(client, 1, JobStatus.COMPLETED, 20 * MINUTE)
    client.store.roll_up(at(HOUR), settle=0, keep=7 * DAY)
    counts, done = client.store.history(START - timedelta(days=1), START + timedelta(days=1))
    day = bucketize(counts, parse_window("24h"), at(HOUR), done)
    assert len(day.buckets) == 96 and day.total(Outcome.COMPLETED) == 3
    # Buckets end with the current minute's: 09:30 and 09:50 fall in different quarters.
    assert sum(1 for b in day.buckets if b.completed) == 2
    hour = bucketize(counts, parse_window("1h"), at(HOUR), done)
    assert len(hour.buckets) == 60 and hour.buckets[-1].start == START + timedelta(minutes=60)
    assert hour.total(Outcome.COMPLETED) == 1  # 09:30 fell out of the last hour
    assert hour.buckets[-41].completed == 1 and hour.buckets[-41].mean_wait == pytest.approx(
        1.0, abs=1e-3
    )
    with pytest.raises(InvalidInput, match="invalid window"):
        parse_window("2h")
