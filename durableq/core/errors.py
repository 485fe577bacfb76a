"""Every error durableq raises on purpose descends from DurableqError.

The CLI translates these, once, into a single stderr line and an exit code: `exit_code` 2 means
the caller gave bad input or usage, 1 means the operation could not be carried out.
"""

from __future__ import annotations


class DurableqError(Exception):
    exit_code = 1


class InvalidInput(DurableqError):
    """The caller supplied something malformed: JSON, a duration, a date, an option."""

    exit_code = 2


class JobNotFound(DurableqError):
    exit_code = 2

    def __init__(self, job_id: int | str) -> None:
        super().__init__(f"no job with id {job_id}; list jobs with `durableq jobs list`")
        self.job_id = job_id


class InvalidTransition(DurableqError):
    exit_code = 2

    def __init__(self, job_id: int | None, action: str, status: str, hint: str = "") -> None:
        subject = f"job {job_id}" if job_id is not None else "job"
        message = f"cannot {action} {subject}: it is {status}"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.job_id = job_id
        self.action = action
        self.status = status


class HandlerNotFound(DurableqError):
    exit_code = 2


class DatabaseError(DurableqError):
    """The database cannot be used: not SQLite, corrupt, unreachable, read-only."""


class DatabaseBusy(DatabaseError):
    """The write lock could not be had within the busy timeout."""


class DiskFull(DatabaseError):
    """The disk (or the database's size limit) is full: nothing was written."""


class SchemaTooNew(DatabaseError):
    pass


class SchemaOutdated(DatabaseError):
    pass


class QueueFull(DurableqError):
    """Backpressure: the queue holds `max_pending` pending jobs already. Nothing was written."""

    def __init__(self, queue: str, pending: int, max_pending: int, adding: int = 1) -> None:
        extra = f", and the batch adds {adding}" if adding > 1 else ""
        super().__init__(
            f'queue "{queue}" is full: {pending} pending, max {max_pending}{extra}; retry later'
        )
        self.queue = queue
        self.pending = pending
        self.max_pending = max_pending


class IdempotencyConflict(InvalidInput):
    """An idempotency key reused for another job. Nothing was written."""

    def __init__(self, key: str, job_id: int | None, differs: str) -> None:
        owner = f"job {job_id}" if job_id is not None else "an earlier job of this batch"
        super().__init__(
            f'idempotency key "{key}" belongs to {owner}, which has another {differs}; '
            "use a new key for a new job"
        )
        self.key = key
        self.job_id = job_id


class UniqueConflict(DurableqError):
    """A job cannot come back into its unique states: a twin holds its unique key."""

    exit_code = 2

    def __init__(self, job_id: int, twin_id: int | None) -> None:
        twin = f"job {twin_id}" if twin_id is not None else "a twin"
        super().__init__(
            f"cannot retry job {job_id}: {twin} holds its unique key; wait for {twin} to "
            "finish, or cancel it"
        )
        self.job_id = job_id
        self.twin_id = twin_id
