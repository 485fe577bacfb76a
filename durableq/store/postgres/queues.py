"""The queue controls on PostgreSQL: admitting new jobs (max_pending) and what a claim may take.

The rows of controlled queues are locked (FOR UPDATE) before counting, so two daemons' claims, or
two producers' enqueues, cannot both see room that only one of them may take.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, or_, select, update

from durableq.core.errors import QueueFull
from durableq.core.jobs import NewJob
from durableq.core.queues import QueueControls, Rate
from durableq.store.core.base import RUNNING, J
from durableq.store.core.queues import Q, ensure_queue_rows
from durableq.store.schema import PENDING_ONLY, jobs_table, queues_table


def admit(connection: Connection, jobs: Sequence[NewJob], now: datetime) -> None:
    """Refuse (QueueFull) a batch for which a queue with max_pending has no room."""
    adding = collections.Counter(job.queue for job in jobs)
    ensure_queue_rows(connection, sorted(adding), now)
    bounded = connection.execute(
        select(Q.name).where(Q.name.in_(sorted(adding)), Q.max_pending.is_not(None))
    ).scalars()
    for name in sorted(bounded):
        # Locked, then counted: concurrent producers take turns on a bounded queue.
        max_pending = connection.execute(
            select(Q.max_pending).where(Q.name == name).with_for_update()
        ).scalar_one()
        if max_pending is None:
            continue
        pending = connection.execute(
            select(func.count()).select_from(jobs_table).where(PENDING_ONLY, J.queue == name)
        ).scalar_one()
        if pending + adding[name] > max_pending:
            raise QueueFull(name, int(pending), int(max_pending), adding[name])


def read_controls(connection: Connection, listened: Sequence[str]) -> list[QueueControls]:
    """The limited queues' rows, locked on PostgreSQL until the claim commits."""
    query = select(
        Q.name, Q.paused_at, Q.concurrency, Q.rate_count, Q.rate_period, Q.rate_burst, Q.rate_tat
    ).where(or_(Q.paused_at.is_not(None), Q.concurrency.is_not(None), Q.rate_count.is_not(None)))
    if listened:
        query = query.where(Q.name.in_(list(listened)))
    rows = connection.execute(query.order_by(Q.name).with_for_update()).all()
    return [
        QueueControls(
            name=row.name,
            paused=row.paused_at is not None,
            concurrency=row.concurrency,
            rate=Rate.from_columns(row.rate_count, row.rate_period, row.rate_burst),
            rate_tat=row.rate_tat,
        )
        for row in rows
    ]


def running_counts(connection: Connection, names: Sequence[str]) -> dict[str, int]:
    if not names:
        return {}
    rows = connection.execute(
        select(J.queue, func.count())
        .where(J.status == RUNNING, J.queue.in_(list(names)))
        .group_by(J.queue)
    ).all()
    return {queue: int(count) for queue, count in rows}


def set_tat(connection: Connection, name: str, tat: float) -> None:
    connection.execute(update(queues_table).where(Q.name == name).values(rate_tat=tat))
