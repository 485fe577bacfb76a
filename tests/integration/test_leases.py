"""Leases: stale outcomes are fenced off, live leases renewed, dead workers' jobs rescued.

Time is a parameter everywhere here: `at(seconds)` instants, never sleeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from durableq.client import Client
from durableq.core.jobs import Action, ClaimedJob, JobStatus, NewJob
from durableq.core.outcomes import Finish
from durableq.store.records import WorkerInfo
from durableq.store.schema import jobs_table
from tests.support.factories import at, error_count, insert_job, raw_row

LEASE = 30.0


def complete(job: ClaimedJob) -> Finish:
    return Finish(job.id, job.lease_token, Action.COMPLETE, JobStatus.COMPLETED, job.attempt, True)


def fail_later(job: ClaimedJob, error: str = "RuntimeError: boom") -> Finish:
    return Finish(
        job.id,
        job.lease_token,
        Action.RETRY_LATER,
        JobStatus.PENDING,
        job.attempt,
        False,
        run_at=at(500),
        error=error,
    )


def claim_one(client: Client, worker: str, now: float) -> ClaimedJob:
    (job,) = client.store.claim(worker, (), 1, at(now), LEASE)
    return job


def test_finish_with_a_stale_lease_token_is_dropped(any_client: Client) -> None:
    store = any_client.store
    store.enqueue(NewJob("noop", {}, max_attempts=5), at(0))
    old = claim_one(any_client, "w-dead", now=0)
    store.rescue_expired(at(LEASE + 1))  # w-dead stopped renewing its lease
    new = claim_one(any_client, "w-new", now=LEASE + 2)
    assert new.id == old.id and new.lease_token != old.lease_token
    before = raw_row(any_client.engine, old.id)

    assert store.finish([complete(old)], at(LEASE + 3)) == [old.id]
    assert store.finish([fail_later(old)], at(LEASE + 3)) == [old.id]
    assert raw_row(any_client.engine, old.id) == before
    assert error_count(any_client.engine, old.id) == 1  # the rescue's, not the stale failure's

    assert store.finish([complete(new)], at(LEASE + 4)) == []
    assert store.get(new.id).status is JobStatus.COMPLETED


def test_a_batch_with_one_stale_outcome_still_saves_the_others(any_client: Client) -> None:
    store = any_client.store
    store.enqueue_many([NewJob("noop", {}) for _ in range(3)], at(0))
    jobs = store.claim("w", (), 3, at(0), LEASE)
    by_id = sorted(jobs, key=lambda job: job.id)
    # An operator's retry cannot touch a running job, so take one away the way a rescue does.
    with any_client.engine.begin() as connection:
        connection.execute(
            jobs_table.update()
            .where(jobs_table.c.id == by_id[1].id)
            .values(lease_token="someone-else")
        )
    stale = store.finish([fail_later(by_id[0]), complete(by_id[1]), complete(by_id[2])], at(1))
    assert stale == [by_id[1].id]
    assert [store.get(job.id).status for job in by_id] == [
        JobStatus.PENDING,
        JobStatus.RUNNING,
        JobStatus.COMPLETED,
    ]
    assert [len(store.errors(job.id)) for job in by_id] == [1, 0, 0]


def test_heartbeat_renews_the_leases_of_the_workers_jobs(any_client: Client) -> None:
    store = any_client.store
    store.enqueue_many([NewJob("noop", {}) for _ in range(2)], at(0))
    mine = claim_one(any_client, "w-live", now=0)
    theirs = claim_one(any_client, "w-dead", now=0)
    report = store.heartbeat("w-live", {mine.id: mine.lease_token}, at(20), LEASE)
    assert report.lost == report.cancel_requested == frozenset()
    assert store.get(mine.id).lease_expires_at == at(20 + LEASE)

    rescued = store.rescue_expired(at(40))
    assert rescued.requeued == [theirs.id]
    assert store.get(mine.id).status is JobStatus.RUNNING


def test_heartbeat_reports_jobs_taken_away(any_client: Client) -> None:
    store = any_client.store
    store.enqueue(NewJob("noop", {}), at(0))
    old = claim_one(any_client, "w-slow", now=0)
    store.rescue_expired(at(LEASE + 1))
    claim_one(any_client, "w-other", now=LEASE + 1)
    report = store.heartbeat("w-slow", {old.id: old.lease_token}, at(LEASE + 2), LEASE)
    assert report.lost == {old.id}


def test_rescue_requeues_a_dead_workers_job_counting_the_attempt(any_client: Client) -> None:
    job_id = insert_job(
        any_client.engine,
        JobStatus.RUNNING,
        attempts=1,
        max_attempts=3,
        worker_id="w-dead",
        lease_expires_at=at(30),
    )
    report = any_client.store.rescue_expired(at(31))
    assert (report.requeued, report.failed, report.canceled) == ([job_id], [], [])
    job = any_client.store.get(job_id)
    assert (job.status, job.attempts, job.run_at) == (JobStatus.PENDING, 1, at(31))
    assert (job.worker_id, job.lease_expires_at, job.finished_at) == (None, None, None)
    assert raw_row(any_client.engine, job_id)["lease_token"] is None  # type: ignore[index]
    (error,) = any_client.store.errors(job_id)
    assert (error.attempt, error.failed_at) == (1, at(31))
    assert "w-dead" in error.error and "died" in error.error
    assert job.last_error is not None and "died" in job.last_error
    # The next claim is attempt 2.
    assert claim_one(any_client, "w-new", now=32).attempt == 2


def test_rescue_fails_a_job_that_used_its_last_attempt(any_client: Client) -> None:
    job_id = insert_job(
        any_client.engine, JobStatus.RUNNING, attempts=3, max_attempts=3, lease_expires_at=at(30)
    )
    report = any_client.store.rescue_expired(at(31))
    assert report.failed == [job_id]
    job = any_client.store.get(job_id)
    assert (job.status, job.finished_at, job.attempts) == (JobStatus.FAILED, at(31), 3)
    assert "died" in any_client.store.errors(job_id)[0].error


def test_rescue_ends_a_cancel_requested_job_canceled(any_client: Client) -> None:
    job_id = insert_job(
        any_client.engine, JobStatus.RUNNING, cancel_requested=True, lease_expires_at=at(30)
    )
    report = any_client.store.rescue_expired(at(31))
    assert report.canceled == [job_id]
    job = any_client.store.get(job_id)
    assert (job.status, job.finished_at) == (JobStatus.CANCELED, at(31))
    assert any_client.store.errors(job_id) == []


@pytest.mark.parametrize("now", [29, 30], ids=["before", "at-expiry"])
def test_a_lease_not_yet_expired_is_left_alone(any_client: Client, now: float) -> None:
    job_id = insert_job(any_client.engine, JobStatus.RUNNING, lease_expires_at=at(30))
    before = raw_row(any_client.engine, job_id)
    assert any_client.store.rescue_expired(at(now)).total == 0
    assert raw_row(any_client.engine, job_id) == before


def test_rescue_handles_many_jobs_and_their_mix(any_client: Client) -> None:
    engine = any_client.engine
    requeued = [insert_job(engine, JobStatus.RUNNING, lease_expires_at=at(i)) for i in range(5)]
    failed = insert_job(engine, JobStatus.RUNNING, attempts=3, lease_expires_at=at(1))
    canceled = insert_job(engine, JobStatus.RUNNING, cancel_requested=True, lease_expires_at=at(2))
    alive = insert_job(engine, JobStatus.RUNNING, lease_expires_at=at(100))
    report = any_client.store.rescue_expired(at(50))
    assert sorted(report.requeued) == requeued
    assert (report.failed, report.canceled) == ([failed], [canceled])
    assert any_client.store.get(alive).status is JobStatus.RUNNING
    assert any_client.store.rescue_expired(at(50)).total == 0


def test_lease_expiry_is_now_plus_the_lease(any_client: Client) -> None:
    any_client.store.enqueue(NewJob("noop", {}), at(0))
    job = any_client.store.claim("w", (), 1, at(7), lease=2.5)[0]
    assert any_client.store.get(job.id).lease_expires_at == at(7) + timedelta(seconds=2.5)


def test_rescue_waits_out_the_grace_after_the_lease(any_client: Client) -> None:
    job_id = insert_job(any_client.engine, JobStatus.RUNNING, lease_expires_at=at(30))
    assert any_client.store.rescue_expired(at(31), grace=2).total == 0
    assert any_client.store.rescue_expired(at(33), grace=2).requeued == [job_id]


def test_rescue_spares_a_job_whose_owner_still_beats(any_client: Client) -> None:
    store = any_client.store
    store.register_worker(
        WorkerInfo("w-late", "host", 1, (), 1, at(0), heartbeat_at=at(25), lease=10.0)
    )
    job_id = insert_job(
        any_client.engine, JobStatus.RUNNING, worker_id="w-late", lease_expires_at=at(30)
    )
    report = store.rescue_expired(at(34), grace=2)  # owner beat 9 s ago: within 10 + 2
    assert (report.total, report.spared) == (0, [job_id])
    assert store.rescue_expired(at(38), grace=2).requeued == [job_id]  # 13 s: dead


def test_a_renewal_reads_the_clock_and_never_shortens_a_lease(any_client: Client) -> None:
    store = any_client.store
    store.enqueue(NewJob("noop", {}), at(0))
    job = claim_one(any_client, "w", now=50)  # lease until 50 + LEASE
    report = store.renew("w", {job.id: job.lease_token}, lambda: at(10), LEASE)
    assert report.renewed == {job.id} and report.renewed_at == at(10)
    assert store.get(job.id).lease_expires_at == at(50 + LEASE)
    store.renew("w", {job.id: job.lease_token}, lambda: at(60), LEASE)
    assert store.get(job.id).lease_expires_at == at(60 + LEASE)


def test_a_turn_can_renew_the_workers_leases(any_client: Client) -> None:
    store = any_client.store
    store.enqueue_many([NewJob("noop", {}) for _ in range(2)], at(0))
    mine = claim_one(any_client, "w", now=0)
    turn = store.finish_and_claim((), "w", (), 1, lambda: at(20), LEASE, renew=True)
    assert turn.renewed == {mine.id: mine.lease_token}
    assert [job.id for job in turn.claimed] != [mine.id]
    assert store.get(mine.id).lease_expires_at == at(20 + LEASE)


def test_a_turn_asks_whether_to_renew_once_it_holds_the_lock(any_client: Client) -> None:
    """A worker turn that waited long for the write lock renews if a renewal fell due
    meanwhile: `renew` may be a callable, asked after the clock was read with the lock held."""
    store = any_client.store
    store.enqueue_many([NewJob("noop", {}) for _ in range(2)], at(0))
    mine = claim_one(any_client, "w-live", now=0)
    asked: list[str] = []

    def clock() -> datetime:
        asked.append("clock")
        return at(20)

    def due() -> bool:
        asked.append("renew")
        return True

    turn = store.finish_and_claim((), "w-live", (), 0, clock, LEASE, renew=due)
    assert asked == ["clock", "renew"]
    assert turn.renewed == {mine.id: mine.lease_token}
    assert store.get(mine.id).lease_expires_at == at(20 + LEASE)
    not_due = store.finish_and_claim((), "w-live", (), 0, at(25), LEASE, renew=lambda: False)
    assert not_due.renewed == {}
    assert store.get(mine.id).lease_expires_at == at(20 + LEASE)
