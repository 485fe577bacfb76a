"""The dispatcher in-process on a real SQLite file: claims, runs, retries, fences, limits, drains.

The subprocess tests (tests/e2e) prove the daemon end to end; these reach the dispatcher's own
decisions directly, with events to see what it did, in a fraction of the time.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from durableq.client import Client
from durableq.core.builder import utc_now
from durableq.core.config import Settings, database_url
from durableq.core.jobs import JobStatus
from durableq.core.retry import Backoff
from durableq.handlers.registry import JobContext, Registry
from durableq.worker.dispatcher import Dispatcher, WorkerOptions
from durableq.worker.events import Event, Events, JobFinished, JobStarted
from durableq.worker.executor import Executor
from tests.support.factories import error_count

SETTINGS = dict(lease=2.0, poll_interval=0.05, backoff=Backoff(base=0.05, jitter=0.0))


@pytest.fixture
def quick_client(db_path: Path) -> Iterator[Client]:
    settings = Settings(database=database_url(str(db_path)), **SETTINGS)  # type: ignore[arg-type]
    with Client.open(settings) as opened:
        yield opened


class Overlap:
    """How many handlers of a kind run at once, at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def dispatcher(
    client: Client, registry: Registry, events: list[Event], **options: Any
) -> Dispatcher:
    hook = Events()
    hook.subscribe(events.append)
    return Dispatcher(
        client.store,
        Executor(registry),
        client.settings,
        WorkerOptions(**{"burst": True, **options}),
        "worker-under-test",
        utc_now,
        hook,
    )


def run(target: Dispatcher, client: Client, timeout: float = 20.0) -> None:
    """Run until the burst ends (or fail after `timeout`)."""
    thread = threading.Thread(target=target.run, args=(client.store.change_watcher(),))
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        target.request_stop()
        thread.join(10)
        pytest.fail(f"the dispatcher did not finish its burst within {timeout}s")


def run_until(target: Dispatcher, client: Client, done: Callable[[], bool]) -> None:
    """Run a long-lived dispatcher until `done()` holds, then stop it (fail after 20 s)."""
    thread = threading.Thread(target=target.run, args=(client.store.change_watcher(),))
    thread.start()
    deadline = time.monotonic() + 20
    try:
        while not done():
            if time.monotonic() > deadline:
                pytest.fail("the condition did not hold within 20 s")
            time.sleep(0.01)
    finally:
        target.request_stop()
        thread.join(10)


def test_a_burst_runs_every_due_job_once(quick_client: Client) -> None:
    registry = Registry()
    seen: list[int] = []

    @registry.handler("count")
    def count(ctx: JobContext, payload: dict[str, Any]) -> int:
        seen.append(payload["n"])
        return int(payload["n"]) * 2

    ids = quick_client.enqueue_many([{"type": "count", "payload": {"n": n}} for n in range(40)])
    events: list[Event] = []
    run(dispatcher(quick_client, registry, events, concurrency=4), quick_client)
    assert sorted(seen) == list(range(40))
    jobs = [quick_client.get(job_id) for job_id in ids]
    assert {job.status for job in jobs} == {JobStatus.COMPLETED}
    assert [job.result for job in jobs] == [n * 2 for n in range(40)]
    started = [e.job.id for e in events if isinstance(e, JobStarted)]
    finished = [e for e in events if isinstance(e, JobFinished)]
    assert sorted(started) == ids
    assert sorted(e.finish.job_id for e in finished) == ids
    assert not any(e.stale for e in finished)


def test_a_failing_job_is_retried_after_its_backoff(quick_client: Client) -> None:
    registry = Registry()
    attempts: list[float] = []

    @registry.handler("flaky")
    def flaky(ctx: JobContext, payload: dict[str, Any]) -> str:
        attempts.append(time.monotonic())
        if ctx.attempt < 3:
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        return "third time"

    job_id = quick_client.enqueue("flaky", {}, max_attempts=5)
    # A burst leaves retries that are not yet due; a long-lived daemon wakes for them.
    target = dispatcher(quick_client, registry, [], burst=False)
    run_until(target, quick_client, lambda: quick_client.get(job_id).status.is_terminal)
    job = quick_client.get(job_id)
    assert (job.status, job.attempts, job.result) == (JobStatus.COMPLETED, 3, "third time")
    assert [e.error for e in quick_client.errors(job_id)] == [
        "RuntimeError: attempt 1 fails",
        "RuntimeError: attempt 2 fails",
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.05 * 0.99 and gaps[1] >= 0.1 * 0.99  # base, then base * factor


def test_a_job_out_of_attempts_fails_with_its_history(quick_client: Client) -> None:
    registry = Registry()

    @registry.handler("broken")
    def broken(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise KeyError("missing")

    job_id = quick_client.enqueue("broken", {}, max_attempts=2)
    target = dispatcher(quick_client, registry, [], burst=False)
    run_until(target, quick_client, lambda: quick_client.get(job_id).status.is_terminal)
    job = quick_client.get(job_id)
    assert (job.status, job.attempts, job.last_error) == (
        JobStatus.FAILED,
        2,
        "KeyError: 'missing'",
    )
    assert error_count(quick_client.engine, job_id) == 2


def test_a_per_daemon_queue_limit_holds(quick_client: Client) -> None:
    registry = Registry()
    mail, other = Overlap(), Overlap()

    @registry.handler("mail")
    def send(ctx: JobContext, payload: dict[str, Any]) -> None:
        with mail:
            time.sleep(0.03)

    @registry.handler("other")
    def work(ctx: JobContext, payload: dict[str, Any]) -> None:
        with other:
            time.sleep(0.03)

    quick_client.enqueue_many([{"type": "mail", "queue": "mail"}] * 12)
    quick_client.enqueue_many([{"type": "other", "queue": "other"}] * 12)
    run(
        dispatcher(
            quick_client,
            registry,
            [],
            concurrency=6,
            queues=("mail", "other"),
            queue_limits=(("mail", 2),),
        ),
        quick_client,
    )
    assert mail.most == 2  # reached, never passed
    assert other.most > 2  # the other queue uses the free slots
    counts = quick_client.stats().counts
    assert [counts[q].get("completed") for q in ("mail", "other")] == [12, 12]


def test_an_outcome_for_a_job_taken_away_is_dropped(quick_client: Client, db_path: Path) -> None:
    registry = Registry()

    @registry.handler("slow")
    def slow(ctx: JobContext, payload: dict[str, Any]) -> str:
        # Meanwhile the job is rescued and claimed by another worker (another lease token).
        with sqlite3.connect(db_path) as connection:
            connection.execute("UPDATE jobs SET lease_token = 'theirs', worker_id = 'them'")
        return "mine"

    job_id = quick_client.enqueue("slow", {})
    events: list[Event] = []
    run(dispatcher(quick_client, registry, events), quick_client)
    (finished,) = [e for e in events if isinstance(e, JobFinished)]
    assert finished.stale
    job = quick_client.get(job_id)
    assert (job.status, job.result, job.worker_id) == (JobStatus.RUNNING, None, "them")


def test_a_stop_gives_running_jobs_back_uncounted(quick_client: Client) -> None:
    registry = Registry()
    started = threading.Event()

    @registry.handler("long")
    def long(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        ctx.cancelled.wait(30)  # a well-behaved handler: stops when told

    job_id = quick_client.enqueue("long", {})
    target = dispatcher(quick_client, registry, [], burst=False, shutdown_timeout=0.2)
    thread = threading.Thread(target=target.run, args=(quick_client.store.change_watcher(),))
    thread.start()
    assert started.wait(10)
    target.request_stop()
    thread.join(10)
    assert not thread.is_alive()
    job = quick_client.get(job_id)
    assert (job.status, job.attempts, job.worker_id) == (JobStatus.PENDING, 0, None)


def test_jobs_arriving_one_by_one_are_gathered_into_few_turns(quick_client: Client) -> None:
    """A producer enqueueing back to back while the daemon keeps up: the queue is drained at
    every turn, and without gathering each job cost a turn to claim it and one to save it."""
    registry = Registry()
    registry.handler("quick")(lambda ctx, payload: None)
    store = quick_client.store
    turns = [0]
    for name in ("finish_and_claim", "finish"):
        original = getattr(store, name)

        def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            turns[0] += 1
            return _original(*args, **kwargs)

        setattr(store, name, counted)
    jobs = 300
    ids: list[int] = []

    def produce() -> None:
        for _ in range(jobs):
            ids.append(quick_client.enqueue("quick"))

    producer = threading.Thread(target=produce)
    target = dispatcher(quick_client, registry, [], concurrency=4, burst=False)
    producer.start()
    run_until(
        target,
        quick_client,
        lambda: (
            len(ids) == jobs
            and quick_client.get(ids[-1]).status == JobStatus.COMPLETED
            and target.processed == jobs
        ),
    )
    producer.join()
    assert all(quick_client.get(i).status == JobStatus.COMPLETED for i in ids)
    assert turns[0] < jobs / 2, f"{turns[0]} turns for {jobs} jobs"
