"""Electing one leader among the daemons on a database: a lease row with a term.

Taking or keeping the lead is one guarded UPDATE: it succeeds for the holder, or for anyone once
the holder's lease has passed, and bumps the term when the holder changes. On PostgreSQL two
daemons racing for it serialise on the row lock, and the second re-checks the guard against the
first's commit; SQLite serialises writers anyway. So at most one daemon holds any term.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, literal, or_, select, update

from durableq.store.core.base import CoreBase
from durableq.store.records import Leader
from durableq.store.schema import leadership_table

L = leadership_table.c
LEADER = "leader"


class LeadershipOps(CoreBase):
    def take_lead(self, worker_id: str, now: datetime, lease: float) -> int | None:
        """Take or keep the lead until now + lease; the term led, or None if another leads."""
        me = literal(worker_id)
        with self._write() as connection:
            taken = connection.execute(
                update(leadership_table)
                .where(
                    L.name == LEADER,
                    or_(L.holder == me, L.holder.is_(None), L.expires_at < now),
                )
                .values(
                    term=case((L.holder == me, L.term), else_=L.term + 1),
                    elected_at=case((L.holder == me, L.elected_at), else_=now),
                    holder=worker_id,
                    expires_at=now + timedelta(seconds=lease),
                )
                .returning(L.term)
            ).first()
        return None if taken is None else int(taken[0])

    def resign_lead(self, worker_id: str) -> bool:
        """Give the lead up at once (a daemon stopping), so another takes it at its next try."""
        with self._write() as connection:
            resigned = connection.execute(
                update(leadership_table)
                .where(L.name == LEADER, L.holder == worker_id)
                .values(holder=None, expires_at=None)
            ).rowcount
        return bool(resigned)

    def leader(self, now: datetime) -> Leader | None:
        """The daemon leading now, if any."""
        with self._read() as connection:
            row = connection.execute(select(leadership_table).where(L.name == LEADER)).first()
        if row is None or row.holder is None or row.expires_at is None or row.expires_at < now:
            return None
        return Leader(row.holder, int(row.term), row.elected_at, row.expires_at)
