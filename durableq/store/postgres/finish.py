"""A batch of outcomes in one UPDATE on PostgreSQL, not one UPDATE (and round trip) each.

The outcomes travel as parallel arrays, unnested into rows joined to the jobs they finish; each
row is fenced by its lease token and the status guard as the one-row statement was. The rows the
UPDATE returns are the outcomes that applied; the others were stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Float,
    Integer,
    Text,
    Update,
    and_,
    bindparam,
    case,
    column,
    func,
    literal,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from durableq.core.jobs import JobStatus
from durableq.core.outcomes import FINISH_ACTIONS, Finish
from durableq.store.core.base import PENDING, J, status_guard
from durableq.store.schema import UTCDateTime, jobs_table

# The columns of one outcome, in the order of the arrays.
FIELDS: tuple[tuple[str, Any], ...] = (
    ("job_id", BigInteger()),
    ("token", Text()),
    ("status", Text()),
    ("finished_at", DateTime(timezone=True)),
    ("result", Text()),
    ("error", Text()),
    ("run_at", DateTime(timezone=True)),
    ("attempt_delta", Integer()),
    ("progress", Float()),
    ("progress_message", Text()),
    ("meta", Text()),
    ("started_at", DateTime(timezone=True)),
)


def finish_statement() -> Update:
    arrays = [bindparam(name, type_=ARRAY(kind)) for name, kind in FIELDS]
    rows = (
        func.unnest(*arrays)
        .table_valued(*(column(name, kind) for name, kind in FIELDS))
        .render_derived(with_types=False)
        .alias("outcome")
    )
    o = rows.c
    now = bindparam("now", type_=UTCDateTime())
    # A job whose cancel was requested ends canceled instead of going back to pending.
    ends_canceled = and_(J.cancel_requested, o.status == PENDING)
    return (
        update(jobs_table)
        .where(J.id == o.job_id, J.lease_token == o.token, status_guard(*FINISH_ACTIONS))
        .values(
            status=case((ends_canceled, literal(JobStatus.CANCELED.value)), else_=o.status),
            finished_at=case((ends_canceled, now), else_=o.finished_at),
            result=o.result,
            last_error=func.coalesce(o.error, J.last_error),
            run_at=func.coalesce(o.run_at, J.run_at),
            attempts=J.attempts + o.attempt_delta,
            updated_at=now,
            progress=func.coalesce(o.progress, J.progress),
            progress_message=func.coalesce(o.progress_message, J.progress_message),
            meta=func.coalesce(o.meta, J.meta),
            started_at=func.coalesce(o.started_at, J.started_at),
            worker_id=None,
            lease_token=None,
            lease_expires_at=None,
        )
        .returning(J.id, o.token)  # the token: two outcomes of one job may share a batch
    )


def finish_all(
    connection: Connection, statement: Update, finishes: Sequence[Finish], now: datetime
) -> set[tuple[int, str]]:
    """Apply the outcomes; returns those that applied, as (job id, lease token) (the rest were
    stale)."""
    values: dict[str, list[Any]] = {name: [] for name, _ in FIELDS}
    for item in finishes:
        row = (
            item.job_id,
            item.lease_token,
            item.status.value,
            now if item.finished else None,
            item.result_json,
            item.error,
            item.run_at,
            item.attempt_delta,
            item.report.progress,
            item.report.progress_message,
            item.report.meta_json,
            item.started_at,
        )
        for (name, _), value in zip(FIELDS, row, strict=True):
            values[name].append(value)
    applied = connection.execute(statement, {**values, "now": now}).all()
    return {(int(job_id), token) for job_id, token in applied}
