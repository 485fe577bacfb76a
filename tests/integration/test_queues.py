"""Queue controls in the claim and the enqueue, on a real SQLite file and on PostgreSQL.

SQLite runs the hot path's plain-DBAPI statements and PostgreSQL the Core ones: the same tests
hold both to one behaviour. Time is passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from durableq.client import Client
from durableq.core.errors import InvalidInput, QueueFull
from durableq.core.jobs import Action, ClaimedJob, JobStatus
from durableq.core.outcomes import Finish

LEASE = 30.0
# Claims happen "later" than the enqueues, which use the real clock.
BASE = datetime.now(UTC) + timedelta(hours=1)


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def claim(
    client: Client,
    limit: int,
    now: float = 0.0,
    queues: tuple[str, ...] = (),
    caps: dict[str, int] | None = None,
    worker: str = "w1",
) -> list[ClaimedJob]:
    turn = client.store.finish_and_claim((), worker, queues, limit, at(now), LEASE, caps=caps)
    return turn.claimed


def enqueue(client: Client, queue: str, n: int) -> list[int]:
    return client.enqueue_many([{"type": "echo", "queue": queue} for _ in range(n)])


def complete(client: Client, job: ClaimedJob, now: float = 1.0) -> None:
    done = Finish(
        job_id=job.id,
        lease_token=job.lease_token,
        action=Action.COMPLETE,
        status=JobStatus.COMPLETED,
        attempt=job.attempt,
        finished=True,
    )
    assert client.store.finish([done], at(now)) == []


def test_a_queue_gets_its_row_on_first_enqueue_and_lists_with_counts(any_client: Client) -> None:
    assert any_client.queues() == []
    enqueue(any_client, "mail", 3)
    enqueue(any_client, "reports", 1)
    claim(any_client, 1, queues=("reports",))
    listed = {q.name: q for q in any_client.queues()}
    assert set(listed) == {"mail", "reports"}
    assert (listed["mail"].pending, listed["mail"].running) == (3, 0)
    assert (listed["reports"].pending, listed["reports"].running) == (0, 1)
    assert listed["mail"].oldest_due_wait is not None
    assert not listed["mail"].paused and listed["mail"].concurrency is None


def test_nothing_of_a_paused_queue_starts_and_resume_lets_it(any_client: Client) -> None:
    enqueue(any_client, "mail", 3)
    enqueue(any_client, "other", 2)
    assert any_client.pause_queue("mail").paused
    got = claim(any_client, 10)
    assert {job.queue for job in got} == {"other"} and len(got) == 2
    assert claim(any_client, 10, queues=("mail",)) == []
    assert not any_client.resume_queue("mail").paused
    assert len(claim(any_client, 10, queues=("mail",))) == 3


def test_pausing_a_queue_before_it_has_jobs_holds_its_first_ones(any_client: Client) -> None:
    any_client.pause_queue("later")
    enqueue(any_client, "later", 2)
    assert claim(any_client, 5) == []
    assert any_client.queue("later").pending == 2


def test_a_global_concurrency_limit_holds_across_workers(any_client: Client) -> None:
    enqueue(any_client, "mail", 10)
    enqueue(any_client, "other", 3)
    any_client.set_queue("mail", concurrency=2)
    turn = any_client.store.finish_and_claim((), "w1", (), 10, at(0), LEASE)
    mail = [j for j in turn.claimed if j.queue == "mail"]
    assert len(mail) == 2 and len(turn.claimed) == 5  # the other queue is not held back
    assert turn.held  # a concurrency limit, not a lack of jobs, ended the take
    assert claim(any_client, 10, worker="w2") == []
    complete(any_client, mail[0])
    again = claim(any_client, 10, worker="w2")
    assert [j.queue for j in again] == ["mail"]


def test_a_daemons_own_cap_bounds_its_take(any_client: Client) -> None:
    enqueue(any_client, "mail", 10)
    enqueue(any_client, "reports", 10)
    got = claim(any_client, 8, queues=("mail", "reports"), caps={"mail": 1, "reports": 3})
    counts = {q: sum(1 for j in got if j.queue == q) for q in ("mail", "reports")}
    assert counts == {"mail": 1, "reports": 3}
    # A cap with room left and a queue without a cap share the rest of the slots.
    got = claim(any_client, 8, queues=("mail", "reports"), caps={"mail": 0})
    assert {j.queue for j in got} == {"reports"} and len(got) == 7


def test_a_rate_limit_starts_burst_then_one_per_interval_and_keeps_attempts(
    any_client: Client,
) -> None:
    ids = enqueue(any_client, "api", 20)
    any_client.set_queue("api", rate="5/1s:3")
    first = any_client.store.finish_and_claim((), "w1", (), 10, at(0), LEASE)
    assert len(first.claimed) == 3  # the burst
    held = any_client.store.finish_and_claim((), "w1", (), 10, at(0.1), LEASE)
    assert held.claimed == [] and held.wake_in == pytest.approx(0.1, abs=0.01)
    assert len(claim(any_client, 10, now=0.2)) == 1  # one start per 200 ms after the burst
    assert len(claim(any_client, 10, now=0.3)) == 0
    assert len(claim(any_client, 10, now=1.0)) == 3  # refilled, up to the burst
    waiting = [j for j in any_client.store.get_many(ids) if j.status is JobStatus.PENDING]
    assert len(waiting) == 13 and all(j.attempts == 0 for j in waiting)


def test_removing_a_limit_lets_the_queue_run_freely(any_client: Client) -> None:
    enqueue(any_client, "api", 10)
    any_client.set_queue("api", rate="1/1h", concurrency=1)
    assert len(claim(any_client, 10)) == 1
    any_client.set_queue("api", rate=None, concurrency=None)
    assert len(claim(any_client, 10)) == 9


def test_max_pending_refuses_a_whole_batch_and_writes_nothing(any_client: Client) -> None:
    enqueue(any_client, "mail", 8)
    any_client.set_queue("mail", max_pending=10)
    with pytest.raises(QueueFull, match='queue "mail" is full: 8 pending, max 10'):
        enqueue(any_client, "mail", 3)
    with pytest.raises(QueueFull):
        any_client.enqueue_many(
            [{"type": "echo", "queue": "x"}, {"type": "echo", "queue": "mail"}] * 3
        )
    assert [q.name for q in any_client.queues()] == ["mail"]  # not even queue x's row
    assert any_client.queue("mail").pending == 8
    enqueue(any_client, "mail", 2)
    with pytest.raises(QueueFull, match="10 pending, max 10; retry later"):
        any_client.enqueue("echo", queue="mail")
    claim(any_client, 1)  # a running job is not pending: room for one more
    any_client.enqueue("echo", queue="mail")


def test_bad_limits_are_refused_and_change_nothing(any_client: Client) -> None:
    any_client.set_queue("mail", concurrency=3)
    for bad in ({"concurrency": 0}, {"max_pending": -1}, {"rate": "5 per second"}):
        with pytest.raises(InvalidInput):
            any_client.set_queue("mail", **bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        any_client.pause_queue("no spaces")
    assert any_client.queue("mail").concurrency == 3


def test_a_queue_nobody_used_yet_shows_empty(any_client: Client) -> None:
    # Found by schemathesis: GET /api/v1/queues/0 was an assertion error (a 500).
    info = any_client.queue("never-used")
    assert (info.name, info.paused, info.pending, info.running) == ("never-used", False, 0, 0)
    assert info.concurrency is None and info.oldest_due_wait is None
