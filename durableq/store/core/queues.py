"""Managing queues in SQLAlchemy Core, on every dialect: their rows, pause, resume, limits and
the list with counts. What the claim and the enqueue check is each store's own (postgres/queues.py,
sqlite/queues.py).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from durableq.core.queues import QueueInfo, Rate, check_limit, named
from durableq.store.core.base import PENDING, RUNNING, CoreBase, J
from durableq.store.records import UNSET
from durableq.store.schema import (
    PENDING_ONLY,
    RUNNING_ONLY,
    UTCDateTime,
    queues_table,
)

Q = queues_table.c


def ensure_queue_rows(connection: Connection, names: Sequence[str], now: datetime) -> None:
    """Create the rows of queues not seen before (no-op for known ones)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    rows = [{"name": name, "created_at": now, "updated_at": now} for name in names]
    statement = dialect.insert(queues_table).on_conflict_do_nothing(index_elements=["name"])
    connection.execute(statement, rows)


class QueueOps(CoreBase):
    """Operators' side of queues: pause, resume, limits, and the list with counts."""

    def pause_queue(self, name: str, now: datetime) -> QueueInfo:
        with self._write() as connection:
            ensure_queue_rows(connection, [name], now)
            connection.execute(
                update(queues_table)
                .where(Q.name == name, Q.paused_at.is_(None))
                .values(paused_at=now, updated_at=now)
            )
        return self.queue(name, now)

    def resume_queue(self, name: str, now: datetime) -> QueueInfo:
        with self._write() as connection:
            ensure_queue_rows(connection, [name], now)
            connection.execute(
                update(queues_table).where(Q.name == name).values(paused_at=None, updated_at=now)
            )
            self._notify(connection)
        return self.queue(name, now)

    def set_queue(
        self,
        name: str,
        now: datetime,
        *,
        concurrency: int | None = UNSET,
        max_pending: int | None = UNSET,
        rate: Rate | None = UNSET,
    ) -> QueueInfo:
        values: dict[str, Any] = {"updated_at": now}
        if concurrency is not UNSET:
            values["concurrency"] = check_limit(concurrency, "concurrency")
        if max_pending is not UNSET:
            values["max_pending"] = check_limit(max_pending, "max_pending")
        if rate is not UNSET:
            values.update(
                rate_count=None if rate is None else rate.count,
                rate_period=None if rate is None else rate.period,
                rate_burst=None if rate is None else rate.burst,
                rate_tat=None,  # a new rate starts with a full bucket
            )
        with self._write() as connection:
            ensure_queue_rows(connection, [name], now)
            connection.execute(update(queues_table).where(Q.name == name).values(**values))
            self._notify(connection)  # a raised limit may let waiting jobs start
        return self.queue(name, now)

    def queue(self, name: str, now: datetime) -> QueueInfo:
        return named(self.queues(now, names=[name]), name)

    def queues(self, now: datetime, names: Sequence[str] = ()) -> list[QueueInfo]:
        """Every queue with a row or a job, by name, with its counts."""
        with self._read() as connection:
            query = select(queues_table)
            if names:
                query = query.where(Q.name.in_(list(names)))
            rows = {row.name: row for row in connection.execute(query)}
            tallies: dict[str, dict[str, int]] = collections.defaultdict(dict)
            # One status at a time, as literal SQL, so that each count reads its partial index
            # (pending or running rows only), never the finished history.
            for status, only in ((PENDING, PENDING_ONLY), (RUNNING, RUNNING_ONLY)):
                counts = select(J.queue, func.count()).where(only)
                if names:
                    counts = counts.where(J.queue.in_(list(names)))
                for queue, n in connection.execute(counts.group_by(J.queue)):
                    tallies[queue][status] = int(n)
            oldest_query = (
                select(J.queue, func.min(J.run_at))
                .where(PENDING_ONLY, J.run_at <= now)
                .group_by(J.queue)
            )
            if names:
                oldest_query = oldest_query.where(J.queue.in_(list(names)))
            oldest = {q: t for q, t in connection.execute(oldest_query)}
        result = []
        for name in sorted(set(rows) | set(tallies)):
            row = rows.get(name)
            due = oldest.get(name)
            wait = None if due is None else max(0.0, (now - _aware(due)).total_seconds())
            result.append(
                QueueInfo(
                    name=name,
                    paused_at=None if row is None else row.paused_at,
                    concurrency=None if row is None else row.concurrency,
                    max_pending=None if row is None else row.max_pending,
                    rate=None
                    if row is None
                    else Rate.from_columns(row.rate_count, row.rate_period, row.rate_burst),
                    pending=tallies[name].get(PENDING, 0),
                    running=tallies[name].get(RUNNING, 0),
                    oldest_due_wait=wait,
                )
            )
        return result


def _aware(value: Any) -> datetime:
    converted = UTCDateTime().process_result_value(value, sqlite.dialect())
    assert converted is not None
    return converted


__all__ = ["QueueOps", "ensure_queue_rows"]
