"""Every failed attempt is kept; purge deletes only old finished jobs, with their errors."""

from __future__ import annotations

import pytest

from durableq.client import Client
from durableq.core.errors import InvalidTransition
from durableq.core.jobs import Action, JobStatus, NewJob
from durableq.core.outcomes import Finish
from durableq.store.core import upkeep
from tests.support.factories import (
    at,
    error_count,
    insert_error,
    insert_job,
    insert_jobs,
    raw_row,
)


def test_every_failed_attempts_error_and_traceback_is_kept_in_order(any_client: Client) -> None:
    store = any_client.store
    job_id = store.enqueue(NewJob("flaky", {}, max_attempts=3), at(0))
    for attempt in (1, 2, 3):
        (job,) = store.claim("w", (), 1, at(100 * attempt), 30)
        last = attempt == 3
        finish = Finish(
            job.id,
            job.lease_token,
            Action.FAIL if last else Action.RETRY_LATER,
            JobStatus.FAILED if last else JobStatus.PENDING,
            job.attempt,
            finished=last,
            run_at=None if last else at(100 * attempt + 1),
            error=f"ValueError: bad {attempt}",
            traceback=f"Traceback (most recent call last):\n  line {attempt}\nValueError",
        )
        assert store.finish([finish], at(100 * attempt + 0.5)) == []
    errors = any_client.errors(job_id)
    assert [e.attempt for e in errors] == [1, 2, 3]
    assert [e.error for e in errors] == [
        "ValueError: bad 1",
        "ValueError: bad 2",
        "ValueError: bad 3",
    ]
    assert [e.traceback for e in errors] == [
        f"Traceback (most recent call last):\n  line {n}\nValueError" for n in (1, 2, 3)
    ]
    assert [e.failed_at for e in errors] == [at(100.5), at(200.5), at(300.5)]
    job = any_client.get(job_id)
    assert (job.status, job.attempts, job.last_error) == (JobStatus.FAILED, 3, "ValueError: bad 3")


def test_a_success_after_failures_keeps_the_history(any_client: Client) -> None:
    store = any_client.store
    job_id = store.enqueue(NewJob("flaky", {}), at(0))
    (job,) = store.claim("w", (), 1, at(1), 30)
    fail = Finish(
        job.id, job.lease_token, Action.RETRY_LATER, JobStatus.PENDING, 1, False, at(2), error="E"
    )
    store.finish([fail], at(1))
    (job,) = store.claim("w", (), 1, at(3), 30)
    done = Finish(job.id, job.lease_token, Action.COMPLETE, JobStatus.COMPLETED, 2, True, None, "7")
    store.finish([done], at(4))
    finished = any_client.get(job_id)
    assert (finished.status, finished.result, finished.attempts) == (JobStatus.COMPLETED, 7, 2)
    assert [e.error for e in any_client.errors(job_id)] == ["E"]


def test_purge_deletes_only_finished_jobs_older_than_the_cutoff(any_client: Client) -> None:
    engine = any_client.engine
    old = {
        status: insert_job(engine, status, finished_at=at(10))
        for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)
    }
    recent = insert_job(engine, JobStatus.COMPLETED, finished_at=at(100))
    at_cutoff = insert_job(engine, JobStatus.FAILED, finished_at=at(50))
    pending = insert_job(engine, JobStatus.PENDING, created_at=at(0))
    running = insert_job(engine, JobStatus.RUNNING, created_at=at(0))
    insert_error(engine, old[JobStatus.FAILED], 1)
    insert_error(engine, old[JobStatus.FAILED], 2)
    insert_error(engine, at_cutoff, 1)

    deleted = any_client.store.purge(at(50), [JobStatus.COMPLETED, JobStatus.FAILED])
    assert deleted == 2
    assert raw_row(engine, old[JobStatus.COMPLETED]) is None
    assert raw_row(engine, old[JobStatus.FAILED]) is None
    assert error_count(engine, old[JobStatus.FAILED]) == 0  # cascaded
    for kept in (old[JobStatus.CANCELED], recent, at_cutoff, pending, running):
        assert raw_row(engine, kept) is not None
    assert error_count(engine) == 1

    assert any_client.store.purge(at(50), [JobStatus.CANCELED]) == 1
    assert raw_row(engine, old[JobStatus.CANCELED]) is None


def test_purge_through_the_client_defaults_to_every_finished_status(any_client: Client) -> None:
    engine = any_client.engine
    ancient = at(-10 * 86400)
    finished = [
        insert_job(engine, status, finished_at=ancient)
        for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)
    ]
    pending = insert_job(engine, JobStatus.PENDING, created_at=ancient)
    assert any_client.purge(older_than=86400) == 3
    assert all(raw_row(engine, job_id) is None for job_id in finished)
    assert raw_row(engine, pending) is not None


def test_purge_of_a_status_that_is_not_finished_is_refused(any_client: Client) -> None:
    job_id = insert_job(any_client.engine, JobStatus.PENDING, finished_at=at(0))
    with pytest.raises(InvalidTransition, match="cannot purge job: it is pending"):
        any_client.store.purge(at(50), [JobStatus.PENDING])
    with pytest.raises(InvalidTransition, match="only finished jobs can be purged"):
        any_client.purge(0, ["running"])
    assert raw_row(any_client.engine, job_id) is not None


def test_purge_of_many_jobs_in_batches(any_client: Client) -> None:
    total = upkeep.PURGE_BATCH + 7
    insert_jobs(any_client.engine, total, JobStatus.COMPLETED, finished_at=at(0))
    insert_jobs(any_client.engine, 3, JobStatus.COMPLETED, finished_at=at(99))
    assert any_client.store.purge(at(50), [JobStatus.COMPLETED]) == total
    assert any_client.stats().counts == {"default": {"completed": 3}}


def test_search_and_count_by_filter_on_every_store(any_client: Client) -> None:
    ids = any_client.enqueue_many(
        [
            {"type": "mail", "payload": {"to": f"user{n}@example.com", "note": "50%_off"}}
            for n in range(30)
        ]
        + [{"type": "report", "payload": {"to": "boss@example.com"}}]
    )
    any_client.cancel(ids[0])
    found = any_client.jobs(payload_contains="user1", limit=100)
    assert {job.payload["to"] for job in found} == {"user1@example.com"} | {
        f"user{n}@example.com" for n in range(10, 20)
    }
    # LIKE's wildcards in the search text are literal characters, not patterns.
    assert len(any_client.jobs(payload_contains="50%_off", limit=100)) == 30
    assert any_client.jobs(payload_contains="50_%off") == []
    assert any_client.count_jobs() == 31
    assert any_client.count_jobs(types=["mail"], statuses=["pending"]) == 29
    assert any_client.count_jobs(payload_contains="boss") == 1
    assert any_client.count_jobs(cap=10) == 10  # a count stops at its cap
