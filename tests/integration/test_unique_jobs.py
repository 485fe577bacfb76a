"""Unique jobs and idempotent enqueues on both stores (SQLite's DBAPI path, PostgreSQL's Core).

The database enforces both keys; these tests hold the two stores to one behaviour: what a
duplicate returns, which states hold a key, what `replace` changes, what a batch reports, and
what happens when a job that left its unique states is retried while a twin holds the key.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from durableq.client import Client
from durableq.core.errors import IdempotencyConflict, UniqueConflict
from durableq.core.jobs import Action, ClaimedJob, JobStatus
from durableq.core.outcomes import Finish
from durableq.core.uniqueness import Unique
from durableq.store.schema import jobs_table

LATER = datetime.now(UTC) + timedelta(hours=1)


def rows(client: Client) -> int:
    with client.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(jobs_table)).scalar_one())


def claim_one(client: Client) -> ClaimedJob:
    [job] = client.store.claim("w1", (), 1, LATER, 30.0)
    return job


def finish(client: Client, job: ClaimedJob, status: JobStatus, action: Action) -> None:
    done = Finish(job.id, job.lease_token, action, status, job.attempt, finished=True)
    assert client.store.finish([done], LATER) == []


def test_a_twin_gets_the_first_jobs_id_whatever_the_key_order(any_client: Client) -> None:
    first = any_client.enqueue("mail", {"to": "ada", "n": 1}, unique=True)
    again = any_client.enqueue("mail", {"n": 1, "to": "ada"}, unique=True)
    other = any_client.enqueue("mail", {"to": "bob", "n": 1}, unique=True)
    elsewhere = any_client.enqueue("mail", {"to": "ada", "n": 1}, queue="q2", unique=True)
    assert again == first and len({first, other, elsewhere}) == 3
    assert rows(any_client) == 3


def test_a_job_without_unique_is_never_a_twin(any_client: Client) -> None:
    unique = any_client.enqueue("mail", {"n": 1}, unique=True)
    plain = any_client.enqueue("mail", {"n": 1})
    assert plain != unique
    assert any_client.enqueue("mail", {"n": 1}, unique=True) == unique


def test_the_key_is_held_while_running_and_freed_when_finished(any_client: Client) -> None:
    first = any_client.enqueue("report", unique=True)
    job = claim_one(any_client)
    assert job.id == first
    assert any_client.enqueue("report", unique=True) == first  # running: still a twin
    finish(any_client, job, JobStatus.COMPLETED, Action.COMPLETE)
    second = any_client.enqueue("report", unique=True)
    assert second != first


def test_completed_in_the_states_keeps_the_key_after_completion(any_client: Client) -> None:
    once = Unique(states=("pending", "running", "completed"))
    first = any_client.enqueue("setup", unique=once)
    finish(any_client, claim_one(any_client), JobStatus.COMPLETED, Action.COMPLETE)
    assert any_client.enqueue("setup", unique=once) == first


def test_keys_pick_payload_fields_and_replace_updates_a_pending_twin(any_client: Client) -> None:
    by_user = Unique(keys=("user",), on_conflict="replace")
    first = any_client.enqueue("sync", {"user": 7, "since": 1}, unique=by_user)
    run_at = LATER + timedelta(minutes=5)
    again = any_client.enqueue("sync", {"user": 7, "since": 2}, unique=by_user, run_at=run_at)
    assert again == first
    job = any_client.get(first)
    assert job.payload == {"user": 7, "since": 2} and job.run_at == run_at
    assert any_client.enqueue("sync", {"user": 8, "since": 2}, unique=by_user) != first


def test_replace_leaves_a_running_twin_alone(any_client: Client) -> None:
    by_user = Unique(keys=("user",), on_conflict="replace")
    first = any_client.enqueue("sync", {"user": 7, "v": 1}, unique=by_user)
    claim_one(any_client)
    assert any_client.enqueue("sync", {"user": 7, "v": 2}, unique=by_user) == first
    assert any_client.get(first).payload == {"user": 7, "v": 1}


def test_a_period_buckets_by_time(tmp_path: object) -> None:
    clock = [datetime(2026, 1, 1, 10, 0, tzinfo=UTC)]
    with Client.open(f"{tmp_path}/p.db", clock=lambda: clock[0]) as client:
        hourly = Unique(period=3600)
        first = client.enqueue("digest", unique=hourly)
        clock[0] += timedelta(minutes=59)
        assert client.enqueue("digest", unique=hourly) == first
        clock[0] += timedelta(minutes=2)  # 11:01: a new bucket
        assert client.enqueue("digest", unique=hourly) != first


def test_a_batch_reports_its_duplicates_and_writes_each_key_once(any_client: Client) -> None:
    existing = any_client.enqueue("a", unique=True)
    done = any_client.enqueue_many(
        [
            {"type": "a", "unique": True},  # the existing job
            {"type": "b", "unique": True},  # new
            {"type": "b", "unique": True},  # the new one above
            {"type": "c"},  # plain
            {"type": "d", "idempotency_key": "k1"},
            {"type": "d", "idempotency_key": "k1"},
        ]
    )
    assert done[0] == existing and done[1] == done[2] and done[4] == done[5]
    assert done.duplicates == {0, 2, 5}
    assert rows(any_client) == 4


def test_an_idempotency_key_returns_its_job_in_any_state(any_client: Client) -> None:
    first = any_client.enqueue("charge", {"order": 42}, idempotency_key="order-42")
    finish(any_client, claim_one(any_client), JobStatus.COMPLETED, Action.COMPLETE)
    assert any_client.enqueue("charge", {"order": 42}, idempotency_key="order-42") == first
    assert rows(any_client) == 1


@pytest.mark.parametrize(
    ("job_type", "payload", "says"),
    [("charge", {"order": 43}, "another payload"), ("refund", {"order": 42}, "another type")],
)
def test_a_key_reused_for_another_job_is_refused_and_nothing_is_written(
    any_client: Client, job_type: str, payload: dict[str, int], says: str
) -> None:
    first = any_client.enqueue("charge", {"order": 42}, idempotency_key="order-42")
    with pytest.raises(IdempotencyConflict, match=f"belongs to job {first}, which has {says}"):
        any_client.enqueue_many(
            [
                {"type": "other"},
                {"type": job_type, "payload": payload, "idempotency_key": "order-42"},
            ]
        )
    assert rows(any_client) == 1


def test_a_purged_job_frees_its_idempotency_key(any_client: Client) -> None:
    first = any_client.enqueue("charge", idempotency_key="k")
    finish(any_client, claim_one(any_client), JobStatus.COMPLETED, Action.COMPLETE)
    assert any_client.store.purge(LATER + timedelta(seconds=1), [JobStatus.COMPLETED]) == 1
    assert any_client.enqueue("charge", idempotency_key="k") != first


def test_retrying_a_job_whose_twin_holds_the_key_is_refused_then_allowed(
    any_client: Client,
) -> None:
    first = any_client.enqueue("report", unique=True)
    finish(any_client, claim_one(any_client), JobStatus.FAILED, Action.FAIL)
    twin = any_client.enqueue("report", unique=True)
    assert twin != first
    with pytest.raises(UniqueConflict, match=f"job {twin} holds its unique key"):
        any_client.retry(first)
    assert any_client.get(first).status is JobStatus.FAILED
    any_client.cancel(twin)
    assert any_client.retry(first).status is JobStatus.PENDING
    assert any_client.enqueue("report", unique=True) == first


def test_an_automatic_retry_keeps_the_key(any_client: Client) -> None:
    first = any_client.enqueue("flaky", unique=True)
    job = claim_one(any_client)
    again = Finish(
        job.id,
        job.lease_token,
        Action.RETRY_LATER,
        JobStatus.PENDING,
        job.attempt,
        False,
        run_at=LATER,
        error="boom",
    )
    assert any_client.store.finish([again], LATER) == []
    assert any_client.enqueue("flaky", unique=True) == first


def test_postgres_a_rolled_back_insert_does_not_block_the_key(postgres_url: str) -> None:
    with Client.open(postgres_url) as client:
        key = client.new_job("solo", unique=True).unique_key
        blocker = client.engine.connect()
        transaction = blocker.begin()
        blocker.execute(
            text(
                "INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts,"
                " run_at, created_at, updated_at, cancel_requested, unique_key, unique_states)"
                " VALUES ('default', 'solo', '{}', 'pending', 0, 0, 1, now(), now(), now(),"
                " false, :key, 3)"
            ),
            {"key": key},
        )
        result: list[int] = []
        racer = threading.Thread(target=lambda: result.append(client.enqueue("solo", unique=True)))
        racer.start()
        time.sleep(0.5)
        assert not result, "the enqueue should wait for the uncommitted twin"
        transaction.rollback()
        blocker.close()
        racer.join(timeout=10)
        assert len(result) == 1
        assert client.get(result[0]).type == "solo"
        assert rows(client) == 1
