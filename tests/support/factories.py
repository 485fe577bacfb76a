"""Rows in any state, inserted straight into the tables: for testing guards the API cannot reach.

The store only ever creates pending jobs; to check what it does to a job in every status,
tests need rows that look like ones a worker left behind (running with a lease, finished, ...).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from durableq.core.jobs import TERMINAL_STATUSES, JobStatus
from durableq.store.schema import job_errors_table, jobs_table

T0 = datetime(2026, 1, 31, 9, 30, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """An instant `seconds` after T0: tests pass time explicitly instead of sleeping."""
    return T0 + timedelta(seconds=seconds)


def insert_job(engine: Engine, status: JobStatus = JobStatus.PENDING, **columns: Any) -> int:
    """Insert one job row in `status` with plausible columns for that status; returns its id.

    A running job gets a worker, a lease token and a lease expiring 30 s after `created_at`;
    a finished one gets `finished_at`. Any column can be overridden, including with values that
    do not fit the status (e.g. a lease token on a pending row, to test a status guard alone).
    The keyword arguments are `insert_jobs`'.
    """
    return insert_jobs(engine, 1, status, **columns)[0]


def insert_jobs(
    engine: Engine,
    count: int,
    status: JobStatus = JobStatus.PENDING,
    *,
    job_type: str = "noop",
    queue: str = "default",
    payload: dict[str, Any] | None = None,
    priority: int = 0,
    attempts: int | None = None,
    max_attempts: int = 3,
    run_at: datetime = T0,
    created_at: datetime = T0,
    finished_at: datetime | None = None,
    worker_id: str | None = None,
    lease_token: str | None = None,
    lease_expires_at: datetime | None = None,
    cancel_requested: bool = False,
    **overrides: Any,
) -> list[int]:
    """`count` rows like `insert_job`'s, in one transaction; returns their ids in order."""
    running = status is JobStatus.RUNNING
    if attempts is None:
        attempts = 0 if status is JobStatus.PENDING else 1
    if running:
        worker_id = worker_id or "factory-worker"
        lease_token = lease_token or uuid.uuid4().hex  # one token: as if claimed together
        lease_expires_at = lease_expires_at or created_at + timedelta(seconds=30)
    if finished_at is None and status in TERMINAL_STATUSES:
        finished_at = created_at
    row: dict[str, Any] = {
        "queue": queue,
        "type": job_type,
        "payload": '{"factory":true}' if payload is None else _json(payload),
        "status": status.value,
        "priority": priority,
        "attempts": attempts,
        "max_attempts": max_attempts,
        "timeout": None,
        "run_at": run_at,
        "created_at": created_at,
        "updated_at": created_at,
        "started_at": created_at if status is not JobStatus.PENDING else None,
        "finished_at": finished_at,
        "cancel_requested": cancel_requested,
        "worker_id": worker_id,
        "lease_token": lease_token,
        "lease_expires_at": lease_expires_at,
    }
    row.update(overrides)
    statement = insert(jobs_table).returning(jobs_table.c.id, sort_by_parameter_order=True)
    with engine.begin() as connection:
        return [int(r[0]) for r in connection.execute(statement, [row] * count)]


def insert_error(engine: Engine, job_id: int, attempt: int, error: str = "boom") -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(job_errors_table).values(
                job_id=job_id, attempt=attempt, error=error, traceback=None, failed_at=T0
            )
        )


def raw_row(engine: Engine, job_id: int) -> dict[str, Any] | None:
    """Every column of a job as stored, or None when the row is gone."""
    with engine.connect() as connection:
        row = connection.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
    return None if row is None else dict(row._mapping)


def error_count(engine: Engine, job_id: int | None = None) -> int:
    query = select(job_errors_table.c.id)
    if job_id is not None:
        query = query.where(job_errors_table.c.job_id == job_id)
    with engine.connect() as connection:
        return len(connection.execute(query).all())


def _json(value: dict[str, Any]) -> str:
    from durableq.core.payloads import encode_payload

    return encode_payload(value)


def finished_ago(
    client: Any,
    n: int,
    status: JobStatus,
    ago: timedelta,
    *,
    errors: int = 0,
    queue: str = "default",
) -> list[int]:
    """`n` jobs that finished `ago` before the client's clock (ran 2 s, waited 1 s), each with
    `errors` failed attempts in its history at its finish time."""
    end = client.clock() - ago
    ids = insert_jobs(
        client.engine,
        n,
        status,
        queue=queue,
        created_at=end - timedelta(seconds=5),
        run_at=end - timedelta(seconds=3),
        started_at=end - timedelta(seconds=2),
        finished_at=end,
    )
    with client.engine.begin() as connection:
        for job_id in ids:
            for attempt in range(1, errors + 1):
                connection.execute(
                    insert(job_errors_table).values(
                        job_id=job_id, attempt=attempt, error="boom", failed_at=end
                    )
                )
    return ids
