"""The throughput history: rolling finished jobs up into minutes, and reading them back.

The rollup reads settled minutes (ended long enough ago that no transaction still in flight can
add a job finished in them) outside any write transaction, then writes them in one short
transaction that moves `rollups.rolled_up_to` on by compare-and-set: two rollups racing write
each minute once, and a rollup killed mid-way leaves nothing half-done.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    delete,
    extract,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)

from durableq.core.history import MINUTE, MinuteCount, Outcome, RollupReport, floor_minute
from durableq.core.jobs import JobStatus
from durableq.store.core.base import CoreBase, E, J
from durableq.store.schema import (
    UTCDateTime,
    job_errors_table,
    job_minutes_table,
    jobs_table,
    rollups_table,
)

M = job_minutes_table.c
R = rollups_table.c
ROLLUP = "job_minutes"
SPAN = timedelta(hours=6)  # minutes read per statement on catching up
FLUSH_ROWS = 5000  # rows written per transaction on catching up

_FINISHED = {
    JobStatus.COMPLETED.value: Outcome.COMPLETED,
    JobStatus.FAILED.value: Outcome.FAILED,
    JobStatus.CANCELED.value: Outcome.CANCELED,
}


class HistoryOps(CoreBase):
    def roll_up(self, now: datetime, settle: float, keep: float) -> RollupReport:
        """Add every settled minute not yet in the history; forget minutes older than `keep`.

        A minute is settled once it ended `settle` seconds ago. The first run starts at the
        oldest job (or failed attempt) still in the table within `keep`.
        """
        cutoff = floor_minute(now - timedelta(seconds=settle))
        oldest = now - timedelta(seconds=keep)
        with self._read() as connection:
            done = self._watermark(connection)
            start = done if done is not None else self._first_minute(connection, oldest, cutoff)
        position, rows, minutes = start, 0, 0
        pending: list[MinuteCount] = []
        while position < cutoff:
            end = min(cutoff, position + SPAN)
            with self._read() as connection:
                pending += self._minutes(connection, position, end)
            minutes += int((end - position) / MINUTE)
            position = end
            if len(pending) >= FLUSH_ROWS or position >= cutoff:
                if not self._write_minutes(done, position, pending):
                    return RollupReport(minutes=minutes, rows=rows)  # another rollup did it
                done, rows, pending = position, rows + len(pending), []
        # The retention's edge moves as the watermark does: nothing new to forget otherwise.
        pruned = self._forget_before(floor_minute(oldest)) if keep > 0 and minutes else 0
        return RollupReport(rolled_up_to=done, minutes=minutes, rows=rows, pruned=pruned)

    def history(
        self, since: datetime, until: datetime, queues: Sequence[str] = ()
    ) -> tuple[list[MinuteCount], datetime | None]:
        """The minutes in [since, until), summed over queues (only `queues` if given) and
        types; and how far the rollup has got."""
        query = (
            select(M.minute, M.outcome, func.sum(M.count), func.sum(M.duration), func.sum(M.wait))
            .where(M.minute >= since, M.minute < until)
            .group_by(M.minute, M.outcome)
        )
        if queues:
            query = query.where(M.queue.in_(list(queues)))
        with self._read() as connection:
            rows = connection.execute(query).all()
            done = self._watermark(connection)
        return [
            MinuteCount(
                minute=_aware(row[0], self.engine.dialect),
                queue="",
                type="",
                outcome=Outcome(row[1]),
                count=int(row[2]),
                duration=float(row[3]),
                wait=float(row[4]),
            )
            for row in rows
        ], done

    # -- parts ----------------------------------------------------------------------------

    def _watermark(self, connection: Connection) -> datetime | None:
        """Every minute before this is in the history (None: no rollup has run yet)."""
        done = connection.execute(select(R.rolled_up_to).where(R.name == ROLLUP)).scalar()
        return UTCDateTime().process_result_value(done, self.engine.dialect)

    def _first_minute(self, connection: Connection, oldest: datetime, cutoff: datetime) -> datetime:
        first_finish = connection.execute(
            select(func.min(J.finished_at)).where(J.finished_at >= oldest)
        ).scalar()
        first_error = connection.execute(
            select(func.min(E.failed_at)).where(E.failed_at >= oldest)
        ).scalar()
        found = [
            _aware(value, self.engine.dialect)
            for value in (first_finish, first_error)
            if value is not None
        ]
        return floor_minute(min(found)) if found else cutoff

    def _minutes(self, connection: Connection, start: datetime, end: datetime) -> list[MinuteCount]:
        """The jobs that finished, and the attempts that failed, in [start, end), by minute."""
        finished = connection.execute(
            select(
                self._minute_of(J.finished_at),
                J.queue,
                J.type,
                J.status,
                func.count(),
                func.coalesce(func.sum(self._seconds(J.started_at, J.finished_at)), 0.0),
                func.coalesce(func.sum(self._seconds(J.run_at, J.started_at)), 0.0),
            )
            .where(J.finished_at >= start, J.finished_at < end)
            .group_by(self._minute_of(J.finished_at), J.queue, J.type, J.status)
        ).all()
        errored = connection.execute(
            select(self._minute_of(E.failed_at), J.queue, J.type, func.count())
            .select_from(job_errors_table.join(jobs_table, J.id == E.job_id))
            .where(E.failed_at >= start, E.failed_at < end)
            .group_by(self._minute_of(E.failed_at), J.queue, J.type)
        ).all()
        dialect = self.engine.dialect
        counts = [
            MinuteCount(_aware(minute, dialect), queue, type_, _FINISHED[status], n, duration, wait)
            for minute, queue, type_, status, n, duration, wait in finished
            if status in _FINISHED
        ]
        counts += [
            MinuteCount(_aware(minute, dialect), queue, type_, Outcome.ERRORED, n)
            for minute, queue, type_, n in errored
        ]
        return counts

    def _write_minutes(
        self, done: datetime | None, position: datetime, counts: list[MinuteCount]
    ) -> bool:
        """Move the watermark from `done` to `position` and add `counts`, or nothing at all."""
        with self._write() as connection:
            guard = R.rolled_up_to.is_(None) if done is None else R.rolled_up_to == done
            moved = connection.execute(
                update(rollups_table)
                .where(R.name == ROLLUP, guard)
                .values(rolled_up_to=literal(position, UTCDateTime()))
            ).rowcount
            if not moved:
                return False
            if counts:
                connection.execute(insert(job_minutes_table), [_row(count) for count in counts])
        return True

    def _forget_before(self, cutoff: datetime) -> int:
        with self._write() as connection:
            return int(
                connection.execute(delete(job_minutes_table).where(M.minute < cutoff)).rowcount
            )

    def _minute_of(self, column: Any) -> ColumnElement[Any]:
        if self.dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (timestamps.py)
            return func.substr(column, 1, 16)
        # A literal, not a bound parameter: GROUP BY must repeat the very same expression.
        return func.date_trunc(literal_column("'minute'"), column)

    def _seconds(self, start: Any, end: Any) -> ColumnElement[Any]:
        if self.dialect == "sqlite":
            return (func.julianday(end) - func.julianday(start)) * 86400.0
        return extract("epoch", end - start)


def _aware(value: Any, dialect: Any) -> datetime:
    if isinstance(value, str) and len(value) == 16:  # a SQLite minute: 'YYYY-MM-DD HH:MM'
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    decoded = UTCDateTime().process_result_value(value, dialect)
    assert decoded is not None
    return decoded


def _row(count: MinuteCount) -> dict[str, Any]:
    return {
        "minute": count.minute,
        "queue": count.queue,
        "type": count.type,
        "outcome": count.outcome.value,
        "count": count.count,
        "duration": count.duration,
        "wait": count.wait,
    }
