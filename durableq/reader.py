"""The read side of the library API (jobs, errors, stats, queues, workers, the leader) on any
store that can read, without SQLAlchemy: the Client inherits it, and the CLI's read commands use
it directly on a ready SQLite file (store/sqlite/ready.py), which spares them the import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from durableq.core.builder import Clock, JobBuilder, parse_job_id, parse_status, utc_now
from durableq.core.config import Settings
from durableq.core.errors import InvalidInput
from durableq.core.jobs import Job, JobError, JobStatus
from durableq.core.queues import QueueInfo, parse_queue_name
from durableq.store.records import JobFilter, Leader, Stats, WorkerInfo


class ReadStore(Protocol):
    """What every store reads (store/api.Store has all of it)."""

    def get(self, job_id: int) -> Job: ...
    def errors(self, job_id: int) -> list[JobError]: ...
    def list_jobs(self, where: JobFilter, limit: int, offset: int = 0) -> list[Job]: ...
    def count_jobs(self, where: JobFilter, cap: int) -> int: ...
    def stats(self, now: datetime) -> Stats: ...
    def queues(self, now: datetime, names: Sequence[str] = ()) -> list[QueueInfo]: ...
    def queue(self, name: str, now: datetime) -> QueueInfo: ...
    def list_workers(self, now: datetime, default_lease: float) -> list[WorkerInfo]: ...
    def leader(self, now: datetime) -> Leader | None: ...


class Reader(JobBuilder):
    def __init__(self, settings: Settings, store: ReadStore, clock: Clock = utc_now) -> None:
        super().__init__(settings, clock)
        self.store = store

    def get(self, job_id: int | str) -> Job:
        return self.store.get(parse_job_id(job_id))

    def errors(self, job_id: int | str) -> list[JobError]:
        job = self.get(job_id)
        return self.store.errors(job.id)

    def jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        queues: Sequence[str] = (),
        types: Sequence[str] = (),
        limit: int = 50,
        offset: int = 0,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        before_id: int | None = None,
        payload_contains: str | None = None,
    ) -> list[Job]:
        """Newest first. `before_id` pages by keyset: the jobs older than that id;
        `payload_contains`: text found anywhere in the payload's JSON (case as given)."""
        if limit < 1 or offset < 0:
            raise InvalidInput("limit must be at least 1 and offset not negative")
        where = job_filter(
            statuses, queues, types, created_after, created_before, before_id, payload_contains
        )
        return self.store.list_jobs(where, limit, offset)

    def count_jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        queues: Sequence[str] = (),
        types: Sequence[str] = (),
        payload_contains: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        cap: int = 10_000,
    ) -> int:
        """How many jobs match, up to `cap` (a count scans: it stops there)."""
        where = job_filter(
            statuses,
            queues,
            types,
            created_after,
            created_before,
            payload_contains=payload_contains,
        )
        return self.store.count_jobs(where, cap)

    def stats(self) -> Stats:
        return self.store.stats(self.clock())

    def workers(self) -> list[WorkerInfo]:
        return self.store.list_workers(self.clock(), self.settings.lease)

    def leader(self) -> Leader | None:
        """The daemon that leads now (runs the rescuer, the pruner and the reaper), if any."""
        return self.store.leader(self.clock())

    def queues(self) -> list[QueueInfo]:
        """Every queue with a row or a job: controls, pending and running counts, oldest wait."""
        return self.store.queues(self.clock())

    def queue(self, name: str) -> QueueInfo:
        return self.store.queue(parse_queue_name(name), self.clock())


def job_filter(
    statuses: Sequence[JobStatus | str] = (),
    queues: Sequence[str] = (),
    types: Sequence[str] = (),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    before_id: int | None = None,
    payload_contains: str | None = None,
) -> JobFilter:
    return JobFilter(
        statuses=tuple(parse_status(status) for status in statuses),
        queues=tuple(queues),
        types=tuple(types),
        created_after=created_after,
        created_before=created_before,
        before_id=before_id,
        payload_contains=payload_contains or None,
    )
