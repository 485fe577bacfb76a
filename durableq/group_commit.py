"""Group commit: concurrent submissions share one transaction, and so one fsync.

At FULL durability every commit waits for the disk (2-4 ms here), and SQLite has one writer:
requests that each commit alone queue behind each other's fsync, and their turns at the lock
are jittered sleeps. One writer thread instead takes everything that arrived while its previous
commit was in flight and commits it at once. Each submission is answered only once its own jobs
are committed, so a `201` still means durable.

A submission that cannot be stored (a full queue, an idempotency key with another body) must
not take its neighbours down with it: when a group's transaction is refused for such a reason,
the writer commits the group's submissions one by one, so each gets its own answer. Errors of
the database itself (busy, unavailable, full disk) apply to all and are given to all.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from durableq.client import Client
from durableq.core.errors import DatabaseError, DurableqError
from durableq.core.jobs import Job, NewJob, as_stored
from durableq.core.uniqueness import Enqueued

log = logging.getLogger("durableq.group_commit")

MAX_GROUP_JOBS = 10_000  # the largest batch a request may carry: one group at most that size


class WriterClosed(DurableqError):
    """The writer is stopping (the server drains): the submission was not stored."""


@dataclass(frozen=True)
class Submitted:
    """What a submission became: its ids (and duplicates), and the stored jobs when asked for
    (None if reading them back failed after the commit: the jobs are stored all the same)."""

    enqueued: Enqueued
    jobs: list[Job] | None


@dataclass
class _Submission:
    jobs: Sequence[NewJob]
    read_back: bool
    future: Future[Submitted] = field(default_factory=Future)


class GroupCommit:
    """One writer thread for a client's enqueues. Thread-safe; `submit` returns at once."""

    def __init__(self, client: Client, max_group_jobs: int = MAX_GROUP_JOBS) -> None:
        self._client = client
        self._max_jobs = max_group_jobs
        self._waiting: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.commits = 0  # transactions committed, for tests and metrics
        self.submissions = 0

    def submit(self, jobs: Sequence[NewJob], *, read_back: bool = False) -> Future[Submitted]:
        """Queue jobs for the next group; the future resolves once they are committed (or with
        the error that kept them out)."""
        submission = _Submission(jobs, read_back)
        with self._lock:
            if self._closed:
                raise WriterClosed("the server is shutting down: submit the job again later")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="durableq-group-commit", daemon=True
                )
                self._thread.start()
            self._waiting.put(submission)
        return submission.future

    def open(self) -> None:
        """Take submissions (again, after a close: an app's lifespan may run more than once)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._closed, self._thread = False, None

    def close(self, timeout: float | None = None) -> None:
        """Refuse new submissions, commit those already queued, stop the writer."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._waiting.put(None)
        if thread is not None:
            thread.join(timeout)

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._waiting.get()
            if first is None:
                return
            group, size = [first], len(first.jobs)
            while size < self._max_jobs:
                try:
                    more = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True  # commit what came before the stop, then end
                    break
                group.append(more)
                size += len(more.jobs)
            self._commit(group)

    def _commit(self, group: list[_Submission]) -> None:
        now = self._client.clock()
        try:
            enqueued = self._client.store.enqueue_many(
                [job for each in group for job in each.jobs], now
            )
        except DatabaseError as error:
            _fail(group, error)
            return
        except DurableqError as error:
            if len(group) == 1:
                _fail(group, error)
            else:
                for each in group:  # one refused the group: each on its own, for its own answer
                    self._commit([each])
            return
        except BaseException as error:  # a bug: answer every request rather than hang them
            log.exception("group commit failed")
            _fail(group, error)
            return
        self.commits += 1
        self.submissions += len(group)
        self._answer(group, enqueued, now)

    def _answer(self, group: list[_Submission], enqueued: Enqueued, now: datetime) -> None:
        twins = self._twins(group, enqueued)
        offset = 0
        for each in group:
            end = offset + len(each.jobs)
            ids = enqueued[offset:end]
            duplicates = frozenset(i - offset for i in enqueued.duplicates if offset <= i < end)
            jobs = None
            if each.read_back and twins is not None:
                jobs = [
                    twins[job_id] if i in duplicates else as_stored(new, job_id, now)
                    for i, (new, job_id) in enumerate(zip(each.jobs, ids, strict=True))
                ]
            each.future.set_result(Submitted(Enqueued(ids, duplicates), jobs))
            offset = end

    def _twins(self, group: list[_Submission], enqueued: Enqueued) -> dict[int, Job] | None:
        """The existing jobs that duplicates resolved to, for the submissions that want jobs
        back (a new job is known without reading it: core.jobs.as_stored)."""
        offset, wanted = 0, list[int]()
        for each in group:
            if each.read_back:
                wanted += [
                    enqueued[i]
                    for i in enqueued.duplicates
                    if offset <= i < offset + len(each.jobs)
                ]
            offset += len(each.jobs)
        if not wanted:
            return {}
        try:
            return {job.id: job for job in self._client.store.get_many(wanted)}
        except DurableqError as error:  # committed all the same: the caller reads them itself
            log.warning("reading back %d committed jobs failed: %s", len(wanted), error)
            return None


def _fail(group: list[_Submission], error: BaseException) -> None:
    for each in group:
        each.future.set_exception(error)
