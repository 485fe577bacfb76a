"""AsyncClient: the Client's methods as coroutines; the event loop keeps running while an
enqueue waits for SQLite's write lock (held by another connection for a second)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from durableq import AsyncClient, InvalidInput, JobStatus, Registry


def test_the_async_client_does_what_the_client_does(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncClient.open(str(tmp_path / "q.db")) as queue:
            job_id = await queue.enqueue("email.send", {"to": "ada@example.com"}, priority=3)
            ids = await queue.enqueue_many([{"type": "noop"}, {"type": "noop"}])
            job = await queue.get(job_id)
            assert (job.type, job.priority, job.status) == ("email.send", 3, JobStatus.PENDING)
            assert [j.id for j in await queue.jobs(statuses=["pending"])] == [*ids[::-1], job_id]
            assert await queue.count_jobs() == 3
            assert (await queue.cancel(ids[0])).status is JobStatus.CANCELED
            assert (await queue.pause_queue("default")).paused
            assert (await queue.set_queue("default", concurrency=2)).concurrency == 2
            assert (await queue.stats()).counts["default"]["pending"] == 2
            assert len((await queue.history("1h")).buckets) == 60
            assert await queue.workers() == [] and await queue.leader() is None
            with pytest.raises(InvalidInput, match="not negative"):
                await queue.enqueue("noop", delay=-1)

    asyncio.run(main())


def test_the_event_loop_runs_on_while_an_enqueue_waits_for_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    holding = threading.Event()
    release = threading.Event()

    def hold_the_write_lock() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        holding.set()
        release.wait(10)
        connection.execute("ROLLBACK")
        connection.close()

    async def main() -> tuple[float, float]:
        queue = await AsyncClient.open(str(path))
        hog = threading.Thread(target=hold_the_write_lock)
        hog.start()
        await asyncio.to_thread(holding.wait, 5)
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while not release.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(1.0, release.set)
        started = time.monotonic()
        job_id = await queue.enqueue("noop")  # waits about a second for the lock
        waited = time.monotonic() - started
        await ticker
        hog.join()
        assert (await queue.get(job_id)).status is JobStatus.PENDING
        await queue.close()
        return waited, max(gaps)

    waited, longest_gap = asyncio.run(main())
    assert waited >= 0.9  # the enqueue really waited for the lock ...
    assert longest_gap < 0.1  # ... and the loop never stopped for it


def test_a_task_enqueues_through_the_async_client(tmp_path: Path) -> None:
    registry = Registry()

    @registry.task(name="greet")
    def greet(ctx: object, name: str) -> str:
        return f"hello {name}"

    async def main() -> None:
        async with await AsyncClient.open(str(tmp_path / "q.db")) as queue:
            job_id = await greet.aenqueue(queue, name="ada")
            assert (await queue.get(job_id)).payload == {"name": "ada"}

    asyncio.run(main())
