"""AsyncClient: the Client's methods as coroutines, for asyncio programs (a FastAPI app).

Each call runs the Client's in a small thread pool of its own, so the event loop never waits on
SQLite's write lock or an fsync: it goes on serving other requests while the commit happens.
One SQL path still serves both (no method written twice, sync and async); the threads are the
price, a few microseconds per call.

    async with await AsyncClient.open("durableq.db") as queue:
        job_id = await queue.enqueue("email.send", {"to": "ada@example.com"})
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from durableq.client import Client
from durableq.core.config import Settings
from durableq.core.history import History, Window
from durableq.core.jobs import Job, JobError, JobStatus, NewJob
from durableq.core.queues import QueueInfo, Rate
from durableq.core.schedules import ScheduleInfo
from durableq.core.uniqueness import Enqueued
from durableq.store.records import UNSET, Leader, Stats, WorkerInfo

T = TypeVar("T")
THREADS = 4


class AsyncClient:
    def __init__(self, client: Client, threads: int = THREADS) -> None:
        self.client = client
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="durableq-async")

    @classmethod
    async def open(
        cls, database: str | Settings | None = None, *, create: bool = True
    ) -> AsyncClient:
        """Open (and with `create`, make or upgrade) the database, off the event loop."""
        client = await asyncio.to_thread(Client.open, database, create=create)
        return cls(client)

    async def close(self) -> None:
        await self._run(self.client.close)
        self._pool.shutdown(wait=False)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))

    # -- producing ------------------------------------------------------------------------

    async def enqueue(
        self, type: str, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> int:
        """As Client.enqueue (the same options); returns once the job is committed."""
        return await self._run(self.client.enqueue, type, payload, **options)

    async def enqueue_many(self, jobs: Iterable[NewJob | Mapping[str, Any]]) -> Enqueued:
        return await self._run(self.client.enqueue_many, list(jobs))

    # -- managing -------------------------------------------------------------------------

    async def get(self, job_id: int | str) -> Job:
        return await self._run(self.client.get, job_id)

    async def errors(self, job_id: int | str) -> list[JobError]:
        return await self._run(self.client.errors, job_id)

    async def cancel(self, job_id: int | str) -> Job:
        return await self._run(self.client.cancel, job_id)

    async def retry(self, job_id: int | str) -> Job:
        return await self._run(self.client.retry, job_id)

    async def delete(self, job_id: int | str) -> Job:
        return await self._run(self.client.delete, job_id)

    async def jobs(self, **filters: Any) -> list[Job]:
        """As Client.jobs (statuses, queues, types, limit, before_id, payload_contains, ...)."""
        return await self._run(self.client.jobs, **filters)

    async def count_jobs(self, **filters: Any) -> int:
        return await self._run(self.client.count_jobs, **filters)

    async def wait(self, job_id: int | str, timeout: float | None = None) -> Job:
        """Until the job is finished or `timeout` passes (a pool thread waits, not the loop)."""
        return await self._run(self.client.wait, job_id, timeout)

    async def purge(self, older_than: float, statuses: Sequence[JobStatus | str] = ()) -> int:
        return await self._run(self.client.purge, older_than, statuses)

    # -- figures --------------------------------------------------------------------------

    async def stats(self) -> Stats:
        return await self._run(self.client.stats)

    async def history(self, window: str | Window = "1h", queues: Sequence[str] = ()) -> History:
        return await self._run(self.client.history, window, queues)

    async def workers(self) -> list[WorkerInfo]:
        return await self._run(self.client.workers)

    async def leader(self) -> Leader | None:
        return await self._run(self.client.leader)

    async def schedules(self) -> list[ScheduleInfo]:
        return await self._run(self.client.schedules)

    # -- queues ---------------------------------------------------------------------------

    async def queues(self) -> list[QueueInfo]:
        return await self._run(self.client.queues)

    async def queue(self, name: str) -> QueueInfo:
        return await self._run(self.client.queue, name)

    async def pause_queue(self, name: str) -> QueueInfo:
        return await self._run(self.client.pause_queue, name)

    async def resume_queue(self, name: str) -> QueueInfo:
        return await self._run(self.client.resume_queue, name)

    async def set_queue(
        self,
        name: str,
        *,
        concurrency: int | None = UNSET,
        max_pending: int | None = UNSET,
        rate: Rate | str | None = UNSET,
    ) -> QueueInfo:
        return await self._run(
            self.client.set_queue,
            name,
            concurrency=concurrency,
            max_pending=max_pending,
            rate=rate,
        )

    # -- the clock, for callers that build times -----------------------------------------

    def clock(self) -> datetime:
        return self.client.clock()
