"""Queue limits under concurrent claims and enqueues from many threads, on both stores.

PostgreSQL runs READ COMMITTED with several connections at once: there the limits hold only
because the claim and the enqueue lock the queue's row before counting. SQLite serialises
writers, so there the same tests hold the plain path to the same numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from durableq.client import Client
from durableq.core.errors import QueueFull
from durableq.core.jobs import Action, JobStatus
from durableq.core.outcomes import Finish

THREADS = 6
LATER = datetime.now(UTC) + timedelta(hours=1)  # claims see every job as due


def in_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            work(number)
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]


def running_in(client: Client, queue: str) -> int:
    with client.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM jobs WHERE status = 'running' AND queue = :q"),
                {"q": queue},
            ).scalar_one()
        )


def test_concurrent_claims_never_exceed_a_global_limit(any_client: Client) -> None:
    client = any_client
    client.set_queue("q", concurrency=2)
    client.enqueue_many([{"type": "echo", "queue": "q"}] * 150)
    seen: list[int] = []

    def worker(number: int) -> None:
        for _ in range(60):
            claimed = client.store.finish_and_claim((), f"w{number}", (), 3, LATER, 30.0).claimed
            seen.append(running_in(client, "q"))
            client.store.finish(
                [
                    Finish(
                        job_id=job.id,
                        lease_token=job.lease_token,
                        action=Action.COMPLETE,
                        status=JobStatus.COMPLETED,
                        attempt=job.attempt,
                        finished=True,
                    )
                    for job in claimed
                ],
                LATER,
            )

    in_threads(worker)
    assert max(seen) <= 2, f"{max(seen)} running in a queue limited to 2"
    assert client.queue("q").pending < 150, "nothing was claimed: the test proves nothing"


def test_concurrent_claims_take_no_more_than_the_rate_allows(any_client: Client) -> None:
    client = any_client
    client.set_queue("r", rate="5/1h")
    client.enqueue_many([{"type": "echo", "queue": "r"}] * 50)
    taken: list[int] = []

    def worker(number: int) -> None:
        for _ in range(10):
            turn = client.store.finish_and_claim((), f"w{number}", (), 4, LATER, 30.0)
            taken.append(len(turn.claimed))

    in_threads(worker)
    assert sum(taken) == 5


def test_concurrent_enqueues_never_exceed_max_pending(any_client: Client) -> None:
    client = any_client
    client.set_queue("b", max_pending=40)
    refused: list[int] = []

    def producer(number: int) -> None:
        for i in range(20):
            try:
                client.enqueue_many([{"type": "echo", "queue": "b"}] * (1 + (i + number) % 2))
            except QueueFull:
                refused.append(1)

    in_threads(producer)
    pending = client.queue("b").pending
    assert 39 <= pending <= 40, pending
    assert refused
